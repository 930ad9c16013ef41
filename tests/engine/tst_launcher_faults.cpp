// `wan generate --world-size 2` under faults, as a user meets them: a worker killed while sampling or
// decoding, loading or text encoding, a hung worker, Ctrl-C, a taken port, a stale segment. Each run must end promptly
// with a message naming the rank, the phase and the cause, leave no worker process, no shared-memory segment and no
// output.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <QElapsedTimer>
#include <QProcess>
#include <QTcpServer>
#include <optional>
#include <thread>

#include "test_util.h"
#include "wan/generation.h"
#include "wan/progress_board.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

namespace {

bool process_exists(int pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }
QString last_line(const QString& text) { return text.trimmed().section('\n', -1); }

struct Run {
  QProcess process;
  QString run_id;
  QTemporaryDir out;
  std::vector<int> pids;
  QString err;  // stderr read so far
};

QString stderr_of(Run& run) {
  run.err += run.process.readAllStandardError();
  return run.err;
}

}  // namespace

class TestLauncherFaults : public QObject {
  Q_OBJECT
  QTemporaryDir demo_;

  // Starts a 2-rank CPU run on the demo model that samples for several seconds.
  void start(Run& run, const QStringList& extra = {}, bool save_latent = true, const QString& stall = {}) {
    run.run_id = QString("fault-%1-%2").arg(getpid()).arg(QRandomGenerator::global()->generate() % 100000);
    QStringList args = {"generate",
                        "--world-size",
                        "2",
                        "--run-id",
                        run.run_id,
                        "--model",
                        demo_.filePath("demo"),
                        "--prompt",
                        "a fox",
                        "--size",
                        "256*160",
                        "--frames",
                        "17",
                        "--steps",
                        "60",
                        "--seed",
                        "1",
                        "--output",
                        run.out.filePath("clip.mp4")};
    if (save_latent) args << "--save-latent" << run.out.filePath("latent.safetensors");
    if (!stall.isEmpty()) {
      QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
      env.insert("WAN_TEST_STALL_BEFORE", stall);  // the engine's fault injection (dist/communicator.cpp)
      run.process.setProcessEnvironment(env);
    }
    run.process.start(WAN_CLI_PATH, args + extra);
    QVERIFY(run.process.waitForStarted());
  }

  // Waits until `rank` reports `phase` (and at least `step`); records both worker pids.
  bool wait_for(Run& run, int rank, wan::Phase phase, int step = 0) {
    QElapsedTimer timer;
    timer.start();
    while (timer.elapsed() < 120000) {
      try {
        wan::ProgressBoard board = wan::ProgressBoard::open(run.run_id.toStdString());
        const wan::RankStatus s = board.read(rank);
        run.pids = {board.read(0).pid, board.read(1).pid};
        if (s.phase == static_cast<int>(phase) && s.step >= step) return true;
      } catch (const wan::Error&) {
      }
      if (run.process.state() == QProcess::NotRunning) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Waits until the run's progress board exists (the launcher has checked the job and starts workers).
  bool wait_for_board(Run& run) {
    QElapsedTimer timer;
    timer.start();
    while (timer.elapsed() < 60000 && run.process.state() != QProcess::NotRunning) {
      if (QFile::exists("/dev/shm/wan-studio-" + run.run_id)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }

  // Catches `rank` in `phase` (polling the board every millisecond), freezes it with SIGSTOP and
  // checks it is still there. The demo model loads and encodes in tens of milliseconds, so a worker
  // may have moved on by the time the signal lands: then it is thawed and false returned (the caller
  // starts another run).
  bool freeze_in(Run& run, int rank, wan::Phase phase) {
    QElapsedTimer timer;
    timer.start();
    std::optional<wan::ProgressBoard> board;
    while (timer.elapsed() < 60000 && run.process.state() != QProcess::NotRunning) {
      if (!board) {
        try {
          board.emplace(wan::ProgressBoard::open(run.run_id.toStdString()));
        } catch (const wan::Error&) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
      }
      const wan::RankStatus s = board->read(rank);
      if (s.phase >= static_cast<int>(wan::Phase::kSampling)) return false;  // text and loading come before
      if (s.phase == static_cast<int>(phase) && s.pid > 0) {
        kill(s.pid, SIGSTOP);
        run.pids = {board->read(0).pid, board->read(1).pid};
        if (board->read(rank).phase == static_cast<int>(phase)) return true;
        kill(s.pid, SIGCONT);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    return false;
  }

  // A rank killed in an early phase (loading, text encoding) with the DiT and umT5 sharded, so the
  // other rank waits for it in a collective.
  void killIn(wan::Phase phase, const char* name) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      Run run;
      start(run, {"--dit-fsdp", "--t5-fsdp", "--steps", "2"});
      if (!freeze_in(run, 1, phase)) {
        kill(static_cast<pid_t>(run.process.processId()), SIGINT);
        run.process.waitForFinished(20000);
        continue;
      }
      kill(run.pids[1], SIGKILL);
      expect_clean_end(run, static_cast<int>(wan::ErrorCode::kCommunication),
                       QString("rank 1 failed while %1: killed by signal 9").arg(name));
      return;
    }
    QFAIL("never caught rank 1 in that phase in 8 runs");
  }

  // The run ends within `seconds` with `code` and a message containing `needle`, and leaves nothing.
  void expect_clean_end(Run& run, int code, const QString& needle, int seconds = 10, const QStringList& kept = {}) {
    QElapsedTimer timer;
    timer.start();
    QVERIFY2(run.process.waitForFinished(seconds * 1000), "the run did not stop in time");
    const QString err = stderr_of(run);
    QCOMPARE(run.process.exitCode(), code);
    QVERIFY2(last_line(err).startsWith("wan: error: ") && last_line(err).contains(needle), qPrintable(err));
    for (int pid : run.pids) QVERIFY2(!process_exists(pid), qPrintable(QString("worker %1 left running").arg(pid)));
    QVERIFY(!QFile::exists("/dev/shm/wan-studio-" + run.run_id));
    QCOMPARE(QDir(run.out.path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden), kept);
  }

 private slots:
  void initTestCase() {
    QProcess make;
    make.start(WAN_CLI_PATH, {"make-demo-model", demo_.filePath("demo")});
    QVERIFY(make.waitForFinished(120000) && make.exitCode() == 0);
  }

  // The pipeline fixture through `wan generate --world-size 2 --cfg-parallel`: the reference latent,
  // the video and its sidecar, no leftover latent copy, no segment.
  void successfulRun() {
    QTemporaryDir out;
    const QString run_id = QString("ok-%1").arg(getpid());
    const std::string dir = wan_test::golden("t2v_pipeline_small");
    QProcess p;
    p.start(WAN_CLI_PATH, {"generate",
                           "--world-size",
                           "2",
                           "--cfg-parallel",
                           "--run-id",
                           run_id,
                           "--model",
                           QString::fromStdString(dir),
                           "--prompt",
                           "a red fox runs through the snowy forest at dawn",
                           "--negative",
                           "static, blurry, low quality",
                           "--size",
                           "64*48",
                           "--frames",
                           "9",
                           "--steps",
                           "6",
                           "--seed",
                           "42",
                           "--dtype",
                           "fp32",
                           "--output",
                           out.filePath("clip.mp4"),
                           "--save-latent",
                           out.filePath("latent.safetensors")});
    QVERIFY(p.waitForFinished(120000));
    const QString log = p.readAllStandardError();
    QVERIFY2(p.exitCode() == 0, qPrintable(log));
    QVERIFY2(log.contains("rank 1: done"), qPrintable(log));
    const double err =
        wan_test::rel_l2(wan::SafetensorsFile::open(out.filePath("latent.safetensors").toStdString())->view("latent"),
                         wan::SafetensorsFile::open(dir + "/io.safetensors")->view("final_latent"));
    QVERIFY2(err < 1e-5, std::to_string(err).c_str());
    QCOMPARE(QDir(out.path()).entryList(QDir::Files, QDir::Name),
             QStringList({"clip.json", "clip.mp4", "latent.safetensors"}));
    QVERIFY(!QFile::exists("/dev/shm/wan-studio-" + run_id));
  }

  void workerKilledWhileSampling() {
    Run run;
    start(run);
    QVERIFY(wait_for(run, 1, wan::Phase::kSampling, 1));
    kill(run.pids[1], SIGKILL);
    expect_clean_end(run, static_cast<int>(wan::ErrorCode::kCommunication),
                     "rank 1 failed while sampling: killed by signal 9");
  }

  // The latent was saved before decoding: it stays (complete), and the message says how to decode it.
  void workerKilledWhileDecoding_data() {
    QTest::addColumn<bool>("saveLatent");
    QTest::newRow("--save-latent") << true;
    QTest::newRow("no --save-latent") << false;
  }
  void workerKilledWhileDecoding() {
    QFETCH(bool, saveLatent);
    Run run;
    start(run, {"--steps", "2"}, saveLatent);
    QVERIFY(wait_for(run, 0, wan::Phase::kDecoding));
    kill(run.pids[0], SIGKILL);
    const QString latent = saveLatent ? "latent.safetensors" : "clip.latent.safetensors";
    expect_clean_end(
        run, static_cast<int>(wan::ErrorCode::kCommunication),
        "rank 0 failed while decoding the latent (VAE): killed by signal 9 (Killed); the other ranks were stopped; the "
        "sampled latent is kept in " +
            run.out.filePath(latent),
        10, {latent});
    QVERIFY(QFile::exists(run.out.filePath(latent)));
  }

  void workerKilledWhileEncodingText() { killIn(wan::Phase::kEncodingText, "encoding the prompt"); }
  void workerKilledWhileLoading() { killIn(wan::Phase::kLoading, "loading the DiT"); }

  // An earlier latent under the --save-latent name (replaced with --overwrite only by a run that gets
  // that far) is not this run's sampling: a run that fails while loading neither removes it nor says
  // "the sampled latent is kept in" it.
  void earlierLatentIsNotClaimed() {
    for (int attempt = 0; attempt < 8; ++attempt) {
      Run run;
      QFile earlier(run.out.filePath("latent.safetensors"));
      QVERIFY(earlier.open(QIODevice::WriteOnly));
      earlier.write("an earlier run's latent");
      earlier.close();
      start(run, {"--overwrite", "--dit-fsdp", "--t5-fsdp", "--steps", "2"});
      if (!freeze_in(run, 1, wan::Phase::kLoading)) {
        kill(static_cast<pid_t>(run.process.processId()), SIGINT);
        run.process.waitForFinished(20000);
        continue;
      }
      kill(run.pids[1], SIGKILL);
      expect_clean_end(run, static_cast<int>(wan::ErrorCode::kCommunication), "rank 1 failed while loading", 10,
                       {"latent.safetensors"});
      QVERIFY2(!stderr_of(run).contains("kept in"), qPrintable(stderr_of(run)));
      QCOMPARE(wan::read_text_file(run.out.filePath("latent.safetensors").toStdString()),
               std::string("an earlier run's latent"));
      return;
    }
    QFAIL("never caught rank 1 while loading in 8 runs");
  }

  // A supervisor that crashed left its segment under the run id a new run asks for: the launcher
  // finds it stale, removes it and runs; nothing is left afterwards.
  void staleSegmentOfACrashedRun() {
    const QString run_id = QString("stale-%1").arg(getpid());
    const pid_t child = fork();
    if (child == 0) {
      try {
        wan::ProgressBoard b = wan::ProgressBoard::create(run_id.toStdString(), 2);
        _exit(0);  // dies without unlinking
      } catch (...) {
        _exit(3);
      }
    }
    int status = 0;
    QCOMPARE(waitpid(child, &status, 0), child);
    QCOMPARE(WEXITSTATUS(status), 0);
    QVERIFY(QFile::exists("/dev/shm/wan-studio-" + run_id));
    QTemporaryDir out;
    QProcess p;
    p.start(WAN_CLI_PATH,
            {"generate", "--world-size", "2", "--run-id", run_id, "--model", demo_.filePath("demo"), "--prompt",
             "a fox", "--size", "64*48", "--frames", "5", "--steps", "2", "--output", out.filePath("clip.mp4")});
    QVERIFY(p.waitForFinished(120000));
    QVERIFY2(p.exitCode() == 0, qPrintable(p.readAllStandardError()));
    QVERIFY(QFile::exists(out.filePath("clip.mp4")));
    QVERIFY(!QFile::exists("/dev/shm/wan-studio-" + run_id));
  }

  // A rank ended by a signal while it writes (the launcher's SIGTERM, or PR_SET_PDEATHSIG when the
  // launcher itself was killed) removes its half-written "<output>.part-<pid>" before it dies.
  void partialOutputRemovedWhenASignalEndsTheRank() {
    QTemporaryDir out;
    const std::string path = out.filePath("clip.mp4").toStdString();
    int ready[2];
    QCOMPARE(pipe(ready), 0);
    const pid_t child = fork();
    if (child == 0) {
      wan::remove_partial_files_on_termination();
      wan::AtomicFileWriter writer(path);
      writer.write("half a video", 12);
      std::fflush(nullptr);
      (void)!write(ready[1], "x", 1);
      for (;;) pause();
    }
    close(ready[1]);
    char c = 0;
    QCOMPARE(read(ready[0], &c, 1), ssize_t(1));
    close(ready[0]);
    const QString partial = QString::fromStdString(path) + ".part-" + QString::number(child);
    QVERIFY(QFile::exists(partial));
    kill(child, SIGTERM);
    int status = 0;
    QCOMPARE(waitpid(child, &status, 0), child);
    QVERIFY(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);  // still ended by the signal
    QVERIFY(!QFile::exists(partial));
    QVERIFY(!QFile::exists(QString::fromStdString(path)));
  }

  // A frozen process (SIGSTOP) makes no progress: after the hang timeout the watchdog names it.
  void hungWorker() {
    Run run;
    start(run, {"--hang-timeout", "4"});
    QVERIFY(wait_for(run, 1, wan::Phase::kSampling, 1));
    kill(run.pids[1], SIGSTOP);
    expect_clean_end(run, static_cast<int>(wan::ErrorCode::kCommunication),
                     "rank 1 failed while sampling: stopped responding: no progress for 4 s", 20);
    QVERIFY(last_line(stderr_of(run)).contains("stopped by a signal"));
  }

  // A rank blocked before an all-to-all while its process lives (a driver or a bug): its peer waits
  // inside the collective, which progress marks show; the watchdog ends the run within the hang
  // timeout and names the blocked rank, its phase and the collective its peer waits in.
  void rankBlockedBeforeAnAllToAll() {
    Run run;
    QElapsedTimer timer;
    timer.start();
    start(run, {"--ulysses", "2", "--hang-timeout", "5"}, true, "all_to_all:1:3");
    QVERIFY(wait_for(run, 1, wan::Phase::kSampling));
    expect_clean_end(
        run, static_cast<int>(wan::ErrorCode::kCommunication),
        "rank 1 failed while sampling: stopped responding: no progress for 5 s while sampling (step 0 of 60), "
        "outside any collective",
        30);
    const QString err = last_line(stderr_of(run));
    QVERIFY2(err.contains("rank 0 waits in all_to_all (collective #"), qPrintable(err));
    QVERIFY2(timer.elapsed() < 40000, "the hang was not detected in time");
  }

  void ctrlC() {
    Run run;
    start(run);
    QVERIFY(wait_for(run, 0, wan::Phase::kSampling, 1));
    kill(static_cast<pid_t>(run.process.processId()), SIGINT);
    expect_clean_end(run, static_cast<int>(wan::ErrorCode::kCancelled), "cancelled");
  }

  // Ctrl-C on a terminal reaches the whole foreground process group: the launcher alone must see it
  // (its workers have a group of their own), so the run is cancelled, not failed by a killed rank.
  // Ten tries, the signal landing at a different moment of each run (from the board's creation on:
  // the launch, text encoding, loading, sampling): exit 9 "cancelled" every time.
  void ctrlCToTheProcessGroup() {
    for (int attempt = 0; attempt < 10; ++attempt) {
      Run run;
      run.process.setChildProcessModifier([] { setpgid(0, 0); });  // as a shell puts a job in its own group
      start(run);
      QVERIFY(wait_for_board(run));
      std::this_thread::sleep_for(std::chrono::milliseconds(250 * attempt));
      kill(-static_cast<pid_t>(run.process.processId()), SIGINT);
      expect_clean_end(run, static_cast<int>(wan::ErrorCode::kCancelled), "cancelled");
      if (QTest::currentTestFailed()) qWarning("failed at attempt %d of 10", attempt + 1);
      if (QTest::currentTestFailed()) return;
    }
  }

  // Ctrl-C once the sampling is done: rank 0 stops decoding, keeps the latent, and the launcher's
  // message says where, as a run of one process does.
  void ctrlCWhileDecodingNamesTheLatent() {
    Run run;
    start(run, {"--steps", "2", "--size", "832*480"}, false);
    QVERIFY(wait_for(run, 0, wan::Phase::kDecoding));
    kill(static_cast<pid_t>(run.process.processId()), SIGINT);
    const QString latent = run.out.filePath("clip.latent.safetensors");
    expect_clean_end(
        run, static_cast<int>(wan::ErrorCode::kCancelled),
        "cancelled (the sampled latent is kept in " + latent + ": finish with `wan generate --decode-latent " + latent,
        20, {"clip.latent.safetensors"});
  }

  // A second Ctrl-C does not wait for the end of the step: the workers are stopped at once. Rank 1
  // stalls in its third all_to_all (the engine's fault injection), so the step never ends and the first
  // Ctrl-C alone would wait out the launcher's 10 s cancel grace.
  void secondCtrlCStopsAtOnce() {
    Run run;
    run.process.setChildProcessModifier([] { setpgid(0, 0); });
    start(run, {"--ulysses", "2"}, true, "all_to_all:1:3");
    QVERIFY(wait_for(run, 1, wan::Phase::kSampling));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    kill(-static_cast<pid_t>(run.process.processId()), SIGINT);
    QVERIFY2(!run.process.waitForFinished(1500), "the first Ctrl-C alone should wait for the stalled step");
    QElapsedTimer timer;
    timer.start();
    kill(-static_cast<pid_t>(run.process.processId()), SIGINT);
    expect_clean_end(run, static_cast<int>(wan::ErrorCode::kCancelled), "cancelled");
    QVERIFY2(timer.elapsed() < 4000, qPrintable(QString("took %1 ms").arg(timer.elapsed())));
  }

  void portInUse() {
    QTcpServer taken;
    QVERIFY(taken.listen(QHostAddress::Any, 0));
    Run run;
    start(run, {"--master-port", QString::number(taken.serverPort())});
    expect_clean_end(run, static_cast<int>(wan::ErrorCode::kCommunication), "in use");
  }
};

QTEST_APPLESS_MAIN(TestLauncherFaults)
#include "tst_launcher_faults.moc"
