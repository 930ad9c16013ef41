// NCCL through c10d's ProcessGroupNCCL (GPU builds whose LibTorch has it; CMake compiles this file only
// then). Every collective runs on the rank's GPU; results are ready for the current CUDA stream when a
// collective returns (Work::wait makes the current stream wait for NCCL's).
#include <c10/cuda/CUDAGuard.h>

#include <torch/csrc/distributed/c10d/NCCLUtils.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include "dist/c10d_communicator.h"

namespace wan {
namespace {

struct NcclTraits {
  using PG = c10d::ProcessGroupNCCL;
  static constexpr const char* kName = "nccl";
  static c10::intrusive_ptr<PG> make(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                     std::chrono::milliseconds timeout) {
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    return c10::make_intrusive<PG>(store, rank, size, options);
  }
  static bool sums_bf16() { return true; }
  // Straight into the flat output (what torch's FSDP uses); the list allgather stages through a copy.
  static std::vector<c10::intrusive_ptr<c10d::Work>> gather_flat(PG& pg, at::Tensor& out, at::Tensor& shard, int, int) {
    return {pg._allgather_base(out, shard)};
  }
};

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

bool nccl_available() { return true; }
std::string nccl_version() { return c10d::getNcclVersion(); }

std::unique_ptr<Communicator> connect_nccl(const RendezvousOptions& r, int cuda_device) {
  const int devices = static_cast<int>(c10::cuda::device_count());
  if (cuda_device < 0 || cuda_device >= devices)
    throw Error(ErrorCode::kUnsupported, "rank " + std::to_string(r.rank) + " wants GPU " +
                                             std::to_string(cuda_device) + " (its local rank) but this machine shows " +
                                             std::to_string(devices) +
                                             " GPU(s); start at most that many ranks per machine");
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(cuda_device));
  auto store = connect_store(r);
  try {
    return std::make_unique<ProcessGroupCommunicator<NcclTraits>>(
        store, r.rank, r.world_size, r.timeout,
        torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(cuda_device)));
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCommunication, "nccl set-up failed on rank " + std::to_string(r.rank) + " of " +
                                               std::to_string(r.world_size) + ": " + first_line(e.what()));
  }
}

}  // namespace wan
