// Process memory the engine manages itself: freed heap handed back between phases and steps, and the
// placeholders a sharded model is built with.
#include "core/memory.h"
#include "core/runtime.h"
#include "model/layers.h"
#include "model/residency.h"

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
};

QTEST_APPLESS_MAIN(TestRuntimeMemory)
#include "tst_runtime_memory.moc"
