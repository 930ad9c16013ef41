// The distill sampler (issue 21): LightX2V's step-distill schedule and update, checked against values
// computed in Python straight from that definition (tests/data/distill/make_reference.py: timesteps,
// sigmas and every update, bit for bit); its defaults (4 steps 1000,750,500,250, shift 5, guidance 1:
// one forward per step), the Wan2.2 A14B expert per step, the same latent over ranks, and refusals.
#include <fstream>
#include <nlohmann/json.hpp>

#include "dist/rank_runtime.h"
#include "dist_test_util.h"
#include "pipeline/text_to_video.h"
#include "sampling/sampler.h"
#include "test_util.h"
#include "wan/eval_case.h"

using wan_test::expect_error;

namespace {

nlohmann::json reference() {
  std::ifstream in(wan_test::data_dir() + "/distill/reference.json");
  return nlohmann::json::parse(in);
}

torch::Tensor tensor_of(const nlohmann::json& values, const std::vector<std::int64_t>& shape) {
  std::vector<float> v;
  for (const auto& x : values) v.push_back(static_cast<float>(x.get<double>()));
  return torch::tensor(v).reshape(shape);
}

wan::GenerationRequest distill_request(const std::string& folder, const std::string& mode = "") {
  wan::GenerationRequest r = wan::pipeline_case_request(folder, "fp32", "cpu", mode);
  r.sampler = wan::SamplerKind::kDistill;
  r.steps.reset();
  r.shift.reset();
  r.guidance.reset();
  r.guidance_high.reset();
  return r;
}

}  // namespace

class TestDistill : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { qputenv("WAN_GLOO_HOST", "127.0.0.1"); }

  void scheduleMatchesTheDefinition() {
    for (const auto& c : reference()["cases"]) {
      const auto list = c["denoising_step_list"].get<std::vector<int>>();
      const wan::SigmaSchedule s = wan::distill_schedule(list, c["shift"].get<double>());
      QCOMPARE(s.steps(), static_cast<int>(list.size()));
      QCOMPARE(s.sigmas.size(), list.size() + 1);
      QCOMPARE(s.sigmas.back(), 0.0f);
      for (std::size_t k = 0; k < list.size(); ++k) {
        QCOMPARE(s.timesteps[k], c["timesteps"][k].get<double>());  // float32 values, exactly
        QCOMPARE(s.sigmas[k], static_cast<float>(c["sigmas"][k].get<double>()));
      }
    }
    // The published 4-step list, and shift 5's fractional timesteps the DiT receives.
    QCOMPARE(wan::default_denoising_step_list(4), (std::vector<int>{1000, 750, 500, 250}));
    QCOMPARE(wan::default_denoising_step_list(2), (std::vector<int>{1000, 500}));
    QCOMPARE(wan::default_denoising_step_list(3), (std::vector<int>{1000, 667, 334}));
    const wan::SigmaSchedule d = wan::make_schedule(wan::SamplerKind::kDistill, 4, 5.0);
    QCOMPARE(d.timesteps, (std::vector<double>{1000.0, 937.5, 833.3333129882812, 625.0}));
  }

  void everyUpdateMatchesTheDefinition() {
    for (const auto& c : reference()["cases"]) {
      const auto list = c["denoising_step_list"].get<std::vector<int>>();
      const auto shape = c["shape"].get<std::vector<std::int64_t>>();
      auto sampler =
          wan::make_sampler(wan::SamplerKind::kDistill, static_cast<int>(list.size()), c["shift"].get<double>(), list);
      torch::Tensor x = tensor_of(c["x_init"], shape);
      for (std::size_t k = 0; k < list.size(); ++k) {
        QCOMPARE(sampler->current_timestep(), c["timesteps"][k].get<double>());
        x = sampler->step(tensor_of(c["velocity"][k], shape), x);
        QVERIFY2(torch::equal(x, tensor_of(c["x"][k], shape)),
                 ("step " + std::to_string(k) + ", shift " + c["shift"].dump()).c_str());
      }
      expect_error([&] { sampler->step(x, x); }, wan::ErrorCode::kInternal, {"after the last step"});
    }
  }

  // Defaults, and the pipeline: one forward per step at the list's timesteps; the latent equals a loop
  // written here with the reference's update.
  void pipelineRunsFourForwards() {
    const wan::RunPlan plan = wan::make_plan(distill_request(wan_test::golden("t2v_pipeline_small")), {}, false);
    QCOMPARE(plan.request.steps.value(), 4);
    QCOMPARE(plan.request.shift.value(), 5.0);
    QCOMPARE(plan.request.guidance.value(), 1.0);
    const wan::TextContexts text = wan::encode_prompts(plan);
    const torch::Tensor noise = wan::initial_noise(plan);
    wan::WanModel dit = wan::load_plan_dit(plan);
    const torch::Tensor latent = wan::denoise(plan, dit, text, noise);
    QCOMPARE(dit->forward_count, std::int64_t(4));
    const nlohmann::json all = reference();
    const nlohmann::json& published = all["cases"][0];
    torch::Tensor x = noise;
    for (int k = 0; k < 4; ++k) {
      const double t = published["timesteps"][k].get<double>();
      const float sigma = static_cast<float>(published["sigmas"][k].get<double>());
      const torch::Tensor v = dit->forward(x, t, text.context);
      x = x - sigma * v;
      if (k < 3) x = x + v * static_cast<float>(published["sigmas"][k + 1].get<double>());
    }
    QVERIFY(torch::equal(latent, x));
    // Guidance given: both passes, at the same timesteps.
    wan::GenerationRequest guided = distill_request(wan_test::golden("t2v_pipeline_small"));
    guided.guidance = 3.0;
    dit->forward_count = 0;
    wan::denoise(wan::make_plan(guided, {}, false), dit, text, noise);
    QCOMPARE(dit->forward_count, std::int64_t(8));
    // A list of its own: its length is the step count.
    wan::GenerationRequest two = distill_request(wan_test::golden("t2v_pipeline_small"));
    two.denoising_step_list = {1000, 500};
    QCOMPARE(wan::make_plan(two, {}, false).request.steps.value(), 2);
  }

  // Wan2.2 A14B: guidance 1 for both experts; the high-noise expert runs the first two of the four steps
  // (t 1000 and 937.5 at or above 875 and 900), as LightX2V's boundary_step_index 2.
  void wan22ExpertsPerStep() {
    for (const char* c : {"t2v_moe_pipeline_small", "i2v_moe_pipeline_small"}) {
      const wan::RunPlan plan = wan::make_plan(distill_request(wan_test::data_dir() + "/golden22/" + c), {}, false);
      QCOMPARE(plan.request.steps.value(), 4);
      QCOMPARE(plan.request.shift.value(), 5.0);
      QCOMPARE(plan.request.guidance.value(), 1.0);
      QCOMPARE(plan.request.guidance_high.value(), 1.0);
      const wan::SigmaSchedule s = wan::make_schedule(plan.sampler, 4, 5.0);
      std::vector<bool> high;
      for (double t : s.timesteps) high.push_back(wan::runs_high_noise_expert(plan, t));
      QCOMPARE(high, (std::vector<bool>{true, true, false, false}));
    }
    // TI2V-5B keeps the distill defaults too (not its 50 steps, guidance 5).
    const wan::RunPlan ti2v =
        wan::make_plan(distill_request(wan_test::data_dir() + "/golden22/ti2v_pipeline_small", "t2v"), {}, false);
    QCOMPARE(ti2v.request.steps.value(), 4);
    QCOMPARE(ti2v.request.guidance.value(), 1.0);
  }

  void sameLatentOverRanks_data() {
    QTest::addColumn<QString>("config");
    for (const char* c : {R"({"world_size": 2, "use_context_parallel": true, "ulysses_size": 2})",
                          R"({"world_size": 4, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
                          R"({"world_size": 2, "dit_fsdp": true})"})
      QTest::newRow(c) << QString(c);
  }
  void sameLatentOverRanks() {
    QFETCH(QString, config);
    wan::DistConfig dist = wan::dist_config_from_json(config.toStdString());
    dist.backend = wan::resolve_backend(dist, wan::Device{});
    const wan::RunPlan plan = wan::make_plan(distill_request(wan_test::golden("t2v_pipeline_small")), {}, false);
    const torch::Tensor noise = wan::initial_noise(plan);
    wan::WanModel single = wan::load_plan_dit(plan);
    const torch::Tensor reference = wan::denoise(plan, single, wan::encode_prompts(plan), noise);
    std::vector<std::string> errors;
    const auto ranks = wan_test::sample_over_ranks(plan, dist, noise, errors, std::chrono::seconds(120));
    for (int r = 0; r < dist.world_size; ++r) {
      QVERIFY2(errors[r].empty(), errors[r].c_str());
      QVERIFY2(wan_test::rel_l2(ranks[r].latent, reference) < 1e-5, std::to_string(r).c_str());
    }
  }

  void badSettingsAreRefused() {
    const std::string folder = wan_test::golden("t2v_pipeline_small");
    wan::GenerationRequest r = distill_request(folder);
    r.sampler = wan::SamplerKind::kUniPC;
    r.denoising_step_list = {1000, 500};
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kInvalidArgument,
                 {"--denoising-step-list", "--sampler distill"});
    r = distill_request(folder);
    r.denoising_step_list = {1000, 500};
    r.steps = 4;
    expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kInvalidArgument, {"--steps 4", "2 timesteps"});
    for (const std::vector<int>& bad : {std::vector<int>{1001, 500}, std::vector<int>{1000, 0},
                                        std::vector<int>{500, 750}, std::vector<int>{750, 750}}) {
      r = distill_request(folder);
      r.denoising_step_list = bad;
      expect_error([&] { wan::make_plan(r, {}, false); }, wan::ErrorCode::kInvalidArgument, {"--denoising-step-list"});
    }
    expect_error([] { wan::parse_sampler("euler"); }, wan::ErrorCode::kInvalidArgument, {"distill"});
  }

  // The job document carries the list; the sampler's name round-trips.
  void jobCarriesTheList() {
    wan::GenerationRequest r = distill_request(wan_test::golden("t2v_pipeline_small"));
    r.denoising_step_list = {1000, 750, 500};
    const wan::GenerationRequest back = wan::request_from_json(wan::request_to_json(r));
    QVERIFY(back.sampler == wan::SamplerKind::kDistill);
    QCOMPARE(back.denoising_step_list, r.denoising_step_list);
    expect_error([] { wan::request_from_json(R"({"denoising_step_list": [1000, "750"]})"); },
                 wan::ErrorCode::kInvalidArgument, {"denoising_step_list", "whole numbers"});
  }
};

QTEST_APPLESS_MAIN(TestDistill)
#include "tst_distill.moc"
