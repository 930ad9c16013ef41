// Image-to-video as a user runs it: `wan generate --image` on the official-code i2v fixture (one
// process and `--world-size 2 --cfg-parallel`) against the reference latent and video size; the output
// size rule (max area, the picture's aspect); the CLIP tower from a ComfyUI / Hugging Face named file;
// and the mistakes: no picture for an I2V model, a picture for a T2V model, no CLIP file, a broken or
// missing picture: one clear line, the error's exit code, nothing written.
#include <unistd.h>

#include <QImage>
#include <QProcess>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "model/model_files.h"
#include "pipeline/demo_model.h"
#include "pipeline/model_folder.h"
#include "pipeline/plan.h"
#include "test_util.h"
#include "video/image_reader.h"
#include "wan/estimate.h"
#include "wan/model_info.h"
#include "weights/file_util.h"
#include "weights/loader.h"
#include "weights/safetensors.h"

using wan_test::golden;

namespace {

using wan_test::Run;
using wan_test::run_wan;

QString fixture() { return QString::fromStdString(golden("i2v_pipeline_small")); }

// run.json as CLI flags: the picture, max_area as --size, the sampling settings.
QStringList fixture_args(const QString& model_dir) {
  const nlohmann::json run = nlohmann::json::parse(wan::read_text_file(golden("i2v_pipeline_small") + "/run.json"));
  auto num = [&](const char* k) { return QString::number(run.at(k).get<double>()); };
  const QString size =
      QString("%1*%2").arg(run.at("max_area").at(0).get<int>()).arg(run.at("max_area").at(1).get<int>());
  return {"generate",
          "--model",
          model_dir,
          "--image",
          fixture() + "/input.png",
          "--prompt",
          QString::fromStdString(run.at("prompt").get<std::string>()),
          "--negative",
          QString::fromStdString(run.at("negative_prompt").get<std::string>()),
          "--size",
          size,
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
          "fp32"};
}

double latent_error(const QString& path) {
  auto written = wan::SafetensorsFile::open(path.toStdString());
  auto io = wan::SafetensorsFile::open(golden("i2v_pipeline_small") + "/io.safetensors");
  return wan_test::rel_l2(written->view("latent"), io->view("final_latent"));
}

QString probe(const QString& path) {
  QProcess p;
  p.start("ffprobe", {"-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                      "stream=nb_read_frames,width,height", "-of", "csv=p=0", path});
  if (!p.waitForFinished(60000) || p.exitCode() != 0) return "ffprobe failed: " + p.readAllStandardError();
  return QString(p.readAllStandardOutput()).trimmed();
}

using wan_test::files_in;

// A copy of the fixture folder without some files.
QString copy_fixture(const QTemporaryDir& tmp, const QStringList& leave_out = {}) {
  const QString dst = tmp.filePath("model");
  QDir().mkpath(dst + "/google/umt5-xxl");
  for (const QString& f :
       {"config.json", "diffusion_pytorch_model.safetensors", "models_t5_umt5-xxl-enc-bf16.pth", "Wan2.1_VAE.pth",
        "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth", "google/umt5-xxl/spiece.model"})
    if (!leave_out.contains(f)) QFile::copy(fixture() + "/" + f, dst + "/" + f);
  return dst;
}

}  // namespace

class TestImageToVideo : public QObject {
  Q_OBJECT
 private slots:
  // WanI2V.generate's size rule, figures computed with the reference's Python expression.
  void outputSize_data() {
    QTest::addColumn<int>("maxW");
    QTest::addColumn<int>("maxH");
    QTest::addColumn<int>("imageW");
    QTest::addColumn<int>("imageH");
    QTest::addColumn<int>("w");
    QTest::addColumn<int>("h");
    QTest::newRow("480p area, 16:9 picture") << 832 << 480 << 1280 << 720 << 832 << 464;
    QTest::newRow("480p area, 9:16 picture") << 832 << 480 << 720 << 1280 << 464 << 832;
    QTest::newRow("720p area, square picture") << 1280 << 720 << 1024 << 1024 << 960 << 960;
    QTest::newRow("720p area, 1080p picture") << 1280 << 720 << 1920 << 1080 << 1280 << 720;
    QTest::newRow("480p area, 3:2 picture") << 832 << 480 << 500 << 333 << 768 << 512;
    QTest::newRow("fixture") << 64 << 48 << 56 << 40 << 64 << 32;
  }
  void outputSize() {
    QFETCH(int, maxW);
    QFETCH(int, maxH);
    QFETCH(int, imageW);
    QFETCH(int, imageH);
    QFETCH(int, w);
    QFETCH(int, h);
    const auto size = wan::image_to_video_size(maxW, maxH, imageW, imageH, 8, 2, 2);
    QCOMPARE(static_cast<int>(size[0]), w);
    QCOMPARE(static_cast<int>(size[1]), h);
  }

  // The engine's own PNG decoder (no FFmpeg needed) against Qt's, for every colour type and depth Qt
  // writes: odd sizes exercise the row filters; alpha is dropped; 16-bit samples by their high byte.
  void pngPicturesDecode_data() {
    QTest::addColumn<int>("format");
    QTest::addColumn<int>("tolerance");
    QTest::newRow("RGB 8") << int(QImage::Format_RGB888) << 0;
    QTest::newRow("RGBA 8") << int(QImage::Format_ARGB32) << 0;
    QTest::newRow("palette") << int(QImage::Format_Indexed8) << 0;
    QTest::newRow("grey 8") << int(QImage::Format_Grayscale8) << 0;
    QTest::newRow("1 bit") << int(QImage::Format_Mono) << 0;
    QTest::newRow("grey 16") << int(QImage::Format_Grayscale16) << 1;
    QTest::newRow("RGBA 16") << int(QImage::Format_RGBA64) << 1;
  }
  void pngPicturesDecode() {
    QFETCH(int, format);
    QFETCH(int, tolerance);
    QImage source(37, 23, QImage::Format_ARGB32);
    for (int y = 0; y < source.height(); ++y)
      for (int x = 0; x < source.width(); ++x)
        source.setPixel(x, y,
                        qRgba((x * 53 + y * 7) % 256, (x * x + y * 31) % 256, (x * y * 11) % 256, (x * 17 + y) % 256));
    const QImage image = source.convertToFormat(static_cast<QImage::Format>(format));
    QTemporaryDir tmp;
    const QString path = tmp.filePath("p.png");
    QVERIFY(image.save(path, "PNG"));
    const wan::Rgb8Video got = wan::read_image(path.toStdString());
    const QImage want = image.convertToFormat(QImage::Format_RGB888);
    QCOMPARE(got.width, 37);
    QCOMPARE(got.height, 23);
    int worst = 0;
    for (int y = 0; y < 23; ++y)
      for (int x = 0; x < 37; ++x)
        for (int c = 0; c < 3; ++c)
          worst =
              std::max(worst, std::abs(int(got.data[(y * 37 + x) * 3 + c]) - int(want.constScanLine(y)[x * 3 + c])));
    QVERIFY2(worst <= tolerance, qPrintable(QString("differs by %1").arg(worst)));

    // A damaged file is named, not half-read.
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadWrite));
    f.seek(f.size() / 2);
    f.write("garbage!");
    f.close();
    wan_test::expect_error([&] { wan::read_image(path.toStdString()); }, wan::ErrorCode::kCorruptFile,
                           {"p.png", "cannot read the picture"});
  }

  void cliMatchesReference() {
    QTemporaryDir tmp;
    const QString out = tmp.filePath("fox.mp4"), latent = tmp.filePath("fox.safetensors");
    const Run r = run_wan(fixture_args(fixture()) << "--output" << out << "--save-latent" << latent);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const double e = latent_error(latent);
    QVERIFY2(e < 1e-3, qPrintable(QString("final latent relative L2 error %1").arg(e)));
    QCOMPARE(probe(out), QString("64,32,9"));  // run.json's output_size, from max_area and the aspect
    const nlohmann::json side = nlohmann::json::parse(wan::read_text_file(tmp.filePath("fox.json").toStdString()));
    QCOMPARE(side.at("task").get<std::string>(), std::string("i2v"));
    QCOMPARE(side.at("video").at("width").get<int>(), 64);
    QCOMPARE(side.at("video").at("height").get<int>(), 32);
    QCOMPARE(side.at("request").at("width").get<int>(), 64);  // the area asked for (a re-run asks the same)
    QCOMPARE(side.at("request").at("height").get<int>(), 48);
    QVERIFY(side.at("request").at("image").get<std::string>().find("input.png") != std::string::npos);
    QVERIFY(side.at("image").at("path").get<std::string>().find("input.png") != std::string::npos);
    QVERIFY(side.at("model").at("clip").at("bytes").get<std::int64_t>() > 0);
    QCOMPARE(files_in(tmp.path()), QStringList({"fox.json", "fox.mp4", "fox.safetensors"}));
  }

  // The workers get the picture and the CLIP file too; CFG parallel sends both branches the image.
  void cliTwoRanksMatchReference() {
    QTemporaryDir tmp;
    const QString latent = tmp.filePath("fox.safetensors");
    const Run r =
        run_wan(fixture_args(fixture()) << "--world-size"
                                        << "2"
                                        << "--cfg-parallel"
                                        << "--run-id" << QString("i2v-%1").arg(getpid()) << "--save-latent" << latent);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const double e = latent_error(latent);
    QVERIFY2(e < 1e-3, qPrintable(QString("final latent relative L2 error %1").arg(e)));
  }

  // ComfyUI's clip_vision files name the tower as Hugging Face's CLIPVisionModel (vision_model.*,
  // separate q/k/v, flat embeddings): converted, it must give the official file's features exactly,
  // and a ComfyUI folder's clip_vision/ is where it is found.
  void comfyUiClipVision() {
    QTemporaryDir tmp;
    const std::string pth = golden("clip_vision_small") + "/models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth";
    const wan::TensorSourcePtr official = wan::open_weights(pth);
    const wan::ClipVisionConfig c = wan::detect_clip_config(*official, 4);
    std::vector<std::pair<std::string, torch::Tensor>> hf;
    auto v = [&](const std::string& n) { return official->view("visual." + n).clone(); };
    hf.emplace_back("vision_model.embeddings.patch_embedding.weight", v("patch_embedding.weight"));
    hf.emplace_back("vision_model.embeddings.class_embedding", v("cls_embedding").reshape({c.dim}));
    hf.emplace_back("vision_model.embeddings.position_embedding.weight",
                    v("pos_embedding").reshape({c.tokens(), c.dim}));
    hf.emplace_back("vision_model.pre_layrnorm.weight", v("pre_norm.weight"));
    hf.emplace_back("vision_model.pre_layrnorm.bias", v("pre_norm.bias"));
    hf.emplace_back("vision_model.post_layernorm.weight", v("post_norm.weight"));
    hf.emplace_back("vision_model.post_layernorm.bias", v("post_norm.bias"));
    hf.emplace_back("visual_projection.weight", v("head").t().contiguous());
    for (std::int64_t i = 0; i < c.num_layers; ++i) {
      const std::string b = "transformer." + std::to_string(i) + ".",
                        h = "vision_model.encoder.layers." + std::to_string(i) + ".";
      const std::vector<torch::Tensor> w = v(b + "attn.to_qkv.weight").chunk(3, 0),
                                       bias = v(b + "attn.to_qkv.bias").chunk(3, 0);
      const char* qkv[] = {"q", "k", "v"};
      for (int j = 0; j < 3; ++j) {
        hf.emplace_back(h + "self_attn." + qkv[j] + "_proj.weight", w[j].contiguous());
        hf.emplace_back(h + "self_attn." + qkv[j] + "_proj.bias", bias[j].contiguous());
      }
      const std::pair<const char*, const char*> names[] = {{"norm1.weight", "layer_norm1.weight"},
                                                           {"norm1.bias", "layer_norm1.bias"},
                                                           {"norm2.weight", "layer_norm2.weight"},
                                                           {"norm2.bias", "layer_norm2.bias"},
                                                           {"attn.proj.weight", "self_attn.out_proj.weight"},
                                                           {"attn.proj.bias", "self_attn.out_proj.bias"},
                                                           {"mlp.0.weight", "mlp.fc1.weight"},
                                                           {"mlp.0.bias", "mlp.fc1.bias"},
                                                           {"mlp.2.weight", "mlp.fc2.weight"},
                                                           {"mlp.2.bias", "mlp.fc2.bias"}};
      for (const auto& [o, n] : names) hf.emplace_back(h + n, v(b + o));
    }
    const QString comfy = tmp.filePath("comfy");
    QVERIFY(QDir().mkpath(comfy + "/clip_vision"));
    const std::string hf_file = (comfy + "/clip_vision/clip_vision_h.safetensors").toStdString();
    wan::write_safetensors(hf_file, hf);

    const torch::Tensor image =
        wan::SafetensorsFile::open(golden("clip_vision_small") + "/io.safetensors")->view("image").clone();
    const auto placement = wan::ModelPlacement::make(torch::kFloat32, torch::kCPU);
    const torch::Tensor a = wan::load_clip(official, placement, 4).model->encode(image);
    const torch::Tensor b = wan::load_clip(wan::open_weights(hf_file), placement, 4).model->encode(image);
    QVERIFY(torch::equal(a, b));
    const double e = wan_test::rel_l2(
        a, wan::SafetensorsFile::open(golden("clip_vision_small") + "/io.safetensors")->view("clip_fea"));
    QVERIFY2(e < 1e-4, std::to_string(e).c_str());

    wan::ModelFiles files;
    files.model_dir = comfy.toStdString();
    wan::ResolvedModel resolved;
    resolved.layout = "comfyui";
    QCOMPARE(QString::fromStdString(wan::resolve_clip_file(files, resolved)), QString::fromStdString(hf_file));
    files.clip = "clip_vision_h.safetensors";  // a name inside clip_vision/
    QCOMPARE(QString::fromStdString(wan::resolve_clip_file(files, resolved)), QString::fromStdString(hf_file));
  }

  // The model panel and the estimator see the CLIP tower: its sizes from the file, parameter counts
  // that agree with the loaded module; a missing CLIP file is reported without failing the inspection.
  void inspectSeesTheClipTower() {
    QTemporaryDir tmp;
    const std::string dir = tmp.filePath("demo").toStdString();
    wan::DemoModelSpec spec;
    spec.i2v = true;
    wan::make_demo_model(dir, spec);
    wan::ModelFiles files;
    files.model_dir = dir;
    const wan::ModelInfo info = wan::inspect_model(files);
    QCOMPARE(info.kind, std::string("i2v"));
    QVERIFY(info.clip_error.empty());
    QCOMPARE(info.dims.clip_dim, 128);
    QCOMPARE(info.dims.clip_layers, 3);
    QCOMPARE(info.dims.clip_tokens, 257);
    const wan::LoadedClip clip =
        wan::load_clip(wan::open_weights(info.clip_path), wan::ModelPlacement::make(torch::kFloat32, torch::kCPU));
    std::int64_t loaded = 0;
    for (const auto& p : clip.model->parameters()) loaded += p.numel();
    QCOMPARE(info.dims.clip_params, loaded);
    QCOMPARE(wan::clip_param_count(info.dims), loaded);
    const wan::MemoryEstimate e = wan::estimate_memory(info.dims, wan::EstimateSettings{});
    QVERIFY(e.image_encoder > loaded * 2);

    QVERIFY(QFile::remove(QString::fromStdString(info.clip_path)));
    const wan::ModelInfo without = wan::inspect_model(files);
    QVERIFY(without.clip_error.find("models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth") != std::string::npos);
  }

  // generate.py's image-to-video defaults when --steps / --shift are not given: 40 steps, shift 3 at
  // 832*480 (5 elsewhere); given flags win.
  void imageToVideoDefaults() {
    QTemporaryDir tmp;
    const QString demo = tmp.filePath("demo");
    QCOMPARE(run_wan({"make-demo-model", demo, "--i2v"}).code, 0);
    auto settings = [&](const QStringList& extra) {
      const QString latent = tmp.filePath(QString("l%1.safetensors").arg(extra.size()));
      // One thread: 40 steps at 832*480 must not crawl when the CTest run beside it takes the other core.
      const Run r =
          run_wan(QStringList{"--threads", "1", "generate", "--model", demo, "--image", fixture() + "/input.png",
                              "--prompt", "a fox", "--frames", "1", "--save-latent", latent} +
                  extra);
      if (r.code != 0) qWarning() << r.err;
      const auto file = wan::SafetensorsFile::open(latent.toStdString());
      return nlohmann::json::parse(file->metadata().at("settings")).at("request");
    };
    const nlohmann::json p480 = settings({"--size", "832*480"});
    QCOMPARE(p480.at("steps").get<int>(), 40);
    QCOMPARE(p480.at("shift").get<double>(), 3.0);
    const nlohmann::json other = settings({"--size", "64*48", "--shift", "4"});
    QCOMPARE(other.at("steps").get<int>(), 40);
    QCOMPARE(other.at("shift").get<double>(), 4.0);
    const nlohmann::json given = settings({"--size", "64*48", "--steps", "2", "--seed", "1"});
    QCOMPARE(given.at("steps").get<int>(), 2);
    QCOMPARE(given.at("shift").get<double>(), 5.0);
  }

  void mistakesAreNamed_data() {
    QTest::addColumn<QString>("what");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("needle");
    QTest::newRow("i2v model without a picture") << "no-image" << 2 << "give the start picture with --image";
    QTest::newRow("picture for a t2v model") << "t2v" << 2 << "is a text-to-video model";
    QTest::newRow("no CLIP file") << "no-clip" << 3
                                  << "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth: missing";
    QTest::newRow("broken picture") << "broken" << 4 << "cannot read the picture";
    QTest::newRow("broken JPEG") << "broken-jpeg" << 4 << "picture.jpg: cannot be decoded";
    QTest::newRow("missing picture") << "missing" << 3 << "no such picture file";
    QTest::newRow("area too small") << "tiny" << 2 << "too small an area";
  }
  void mistakesAreNamed() {
    QFETCH(QString, what);
    QFETCH(int, code);
    QFETCH(QString, needle);
    QTemporaryDir tmp, out;
    QString model = fixture();
    QStringList args = fixture_args(model);
    auto set = [&](const QString& flag, const QString& value) { args[args.indexOf(flag) + 1] = value; };
    if (what == "no-image") {
      const int i = args.indexOf("--image");
      args.remove(i, 2);
    } else if (what == "t2v") {
      set("--model", QString::fromStdString(golden("t2v_pipeline_small")));
    } else if (what == "no-clip") {
      set("--model", copy_fixture(tmp, {"models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"}));
    } else if (what == "broken") {
      QFile f(tmp.filePath("picture.png"));
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("\x89PNG\r\n\x1a\n this is not a picture");
      f.close();
      set("--image", f.fileName());
    } else if (what == "broken-jpeg") {  // through FFmpeg, whose own complaints must not reach stderr
      QFile f(tmp.filePath("picture.jpg"));
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("\xff\xd8\xff\xe0 this is not a picture");
      f.close();
      set("--image", f.fileName());
    } else if (what == "missing") {
      set("--image", tmp.filePath("nowhere.png"));
    } else if (what == "tiny") {
      set("--size", "16*16");
    }
    const Run r =
        run_wan(args << "--output" << out.filePath("v.mp4") << "--save-latent" << out.filePath("l.safetensors"));
    const QString last = r.err.trimmed().section('\n', -1);
    QVERIFY2(r.code == code, qPrintable(QString("exit %1: %2").arg(r.code).arg(r.err)));
    QVERIFY2(last.contains(needle), qPrintable(last));
    QVERIFY2(!r.err.contains(" @ 0x"), qPrintable(r.err));  // no library log lines ("[mjpeg @ 0x...] ...")
    QVERIFY2(files_in(out.path()).isEmpty(), qPrintable(files_in(out.path()).join(", ")));
  }
};

QTEST_APPLESS_MAIN(TestImageToVideo)
#include "tst_image_to_video.moc"
