// The history (HistoryModel): every generation in the output folder, newest first, read from the
// sidecars of both formats (first flat settings, wan-studio-sidecar/2); other JSON files are not listed;
// delete removes the video and its sidecar.
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "history_model.h"
#include "studio_test_util.h"

class TestHistoryModel : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { QVERIFY(studio_test::initStudioTest()); }

  void historyListsSidecarsAndDeletes() {
    QTemporaryDir dir;
    auto write = [&](const QString& stem, const QString& prompt, const QString& created) {
      QFile video(dir.filePath(stem + ".mp4"));
      QVERIFY(video.open(QIODevice::WriteOnly));
      video.write("not really a video");
      QJsonObject j{{"prompt", prompt},   {"width", 832},
                    {"height", 480},      {"frames", 81},
                    {"steps", 50},        {"seed", 3},
                    {"created", created}, {"outputs", QJsonObject{{"video", video.fileName()}}}};
      QFile side(dir.filePath(stem + ".json"));
      QVERIFY(side.open(QIODevice::WriteOnly));
      side.write(QJsonDocument(j).toJson());
    };
    write("a", "older", "2026-01-01T10:00:00Z");
    write("b", "newer", "2026-02-01T10:00:00Z");
    QFile stray(dir.filePath("other.json"));  // not a sidecar
    QVERIFY(stray.open(QIODevice::WriteOnly));
    stray.write("{}");
    stray.close();
    wan_ui::HistoryModel model;
    model.setFolder(dir.path());
    QCOMPARE(model.rowCount(), 2);
    QCOMPARE(model.data(model.index(0), wan_ui::HistoryModel::kPromptRole).toString(), QString("newer"));
    QCOMPARE(model.settingsAt(1).value("seed").toInt(), 3);
    // Delete moves to the desktop's trash (here one of our own: XDG_DATA_HOME/Trash, the freedesktop.org
    // home trash QFile::moveToTrash uses), so nothing is lost by one click.
    QTemporaryDir data(dir.filePath("xdg-XXXXXX"));
    qputenv("XDG_DATA_HOME", data.path().toUtf8());
    QCOMPARE(model.remove(0), QString());
    QCOMPARE(model.rowCount(), 1);
    QVERIFY(!QFile::exists(dir.filePath("b.mp4")) && !QFile::exists(dir.filePath("b.json")));
    QVERIFY(QFile::exists(data.filePath("Trash/files/b.mp4")) && QFile::exists(data.filePath("Trash/files/b.json")));
    QVERIFY(QFile::exists(dir.filePath("a.mp4")));
    QCOMPARE(model.remove(0, /*to_trash=*/false), QString());  // for good, when asked
    QCOMPARE(model.rowCount(), 0);
    QVERIFY(!QFile::exists(dir.filePath("a.mp4")) && !QFile::exists(data.filePath("Trash/files/a.mp4")));
    qunsetenv("XDG_DATA_HOME");
  }

  // A sidecar as the engine writes it now (the request and config through the job codec, the video's
  // own size under "video") is listed with its settings; a JSON file naming an existing video but with
  // no request (nor prompt) is not.
  void readsCurrentSidecars() {
    QTemporaryDir dir;
    QFile video(dir.filePath("fox.mp4"));
    QVERIFY(video.open(QIODevice::WriteOnly));
    video.write("not really a video");
    video.close();
    const QJsonObject side{
        {"format", "wan-studio-sidecar/2"},
        {"request",
         QJsonObject{{"prompt", "fox"}, {"seed", 9}, {"steps", 4}, {"width", 128}, {"height", 96}, {"frames", 5}}},
        {"config", QJsonObject{{"world_size", 2}, {"backend", "gloo"}}},
        {"video", QJsonObject{{"width", 128}, {"height", 96}, {"frames", 5}, {"fps", 16}}},
        {"created", "2026-03-01T10:00:00Z"},
        {"outputs", QJsonObject{{"video", video.fileName()}}}};
    QFile sidecar(dir.filePath("fox.json"));
    QVERIFY(sidecar.open(QIODevice::WriteOnly));
    sidecar.write(QJsonDocument(side).toJson());
    sidecar.close();
    QFile stray(dir.filePath("stray.json"));  // names an existing video, but records no request
    QVERIFY(stray.open(QIODevice::WriteOnly));
    stray.write(QJsonDocument(QJsonObject{{"outputs", QJsonObject{{"video", video.fileName()}}}}).toJson());
    stray.close();

    wan_ui::HistoryModel model;
    model.setFolder(dir.path());
    QCOMPARE(model.rowCount(), 1);
    QCOMPARE(model.data(model.index(0), wan_ui::HistoryModel::kPromptRole).toString(), QString("fox"));
    QCOMPARE(model.data(model.index(0), wan_ui::HistoryModel::kSidecarPathRole).toString(),
             QFileInfo(sidecar).absoluteFilePath());
    const QString text = model.data(model.index(0), Qt::DisplayRole).toString();
    QVERIFY2(text.contains("128x96") && text.contains("4 steps") && text.contains("seed 9"), qPrintable(text));
    QCOMPARE(model.settingsAt(0).value("config").toObject().value("world_size").toInt(), 2);
  }
};

QTEST_MAIN(TestHistoryModel)
#include "tst_history_model.moc"
