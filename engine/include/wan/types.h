// Typed settings shared by the request and the distributed config: the dtype of weights and the device
// a rank computes on. Parsed from text at the edges (JSON, command line, forms); no torch types.
#pragma once
#include <string>

namespace wan {

// The most LibTorch intra-op threads `--threads` takes (wan, wan-worker): far above any CPU's cores, far
// below what makes thread creation itself the run (100000 threads hung `wan generate` before this bound).
constexpr int kMaxThreads = 1024;

// A weight dtype. kAuto (the request only): bf16 on a GPU (the official param_dtype), fp32 on the CPU,
// where LibTorch's bf16 matmuls are slower than fp32 ones; with FSDP on a GPU the config's param_dtype.
enum class Dtype { kAuto, kFloat32, kBFloat16, kFloat16 };
const char* dtype_name(Dtype dtype);       // "auto", "fp32", "bf16", "fp16" (the request's and the CLI's names)
const char* dtype_long_name(Dtype dtype);  // "auto", "float32", "bfloat16", "float16" (the config's, as PyTorch)
// Either name, and "float" / "half"; throws wan::Error(kInvalidArgument) naming the choices.
Dtype parse_dtype_name(const std::string& name);

// What a run does with weights a file stores in float8 (e4m3fn, e5m2; plain or with scales, as
// ComfyUI's *_fp8_e4m3fn and *_fp8_scaled files): the two ways of issue 19.
//   kDequantize: converted to the compute dtype as they load (q * s), each rank keeping its shard;
//                the model then runs as from a bf16 file (2 bytes per parameter on a GPU).
//   kKeep:       the float8 bytes (1 per parameter) and their scales stay in memory and each linear
//                layer dequantizes its weight to the compute dtype just before its matmul (the same
//                values as kDequantize, bit for bit; one layer's weight in float32 and the compute
//                dtype lives while it runs). Weights a LoRA patches are dequantized at load.
enum class Fp8Weights { kDequantize, kKeep };
const char* fp8_weights_name(Fp8Weights mode);  // "dequantize", "keep"
// Throws wan::Error(kInvalidArgument) naming the choices.
Fp8Weights parse_fp8_weights(const std::string& name);

// Where a rank computes: the CPU, or a CUDA GPU. index -1 on a GPU: the rank's own (its LOCAL_RANK in a
// distributed run, else GPU 0).
struct Device {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = -1;
  bool is_cpu() const { return kind == Kind::kCpu; }
  bool is_cuda() const { return kind == Kind::kCuda; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};
std::string device_name(const Device& device);  // "cpu", "cuda", "cuda:1"
// "cpu", "cuda", "cuda:N"; throws wan::Error(kInvalidArgument) naming the choices. Whether a GPU exists
// is checked where the run is planned, not here.
Device parse_device_name(const std::string& name);

}  // namespace wan
