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
#include "wan/estimate.h"
#include "wan/eval_case.h"
#include "weights/file_util.h"
#include "weights/loader.h"
#include "weights/name_tables.h"
#include "weights/safetensors.h"

using wan_test::expect_error;

namespace {

// The text-to-video A14B case, or another of tests/data/golden22.
std::string fixture(const QString& name = "t2v_moe_pipeline_small") {
  return wan_test::data_dir() + "/golden22/" + name.toStdString();
}

torch::Tensor reference(const std::string& name, const QString& case_name = "t2v_moe_pipeline_small") {
  return wan::SafetensorsFile::open(fixture(case_name) + "/io.safetensors")->view(name);
}

}  // namespace

class TestWan22Moe : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { qputenv("WAN_GLOO_HOST", "127.0.0.1"); }

  void pipelineMatchesTheOfficialCode_data() {
    QTest::addColumn<QString>("case_name");
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<double>("tolerance");
    QTest::addColumn<int>("high_noise_steps");
    for (const auto& [name, high_steps] : {std::pair{"t2v_moe_pipeline_small", 5}, {"i2v_moe_pipeline_small", 3}}) {
      QTest::addRow("%s fp32", name) << name << "fp32" << 1e-3 << high_steps;
      QTest::addRow("%s bf16", name) << name << "bf16" << 3e-2 << high_steps;
    }
  }
  void pipelineMatchesTheOfficialCode() {
    QFETCH(QString, case_name);
    QFETCH(QString, dtype);
    QFETCH(double, tolerance);
    QFETCH(int, high_noise_steps);
    QTemporaryDir dir;
    const std::string out = dir.path().toStdString() + "/out.safetensors";
    wan::EvalCaseOptions options;
    options.dtype = dtype.toStdString();
    const wan::EvalCaseResult r = wan::run_eval_case(fixture(case_name), out, options);
    auto written = wan::SafetensorsFile::open(out);
    // The expert and the scale of each step exactly (t2v: 5 high-noise steps at guide 4, then 3 low-noise
    // at 3; i2v: boundary 0.9, 3 high-noise steps at 5, then 5 at 3).
    QVERIFY(torch::equal(written->view("expert"), reference("expert", case_name)));
    QVERIFY(torch::equal(written->view("guide_scale"), reference("guide_scale", case_name)));
    QCOMPARE(written->view("expert").sum().item<std::int64_t>(), std::int64_t(high_noise_steps));
    int latents = 0;
    bool video = false, y = false;
    for (const auto& [name, err] : r.relative_errors) {
      if (name.rfind("latent_", 0) == 0) ++latents;
      video = video || name == "video";
      y = y || name == "y";
      const double e = wan_test::rel_l2(written->view(name), reference(name, case_name));
      QVERIFY2(e < tolerance, (name + ": relative L2 error " + std::to_string(e)).c_str());
    }
    QCOMPARE(latents, 8);
    QVERIFY(video);
    // Image-to-video: the conditioning y (mask + VAE latent of the stretched picture) was compared; no CLIP.
    QCOMPARE(y, case_name.startsWith("i2v"));
    QVERIFY(!written->contains("clip_fea"));
  }

  // Every parallel layout gives the one-process latent: both experts run by the same ranks, one
  // sampler across the switch.
  void everyLayoutGivesTheOneProcessLatent_data() {
    QTest::addColumn<QString>("case_name");
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
      QTest::addRow("t2v %s", c) << "t2v_moe_pipeline_small" << QString(c);
    // Image-to-video: 45 tokens, which no world of 2, 4 or 8 divides.
    for (
        const char* c : {
            R"({"world_size": 2, "use_context_parallel": true, "ulysses_size": 2})",
            R"({"world_size": 4, "use_fsdp": true, "cfg_parallel": true, "use_usp": true, "ring_size": 2})",
            R"({"world_size": 8, "dit_fsdp": true, "cfg_parallel": true, "use_usp": true, "ulysses_size": 2, "ring_size": 2})",
        })
      QTest::addRow("i2v %s", c) << "i2v_moe_pipeline_small" << QString(c);
  }
  void everyLayoutGivesTheOneProcessLatent() {
    QFETCH(QString, case_name);
    QFETCH(QString, config);
    wan::DistConfig dist = wan::dist_config_from_json(config.toStdString());
    dist.backend = wan::resolve_backend(dist, wan::Device{});
    const wan::RunPlan plan = wan::make_plan(wan::pipeline_case_request(fixture(case_name)), wan::DistConfig{}, false);
    QVERIFY(plan.moe);
    const torch::Tensor noise = wan::initial_noise(plan);
    const wan::ImageContext image = wan::encode_image(plan);
    QCOMPARE(image.defined(), case_name.startsWith("i2v"));
    std::vector<torch::Tensor> finals(dist.world_size);
    const auto errors = wan_test::run_world(dist.world_size, std::chrono::seconds(120), [&](wan::Communicator& world) {
      wan::RankRuntime runtime(world, dist);
      const wan::RankHooks hooks = runtime.hooks(world.rank() == 0);
      const wan::TextContexts text = wan::encode_prompts(plan, hooks.t5_sharding);
      wan::WanModel low = wan::load_plan_dit(plan, hooks.dit_sharding);
      wan::WanModel high = wan::load_plan_dit(plan, hooks.dit_sharding, /*high_noise=*/true);
      wan::HighNoiseExpert expert{&high, hooks.make_velocity(high, text, image, plan.request.guidance_high.value())};
      finals[world.rank()] =
          wan::denoise(plan, low, text, noise.clone(), {},
                       hooks.make_velocity(low, text, image, plan.request.guidance.value()), image, expert);
    });
    for (int r = 0; r < dist.world_size; ++r) {
      QVERIFY2(errors[r].empty(), ("rank " + std::to_string(r) + ": " + errors[r]).c_str());
      const double e = wan_test::rel_l2(finals[r], reference("final_latent", case_name));
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

  // `wan generate --image` on the I2V-A14B folder with the official defaults for shift (5) and boundary
  // (0.900), WIDTH*HEIGHT the largest area (80*60: not multiples of 16): the fixture's video, no CLIP asked.
  void generateImageToVideo() {
    QTemporaryDir dir;
    const QString name = "i2v_moe_pipeline_small";
    const QString latent = dir.filePath("i2v.safetensors"), video = dir.filePath("i2v.mp4");
    const wan::GenerationRequest r = wan::pipeline_case_request(fixture(name));
    const wan_test::Run run = wan_test::run_wan({"generate",
                                                 "--model",
                                                 QString::fromStdString(fixture(name)),
                                                 "--image",
                                                 QString::fromStdString(fixture(name) + "/input.png"),
                                                 "--prompt",
                                                 QString::fromStdString(r.prompt),
                                                 "--negative",
                                                 QString::fromStdString(r.negative_prompt),
                                                 "--width",
                                                 "80",
                                                 "--height",
                                                 "60",
                                                 "--frames",
                                                 "9",
                                                 "--steps",
                                                 "8",
                                                 "--guidance",
                                                 "3,5",
                                                 "--seed",
                                                 "42",
                                                 "--cpu-noise",
                                                 "--save-latent",
                                                 latent,
                                                 "--output",
                                                 video});
    QVERIFY2(run.code == 0, qPrintable(run.err));
    QVERIFY2((run.out + run.err).count("high-noise expert") == 3 && (run.out + run.err).count("low-noise expert") == 5,
             qPrintable(run.err));
    const double e = wan_test::rel_l2(wan::SafetensorsFile::open(latent.toStdString())->view("latent"),
                                      reference("final_latent", name));
    QVERIFY2(e < 1e-3, std::to_string(e).c_str());
    QFile sidecar(dir.filePath("i2v.json"));
    QVERIFY(sidecar.open(QIODevice::ReadOnly));
    const nlohmann::json side = nlohmann::json::parse(sidecar.readAll().toStdString());
    const nlohmann::json& req = side.at("request");
    QCOMPARE(req.at("height").get<int>(), 60);  // the area asked for; the video's size follows from it
    QCOMPARE(side.at("video").at("height").get<int>(), 48);
    QCOMPARE(side.at("video").at("fps").get<int>(), 16);
    QVERIFY(side.at("model").at("clip").is_null());
    QCOMPARE(req.at("shift").get<double>(), 5.0);
    QCOMPARE(req.at("boundary").get<double>(), 0.9);
    QVERIFY(QFileInfo(video).size() > 0);
    // A text-only run of an image-to-video model is refused by name.
    const wan_test::Run no_picture =
        wan_test::run_wan({"generate", "--model", QString::fromStdString(fixture(name)), "--prompt", "x",
                           "--save-latent", dir.filePath("never.safetensors")});
    QCOMPARE(no_picture.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(wan_test::last_line(no_picture.err).contains("--image"), qPrintable(no_picture.err));
  }

  // idle_expert_on_host: the low-noise expert loaded "on the host" joins at the boundary, once, after
  // the high-noise one is freed; the latent is the reference's. (On this CPU-only machine host and
  // device are one; tst_gpu moves it to a GPU.) The settings it does not go with are refused, and the
  // estimate holds one expert's weights on a GPU.
  void idleExpertJoinsAtTheBoundary() {
    const wan::RunPlan plan = wan::make_plan(wan::pipeline_case_request(fixture()), wan::DistConfig{}, false);
    const wan::TextContexts text = wan::encode_prompts(plan);
    wan::WanModel low = wan::load_plan_dit(plan, {}, /*high_noise=*/false, /*on_host=*/true);
    wan::WanModel high = wan::load_plan_dit(plan, {}, /*high_noise=*/true);
    int swaps = 0, high_steps_before = -1, steps = 0;
    wan::HighNoiseExpert expert{&high, {}, [&] {
                                  ++swaps;
                                  high_steps_before = steps;
                                  high->release_weights();
                                  low->move_to(plan.device);
                                }};
    const torch::Tensor latent = wan::denoise(
        plan, low, text, wan::initial_noise(plan), [&](int, int, const torch::Tensor&) { ++steps; }, {}, {}, expert);
    QCOMPARE(swaps, 1);
    QCOMPARE(high_steps_before, 5);  // after the 5 high-noise steps
    QCOMPARE(high->parameters().front().numel(), std::int64_t(0));
    QVERIFY(wan_test::rel_l2(latent, reference("final_latent")) < 1e-5);

    wan::DistConfig fsdp = wan::dist_config_from_json(R"({"world_size": 2, "dit_fsdp": true})");
    fsdp.idle_expert_on_host = true;
    const auto problems = wan::validate_dist_config(fsdp, wan::DistEnvironment{});
    QVERIFY(!problems.empty() && problems.front().field == "idle_expert_on_host");
    wan::GenerationRequest kept = wan::pipeline_case_request(fixture());
    kept.fp8_weights = wan::Fp8Weights::kKeep;
    wan::DistConfig idle;
    idle.idle_expert_on_host = true;
    expect_error([&] { wan::make_plan(kept, idle, false); }, wan::ErrorCode::kInvalidArgument,
                 {"idle_expert_on_host", "--fp8-weights keep"});
    wan::EstimateSettings s;
    s.gpu = true;
    const std::int64_t both = wan::estimate_memory(wan::wan22_t2v_a14b(), s).weights;
    s.config.idle_expert_on_host = true;
    QCOMPARE(wan::estimate_memory(wan::wan22_t2v_a14b(), s).weights * 2, both);
  }

  // A LoRA goes to the expert it is set for (--lora-high, --lora-low) or to both (--lora): the merged
  // weights of each expert, and a run with the same LoRA given to each expert apart equals one with --lora.
  void lorasGoToTheirExpert() {
    QTemporaryDir dir;
    const std::string w = "blocks.0.self_attn.q.weight";
    const auto low_base = std::make_shared<wan::RenamedSource>(
        wan::open_weights(fixture() + "/low_noise_model/diffusion_pytorch_model.safetensors"), wan::dit_official_name);
    const torch::Tensor base_low = low_base->view(w).to(torch::kFloat32);
    torch::manual_seed(5);
    const torch::Tensor down = torch::randn({2, base_low.size(1)}) * 0.1,
                        up = torch::randn({base_low.size(0), 2}) * 0.1;
    const std::string lora = dir.filePath("style.safetensors").toStdString();
    wan::write_safetensors(lora, {{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", down},
                                  {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", up}});
    const torch::Tensor delta = 0.5 * torch::mm(up, down);
    wan::GenerationRequest r = wan::pipeline_case_request(fixture());
    const wan::RunPlan plain = wan::make_plan(r, {}, false);
    const torch::Tensor base_high = plain.dit_high_source->view(w).to(torch::kFloat32);
    QVERIFY(!torch::equal(base_high, base_low));  // two experts, two weights
    const auto merged = [&](wan::LoraExpert expert) {
      r.model.loras = {wan::LoraFile{lora, 0.5, expert}};
      const wan::RunPlan p = wan::make_plan(r, {}, false);
      return std::make_pair(p.dit_high_source->view(w).to(torch::kFloat32), p.dit_source->view(w).to(torch::kFloat32));
    };
    const auto near = [](const torch::Tensor& a, const torch::Tensor& b) { return wan_test::rel_l2(a, b) < 1e-6; };
    auto [high, low] = merged(wan::LoraExpert::kHighNoise);
    QVERIFY(near(high, base_high + delta) && torch::equal(low, base_low));
    std::tie(high, low) = merged(wan::LoraExpert::kLowNoise);
    QVERIFY(torch::equal(high, base_high) && near(low, base_low + delta));
    std::tie(high, low) = merged(wan::LoraExpert::kBoth);
    QVERIFY(near(high, base_high + delta) && near(low, base_low + delta));
    // Through the CLI: high + low apart is --lora; the sidecar keeps each LoRA's expert.
    const wan::GenerationRequest c = wan::pipeline_case_request(fixture());
    const QStringList args = {"generate",
                              "--model",
                              QString::fromStdString(fixture()),
                              "--prompt",
                              QString::fromStdString(c.prompt),
                              "--width",
                              "64",
                              "--height",
                              "48",
                              "--frames",
                              "9",
                              "--steps",
                              "4",
                              "--seed",
                              "42"};
    const QString l = QString::fromStdString(lora);
    const QString both = dir.filePath("both.safetensors"), apart = dir.filePath("apart.mp4");
    wan_test::Run run = wan_test::run_wan(QStringList(args) << "--lora" << l + ":0.5"
                                                            << "--save-latent" << both);
    QVERIFY2(run.code == 0, qPrintable(run.err));
    run = wan_test::run_wan(QStringList(args)
                            << "--lora-high" << l + ":0.5"
                            << "--lora-low" << l + ":0.5"
                            << "--save-latent" << dir.filePath("apart.safetensors") << "--output" << apart);
    QVERIFY2(run.code == 0, qPrintable(run.err));
    const auto latent = [](const QString& f) { return wan::SafetensorsFile::open(f.toStdString())->view("latent"); };
    QVERIFY(torch::equal(latent(both), latent(dir.filePath("apart.safetensors"))));
    const nlohmann::json side =
        nlohmann::json::parse(wan::read_text_file(dir.filePath("apart.json").toStdString())).at("request");
    const nlohmann::json loras = side.at("model").at("loras");
    QCOMPARE(loras.size(), std::size_t{2});
    QCOMPARE(loras[0].at("expert").get<std::string>(), std::string("high_noise"));
    QCOMPARE(loras[1].at("expert").get<std::string>(), std::string("low_noise"));
    // A one-DiT model has no expert to choose.
    run = wan_test::run_wan(wan_test::fixture_args(wan_test::fixture())
                            << "--lora-high" << l << "--save-latent" << dir.filePath("no.safetensors"));
    QCOMPARE(run.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(wan_test::last_line(run.err).contains("has one DiT"), qPrintable(run.err));
    QVERIFY(!QFileInfo::exists(dir.filePath("no.safetensors")));
  }

  // ComfyUI's A14B files found by their names: a models folder holding the two halves is the model; a
  // --dit naming either half alone finds the other beside it; a note says what was paired.
  void comfyExpertsArePairedByName() {
    namespace fs = std::filesystem;
    QTemporaryDir dir;
    const fs::path root = dir.path().toStdString();
    for (const char* sub : {"diffusion_models", "text_encoders", "vae"}) fs::create_directories(root / sub);
    const fs::path low = root / "diffusion_models" / "wan2.2_t2v_low_noise_14B_fp16.safetensors";
    const fs::path high = root / "diffusion_models" / "wan2.2_t2v_high_noise_14B_fp16.safetensors";
    fs::create_symlink(fixture() + "/low_noise_model/diffusion_pytorch_model.safetensors", low);
    fs::create_symlink(fixture() + "/high_noise_model/diffusion_pytorch_model.safetensors", high);
    fs::create_symlink(fixture() + "/models_t5_umt5-xxl-enc-bf16.pth", root / "text_encoders" / "umt5.pth");
    fs::create_symlink(fixture() + "/Wan2.1_VAE.pth", root / "vae" / "wan_2.1_vae.pth");
    wan::GenerationRequest r = wan::pipeline_case_request(fixture());
    r.model = {};
    r.model.model_dir = root.string();
    r.model.tokenizer = fixture() + "/google/umt5-xxl/spiece.model";
    for (const std::string& named : {std::string(), high.string(), low.string()}) {
      r.model.dit = named;
      const wan::RunPlan plan = wan::make_plan(r, {}, false);
      QVERIFY(plan.moe);
      QCOMPARE(plan.files.dit, low.string());
      QCOMPARE(plan.files.dit_high, high.string());
      QVERIFY(!plan.notes.empty() && plan.notes.front().find("found by their names") != std::string::npos);
    }
    // Without its twin a half is one DiT, as named.
    fs::remove(high);
    r.model.dit.clear();
    r.guidance_high.reset();  // the A14B-only settings are refused for one DiT
    r.boundary.reset();
    QVERIFY(!wan::make_plan(r, {}, false).moe);
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
    // `wan estimate` refuses it in the same words.
    const wan_test::Run estimate = wan_test::run_wan({"estimate", "--device", "cpu", "--model", mismatched.path()});
    QCOMPARE(estimate.code, static_cast<int>(wan::ErrorCode::kModelMismatch));
    QVERIFY2(estimate.err.contains("the two experts do not match"), qPrintable(estimate.err));
    // A picture for the text-to-video A14B.
    r = wan::pipeline_case_request(fixture());
    r.image = fixture("i2v_moe_pipeline_small") + "/input.png";
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kInvalidArgument,
                 {"is a text-to-video model", "I2V"});
    // An I2V expert beside a T2V one.
    QTemporaryDir crossed;
    wan_test::link_folder(fixture(), crossed.path().toStdString(), {"high_noise_model"});
    std::filesystem::create_directory_symlink(fixture("i2v_moe_pipeline_small") + "/high_noise_model",
                                              crossed.filePath("high_noise_model").toStdString());
    r = wan::pipeline_case_request(fixture());
    r.model.model_dir = crossed.path().toStdString();
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kModelMismatch,
                 {"the two experts do not match", "i2v", "t2v"});
    // One expert of an A14B folder alone.
    r = wan::pipeline_case_request(fixture());
    r.model.dit = fixture() + "/low_noise_model/diffusion_pytorch_model.safetensors";
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kInvalidArgument,
                 {"one expert alone", "--dit-high"});
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
