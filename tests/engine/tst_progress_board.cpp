// The shared-memory progress board across real processes: consistent snapshots while another process
// writes, progress marks and the cancel flag cross process boundaries, stale segments of dead supervisors
// are found and removed, and the creator unlinks its segment.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <QFile>
#include <cstring>

#include "test_util.h"
#include "wan/progress_board.h"

using wan::ProgressBoard;
using wan::RankState;
using wan::RankStatus;

namespace {
QString run_id(const char* what) { return QString("test-%1-%2").arg(what).arg(getpid()); }
bool segment_exists(const QString& id) { return QFile::exists("/dev/shm/wan-studio-" + id); }
}  // namespace

// A child process creates the board of run `id` and dies without unlinking it (no destructors run),
// as a crashed supervisor would. True when the child got that far.
static bool board_of_a_dead_supervisor(const QString& id, int world) {
  const pid_t child = fork();
  if (child == 0) {
    try {
      ProgressBoard b = ProgressBoard::create(id.toStdString(), world);
      _exit(0);
    } catch (...) {
      _exit(3);
    }
  }
  int status = 0;
  return waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

class TestProgressBoard : public QObject {
  Q_OBJECT
 private slots:
  void createOpenAndUnlink() {
    const QString id = run_id("basic");
    {
      ProgressBoard board = ProgressBoard::create(id.toStdString(), 4);
      QVERIFY(segment_exists(id));
      ProgressBoard viewer = ProgressBoard::open(id.toStdString());
      QCOMPARE(viewer.world_size(), 4);
      QCOMPARE(viewer.run_id(), id.toStdString());
      QCOMPARE(viewer.supervisor_pid(), static_cast<std::int32_t>(getpid()));
      RankStatus s;
      s.state = RankState::kFailed;
      s.phase = 3;
      s.step = 7;
      s.total = 50;
      s.seconds_per_step = 1.25;
      s.memory_bytes = 123456789;
      s.peak_memory_bytes = 987654321;
      s.exit_code = 4;
      s.error = std::string(600, 'x');  // longer than the slot holds
      s.detail = std::string(100, 'd');
      board.publish(2, s);
      const RankStatus r = viewer.read(2);
      QCOMPARE(r.state, RankState::kFailed);
      QCOMPARE(r.step, 7);
      QCOMPARE(r.total, 50);
      QCOMPARE(r.seconds_per_step, 1.25);
      QCOMPARE(r.memory_bytes, std::uint64_t(123456789));
      QCOMPARE(r.peak_memory_bytes, std::uint64_t(987654321));
      QCOMPARE(r.exit_code, 4);
      QCOMPARE(r.error.size(), std::size_t(wan::kBoardErrorBytes - 1));
      QCOMPARE(r.detail, std::string(wan::kBoardDetailBytes - 1, 'd'));
      s.detail = "high-noise expert";
      board.publish(2, s);
      QCOMPARE(viewer.read(2).detail, std::string("high-noise expert"));
      QCOMPARE(r.progress_ms, std::uint64_t(0));  // publishing is not progress: the work marks it
      QVERIFY(!r.in_collective);
      QCOMPARE(r.collective, wan::CollectiveKind::kCount);
      wan::ProgressMark mark;
      mark.ms = 12345;
      mark.in_collective = true;
      mark.collective = wan::CollectiveKind::kAllToAll;
      mark.collectives = 57;
      board.mark_progress(2, mark);
      const RankStatus marked = viewer.read(2);
      QCOMPARE(marked.progress_ms, std::uint64_t(12345));
      QVERIFY(marked.in_collective);
      QCOMPARE(marked.collective, wan::CollectiveKind::kAllToAll);
      QCOMPARE(marked.collectives, std::uint64_t(57));
      QCOMPARE(marked.step, 7);  // the mark leaves the status alone
      mark.in_collective = false;
      board.mark_progress(2, mark);
      QVERIFY(!viewer.read(2).in_collective);
      QCOMPARE(viewer.read(2).collective, wan::CollectiveKind::kAllToAll);  // the last one, finished
      QCOMPARE(viewer.read(0).state, RankState::kStarting);
      QVERIFY_THROWS_EXCEPTION(wan::Error, viewer.read(4));
      QVERIFY(!viewer.cancel_requested());
      board.request_cancel();
      QVERIFY(viewer.cancel_requested());
    }
    QVERIFY(!segment_exists(id));  // the creator unlinked it
    wan_test::expect_error([&] { ProgressBoard::open(id.toStdString()); }, wan::ErrorCode::kFileNotFound,
                           {"no progress board"});
  }

  void livePreview() {
    const QString id = run_id("preview");
    wan::ProgressBoard owner = wan::ProgressBoard::create(id.toStdString(), 2);
    wan::ProgressBoard viewer = wan::ProgressBoard::open(id.toStdString());
    wan::PreviewImage got;
    QVERIFY(!viewer.read_preview(&got));  // none yet
    wan::PreviewImage img;
    img.step = 3;
    img.total = 10;
    img.width = 104;
    img.height = 60;
    img.rgb.resize(104 * 60 * 3);
    for (std::size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<std::uint8_t>(i * 7);
    owner.publish_preview(img);
    QVERIFY(viewer.read_preview(&got));
    QCOMPARE(got.step, 3);
    QCOMPARE(got.total, 10);
    QCOMPARE(got.width, 104);
    QCOMPARE(got.height, 60);
    QVERIFY(got.rgb == img.rgb);
    const std::uint32_t first = got.sequence;
    img.step = 4;
    owner.publish_preview(img);
    QVERIFY(viewer.read_preview(&got));
    QVERIFY(got.sequence != first);
    QCOMPARE(got.step, 4);
    // Too large, or bytes that do not match the size: refused.
    img.width = wan::kPreviewMaxSide + 1;
    img.rgb.resize(static_cast<std::size_t>(img.width) * img.height * 3);
    QVERIFY_THROWS_EXCEPTION(wan::Error, owner.publish_preview(img));
    img.width = 10;
    QVERIFY_THROWS_EXCEPTION(wan::Error, owner.publish_preview(img));
  }

  void badRunIds() {
    wan_test::expect_error([] { ProgressBoard::create("../etc", 1); }, wan::ErrorCode::kInvalidArgument,
                           {"letters, digits"});
    wan_test::expect_error([] { ProgressBoard::create("", 1); }, wan::ErrorCode::kInvalidArgument, {"run id"});
    wan_test::expect_error([] { ProgressBoard::create("ok", 0); }, wan::ErrorCode::kInvalidArgument, {"world size 0"});
  }

  // A child process publishes 20000 updates whose fields all derive from one counter; every snapshot
  // the parent reads meanwhile must be one of them, never a mix. The child stops on the cancel flag.
  void snapshotsAreConsistentAcrossProcesses() {
    const QString id = run_id("seqlock");
    ProgressBoard board = ProgressBoard::create(id.toStdString(), 2);
    const pid_t child = fork();
    if (child == 0) {
      try {
        ProgressBoard mine = ProgressBoard::open(id.toStdString());
        for (int k = 1; k <= 20000; ++k) {
          RankStatus s;
          s.state = RankState::kRunning;
          s.step = k;
          s.total = 2 * k;
          s.memory_bytes = 3ull * k;
          s.seconds_per_step = k / 4.0;
          s.error = std::to_string(k) + std::string(k % 300, 'e');
          mine.publish(1, s);
        }
        while (!mine.cancel_requested()) usleep(1000);
        mine.publish(1, RankStatus{RankState::kCancelled});
        _exit(0);
      } catch (...) {
        _exit(3);
      }
    }
    QVERIFY(child > 0);
    int seen = 0, last = 0;
    for (int i = 0; i < 200000 && last < 20000; ++i) {
      const RankStatus r = board.read(1);
      if (r.step == 0) continue;
      QVERIFY(r.step >= last);
      last = r.step;
      ++seen;
      QCOMPARE(r.total, 2 * r.step);
      QCOMPARE(r.memory_bytes, 3ull * r.step);
      QCOMPARE(r.seconds_per_step, r.step / 4.0);
      QCOMPARE(r.error, std::to_string(r.step) + std::string(r.step % 300, 'e'));
    }
    QVERIFY(seen > 0);
    board.request_cancel();
    int status = 0;
    QCOMPARE(waitpid(child, &status, 0), child);
    QVERIFY(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    QCOMPARE(board.read(1).state, RankState::kCancelled);
  }

  // A supervisor that dies leaves its segment; remove_stale() finds and removes it, and create() of the
  // same run id replaces it. A live supervisor's board is refused.
  void staleSegments() {
    const QString id = run_id("stale");
    QVERIFY(board_of_a_dead_supervisor(id, 2));
    QVERIFY(segment_exists(id));
    QVERIFY(ProgressBoard::remove_stale() >= 1);
    QVERIFY(!segment_exists(id));

    {
      ProgressBoard live = ProgressBoard::create(id.toStdString(), 1);
      // The supervisor's identity is its start time, not a figure that changes as it runs (its virtual
      // size, the field after it in /proc/<pid>/stat): grow this process's mappings meanwhile.
      void* grown = mmap(nullptr, 64 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      QVERIFY(grown != MAP_FAILED);
      ProgressBoard::remove_stale();
      munmap(grown, 64 << 20);
      QVERIFY(segment_exists(id));  // its supervisor (this process) is alive: kept
      wan_test::expect_error([&] { ProgressBoard::create(id.toStdString(), 1); }, wan::ErrorCode::kInvalidArgument,
                             {"still going"});
    }
    QVERIFY(!segment_exists(id));
  }

  // The pid a dead supervisor recorded may since belong to another process: the board records its
  // supervisor's start time too, so such a segment is stale all the same. Here the dead child's pid in
  // the header is replaced by this test's own (live, but started at another time).
  void staleSegmentWhosePidWasReused() {
    const QString id = run_id("reused");
    QVERIFY(board_of_a_dead_supervisor(id, 1));
    {
      // Header layout: magic, version, world size, slot bytes (4 bytes each), then the supervisor pid.
      const int fd = shm_open(ProgressBoard::segment_name(id.toStdString()).c_str(), O_RDWR, 0);
      QVERIFY(fd >= 0);
      void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      ::close(fd);
      QVERIFY(p != MAP_FAILED);
      const std::int32_t me = static_cast<std::int32_t>(getpid());
      std::memcpy(static_cast<char*>(p) + 16, &me, sizeof me);
      munmap(p, 4096);
    }
    QCOMPARE(ProgressBoard::open(id.toStdString()).supervisor_pid(), static_cast<std::int32_t>(getpid()));
    ProgressBoard replaced = ProgressBoard::create(id.toStdString(), 1);  // not "still going"
    QCOMPARE(replaced.supervisor_pid(), static_cast<std::int32_t>(getpid()));
  }
};

QTEST_APPLESS_MAIN(TestProgressBoard)
#include "tst_progress_board.moc"
