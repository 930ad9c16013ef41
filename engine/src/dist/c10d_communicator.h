// A Communicator over one c10d process group (gloo, NCCL): the collectives are the same calls on
// either; Traits say how to build the group, whether bfloat16 sums run in float32 (gloo) or natively
// and on which device they must be (NCCL: the rank's GPU; tensors elsewhere are copied there and back).
// Internal to the engine.
#pragma once
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>

#include "dist/communicator.h"
#include "wan/error.h"

namespace wan {

template <typename Traits>
class ProcessGroupCommunicator : public Communicator {
 public:
  ProcessGroupCommunicator(c10::intrusive_ptr<c10d::Store> store, int rank, int size, std::chrono::milliseconds timeout,
                           torch::Device device)
      : Communicator(rank, size), store_(std::move(store)), timeout_(timeout), device_(device) {
    default_flight_recorder_off();
    pg_ = Traits::make(store_, rank, size, timeout);
  }

  std::unique_ptr<Communicator> split(const std::vector<int>& ranks, const std::string& name) override {
    int index = -1;
    for (std::size_t i = 0; i < ranks.size(); ++i)
      if (ranks[i] == rank()) index = static_cast<int>(i);
    if (index < 0)
      throw Error(ErrorCode::kInternal, "split " + name + ": rank " + std::to_string(rank()) + " is not a member");
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("split/" + name, store_);
    return std::make_unique<ProcessGroupCommunicator<Traits>>(prefixed, index, static_cast<int>(ranks.size()), timeout_,
                                                              device_);
  }

 protected:
  torch::Tensor do_all_gather(const torch::Tensor& x) override {
    const torch::Tensor in = on_device(x);
    std::vector<at::Tensor> inputs{in};
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int i = 0; i < size(); ++i) outputs[0].push_back(torch::empty_like(inputs[0]));
    wait(pg_->allgather(outputs, inputs));
    return back(torch::stack(outputs[0]), x);
  }
  torch::Tensor do_all_to_all(const torch::Tensor& x) override {
    at::Tensor input = on_device(x);
    at::Tensor output = torch::empty_like(input);
    std::vector<std::int64_t> counts;  // empty: equal splits
    wait(pg_->alltoall_base(output, input, counts, counts));
    return back(output, x);
  }
  void do_broadcast(torch::Tensor& x, int root) override {
    torch::Tensor d = on_device(x);
    std::vector<at::Tensor> tensors{d};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    wait(pg_->broadcast(tensors, opts));
    if (!d.is_same(x)) x.copy_(d);
  }
  void do_all_reduce_sum(torch::Tensor& x) override {
    if (x.scalar_type() == torch::kBFloat16 && !Traits::sums_bf16()) {  // summed in float32, rounded once
      torch::Tensor f = x.to(torch::kFloat32);
      do_all_reduce_sum(f);
      x.copy_(f);
      return;
    }
    torch::Tensor d = on_device(x);
    std::vector<at::Tensor> tensors{d};
    wait(pg_->allreduce(tensors));
    if (!d.is_same(x)) x.copy_(d);
  }
  torch::Tensor do_send_recv(const torch::Tensor& x, int dst, int src) override {
    std::vector<at::Tensor> out{on_device(x)};
    std::vector<at::Tensor> in{torch::empty_like(out[0])};
    auto send = pg_->send(out, dst, kTag);
    auto recv = pg_->recv(in, src, kTag);
    wait(send);
    wait(recv);
    return back(in[0], x);
  }
  void do_barrier() override { wait(pg_->barrier()); }
  std::function<void()> do_all_gather_flat_async(const torch::Tensor& shard, torch::Tensor& out) override {
    if (shard.device() != device_ || out.device() != device_) return Communicator::do_all_gather_flat_async(shard, out);
    at::Tensor in = shard, w = out;
    std::vector<c10::intrusive_ptr<c10d::Work>> works = Traits::gather_flat(*pg_, w, in, rank(), size());
    return [this, works, in, w] {  // the captures keep the buffers alive
      for (const auto& work : works) wait(work);
    };
  }

 private:
  static constexpr int kTag = 7;
  torch::Tensor on_device(const torch::Tensor& x) const { return x.device() == device_ ? x : x.to(device_); }
  static torch::Tensor back(const torch::Tensor& result, const torch::Tensor& like) {
    return result.device() == like.device() ? result : result.to(like.device());
  }
  void wait(const c10::intrusive_ptr<c10d::Work>& work) {
    if (!work->wait(timeout_))
      throw std::runtime_error(std::string(Traits::kName) + " timed out after " +
                               std::to_string(timeout_.count() / 1000) + " s");
  }
  c10::intrusive_ptr<c10d::Store> store_;
  std::chrono::milliseconds timeout_;
  torch::Device device_;
  c10::intrusive_ptr<typename Traits::PG> pg_;
};

}  // namespace wan
