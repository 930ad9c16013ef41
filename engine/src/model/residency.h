// Where a model's parameters live between uses. A model whose weights are sharded across ranks
// (FSDP-style) asks its residency to make a block's parameters present before the block runs and lets
// it drop them after; a model with ordinary, fully loaded weights has no residency (null).
#pragma once

namespace wan {

class ParameterResidency {
 public:
  virtual ~ParameterResidency() = default;
  // Around one forward pass: the parameters outside the blocks (embeddings, head) are present between
  // begin_forward and end_forward.
  virtual void begin_forward() = 0;
  virtual void end_forward() = 0;
  // Block i's parameters are present from before_block(i) until after_block(i).
  virtual void before_block(int index) = 0;
  virtual void after_block(int index) = 0;
  // The end of one sampling step (both guidance forwards): SHARD_GRAD_OP frees what it kept.
  virtual void end_step() = 0;
};

// Calls begin_forward/end_forward around a scope; a null residency does nothing.
class ForwardScope {
 public:
  explicit ForwardScope(ParameterResidency* r) : r_(r) {
    if (r_) r_->begin_forward();
  }
  ~ForwardScope() {
    if (r_) r_->end_forward();
  }
  ForwardScope(const ForwardScope&) = delete;
  ForwardScope& operator=(const ForwardScope&) = delete;

 private:
  ParameterResidency* r_;
};

// While one of these lives on a thread, models constructed on that thread get placeholder parameters
// on the CPU that are never written (no memory is touched), for a loader that fills them itself.
class DeferredParameters {
 public:
  DeferredParameters();
  ~DeferredParameters();
  DeferredParameters(const DeferredParameters&) = delete;
  DeferredParameters& operator=(const DeferredParameters&) = delete;
  static bool active();

 private:
  bool previous_;
};

}  // namespace wan
