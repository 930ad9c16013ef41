// The job codec as the four front doors use it: the same request from CLI flags, from the studio's
// form, through a job file and back from a sidecar; the same defaults resolved by the CLI and the
// studio; t5_cpu carried by the config from every source. No torch (a client of the public API).
#include <CLI/CLI.hpp>
#include <QJsonDocument>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "config_form.h"
#include "generation_form.h"
#include "job_flags.h"
#include "wan/error.h"
#include "wan/job.h"
#include "wan/model_info.h"

namespace {

// `wan generate <args>` parsed by the CLI's own flag definitions.
wan::Job parse_cli(const std::vector<std::string>& args) {
  CLI::App app;
  wan_cli::JobFlags flags;
  CLI::App* generate = wan_cli::add_generate_command(app, flags);
  std::vector<std::string> argv = {"wan", "generate"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<const char*> c;
  for (const auto& a : argv) c.push_back(a.c_str());
  app.parse(static_cast<int>(c.size()), c.data());
  if (!generate->parsed()) throw std::runtime_error("generate not parsed");
  return wan_cli::job_from_flags(flags);
}

// Only what the studio's form holds (the window adds model files, device and output).
wan::GenerationRequest form_part(wan::GenerationRequest r) {
  r.model = {};
  r.output.clear();
  r.device = wan::Device{};
  r.dtype = wan::Dtype::kAuto;
  r.cpu_noise = false;
  r.fp8_weights = wan::Fp8Weights::kDequantize;  // the model panel's
  r.fps = 16;
  r.crf = 19;
  return r;
}

}  // namespace

class TestJob : public QObject {
  Q_OBJECT
 private slots:
  void requestRoundTrips() {
    QTemporaryDir tmp;
    const wan::Job cli = parse_cli({"--prompt",    "a fox in the snow",
                                    "--negative",  "blurry",
                                    "--size",      "128*96",
                                    "--frames",    "9",
                                    "--steps",     "3",
                                    "--shift",     "4.5",
                                    "--guidance",  "6",
                                    "--seed",      "11",
                                    "--sampler",   "dpm++",
                                    "--dtype",     "fp32",
                                    "--device",    "cpu",
                                    "--cpu-noise", "--fp8-weights",
                                    "keep",        "--lora-allow-partial",
                                    "--fps",       "12",
                                    "--crf",       "23",
                                    "--output",    tmp.filePath("fox.mp4").toStdString(),
                                    "--model",     wan::demo_model_dir()});
    const wan::GenerationRequest& r = cli.request;
    QCOMPARE(r.width, 128);
    QCOMPARE(r.height, 96);
    QCOMPARE(r.steps.value(), 3);
    QCOMPARE(r.shift.value(), 4.5);
    QCOMPARE(r.guidance.value(), 6.0);
    QVERIFY(r.fp8_weights == wan::Fp8Weights::kKeep);
    QVERIFY(r.model.lora_allow_partial);

    // Job file: every field, the config too.
    wan::Job with_config = cli;
    with_config.run_id = "r-1";
    with_config.config.world_size = 2;
    with_config.config.cfg_parallel = true;
    with_config.config.hang_timeout_seconds = 42;
    const std::string path = tmp.filePath("job.json").toStdString();
    wan::save_job(path, with_config);
    const wan::Job loaded = wan::load_job(path);
    QCOMPARE(wan::job_to_json(loaded), wan::job_to_json(with_config));
    QCOMPARE(loaded.config.hang_timeout_seconds, 42);

    // The studio's form: what it holds comes back unchanged.
    wan_ui::GenerationForm form;
    form.setRequest(r);
    QCOMPARE(wan::request_to_json(form_part(form.request())), wan::request_to_json(form_part(r)));

    // The sidecar of a real run of that request (the demo model): the request as it ran.
    const wan::GenerationResult result = wan::generate(r);
    QFile side(QString::fromStdString(result.sidecar_path));
    QVERIFY(side.open(QIODevice::ReadOnly));
    const wan::Job ran = wan::job_from_sidecar(side.readAll().toStdString());
    QCOMPARE(wan::request_to_json(ran.request), wan::request_to_json(r));
  }

  void notGivenStaysNotGiven() {
    const wan::Job cli = parse_cli({"--prompt", "x"});
    QVERIFY(!cli.request.steps && !cli.request.shift && !cli.request.guidance);
    const wan::GenerationRequest back = wan::request_from_json(wan::request_to_json(cli.request));
    QVERIFY(!back.steps && !back.shift && !back.guidance);
    wan_ui::GenerationForm form;
    QVERIFY(!form.request().steps && !form.request().shift && !form.request().guidance);  // a new form: "default"
  }

  // generate.py's image-to-video defaults (40 steps; shift 3 at 832*480), the same from both front ends.
  void cliAndStudioResolveTheSameDefaults_data() {
    QTest::addColumn<int>("width");
    QTest::addColumn<int>("height");
    QTest::addColumn<bool>("i2v");
    QTest::addColumn<int>("steps");
    QTest::addColumn<double>("shift");
    QTest::newRow("t2v 832*480") << 832 << 480 << false << 50 << 5.0;
    QTest::newRow("i2v 832*480") << 832 << 480 << true << 40 << 3.0;
    QTest::newRow("i2v 480*832") << 480 << 832 << true << 40 << 3.0;
    QTest::newRow("i2v 1280*720") << 1280 << 720 << true << 40 << 5.0;
  }
  void cliAndStudioResolveTheSameDefaults() {
    QFETCH(int, width);
    QFETCH(int, height);
    QFETCH(bool, i2v);
    QFETCH(int, steps);
    QFETCH(double, shift);
    const QString picture = QString(WAN_TEST_DATA_DIR) + "/golden/i2v_pipeline_small/input.png";
    std::vector<std::string> args = {"--prompt", "x", "--size", std::to_string(width) + "*" + std::to_string(height)};
    if (i2v) args.insert(args.end(), {"--image", picture.toStdString()});
    const wan::GenerationRequest cli = wan::resolve_defaults(parse_cli(args).request);

    wan_ui::GenerationForm form;
    form.setImageToVideo(i2v);
    wan::GenerationRequest r;
    r.prompt = "x";
    r.width = width;
    r.height = height;
    form.setRequest(r);
    if (i2v) form.setStartImage(picture);
    const wan::GenerationRequest studio = wan::resolve_defaults(form.request());
    QCOMPARE(cli.steps.value(), steps);
    QCOMPARE(cli.shift.value(), shift);
    QCOMPARE(studio.steps.value(), steps);
    QCOMPARE(studio.shift.value(), shift);
    QCOMPARE(studio.guidance.value(), cli.guidance.value());
  }

  // t5_cpu has one owner, the config: every front end puts it there and the request has no copy.
  void t5CpuLivesInTheConfig() {
    QVERIFY(parse_cli({"--prompt", "x", "--t5-cpu"}).config.t5_cpu);
    QVERIFY(!parse_cli({"--prompt", "x"}).config.t5_cpu);
    const wan::Job preset =
        parse_cli({"--prompt", "x", "--dist-config", std::string(WAN_PRESETS_DIR) + "/memory-efficient.json"});
    QVERIFY(preset.config.t5_cpu);
    wan_ui::ConfigForm form;
    wan::DistConfig c;
    c.t5_cpu = true;
    form.setConfig(c);
    QVERIFY(form.config().t5_cpu);
    wan::Job job;
    job.config = form.config();
    QVERIFY(wan::job_from_json(wan::job_to_json(job)).config.t5_cpu);
  }

  void malformedJobsAreNamed_data() {
    QTest::addColumn<QString>("json");
    QTest::addColumn<QString>("needle");
    QTest::newRow("not json") << "{"
                              << "not valid JSON";
    QTest::newRow("format") << R"({"format": "other"})"
                            << "not a job file";
    QTest::newRow("unknown field") << R"({"format": "wan-studio-job/1", "request": {"stepz": 3}})"
                                   << "unknown request field 'stepz'";
    QTest::newRow("wrong type") << R"({"format": "wan-studio-job/1", "request": {"steps": "many"}})"
                                << "request field steps: expected a whole number";
    QTest::newRow("model") << R"({"format": "wan-studio-job/1", "request": {"model": {"dit": 3}}})"
                           << "request.model field dit";
    QTest::newRow("config") << R"({"format": "wan-studio-job/1", "config": {"hang_timeout_seconds": true}})"
                            << "hang_timeout_seconds";
    QTest::newRow("beyond int") << R"({"format": "wan-studio-job/1", "request": {"steps": 4294967298}})"
                                << "request field steps: 4294967298 is out of range";
    QTest::newRow("a sidecar") << R"({"format": "wan-studio-sidecar/2", "request": {}, "created": "x"})"
                               << "this is the sidecar of a video, not a job file";
  }
  void malformedJobsAreNamed() {
    QFETCH(QString, json);
    QFETCH(QString, needle);
    try {
      wan::job_from_json(json.toStdString());
      QFAIL("no error");
    } catch (const wan::Error& e) {
      QCOMPARE(e.code(), wan::ErrorCode::kInvalidArgument);
      QVERIFY2(QString(e.what()).contains(needle), e.what());
    }
  }
};

QTEST_MAIN(TestJob)
#include "tst_job.moc"
