// The estimator table (EstimateTableModel): one row per model, one column per world size, the current
// layout highlighted, cells that do not fit the GPU marked, each cell the engine's own estimate.
#include <QtTest/QtTest>
#include <cstdint>

#include "estimate_table_model.h"
#include "studio_test_util.h"
#include "wan/estimate.h"
#include "wan/model_info.h"

using studio_test::world2;

class TestEstimateTableModel : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { QVERIFY(studio_test::initStudioTest()); }

  void estimateTableHighlightsAndMarks() {
    wan_ui::EstimateTableModel model;
    wan::EstimateSettings s;
    s.config = world2();
    s.config.backend = wan::Backend::kNccl;
    model.setSettings(s);
    QCOMPARE(model.rowCount(), 2);
    QCOMPARE(model.columnCount(), 4);
    QCOMPARE(model.currentColumn(), 1);
    QVERIFY(model.data(model.index(0, 1), wan_ui::EstimateTableModel::kCurrentRole).toBool());
    QVERIFY(!model.data(model.index(0, 0), wan_ui::EstimateTableModel::kCurrentRole).toBool());
    // The 14B needs more than a 24 GiB card without sharding: marked; the 1.3B with T5 on the CPU fits.
    model.setGpuMemory(std::int64_t(24) << 30);
    QVERIFY(!model.data(model.index(1, 0), wan_ui::EstimateTableModel::kFitsRole).toBool());
    s.config.t5_cpu = true;
    model.setSettings(s);
    QVERIFY(model.data(model.index(0, 1), wan_ui::EstimateTableModel::kFitsRole).toBool());
    QVERIFY(model.data(model.index(0, 1), Qt::ToolTipRole).toString().contains("activations"));
    // Each cell is the engine's estimate for that column's layout.
    wan::EstimateSettings col = s;
    col.config = wan::layout_for_world(s.config, 4, 40);
    QCOMPARE(model.data(model.index(1, 2), wan_ui::EstimateTableModel::kPeakBytesRole).toLongLong(),
             qint64(wan::estimate_memory(wan::wan21_t2v_14b(), col).peak));
    // A loaded model adds a row.
    wan::ModelInfo demo = wan::inspect_model(wan::ModelFiles{wan::demo_model_dir(), "", "", "", ""});
    model.setLoadedModel(&demo.dims);
    QCOMPARE(model.rowCount(), 3);
    QVERIFY(model.headerData(2, Qt::Vertical, Qt::DisplayRole).toString().startsWith("Loaded"));
  }
};

QTEST_MAIN(TestEstimateTableModel)
#include "tst_estimate_table_model.moc"
