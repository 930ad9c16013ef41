// A world of gloo ranks inside one test process: one thread per rank, rendezvous through a TCPStore
// on a free port (the multi-process path uses the same classes).
#pragma once
#include <functional>
#include <string>
#include <thread>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <vector>

#include "dist/communicator.h"
#include "dist/rank_runtime.h"
#include "model/step_cache.h"
#include "pipeline/text_to_video.h"

namespace wan_test {

// Runs fn(communicator) on `world` threads; returns each rank's error text ("" when it succeeded).
inline std::vector<std::string> run_world(int world, std::chrono::milliseconds timeout,
                                          const std::function<void(wan::Communicator&)>& fn) {
  int port = 0;
  auto server = wan::host_tcp_store(port, timeout);
  std::vector<std::string> errors(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        c10d::TCPStoreOptions o;
        o.port = static_cast<std::uint16_t>(port);
        o.isServer = false;
        o.timeout = timeout;
        auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", o);
        auto comm = wan::make_gloo_communicator(store, r, world, timeout);
        fn(*comm);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

// What one rank's sampling left: the final latent, its DiT forwards, the steps its cache skipped.
struct RankSampling {
  torch::Tensor latent;
  std::int64_t forwards = 0;
  std::vector<int> skipped;
};

// Every rank of a world laid out by `dist` encodes the prompts, loads the plan's DiT (sharded as the
// config says) and samples from `noise` through the distributed velocity, as a worker does. `errors`
// gets each rank's error text ("" when it succeeded).
inline std::vector<RankSampling> sample_over_ranks(const wan::RunPlan& plan, const wan::DistConfig& dist,
                                                   const torch::Tensor& noise, std::vector<std::string>& errors,
                                                   std::chrono::milliseconds timeout = std::chrono::seconds(180)) {
  std::vector<RankSampling> out(dist.world_size);
  errors = run_world(dist.world_size, timeout, [&](wan::Communicator& world) {
    wan::RankRuntime runtime(world, dist);
    const wan::RankHooks hooks = runtime.hooks(world.rank() == 0);
    const wan::TextContexts text = wan::encode_prompts(plan, hooks.t5_sharding);
    wan::WanModel dit = wan::load_plan_dit(plan, hooks.dit_sharding);
    RankSampling& mine = out[world.rank()];
    mine.latent =
        wan::denoise(plan, dit, text, noise, {}, hooks.make_velocity(dit, text, {}, plan.request.guidance.value()));
    mine.forwards = dit->forward_count;
    if (dit->step_cache) mine.skipped = dit->step_cache->skipped_steps();
  });
  return out;
}

}  // namespace wan_test
