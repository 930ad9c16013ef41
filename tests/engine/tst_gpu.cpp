// What only a GPU can show (CTest label `gpu`; `ctest -L gpu` on a GPU machine runs them all): the
// official-code fixtures on CUDA in float32 and bfloat16, SDPA's flash / memory-efficient / cuDNN / math
// back-ends on Wan's attention shapes, a world-1 NCCL generation against the official CPU reference
// latent, and the CUDA allocator's peak against the memory estimator. Where LibTorch sees no CUDA GPU
// (or the build is the CPU-only variant) every test reports a skip that says why.
// LibTorch before Qt: Qt's `slots` keyword macro breaks LibTorch's IValue headers.
#include <torch/torch.h>

#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "dist/sequence_parallel.h"
#include "model/layers.h"
#include "test_util.h"
#include "wan/error.h"
#include "wan/eval_case.h"
#include "wan/version.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

using wan_test::golden;
using wan_test::run_wan;

// QSKIP returns from the test function, so this is a macro.
#define REQUIRE_CUDA_GPU()                                                                                   \
  do {                                                                                                       \
    if (!WAN_WITH_CUDA) QSKIP("CPU-only build (no CUDA toolkit when configured): no CUDA code to test");     \
    if (!torch::cuda::is_available()) QSKIP(("no CUDA GPU visible: " + wan::build_info().gpu_note).c_str()); \
  } while (0)

namespace {

QString write_world1_nccl(const QTemporaryDir& dir, bool t5_cpu = false) {
  const QString path = dir.path() + (t5_cpu ? "/world1-nccl-t5cpu.json" : "/world1-nccl.json");
  QFile f(path);
  f.open(QIODevice::WriteOnly);
  f.write(t5_cpu ? R"({"world_size": 1, "backend": "nccl", "t5_cpu": true})"
                 : R"({"world_size": 1, "backend": "nccl"})");
  return path;
}

}  // namespace

class TestGpu : public QObject {
  Q_OBJECT
 private slots:
  // float32 means full float32 here: LibTorch runs cuDNN convolutions in TF32 by default (about 1e-3
  // relative error), which the fp32 tolerances are not for. In this process, and in every `wan` it starts
  // (WAN_CUDA_TF32, core/runtime.cpp).
  void initTestCase() {
    qputenv("WAN_CUDA_TF32", "0");
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }

  void buildHasCuda() {
    REQUIRE_CUDA_GPU();
    const wan::BuildInfo info = wan::build_info();
    QVERIFY(info.cuda_compiled);
    QVERIFY(info.nccl_compiled);
    QVERIFY2(!info.gpus.empty(), "LibTorch sees a GPU but build_info lists none");
  }

  // Every module and pipeline fixture on cuda: float32 within the CPU tolerances, bfloat16 within 3e-2.
  void fixturesOnCuda_data() {
    QTest::addColumn<QString>("case_name");
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<double>("tolerance");
    for (const char* c : {"dit_t2v_small", "dit_t2v_padded", "t5_small", "vae_small", "clip_vision_small"}) {
      QTest::newRow((std::string(c) + "/fp32").c_str()) << c << "fp32" << 1e-4;
      QTest::newRow((std::string(c) + "/bf16").c_str()) << c << "bf16" << 3e-2;
    }
    for (const char* c : {"t2v_pipeline_small", "i2v_pipeline_small"}) {
      QTest::newRow((std::string(c) + "/fp32").c_str()) << c << "fp32" << 1e-3;
      QTest::newRow((std::string(c) + "/bf16").c_str()) << c << "bf16" << 3e-2;
    }
  }
  void fixturesOnCuda() {
    REQUIRE_CUDA_GPU();
    QFETCH(QString, case_name);
    QFETCH(QString, dtype);
    QFETCH(double, tolerance);
    QTemporaryDir dir;
    wan::EvalCaseOptions options;
    options.dtype = dtype.toStdString();
    options.device = "cuda";
    const wan::EvalCaseResult r =
        wan::run_eval_case(golden(case_name.toStdString()), dir.path().toStdString() + "/out.safetensors", options);
    QVERIFY(!r.relative_errors.empty());
    for (const auto& [name, err] : r.relative_errors) {
      qInfo("%s %s %s: relative L2 error %.3e", qPrintable(case_name), qPrintable(dtype), name.c_str(), err);
      QVERIFY2(err < tolerance, (name + ": relative L2 error " + std::to_string(err)).c_str());
    }
  }

  // Each of SDPA's CUDA back-ends, alone, on a Wan self-attention shape (head dim 128) with padded keys,
  // against the chunked reference computed in float32 on the CPU.
  void sdpaBackendsMatchReference_data() {
    QTest::addColumn<QString>("backend");
    QTest::addColumn<QString>("dtype");
    for (const char* b : {"flash", "efficient", "cudnn", "math"})
      for (const char* d : {"bf16", "fp16"}) QTest::newRow((std::string(b) + "/" + d).c_str()) << b << d;
    QTest::newRow("efficient/fp32") << "efficient"
                                    << "fp32";
    QTest::newRow("math/fp32") << "math"
                               << "fp32";
  }
  void sdpaBackendsMatchReference() {
    REQUIRE_CUDA_GPU();
    QFETCH(QString, backend);
    QFETCH(QString, dtype);
    torch::NoGradGuard no_grad;
    const auto st = dtype == "bf16" ? torch::kBFloat16 : dtype == "fp16" ? torch::kFloat16 : torch::kFloat32;
    torch::manual_seed(3);
    // [B, L, n, d]: 1 x 1560 tokens (a 480x272, 17-frame latent after patching) x 12 heads x 128.
    const torch::Tensor q = torch::randn({1, 1560, 12, 128}), k = torch::randn({1, 1560, 12, 128}),
                        v = torch::randn({1, 1560, 12, 128});
    const std::int64_t valid = 1500;  // padded keys past this are masked (dropped)
    wan::set_attention_mode(wan::AttentionMode::kMath);
    const torch::Tensor ref = wan::attention(q, k, v, valid);  // CPU float32, the chunked reference
    wan::set_attention_mode(wan::AttentionMode::kSdpa);
    auto& ctx = at::globalContext();
    const bool flash = ctx.userEnabledFlashSDP(), mem = ctx.userEnabledMemEfficientSDP(),
               cudnn = ctx.userEnabledCuDNNSDP(), math = ctx.userEnabledMathSDP();
    ctx.setSDPUseFlash(backend == "flash");
    ctx.setSDPUseMemEfficient(backend == "efficient");
    ctx.setSDPUseCuDNN(backend == "cudnn");
    ctx.setSDPUseMath(backend == "math");
    torch::Tensor out;
    QString failure;
    try {
      out = wan::attention(q.to(torch::kCUDA, st), k.to(torch::kCUDA, st), v.to(torch::kCUDA, st), valid).cpu();
    } catch (const std::exception& e) {
      failure = QString::fromStdString(e.what()).section('\n', 0, 0);
    }
    ctx.setSDPUseFlash(flash);
    ctx.setSDPUseMemEfficient(mem);
    ctx.setSDPUseCuDNN(cudnn);
    ctx.setSDPUseMath(math);
    // cuDNN attention depends on the cuDNN version and GPU; flash and memory-efficient kernels exist for
    // bf16/fp16 with head dim 128 on every GPU this project targets (sm_80+), and must run.
    if (!failure.isEmpty() && backend == "cudnn")
      QSKIP(qPrintable("SDPA back-end cudnn not available for " + dtype + " here: " + failure));
    QVERIFY2(failure.isEmpty(), qPrintable(failure));
    const double err = wan_test::rel_l2(out, ref);
    qInfo("SDPA %s %s: relative L2 error %.3e", qPrintable(backend), qPrintable(dtype), err);
    QVERIFY2(err < (st == torch::kFloat32 ? 1e-4 : 3e-2), qPrintable(QString::number(err)));
  }

  // A ring block through CUDA's flash kernel (which returns the log-sum-exp the ring merges by) against
  // the chunked reference in float32 on the CPU.
  void ringBlockFlashMatchesReference_data() {
    QTest::addColumn<int>("dtype");
    QTest::newRow("bf16") << static_cast<int>(torch::kBFloat16);
    QTest::newRow("fp16") << static_cast<int>(torch::kFloat16);
  }
  void ringBlockFlashMatchesReference() {
    REQUIRE_CUDA_GPU();
    QFETCH(int, dtype);
    torch::NoGradGuard no_grad;
    torch::manual_seed(5);
    // [L, h, d]: 780 queries, 800 keys of which 760 are real, 6 heads of 128 (Wan's head dim).
    const torch::Tensor q = torch::randn({780, 6, 128}), k = torch::randn({800, 6, 128}),
                        v = torch::randn({800, 6, 128});
    wan::set_attention_mode(wan::AttentionMode::kMath);
    const auto [ref_out, ref_lse] = wan::attention_block_lse(q, k, v, 760);
    wan::set_attention_mode(wan::AttentionMode::kSdpa);
    const auto st = static_cast<torch::ScalarType>(dtype);
    const auto [out, lse] =
        wan::attention_block_lse(q.to(torch::kCUDA, st), k.to(torch::kCUDA, st), v.to(torch::kCUDA, st), 760);
    const double e_out = wan_test::rel_l2(out.cpu(), ref_out), e_lse = wan_test::rel_l2(lse.cpu(), ref_lse);
    qInfo("ring block flash %s: output %.3e, log-sum-exp %.3e", c10::toString(st), e_out, e_lse);
    QVERIFY2(e_out < 3e-2 && e_lse < 3e-2, qPrintable(QString("%1 %2").arg(e_out).arg(e_lse)));
  }

  // The distributed path on a GPU: launcher, wan-worker, ProcessGroupNCCL, the board; CPU noise, so the
  // final latent must equal the official code's CPU reference within the fixtures' tolerances.
  void ncclWorldOneMatchesCpuReference_data() {
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<double>("tolerance");
    QTest::newRow("fp32") << "fp32" << 1e-3;
    QTest::newRow("bf16") << "bf16" << 3e-2;
  }
  void ncclWorldOneMatchesCpuReference() {
    REQUIRE_CUDA_GPU();
    QFETCH(QString, dtype);
    QFETCH(double, tolerance);
    QTemporaryDir dir;
    const QString latent = dir.path() + "/latent.safetensors";
    QStringList args = wan_test::t2v_fixture_args(QString::fromStdString(golden("t2v_pipeline_small")));
    args << "--dtype" << dtype << "--device"
         << "cuda"
         << "--cpu-noise"
         << "--dist-config" << write_world1_nccl(dir) << "--save-latent" << latent << "--frames-dir"
         << dir.path() + "/frames";
    const wan_test::Run r = run_wan(args);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const double err = wan_test::t2v_fixture_latent_error(latent);
    qInfo("NCCL world 1 %s: final latent relative L2 error %.3e", qPrintable(dtype), err);
    QVERIFY2(err < tolerance, qPrintable(QString::number(err)));
    QCOMPARE(wan_test::files_in(dir.path() + "/frames").size(), 9);
  }

  // t5_cpu of the distributed config (its one owner) keeps umT5 off the GPU in a launched run: the GPU
  // allocator's peak while the text is encoded is 0 with it, the encoder's weights and more without.
  // (Before the job document the config's t5_cpu never reached the ranks.)
  void t5CpuFromTheConfigKeepsUmT5OffTheGpu() {
    REQUIRE_CUDA_GPU();
    QTemporaryDir dir;
    const QString model = dir.path() + "/t5";
    QCOMPARE(run_wan({"make-demo-model", model, "--t5-dim", "512", "--t5-layers", "4", "--t5-ffn", "1024"}).code, 0);
    auto text_peak_mib = [&](bool t5_cpu) {
      qputenv("WAN_MEMORY_REPORT", "1");  // each rank's peak per phase on stderr (core/memory_report.h)
      const wan_test::Run r =
          run_wan({"generate", "--model", model, "--prompt", "a fox", "--size", "256*160", "--frames", "5", "--steps",
                   "1", "--device", "cuda", "--dist-config", write_world1_nccl(dir, t5_cpu), "--save-latent",
                   dir.path() + (t5_cpu ? "/a.safetensors" : "/b.safetensors")});
      qunsetenv("WAN_MEMORY_REPORT");
      const auto m = QRegularExpression(R"(memory peak by phase:.* text ([0-9]+) MiB)").match(r.err);
      if (r.code != 0 || !m.hasMatch()) qWarning("%s", qPrintable(r.err));
      return m.hasMatch() ? m.captured(1).toInt() : -1;
    };
    const int on_gpu = text_peak_mib(false), on_cpu = text_peak_mib(true);
    qInfo("GPU allocator peak while encoding text: %d MiB with umT5 on the GPU, %d MiB with t5_cpu", on_gpu, on_cpu);
    QCOMPARE(on_cpu, 0);
    QVERIFY2(on_gpu >= 8, qPrintable(QString::number(on_gpu)));
  }

  // Wan2.2 A14B with idle_expert_on_host on the GPU: the low-noise expert waits in pinned host memory and
  // is copied in at the boundary; the latent is the one with both experts on the GPU, and the run reports
  // the copy's time.
  void idleExpertOnHostOnCuda() {
    REQUIRE_CUDA_GPU();
    QTemporaryDir dir;
    const QString moe = QString::fromStdString(wan_test::data_dir() + "/golden22/t2v_moe_pipeline_small");
    const QString idle = dir.path() + "/idle.json";
    QFile f(idle);
    QVERIFY(f.open(QIODevice::WriteOnly) && f.write(R"({"idle_expert_on_host": true})") > 0);
    f.close();
    const QStringList args = {
        "generate",    "--model",  moe,        "--prompt", "a red fox runs through the snowy forest at dawn",
        "--size",      "64*48",    "--frames", "9",        "--steps",
        "8",           "--shift",  "8",        "--seed",   "42",
        "--cpu-noise", "--device", "cuda",     "--dtype",  "fp32"};
    const wan_test::Run both = run_wan(QStringList(args) << "--save-latent" << dir.path() + "/both.safetensors");
    QVERIFY2(both.code == 0, qPrintable(both.err));
    const wan_test::Run one =
        run_wan(QStringList(args) << "--dist-config" << idle << "--save-latent" << dir.path() + "/one.safetensors");
    QVERIFY2(one.code == 0, qPrintable(one.err));
    const auto latent = [&](const char* f) {
      return wan::SafetensorsFile::open((dir.path() + f).toStdString())->view("latent");
    };
    QVERIFY(torch::equal(latent("/both.safetensors"), latent("/one.safetensors")));
    qInfo("%s", qPrintable(wan_test::last_line(one.out)));
  }

  // CUDA out of memory (WAN_TEST_OOM asks the caching allocator for more than is free when the phase
  // begins) is the named outcome: exit 11, the device and phase, the free memory and the estimate, no
  // stack trace; after the sampling the latent is kept.
  void cudaOutOfMemoryIsNamed_data() {
    QTest::addColumn<QString>("phase");
    QTest::addColumn<QString>("words");
    QTest::newRow("sampling") << "sampling"
                              << "sampling";
    QTest::newRow("decoding") << "decoding"
                              << "decoding the latent (VAE)";
  }
  void cudaOutOfMemoryIsNamed() {
    REQUIRE_CUDA_GPU();
    QFETCH(QString, phase);
    QFETCH(QString, words);
    QTemporaryDir dir;
    qputenv("WAN_TEST_OOM", phase.toUtf8());
    const wan_test::Run r = run_wan({"generate", "--model", QString::fromStdString(golden("t2v_pipeline_small")),
                                     "--prompt", "a fox", "--size", "64*48", "--frames", "5", "--steps", "2",
                                     "--device", "cuda", "--output", dir.filePath("clip.mp4")});
    qunsetenv("WAN_TEST_OOM");
    QCOMPARE(r.code, static_cast<int>(wan::ErrorCode::kOutOfMemory));
    const QString line = r.err.trimmed().section('\n', -1);
    QVERIFY2(line.contains(QRegularExpression("^wan: error: out of memory on cuda(:0)? while " +
                                              QRegularExpression::escape(words))),
             qPrintable(r.err));
    QVERIFY2(line.contains("free") && line.contains("per GPU by the estimate"), qPrintable(line));
    QVERIFY2(!r.err.contains("Exception raised from"), qPrintable(r.err));
    QCOMPARE(QFileInfo::exists(dir.filePath("clip.latent.safetensors")), phase == "decoding");
  }

  // The CUDA caching allocator's peak (what the rank reports on the board: tensor bytes) against the
  // tensor part of `wan estimate` for the same run (its peak less the fixed runtime term, the CUDA
  // context and allocator slack the allocator does not count): within 10 %, the estimator's target
  // (docs/MEMORY.md), or 64 MiB (cuBLAS / cuDNN workspaces come from the same allocator and are not
  // modelled). A mid-size random model, so that the figures are hundreds of MiB.
  void allocatorPeakMatchesEstimate() {
    REQUIRE_CUDA_GPU();
    QTemporaryDir dir;
    const QString model = dir.path() + "/mid";
    QCOMPARE(run_wan({"make-demo-model", model, "--dim", "512", "--layers", "8", "--ffn", "2048", "--t5-dim", "512",
                      "--t5-layers", "4", "--t5-ffn", "1024", "--vae-dim", "32"})
                 .code,
             0);
    const QStringList common = {"--model", model,      "--size", "832*480",       "--frames",
                                "33",      "--device", "cuda",   "--dist-config", write_world1_nccl(dir)};
    const wan_test::Run run = run_wan(QStringList{"generate", "--prompt", "a red fox running through snow", "--steps",
                                                  "2", "--seed", "1", "--frames-dir", dir.path() + "/frames-peak"} +
                                      common);
    QVERIFY2(run.code == 0, qPrintable(run.err));
    QRegularExpression peak_re(R"(rank 0: peak memory ([0-9.]+) MiB)");
    const auto m = peak_re.match(run.err + run.out);
    QVERIFY2(m.hasMatch(), qPrintable(run.err));
    const double measured = m.captured(1).toDouble();
    const wan_test::Run est = run_wan(QStringList{"estimate", "--json", "--backend", "nccl"} + common);
    QVERIFY2(est.code == 0, qPrintable(est.err));
    const nlohmann::json j = nlohmann::json::parse(est.out.toStdString());
    double estimate = -1;
    for (const auto& c : j.at("rows").back().at("cells"))
      if (c.at("current").get<bool>())
        estimate =
            (c.at("estimate").at("peak_bytes").get<double>() - c.at("estimate").at("runtime_bytes").get<double>()) /
            (1 << 20);
    QVERIFY(estimate > 0);
    const double error = (estimate - measured) / measured;
    qInfo("allocator peak %.1f MiB, estimate without the runtime term %.1f MiB (%+.1f %%)", measured, estimate,
          100 * error);
    QVERIFY2(std::abs(estimate - measured) <= std::max(0.10 * measured, 64.0),
             qPrintable(QString("estimate %1 MiB vs measured %2 MiB").arg(estimate).arg(measured)));
  }
};

// Without a CUDA GPU every test skips (with its reason); the run then exits 77, which CTest reports as
// Skipped (SKIP_RETURN_CODE). A failure still exits non-zero and is reported as a failure.
int main(int argc, char** argv) {
  QCoreApplication app(argc, argv);
  TestGpu test;
  const int code = QTest::qExec(&test, argc, argv);
  const bool gpu = WAN_WITH_CUDA && torch::cuda::is_available();
  if (code == 0 && !gpu) {
    std::fprintf(stderr, "tst_gpu: skipped: %s\n",
                 WAN_WITH_CUDA ? ("no CUDA GPU visible: " + wan::build_info().gpu_note).c_str() : "CPU-only build");
    return 77;
  }
  return code;
}
#include "tst_gpu.moc"
