// `wan generate` end to end, as a user runs it: the t2v pipeline fixture through the CLI (latent,
// PNG frames and MP4 checked against the reference), --decode-latent, ComfyUI folders, and every
// invalid setting or broken model folder: a clear message, a non-zero exit code, no output left; and
// the figures `wan bench` reports.
#include <signal.h>
#include <unistd.h>

#include <QElapsedTimer>
#include <QImage>
#include <QProcess>
#include <QRegularExpression>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_test_util.h"
#include "pipeline/memory_check.h"
#include "test_util.h"
#include "wan/estimate.h"
#include "wan/job.h"
#include "wan/model_info.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

using wan_test::golden;

namespace {

using wan_test::fixture;
using wan_test::fixture_args;
using wan_test::last_line;
using wan_test::probe;
using wan_test::Run;
using wan_test::run_wan;
using wan_test::start_until;

using wan_test::t2v_fixture_latent_error;

using wan_test::files_in;

}  // namespace

class TestCliGenerate : public QObject {
  Q_OBJECT
 private slots:
  void pipelineFixtureMatchesReference() {
    QTemporaryDir tmp;
    const QString out = tmp.filePath("fox.mp4"), latent = tmp.filePath("fox.safetensors"),
                  frames = tmp.filePath("frames");
    const Run r =
        run_wan(fixture_args(fixture()) << "--output" << out << "--save-latent" << latent << "--frames-dir" << frames);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const double e = t2v_fixture_latent_error(latent);
    QVERIFY2(e < 1e-3, qPrintable(QString("final latent relative L2 error %1").arg(e)));

    // PNG frames are the decoded video quantised like the reference's cache_video.
    auto io = wan::SafetensorsFile::open(golden("t2v_pipeline_small") + "/io.safetensors");
    const torch::Tensor ref = io->view("video");  // [3, T, H, W]
    const torch::Tensor ref_u8 = ((ref.clamp(-1, 1) + 1) / 2 * 255).to(torch::kInt32);
    QCOMPARE(files_in(frames).size(), static_cast<int>(ref.size(1)));
    int max_diff = 0;
    for (int t = 0; t < ref.size(1); ++t) {
      QImage img(frames + QString::asprintf("/frame_%05d.png", t));
      QVERIFY(!img.isNull());
      QCOMPARE(img.width(), static_cast<int>(ref.size(3)));
      QCOMPARE(img.height(), static_cast<int>(ref.size(2)));
      for (int y = 0; y < img.height(); ++y)
        for (int x = 0; x < img.width(); ++x) {
          const QRgb px = img.pixel(x, y);
          const int got[3] = {qRed(px), qGreen(px), qBlue(px)};
          for (int c = 0; c < 3; ++c) max_diff = std::max(max_diff, std::abs(got[c] - ref_u8[c][t][y][x].item<int>()));
        }
    }
    QVERIFY2(max_diff <= 1,
             qPrintable(QString("PNG pixels differ from the reference video by up to %1").arg(max_diff)));

    QCOMPARE(probe(out), QString("h264,64,48,yuv420p,16/1,9"));

    const nlohmann::json side = nlohmann::json::parse(wan::read_text_file(tmp.filePath("fox.json").toStdString()));
    QCOMPARE(side.at("format").get<std::string>(), std::string("wan-studio-sidecar/2"));
    QCOMPARE(side.at("request").at("seed").get<int>(), 42);
    QCOMPARE(side.at("request").at("steps").get<int>(), 6);
    QCOMPARE(side.at("request").at("shift").get<double>(), 5.0);  // not given: the task's default, resolved
    QCOMPARE(side.at("request").at("sampler").get<std::string>(), std::string("unipc"));
    QCOMPARE(side.at("model").at("layout").get<std::string>(), std::string("official"));
    QVERIFY(side.at("model").at("dit").at("bytes").get<std::int64_t>() > 0);
    QVERIFY(side.at("timings_seconds").at("total").get<double>() > 0);
    QCOMPARE(side.at("config").at("world_size").get<int>(), 1);
    // Nothing else: no temp files left beside the outputs.
    QCOMPARE(files_in(tmp.path()), QStringList({"fox.json", "fox.mp4", "fox.safetensors", "frames"}));

    // Decoding the saved latent later gives the same frames count, size and fps.
    const QString again = tmp.filePath("again.mp4");
    const Run d =
        run_wan({"generate", "--decode-latent", latent, "--model", fixture(), "--output", again, "--fps", "8"});
    QVERIFY2(d.code == 0, qPrintable(d.err));
    QCOMPARE(probe(again), QString("h264,64,48,yuv420p,8/1,9"));
    const nlohmann::json side2 = nlohmann::json::parse(wan::read_text_file(tmp.filePath("again.json").toStdString()));
    QCOMPARE(side2.at("request").at("prompt").get<std::string>(), side.at("request").at("prompt").get<std::string>());
    QCOMPARE(side2.at("request").at("seed").get<int>(), 42);
    // The sidecar records the video as decoded (the latent's size), not the request's defaults.
    QCOMPARE(side2.at("video").at("width").get<int>(), 64);
    QCOMPARE(side2.at("video").at("height").get<int>(), 48);
    QCOMPARE(side2.at("video").at("frames").get<int>(), 9);
    QCOMPARE(side2.at("request").at("width").get<int>(), 64);
    QCOMPARE(side2.at("request").at("frames").get<int>(), 9);
  }

  void invalidSettingsLeaveNoOutput_data() {
    QTest::addColumn<QStringList>("extra");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("needle");
    const int bad = static_cast<int>(wan::ErrorCode::kInvalidArgument);
    QTest::newRow("frames not 4n+1") << QStringList{"--frames", "8"} << bad << "4n+1";
    QTest::newRow("frames zero") << QStringList{"--frames", "0"} << bad << "4n+1";
    QTest::newRow("width not /16") << QStringList{"--width", "72"} << bad << "--width";
    QTest::newRow("height not /16") << QStringList{"--height", "40"} << bad << "--height";
    QTest::newRow("size syntax") << QStringList{"--size", "64by48"} << bad << "--size";
    QTest::newRow("steps zero") << QStringList{"--steps", "0"} << bad << "--steps";
    QTest::newRow("seed -2") << QStringList{"--seed", "-2"} << bad << "--seed";
    QTest::newRow("seed past 2^63-1") << QStringList{"--seed", "9223372036854775808"} << bad << "--seed";
    QTest::newRow("seed not a number") << QStringList{"--seed", "12abc"} << bad << "--seed";
    QTest::newRow("steps past the schedule") << QStringList{"--steps", "1001"} << bad << "between 1 and 1000";
    QTest::newRow("width too large") << QStringList{"--width", "8208"} << bad << "between 16 and 8192";
    QTest::newRow("frames too many") << QStringList{"--frames", "1005"} << bad << "between 1 and 1001";
    QTest::newRow("guidance nan") << QStringList{"--guidance", "nan"} << bad << "--guidance";
    QTest::newRow("guidance inf") << QStringList{"--guidance", "inf"} << bad << "--guidance";
    QTest::newRow("shift nan") << QStringList{"--shift", "nan"} << bad << "--shift";
    QTest::newRow("shift negative") << QStringList{"--shift", "-1"} << bad << "--shift";
    QTest::newRow("sampler") << QStringList{"--sampler", "euler"} << bad << "euler";
    QTest::newRow("dtype") << QStringList{"--dtype", "fp8"} << bad << "fp8";
    QTest::newRow("empty prompt") << QStringList{"--prompt", ""} << bad << "prompt";
    QTest::newRow("fps") << QStringList{"--fps", "0"} << bad << "--fps";
    QTest::newRow("crf") << QStringList{"--crf", "60"} << bad << "--crf";
    QTest::newRow("output type") << QStringList{"--output", "OUT/clip.gif"} << bad << ".mp4";
    QTest::newRow("output folder missing")
        << QStringList{"--output", "OUT/nowhere/clip.mp4"} << bad << "does not exist";
    QTest::newRow("latent name") << QStringList{"--save-latent", "OUT/lat.bin"} << bad << ".safetensors";
    QTest::newRow("frames folder named like the video")
        << QStringList{"--frames-dir", "OUT/clip.mp4"} << bad << "is the same path as --output";
    QTest::newRow("frames folder named like the latent")
        << QStringList{"--frames-dir", "OUT/lat.safetensors"} << bad << "is the same path as --frames-dir";
    QTest::newRow("frames folder named like the sidecar")
        << QStringList{"--frames-dir", "OUT/clip.json"} << bad << "is the same path as the settings of";
    QTest::newRow("model folder missing") << QStringList{"--model", "OUT/no-such-model"}
                                          << static_cast<int>(wan::ErrorCode::kFileNotFound) << "no such folder";
    QTest::newRow("model folder empty") << QStringList{"--model", "OUT"}
                                        << static_cast<int>(wan::ErrorCode::kFileNotFound) << "neither an official";
    QTest::newRow("decode-latent missing") << QStringList{"--decode-latent", "OUT/none.safetensors"}
                                           << static_cast<int>(wan::ErrorCode::kFileNotFound) << "none.safetensors";
    // Command-line mistakes: the same exit code and one line, whatever part of the program finds them.
    QTest::newRow("number syntax") << QStringList{"--steps", "abc"} << bad << "--steps";
    QTest::newRow("unknown flag") << QStringList{"--stepz", "3"} << bad << "--stepz";
    QTest::newRow("hang timeout 0") << QStringList{"--world-size", "2", "--hang-timeout", "0"} << bad
                                    << "hang_timeout_seconds must be at least 1";
    QTest::newRow("world size 0") << QStringList{"--world-size", "0"} << bad << "world_size must be at least 1";
    QTest::newRow("master port") << QStringList{"--world-size", "2", "--master-port", "70000"} << bad
                                 << "is not a TCP port";
    QTest::newRow("nccl on the cpu") << QStringList{"--world-size", "2", "--backend", "nccl", "--device", "cpu"} << bad
                                     << "--backend nccl moves GPU tensors only";
    QTest::newRow("config rank outside the world")
        << QStringList{"--dist-config", "OUT/rank5.json"} << bad << "rank 5 is out of range";
    QTest::newRow("fsdp without a world") << QStringList{"--dit-fsdp"} << bad << "give the world a size";
    QTest::newRow("ulysses vs heads") << QStringList{"--world-size", "8", "--ulysses", "8"} << bad
                                      << "4 attention heads, not divisible by ulysses_size 8";
  }

  void invalidSettingsLeaveNoOutput() {
    QFETCH(QStringList, extra);
    QFETCH(int, code);
    QFETCH(QString, needle);
    QTemporaryDir tmp;
    QStringList args = fixture_args(fixture())
                       << "--output" << tmp.filePath("clip.mp4") << "--save-latent" << tmp.filePath("lat.safetensors");
    for (QString a : extra) args << a.replace("OUT", tmp.path());
    if (extra.contains("OUT/rank5.json")) {  // a config file made for the case, removed before the check
      QFile config(tmp.filePath("rank5.json"));
      QVERIFY(config.open(QIODevice::WriteOnly));
      config.write(R"({"world_size": 2, "rank": 5})");
    }
    const Run r = run_wan(args);
    QFile::remove(tmp.filePath("rank5.json"));
    QCOMPARE(r.code, code);
    QVERIFY2(last_line(r.err).startsWith("wan: error: ") && last_line(r.err).contains(needle), qPrintable(r.err));
    QCOMPARE(files_in(tmp.path()), QStringList());
  }

  // A prompt longer than the text encoder reads (the fixture's text_len is 16) is cut, as the reference
  // does, and the user is told how many tokens were dropped; a short one says nothing.
  void truncatedPromptIsAnnounced() {
    QTemporaryDir tmp;
    const QString base =
        "a red fox runs through the snowy forest at dawn while the sun rises over the distant mountains";
    Run r = run_wan({"generate", "--model", fixture(), "--prompt", base, "--negative", "blurry", "--size", "64*48",
                     "--frames", "1", "--steps", "1", "--save-latent", tmp.filePath("a.safetensors")});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY2(
        r.err.contains(QRegularExpression(
            R"(note: the prompt is \d+ tokens long with the end mark; umT5 reads 16: its last \d+ tokens are cut)")),
        qPrintable(r.err));
    QVERIFY(!r.err.contains("negative prompt is"));
    r = run_wan({"generate", "--model", fixture(), "--prompt", "a fox", "--negative", "blurry", "--size", "64*48",
                 "--frames", "1", "--steps", "1", "--save-latent", tmp.filePath("b.safetensors")});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(!r.err.contains("tokens are cut"));
  }

  // Out of memory in each phase (WAN_TEST_OOM makes the next allocation fail once the phase begins,
  // through the real allocator): exit 11 and one line naming the phase, the memory free, the estimate
  // and no LibTorch stack trace; once the sampling is done the latent is kept, and the command the
  // message gives finishes the video.
  void outOfMemoryInEachPhase_data() {
    QTest::addColumn<QString>("phase");
    QTest::addColumn<QString>("words");
    QTest::addColumn<bool>("sampled");
    QTest::newRow("text") << "text"
                          << "encoding the prompt" << false;
    QTest::newRow("loading") << "loading"
                             << "loading the DiT" << false;
    QTest::newRow("sampling") << "sampling"
                              << "sampling" << false;
    QTest::newRow("decoding") << "decoding"
                              << "decoding the latent (VAE)" << true;
    QTest::newRow("writing") << "writing"
                             << "writing the outputs" << true;
  }
  void outOfMemoryInEachPhase() {
    QFETCH(QString, phase);
    QFETCH(QString, words);
    QFETCH(bool, sampled);
    QTemporaryDir tmp;
    qputenv("WAN_TEST_OOM", phase.toUtf8());
    const Run r = run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("clip.mp4"));
    qunsetenv("WAN_TEST_OOM");
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kOutOfMemory));
    const QString line = last_line(r.err);
    QVERIFY2(line.startsWith("wan: error: out of memory on cpu while " + words), qPrintable(r.err));
    QVERIFY2(line.contains(QRegularExpression(R"(\d+(\.\d+)? [KMG]iB free)")) && line.contains("by the estimate"),
             qPrintable(line));
    QVERIFY2(!r.err.contains("Exception raised from") && !r.err.contains("frame #"), qPrintable(r.err));
    if (!sampled) {
      QCOMPARE(files_in(tmp.path()), QStringList());
      return;
    }
    QCOMPARE(files_in(tmp.path()), QStringList({"clip.latent.safetensors"}));
    const QRegularExpressionMatch resume = QRegularExpression("finish with `wan (generate [^`]+)`").match(line);
    QVERIFY2(resume.hasMatch(), qPrintable(line));
    QStringList args = resume.captured(1).split(' ');
    args.removeLast();  // "..."
    const Run finish = run_wan(args << tmp.filePath("clip.mp4"));
    QVERIFY2(finish.code == 0, qPrintable(finish.err));
    QCOMPARE(probe(tmp.filePath("clip.mp4")).section(',', 0, 0), QString("h264"));
  }

  // Refuse what cannot fit, before loading: the estimate against this host's available memory, in one
  // process and through the launcher (before any worker starts); --force starts it anyway. A smaller
  // machine is stood for by WAN_TEST_AVAILABLE_BYTES (pipeline/memory_check.h).
  void runThatCannotFitIsRefusedBeforeLoading_data() {
    QTest::addColumn<QStringList>("extra");
    QTest::newRow("one process") << QStringList{};
    QTest::newRow("two ranks") << QStringList{"--world-size", "2"};
  }
  void runThatCannotFitIsRefusedBeforeLoading() {
    QFETCH(QStringList, extra);
    QTemporaryDir tmp;
    qputenv("WAN_TEST_AVAILABLE_BYTES", "1000000");
    struct Unset {
      ~Unset() { qunsetenv("WAN_TEST_AVAILABLE_BYTES"); }
    } unset;
    const Run refused = run_wan(fixture_args(fixture()) << extra << "--output" << tmp.filePath("clip.mp4"));
    QCOMPARE(refused.code, static_cast<int>(wan::ErrorCode::kOutOfMemory));
    const QString line = last_line(refused.err);
    QVERIFY2(line.startsWith("wan: error: this run needs about ") && line.contains(" of host memory") &&
                 line.contains(" by the estimate, but ") && line.contains("but 977 KiB is available") &&
                 line.endsWith("or --force to start anyway"),
             qPrintable(refused.err));
    QVERIFY2(!refused.err.contains("loading"), qPrintable(refused.err));  // refused before any weight
    QCOMPARE(files_in(tmp.path()), QStringList());
    const Run forced = run_wan(fixture_args(fixture()) << extra << "--force"
                                                       << "--output" << tmp.filePath("clip.mp4"));
    qunsetenv("WAN_TEST_AVAILABLE_BYTES");
    QVERIFY2(forced.code == 0, qPrintable(forced.err));
    QVERIFY(QFile::exists(tmp.filePath("clip.mp4")));
  }

  // The same without a stand-in: 8192*8192 (81 frames) of the demo model on this machine, in one process
  // and by the launcher (a run that names no model runs the demo model, which the launcher measures too).
  void hugeVideoRefusedByTheEstimate_data() {
    QTest::addColumn<QStringList>("extra");
    QTest::newRow("one process") << QStringList{};
    QTest::newRow("two ranks") << QStringList{"--world-size", "2"};
  }
  void hugeVideoRefusedByTheEstimate() {
    QFETCH(QStringList, extra);
    wan::GenerationRequest r;
    r.width = r.height = 8192;
    r.frames = 81;
    wan::ModelFiles demo;
    demo.model_dir = wan::demo_model_dir();
    const wan::ModelDims dims = wan::inspect_model(demo).dims;
    const wan::MemoryCheck check = wan::measure_memory_check(dims, r, wan::DistConfig{});
    if (check.available_bytes < 0 || check.available_bytes >= check.need_bytes)
      QSKIP("this machine has the memory the estimate asks for 8192*8192: nothing to refuse");
    QTemporaryDir tmp;
    const Run refused = run_wan(QStringList{"generate", "--prompt", "a fox", "--size", "8192*8192", "--frames", "81",
                                            "--output", tmp.filePath("clip.mp4")}
                                << extra);
    QCOMPARE(refused.code, static_cast<int>(wan::ErrorCode::kOutOfMemory));
    QVERIFY2(last_line(refused.err).contains("by the estimate"), qPrintable(refused.err));
    QCOMPARE(files_in(tmp.path()), QStringList());
  }

  // The crafted files of tests/data/bad-inputs (copied from ../shared/bad-inputs, README there), each in
  // place of its file in a copy of the fixture folder: one error line, a documented exit code, no crash
  // and nothing written.
  void hostileFilesEndInOneErrorLine_data() {
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("replaces");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("needle");
    const int corrupt = static_cast<int>(wan::ErrorCode::kCorruptFile);
    const QString t5 = "models_t5_umt5-xxl-enc-bf16.pth";
    QTest::newRow("pickle nested 100000 deep")
        << "t5_deep_nested_lists_100k.pth" << t5 << corrupt << "nested more than 100 deep";
    QTest::newRow("storage size wraps to 0 bytes")
        << "t5_storage_numel_wrap_oob.pth" << t5 << corrupt << "more than its record holds";
    QTest::newRow("stride product overflows")
        << "t5_stride_overflow.pth" << t5 << corrupt << "overflowing size or stride";
    QTest::newRow("config dim 2^40") << "config_dim_huge.json"
                                     << "config.json" << corrupt << "dim 1099511627776 is out of range";
    QTest::newRow("config num_layers 10^9") << "config_num_layers_huge.json"
                                            << "config.json" << corrupt << "num_layers 1000000000 is out of range";
  }
  void hostileFilesEndInOneErrorLine() {
    QFETCH(QString, file);
    QFETCH(QString, replaces);
    QFETCH(int, code);
    QFETCH(QString, needle);
    QTemporaryDir tmp;
    const QString model = tmp.filePath("model"), out = tmp.filePath("out");
    QVERIFY(QDir().mkpath(out));
    std::filesystem::copy(fixture().toStdString(), model.toStdString(), std::filesystem::copy_options::recursive);
    const std::filesystem::path target = (model + "/" + replaces).toStdString();
    std::filesystem::permissions(target, std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
    std::filesystem::copy_file(wan_test::data_dir() + "/bad-inputs/" + file.toStdString(), target,
                               std::filesystem::copy_options::overwrite_existing);
    const Run r = run_wan(fixture_args(model) << "--output" << out + "/clip.mp4");
    QCOMPARE(r.code, code);
    QVERIFY2(last_line(r.err).startsWith("wan: error: ") && last_line(r.err).contains(needle), qPrintable(r.err));
    QVERIFY2(!r.err.contains("Exception raised from") && !r.err.contains("frame #"), qPrintable(r.err));
    QCOMPARE(files_in(out), QStringList());
  }

  // A prompt that is not UTF-8 (a Latin-1 file pasted in, a cut multi-byte character) is refused before
  // anything loads, naming the byte; nothing is written.
  void invalidUtf8PromptRefusedUpFront() {
    QTemporaryDir tmp;
    for (const char* bytes :
         {"a fox \\377 runs", "cut \\342\\202", "overlong \\300\\257", "surrogate \\355\\240\\200"}) {
      QProcess p;
      // Through a shell: QProcess's arguments are QStrings, which cannot hold invalid UTF-8.
      p.start("/bin/sh", {"-c",
                          QString("\"$0\" generate --model \"$1\" --size 64*48 --frames 5 --steps 2 "
                                  "--output \"$2\" --prompt \"$(printf '%1')\"")
                              .arg(bytes),
                          WAN_CLI_PATH, fixture(), tmp.filePath("clip.mp4")});
      QVERIFY(p.waitForFinished(120000));
      const QString err = p.readAllStandardError();
      QCOMPARE(p.exitCode(), static_cast<int>(wan::ErrorCode::kInvalidArgument));
      QVERIFY2(last_line(err).contains("--prompt: not valid UTF-8 text (byte "), qPrintable(err));
      QVERIFY2(!err.contains("[loading]"), qPrintable(err));
      QCOMPARE(files_in(tmp.path()), QStringList());
    }
  }

  // Two ranks without a parallel split (replicas: no collective while sampling): every rank confirms
  // its sampling before rank 0 writes, so a rank 1 that fails leaves nothing behind, and the failure
  // reads as one error line (the launcher's).
  void failedReplicaRankWritesNothing() {
    QTemporaryDir tmp;
    qputenv("WAN_TEST_OOM", "sampling:1");
    const Run r = run_wan(fixture_args(fixture()) << "--world-size"
                                                  << "2"
                                                  << "--output" << tmp.filePath("clip.mp4"));
    qunsetenv("WAN_TEST_OOM");
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kOutOfMemory));
    QCOMPARE(r.err.count("wan: error:"), 1);
    QVERIFY2(last_line(r.err).startsWith("wan: error: rank 1 failed while sampling: out of memory on cpu"),
             qPrintable(r.err));
    QCOMPARE(files_in(tmp.path()), QStringList());
  }

  // `wan estimate` refuses what `wan generate` refuses, in the same words.
  void estimateRefusesWhatGenerateRefuses_data() {
    QTest::addColumn<QStringList>("extra");
    QTest::newRow("frames 18") << QStringList{"--frames", "18"};
    QTest::newRow("width 250") << QStringList{"--size", "250*48"};
    QTest::newRow("size too large") << QStringList{"--size", "8208*8208"};
    QTest::newRow("dtype fp8") << QStringList{"--dtype", "fp8"};
    QTest::newRow("world 3 with ulysses 2") << QStringList{"--world-size", "3", "--ulysses", "2"};
    QTest::newRow("ulysses vs the model's heads") << QStringList{"--world-size", "8", "--ulysses", "8"};
    QTest::newRow("world size 0") << QStringList{"--world-size", "0"};
    QTest::newRow("hang timeout 0") << QStringList{"--hang-timeout", "0"};
  }
  void estimateRefusesWhatGenerateRefuses() {
    QFETCH(QStringList, extra);
    QTemporaryDir tmp;
    const Run generate = run_wan(
        QStringList{"generate", "--model", fixture(), "--prompt", "a fox", "--output", tmp.filePath("clip.mp4")} +
        extra);
    const Run estimate = run_wan(QStringList{"estimate", "--model", fixture()} + extra);
    QCOMPARE(generate.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QCOMPARE(estimate.code, generate.code);
    QCOMPARE(last_line(estimate.err), last_line(generate.err));
    QCOMPARE(files_in(tmp.path()), QStringList());
  }

  // --verbose adds LibTorch's stack trace for a bug report; the last line stays the same one.
  void verboseShowsTheStackTrace() {
    QTemporaryDir tmp;
    qputenv("WAN_TEST_OOM", "sampling");
    const Run r = run_wan(fixture_args(fixture()) << "--output" << tmp.filePath("clip.mp4") << "--verbose");
    qunsetenv("WAN_TEST_OOM");
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kOutOfMemory));
    QVERIFY2(r.err.contains("Exception raised from"), qPrintable(r.err));
    QVERIFY(last_line(r.err).startsWith("wan: error: out of memory on cpu while sampling"));
  }

  // --write-job: absolute paths (ranks may start elsewhere), and never where rank 0 writes the sidecar.
  void writeJob() {
    QTemporaryDir tmp;
    const QString here = QDir::currentPath();
    QDir::setCurrent(tmp.path());
    const Run r = run_wan({"generate", "--prompt", "x", "--world-size", "2", "--model", "demo", "-o", "out.mp4",
                           "--write-job", "run.job.json"});
    const Run clash =
        run_wan({"generate", "--prompt", "x", "--world-size", "2", "-o", "out.mp4", "--write-job", "out.json"});
    QDir::setCurrent(here);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const wan::Job job = wan::load_job(tmp.filePath("run.job.json").toStdString());
    QCOMPARE(QString::fromStdString(job.request.output), QDir(tmp.path()).absoluteFilePath("out.mp4"));
    QCOMPARE(QString::fromStdString(job.request.model.model_dir), QDir(tmp.path()).absoluteFilePath("demo"));
    QCOMPARE(job.config.world_size, 2);
    QVERIFY(!job.request.steps);  // not given: the ranks resolve it
    QCOMPARE(clash.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(last_line(clash.err).contains("is where rank 0 writes the sidecar"), qPrintable(clash.err));
    QVERIFY(!QFile::exists(tmp.filePath("out.json")));
    // Nor over a file that is not a job (a picture, a config, a video).
    QFile picture(tmp.filePath("start.png"));
    QVERIFY(picture.open(QIODevice::WriteOnly));
    picture.write("PNG");
    picture.close();
    const Run over = run_wan({"generate", "--prompt", "x", "--world-size", "2", "-o", tmp.filePath("o.mp4"),
                              "--write-job", tmp.filePath("start.png")});
    QCOMPARE(over.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(last_line(over.err).contains("exists and is not a job file"), qPrintable(over.err));
    QCOMPARE(wan::read_text_file(tmp.filePath("start.png").toStdString()), std::string("PNG"));
  }

  void brokenModelFolderLeavesNoOutput_data() {
    QTest::addColumn<QString>("damage");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("needle");
    QTest::newRow("truncated DiT") << "truncate:diffusion_pytorch_model.safetensors"
                                   << static_cast<int>(wan::ErrorCode::kCorruptFile)
                                   << "diffusion_pytorch_model.safetensors";
    QTest::newRow("truncated VAE") << "truncate:Wan2.1_VAE.pth" << static_cast<int>(wan::ErrorCode::kCorruptFile)
                                   << "Wan2.1_VAE.pth";
    QTest::newRow("no VAE") << "remove:Wan2.1_VAE.pth" << static_cast<int>(wan::ErrorCode::kFileNotFound)
                            << "Wan2.1_VAE.pth";
    QTest::newRow("no T5") << "remove:models_t5_umt5-xxl-enc-bf16.pth"
                           << static_cast<int>(wan::ErrorCode::kFileNotFound) << "umT5";
    QTest::newRow("no tokenizer") << "remove:google/umt5-xxl/spiece.model"
                                  << static_cast<int>(wan::ErrorCode::kFileNotFound) << "spiece.model";
    QTest::newRow("no DiT") << "remove:diffusion_pytorch_model.safetensors"
                            << static_cast<int>(wan::ErrorCode::kFileNotFound) << "incomplete";
    QTest::newRow("bad config.json") << "write:config.json" << static_cast<int>(wan::ErrorCode::kCorruptFile)
                                     << "config.json";
  }

  void brokenModelFolderLeavesNoOutput() {
    QFETCH(QString, damage);
    QFETCH(int, code);
    QFETCH(QString, needle);
    QTemporaryDir model, out;
    for (const char* f :
         {"config.json", "diffusion_pytorch_model.safetensors", "models_t5_umt5-xxl-enc-bf16.pth", "Wan2.1_VAE.pth"})
      QVERIFY(QFile::copy(fixture() + "/" + f, model.filePath(f)));
    QVERIFY(QDir().mkpath(model.filePath("google/umt5-xxl")));
    QVERIFY(QFile::copy(fixture() + "/google/umt5-xxl/spiece.model", model.filePath("google/umt5-xxl/spiece.model")));
    const QString action = damage.section(':', 0, 0), target = model.filePath(damage.section(':', 1));
    if (action == "remove") QVERIFY(QFile::remove(target));
    if (action == "truncate") QVERIFY(QFile(target).resize(QFileInfo(target).size() / 2));
    if (action == "write") {
      QFile f(target);
      QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
      f.write("{\"dim\": 60, \"num_heads\": 7}");
    }
    const Run r = run_wan(fixture_args(model.path()) << "--output" << out.filePath("clip.mp4") << "--save-latent"
                                                     << out.filePath("l.safetensors"));
    QCOMPARE(r.code, code);
    QVERIFY2(last_line(r.err).startsWith("wan: error: ") && last_line(r.err).contains(needle), qPrintable(r.err));
    QCOMPARE(files_in(out.path()), QStringList());
  }

  // `wan bench` on the demo size: one more block adds exactly one block's parameters (fp32) and the
  // analytic FLOPs of one block; the figures are consistent with each other and the table names the run.
  void benchReportsFigures() {
    QTemporaryDir dir;
    nlohmann::json runs[2];
    for (int layers : {1, 2}) {
      const QString json = dir.filePath(QString("bench%1.json").arg(layers));
      const Run r =
          run_wan({"bench", "--model", "demo", "--size", "64*48", "--frames", "5", "--layers", QString::number(layers),
                   "--warmup", "0", "--forwards", "1", "--steps", "1", "--json", json});
      QVERIFY2(r.code == 0, qPrintable(r.err));
      QVERIFY2(r.out.contains(QString("demo (%1/4 layers) 64x48x5 fp32 cpu").arg(layers)), qPrintable(r.out));
      runs[layers - 1] = nlohmann::json::parse(wan::read_text_file(json.toStdString())).at(0);
    }
    const double d = 256, f = 768, L = 2 * 3 * 4, T = 512;  // demo DiT; 2 latent frames x 3 x 4 patches
    const double block_params = 8 * d * d + 2 * d * f + 21 * d + f;
    const double block_flops = 2 * L * (6 * d * d + 2 * d * f) + 2 * T * 2 * d * d + 4 * L * L * d + 4 * L * T * d;
    QCOMPARE(runs[1]["parameter_bytes"].get<double>() - runs[0]["parameter_bytes"].get<double>(), 4 * block_params);
    QCOMPARE(runs[1]["flops_per_forward"].get<double>() - runs[0]["flops_per_forward"].get<double>(), block_flops);
    for (const auto& run : runs) {
      QCOMPARE(run["tokens"].get<int>(), 24);
      QCOMPARE(run["memory_kind"].get<std::string>(), std::string("cpu_rss"));
      const double s = run["seconds_per_forward"].get<double>();
      QVERIFY(s > 0 && run["seconds_per_step"].get<double>() > 0);
      QVERIFY(qAbs(run["tokens_per_second"].get<double>() * s - 24) < 1e-6);
      QVERIFY(qAbs(run["achieved_tflops"].get<double>() * 1e12 * s - run["flops_per_forward"].get<double>()) < 1);
      QVERIFY(run["peak_memory_bytes"].get<double>() > run["parameter_bytes"].get<double>());
    }
  }

  // The Wan2.2 sizes: 5B's tokens come from the Wan2.2 VAE's 16x stride (64x64 -> 2x2 patches), A14B
  // builds two 14B experts (twice one 14B's parameter bytes); 5B refuses a size the stride does not divide.
  void benchKnowsTheWan22Models() {
    QTemporaryDir dir;
    const QString json = dir.filePath("b.json");
    Run r = run_wan({"bench", "--model", "5B,A14B,14B", "--size", "64*64", "--frames", "1", "--layers", "1", "--warmup",
                     "0", "--forwards", "1", "--steps", "0", "--json", json});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const nlohmann::json runs = nlohmann::json::parse(wan::read_text_file(json.toStdString()));
    QCOMPARE(runs.size(), std::size_t(3));
    QCOMPARE(runs[0]["tokens"].get<int>(), 4);   // 64/16 = 4 latent pixels a side, 2x2 patches
    QCOMPARE(runs[1]["tokens"].get<int>(), 16);  // 64/8 = 8, 2x2 patches
    QCOMPARE(runs[1]["experts"].get<int>(), 2);
    QCOMPARE(runs[1]["parameter_bytes"].get<double>(), 2 * runs[2]["parameter_bytes"].get<double>());
    r = run_wan({"bench", "--model", "5B", "--size", "80*48", "--frames", "1", "--layers", "1"});
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(last_line(r.err).contains("multiples of 32 for 5B"), qPrintable(r.err));
  }

  void estimatePrintsTheEnginesFigures() {
    const std::string demo = wan::demo_model_dir();
    const Run r =
        run_wan({"estimate", "--json", "--device", "cpu", "--model", QString::fromStdString(demo), "--size", "480*272",
                 "--frames", "17", "--world-size", "4", "--ulysses", "2", "--ring", "2", "--dit-fsdp", "--rank", "1"});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const nlohmann::json j = nlohmann::json::parse(r.out.toStdString());
    QCOMPARE(j["rows"].size(), std::size_t(6));  // 1.3B, 14B, T2V-A14B, I2V-A14B, TI2V-5B, the loaded demo model
    QCOMPARE(j["rows"][0]["dit_params"].get<std::int64_t>(), std::int64_t(1418996800));
    // Wan2.2 A14B: two 14B experts; the I2V experts add only the 20 y channels of the patch embedding (no CLIP).
    const nlohmann::json &t2v14 = j["rows"][1], &t2v_a14 = j["rows"][2], &i2v_a14 = j["rows"][3];
    QCOMPARE(t2v_a14["model"].get<std::string>(), std::string("Wan2.2-T2V-A14B"));
    QCOMPARE(t2v_a14["experts"].get<int>(), 2);
    QCOMPARE(t2v_a14["dit_params"].get<std::int64_t>(), t2v14["dit_params"].get<std::int64_t>());
    QCOMPARE(i2v_a14["dit_params"].get<std::int64_t>() - t2v_a14["dit_params"].get<std::int64_t>(),
             std::int64_t(20 * 4 * 5120));
    const auto weights = [](const nlohmann::json& row) {
      return row["cells"][0]["estimate"]["weights_bytes"].get<std::int64_t>();
    };
    QVERIFY(weights(t2v_a14) > weights(t2v14) + t2v14["dit_params"].get<std::int64_t>());  // a second expert
    // The current column is the given layout; its figure is the engine's estimate for rank 1.
    const nlohmann::json& cell = j["rows"][5]["cells"][2];
    QVERIFY(cell["current"].get<bool>());
    QCOMPARE(cell["config"]["ulysses_size"].get<int>(), 2);
    QCOMPARE(cell["config"]["ring_size"].get<int>(), 2);
    wan::EstimateSettings s;
    s.width = 480;
    s.height = 272;
    s.frames = 17;
    s.gpu = false;
    s.config = wan::dist_config_from_json(cell["config"].dump());
    const wan::MemoryEstimate e =
        wan::estimate_memory(wan::inspect_model(wan::ModelFiles{demo, "", "", "", ""}).dims, s, 1);
    QCOMPARE(cell["estimate"]["peak_bytes"].get<std::int64_t>(), e.peak);
    QCOMPARE(cell["estimate"]["vae_decode_bytes"].get<std::int64_t>(), std::int64_t(0));  // rank 1 does not decode
    // Bad input: one line naming the problem.
    const Run bad = run_wan({"estimate", "--frames", "16"});
    QCOMPARE(bad.code, 2);
    QVERIFY2(last_line(bad.err).contains("--frames must be 4n+1"), qPrintable(bad.err));
  }
};

QTEST_APPLESS_MAIN(TestCliGenerate)
#include "tst_cli_generate.moc"
