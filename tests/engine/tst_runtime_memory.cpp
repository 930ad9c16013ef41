// Process memory the engine manages itself: freed heap handed back between phases and steps, and the
// placeholders a sharded model is built with.
#include "core/memory.h"
#include "core/runtime.h"
#include "model/attention_budget.h"
#include "model/dit.h"
#include "model/layers.h"
#include "model/residency.h"
#include "model/rope.h"

class TestRuntimeMemory : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { wan::init_runtime(1); }  // the engine's malloc settings: freed memory stays in the heap

  void freedHeapGoesBackOnlyWhenReleased() {
    torch::Tensor big = torch::ones({std::int64_t(32) << 20});  // 128 MiB, touched
    torch::Tensor pin = torch::ones({16});                       // above it: the heap's top cannot shrink
    const std::int64_t with_big = wan::current_rss_bytes();
    big = torch::Tensor();
    const std::int64_t freed = wan::current_rss_bytes();
    // The premise: the engine's heap keeps freed blocks (fast, no page faults when reused) ...
    QVERIFY2(with_big - freed < 16 << 20, qPrintable(QString("free() gave back %1 MiB itself").arg((with_big - freed) >> 20)));
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
