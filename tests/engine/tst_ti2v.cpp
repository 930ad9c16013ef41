// Wan2.2 TI2V-5B against the fixtures made with the official Wan2.2 code (tests/data/golden22/
// dit_ti2v_small: the DiT with per-token timesteps; ti2v_pipeline_small: textimage2video.py in both
// modes with one set of weights and the Wan2.2 VAE). The DiT calls, both pipelines through `wan
// eval-case`'s code in float32 and bfloat16, the picture Pillow resized and cropped byte for byte, the
// per-token timesteps of every step exactly; every parallel layout (CFG parallel, Ulysses x Ring, FSDP,
// token counts no world divides) equal to the reference; `wan generate` (24 fps, --image); and what is
// refused: sizes not multiples of 32, a Wan2.1 VAE for TI2V and the Wan2.2 VAE for a Wan2.1 model.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "dist/rank_runtime.h"
#include "dist_test_util.h"
#include "model/model_files.h"
#include "pipeline/text_to_video.h"
#include "test_util.h"
#include "video/pil_resize.h"
#include "wan/eval_case.h"
#include "weights/file_util.h"
#include "weights/loader.h"
#include "weights/safetensors.h"

using wan_test::expect_error;

namespace {

std::string data(const std::string& name) { return wan_test::data_dir() + "/golden22/" + name; }
std::string fixture() { return data("ti2v_pipeline_small"); }

torch::Tensor reference(const std::string& name, const std::string& case_dir = fixture()) {
  return wan::SafetensorsFile::open(case_dir + "/io.safetensors")->view(name);
}

}  // namespace

class TestTi2v : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { qputenv("WAN_GLOO_HOST", "127.0.0.1"); }

  // The DiT with per-token timesteps: the text-only call (every token at t) and the image call (the 12
  // tokens of latent frame 0 at 0); a scalar t gives the uniform call's result exactly.
  void ditMatchesTheOfficialCode_data() {
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<double>("tolerance");
    QTest::newRow("fp32") << "fp32" << 1e-4;
    QTest::newRow("bf16") << "bf16" << 3e-2;
  }
  void ditMatchesTheOfficialCode() {
    QFETCH(QString, dtype);
    QFETCH(double, tolerance);
    QTemporaryDir dir;
    wan::EvalCaseOptions options;
    options.dtype = dtype.toStdString();
    const wan::EvalCaseResult r =
        wan::run_eval_case(data("dit_ti2v_small"), dir.filePath("o.safetensors").toStdString(), options);
    QCOMPARE(r.relative_errors.size(), std::size_t(2));
    for (const auto& [name, e] : r.relative_errors) QVERIFY2(e < tolerance, (name + ": " + std::to_string(e)).c_str());
    // The model reads the per-token vector as two runs; the scalar form of call 0 is bit-identical.
    const std::string case_dir = data("dit_ti2v_small");
    wan::LoadedDit dit = wan::load_dit(wan::open_weights(case_dir + "/diffusion_pytorch_model.safetensors"),
                                       wan::read_text_file(case_dir + "/config.json"), wan::ModelPlacement{});
    QVERIFY(dit.config.kind == wan::DitKind::kTI2V);
    const torch::Tensor x = reference("x", case_dir), context = reference("context_0", case_dir);
    const torch::Tensor per_token = reference("t_tokens_0", case_dir).to(torch::kFloat64).contiguous();
    const auto tokens = wan::TokenTimesteps::per_token(
        std::vector<double>(per_token.data_ptr<double>(), per_token.data_ptr<double>() + per_token.numel()));
    QCOMPARE(tokens.runs.size(), std::size_t(1));
    QVERIFY(torch::equal(dit.model->forward(x, 999.0, context), dit.model->forward(x, tokens, context)));
    const torch::Tensor image_call = reference("t_tokens_1", case_dir);
    QCOMPARE(image_call.narrow(0, 0, 12).sum().item<double>(), 0.0);  // latent frame 0: 12 tokens at t = 0
  }

  // Both modes of the pipeline: every latent_i and the video; the picture as Pillow resized and
  // cropped it (exactly); the timestep of every token at every step (exactly).
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
    const std::string out = dir.filePath("out.safetensors").toStdString();
    wan::EvalCaseOptions options;
    options.dtype = dtype.toStdString();
    const wan::EvalCaseResult r = wan::run_eval_case(fixture(), out, options);
    auto written = wan::SafetensorsFile::open(out);
    std::map<std::string, int> latents;
    for (const auto& [name, err] : r.relative_errors) {
      const std::string mode = name.substr(0, 4);
      if (name.rfind(mode + "latent_", 0) == 0 && name != mode + "latent_init") ++latents[mode];
      const double e = wan_test::rel_l2(written->view(name), reference(name));
      QVERIFY2(e < tolerance, (name + ": relative L2 error " + std::to_string(e)).c_str());
    }
    QCOMPARE(latents["t2v_"], 6);
    QCOMPARE(latents["i2v_"], 6);
    for (const char* exact : {"i2v_image", "t2v_t_tokens", "i2v_t_tokens", "t2v_noise", "i2v_noise"})
      QVERIFY2(torch::equal(written->view(exact), reference(exact)), exact);
    for (const char* name : {"t2v_video", "i2v_video", "i2v_image_latent", "i2v_latent_init"})
      QVERIFY2(written->contains(name), name);
  }

  // best_output_size, by hand from its definition: the fixture's 100x70 picture in 96*64, and a 16:9
  // picture at the official 1280*704 (width first gives 1248x704, closer to 16:9 than 1280x704).
  void outputSizeAndResize() {
    QCOMPARE((wan::best_output_size(100, 70, 32, 32, 96.0 * 64)), (std::array<std::int64_t, 2>{96, 64}));
    QCOMPARE((wan::best_output_size(1920, 1080, 32, 32, 1280.0 * 704)), (std::array<std::int64_t, 2>{1248, 704}));
    QCOMPARE((wan::best_output_size(704, 1280, 32, 32, 1280.0 * 704)), (std::array<std::int64_t, 2>{704, 1280}));
    expect_error([] { wan::best_output_size(100, 70, 32, 32, 500); }, wan::ErrorCode::kInvalidArgument, {"too small"});
    // A resize to the same size is the picture; a constant picture stays constant (weights sum to 1).
    wan::Rgb8Video flat;
    flat.frames = 1;
    flat.width = 40;
    flat.height = 30;
    flat.data.assign(40 * 30 * 3, 77);
    const wan::Rgb8Video up = wan::resize_lanczos(flat, 97, 13);
    QCOMPARE(up.width, 97);
    QCOMPARE(up.height, 13);
    QVERIFY(std::all_of(up.data.begin(), up.data.end(), [](std::uint8_t v) { return v == 77; }));
    QVERIFY(wan::resize_lanczos(flat, 40, 30).data == flat.data);
  }

  // Every parallel layout gives the reference latent in both modes; 6 and 18 tokens, which worlds of 4
  // and 8 do not divide (the frame-0 tokens at t = 0 then straddle the ranks' chunks).
  void everyLayoutGivesTheReferenceLatent_data() {
    QTest::addColumn<QString>("mode");
    QTest::addColumn<QString>("config");
    for (const char* mode : {"t2v", "i2v"})
      for (const char* c : {
               R"({"world_size": 2, "cfg_parallel": true})",
               R"({"world_size": 2, "use_context_parallel": true, "ulysses_size": 2})",
               R"({"world_size": 4, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
               R"({"world_size": 4, "dit_fsdp": true, "t5_fsdp": true, "use_usp": true, "ring_size": 4})",
               R"({"world_size": 8, "dit_fsdp": true, "cfg_parallel": true, "use_usp": true, "ulysses_size": 4})",
           })
        QTest::addRow("%s %s", mode, c) << QString(mode) << QString(c);
  }
  void everyLayoutGivesTheReferenceLatent() {
    QFETCH(QString, mode);
    QFETCH(QString, config);
    wan::DistConfig dist = wan::dist_config_from_json(config.toStdString());
    dist.backend = wan::resolve_backend(dist, wan::Device{});
    const wan::RunPlan plan = wan::make_plan(wan::pipeline_case_request(fixture(), "fp32", "cpu", mode.toStdString()),
                                             wan::DistConfig{}, false);
    const torch::Tensor noise = wan::initial_noise(plan);
    const wan::ImageContext image = wan::encode_image(plan);
    QCOMPARE(image.first_frame.defined(), mode == "i2v");
    std::vector<torch::Tensor> finals(dist.world_size);
    const auto errors = wan_test::run_world(dist.world_size, std::chrono::seconds(120), [&](wan::Communicator& world) {
      wan::RankRuntime runtime(world, dist);
      const wan::RankHooks hooks = runtime.hooks(world.rank() == 0);
      const wan::TextContexts text = wan::encode_prompts(plan, hooks.t5_sharding);
      wan::WanModel dit = wan::load_plan_dit(plan, hooks.dit_sharding);
      finals[world.rank()] = wan::denoise(plan, dit, text, noise, {},
                                          hooks.make_velocity(dit, text, image, plan.request.guidance.value()), image);
    });
    const std::string ref = mode.toStdString() + "_final_latent";
    for (int r = 0; r < dist.world_size; ++r) {
      QVERIFY2(errors[r].empty(), ("rank " + std::to_string(r) + ": " + errors[r]).c_str());
      const double e = wan_test::rel_l2(finals[r], reference(ref));
      QVERIFY2(e < 1e-5, ("rank " + std::to_string(r) + ": " + std::to_string(e)).c_str());
    }
  }

  // `wan generate` on the official-layout folder: text-to-video at 24 fps (the model's rate), then the
  // picture with WIDTH*HEIGHT the area, each the fixture's latent.
  void generateWritesTheFixturesVideos() {
    QTemporaryDir dir;
    const wan::GenerationRequest t2v = wan::pipeline_case_request(fixture(), "fp32", "cpu", "t2v");
    const QStringList common = {"generate",
                                "--model",
                                QString::fromStdString(fixture()),
                                "--prompt",
                                QString::fromStdString(t2v.prompt),
                                "--negative",
                                QString::fromStdString(t2v.negative_prompt),
                                "--steps",
                                "6",
                                "--cpu-noise"};
    wan_test::Run run = wan_test::run_wan(QStringList(common) << "--width"
                                                              << "96"
                                                              << "--height"
                                                              << "32"
                                                              << "--frames"
                                                              << "5"
                                                              << "--seed"
                                                              << "42"
                                                              << "--save-latent" << dir.filePath("t2v.safetensors")
                                                              << "--output" << dir.filePath("t2v.mp4"));
    QVERIFY2(run.code == 0, qPrintable(run.err));
    const auto latent = [&](const QString& f) { return wan::SafetensorsFile::open(f.toStdString())->view("latent"); };
    QVERIFY(wan_test::rel_l2(latent(dir.filePath("t2v.safetensors")), reference("t2v_final_latent")) < 1e-3);
    QCOMPARE(wan_test::probe(dir.filePath("t2v.mp4")), QString("h264,96,32,yuv420p,24/1,5"));
    run = wan_test::run_wan(QStringList(common)
                            << "--image" << QString::fromStdString(fixture() + "/input.png") << "--size"
                            << "96*64"
                            << "--frames"
                            << "9"
                            << "--seed"
                            << "7"
                            << "--save-latent" << dir.filePath("i2v.safetensors") << "--output"
                            << dir.filePath("i2v.mp4"));
    QVERIFY2(run.code == 0, qPrintable(run.err));
    QVERIFY(wan_test::rel_l2(latent(dir.filePath("i2v.safetensors")), reference("i2v_final_latent")) < 1e-3);
    QCOMPARE(wan_test::probe(dir.filePath("i2v.mp4")), QString("h264,96,64,yuv420p,24/1,9"));
  }

  void wrongSizesAndVaesAreRefused() {
    wan::GenerationRequest r = wan::pipeline_case_request(fixture(), "fp32", "cpu", "t2v");
    r.width = 80;  // a multiple of 16, not of 32
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kInvalidArgument,
                 {"multiples of 32", "TI2V-5B", "80"});
    // `wan estimate` refuses it in the same words; with a picture it estimates the size generate makes.
    wan_test::Run estimate = wan_test::run_wan(
        {"estimate", "--device", "cpu", "--model", QString::fromStdString(fixture()), "--size", "80*64"});
    QCOMPARE(estimate.code, static_cast<int>(wan::ErrorCode::kInvalidArgument));
    QVERIFY2(estimate.err.contains("multiples of 32"), qPrintable(estimate.err));
    estimate = wan_test::run_wan({"estimate", "--device", "cpu", "--json", "--model", QString::fromStdString(fixture()),
                                  "--size", "96*64", "--frames", "9", "--image",
                                  QString::fromStdString(fixture() + "/input.png")});
    QVERIFY2(estimate.code == 0, qPrintable(estimate.err));
    r = wan::pipeline_case_request(fixture(), "fp32", "cpu", "i2v");
    r.width = 96;
    r.height = 64;
    r.frames = 9;
    r.image = fixture() + "/input.png";
    const wan::RunPlan plan = wan::make_plan(r, {}, false);
    const auto json = nlohmann::json::parse(estimate.out.toStdString());
    QCOMPARE(json["width"].get<int>(), plan.request.width);
    QCOMPARE(json["height"].get<int>(), plan.request.height);
    // The Wan2.1 VAE for TI2V, and the Wan2.2 VAE for a Wan2.1 model: each named.
    r = wan::pipeline_case_request(fixture(), "fp32", "cpu", "t2v");
    r.model.vae = wan_test::data_dir() + "/golden22/t2v_moe_pipeline_small/Wan2.1_VAE.pth";
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kModelMismatch,
                 {"is the Wan2.1 VAE", "Wan2.2 VAE"});
    // A TI2V folder holding a Wan2.1 VAE too takes its Wan2.2 one; without it, the missing file is named.
    QTemporaryDir both, none;
    wan_test::link_folder(fixture(), both.path().toStdString(), {});
    std::filesystem::create_symlink(data("t2v_moe_pipeline_small") + "/Wan2.1_VAE.pth",
                                    both.filePath("Wan2.1_VAE.pth").toStdString());
    r = wan::pipeline_case_request(fixture(), "fp32", "cpu", "t2v");
    r.model.model_dir = both.path().toStdString();
    QVERIFY(wan::make_plan(r, {}, false).vae.wan22);
    wan_test::link_folder(fixture(), none.path().toStdString(), {"Wan2.2_VAE.pth"});
    r.model.model_dir = none.path().toStdString();
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kFileNotFound, {"Wan2.2_VAE.pth: missing"});
    // A picture whose shape, at the area asked, would exceed the largest side.
    r = wan::pipeline_case_request(fixture(), "fp32", "cpu", "i2v");
    r.width = 8192;
    r.height = 8192;
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kInvalidArgument, {"beyond 8192 a side"});
    // The A14B-only settings, and TI2V given as an A14B pair.
    r = wan::pipeline_case_request(fixture(), "fp32", "cpu", "t2v");
    r.guidance_high = 4;
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kInvalidArgument,
                 {"--guidance LOW,HIGH", "one DiT"});
    r = wan::pipeline_case_request(fixture(), "fp32", "cpu", "t2v");
    r.model.dit = fixture() + "/diffusion_pytorch_model.safetensors";
    r.model.dit_high = r.model.dit;
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kModelMismatch, {"not an A14B expert"});
    r = wan::pipeline_case_request(data("t2v_moe_pipeline_small"));
    r.model.vae = fixture() + "/Wan2.2_VAE.pth";
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kModelMismatch,
                 {"is the Wan2.2 VAE", "Wan2.1 VAE"});
  }
};

QTEST_APPLESS_MAIN(TestTi2v)
#include "tst_ti2v.moc"
