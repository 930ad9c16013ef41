// Flow-matching schedules and the UniPC / DPM++ solvers against the official fm_solvers fixtures:
// every timestep exactly, every intermediate sample < 1e-5 relative L2.
#include "sampling/sampler.h"
#include "test_util.h"
#include "weights/safetensors.h"

using wan_test::golden;

class TestSamplers : public QObject {
  Q_OBJECT
 private slots:
  void matchesReference_data() {
    QTest::addColumn<QString>("case_name");
    QTest::addColumn<QString>("solver");
    QTest::addColumn<int>("steps");
    QTest::addColumn<double>("shift");
    QTest::newRow("unipc_10_shift5") << "unipc_10_shift5"
                                     << "unipc" << 10 << 5.0;
    QTest::newRow("dpmpp_8_shift3") << "dpmpp_8_shift3"
                                    << "dpm++" << 8 << 3.0;
  }

  void matchesReference() {
    QFETCH(QString, case_name);
    QFETCH(QString, solver);
    QFETCH(int, steps);
    QFETCH(double, shift);
    auto io = wan::SafetensorsFile::open(golden(case_name.toStdString()) + "/io.safetensors");
    auto sampler = wan::make_sampler(wan::parse_sampler(solver.toStdString()), steps, shift);
    const torch::Tensor ref_t = io->view("timesteps").to(torch::kFloat64);
    QCOMPARE(static_cast<int>(ref_t.size(0)), steps);
    torch::Tensor x = io->view("x_init").clone();
    for (int i = 0; i < steps; ++i) {
      const std::string s = std::to_string(i);
      QCOMPARE(sampler->current_timestep(), ref_t[i].item<double>());
      x = sampler->step(io->view("model_output_" + s), x);
      const double e = wan_test::rel_l2(x, io->view("x_" + s));
      QVERIFY2(e < 1e-5, ("step " + s + ": relative L2 error " + std::to_string(e)).c_str());
    }
    QCOMPARE(sampler->step_index(), steps);
    wan_test::expect_error([&] { sampler->step(io->view("model_output_0"), x); }, wan::ErrorCode::kInternal,
                           {"after the last step"});
  }

  // Values the reference documents for the default schedules (wan21-reference.md 4.6).
  void unipcScheduleMatchesDocumentedValues() {
    const wan::SigmaSchedule s50 = wan::unipc_schedule(50, 5.0);
    const std::vector<double> head{999, 995, 991, 987, 982, 978};
    QVERIFY(std::equal(head.begin(), head.end(), s50.timesteps.begin()));
    QCOMPARE(s50.timesteps[47], 241.0);
    QCOMPARE(s50.timesteps[48], 172.0);
    QCOMPARE(s50.timesteps[49], 92.0);
    QCOMPARE(static_cast<int>(s50.sigmas.size()), 51);
    QCOMPARE(s50.sigmas.back(), 0.0f);
    QVERIFY(std::abs(s50.sigmas[1] - 0.995732f) < 1e-6f);
    const wan::SigmaSchedule s40 = wan::unipc_schedule(40, 3.0);
    QCOMPARE(s40.timesteps[1], 991.0);
    QCOMPARE(s40.timesteps[39], 71.0);
    // DPM++ starts at sigma 1 exactly (timestep 1000).
    const wan::SigmaSchedule d = wan::dpmpp_schedule(20, 5.0);
    QCOMPARE(d.sigmas[0], 1.0f);
    QCOMPARE(d.timesteps[0], 1000.0);
  }

  void invalidSettingsAreRefused() {
    using wan::ErrorCode;
    wan_test::expect_error([] { wan::make_sampler(wan::SamplerKind::kUniPC, 0, 5.0); }, ErrorCode::kInvalidArgument,
                           {"steps"});
    wan_test::expect_error([] { wan::make_sampler(wan::SamplerKind::kUniPC, 10, std::nan("")); },
                           ErrorCode::kInvalidArgument, {"shift"});
    wan_test::expect_error([] { wan::make_sampler(wan::SamplerKind::kDpmPlusPlus, 10, -1.0); },
                           ErrorCode::kInvalidArgument, {"shift"});
    wan_test::expect_error([] { wan::parse_sampler("euler"); }, ErrorCode::kInvalidArgument,
                           {"euler", "unipc", "dpm++"});
  }

  // One step is allowed: UniPC then goes straight to the x0 prediction.
  void singleStepReturnsTheX0Prediction() {
    auto sampler = wan::make_sampler(wan::SamplerKind::kUniPC, 1, 5.0);
    const torch::Tensor x = torch::randn({4, 3});
    const torch::Tensor v = torch::randn({4, 3});
    const float sigma0 = sampler->schedule().sigmas[0];
    const torch::Tensor out = sampler->step(v, x);
    QVERIFY(torch::allclose(out, x - sigma0 * v, 1e-6, 1e-6));
  }
};

QTEST_APPLESS_MAIN(TestSamplers)
#include "tst_samplers.moc"
