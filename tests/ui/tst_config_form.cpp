// The distributed settings form (ConfigForm): validation messages next to the fields they belong to,
// revalidation on every edit, and every field read back as it was set or edited. The generation form
// (GenerationForm): sizes, frames and steps held to the engine's ranges, the prompt's token counter,
// Tab leaving the prompt box.
#include <QAbstractButton>
#include <QAbstractSpinBox>
#include <QComboBox>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSpinBox>
#include <QtTest/QtTest>

#include "config_form.h"
#include "generation_form.h"
#include "studio_test_util.h"
#include "wan/dist_config.h"
#include "wan/error.h"
#include "wan/prompt_tokens.h"

using studio_test::world2;

class TestConfigForm : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { QVERIFY(studio_test::initStudioTest()); }
  void generationFormSnapsToValidValues();
  void tokenCounterUnderThePrompt();
  void tabLeavesThePromptBox();

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

// Types `text` into a spin box as a user would (select all, type) and leaves the field.
static int typeInto(QWidget& window, QSpinBox* box, const QString& text) {
  box->setFocus();
  box->selectAll();
  QTest::keyClicks(box, text);
  QTest::keyClick(box, Qt::Key_Tab);  // editing finished
  (void)window;
  return box->value();
}

void TestConfigForm::generationFormSnapsToValidValues() {
  wan_ui::GenerationForm form;
  wan::GenerationRequest r;
  r.width = 250;  // not a preset size, and not a multiple of 16: set through the request, it snaps too
  r.height = 100;
  r.frames = 18;
  r.steps = 5000;
  form.setRequest(r);
  QCOMPARE(form.request().width, 256);
  QCOMPARE(form.request().height, 96);
  QCOMPARE(form.request().frames, 17);
  QCOMPARE(form.request().steps.value_or(-1), wan::kMaxSteps);
  form.show();
  QVERIFY(QTest::qWaitForWindowExposed(&form));
  auto* width = form.findChild<QSpinBox*>("width");
  auto* height = form.findChild<QSpinBox*>("height");
  auto* frames = form.findChild<QSpinBox*>("frames");
  auto* steps = form.findChild<QSpinBox*>("steps");
  QVERIFY(width && height && frames && steps);
  QVERIFY(width->isEnabled());  // a custom size
  QCOMPARE(typeInto(form, frames, "18"), 17);
  QCOMPARE(typeInto(form, frames, "19"), 21);
  QCOMPARE(typeInto(form, width, "250"), 256);
  QCOMPARE(typeInto(form, height, "470"), 464);
  QCOMPARE(typeInto(form, width, "8"), wan::kMinSide);
  QCOMPARE(typeInto(form, steps, "7"), 7);
  // Past the range: the largest valid value, not the number left by a dropped keystroke (500, 201).
  QCOMPARE(typeInto(form, steps, "5000"), wan::kMaxSteps);
  QCOMPARE(typeInto(form, frames, "2001"), wan::kMaxFrames);
  QCOMPARE(typeInto(form, width, "9999"), wan::kMaxSide);
  QCOMPARE(typeInto(form, frames, "21"), 21);
  QCOMPARE(typeInto(form, width, "16"), 16);
  QCOMPARE(typeInto(form, steps, "7"), 7);
  QCOMPARE(width->maximum(), wan::kMaxSide);
  QCOMPARE(frames->maximum(), wan::kMaxFrames);
  QCOMPARE(steps->maximum(), wan::kMaxSteps);
  QCOMPARE(form.request().frames, 21);
  QCOMPARE(form.request().width, 16);
  QCOMPARE(form.request().height, 464);
  QCOMPARE(wan_ui::GenerationForm::snapFrames(2000), wan::kMaxFrames);
  QCOMPARE(wan_ui::GenerationForm::snapSide(9000), wan::kMaxSide);
}

// The counter under the prompt box counts as the text encoder does (the fixture model reads 16 tokens)
// and says how many are cut; without a counter it shows the note.
void TestConfigForm::tokenCounterUnderThePrompt() {
  wan_ui::GenerationForm form;
  form.setTokenCounter(nullptr, "load a model");
  QCOMPARE(form.promptTokensText(), QString("load a model"));
  wan::ModelFiles files;
  files.model_dir = QString(WAN_TEST_DATA_DIR "/golden/t2v_pipeline_small").toStdString();
  auto counter = std::make_shared<const wan::PromptTokenCounter>(files);
  form.setTokenCounter(counter);
  auto* prompt = form.findChild<QPlainTextEdit*>("prompt");
  prompt->setPlainText("a red fox runs through the snowy forest at dawn");
  QTRY_COMPARE(form.promptTokensText(), QString("11 / 16 tokens"));  // debounced
  const std::string long_text = "a red fox runs through the snowy forest at dawn while the sun rises over the hills";
  const wan::PromptTokens t = counter->count(long_text);
  QVERIFY(t.dropped > 1);
  prompt->setPlainText(QString::fromStdString(long_text));
  QTRY_COMPARE(form.promptTokensText(), QString("%1 / 16 tokens: the last %2 are cut").arg(t.tokens).arg(t.dropped));
  QVERIFY(form.findChild<QLabel*>("promptTokens")->styleSheet().contains("#c62828"));  // red
  auto* negative = form.findChild<QPlainTextEdit*>("negativePrompt");
  negative->setPlainText("static, blurry");
  QTRY_VERIFY(form.negativeTokensText().endsWith(" / 16 tokens"));
  QVERIFY_THROWS_EXCEPTION(wan::Error, wan::PromptTokenCounter(wan::ModelFiles{"/nonexistent"}));
}

// Tab in the prompt box moves to the next field instead of typing a tab.
void TestConfigForm::tabLeavesThePromptBox() {
  wan_ui::GenerationForm form;
  form.show();
  form.activateWindow();
  QVERIFY(QTest::qWaitForWindowActive(&form));
  auto* prompt = form.findChild<QPlainTextEdit*>("prompt");
  prompt->setPlainText("fox");
  prompt->setFocus();
  QTRY_VERIFY(prompt->hasFocus());
  QTest::keyClick(prompt, Qt::Key_Tab);
  QTRY_VERIFY(!prompt->hasFocus());
  QCOMPARE(prompt->toPlainText(), QString("fox"));
  auto* negative = form.findChild<QPlainTextEdit*>("negativePrompt");
  QVERIFY(negative->tabChangesFocus());
}

QTEST_MAIN(TestConfigForm)
#include "tst_config_form.moc"
