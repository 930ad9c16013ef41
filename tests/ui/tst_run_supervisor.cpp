// The run supervisor (RunSupervisor) with real workers (demo model, world size 2, gloo): a cancelled
// run and a run whose worker is killed end cleanly, with no process, shared-memory segment or
// half-written output left behind.
#include <signal.h>

#include <QDir>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "run_supervisor.h"
#include "studio_test_util.h"

using studio_test::job;
using studio_test::longRequest;
using studio_test::processAlive;
using studio_test::sampling;
using studio_test::studioSegments;
using studio_test::world2;

class TestRunSupervisor : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { QVERIFY(studio_test::initStudioTest()); }

  void cancelLeavesNothingBehind() {
    QTemporaryDir out;
    wan_ui::RunSupervisor sup;
    QString error;
    QVERIFY2(sup.start(job(longRequest(out.path()), world2()), &error), qPrintable(error));
    QSignalSpy finished(&sup, &wan_ui::RunSupervisor::finished);
    QTRY_VERIFY_WITH_TIMEOUT(sampling(sup.ranks(), 0, 1), 120000);
    const qint64 pid0 = sup.pidOf(0), pid1 = sup.pidOf(1);
    sup.cancel();
    QVERIFY(finished.wait(20000));
    QCOMPARE(finished.front().at(0).toInt(), 9);  // kCancelled
    QVERIFY(!processAlive(pid0) && !processAlive(pid1));
    QCOMPARE(studioSegments(), 0);
    QVERIFY(QDir(out.path()).entryList(QDir::Files).isEmpty());  // no half-written output
  }

  void killedWorkerFailsTheRunCleanly() {
    QTemporaryDir out;
    wan_ui::RunSupervisor sup;
    QString error;
    QVERIFY2(sup.start(job(longRequest(out.path()), world2()), &error), qPrintable(error));
    QSignalSpy finished(&sup, &wan_ui::RunSupervisor::finished);
    QTRY_VERIFY_WITH_TIMEOUT(sampling(sup.ranks(), 1), 120000);
    const qint64 pid0 = sup.pidOf(0), pid1 = sup.pidOf(1);
    QVERIFY(pid1 > 0);
    kill(static_cast<pid_t>(pid1), SIGKILL);
    QVERIFY(finished.wait(20000));
    QVERIFY(finished.front().at(0).toInt() != 0);
    const QString message = finished.front().at(1).toString();
    QVERIFY2(message.contains("rank 1") && message.contains("signal 9"), qPrintable(message));
    QVERIFY(!processAlive(pid0) && !processAlive(pid1));
    QCOMPARE(studioSegments(), 0);
    QVERIFY(QDir(out.path()).entryList({"*.mp4"}, QDir::Files).isEmpty());
  }
};

QTEST_MAIN(TestRunSupervisor)
#include "tst_run_supervisor.moc"
