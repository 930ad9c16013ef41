// One communicator interface for the distributed runtime, with real backends: gloo through LibTorch's
// c10d (CPU; what the tests use), a single-rank communicator (world size 1, no library), and NCCL on
// GPU builds. Rendezvous goes through c10d's TCPStore. Every collective has a timeout, and a failure
// throws wan::Error(kCommunication) naming the operation, the rank and the library's message.
#pragma once
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <vector>

#include "wan/progress_board.h"  // CollectiveKind

namespace wan {

// Per-kind accounting: payload bytes this rank sent (what the algorithm must move at least: all-gather
// (n-1)/1 of the local part, all-to-all (n-1)/n of the input, ring all-reduce 2(n-1)/n), calls, seconds.
struct CommStats {
  std::array<std::uint64_t, kCollectiveKinds> bytes_sent{};
  std::array<std::uint64_t, kCollectiveKinds> calls{};
  std::array<double, kCollectiveKinds> seconds{};
  double total_seconds() const;
};

// A collective in flight; wait() completes it (throws wan::Error(kCommunication) on failure or timeout).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  Communicator(int rank, int size) : rank_(rank), size_(size) {}
  virtual ~Communicator() = default;
  int rank() const { return rank_; }
  int size() const { return size_; }

  // Every rank passes a tensor of the same shape; returns them concatenated along `dim` in rank order.
  torch::Tensor all_gather(const torch::Tensor& x, std::int64_t dim);
  // x's dim 0 splits into size() equal chunks; chunk i goes to rank i. The result's chunk j is what
  // rank j sent to this rank.
  torch::Tensor all_to_all(const torch::Tensor& x);
  // In place: every rank ends with root's x.
  void broadcast(torch::Tensor& x, int root);
  // In place: every rank ends with the element-wise sum.
  void all_reduce_sum(torch::Tensor& x);
  // Sends x to rank `dst` and returns the tensor of the same shape and dtype received from rank `src`.
  torch::Tensor send_recv(const torch::Tensor& x, int dst, int src);
  void barrier();
  // Starts gathering every rank's 1-D `shard` (same numel everywhere) into `out` (numel size() *
  // shard.numel(), rank r's shard at offset r * shard.numel()); `out` is valid after wait(). The time
  // accounted is the time spent waiting, so prefetching that overlaps compute shows as less.
  std::unique_ptr<PendingCollective> all_gather_flat_async(const torch::Tensor& shard, torch::Tensor out);

  // The members of `ranks` (ranks of this communicator, in the new order) call this together; the
  // others must not. `name` must be unique among the splits of this communicator.
  virtual std::unique_ptr<Communicator> split(const std::vector<int>& ranks, const std::string& name) = 0;

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = CommStats{}; }

 protected:
  virtual torch::Tensor do_all_gather(const torch::Tensor& x) = 0;  // x contiguous; returns [size, ...x]
  virtual torch::Tensor do_all_to_all(const torch::Tensor& x) = 0;  // x contiguous
  virtual void do_broadcast(torch::Tensor& x, int root) = 0;
  virtual void do_all_reduce_sum(torch::Tensor& x) = 0;
  virtual torch::Tensor do_send_recv(const torch::Tensor& x, int dst, int src) = 0;
  virtual void do_barrier() = 0;
  // Returns a function that completes the gather (default: done synchronously, the function is a no-op).
  virtual std::function<void()> do_all_gather_flat_async(const torch::Tensor& shard, torch::Tensor& out);

 private:
  friend class PendingGather;
  template <typename Fn>
  auto timed(CollectiveKind kind, std::uint64_t bytes, Fn&& fn) -> decltype(fn());
  int rank_, size_;
  CommStats stats_;
};

// World size 1: every collective is the identity. Real, for single-process runs of the same code path.
std::unique_ptr<Communicator> make_single_rank_communicator();

struct RendezvousOptions {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  bool host_store = false;  // this process runs the TCPStore server (rank 0 under torchrun-style launch)
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

// Connects to (or, with host_store, runs) the TCPStore at master_addr:master_port.
c10::intrusive_ptr<c10d::Store> connect_store(const RendezvousOptions& options);

// Connects to the TCPStore at master_addr:master_port and builds a gloo process group over it.
std::unique_ptr<Communicator> connect_gloo(const RendezvousOptions& options);

// c10d's Flight Recorder (a ring of the last collectives, kept by every process group for debugging
// hangs) is switched off: in LibTorch 2.11 two process groups of one
// process that enqueue at once can spin in FlightRecorder::recordWithResetEnabled for ever (PyTorch pull
// request 179313; seen here as a hung gloo all-to-all in 1 of 3 runs of tst_sequence_parallel, 0 of 5
// with it off). The engine watches ranks itself (progress board heartbeats). TORCH_FR_BUFFER_SIZE or
// TORCH_NCCL_TRACE_BUFFER_SIZE set by the user wins. Called before the first process group is made;
// thread-safe (once per process, through c10's environment lock).
void default_flight_recorder_off();

// Whether this build has NCCL (c10d's ProcessGroupNCCL of a CUDA LibTorch).
bool nccl_available();
// The version of the NCCL library LibTorch loaded, e.g. "2.28.9" ("" without NCCL).
std::string nccl_version();
// An NCCL process group over the TCPStore for the GPU `cuda_device` of this process; tensors on other
// devices are copied to it for each collective. Throws kUnsupported in builds without NCCL.
std::unique_ptr<Communicator> connect_nccl(const RendezvousOptions& options, int cuda_device);

// Gloo over an existing store (tests, and the launcher that hosts the store itself).
std::unique_ptr<Communicator> make_gloo_communicator(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                     std::chrono::milliseconds timeout);

// A TCPStore server on a free port of this host (port 0 asks the kernel); returns the store and port.
c10::intrusive_ptr<c10d::Store> host_tcp_store(int& port, std::chrono::milliseconds timeout);

}  // namespace wan
