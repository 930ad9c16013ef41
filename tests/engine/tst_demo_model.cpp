// The built-in demo model: written in the official layout, found and loaded like real weights, and
// runs every stage (tokenizer, umT5, DiT sampling, VAE decode, MP4 and sidecar).
#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/tokenizer.h"
#include "pipeline/demo_model.h"
#include "pipeline/latent_preview.h"
#include "pipeline/plan.h"
#include "pipeline/rank_hooks.h"
#include "test_util.h"
#include "video/video_writer.h"
#include "wan/generation.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

class TestDemoModel : public QObject {
  Q_OBJECT
 private slots:
  void latentPreviewProjectsTheMiddleFrame() {
    // [16, F=3, h=60, w=104]; only the middle frame (index 1) is shown.
    torch::Tensor latent = torch::zeros({16, 3, 60, 104});
    latent.select(1, 1).select(0, 2).fill_(1.0);  // channel 2: weights (0.3568, 0.2548, 0.1747)
    latent.select(1, 0).fill_(100.0);             // other frames must not leak in
    const wan::PreviewImage p = wan::latent_preview(latent, 5, 20);
    QCOMPARE(p.width, 104);
    QCOMPARE(p.height, 60);
    QCOMPARE(p.step, 5);
    QCOMPARE(static_cast<int>(p.rgb.size()), 104 * 60 * 3);
    // (w + bias + 1) * 127.5: R = (0.3568 - 0.1835 + 1) * 127.5 = 149.6
    QCOMPARE(int(p.rgb[0]), 150);
    QCOMPARE(int(p.rgb[1]), int(std::lround((0.2548 - 0.0868 + 1) * 127.5)));
    QCOMPARE(int(p.rgb[2]), int(std::lround((0.1747 - 0.3360 + 1) * 127.5)));
    // Larger latents are averaged down to fit the board.
    const wan::PreviewImage big = wan::latent_preview(torch::zeros({16, 1, 90, 600}), 1, 1);
    QVERIFY(big.width <= wan::kPreviewMaxSide && big.height <= wan::kPreviewMaxSide);
    QCOMPARE(big.width, 200);
    QCOMPARE(big.height, 30);
  }

  void writesAnOfficialFolderThatGenerates() {
    QTemporaryDir tmp;
    const std::string dir = tmp.filePath("demo").toStdString();
    wan::make_demo_model(dir);
    for (const char* f : {"config.json", "diffusion_pytorch_model.safetensors", "models_t5_umt5-xxl-enc-bf16.pth",
                          "Wan2.1_VAE.pth", "google/umt5-xxl/spiece.model"})
      QVERIFY2(std::filesystem::exists(dir + "/" + f), f);
    // Only the model folder was created: no temp folder or training files left.
    QCOMPARE(QDir(tmp.path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden), QStringList{"demo"});

    // The tokenizer was trained on real words: a prompt becomes several known pieces, no unknowns.
    auto tok = wan::Tokenizer::from_file(dir + "/google/umt5-xxl/spiece.model");
    const wan::TokenizedText t = tok->encode("a red fox runs through the snowy forest at dawn", 512);
    QVERIFY(t.valid_tokens > 4);
    QCOMPARE(t.ids[t.valid_tokens - 1], std::int64_t(1));                      // EOS
    for (std::int64_t i = 0; i < t.valid_tokens; ++i) QVERIFY(t.ids[i] != 2);  // unk

    wan::GenerationRequest r;
    r.model.model_dir = dir;
    r.prompt = "a red fox runs through the snowy forest at dawn";
    r.width = 64;
    r.height = 48;
    r.frames = 5;
    r.steps = 3;
    r.seed = 3;
    r.output = tmp.filePath("demo.mp4").toStdString();
    r.save_latent = tmp.filePath("demo.safetensors").toStdString();
    const wan::RunPlan plan = wan::make_plan(r);
    QCOMPARE(plan.files.layout, std::string("official"));
    QCOMPARE(plan.dit.num_heads, std::int64_t(2));
    QCOMPARE(plan.dit.text_len, std::int64_t(512));
    QCOMPARE(plan.dtype, torch::kFloat32);  // "auto" on the CPU
    const wan::GenerationResult res = wan::generate(r);
    QCOMPARE(res.frames, 5);
    QVERIFY(QFileInfo(tmp.filePath("demo.mp4")).size() > 0);
    QVERIFY(QFileInfo::exists(tmp.filePath("demo.json")));
    const torch::Tensor latent = wan::SafetensorsFile::open(r.save_latent)->view("latent");
    QCOMPARE(latent.sizes().vec(), (std::vector<std::int64_t>{16, 2, 6, 8}));
    QVERIFY(torch::isfinite(latent).all().item<bool>());
    QVERIFY(latent.std().item<double>() > 0.01);
  }

  // The image-to-video demo: an I2V DiT and a CLIP tower in the official .pth form (textual part,
  // head, post_norm and the last block present and ignored); the picture conditions the sampling.
  void imageToVideoDemoGenerates() {
    QTemporaryDir tmp;
    const std::string dir = tmp.filePath("demo").toStdString();
    wan::DemoModelSpec spec;
    spec.i2v = true;
    wan::make_demo_model(dir, spec);
    wan::GenerationRequest r;
    r.model.model_dir = dir;
    r.prompt = "the sun sets over the sea";
    r.image = wan_test::golden("i2v_pipeline_small") + "/input.png";  // 56 x 40
    r.width = 64;
    r.height = 48;
    r.frames = 5;
    r.steps = 2;
    r.seed = 3;
    r.output = tmp.filePath("a.mp4").toStdString();
    r.save_latent = tmp.filePath("a.safetensors").toStdString();
    const wan::RunPlan plan = wan::make_plan(r);
    QVERIFY(plan.i2v);
    QCOMPARE(plan.dit.in_dim, std::int64_t(36));
    QCOMPARE(plan.clip.num_heads, std::int64_t(8));
    QCOMPARE(plan.clip.num_layers, std::int64_t(3));
    QCOMPARE(plan.clip.tokens(), std::int64_t(257));
    QCOMPARE(plan.request.width, 64);  // the picture's aspect within 64 x 48
    QCOMPARE(plan.request.height, 32);
    QVERIFY(plan.request.negative_prompt.rfind(wan::kImageToVideoNegativePrefix, 0) == 0);
    wan::generate(r);
    const nlohmann::json side = nlohmann::json::parse(wan::read_text_file(tmp.filePath("a.json").toStdString()));
    QCOMPARE(side.at("task").get<std::string>(), std::string("i2v"));
    const torch::Tensor a = wan::SafetensorsFile::open(r.save_latent)->view("latent").clone();
    QCOMPARE(a.sizes().vec(), (std::vector<std::int64_t>{16, 2, 4, 8}));
    QVERIFY(torch::isfinite(a).all().item<bool>());

    // Another picture of the same size, same seed: another video.
    wan::Rgb8Video black;
    black.frames = 1;
    black.width = 56;
    black.height = 40;
    black.data.assign(56 * 40 * 3, 0);
    wan::write_png(tmp.filePath("black.png").toStdString(), black, 0);
    r.image = tmp.filePath("black.png").toStdString();
    r.output = tmp.filePath("b.mp4").toStdString();
    r.save_latent = tmp.filePath("b.safetensors").toStdString();
    wan::generate(r);
    const torch::Tensor b = wan::SafetensorsFile::open(r.save_latent)->view("latent");
    QVERIFY2(wan_test::rel_l2(b, a) > 1e-3, std::to_string(wan_test::rel_l2(b, a)).c_str());
  }

  // The Wan2.2 demos: TI2V (a Wan2.2 VAE file, text-to-video at 24 fps, the picture's latent as frame 0
  // of the image-to-video run) and the I2V two-expert pair (no CLIP file, 36 input channels).
  void wan22DemosGenerate() {
    QTemporaryDir tmp;
    const std::string ti2v = tmp.filePath("ti2v").toStdString(), moe = tmp.filePath("moe").toStdString();
    wan::DemoModelSpec spec;
    spec.ti2v = true;
    wan::make_demo_model(ti2v, spec);
    QVERIFY(std::filesystem::exists(ti2v + "/Wan2.2_VAE.pth") && !std::filesystem::exists(ti2v + "/Wan2.1_VAE.pth"));
    wan::GenerationRequest r;
    r.model.model_dir = ti2v;
    r.prompt = "the sun sets over the sea";
    r.width = 64;
    r.height = 64;
    r.frames = 5;
    r.steps = 2;
    r.seed = 3;
    r.output = tmp.filePath("t.mp4").toStdString();
    r.save_latent = tmp.filePath("t.safetensors").toStdString();
    wan::RunPlan plan = wan::make_plan(r);
    QVERIFY(plan.dit.kind == wan::DitKind::kTI2V && plan.vae.wan22 && !plan.i2v);
    QCOMPARE(plan.request.fps.value(), 24);
    QCOMPARE(plan.request.steps.value(), 2);  // given: TI2V-5B defaults only fill what is not
    wan::generate(r);
    QCOMPARE(wan::SafetensorsFile::open(r.save_latent)->view("latent").sizes().vec(),
             (std::vector<std::int64_t>{48, 2, 4, 4}));
    const auto video = [&](const char* sidecar) {
      return nlohmann::json::parse(wan::read_text_file(tmp.filePath(sidecar).toStdString())).at("video");
    };
    QCOMPARE(video("t.json").at("fps").get<int>(), 24);
    QCOMPARE(video("t.json").at("width").get<int>(), 64);
    r.image = wan_test::golden("i2v_pipeline_small") + "/input.png";  // 56 x 40
    r.width = 96;
    r.height = 64;
    r.output = tmp.filePath("ti.mp4").toStdString();
    r.save_latent = tmp.filePath("ti.safetensors").toStdString();
    plan = wan::make_plan(r);
    QVERIFY(plan.i2v);
    QCOMPARE(plan.request.width, 96);  // best_output_size(56, 40, 32, 32, 96 * 64)
    QCOMPARE(plan.request.height, 64);
    wan::generate(r);
    const torch::Tensor latent = wan::SafetensorsFile::open(r.save_latent)->view("latent");
    QVERIFY(torch::isfinite(latent).all().item<bool>());

    spec = wan::DemoModelSpec{};
    spec.moe = true;
    spec.i2v = true;
    spec.dit_layers = 2;
    wan::make_demo_model(moe, spec);
    QVERIFY(std::filesystem::is_directory(moe + "/high_noise_model") &&
            !std::filesystem::exists(moe + "/models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"));
    r.model.model_dir = moe;
    r.width = 64;
    r.height = 48;
    r.steps = 4;
    r.output = tmp.filePath("m.mp4").toStdString();
    r.save_latent = tmp.filePath("m.safetensors").toStdString();
    plan = wan::make_plan(r);
    QVERIFY(plan.moe && plan.i2v && !plan.dit.has_clip_input());
    QCOMPARE(plan.dit.in_dim, std::int64_t(36));
    QCOMPARE(plan.request.boundary.value(), 0.9);  // I2V-A14B's
    wan::generate(r);
    QCOMPARE(video("m.json").at("fps").get<int>(), 16);
    spec.ti2v = true;
    wan_test::expect_error([&] { wan::make_demo_model(tmp.filePath("bad").toStdString(), spec); },
                           wan::ErrorCode::kInvalidArgument, {"neither --i2v nor --moe"});
  }

  // The output folder vanishes while sampling: the latent goes to the fallback folder
  // ($XDG_STATE_HOME/wan-studio/latents), a note says so at once, and the run's error names the file.
  void latentGoesToTheFallbackFolderWhenTheOutputFolderCannotBeWritten() {
    QTemporaryDir tmp;
    const QString out_dir = tmp.filePath("out"), state = tmp.filePath("state");
    QVERIFY(QDir().mkpath(out_dir));
    const QByteArray old_state = qgetenv("XDG_STATE_HOME");
    qputenv("XDG_STATE_HOME", state.toUtf8());
    wan::Job job;
    job.request.model.model_dir = wan_test::golden("t2v_pipeline_small");
    job.request.prompt = "a fox";
    job.request.width = 64;
    job.request.height = 48;
    job.request.frames = 5;
    job.request.steps = 2;
    job.request.seed = 1;
    job.request.output = (out_dir + "/clip.mp4").toStdString();
    wan::RankHooks hooks;
    hooks.save_latent_before_decode = true;
    hooks.on_step = [&](int step, int total, const torch::Tensor&) {
      if (step == total) QDir(out_dir).removeRecursively();
    };
    std::vector<std::string> notes;
    hooks.on_note = [&](const std::string& text) { notes.push_back(text); };
    const std::string kept = (state + "/wan-studio/latents/clip.latent.safetensors").toStdString();
    try {
      wan::generate_with_hooks(job, {}, hooks);
      QFAIL("the video cannot be written: the run must fail");
    } catch (const wan::Error& e) {
      QVERIFY2(std::string(e.what()).find("the sampled latent is kept in " + kept) != std::string::npos, e.what());
    }
    if (old_state.isNull())
      qunsetenv("XDG_STATE_HOME");
    else
      qputenv("XDG_STATE_HOME", old_state);
    QCOMPARE(notes.size(), std::size_t(1));
    QVERIFY2(notes[0].find("the sampled latent is kept in " + kept + " instead") != std::string::npos,
             notes[0].c_str());
    QCOMPARE(wan::SafetensorsFile::open(kept)->view("latent").sizes().vec(), (std::vector<std::int64_t>{16, 2, 6, 8}));
    QVERIFY(!QFileInfo::exists(out_dir));
  }

  void refusesANonEmptyFolder() {
    QTemporaryDir tmp;
    QFile f(tmp.filePath("keep.txt"));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.close();
    wan_test::expect_error([&] { wan::make_demo_model(tmp.path().toStdString()); }, wan::ErrorCode::kInvalidArgument,
                           {"not empty"});
    QCOMPARE(QDir(tmp.path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot), QStringList{"keep.txt"});
  }
};

QTEST_APPLESS_MAIN(TestDemoModel)
#include "tst_demo_model.moc"
