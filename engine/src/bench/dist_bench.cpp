#include "bench/dist_bench.h"

#include <torch/torch.h>

#include <chrono>
#include <map>
#include <thread>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "dist/fsdp.h"
#include "dist/parallel_dit.h"
#include "model/dit.h"
#include "sampling/sampler.h"
#include "wan/error.h"

namespace wan {
namespace {

using Clock = std::chrono::steady_clock;

// Bytes one rank must send per sampling step for the layout (the same counting as CommStats).
std::array<double, kBenchCollectiveKinds> analytic_bytes(const DitConfig& m, const DistConfig& c, std::int64_t tokens,
                                                         std::int64_t latent_numel, double elt) {
  std::array<double, kBenchCollectiveKinds> b{};
  const int U = c.context_parallel() ? c.ulysses_size : 1, R = c.context_parallel() ? c.ring_size : 1, P = U * R;
  const double s = static_cast<double>((tokens + P - 1) / P), nd = static_cast<double>(m.dim);
  const double forwards = c.cfg_parallel ? 1 : 2, layers = static_cast<double>(m.num_layers);
  const double patch_out = static_cast<double>(m.patch_size[0] * m.patch_size[1] * m.patch_size[2] * m.out_dim);
  if (U > 1) b[static_cast<int>(CollectiveKind::kAllToAll)] = forwards * layers * 4 * s * nd * elt * (U - 1) / U;
  if (R > 1) b[static_cast<int>(CollectiveKind::kSendRecv)] = forwards * layers * (R - 1) * 2 * s * nd * elt;
  double gather = P > 1 ? forwards * s * patch_out * 4 * (P - 1) : 0;
  if (c.cfg_parallel) gather += static_cast<double>(latent_numel) * 4;
  b[static_cast<int>(CollectiveKind::kAllGather)] = gather;
  return b;
}

// The parameters of an existing module as a tensor source, so a sharded copy can load from it.
class ModuleSource : public TensorSource {
 public:
  explicit ModuleSource(torch::nn::Module& m) : path_("random " + m.name() + " weights") {
    for (const auto& item : m.named_parameters()) {
      names_.push_back(item.key());
      tensors_.emplace(item.key(), item.value());
      TensorInfo info;
      info.dtype = from_scalar_type(item.value().scalar_type());
      info.shape = item.value().sizes().vec();
      info.file = path_;
      infos_.emplace(item.key(), std::move(info));
    }
  }
  const std::string& path() const override { return path_; }
  const std::vector<std::string>& names() const override { return names_; }
  bool contains(const std::string& n) const override { return tensors_.count(n) > 0; }
  const TensorInfo& info(const std::string& n) const override { return infos_.at(n); }
  torch::Tensor view(const std::string& n) const override { return tensors_.at(n); }

 private:
  std::string path_;
  std::vector<std::string> names_;
  std::map<std::string, torch::Tensor> tensors_;
  std::map<std::string, TensorInfo> infos_;
};

}  // namespace

DistBenchResult run_dist_bench(const BenchOptions& o, const DistConfig& c) {
  torch::NoGradGuard no_grad;
  if (o.device != "cpu")
    throw Error(ErrorCode::kUnsupported, "bench --world-size runs its ranks over gloo on the CPU (no NCCL yet)");
  DistEnvironment env;
  DitConfig config = bench_dit_config(o.model);
  env.num_heads = static_cast<int>(config.num_heads);
  DistConfig dist = c;
  dist.backend = resolve_backend(dist, Device{});  // the CPU benchmark: gloo ranks
  check_dist_config(dist, env);
  if (o.layers > 0) config.num_layers = std::min<std::int64_t>(o.layers, config.num_layers);
  if (o.width % 16 || o.height % 16 || o.frames < 1 || (o.frames - 1) % 4)
    throw Error(ErrorCode::kInvalidArgument, "bench size: width and height multiples of 16, frames 4n+1");
  const std::string dtype = o.dtype == "auto" ? "fp32" : o.dtype;
  const torch::ScalarType st = dtype == "bf16" ? torch::kBFloat16 : dtype == "fp16" ? torch::kHalf : torch::kFloat32;
  WanModel dit(config, ModelPlacement::make(st, torch::kCPU));
  const torch::Generator gen = at::detail::createCPUGenerator(0);
  for (auto& p : dit->parameters()) p.copy_(torch::randn(p.sizes(), gen, torch::kFloat32).mul_(0.02));
  const std::int64_t f_lat = (o.frames - 1) / 4 + 1, h = o.height / 8, w = o.width / 8;
  const torch::Tensor latent = torch::randn({16, f_lat, h, w}, gen, torch::kFloat32);
  const torch::Tensor context = torch::randn({24, config.text_dim}, gen, torch::kFloat32);
  const torch::Tensor context_null = torch::randn({60, config.text_dim}, gen, torch::kFloat32);
  const int steps = std::max(1, o.steps);

  DistBenchResult result;
  result.label = o.model + " " + std::to_string(o.width) + "x" + std::to_string(o.height) + "x" +
                 std::to_string(o.frames) + " " + dtype + ", world " + std::to_string(dist.world_size) + " = ulysses " +
                 std::to_string(dist.context_parallel() ? dist.ulysses_size : 1) + " x ring " +
                 std::to_string(dist.context_parallel() ? dist.ring_size : 1) + (dist.cfg_parallel ? " x cfg 2" : "");
  for (int k = 0; k < kBenchCollectiveKinds; ++k)
    result.kind_names.push_back(collective_name(static_cast<CollectiveKind>(k)));
  const double elt = static_cast<double>(torch::elementSize(ModelPlacement::make(st, torch::kCPU).compute_dtype));
  result.analytic_bytes_per_step = analytic_bytes(config, dist, f_lat * (h / 2) * (w / 2), latent.numel(), elt);
  for (const auto& p : dit->parameters())
    result.model_param_bytes += p.numel() * static_cast<std::int64_t>(p.element_size());
  if (dist.dit_fsdp) {
    result.label += ", DiT " + std::string(sharding_strategy_name(dist.sharding_strategy));
    if (dist.sharding_strategy != ShardingStrategy::kNoShard) {
      // Each unit is gathered once per forward (FULL_SHARD) or once per step (SHARD_GRAD_OP): every
      // rank sends its shard of every unit to the N - 1 others. Shards are padded to N elements.
      const double n = dist.world_size;
      double shard_bytes = 0;
      std::map<std::string, std::map<torch::ScalarType, std::int64_t>> units;
      for (const auto& item : dit->named_parameters()) {
        const std::string& k = item.key();
        const std::string unit = k.rfind("blocks.", 0) == 0 ? k.substr(0, k.find('.', 7)) : "root";
        units[unit][item.value().scalar_type()] += item.value().numel();
      }
      for (const auto& [unit, groups] : units)
        for (const auto& [type, numel] : groups)
          shard_bytes +=
              static_cast<double>((numel + dist.world_size - 1) / dist.world_size) * torch::elementSize(type);
      const double passes = dist.sharding_strategy == ShardingStrategy::kShardGradOp ? 1 : (dist.cfg_parallel ? 1 : 2);
      result.analytic_bytes_per_step[static_cast<int>(CollectiveKind::kAllGather)] += passes * shard_bytes * (n - 1);
    }
  }
  const ModuleSource source(*dit);
  result.ranks.resize(dist.world_size);

  int port = 0;
  const auto timeout = std::chrono::minutes(10);
  auto server = host_tcp_store(port, timeout);
  std::vector<std::string> errors(dist.world_size);
  std::vector<std::thread> threads;
  const int intra = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / dist.world_size);
  for (int r = 0; r < dist.world_size; ++r)
    threads.emplace_back([&, r] {
      try {
        torch::NoGradGuard guard;
        at::set_num_threads(intra);
        c10d::TCPStoreOptions so;
        so.port = static_cast<std::uint16_t>(port);
        so.timeout = timeout;
        auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", so);
        auto world = make_gloo_communicator(store, r, dist.world_size, timeout);
        ParallelDit parallel(*world, dist);
        // With dit_fsdp each rank builds its own sharded copy from the shared random weights.
        WanModel model = dit;
        std::unique_ptr<Communicator> fsdp_comm;
        std::shared_ptr<ShardedParameters> shards;
        if (dist.dit_fsdp) {
          std::vector<int> all(dist.world_size);
          for (int i = 0; i < dist.world_size; ++i) all[i] = i;
          fsdp_comm = world->split(all, "fsdp_dit");
          {
            DeferredParameters deferred;
            model = WanModel(config, ModelPlacement::make(st, torch::kCPU));
          }
          ShardOptions so;
          so.strategy = dist.sharding_strategy;
          so.sync_module_states = dist.sync_module_states;
          shards = std::make_shared<ShardedParameters>(*model, config.num_layers, *fsdp_comm, so, &source, "bench DiT",
                                                       torch::kCPU);
          model->residency = shards;
        }
        auto run_steps = [&](int n) {
          auto sampler = make_sampler(SamplerKind::kUniPC, n, 5.0);
          torch::Tensor x = latent;
          for (int i = 0; i < n; ++i) {
            const double t = static_cast<double>(sampler->current_timestep());
            x = sampler->step(parallel.guided_velocity(*model, x, t, context, context_null, 5.0), x);
          }
        };
        if (o.warmup > 0) run_steps(1);
        std::vector<Communicator*> comms = parallel.communicators();
        if (fsdp_comm) comms.push_back(fsdp_comm.get());
        for (Communicator* comm : comms) comm->reset_stats();
        if (shards) shards->reset_peak();
        world->barrier();
        const auto t0 = Clock::now();
        run_steps(steps);
        DistBenchRank& out = result.ranks[r];
        out.rank = r;
        out.step_seconds = std::chrono::duration<double>(Clock::now() - t0).count() / steps;
        out.param_bytes_at_rest = shards ? shards->memory().resident_bytes : result.model_param_bytes;
        out.param_bytes_peak = shards ? shards->memory().peak_bytes : result.model_param_bytes;
        for (Communicator* comm : comms) {
          out.comm_seconds += comm->stats().total_seconds() / steps;
          for (int k = 0; k < kBenchCollectiveKinds; ++k)
            out.bytes_per_step[k] += static_cast<double>(comm->stats().bytes_sent[k]) / steps;
        }
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < dist.world_size; ++r)
    if (!errors[r].empty())
      throw Error(ErrorCode::kCommunication, "bench rank " + std::to_string(r) + ": " + errors[r]);
  return result;
}

}  // namespace wan
