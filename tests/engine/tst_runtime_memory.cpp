// Process memory the engine manages itself: the large-block cache, freed memory handed back between
// phases and steps, and the placeholders a sharded model is built with.
#include <c10/core/CPUAllocator.h>

#include "core/cpu_allocator.h"
#include "core/memory.h"
#include "core/runtime.h"
#include "model/attention_budget.h"
#include "model/dit.h"
#include "model/layers.h"
#include "model/model_files.h"
#include "model/residency.h"
#include "model/rope.h"
#include "pipeline/demo_model.h"
#include "weights/loader.h"

class TestRuntimeMemory : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { wan::init_runtime(1); }  // the engine's malloc settings: freed memory stays in the heap

  // Large CPU tensors come from mapped blocks that are cached when freed and reused by the next tensor
  // that fits (no page faults, no heap to fragment); small ones from malloc.
  void largeBlocksAreCachedAndReused() {
    QVERIFY(wan::cpu_block_cache_installed());
    wan::release_free_heap();
    const wan::CpuBlockStats start = wan::cpu_block_stats();
    QCOMPARE(start.cached_bytes, std::int64_t(0));
    torch::Tensor a = torch::full({std::int64_t(10) << 18}, 2.0f);  // 10 MiB
    wan::CpuBlockStats s = wan::cpu_block_stats();
    QCOMPARE(s.live_bytes - start.live_bytes, std::int64_t(10) << 20);
    QCOMPARE(s.maps - start.maps, std::int64_t(1));
    torch::Tensor small = torch::ones({1000});  // 4 KB: malloc
    QCOMPARE(wan::cpu_block_stats().live_bytes, s.live_bytes);
    a = torch::Tensor();
    s = wan::cpu_block_stats();
    QCOMPARE(s.cached_bytes, std::int64_t(10) << 20);
    torch::Tensor b = torch::arange(std::int64_t(9) << 18, torch::kFloat32);  // 9 MiB: the cached 10 MiB block
    QCOMPARE(wan::cpu_block_stats().maps, s.maps);
    QCOMPARE(wan::cpu_block_stats().cached_bytes, std::int64_t(0));
    QCOMPARE(b[12345].item<float>(), 12345.0f);
    torch::Tensor c = torch::ones({std::int64_t(30) << 18});  // 30 MiB: more than twice any cached block, a new one
    QCOMPARE(wan::cpu_block_stats().maps, s.maps + 1);
    QCOMPARE(c.sum().item<double>(), double(std::int64_t(30) << 18));
    b = torch::Tensor();
    c = torch::Tensor();
    // Sampling steps keep the blocks; phases give them back.
    wan::release_free_heap(/*keep_blocks=*/true);
    QCOMPARE(wan::cpu_block_stats().cached_bytes, std::int64_t(40) << 20);
    wan::release_free_heap();
    QCOMPARE(wan::cpu_block_stats().cached_bytes, std::int64_t(0));
    QCOMPARE(small.sum().item<float>(), 1000.0f);
    // Raw allocations (kernels' scratch memory) of both kinds go back where they came from.
    c10::Allocator* cpu = c10::GetCPUAllocator();
    void* raw_big = cpu->raw_allocate(std::size_t(3) << 20);
    void* raw_small = cpu->raw_allocate(64);
    QCOMPARE(wan::cpu_block_stats().live_bytes, start.live_bytes + (std::int64_t(4) << 20));
    cpu->raw_deallocate(raw_big);
    cpu->raw_deallocate(raw_small);
    QCOMPARE(wan::cpu_block_stats().live_bytes, start.live_bytes);
    QCOMPARE(wan::cpu_block_stats().cached_bytes, std::int64_t(4) << 20);
    wan::release_free_heap();
  }

  void weightsGetTightBlocks() {
    wan::release_free_heap();
    const wan::CpuBlockStats start = wan::cpu_block_stats();
    const std::int64_t mib = std::int64_t(1) << 20;
    // A temporary of 1 MiB takes a 2 MiB block (the size classes the forward's shapes share) ...
    torch::Tensor temp = torch::ones({mib / 4});
    QCOMPARE(wan::cpu_block_stats().live_bytes - start.live_bytes, 2 * mib);
    temp = torch::Tensor();
    const std::int64_t maps = wan::cpu_block_stats().maps;
    torch::Tensor weight, near;
    {
      const wan::LongLivedBlocks scope;
      // ... a weight of 1 MiB + 4 KiB gets its own block, page-sized, not the cached 2 MiB one ...
      weight = torch::ones({mib / 4 + 1024});
      QCOMPARE(wan::cpu_block_stats().live_bytes - start.live_bytes, mib + 4096);
      QCOMPARE(wan::cpu_block_stats().maps, maps + 1);
      QCOMPARE(wan::cpu_block_stats().cached_bytes, 2 * mib);
      // ... and a cached block at most an eighth larger serves a weight.
      near = torch::ones({(2 * mib - 200 * 1024) / 4});
      QCOMPARE(wan::cpu_block_stats().maps, maps + 1);
      QCOMPARE(wan::cpu_block_stats().cached_bytes, std::int64_t(0));
    }
    QCOMPARE(weight.sum().item<double>(), double(mib / 4 + 1024));
    // Outside the scope the 2 MiB classes are back.
    torch::Tensor after = torch::ones({mib / 4 + 1024});
    QCOMPARE(wan::cpu_block_stats().live_bytes - start.live_bytes, (mib + 4096) + 2 * mib + 2 * mib);
    weight = near = after = torch::Tensor();
    wan::release_free_heap();
  }

  void loadedModelsHoldTheirParameterBytes() {
    // The weights of a loaded DiT occupy their own size in blocks (the mid-size demo's 1 MiB projections
    // took 2 MiB blocks each before: 204 MiB for 138).
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    wan::DemoModelSpec spec;
    spec.dit_dim = 512;  // 1 MiB projections
    spec.dit_ffn = 1024;
    spec.dit_layers = 2;
    spec.t5_dim = 64;
    spec.t5_ffn = 128;
    spec.t5_layers = 1;
    spec.vae_dim = 8;
    const std::string folder = dir.filePath("model").toStdString();
    wan::make_demo_model(folder, spec);
    wan::release_free_heap();
    const std::int64_t before = wan::cpu_block_stats().live_bytes;
    std::int64_t params = 0;
    {
      const wan::LoadedDit dit = wan::load_dit(wan::open_weights(folder + "/diffusion_pytorch_model.safetensors"), "",
                                               wan::ModelPlacement::make(torch::kFloat32, torch::kCPU));
      for (const auto& p : dit.model->parameters())
        if (p.nbytes() >= (1 << 20)) params += static_cast<std::int64_t>(p.nbytes());
      const std::int64_t held = wan::cpu_block_stats().live_bytes - before;
      QVERIFY2(params > 8 << 20, qPrintable(QString::number(params)));
      QVERIFY2(held >= params && held < params + params / 16,
               qPrintable(QString("%1 bytes in blocks for %2 of parameters").arg(held).arg(params)));
    }
    wan::release_free_heap();
  }

  void freedHeapGoesBackOnlyWhenReleased() {
    torch::Tensor big = torch::ones({std::int64_t(32) << 20});  // 128 MiB, touched
    torch::Tensor pin = torch::ones({16});                      // above it: the heap's top cannot shrink
    const std::int64_t with_big = wan::current_rss_bytes();
    big = torch::Tensor();
    const std::int64_t freed = wan::current_rss_bytes();
    // The premise: the engine keeps freed blocks (fast, no page faults when reused) ...
    QVERIFY2(with_big - freed < 16 << 20,
             qPrintable(QString("free() gave back %1 MiB itself").arg((with_big - freed) >> 20)));
    // ... until the engine hands them back between phases and steps.
    wan::release_free_heap();
    const std::int64_t released = freed - wan::current_rss_bytes();
    QVERIFY2(released > 100 << 20, qPrintable(QString("only %1 MiB went back").arg(released >> 20)));
    QCOMPARE(pin.sum().item<float>(), 16.0f);
  }

  void deferredPlaceholdersHoldNoMemory() {
    // A sharded model is built with placeholders that the loader replaces: shapes and dtypes only.
    wan::Linear deferred(nullptr), ordinary(nullptr);
    {
      wan::DeferredParameters scope;
      deferred = wan::Linear(4096, 2048, true, torch::TensorOptions().dtype(torch::kBFloat16));
    }
    ordinary = wan::Linear(4096, 2048, true, torch::TensorOptions().dtype(torch::kBFloat16));
    QCOMPARE(deferred->weight.sizes().vec(), (std::vector<std::int64_t>{2048, 4096}));
    QCOMPARE(deferred->weight.scalar_type(), torch::kBFloat16);
    QCOMPARE(deferred->bias.sizes().vec(), (std::vector<std::int64_t>{2048}));
    QVERIFY(deferred->weight.storage().nbytes() <= 2);
    QCOMPARE(static_cast<std::int64_t>(ordinary->weight.storage().nbytes()), std::int64_t(2048) * 4096 * 2);
    // The loader swaps the data in.
    deferred->weight.set_data(torch::zeros({2048, 4096}, torch::kBFloat16));
    QCOMPARE(deferred->weight.sum().item<float>(), 0.0f);
  }

  // The kernels that bound their working set by slicing the tokens give what the whole tensors give.
  void ropeInSlicesIsBitIdentical() {
    const std::int64_t n = 12, d = 128, L = kRopeSlices * (wan::kRopeChunkElements / (n * d)) + 7;
    torch::manual_seed(3);
    const torch::Tensor x = torch::randn({1, L, n, d});
    const torch::Tensor angles = torch::rand({L, d / 2}, torch::kFloat64) * 6.3;
    const torch::Tensor cos = torch::cos(angles), sin = torch::sin(angles);
    // The reference's whole-tensor float64 rotation.
    const torch::Tensor xd = x.to(torch::kFloat64).reshape({1, L, n, d / 2, 2});
    const torch::Tensor re = xd.select(-1, 0), im = xd.select(-1, 1);
    const torch::Tensor c = cos.view({1, L, 1, d / 2}), s = sin.view({1, L, 1, d / 2});
    const torch::Tensor expected = torch::stack({re * c - im * s, re * s + im * c}, -1).flatten(3).to(torch::kFloat32);
    QVERIFY(torch::equal(wan::apply_rope(x, cos, sin), expected));
  }

  void cpuFfnInSlicesMatchesTheWholeTensor() {
    wan::DitConfig c;
    c.dim = 64;
    c.ffn_dim = 8192;  // a slice holds kFfnChunkElements / 8192 tokens
    c.num_heads = 1;
    torch::manual_seed(4);
    wan::DitBlock block(c, wan::ModelPlacement{});
    for (auto& p : block->parameters()) p.data().normal_(0, 0.05);
    const std::int64_t L = kRopeSlices * (wan::kFfnChunkElements / c.ffn_dim) + 5;
    const torch::Tensor h = torch::randn({1, L, c.dim});
    torch::NoGradGuard no_grad;
    const torch::Tensor whole = block->ffn2(wan::gelu_tanh(block->ffn0(h)));
    const torch::Tensor sliced = block->ffn(h);
    QCOMPARE(sliced.sizes().vec(), whole.sizes().vec());
    const double err = ((sliced - whole).norm() / whole.norm()).item<double>();
    QVERIFY2(err < 1e-6, qPrintable(QString("relative error %1").arg(err)));
  }

 private:
  static constexpr std::int64_t kRopeSlices = 3;  // inputs long enough for three slices and a remainder
};

QTEST_APPLESS_MAIN(TestRuntimeMemory)
#include "tst_runtime_memory.moc"
