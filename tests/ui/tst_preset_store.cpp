// The preset store (PresetStore): built-in presets in order and as written, user presets saved,
// renamed and deleted in their own folder; built-ins, "Auto" and unsafe names refused.
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "preset_store.h"
#include "studio_test_util.h"
#include "wan/dist_config.h"

using studio_test::world2;

class TestPresetStore : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { QVERIFY(studio_test::initStudioTest()); }

  void presetsLoadSaveRenameDelete() {
    QTemporaryDir user;
    wan_ui::PresetStore store(WAN_PRESETS_DIR, user.path());
    const QStringList names = store.names();
    QCOMPARE(names.mid(0, 4), (QStringList{"1-gpu", "2-gpu", "4-gpu", "8-gpu"}));
    QVERIFY(names.contains("memory-efficient") && names.contains("high-performance"));
    const wan::DistConfig eight = store.load("8-gpu");
    QCOMPARE(eight.world_size, 8);
    QCOMPARE(eight.ulysses_size, 4);
    QCOMPARE(eight.ring_size, 2);
    wan::DistConfig mine = world2();
    mine.dit_fsdp = mine.use_fsdp = true;
    QCOMPARE(store.save("my layout", mine), QString());
    QVERIFY(store.names().contains("my layout"));
    QVERIFY(store.load("my layout").dit_fsdp);
    QVERIFY(!store.save("2-gpu", mine).isEmpty());  // built-ins are not overwritten
    QVERIFY(!store.save("Auto", mine).isEmpty());
    QVERIFY(!store.save("../escape", mine).isEmpty());
    QCOMPARE(store.rename("my layout", "fsdp pair"), QString());
    QVERIFY(!store.contains("my layout"));
    QCOMPARE(store.load("fsdp pair").world_size, 2);
    QVERIFY(!store.remove("1-gpu").isEmpty());
    QCOMPARE(store.remove("fsdp pair"), QString());
    QVERIFY(!store.contains("fsdp pair"));
  }

  // Each preset says what it is for (the JSON files stay plain configs: the engine refuses unknown
  // fields); memory-efficient has no world size, so it is read over the current settings.
  void presetsDescribeThemselves() {
    QTemporaryDir user;
    wan_ui::PresetStore store(WAN_PRESETS_DIR, user.path());
    for (const QString& name : store.names()) {
      QVERIFY2(store.description(name).size() > 30, qPrintable(name));
      QVERIFY(store.description(name) != "A built-in preset.");
    }
    QVERIFY(store.isOverlay("memory-efficient"));
    QVERIFY(!store.isOverlay("4-gpu") && !store.isOverlay("1-gpu"));
    const wan::DistConfig over = store.load("memory-efficient", store.load("4-gpu"));
    QCOMPARE(over.world_size, 4);
    QVERIFY(over.t5_cpu && over.dit_fsdp && !over.t5_fsdp);
    QCOMPARE(store.save("mine", world2()), QString());
    QVERIFY(store.description("mine").contains(user.path()));
    QVERIFY(store.description("nothing").isEmpty());
  }
};

QTEST_MAIN(TestPresetStore)
#include "tst_preset_store.moc"
