// Fewer forwards (issue 21). Guidance 1: the unconditional forward is not run, so a step costs one DiT
// forward (counted by the module) and the velocity is the conditional prediction bit for bit (the latent
// equals a loop written here that samples with the conditional output alone); the same over ranks
// (Ulysses, ring, replicated) with one forward per step on every rank; CFG parallel with guidance 1 is
// refused with the reason, and for a Wan2.2 A14B pair with one expert at 1 it is noted.
#include "dist/rank_runtime.h"
#include "dist_test_util.h"
#include "pipeline/text_to_video.h"
#include "sampling/sampler.h"
#include "test_util.h"
#include "wan/eval_case.h"

using wan_test::expect_error;

namespace {

wan::GenerationRequest request(double guidance) {
  wan::GenerationRequest r = wan::pipeline_case_request(wan_test::golden("t2v_pipeline_small"));
  r.guidance = guidance;
  r.steps = 4;
  return r;
}

}  // namespace

class TestFewerForwards : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { qputenv("WAN_GLOO_HOST", "127.0.0.1"); }

  void guidanceOneRunsOnePass() {
    const wan::RunPlan plan = wan::make_plan(request(1.0), {}, false);
    const wan::TextContexts text = wan::encode_prompts(plan);
    const torch::Tensor noise = wan::initial_noise(plan);
    wan::WanModel dit = wan::load_plan_dit(plan);
    const torch::Tensor one_pass = wan::denoise(plan, dit, text, noise);
    QCOMPARE(dit->forward_count, std::int64_t(4));  // one forward per step
    // The conditional prediction alone, sampled here: the same latent bit for bit.
    auto sampler = wan::make_sampler(plan.sampler, 4, plan.request.shift.value());
    torch::Tensor x = noise;
    for (int i = 0; i < 4; ++i) {
      const double t = static_cast<double>(sampler->current_timestep());
      x = sampler->step(dit->forward(x, t, text.context), x);
    }
    QVERIFY(torch::equal(one_pass, x));
    // Any other guidance runs both passes.
    const wan::RunPlan guided = wan::make_plan(request(5.0), {}, false);
    dit->forward_count = 0;
    wan::denoise(guided, dit, text, noise);
    QCOMPARE(dit->forward_count, std::int64_t(8));
  }

  void guidanceOneOverRanks_data() {
    QTest::addColumn<QString>("config");
    for (const char* c : {R"({"world_size": 2, "use_context_parallel": true, "ulysses_size": 2})",
                          R"({"world_size": 4, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
                          R"({"world_size": 2, "dit_fsdp": true})"})
      QTest::newRow(c) << QString(c);
  }
  void guidanceOneOverRanks() {
    QFETCH(QString, config);
    wan::DistConfig dist = wan::dist_config_from_json(config.toStdString());
    dist.backend = wan::resolve_backend(dist, wan::Device{});
    const wan::RunPlan plan = wan::make_plan(request(1.0), {}, false);
    const torch::Tensor noise = wan::initial_noise(plan);
    wan::WanModel single = wan::load_plan_dit(plan);
    const torch::Tensor reference = wan::denoise(plan, single, wan::encode_prompts(plan), noise);
    std::vector<std::string> errors;
    const auto ranks = wan_test::sample_over_ranks(plan, dist, noise, errors, std::chrono::seconds(120));
    for (int r = 0; r < dist.world_size; ++r) {
      QVERIFY2(errors[r].empty(), errors[r].c_str());
      QCOMPARE(ranks[r].forwards, std::int64_t(4));
      QVERIFY2(wan_test::rel_l2(ranks[r].latent, reference) < 1e-5, std::to_string(r).c_str());
    }
  }

  void cfgParallelWithGuidanceOne() {
    wan::DistConfig cfg = wan::dist_config_from_json(R"({"world_size": 2, "cfg_parallel": true})");
    expect_error([&] { wan::make_plan(request(1.0), cfg, false); }, wan::ErrorCode::kInvalidArgument,
                 {"cfg_parallel with guidance 1", "--ulysses"});
    // Wan2.2 A14B with guidance (1, 4): allowed, with a note naming the expert whose steps waste the half.
    wan::GenerationRequest moe = wan::pipeline_case_request(wan_test::data_dir() + "/golden22/t2v_moe_pipeline_small");
    moe.guidance = 1.0;
    moe.guidance_high = 4.0;
    const wan::RunPlan plan = wan::make_plan(moe, cfg, false);
    bool noted = false;
    for (const std::string& n : plan.notes) noted = noted || n.find("low-noise expert") != std::string::npos;
    QVERIFY(noted);
    moe.guidance_high = 1.0;
    expect_error([&] { wan::make_plan(moe, cfg, false); }, wan::ErrorCode::kInvalidArgument,
                 {"cfg_parallel with guidance 1"});
  }
};

QTEST_APPLESS_MAIN(TestFewerForwards)
#include "tst_fewer_forwards.moc"
