// The files a run writes, as a user sees them: an output, sidecar or latent of the user's is never
// replaced without --overwrite (a dangling link counts as a file), and with it only by a run that
// succeeded; a failed or cancelled run leaves the folder as it was, apart from the latent it keeps
// and names; unwritable folders and odd names are handled before any loading.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <QElapsedTimer>
#include <QProcess>
#include <filesystem>
#include <thread>

#include "cli_test_util.h"
#include "test_util.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

namespace {

using wan_test::files_in;
using wan_test::fixture;
using wan_test::fixture_args;
using wan_test::last_line;
using wan_test::probe;
using wan_test::Run;
using wan_test::run_wan;
using wan_test::start_until;

// A 40-step run of the fixture with --overwrite and `outputs`, plus --frames-dir FOLDER: once it samples,
// someone else's file appears in FOLDER, so writing the outputs fails at the end. Returns how it ended.
Run run_until_the_frames_folder_is_taken(const QTemporaryDir& tmp, const QStringList& outputs) {
  QProcess p;
  Run r;
  r.err = start_until(p,
                      fixture_args(fixture()) << "--steps"
                                              << "40"
                                              << "--seed"
                                              << "9"
                                              << "--overwrite" << outputs << "--frames-dir" << tmp.filePath("frames"),
                      "[sampling] step 1/");
  if (!r.err.contains("[sampling] step 1/") || !QDir().mkpath(tmp.filePath("frames/someone_elses")) ||
      !p.waitForFinished(120000))
    return r;
  r.err += p.readAllStandardError();
  r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
  return r;
}

}  // namespace

class TestCliOutputs : public QObject {
  Q_OBJECT
 private slots:
  // A file of the user's where the sidecar would go is never overwritten; an earlier sidecar is.
  void sidecarNeverReplacesAFileOfTheUsers() {
    QTemporaryDir tmp;
    QFile mine(tmp.filePath("clip.json"));
    QVERIFY(mine.open(QIODevice::WriteOnly));
    mine.write(R"({"my": "notes"})");
    mine.close();
    QStringList args = fixture_args(fixture()) << "--output" << tmp.filePath("clip.mp4");
    const Run r = run_wan(args);
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(last_line(r.err).contains("is not a sidecar of an earlier run"), qPrintable(r.err));
    QCOMPARE(files_in(tmp.path()), QStringList({"clip.json"}));
    QCOMPARE(wan::read_text_file(tmp.filePath("clip.json").toStdString()), std::string(R"({"my": "notes"})"));
    QCOMPARE(run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("other.mp4")).code, 0);
    // The same name again: refused without --overwrite (nothing replaced), replaced with it.
    const std::string video = wan::read_text_file(tmp.filePath("other.mp4").toStdString());
    const Run again = run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("other.mp4"));
    QCOMPARE(again.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(last_line(again.err).contains("add --overwrite"), qPrintable(again.err));
    QCOMPARE(wan::read_text_file(tmp.filePath("other.mp4").toStdString()), video);
    QCOMPARE(run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("other.mp4") << "--overwrite").code, 0);
    // other.mov would write other.json too, which holds other.mp4's settings: refused, nothing replaced.
    const std::string before = wan::read_text_file(tmp.filePath("other.json").toStdString());
    const Run mov = run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("other.mov"));
    QCOMPARE(mov.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(last_line(mov.err).contains("holds the settings of") && last_line(mov.err).contains("other.mp4"),
             qPrintable(mov.err));
    QCOMPARE(wan::read_text_file(tmp.filePath("other.json").toStdString()), before);
    QVERIFY(!QFileInfo::exists(tmp.filePath("other.mov")));
  }

  // A video or latent of the user's under the name a run would write survives it: the run refuses to
  // start (exit 2) unless --overwrite is given.
  void existingOutputsSurviveWithoutOverwrite() {
    QTemporaryDir tmp;
    for (const QString& name : {"clip.mp4", "lat.safetensors"}) {
      QFile mine(tmp.filePath(name));
      QVERIFY(mine.open(QIODevice::WriteOnly));
      mine.write("mine");
    }
    const Run r = run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("clip.mp4"));
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(last_line(r.err).contains("clip.mp4 exists; pick another name, or add --overwrite"), qPrintable(r.err));
    const Run l = run_wan(fixture_args(fixture()) << "--save-latent" << tmp.filePath("lat.safetensors"));
    QCOMPARE(l.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QCOMPARE(files_in(tmp.path()), QStringList({"clip.mp4", "lat.safetensors"}));
    QCOMPARE(wan::read_text_file(tmp.filePath("clip.mp4").toStdString()), std::string("mine"));
    QCOMPARE(wan::read_text_file(tmp.filePath("lat.safetensors").toStdString()), std::string("mine"));
    const Run o = run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("clip.mp4") << "--overwrite");
    QVERIFY2(o.code == 0, qPrintable(o.err));
    QCOMPARE(probe(tmp.filePath("clip.mp4")).section(',', 0, 0), QString("h264"));
  }

  // With --overwrite, the earlier video and sidecar are replaced only by a run that succeeded: here the
  // frames folder appears (someone else's) while the run samples, so writing the outputs fails at the
  // end; the earlier video and sidecar are untouched (the new ones were never renamed into place) and
  // the latent is kept.
  void earlierOutputsSurviveAFailedRunWithOverwrite() {
    QTemporaryDir tmp;
    const Run first = run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("clip.mp4"));
    QVERIFY2(first.code == 0, qPrintable(first.err));
    const std::string video = wan::read_text_file(tmp.filePath("clip.mp4").toStdString());
    const std::string sidecar = wan::read_text_file(tmp.filePath("clip.json").toStdString());
    const Run r = run_until_the_frames_folder_is_taken(tmp, QStringList{"--output", tmp.filePath("clip.mp4")});
    const QString& err = r.err;
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(
        last_line(err).contains("frames: already exists") && last_line(err).contains("the sampled latent is kept in"),
        qPrintable(err));
    QCOMPARE(wan::read_text_file(tmp.filePath("clip.mp4").toStdString()), video);
    QCOMPARE(wan::read_text_file(tmp.filePath("clip.json").toStdString()), sidecar);
    QCOMPARE(files_in(tmp.path()), QStringList({"clip.json", "clip.latent.safetensors", "clip.mp4", "frames"}));
    QCOMPARE(files_in(tmp.filePath("frames")), QStringList({"someone_elses"}));
  }

  // The latent a failed run kept (or any file of that name) is never replaced by the next run's own.
  void keptLatentIsNeverReplaced() {
    QTemporaryDir tmp;
    QFile kept(tmp.filePath("clip.latent.safetensors"));
    QVERIFY(kept.open(QIODevice::WriteOnly));
    kept.write("kept by an earlier run");
    kept.close();
    const Run r = run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("clip.mp4"));
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(
        last_line(r.err).contains("clip.latent.safetensors exists") && last_line(r.err).contains("--decode-latent"),
        qPrintable(r.err));
    QCOMPARE(files_in(tmp.path()), QStringList({"clip.latent.safetensors"}));
    QCOMPARE(wan::read_text_file(tmp.filePath("clip.latent.safetensors").toStdString()),
             std::string("kept by an earlier run"));
  }

  // An output folder that exists but takes no new file is refused before any model is read or any
  // worker starts (a probe file is created and removed). /proc takes no files even for root; a folder
  // without write permission is tried too where the tests do not run as root (root bypasses it).
  void unwritableOutputFolderRefusedBeforeLoading() {
    QTemporaryDir tmp;
    QStringList folders = {"/proc"};
    if (geteuid() != 0) {
      QVERIFY(QDir().mkpath(tmp.filePath("ro")));
      QFile::setPermissions(tmp.filePath("ro"), QFileDevice::ReadOwner | QFileDevice::ExeOwner);
      folders << tmp.filePath("ro");
    }
    for (const QString& folder : folders)
      for (const QStringList& extra : {QStringList{}, QStringList{"--world-size", "2"}}) {
        const Run r = run_wan(fixture_args(fixture()) << "--output" << folder + "/clip.mp4" << extra);
        QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kIo));
        QVERIFY2(last_line(r.err).contains("cannot write into folder " + folder), qPrintable(r.err));
        QVERIFY2(!r.err.contains("[text]") && !r.err.contains("[loading]") && !r.err.contains("starting 2 worker"),
                 qPrintable(r.err));
      }
    QVERIFY(!QFile::exists("/proc/clip.mp4"));
  }

  // A file name that looks like a URL to FFmpeg ("take2:final.mp4") is still a file.
  void outputNameWithAColon() {
    QTemporaryDir tmp;
    const Run r = run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("take2:final.mp4"));
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QCOMPARE(files_in(tmp.path()), QStringList({"take2:final.json", "take2:final.mp4"}));
  }

  // --overwrite with --save-latent: the earlier latent is replaced only by a run that succeeded. Here
  // the frames folder appears (someone else's) while the run samples, so the run fails at the end: the
  // earlier latent is untouched and this run's waits beside it ("lat-2"), named in the message. The next
  // run, which succeeds, puts its latent under the name (and leaves no staged copy).
  void earlierLatentSurvivesAFailedRunWithOverwrite() {
    QTemporaryDir tmp;
    const QString lat = tmp.filePath("lat.safetensors");
    const Run first = run_wan(fixture_args(fixture()) << "--save-latent" << lat);
    QVERIFY2(first.code == 0, qPrintable(first.err));
    const std::string earlier = wan::read_text_file(lat.toStdString());
    const Run r = run_until_the_frames_folder_is_taken(tmp, QStringList{"--save-latent", lat});
    const QString& err = r.err;
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(last_line(err).contains("the sampled latent is kept in " + tmp.filePath("lat-2.safetensors")),
             qPrintable(err));
    QCOMPARE(wan::read_text_file(lat.toStdString()), earlier);
    QCOMPARE(files_in(tmp.path()), QStringList({"frames", "lat-2.safetensors", "lat.safetensors"}));
    const Run again =
        run_wan(fixture_args(fixture()) << "--steps"
                                        << "40"
                                        << "--seed"
                                        << "9"
                                        << "--overwrite"
                                        << "--save-latent" << lat << "--output" << tmp.filePath("clip.mp4"));
    QVERIFY2(again.code == 0, qPrintable(again.err));
    QCOMPARE(files_in(tmp.path()),
             QStringList({"clip.json", "clip.mp4", "frames", "lat-2.safetensors", "lat.safetensors"}));
    QVERIFY(wan::read_text_file(lat.toStdString()) != earlier);
    // The same settings: the same latent as the failed run kept.
    QVERIFY(torch::equal(wan::SafetensorsFile::open(lat.toStdString())->view("latent"),
                         wan::SafetensorsFile::open(tmp.filePath("lat-2.safetensors").toStdString())->view("latent")));
  }

  // A symbolic link to nowhere under an output's name is a file of the user's, not a free name: refused
  // without --overwrite, and the link is left as it was.
  void danglingLinkIsNotAFreeName_data() {
    QTest::addColumn<QString>("link");
    QTest::addColumn<QString>("needle");
    QTest::newRow("video") << "clip.mp4"
                           << "clip.mp4 exists";
    QTest::newRow("sidecar") << "clip.json"
                             << "is not a sidecar of an earlier run";
    QTest::newRow("kept latent") << "clip.latent.safetensors"
                                 << "clip.latent.safetensors exists";
  }
  void danglingLinkIsNotAFreeName() {
    QFETCH(QString, link);
    QFETCH(QString, needle);
    QTemporaryDir tmp;
    const std::filesystem::path at = tmp.filePath(link).toStdString();
    std::filesystem::create_symlink("nowhere/at/all", at);
    const Run r = run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("clip.mp4"));
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(last_line(r.err).contains(needle), qPrintable(r.err));
    QVERIFY(std::filesystem::is_symlink(at));
    QCOMPARE(std::filesystem::read_symlink(at).string(), std::string("nowhere/at/all"));
    QCOMPARE(files_in(tmp.path()), QStringList({link}));
  }

  // Paths that are not regular files, and limits on what the command line takes: one line each, the
  // documented code, nothing written, never a wait on a pipe.
  void pathsThatAreNotFiles_data() {
    QTest::addColumn<QString>("what");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("needle");
    QTest::newRow("FIFO as --dist-config") << "fifo-config" << static_cast<int>(wan::ErrorCode::kInvalidArgument)
                                           << "is not a regular file (a pipe, device or socket)";
    QTest::newRow("FIFO as config.json") << "fifo-model-config" << static_cast<int>(wan::ErrorCode::kInvalidArgument)
                                         << "config.json is not a regular file";
    QTest::newRow("symbolic link loop as --model")
        << "loop" << static_cast<int>(wan::ErrorCode::kIo) << "Too many levels of symbolic links";
    QTest::newRow("--threads 100000") << "threads" << static_cast<int>(wan::ErrorCode::kInvalidArgument)
                                      << "--threads: Value 100000 not in range 0 to 1024";
  }
  void pathsThatAreNotFiles() {
    QFETCH(QString, what);
    QFETCH(int, code);
    QFETCH(QString, needle);
    QTemporaryDir tmp, out;
    QStringList args = fixture_args(fixture());
    if (what == "fifo-config") {
      QVERIFY(mkfifo(tmp.filePath("dist.json").toLocal8Bit().constData(), 0600) == 0);
      args.insert(1, "--dist-config");
      args.insert(2, tmp.filePath("dist.json"));
    } else if (what == "fifo-model-config") {
      for (const QString& f : QDir(fixture()).entryList(QDir::Files))
        if (f != "config.json") QVERIFY(QFile::link(fixture() + "/" + f, tmp.filePath(f)));
      QVERIFY(QFile::link(fixture() + "/google", tmp.filePath("google")));
      QVERIFY(mkfifo(tmp.filePath("config.json").toLocal8Bit().constData(), 0600) == 0);
      args = fixture_args(tmp.path());
    } else if (what == "loop") {
      std::filesystem::create_symlink(tmp.filePath("loop").toStdString(), tmp.filePath("loop").toStdString());
      args = fixture_args(tmp.filePath("loop"));
    } else {
      args = QStringList{"--threads", "100000"} + args;
    }
    QElapsedTimer timer;
    timer.start();
    const Run r = run_wan(args << "--output" << out.filePath("clip.mp4"));
    QCOMPARE(r.code, code);
    QVERIFY2(last_line(r.err).startsWith("wan: error: ") && last_line(r.err).contains(needle), qPrintable(r.err));
    QVERIFY(timer.elapsed() < 60000);
    QCOMPARE(files_in(out.path()), QStringList());
  }

  // Ctrl-C in a run of one process: cancelled at the end of the step, exit code 9, nothing written; a
  // second Ctrl-C ends the run at once (the handler removes half-written files and exits 9).
  void interruptInOneProcess_data() {
    QTest::addColumn<QString>("size");
    QTest::addColumn<QString>("step");
    QTest::addColumn<int>("interrupts");
    QTest::addColumn<QString>("message");
    QTest::newRow("once") << "256*160"
                          << "[sampling] step 2/" << 1 << "wan: error: cancelled";
    QTest::newRow("twice") << "832*480"
                           << "[sampling] step 1/" << 2 << "wan: error: cancelled (second interrupt: stopped at once)";
  }
  void interruptInOneProcess() {
    QFETCH(QString, size);
    QFETCH(QString, step);
    QFETCH(int, interrupts);
    QFETCH(QString, message);
    QTemporaryDir tmp;
    QProcess p;
    QString err = start_until(p,
                              {"generate", "--prompt", "a fox", "--size", size, "--frames", "17", "--steps", "400",
                               "--output", tmp.filePath("clip.mp4")},
                              step);
    QVERIFY2(err.contains(step), qPrintable(err));
    for (int i = 0; i < interrupts; ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      kill(static_cast<pid_t>(p.processId()), SIGINT);
    }
    QVERIFY(p.waitForFinished(30000));
    err += p.readAllStandardError();
    QCOMPARE(p.exitCode(), static_cast<int>(wan::ErrorCode::kCancelled));
    QVERIFY2(last_line(err) == message, qPrintable(err));
    QCOMPARE(files_in(tmp.path()), QStringList());
  }

  // A run started with SIGINT ignored (a background job of a script, `wan ... &`) keeps it ignored: a
  // Ctrl-C meant for the foreground does not cancel it; SIGTERM still does, at the end of the step.
  void inheritedIgnoredInterruptStaysIgnored() {
    QTemporaryDir tmp;
    QProcess p;
    p.setChildProcessModifier([] { ::signal(SIGINT, SIG_IGN); });
    QString err = start_until(p,
                              {"generate", "--prompt", "a fox", "--size", "256*160", "--frames", "17", "--steps", "400",
                               "--output", tmp.filePath("clip.mp4")},
                              "[sampling] step 2/");
    QVERIFY2(err.contains("[sampling] step 2/"), qPrintable(err));
    kill(static_cast<pid_t>(p.processId()), SIGINT);
    QVERIFY2(!p.waitForFinished(1500), "an ignored SIGINT cancelled the run");
    kill(static_cast<pid_t>(p.processId()), SIGTERM);
    QVERIFY(p.waitForFinished(30000));
    err += p.readAllStandardError();
    QCOMPARE(p.exitCode(), static_cast<int>(wan::ErrorCode::kCancelled));
    QCOMPARE(last_line(err), QString("wan: error: cancelled"));
    QCOMPARE(files_in(tmp.path()), QStringList());
  }

  // A second Ctrl-C while decoding stops at once and still names the latent the run kept.
  void secondInterruptWhileDecodingNamesTheLatent() {
    QTemporaryDir tmp;
    QProcess p;
    QString err = start_until(p,
                              {"generate", "--prompt", "a fox", "--size", "832*480", "--frames", "17", "--steps", "2",
                               "--output", tmp.filePath("clip.mp4")},
                              "[decoding]");
    QVERIFY2(err.contains("[decoding]"), qPrintable(err));
    kill(static_cast<pid_t>(p.processId()), SIGINT);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    kill(static_cast<pid_t>(p.processId()), SIGINT);
    QVERIFY(p.waitForFinished(30000));
    err += p.readAllStandardError();
    QCOMPARE(p.exitCode(), static_cast<int>(wan::ErrorCode::kCancelled));
    QCOMPARE(last_line(err),
             "wan: error: cancelled (second interrupt: stopped at once; the sampled latent is kept in " +
                 tmp.filePath("clip.latent.safetensors") + ")");
    QCOMPARE(files_in(tmp.path()), QStringList({"clip.latent.safetensors"}));
  }

  // Files that describe more than the engine makes or reads: a latent that decodes outside the sizes,
  // a picture whose header claims 400 megapixels (a decompression bomb: refused before inflating), a
  // sharded index naming a file outside its folder, a run id that is not a name.
  void inputsBeyondTheBounds_data() {
    QTest::addColumn<QString>("what");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("needle");
    const int corrupt = static_cast<int>(wan::ErrorCode::kCorruptFile);
    const int invalid = static_cast<int>(wan::ErrorCode::kInvalidArgument);
    QTest::newRow("latent of no frames") << "latent:16,0,4,4" << corrupt << "decodes to -3 frames of 32x32";
    QTest::newRow("latent too wide") << "latent:16,1,2,1100" << corrupt << "decodes to 1 frames of 8800x16";
    QTest::newRow("picture of 400 megapixels") << "bomb" << invalid << "more than the 100 megapixels";
    QTest::newRow("BMP header of 262 megapixels") << "bmp" << corrupt << "cannot be decoded";
    QTest::newRow("index naming ../") << "index" << corrupt << "not a file of the index's folder";
    QTest::newRow("run id with a slash") << "run-id" << invalid << "use letters, digits";
  }
  void inputsBeyondTheBounds() {
    QFETCH(QString, what);
    QFETCH(int, code);
    QFETCH(QString, needle);
    QTemporaryDir tmp, out;
    QStringList args;
    if (what.startsWith("latent:")) {
      std::vector<std::int64_t> shape;
      for (const QString& d : what.mid(7).split(',')) shape.push_back(d.toLongLong());
      wan::write_safetensors(tmp.filePath("l.safetensors").toStdString(), {{"latent", torch::zeros(shape)}});
      args = QStringList{"generate",
                         "--model",
                         fixture(),
                         "--decode-latent",
                         tmp.filePath("l.safetensors"),
                         "--output",
                         out.filePath("clip.mp4")};
    } else if (what == "bomb") {
      // Signature, an IHDR of 20000x20000 RGB (its CRC right), an empty IDAT and IEND.
      QByteArray png("\x89PNG\r\n\x1a\n", 8);
      auto chunk = [&](const char* type, const QByteArray& data) {
        QByteArray body = QByteArray(type, 4) + data;
        QByteArray length(4, 0), crc(4, 0);
        for (int i = 0; i < 4; ++i) length[i] = static_cast<char>((data.size() >> (24 - 8 * i)) & 0xFF);
        const auto c = static_cast<std::uint32_t>(
            crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(body.constData()), body.size()));
        for (int i = 0; i < 4; ++i) crc[i] = static_cast<char>((c >> (24 - 8 * i)) & 0xFF);
        png += length + body + crc;
      };
      chunk("IHDR", QByteArray("\x00\x00\x4e\x20\x00\x00\x4e\x20\x08\x02\x00\x00\x00", 13));
      chunk("IDAT", QByteArray());
      chunk("IEND", QByteArray());
      QFile f(tmp.filePath("bomb.png"));
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write(png);
      f.close();
      args = QStringList{"estimate", "--image", tmp.filePath("bomb.png")};
    } else if (what == "bmp") {
      // A 154-byte BMP whose header says 16200 x 16200 at 32 bits: FFmpeg's decoder gets the pixel bound
      // (checked by its own size check) before it allocates a frame.
      QByteArray bmp("BM", 2);
      auto le = [&bmp](std::uint32_t v, int bytes) {
        for (int i = 0; i < bytes; ++i) bmp.append(static_cast<char>((v >> (8 * i)) & 0xFF));
      };
      le(154, 4), le(0, 4), le(54, 4), le(40, 4), le(16200, 4), le(16200, 4), le(1, 2), le(32, 2);
      bmp.append(QByteArray(154 - bmp.size(), '\0'));
      QFile f(tmp.filePath("big.bmp"));
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write(bmp);
      f.close();
      args = QStringList{"estimate", "--image", tmp.filePath("big.bmp")};
    } else if (what == "index") {
      QFile f(tmp.filePath("m.safetensors.index.json"));
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("{\"weight_map\": {\"head.modulation\": \"../../etc/passwd\"}}");
      f.close();
      args = fixture_args(fixture()) << "--dit" << tmp.filePath("m.safetensors.index.json") << "--output"
                                     << out.filePath("clip.mp4");
    } else {
      args = fixture_args(fixture()) << "--world-size"
                                     << "2"
                                     << "--run-id"
                                     << "a/b"
                                     << "--write-job" << out.filePath("job.json");
    }
    const Run r = run_wan(args);
    QCOMPARE(r.code, code);
    QVERIFY2(last_line(r.err).startsWith("wan: error: ") && last_line(r.err).contains(needle), qPrintable(r.err));
    QCOMPARE(files_in(out.path()), QStringList());
  }
};

QTEST_APPLESS_MAIN(TestCliOutputs)
#include "tst_cli_outputs.moc"
