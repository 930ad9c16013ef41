// The whole text-to-video sampling loop of the official-code pipeline fixture across a world of gloo
// ranks (one thread per rank): with and without CFG parallel, every ulysses x ring split the fixture's
// 4 heads allow, and replicated ranks, for world sizes 2, 4 and 8. Every rank must end with the
// reference final latent (< 1e-5 relative), the same as the single-process run; also with the DiT and
// umT5 sharded FSDP-style (each strategy), alone and combined with USP and CFG parallel. The
// image-to-video fixture (CLIP features and the image latent in both CFG branches) runs a subset.
#include <thread>

#include "dist/rank_runtime.h"
#include "dist_test_util.h"
#include "pipeline/text_to_video.h"
#include "test_util.h"
#include "wan/eval_case.h"
#include "weights/file_util.h"
#include "weights/safetensors.h"

namespace {

std::vector<std::string> run_world(int world, const std::function<void(wan::Communicator&)>& fn) {
  return wan_test::run_world(world, std::chrono::seconds(120), fn);
}

}  // namespace

class TestParallelPipeline : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() {
    qputenv("WAN_GLOO_HOST", "127.0.0.1");
    at::set_num_threads(1);
  }

  void finalLatentMatchesReference_data() {
    QTest::addColumn<QString>("config");
    QTest::addColumn<QString>("fixture");
    const char* rows[] = {
        R"({"world_size": 2, "cfg_parallel": true})",
        R"({"world_size": 2, "use_context_parallel": true, "ulysses_size": 2})",
        R"({"world_size": 2, "use_context_parallel": true, "ring_size": 2})",
        R"({"world_size": 2})",  // replicated ranks (FSDP-only layouts compute like this)
        R"({"world_size": 4, "cfg_parallel": true, "use_context_parallel": true, "ulysses_size": 2})",
        R"({"world_size": 4, "cfg_parallel": true, "use_context_parallel": true, "ring_size": 2})",
        R"({"world_size": 4, "use_context_parallel": true, "ulysses_size": 4})",
        R"({"world_size": 4, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
        R"({"world_size": 4, "use_context_parallel": true, "ring_size": 4})",
        R"({"world_size": 8, "cfg_parallel": true, "use_context_parallel": true, "ulysses_size": 4})",
        R"({"world_size": 8, "cfg_parallel": true, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
        R"({"world_size": 8, "cfg_parallel": true, "use_context_parallel": true, "ring_size": 4})",
        R"({"world_size": 8, "use_context_parallel": true, "ulysses_size": 4, "ring_size": 2})",
        R"({"world_size": 8, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 4})",
        R"({"world_size": 8, "use_usp": true, "ring_size": 8})",
        // FSDP-style sharding of the DiT and umT5 (each strategy), alone and with USP / CFG parallel.
        R"({"world_size": 2, "use_fsdp": true, "sharding_strategy": "FULL_SHARD"})",
        R"({"world_size": 3, "use_fsdp": true, "sharding_strategy": "FULL_SHARD", "sync_module_states": false})",
        R"({"world_size": 2, "use_fsdp": true, "sharding_strategy": "SHARD_GRAD_OP"})",
        R"({"world_size": 2, "use_fsdp": true, "sharding_strategy": "NO_SHARD"})",
        R"({"world_size": 4, "dit_fsdp": true, "cfg_parallel": true, "use_context_parallel": true, "ulysses_size": 2})",
        R"({"world_size": 4, "use_fsdp": true, "sharding_strategy": "SHARD_GRAD_OP", "use_usp": true, "ulysses_size": 2, "ring_size": 2})",
        R"({"world_size": 8, "dit_fsdp": true, "t5_fsdp": true, "cfg_parallel": true, "use_usp": true, "ring_size": 4})",
    };
    for (const char* r : rows) QTest::newRow(r) << QString(r) << "t2v_pipeline_small";
    const char* i2v_rows[] = {
        R"({"world_size": 2, "cfg_parallel": true})",
        R"({"world_size": 4, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
        R"({"world_size": 4, "dit_fsdp": true, "cfg_parallel": true, "use_context_parallel": true, "ring_size": 2})",
        R"({"world_size": 8, "cfg_parallel": true, "use_context_parallel": true, "ulysses_size": 4})",
    };
    for (const char* r : i2v_rows)
      QTest::newRow((std::string("i2v ") + r).c_str()) << QString(r) << "i2v_pipeline_small";
  }

  void finalLatentMatchesReference() {
    QFETCH(QString, config);
    QFETCH(QString, fixture);
    wan::DistConfig dist = wan::dist_config_from_json(config.toStdString());
    dist.backend = wan::resolve_backend(dist, wan::Device{});
    const std::string dir = wan_test::golden(fixture.toStdString());
    QVERIFY(wan::validate_dist_config(dist, wan::DistEnvironment{0, 4}).empty());
    const wan::GenerationRequest r = wan::pipeline_case_request(dir);
    const wan::RunPlan plan = wan::make_plan(r, wan::DistConfig{}, false);
    const torch::Tensor noise = wan::initial_noise(plan);
    const torch::Tensor reference = wan::SafetensorsFile::open(dir + "/io.safetensors")->view("final_latent");

    // Each rank as the worker runs it: its own (possibly sharded) umT5 and DiT, the parallel velocity.
    std::vector<torch::Tensor> finals(dist.world_size);
    auto errors = run_world(dist.world_size, [&](wan::Communicator& world) {
      wan::RankRuntime runtime(world, dist);
      const wan::RankHooks hooks = runtime.hooks(world.rank() == 0);
      const wan::TextContexts text = wan::encode_prompts(plan, hooks.t5_sharding);
      const wan::ImageContext image = wan::encode_image(plan);
      if (image.defined() != plan.i2v) throw std::runtime_error("image conditioning not as the fixture");
      wan::WanModel model = wan::load_plan_dit(plan, hooks.dit_sharding);
      if (dist.dit_fsdp != (runtime.dit_shards() != nullptr))
        throw std::runtime_error("DiT sharding not as configured");
      finals[world.rank()] = wan::denoise(plan, model, text, noise.clone(), {},
                                          hooks.make_velocity(model, text, image, plan.request.guidance.value()));
      model = wan::WanModel(nullptr);  // the decode needs the memory: nothing else may keep the shards
      if (runtime.dit_shards()) throw std::runtime_error("the DiT's shards outlived the model");
    });
    for (int rank = 0; rank < dist.world_size; ++rank) {
      QVERIFY2(errors[rank].empty(), ("rank " + std::to_string(rank) + ": " + errors[rank]).c_str());
      const double err = wan_test::rel_l2(finals[rank], reference);
      QVERIFY2(err < 1e-5, ("rank " + std::to_string(rank) + ": relative error " + std::to_string(err)).c_str());
      QVERIFY(torch::equal(finals[rank], finals[0]));  // the sampler runs identically everywhere
    }
  }
};

QTEST_APPLESS_MAIN(TestParallelPipeline)
#include "tst_parallel_pipeline.moc"
