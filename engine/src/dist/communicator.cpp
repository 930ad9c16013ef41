#include "dist/communicator.h"

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <c10/util/env.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "core/progress_mark.h"
#include "dist/c10d_communicator.h"
#include "wan/error.h"

namespace wan {
namespace {

using Clock = std::chrono::steady_clock;

std::string first_line(const std::string& s) {
  const auto end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

std::uint64_t nbytes(const torch::Tensor& x) { return static_cast<std::uint64_t>(x.numel()) * x.element_size(); }

class SingleRankCommunicator : public Communicator {
 public:
  SingleRankCommunicator() : Communicator(0, 1) {}
  std::unique_ptr<Communicator> split(const std::vector<int>& ranks, const std::string&) override {
    if (ranks != std::vector<int>{0})
      throw Error(ErrorCode::kInvalidArgument, "split of a single-rank world must be {0}");
    return std::make_unique<SingleRankCommunicator>();
  }

 protected:
  torch::Tensor do_all_gather(const torch::Tensor& x) override { return x.unsqueeze(0).clone(); }
  torch::Tensor do_all_to_all(const torch::Tensor& x) override { return x.clone(); }
  void do_broadcast(torch::Tensor&, int) override {}
  void do_all_reduce_sum(torch::Tensor&) override {}
  torch::Tensor do_send_recv(const torch::Tensor& x, int, int) override { return x.clone(); }
  void do_barrier() override {}
};

// Gloo moves bfloat16 natively (LibTorch 2.x); its sums of bfloat16 add in bfloat16 one rank at a
// time, so all-reduce sums bfloat16 in float32 and rounds once (c10d_communicator.h).
struct GlooTraits {
  using PG = c10d::ProcessGroupGloo;
  static constexpr const char* kName = "gloo";
  static c10::intrusive_ptr<PG> make(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                     std::chrono::milliseconds timeout) {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (const char* host = std::getenv("WAN_GLOO_HOST"))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
    else
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    options->threads = 2;
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
  }
  static bool sums_bf16() { return false; }
  // All-gather of equal shards into one flat tensor as one in-place broadcast per rank: gloo's
  // allgather stages the result in a flat buffer of its own and copies it out, one more gathered unit
  // allocated (and page-faulted in) on every gather.
  static std::vector<c10::intrusive_ptr<c10d::Work>> gather_flat(PG& pg, at::Tensor& out, at::Tensor& shard, int rank,
                                                                 int size) {
    const std::int64_t n = shard.numel();
    out.narrow(0, rank * n, n).copy_(shard);
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (int i = 0; i < size; ++i) {
      std::vector<at::Tensor> part{out.narrow(0, i * n, n)};
      c10d::BroadcastOptions opts;
      opts.rootRank = i;
      works.push_back(pg.broadcast(part, opts));
    }
    return works;
  }
};

}  // namespace

const char* collective_name(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllGather:
      return "all_gather";
    case CollectiveKind::kAllToAll:
      return "all_to_all";
    case CollectiveKind::kBroadcast:
      return "broadcast";
    case CollectiveKind::kAllReduce:
      return "all_reduce";
    case CollectiveKind::kSendRecv:
      return "send_recv";
    case CollectiveKind::kBarrier:
      return "barrier";
    case CollectiveKind::kRendezvous:
      return "rendezvous";
    case CollectiveKind::kCount:
      return "none";
  }
  return "?";
}

double CommStats::total_seconds() const {
  double s = 0;
  for (double v : seconds) s += v;
  return s;
}

namespace {

// Fault injection for the hang tests: WAN_TEST_STALL_BEFORE="<collective>:<rank>:<n>" (e.g.
// "all_to_all:1:3") stops the process whose RANK is <rank> for good before its n-th collective of that
// kind, its process alive, as a rank blocked by a bug or a driver would be. Read once per process.
void stall_if_asked(CollectiveKind kind) {
  struct Stall {
    int kind = -1, rank = -1;
    long nth = 0;
    std::atomic<long> seen{0};
  };
  static Stall* stall = [] {
    auto* s = new Stall;
    const char* spec = std::getenv("WAN_TEST_STALL_BEFORE");
    const char* rank = std::getenv("RANK");
    if (!spec || !rank) return s;
    const std::string text = spec;
    const auto a = text.find(':'), b = text.rfind(':');
    if (a == std::string::npos || b == a) return s;
    for (int k = 0; k < kCollectiveKinds; ++k)
      if (text.substr(0, a) == collective_name(static_cast<CollectiveKind>(k))) s->kind = k;
    s->rank = std::atoi(text.substr(a + 1, b - a - 1).c_str());
    s->nth = std::atol(text.substr(b + 1).c_str());
    if (s->rank != std::atoi(rank)) s->kind = -1;
    return s;
  }();
  if (stall->kind != static_cast<int>(kind)) return;
  if (++stall->seen != stall->nth) return;
  std::fprintf(stderr, "WAN_TEST_STALL_BEFORE: rank %d stops before its %s number %ld\n", stall->rank,
               collective_name(kind), stall->nth);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace

template <typename Fn>
auto Communicator::timed(CollectiveKind kind, std::uint64_t bytes, Fn&& fn) -> decltype(fn()) {
  stall_if_asked(kind);
  note_collective_begin(kind);
  struct EndMark {
    ~EndMark() { note_collective_end(); }
  } end_mark;
  const auto t0 = Clock::now();
  struct Account {
    CommStats& stats;
    int k;
    std::uint64_t bytes;
    Clock::time_point t0;
    ~Account() {
      stats.calls[k] += 1;
      stats.bytes_sent[k] += bytes;
      stats.seconds[k] += std::chrono::duration<double>(Clock::now() - t0).count();
    }
  } account{stats_, static_cast<int>(kind), bytes, t0};
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCommunication, std::string(collective_name(kind)) + " failed on rank " +
                                               std::to_string(rank_) + " of " + std::to_string(size_) + ": " +
                                               first_line(e.what()));
  }
}

torch::Tensor Communicator::all_gather(const torch::Tensor& x, std::int64_t dim) {
  const torch::Tensor c = x.contiguous();
  const torch::Tensor stacked =
      timed(CollectiveKind::kAllGather, nbytes(c) * (size_ - 1), [&] { return do_all_gather(c); });
  // [size, ...] -> concatenation along dim.
  return torch::cat(stacked.unbind(0), dim);
}

std::function<void()> Communicator::do_all_gather_flat_async(const torch::Tensor& shard, torch::Tensor& out) {
  const torch::Tensor stacked = do_all_gather(shard);
  out.copy_(stacked.reshape({-1}));
  return [] {};
}

class PendingGather : public PendingCollective {
 public:
  PendingGather(Communicator& comm, std::function<void()> complete) : comm_(comm), complete_(std::move(complete)) {}
  ~PendingGather() override {
    // A gather abandoned by an exception must still finish before its buffers go away.
    if (complete_) try {
        complete_();
      } catch (...) {
      }
  }
  void wait() override {
    if (!complete_) return;
    auto complete = std::move(complete_);
    complete_ = nullptr;
    comm_.timed(CollectiveKind::kAllGather, 0, [&] { complete(); });
    comm_.stats_.calls[static_cast<int>(CollectiveKind::kAllGather)] -= 1;  // counted when started
  }

 private:
  Communicator& comm_;
  std::function<void()> complete_;
};

namespace {
// float8 tensors travel as their bytes: gloo has no float8 types, and the bytes are what is moved.
torch::Tensor as_bytes_if_float8(const torch::Tensor& x) {
  return c10::isFloat8Type(x.scalar_type()) ? x.view(torch::kUInt8) : x;
}
}  // namespace

std::unique_ptr<PendingCollective> Communicator::all_gather_flat_async(const torch::Tensor& shard_in,
                                                                       torch::Tensor out_in) {
  const torch::Tensor shard = as_bytes_if_float8(shard_in);
  torch::Tensor out = as_bytes_if_float8(out_in);
  if (shard.dim() != 1 || out.dim() != 1 || out.numel() != shard.numel() * size_ || !out.is_contiguous() ||
      out.scalar_type() != shard.scalar_type())
    throw Error(ErrorCode::kInternal,
                "all_gather_flat_async: out must be a contiguous 1-D tensor of size() x the shard");
  const torch::Tensor c = shard.contiguous();
  std::function<void()> complete =
      timed(CollectiveKind::kAllGather, nbytes(c) * (size_ - 1), [&] { return do_all_gather_flat_async(c, out); });
  return std::make_unique<PendingGather>(*this, std::move(complete));
}

torch::Tensor Communicator::all_to_all(const torch::Tensor& x) {
  if (x.dim() == 0 || x.size(0) % size_ != 0)
    throw Error(ErrorCode::kInternal, "all_to_all: dim 0 of size " + std::to_string(x.dim() ? x.size(0) : 0) +
                                          " does not split into " + std::to_string(size_) + " ranks");
  const torch::Tensor c = x.contiguous();
  return timed(CollectiveKind::kAllToAll, nbytes(c) / size_ * (size_ - 1), [&] { return do_all_to_all(c); });
}

void Communicator::broadcast(torch::Tensor& x_in, int root) {
  if (!x_in.is_contiguous()) throw Error(ErrorCode::kInternal, "broadcast needs a contiguous tensor");
  torch::Tensor x = as_bytes_if_float8(x_in);  // shares x_in's storage
  timed(CollectiveKind::kBroadcast, rank_ == root ? nbytes(x) : 0, [&] { do_broadcast(x, root); });
}

void Communicator::all_reduce_sum(torch::Tensor& x) {
  if (!x.is_contiguous()) throw Error(ErrorCode::kInternal, "all_reduce needs a contiguous tensor");
  timed(CollectiveKind::kAllReduce, nbytes(x) * 2 * (size_ - 1) / size_, [&] { do_all_reduce_sum(x); });
}

torch::Tensor Communicator::send_recv(const torch::Tensor& x, int dst, int src) {
  const torch::Tensor c = x.contiguous();
  return timed(CollectiveKind::kSendRecv, dst == rank_ ? 0 : nbytes(c), [&] { return do_send_recv(c, dst, src); });
}

void Communicator::barrier() {
  timed(CollectiveKind::kBarrier, 0, [&] { do_barrier(); });
}

std::unique_ptr<Communicator> make_single_rank_communicator() { return std::make_unique<SingleRankCommunicator>(); }

std::unique_ptr<Communicator> make_gloo_communicator(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                     std::chrono::milliseconds timeout) {
  try {
    return std::make_unique<ProcessGroupCommunicator<GlooTraits>>(store, rank, size, timeout,
                                                                  torch::Device(torch::kCPU));
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCommunication, "gloo set-up failed on rank " + std::to_string(rank) + " of " +
                                               std::to_string(size) + ": " + first_line(e.what()));
  }
}

c10::intrusive_ptr<c10d::Store> host_tcp_store(int& port, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(port);
  o.isServer = true;
  o.waitWorkers = false;
  o.timeout = timeout;
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", o);
    port = store->getPort();
    return store;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCommunication, "cannot start the rendezvous store on port " + std::to_string(port) + ": " +
                                               first_line(e.what()) +
                                               (port ? "; is the port in use? pick another MASTER_PORT" : ""));
  }
}

c10::intrusive_ptr<c10d::Store> connect_store(const RendezvousOptions& r) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(r.master_port);
  o.isServer = r.host_store;
  o.waitWorkers = false;
  o.timeout = r.timeout;
  try {
    return c10::make_intrusive<c10d::TCPStore>(r.master_addr, o);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCommunication, std::string(r.host_store ? "cannot host" : "cannot reach") +
                                               " the rendezvous store at " + r.master_addr + ":" +
                                               std::to_string(r.master_port) + ": " + first_line(e.what()));
  }
}

std::unique_ptr<Communicator> connect_gloo(const RendezvousOptions& r) {
  return make_gloo_communicator(connect_store(r), r.rank, r.world_size, r.timeout);
}

void default_flight_recorder_off() {
  static std::once_flag once;
  std::call_once(once, [] {
    // c10's set_env holds c10's environment lock (LibTorch reads the environment under it).
    if (!c10::utils::has_env("TORCH_FR_BUFFER_SIZE") && !c10::utils::has_env("TORCH_NCCL_TRACE_BUFFER_SIZE"))
      c10::utils::set_env("TORCH_FR_BUFFER_SIZE", "0", /*overwrite=*/false);
  });
}

#if !WAN_WITH_NCCL
bool nccl_available() { return false; }
std::string nccl_version() { return ""; }
std::unique_ptr<Communicator> connect_nccl(const RendezvousOptions&, int) {
  throw Error(ErrorCode::kUnsupported,
              "this build has no NCCL (it needs a CUDA LibTorch with c10d NCCL and nccl.h at build "
              "time); use backend gloo with --device cpu, or a GPU build");
}
#endif

}  // namespace wan
