// `wan-worker` as cluster launchers start it: the rank and rendezvous come from the environment
// (torchrun, Slurm, Open MPI variables), one process per rank talking over gloo. The pipeline fixture
// run this way gives the reference final latent, and rank 0 alone writes the outputs.
#include <QProcess>
#include <QTcpServer>
#include <QThread>
#include <map>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "wan/worker_env.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

namespace {

int free_port() {
  QTcpServer s;
  s.listen(QHostAddress::LocalHost, 0);
  return s.serverPort();
}

QStringList fixture_generate_args(const QString& out_dir) {
  const std::string dir = wan_test::golden("t2v_pipeline_small");
  const auto run = nlohmann::json::parse(wan::read_text_file(dir + "/run.json"));
  auto num = [&](const char* k) { return QString::number(run.at(k).get<double>()); };
  return {"generate",
          "--model",
          QString::fromStdString(dir),
          "--prompt",
          QString::fromStdString(run.at("prompt").get<std::string>()),
          "--negative",
          QString::fromStdString(run.at("negative_prompt").get<std::string>()),
          "--width",
          num("width"),
          "--height",
          num("height"),
          "--frames",
          num("frames"),
          "--steps",
          num("steps"),
          "--shift",
          num("shift"),
          "--guidance",
          num("guide_scale"),
          "--seed",
          num("seed"),
          "--dtype",
          "fp32",
          "--save-latent",
          out_dir + "/latent.safetensors",
          "--output",
          out_dir + "/clip.mp4"};
}

// Starts one rank as torchrun does: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in its environment (and
// `extra` variables), then `wan-worker <args>`.
std::unique_ptr<QProcess> start_rank(int rank, int world, int port, const QStringList& args,
                                     const std::map<QString, QString>& extra = {}) {
  auto p = std::make_unique<QProcess>();
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert("RANK", QString::number(rank));
  env.insert("WORLD_SIZE", QString::number(world));
  env.insert("MASTER_ADDR", "127.0.0.1");
  env.insert("MASTER_PORT", QString::number(port));
  for (const auto& [key, value] : extra) env.insert(key, value);
  p->setProcessEnvironment(env);
  p->start(WAN_WORKER_PATH, args);
  return p;
}

}  // namespace

class TestWorkerProcesses : public QObject {
  Q_OBJECT
 private slots:
  void environmentOfEachLauncher() {
    using Env = std::map<std::string, std::string>;
    wan::WorkerEnv w = wan::worker_env_from(Env{{"RANK", "3"},
                                                {"WORLD_SIZE", "4"},
                                                {"LOCAL_RANK", "1"},
                                                {"MASTER_ADDR", "10.0.0.5"},
                                                {"MASTER_PORT", "29600"}});
    QCOMPARE(w.launcher, std::string("torchrun"));
    QCOMPARE(w.rank, 3);
    QCOMPARE(w.local_rank, 1);
    QCOMPARE(w.master_addr, std::string("10.0.0.5"));
    QCOMPARE(w.master_port, 29600);
    w = wan::worker_env_from(
        Env{{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}, {"MASTER_ADDR", "node1"}});
    QCOMPARE(w.launcher, std::string("slurm"));
    QCOMPARE(w.rank, 5);
    QCOMPARE(w.world_size, 8);
    QCOMPARE(w.master_port, 29500);
    w = wan::worker_env_from(Env{{"OMPI_COMM_WORLD_RANK", "1"},
                                 {"OMPI_COMM_WORLD_SIZE", "2"},
                                 {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                 {"MASTER_ADDR", "a"}});
    QCOMPARE(w.launcher, std::string("mpirun"));
    QCOMPARE(w.world_size, 2);
    w = wan::worker_env_from(Env{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"WAN_RUN_ID", "r1"}, {"WAN_STORE_HOSTED", "1"}});
    QVERIFY(w.launcher == "wan" && w.store_hosted && w.run_id == "r1");
    QCOMPARE(wan::worker_env_from(Env{}).world_size, 1);
    wan_test::expect_error(
        [] {
          wan::worker_env_from(Env{{"RANK", "2"}, {"WORLD_SIZE", "2"}});
        },
        wan::ErrorCode::kInvalidArgument, {"RANK=2 is out of range for WORLD_SIZE=2"});
    wan_test::expect_error(
        [] {
          wan::worker_env_from(Env{{"RANK", "x"}});
        },
        wan::ErrorCode::kInvalidArgument, {"RANK='x'"});
    wan_test::expect_error(
        [] {
          wan::worker_env_from(Env{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}});
        },
        wan::ErrorCode::kInvalidArgument, {"MASTER_ADDR is not set"});
    wan_test::expect_error(
        [] {
          wan::worker_env_from(Env{{"RANK", "0"}, {"MASTER_PORT", "70000"}});
        },
        wan::ErrorCode::kInvalidArgument, {"not a TCP port"});
  }

  void torchrunStyleWorld_data() {
    QTest::addColumn<QString>("config");
    QTest::newRow("2: cfg parallel") << R"({"world_size": 2, "backend": "gloo", "cfg_parallel": true})";
    QTest::newRow("4: cfg x ulysses 2")
        << R"({"world_size": 4, "backend": "gloo", "cfg_parallel": true, "use_context_parallel": true, "ulysses_size": 2})";
    QTest::newRow("4: ulysses 2 x ring 2")
        << R"({"world_size": 4, "backend": "gloo", "use_usp": true, "ulysses_size": 2, "ring_size": 2})";
  }
  void torchrunStyleWorld() {
    QFETCH(QString, config);
    const int world = static_cast<int>(nlohmann::json::parse(config.toStdString()).at("world_size").get<int>());
    QTemporaryDir dir;
    QFile f(dir.filePath("dist.json"));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(config.toUtf8());
    f.close();
    const QString out = dir.filePath("out");
    QVERIFY(QDir().mkpath(out));
    const int port = free_port();
    std::vector<std::unique_ptr<QProcess>> procs;
    for (int r = 0; r < world; ++r)
      procs.push_back(start_rank(
          r, world, port,
          QStringList{"--threads", "1", "--dist-config", dir.filePath("dist.json")} + fixture_generate_args(out),
          {{"LOCAL_RANK", QString::number(r)}}));
    for (int r = 0; r < world; ++r) {
      QVERIFY(procs[r]->waitForFinished(240000));
      QVERIFY2(procs[r]->exitCode() == 0, procs[r]->readAllStandardError().constData());
    }
    const std::string d = wan_test::golden("t2v_pipeline_small");
    auto latent = wan::SafetensorsFile::open((out + "/latent.safetensors").toStdString());
    const double err = wan_test::rel_l2(latent->view("latent"),
                                        wan::SafetensorsFile::open(d + "/io.safetensors")->view("final_latent"));
    QVERIFY2(err < 1e-5, std::to_string(err).c_str());
    // Rank 0 wrote the video, the sidecar (with the world layout) and the latent; nothing else is there.
    QCOMPARE(QDir(out).entryList(QDir::Files | QDir::Hidden, QDir::Name),
             QStringList({"clip.json", "clip.mp4", "latent.safetensors"}));
    const auto sidecar = nlohmann::json::parse(wan::read_text_file((out + "/clip.json").toStdString()));
    QCOMPARE(sidecar.at("config").at("world_size").get<int>(), world);
  }

  // torchrun users type the distributed flags of `wan generate` after `generate`: the worker takes them
  // (one option table), gives the reference latent, and refuses what a rank cannot use.
  void distributedFlagsOnTheWorker() {
    QTemporaryDir dir;
    const QString out = dir.filePath("out");
    QVERIFY(QDir().mkpath(out));
    const int port = free_port();
    std::vector<std::unique_ptr<QProcess>> procs;
    for (int r = 0; r < 2; ++r)
      procs.push_back(start_rank(r, 2, port,
                                 QStringList{"--threads", "1"} + fixture_generate_args(out) +
                                     QStringList{"--ulysses", "2", "--hang-timeout", "120"}));
    for (auto& p : procs) {
      QVERIFY(p->waitForFinished(240000));
      QVERIFY2(p->exitCode() == 0, p->readAllStandardError().constData());
    }
    const auto sidecar = nlohmann::json::parse(wan::read_text_file((out + "/clip.json").toStdString()));
    QCOMPARE(sidecar.at("config").at("ulysses_size").get<int>(), 2);
    QCOMPARE(sidecar.at("config").at("hang_timeout_seconds").get<int>(), 120);
    const std::string d = wan_test::golden("t2v_pipeline_small");
    auto latent = wan::SafetensorsFile::open((out + "/latent.safetensors").toStdString());
    QVERIFY(wan_test::rel_l2(latent->view("latent"),
                             wan::SafetensorsFile::open(d + "/io.safetensors")->view("final_latent")) < 1e-5);

    QProcess refused;
    refused.start(WAN_WORKER_PATH, fixture_generate_args(dir.filePath("none")) << "--master-port"
                                                                               << "29511");
    QVERIFY(refused.waitForFinished(60000));
    QCOMPARE(refused.exitCode(), static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY(QString(refused.readAllStandardError()).contains("the launcher sets MASTER_PORT"));
  }

  void configWorldMismatch() {
    QTemporaryDir dir;
    QFile f(dir.filePath("dist.json"));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"({"world_size": 4, "backend": "gloo"})");
    f.close();
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("RANK", "0");
    env.insert("WORLD_SIZE", "2");
    env.insert("MASTER_PORT", QString::number(free_port()));
    p.setProcessEnvironment(env);
    p.start(WAN_WORKER_PATH,
            QStringList{"--dist-config", dir.filePath("dist.json")} + fixture_generate_args(dir.path()));
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 2);
    const QString err = p.readAllStandardError();
    QVERIFY2(err.contains("says world_size 4 but the launcher (torchrun) started 2 ranks"), qPrintable(err));
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files), QStringList({"dist.json"}));
  }

  // A rank started well after the others (a slow node, a late srun task) is waited for at the
  // rendezvous, which counts as waiting for peers, not as a hang, whatever the hang timeout.
  void latePeerIsNotAHang() {
    QTemporaryDir dir;
    QFile f(dir.filePath("dist.json"));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"({"world_size": 2, "backend": "gloo", "cfg_parallel": true, "hang_timeout_seconds": 2})");
    f.close();
    const QString out = dir.filePath("out");
    QVERIFY(QDir().mkpath(out));
    // A port found free can be taken by another test's process before rank 0 binds it: then again.
    for (int attempt = 0; attempt < 3; ++attempt) {
      const int port = free_port();
      std::vector<std::unique_ptr<QProcess>> procs;
      for (int r = 0; r < 2; ++r) {
        if (r == 1) QThread::sleep(5);  // rank 0 waits longer than the hang timeout
        procs.push_back(start_rank(
            r, 2, port,
            QStringList{"--threads", "1", "--dist-config", dir.filePath("dist.json")} + fixture_generate_args(out)));
      }
      QStringList errors;
      bool ok = true;
      for (auto& p : procs) {
        QVERIFY(p->waitForFinished(240000));
        errors << p->readAllStandardError();
        ok = ok && p->exitCode() == 0;
      }
      if (ok) return;
      if (!errors.join("").contains("EADDRINUSE")) QFAIL(qPrintable(errors.join("\n")));
    }
    QFAIL("the rendezvous port was taken three times");
  }

  // Under torchrun nothing watches the ranks but themselves: a rank blocked before an all-to-all (its
  // process alive) ends itself after the config's hang timeout with a message naming its phase and
  // collectives; its peer, waiting in the all-to-all, then fails instead of waiting for the collective
  // timeout. Nothing is written.
  void unwatchedRankEndsItselfWhenHung() {
    QTemporaryDir dir;
    QFile f(dir.filePath("dist.json"));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(
        R"({"world_size": 2, "backend": "gloo", "use_context_parallel": true, "ulysses_size": 2, "hang_timeout_seconds": 3})");
    f.close();
    const QString out = dir.filePath("out");
    QVERIFY(QDir().mkpath(out));
    const int port = free_port();
    QElapsedTimer timer;
    timer.start();
    std::vector<std::unique_ptr<QProcess>> procs;
    for (int r = 0; r < 2; ++r)  // WAN_TEST_STALL_BEFORE: the engine's fault injection
      procs.push_back(start_rank(
          r, 2, port,
          QStringList{"--threads", "1", "--dist-config", dir.filePath("dist.json")} + fixture_generate_args(out),
          {{"WAN_TEST_STALL_BEFORE", "all_to_all:1:3"}}));
    for (auto& p : procs) QVERIFY(p->waitForFinished(60000));
    QVERIFY2(timer.elapsed() < 45000, "the hung rank was not ended in time");
    const QString err1 = procs[1]->readAllStandardError();
    QCOMPARE(procs[1]->exitCode(), static_cast<int>(wan::ErrorCode::kCommunication));
    QVERIFY2(err1.contains("wan: error: rank 1: stopped responding: no progress for 3 s while sampling (step 0 of ") &&
                 err1.contains("outside any collective"),
             qPrintable(err1));
    QVERIFY(procs[0]->exitCode() != 0);
    QVERIFY(QDir(out).entryList(QDir::Files | QDir::Hidden).isEmpty());
  }
};

QTEST_APPLESS_MAIN(TestWorkerProcesses)
#include "tst_worker_processes.moc"
