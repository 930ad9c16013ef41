// The module fixtures made with the official Wan2.1 code: DiT (t2v, padded), umT5, the VAE and the
// CLIP vision tower, in float32 (< 1e-4 relative L2) and bfloat16 / float16 (< 3e-2), through `wan eval-case`'s code.
#include "test_util.h"
#include "wan/eval_case.h"
#include "weights/safetensors.h"

using wan_test::golden;

class TestGoldenModules : public QObject {
  Q_OBJECT
 private slots:
  void matchesReference_data() {
    QTest::addColumn<QString>("case_name");
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<double>("tolerance");
    QTest::addColumn<int>("outputs");
    const struct {
      const char* name;
      int outputs;
    } cases[] = {
        {"dit_t2v_small", 2}, {"dit_t2v_padded", 1}, {"t5_small", 2}, {"vae_small", 2}, {"clip_vision_small", 1}};
    for (const auto& c : cases) {
      QTest::newRow((std::string(c.name) + "/fp32").c_str()) << c.name << "fp32" << 1e-4 << c.outputs;
      QTest::newRow((std::string(c.name) + "/bf16").c_str()) << c.name << "bf16" << 3e-2 << c.outputs;
      QTest::newRow((std::string(c.name) + "/fp16").c_str()) << c.name << "fp16" << 3e-2 << c.outputs;
    }
  }

  void matchesReference() {
    QFETCH(QString, case_name);
    QFETCH(QString, dtype);
    QFETCH(double, tolerance);
    QFETCH(int, outputs);
    QTemporaryDir dir;
    const std::string out = dir.path().toStdString() + "/out.safetensors";
    wan::EvalCaseOptions options;
    options.dtype = dtype.toStdString();
    const wan::EvalCaseResult r = wan::run_eval_case(golden(case_name.toStdString()), out, options);
    QCOMPARE(static_cast<int>(r.relative_errors.size()), outputs);
    // Check the written file against io.safetensors independently of the runner's own figures.
    auto written = wan::SafetensorsFile::open(out);
    auto io = wan::SafetensorsFile::open(golden(case_name.toStdString()) + "/io.safetensors");
    for (const auto& [name, err] : r.relative_errors) {
      const double e = wan_test::rel_l2(written->view(name), io->view(name));
      QVERIFY2(e < tolerance, (name + ": relative L2 error " + std::to_string(e)).c_str());
      QVERIFY(std::abs(e - err) < 1e-9 + 1e-6 * e);
    }
  }

  void unknownCaseKindIsRefused() {
    QTemporaryDir dir;
    wan_test::expect_error(
        [&] { wan::run_eval_case(dir.path().toStdString(), dir.path().toStdString() + "/o.safetensors", {}); },
        wan::ErrorCode::kFileNotFound, {"config.json"});
    QVERIFY(!QFile::exists(dir.path() + "/o.safetensors"));
  }
};

QTEST_APPLESS_MAIN(TestGoldenModules)
#include "tst_golden_modules.moc"
