// Wan2.2 T2V-A14B, the two-expert mixture, against the fixture made with the official Wan2.2 code
// (tests/data/golden22/t2v_moe_pipeline_small: high_noise_model/ and low_noise_model/ as the official
// folder). Every latent_i, the video, the expert and the guidance scale of each step through `wan
// eval-case`'s code in float32 (< 1e-3) and bfloat16 (< 3e-2); the same run over a world of gloo ranks in
// every layout (CFG parallel, Ulysses x Ring, FSDP of both experts) equal to the one-process latent; `wan
// generate` on the folder; and the folders and settings that are refused.
#include <filesystem>

#include "cli_test_util.h"
#include "dist/rank_runtime.h"
#include "dist_test_util.h"
#include "pipeline/text_to_video.h"
#include "test_util.h"
#include "wan/eval_case.h"
#include "weights/safetensors.h"

using wan_test::expect_error;

namespace {

std::string fixture() { return wan_test::data_dir() + "/golden22/t2v_moe_pipeline_small"; }

torch::Tensor reference(const std::string& name) {
  return wan::SafetensorsFile::open(fixture() + "/io.safetensors")->view(name);
}

}  // namespace

class TestWan22Moe : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { qputenv("WAN_GLOO_HOST", "127.0.0.1"); }

  void pipelineMatchesTheOfficialCode_data() {
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<double>("tolerance");
    QTest::newRow("fp32") << "fp32" << 1e-3;
    QTest::newRow("bf16") << "bf16" << 3e-2;
  }
  void pipelineMatchesTheOfficialCode() {
    QFETCH(QString, dtype);
    QFETCH(double, tolerance);
    QTemporaryDir dir;
    const std::string out = dir.path().toStdString() + "/out.safetensors";
    wan::EvalCaseOptions options;
    options.dtype = dtype.toStdString();
    const wan::EvalCaseResult r = wan::run_eval_case(fixture(), out, options);
    auto written = wan::SafetensorsFile::open(out);
    // The expert and the scale of each step exactly: 5 high-noise steps (guide 4), then 3 low-noise (3).
    QVERIFY(torch::equal(written->view("expert"), reference("expert")));
    QVERIFY(torch::equal(written->view("guide_scale"), reference("guide_scale")));
    QCOMPARE(written->view("expert").sum().item<std::int64_t>(), std::int64_t(5));
    int latents = 0;
    for (const auto& [name, err] : r.relative_errors) {
      if (name.rfind("latent_", 0) == 0) ++latents;
      const double e = wan_test::rel_l2(written->view(name), reference(name));
      QVERIFY2(e < tolerance, (name + ": relative L2 error " + std::to_string(e)).c_str());
    }
    QCOMPARE(latents, 8);
  }

  // Every parallel layout gives the one-process latent: both experts run by the same ranks, one
  // sampler across the switch.
  void everyLayoutGivesTheOneProcessLatent_data() {
    QTest::addColumn<QString>("config");
    for (const char* c : {
             R"({"world_size": 2, "cfg_parallel": true})",
             R"({"world_size": 2, "use_context_parallel": true, "ulysses_size": 2})",
             R"({"world_size": 2, "dit_fsdp": true})",
             R"({"world_size": 3, "dit_fsdp": true, "sync_module_states": false})",
             R"({"world_size": 4, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
             R"({"world_size": 4, "use_fsdp": true, "cfg_parallel": true, "use_usp": true, "ring_size": 2})",
             R"({"world_size": 8, "dit_fsdp": true, "cfg_parallel": true, "use_usp": true, "ulysses_size": 4})",
         })
      QTest::newRow(c) << QString(c);
  }
  void everyLayoutGivesTheOneProcessLatent() {
    QFETCH(QString, config);
    wan::DistConfig dist = wan::dist_config_from_json(config.toStdString());
    dist.backend = wan::resolve_backend(dist, wan::Device{});
    const wan::RunPlan plan = wan::make_plan(wan::pipeline_case_request(fixture()), wan::DistConfig{}, false);
    QVERIFY(plan.moe);
    const torch::Tensor noise = wan::initial_noise(plan);
    std::vector<torch::Tensor> finals(dist.world_size);
    const auto errors = wan_test::run_world(dist.world_size, std::chrono::seconds(120), [&](wan::Communicator& world) {
      wan::RankRuntime runtime(world, dist);
      const wan::RankHooks hooks = runtime.hooks(world.rank() == 0);
      const wan::TextContexts text = wan::encode_prompts(plan, hooks.t5_sharding);
      wan::WanModel low = wan::load_plan_dit(plan, hooks.dit_sharding);
      wan::WanModel high = wan::load_plan_dit(plan, hooks.dit_sharding, /*high_noise=*/true);
      wan::HighNoiseExpert expert{&high, hooks.make_velocity(high, text, {}, plan.request.guidance_high.value())};
      finals[world.rank()] =
          wan::denoise(plan, low, text, noise.clone(), {},
                       hooks.make_velocity(low, text, {}, plan.request.guidance.value()), {}, expert);
    });
    for (int r = 0; r < dist.world_size; ++r) {
      QVERIFY2(errors[r].empty(), ("rank " + std::to_string(r) + ": " + errors[r]).c_str());
      const double e = wan_test::rel_l2(finals[r], reference("final_latent"));
      QVERIFY2(e < 1e-5, ("rank " + std::to_string(r) + ": " + std::to_string(e)).c_str());
    }
  }

  // `wan generate` on the official-layout folder: the video of the fixture, at 16 fps.
  void generateWritesTheFixturesVideo() {
    QTemporaryDir dir;
    const QString latent = dir.filePath("moe.safetensors"), video = dir.filePath("moe.mp4");
    const wan::GenerationRequest r = wan::pipeline_case_request(fixture());
    const QStringList args = {"generate",
                              "--model",
                              QString::fromStdString(fixture()),
                              "--prompt",
                              QString::fromStdString(r.prompt),
                              "--negative",
                              QString::fromStdString(r.negative_prompt),
                              "--width",
                              "64",
                              "--height",
                              "48",
                              "--frames",
                              "9",
                              "--steps",
                              "8",
                              "--shift",
                              "8",
                              "--guidance",
                              "3,4",
                              "--seed",
                              "42",
                              "--cpu-noise",
                              "--save-latent",
                              latent,
                              "--output",
                              video};
    const wan_test::Run run = wan_test::run_wan(args);
    QVERIFY2(run.code == 0, qPrintable(run.err));
    // The progress names the expert of each step: 5 high-noise steps, then 3 low-noise ones.
    QVERIFY2((run.out + run.err).count("high-noise expert") == 5 && (run.out + run.err).count("low-noise expert") == 3,
             qPrintable(run.err));
    const double e =
        wan_test::rel_l2(wan::SafetensorsFile::open(latent.toStdString())->view("latent"), reference("final_latent"));
    QVERIFY2(e < 1e-3, std::to_string(e).c_str());
    QVERIFY(QFileInfo(video).size() > 0);
    // The boundary and guidance pair are recorded; a guidance of 4 for the low-noise expert changes the result.
    QFile sidecar(dir.filePath("moe.json"));
    QVERIFY(sidecar.open(QIODevice::ReadOnly));
    const QByteArray side = sidecar.readAll();
    QVERIFY2(side.contains("\"guidance_high\": 4.0") && side.contains("\"boundary\": 0.875"), side.constData());
  }

  void brokenFoldersAndSettingsAreRefused() {
    QTemporaryDir one_expert, mismatched;
    wan_test::link_folder(fixture(), one_expert.path().toStdString(), {"high_noise_model"});
    wan::GenerationRequest r = wan::pipeline_case_request(fixture());
    r.model.model_dir = one_expert.path().toStdString();
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kFileNotFound,
                 {"high_noise_model/ is missing", "A14B"});
    // An expert of another size: the Wan2.1 fixture DiT (other widths) as the high-noise expert.
    wan_test::link_folder(fixture(), mismatched.path().toStdString(), {"high_noise_model"});
    std::filesystem::create_directory(mismatched.filePath("high_noise_model").toStdString());
    std::filesystem::create_symlink(
        wan_test::golden("dit_t2v_small") + "/diffusion_pytorch_model.safetensors",
        mismatched.filePath("high_noise_model/diffusion_pytorch_model.safetensors").toStdString());
    r.model.model_dir = mismatched.path().toStdString();
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kModelMismatch,
                 {"the two experts do not match"});
    r = wan::pipeline_case_request(fixture());
    r.boundary = 1.5;
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kInvalidArgument, {"--boundary"});
    const wan_test::Run run =
        wan_test::run_wan({"generate", "--model", QString::fromStdString(fixture()), "--prompt", "x", "--guidance",
                           "3,high", "--save-latent", "/tmp/never.safetensors"});
    QCOMPARE(run.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(run.err.contains("LOW,HIGH"), qPrintable(run.err));
  }
};

QTEST_APPLESS_MAIN(TestWan22Moe)
#include "tst_wan22_moe.moc"
