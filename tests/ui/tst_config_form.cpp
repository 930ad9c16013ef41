// The distributed settings form (ConfigForm): validation messages next to the fields they belong to,
// revalidation on every edit, and every field read back as it was set or edited.
#include <QAbstractButton>
#include <QAbstractSpinBox>
#include <QComboBox>
#include <QSpinBox>
#include <QtTest/QtTest>

#include "config_form.h"
#include "studio_test_util.h"
#include "wan/dist_config.h"

using studio_test::world2;

class TestConfigForm : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { QVERIFY(studio_test::initStudioTest()); }

  void configFormShowsMessagesNextToFields() {
    wan_ui::ConfigForm form;
    form.setEnvironment(wan::DistEnvironment{2, 12});
    wan::DistConfig c = world2();
    c.backend = wan::Backend::kNccl;
    c.world_size = 4;
    c.ulysses_size = 4;
    form.setConfig(c);
    QVERIFY(form.messageFor("world_size").contains("Not enough GPUs available: found 2, asked for 4"));
    c.world_size = 2;
    c.ulysses_size = 2;
    c.ring_size = 2;
    form.setConfig(c);
    QVERIFY(form.messageFor("ulysses_size").contains("ulysses_size x ring_size = 2 x 2 = 4, but world_size is 2"));
    QVERIFY(form.messageFor("world_size").isEmpty());
    c.ring_size = 1;
    c.world_size = 8;
    c.ulysses_size = 8;
    form.setEnvironment(wan::DistEnvironment{8, 12});
    form.setConfig(c);
    QVERIFY(form.messageFor("ulysses_size").contains("12 attention heads, not divisible by ulysses_size 8"));
    form.setConfig(world2());
    QVERIFY(form.isValid());
    // Editing a widget revalidates at once.
    QSignalSpy changed(&form, &wan_ui::ConfigForm::changed);
    form.findChild<QSpinBox*>("world_size")->setValue(3);
    QVERIFY(changed.count() >= 1);
    QVERIFY(!form.isValid());
    QCOMPARE(form.config().world_size, 3);
  }

  // What setConfig was given comes back from config(): the rank (no widget) as it was, the hang and
  // collective timeouts as set and as edited in their spin boxes.
  void fieldsWithoutWidgetsSurvive() {
    wan_ui::ConfigForm form;
    wan::DistConfig c = world2();
    c.rank = 1;
    c.hang_timeout_seconds = 42;
    c.collective_timeout_seconds = 77;
    form.setConfig(c);
    QCOMPARE(form.config().hang_timeout_seconds, 42);
    QCOMPARE(form.config().collective_timeout_seconds, 77);
    QCOMPARE(form.config().rank, 1);
    auto* hang = form.findChild<QSpinBox*>("hang_timeout_seconds");
    QVERIFY(hang);
    QVERIFY(form.findChild<QSpinBox*>("collective_timeout_seconds"));
    hang->setValue(9);
    QCOMPARE(form.config().hang_timeout_seconds, 9);
    QCOMPARE(form.config().collective_timeout_seconds, 77);
    QCOMPARE(form.config().rank, 1);
  }

  // Every setting says what it does (a tooltip on each widget of the form).
  void everySettingExplainsItself() {
    wan_ui::ConfigForm form;
    int widgets = 0;
    for (QWidget* w : form.findChildren<QWidget*>()) {
      if (w->objectName().isEmpty() || w->objectName().startsWith("message_") || w->objectName().startsWith("qt_"))
        continue;
      if (!qobject_cast<QAbstractButton*>(w) && !qobject_cast<QAbstractSpinBox*>(w) && !qobject_cast<QComboBox*>(w))
        continue;
      ++widgets;
      QVERIFY2(!w->toolTip().isEmpty(), qPrintable(w->objectName() + " has no tooltip"));
    }
    QVERIFY(widgets >= 18);
  }
};

QTEST_MAIN(TestConfigForm)
#include "tst_config_form.moc"
