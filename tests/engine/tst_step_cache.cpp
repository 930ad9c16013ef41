// Step caching (issue 21): TeaCache and MagCache. Threshold 0 gives the uncached latent bit for bit; with a
// positive threshold the skip decisions are identical on every rank for worlds 2, 4 and 8 in every layout
// (Ulysses, ring, CFG parallel, FSDP), the run ends, and the latent equals the single-process cached one;
// the settings' text form round-trips; MagCache's nearest interpolation rounds half to even as numpy.
#include "dist/rank_runtime.h"
#include "dist_test_util.h"
#include "model/step_cache.h"
#include "pipeline/text_to_video.h"
#include "test_util.h"
#include "wan/eval_case.h"
#include "wan/job.h"

using wan_test::expect_error;

namespace {

wan::GenerationRequest request(const std::string& cache, int steps = 10) {
  wan::GenerationRequest r = wan::pipeline_case_request(wan_test::golden("t2v_pipeline_small"));
  r.steps = steps;
  r.cache = wan::parse_step_cache(cache);
  return r;
}

struct Sampled {
  torch::Tensor latent;
  std::vector<int> skipped;
  std::int64_t forwards = 0, cached = 0;
};

Sampled sample(const wan::RunPlan& plan) {
  wan::WanModel dit = wan::load_plan_dit(plan);
  Sampled out;
  out.latent = wan::denoise(plan, dit, wan::encode_prompts(plan), wan::initial_noise(plan));
  out.forwards = dit->forward_count;
  if (dit->step_cache) {
    out.skipped = dit->step_cache->skipped_steps();
    out.cached = dit->step_cache->skipped_forwards();
  }
  return out;
}

}  // namespace

class TestStepCache : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { qputenv("WAN_GLOO_HOST", "127.0.0.1"); }

  void settingsRoundTrip() {
    for (const char* text : {"none", "teacache:0.2", "teacache:0.05:3", "magcache:0.12", "magcache:0.3:4",
                             "magcache:0.3:4:3", "magcache:0.3::3"}) {
      const wan::StepCacheSettings s = wan::parse_step_cache(text);
      QCOMPARE(QString::fromStdString(wan::step_cache_name(s)), QString(text));
    }
    const wan::StepCacheSettings m = wan::parse_step_cache("magcache:0.3:4:3");
    QVERIFY(m.kind == wan::StepCacheKind::kMagCache);
    QCOMPARE(m.threshold, 0.3);
    QCOMPARE(m.warmup.value(), 4);
    QCOMPARE(m.max_skips, 3);
    for (const char* bad : {"tea:0.2", "teacache", "teacache:-1", "teacache:x", "teacache:0.2:-1", "teacache:0.2:1:2",
                            "teacache:0.1:", "magcache:0.1:2:0", "magcache:nan", "teacache:0x10"})
      expect_error([&] { wan::parse_step_cache(bad); }, wan::ErrorCode::kInvalidArgument, {"--cache"});
    // The job codec carries it; an unknown form in a job is refused.
    wan::GenerationRequest r = request("magcache:0.2:3");
    QCOMPARE(QString::fromStdString(wan::step_cache_name(wan::request_from_json(wan::request_to_json(r)).cache)),
             QString("magcache:0.2:3"));
    expect_error([] { wan::request_from_json(R"({"cache": "fastcache:1"})"); }, wan::ErrorCode::kInvalidArgument,
                 {"fastcache"});
  }

  void interpolationRoundsHalfToEven() {
    // numpy: np.round(np.arange(5) * 1.25) = [0, 1, 2, 4, 5] (2.5 -> 2).
    QCOMPARE(wan::magcache_interpolate({10, 11, 12, 13, 14, 15}, 5), (std::vector<double>{10, 11, 12, 14, 15}));
    QCOMPARE(wan::magcache_interpolate({10, 11, 12, 13}, 3), (std::vector<double>{10, 12, 13}));  // 1.5 -> 2
    QCOMPARE(wan::magcache_interpolate({10, 11, 12}, 1), (std::vector<double>{12}));
    QCOMPARE(wan::magcache_interpolate({10, 11, 12}, 3), (std::vector<double>{10, 11, 12}));
  }

  // Threshold 0 skips nothing: the latent of the uncached run, bit for bit, and every forward computed.
  void thresholdZeroIsTheUncachedRun() {
    const Sampled plain = sample(wan::make_plan(request("none"), {}, false));
    for (const char* c : {"teacache:0", "magcache:0"}) {
      const Sampled cached = sample(wan::make_plan(request(c), {}, false));
      QVERIFY2(torch::equal(cached.latent, plain.latent), c);
      QCOMPARE(cached.forwards, plain.forwards);
      QCOMPARE(cached.cached, std::int64_t(0));
      QVERIFY(cached.skipped.empty());
    }
  }

  // A positive threshold skips steps after the warm-up, and never one of the warm-up steps; a skipped step
  // skips both passes.
  void positiveThresholdSkipsAfterTheWarmup() {
    for (const char* c : {"teacache:0.2:3", "magcache:0.3:3"}) {
      const Sampled cached = sample(wan::make_plan(request(c), {}, false));
      QVERIFY2(!cached.skipped.empty(), c);
      QVERIFY(cached.skipped.front() >= 3);
      QCOMPARE(cached.cached, 2 * static_cast<std::int64_t>(cached.skipped.size()));
      QCOMPARE(cached.forwards, std::int64_t(20));  // the forwards still run (embeddings, head)
    }
    // MagCache's K: at most that many skipped steps in a row.
    const Sampled k1 = sample(wan::make_plan(request("magcache:5:2:1"), {}, false));
    for (std::size_t i = 1; i < k1.skipped.size(); ++i) QVERIFY(k1.skipped[i] != k1.skipped[i - 1] + 1);
    // A warm-up that covers every step can skip nothing: said.
    const wan::RunPlan covered = wan::make_plan(request("teacache:0.2:10"), {}, false);
    bool said = false;
    for (const std::string& n : covered.notes) said = said || n.find("covers all 10 steps") != std::string::npos;
    QVERIFY(said);
    // The default warm-up: MagCache 20 % of the steps (2 of 10), TeaCache 5.
    QVERIFY(sample(wan::make_plan(request("magcache:5"), {}, false)).skipped.front() >= 2);
    QVERIFY(sample(wan::make_plan(request("teacache:5"), {}, false)).skipped.front() >= 5);
  }

  // Every rank makes the same decisions in every layout, the run ends, and the latent is the single
  // process's cached latent.
  void sameDecisionsOnEveryRank_data() {
    QTest::addColumn<QString>("config");
    QTest::addColumn<QString>("cache");
    const char* layouts[] = {
        R"({"world_size": 2, "use_context_parallel": true, "ulysses_size": 2})",
        R"({"world_size": 2, "cfg_parallel": true})",
        R"({"world_size": 2, "dit_fsdp": true})",
        R"({"world_size": 4, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
        R"({"world_size": 4, "dit_fsdp": true, "cfg_parallel": true, "use_context_parallel": true, "ulysses_size": 2})",
        R"({"world_size": 8, "cfg_parallel": true, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
        R"({"world_size": 8, "dit_fsdp": true, "use_context_parallel": true, "ring_size": 8})",
    };
    for (const char* c : {"teacache:0.2:3", "magcache:0.3:3"})
      for (const char* l : layouts) QTest::newRow((std::string(c) + " " + l).c_str()) << QString(l) << QString(c);
  }
  void sameDecisionsOnEveryRank() {
    QFETCH(QString, config);
    QFETCH(QString, cache);
    wan::DistConfig dist = wan::dist_config_from_json(config.toStdString());
    dist.backend = wan::resolve_backend(dist, wan::Device{});
    const wan::RunPlan plan = wan::make_plan(request(cache.toStdString()), {}, false);
    const Sampled single = sample(plan);
    QVERIFY(!single.skipped.empty());
    const torch::Tensor noise = wan::initial_noise(plan);
    std::vector<std::string> errors;
    const auto ranks = wan_test::sample_over_ranks(plan, dist, noise, errors);
    for (int r = 0; r < dist.world_size; ++r) {
      QVERIFY2(errors[r].empty(), errors[r].c_str());
      QCOMPARE(ranks[r].skipped, single.skipped);
      const double e = wan_test::rel_l2(ranks[r].latent, single.latent);
      QVERIFY2(e < 1e-5, ("rank " + std::to_string(r) + ": " + std::to_string(e)).c_str());
    }
  }

  // The ranks' agreement decides: a veto from any rank (here the agreement always says no) computes the
  // step on every rank, and the accumulators start again as after a computed step.
  void theAgreementDecides() {
    const wan::RunPlan plan = wan::make_plan(request("magcache:5:2:100"), {}, false);
    QVERIFY(!sample(plan).skipped.empty());
    wan::WanModel dit = wan::load_plan_dit(plan);
    int asked = 0;
    dit->all_ranks_agree = [&](bool) {
      ++asked;
      return false;
    };
    wan::denoise(plan, dit, wan::encode_prompts(plan), wan::initial_noise(plan));
    QCOMPARE(asked, 10);  // once a step
    QVERIFY(dit->step_cache->skipped_steps().empty());
    QCOMPARE(dit->step_cache->skipped_forwards(), std::int64_t(0));
  }

  // FSDP prefetches the first block at the start of a forward: a forward whose blocks are skipped must
  // finish and free that gather (the ranks hold after the run what an uncached run holds).
  void fsdpFreesWhatASkippedStepPrefetched() {
    wan::DistConfig dist = wan::dist_config_from_json(R"({"world_size": 2, "dit_fsdp": true})");
    dist.backend = wan::resolve_backend(dist, wan::Device{});
    std::vector<std::int64_t> resident[2];
    for (const char* c : {"none", "magcache:5:2:100"}) {  // the cached run skips every step after the warm-up
      const wan::RunPlan plan = wan::make_plan(request(c), {}, false);
      const torch::Tensor noise = wan::initial_noise(plan);
      std::vector<std::int64_t> held(2);
      std::vector<std::size_t> skipped(2);
      const auto errors = wan_test::run_world(2, std::chrono::seconds(120), [&](wan::Communicator& world) {
        wan::RankRuntime runtime(world, dist);
        const wan::RankHooks hooks = runtime.hooks(world.rank() == 0);
        const wan::TextContexts text = wan::encode_prompts(plan, hooks.t5_sharding);
        wan::WanModel dit = wan::load_plan_dit(plan, hooks.dit_sharding);
        wan::denoise(plan, dit, text, noise, {}, hooks.make_velocity(dit, text, {}, plan.request.guidance.value()));
        held[world.rank()] = runtime.dit_shards()->memory().resident_bytes;
        skipped[world.rank()] = dit->step_cache ? dit->step_cache->skipped_steps().size() : 0;
      });
      for (int r = 0; r < 2; ++r) QVERIFY2(errors[r].empty(), errors[r].c_str());
      if (std::string(c) != "none") QCOMPARE(skipped[0], std::size_t(8));  // steps 3..10 (warm-up 2)
      resident[std::string(c) == "none" ? 0 : 1] = held;
    }
    QCOMPARE(resident[1], resident[0]);
  }

  // Which published numbers: TeaCache has none for Wan2.2 (refused with what to use); MagCache's A14B
  // curve keeps the retention windows at the start of each expert's steps.
  void modelsAndRefusals() {
    wan::GenerationRequest moe = wan::pipeline_case_request(wan_test::data_dir() + "/golden22/t2v_moe_pipeline_small");
    moe.cache = wan::parse_step_cache("teacache:0.2");
    expect_error([&] { wan::make_plan(moe, {}, false); }, wan::ErrorCode::kInvalidArgument,
                 {"TeaCache publishes coefficients for Wan2.1 only", "magcache"});
    moe.cache = wan::parse_step_cache("magcache:0.1");
    moe.steps = 20;
    const wan::RunPlan plan = wan::make_plan(moe, {}, false);
    QVERIFY(plan.cache);
    QVERIFY(QString::fromStdString(plan.cache->source).contains("Wan2.2 T2V-A14B"));
    QCOMPARE(plan.cache->ratio_cond.size(), std::size_t(20));
    // The first steps of each expert are kept (high-noise first, then the switch).
    QVERIFY(plan.cache->never_skip[0]);
    int high = 0;
    for (double t : wan::make_schedule(plan.sampler, 20, plan.request.shift.value()).timesteps)
      high += wan::runs_high_noise_expert(plan, t) ? 1 : 0;
    QVERIFY(high > 0 && high < 20);
    QVERIFY(plan.cache->never_skip[high]);
    QVERIFY(!plan.cache->never_skip[19]);
    const Sampled plain = sample(wan::make_plan(request("none"), {}, false));
    QVERIFY(plain.skipped.empty());
  }
};

QTEST_APPLESS_MAIN(TestStepCache)
#include "tst_step_cache.moc"
