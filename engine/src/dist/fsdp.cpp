#include "dist/fsdp.h"

#include <sys/mman.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "wan/error.h"
#include "weights/loader.h"

namespace wan {

struct ShardedParameters::Unit {
  struct Member {
    std::string name;
    torch::Tensor param;  // the module's own tensor object: its data is swapped, never the object
    std::vector<std::int64_t> shape;
    std::int64_t offset = 0, numel = 0;
  };
  struct Group {  // the members of one dtype, flattened
    torch::ScalarType dtype = torch::kFloat32;
    std::vector<Member> members;
    std::int64_t numel = 0, chunk = 0;
    torch::Tensor shard;  // [chunk]: this rank's part (FULL_SHARD, SHARD_GRAD_OP)
    torch::Tensor full;   // [chunk * N] while present or being gathered
    std::unique_ptr<PendingCollective> pending;
  };
  std::vector<Group> groups;
  bool present = false;
  bool gathering = false;

  Group& group_for(torch::ScalarType dtype) {
    for (Group& g : groups)
      if (g.dtype == dtype) return g;
    groups.emplace_back();
    groups.back().dtype = dtype;
    return groups.back();
  }
};

namespace {

using Unit = ShardedParameters::Unit;

std::int64_t bytes_of(const torch::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<std::int64_t>(t.element_size()) : 0;
}

// "blocks.<i>.<rest>" -> 1 + i; anything else -> 0 (the root unit).
int unit_of(const std::string& name, std::int64_t num_blocks) {
  static const std::string prefix = "blocks.";
  if (name.compare(0, prefix.size(), prefix) != 0) return 0;
  const std::size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos) return 0;
  const std::int64_t index = std::stoll(name.substr(prefix.size(), dot - prefix.size()));
  return index < num_blocks ? static_cast<int>(1 + index) : 0;
}

// A gather buffer. On the CPU it is mapped on its own, outside malloc's heap: these are the largest
// blocks a sharded rank allocates and they live across forwards, and in the heap, between the
// forward's temporaries, they left the heap fragmented (measured: resident set 1.5x the live bytes).
torch::Tensor gather_buffer(std::int64_t numel, const torch::TensorOptions& options) {
  if (!options.device().is_cpu() || numel == 0) return torch::empty({numel}, options);
  const std::size_t bytes = static_cast<std::size_t>(numel) * c10::elementSize(options.dtype().toScalarType());
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    throw Error(ErrorCode::kUnsupported, "out of memory: sharding could not map a " + std::to_string(bytes >> 20) +
                                             " MiB gather buffer (use fewer or smaller settings, or more ranks)");
  return torch::from_blob(
      p, {numel}, [bytes](void* q) { munmap(q, bytes); }, options);
}

void bind(Unit::Group& g) {
  for (Unit::Member& m : g.members) m.param.set_data(g.full.narrow(0, m.offset, m.numel).view(m.shape));
}

void unbind(Unit::Group& g, torch::Device device) {
  const torch::Tensor empty = torch::empty({0}, torch::TensorOptions().dtype(g.dtype).device(device));
  for (Unit::Member& m : g.members) m.param.set_data(empty);
}

}  // namespace

ShardedParameters::ShardedParameters(torch::nn::Module& module, std::int64_t num_blocks, Communicator& comm,
                                     const ShardOptions& options, const TensorSource* source, const std::string& what,
                                     torch::Device device)
    : comm_(comm), options_(options) {
  torch::NoGradGuard no_grad;
  if (source) check_strict(module, *source, what);
  const int n = comm.size(), r = comm.rank();
  if (options.source_rank < 0 || options.source_rank >= n)
    throw Error(ErrorCode::kInternal, "sharding: source rank " + std::to_string(options.source_rank) + " out of range");
  for (std::int64_t i = 0; i <= num_blocks; ++i) units_.push_back(std::make_unique<Unit>());
  for (const auto& item : module.named_parameters(true)) {
    Unit::Group& g = units_[unit_of(item.key(), num_blocks)]->group_for(item.value().scalar_type());
    Unit::Member m;
    m.name = item.key();
    m.param = item.value();
    m.shape = item.value().sizes().vec();
    m.offset = g.numel;
    m.numel = item.value().numel();
    g.numel += m.numel;
    model_bytes_ += m.numel * static_cast<std::int64_t>(item.value().element_size());
    g.members.push_back(std::move(m));
  }
  // Buffers (none in the Wan models today) are replicated.
  for (const auto& item : module.named_buffers(true)) {
    torch::Tensor b = item.value();
    if (source)
      b.set_data(source->load(item.key(), b.scalar_type(), device));
    else
      b.set_data(b.to(device));
    replicated_bytes_ += bytes_of(b);
    model_bytes_ += bytes_of(b);
  }

  auto value = [&](const Unit::Member& m) -> torch::Tensor {
    return (source ? stored_value(*source, m.name, m.param.scalar_type()) : m.param).reshape({-1});
  };
  const bool shard = options.strategy != ShardingStrategy::kNoShard;
  const bool reads_all = !options.sync_module_states || r == options.source_rank;
  for (auto& unit : units_) {
    for (Unit::Group& g : unit->groups) {
      g.chunk = (g.numel + n - 1) / n;
      const auto opts = torch::TensorOptions().dtype(g.dtype).device(device);
      if (options.sync_module_states || !shard) {
        // The whole unit: read here (or on the source rank and broadcast), then keep all or a slice.
        const std::int64_t size = shard ? g.chunk * n : g.numel;  // replicated: no padding
        torch::Tensor full = torch::empty({size}, opts);
        if (reads_all) {
          full.narrow(0, g.numel, size - g.numel).zero_();
          for (const Unit::Member& m : g.members) {
            full.narrow(0, m.offset, m.numel).copy_(value(m));
            if (source) source->release_pages_of(m.name);
          }
        }
        if (options.sync_module_states && n > 1) comm.broadcast(full, options.source_rank);
        if (shard)
          g.shard = full.narrow(0, static_cast<std::int64_t>(r) * g.chunk, g.chunk).clone();
        else
          g.full = full;
      } else {
        // Only this rank's range of each tensor is read (and merged or dequantized: flat_range).
        g.shard = torch::zeros({g.chunk}, opts);
        const std::int64_t begin = static_cast<std::int64_t>(r) * g.chunk, end = begin + g.chunk;
        for (const Unit::Member& m : g.members) {
          const std::int64_t lo = std::max(begin, m.offset), hi = std::min(end, m.offset + m.numel);
          if (lo < hi)
            g.shard.narrow(0, lo - begin, hi - lo)
                .copy_(source ? stored_range(*source, m.name, m.param.scalar_type(), lo - m.offset, hi - lo)
                              : m.param.reshape({-1}).narrow(0, lo - m.offset, hi - lo));
          if (source) source->release_pages_of(m.name);
        }
      }
      if (shard)
        unbind(g, device);
      else
        bind(g);
    }
    unit->present = !shard;
  }
  note_memory();
}

ShardedParameters::~ShardedParameters() = default;

void ShardedParameters::start_gather(int u) {
  Unit& unit = *units_[u];
  if (unit.present || unit.gathering) return;
  for (Unit::Group& g : unit.groups) {
    g.full = take_buffer(g.chunk * comm_.size(), g.shard.options());
    g.pending = comm_.all_gather_flat_async(g.shard, g.full);
  }
  unit.gathering = true;
  note_memory();
}

void ShardedParameters::make_present(int u) {
  Unit& unit = *units_[u];
  if (unit.present) return;
  start_gather(u);
  for (Unit::Group& g : unit.groups) {
    g.pending->wait();
    g.pending.reset();
    bind(g);
  }
  unit.gathering = false;
  unit.present = true;
}

void ShardedParameters::release(int u) {
  if (options_.strategy == ShardingStrategy::kNoShard) return;
  Unit& unit = *units_[u];
  if (!unit.present) return;
  for (Unit::Group& g : unit.groups) {
    unbind(g, g.shard.device());
    spare_.push_back(std::move(g.full));
    g.full = torch::Tensor();
  }
  unit.present = false;
}

torch::Tensor ShardedParameters::take_buffer(std::int64_t numel, const torch::TensorOptions& options) {
  for (auto it = spare_.begin(); it != spare_.end(); ++it)
    if (it->numel() == numel && it->scalar_type() == options.dtype().toScalarType() &&
        it->device() == options.device()) {
      torch::Tensor t = std::move(*it);
      spare_.erase(it);
      return t;
    }
  return gather_buffer(numel, options);
}

void ShardedParameters::begin_forward() {
  make_present(0);
  if (options_.prefetch && units_.size() > 1) start_gather(1);
}

void ShardedParameters::before_block(int index) {
  const int u = 1 + index;
  make_present(u);
  if (options_.prefetch && u + 1 < num_units()) start_gather(u + 1);
}

void ShardedParameters::after_block(int index) {
  if (options_.strategy == ShardingStrategy::kFullShard) release(1 + index);
}

void ShardedParameters::end_forward() {
  // A forward whose blocks the step cache skipped (model/step_cache.h) leaves the prefetched first block
  // gathering: finish that collective (every rank started it) and, with FULL_SHARD, free the block. After
  // a forward that ran its blocks no unit is gathering.
  for (int u = 1; u < num_units(); ++u)
    if (units_[u]->gathering) {
      make_present(u);
      if (options_.strategy == ShardingStrategy::kFullShard) release(u);
    }
  if (options_.strategy == ShardingStrategy::kFullShard) release(0);
  trim_spares(2);
}

void ShardedParameters::end_step() {
  for (int u = 0; u < num_units(); ++u)
    if (!units_[u]->gathering) release(u);
  trim_spares(2);
}

void ShardedParameters::trim_spares(std::size_t keep_per_size) {
  std::map<std::pair<std::int64_t, int>, std::size_t> kept;
  std::vector<torch::Tensor> out;
  for (torch::Tensor& t : spare_)
    if (kept[{t.numel(), static_cast<int>(t.scalar_type())}]++ < keep_per_size) out.push_back(std::move(t));
  spare_ = std::move(out);
}

ShardMemory ShardedParameters::memory() const {
  ShardMemory m;
  m.model_bytes = model_bytes_;
  m.resident_bytes = replicated_bytes_;
  for (const auto& unit : units_)
    for (const Unit::Group& g : unit->groups) {
      m.shard_bytes += bytes_of(g.shard);
      m.resident_bytes += bytes_of(g.shard) + bytes_of(g.full);
    }
  for (const torch::Tensor& t : spare_) m.cached_bytes += bytes_of(t);
  m.peak_bytes = std::max(peak_bytes_, m.resident_bytes + m.cached_bytes);
  return m;
}

void ShardedParameters::note_memory() {
  const ShardMemory m = memory();
  peak_bytes_ = std::max(peak_bytes_, m.resident_bytes + m.cached_bytes);
}

void ShardedParameters::reset_peak() {
  const ShardMemory m = memory();
  peak_bytes_ = m.resident_bytes + m.cached_bytes;
}

std::int64_t ShardedParameters::gather_bytes_per_pass() const {
  if (options_.strategy == ShardingStrategy::kNoShard) return 0;
  std::int64_t bytes = 0;
  for (const auto& unit : units_)
    for (const Unit::Group& g : unit->groups) bytes += bytes_of(g.shard) * (comm_.size() - 1);
  return bytes;
}

ShardingLoader make_sharding_loader(Communicator& comm, const ShardOptions& options) {
  return [&comm, options](torch::nn::Module& module, std::int64_t num_blocks, const TensorSource& source,
                          const std::string& what, torch::Device device) -> std::shared_ptr<ParameterResidency> {
    return std::make_shared<ShardedParameters>(module, num_blocks, comm, options, &source, what, device);
  };
}

}  // namespace wan
