#include "wan/progress_board.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "wan/error.h"

namespace wan {
namespace {

constexpr const char* kPrefix = "wan-studio-";
constexpr std::size_t kRunIdBytes = 64;

struct Header {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t world_size;
  std::uint32_t slot_bytes;
  std::int32_t supervisor_pid;
  std::uint32_t reserved;
  // The supervisor's start time (field 22 of /proc/<pid>/stat, clock ticks after boot): a pid alone
  // may have been reused by an unrelated process since the supervisor died.
  std::uint64_t supervisor_start_ticks;
  char run_id[kRunIdBytes];
  std::atomic<std::uint32_t> cancel;
};

// The part of a slot guarded by the seqlock.
struct SlotData {
  std::int32_t state, phase, step, total;
  double seconds_per_step;
  std::uint64_t memory_bytes, peak_memory_bytes;
  std::int32_t pid, exit_code;
  char error[kBoardErrorBytes];
  char detail[kBoardDetailBytes];
};

struct alignas(64) Slot {
  std::atomic<std::uint32_t> sequence;
  // The progress mark: written by the rank's work, read at any time (each value on its own).
  std::atomic<std::int32_t> collective;  // CollectiveKind + 1 while waiting in it, -(kind + 1) after; 0: none yet
  std::atomic<std::uint64_t> progress_ms;
  std::atomic<std::uint64_t> collectives;
  SlotData data;
};

// The live preview, under its own seqlock.
struct alignas(64) Preview {
  std::atomic<std::uint32_t> sequence;
  std::int32_t step, total, width, height;
  std::uint8_t rgb[kPreviewMaxSide * kPreviewMaxSide * 3];
};

static_assert(std::atomic<std::uint32_t>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free,
              "the board needs lock-free atomics in shared memory");

std::size_t header_bytes() { return (sizeof(Header) + 63) / 64 * 64; }
std::size_t board_bytes(int world) {
  return header_bytes() + sizeof(Slot) * static_cast<std::size_t>(world) + sizeof(Preview);
}

Header* header_of(void* base) { return static_cast<Header*>(base); }
Slot* slot_of(void* base, int rank) {
  return reinterpret_cast<Slot*>(static_cast<char*>(base) + header_bytes()) + rank;
}

Preview* preview_of(void* base, int world) {
  return reinterpret_cast<Preview*>(static_cast<char*>(base) + header_bytes() +
                                    sizeof(Slot) * static_cast<std::size_t>(world));
}

Error sys_error(const std::string& what) { return Error(ErrorCode::kIo, what + ": " + std::strerror(errno)); }

bool process_alive(std::int32_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

// Field 22 (starttime) of /proc/<pid>/stat, proc(5); 0 when it cannot be read. The fields after the
// command name are counted from its closing parenthesis (the name itself may hold spaces and ')').
std::uint64_t process_start_ticks(std::int32_t pid) {
  const int fd = ::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buffer[1024];
  const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buffer[n] = '\0';
  const char* p = std::strrchr(buffer, ')');
  if (p == nullptr) return 0;
  ++p;
  // p is at the space before field 3 (the state); each step moves to the space before the next field.
  for (int field = 3; field < 22 && p != nullptr; ++field) p = std::strchr(p + 1, ' ');
  return p == nullptr ? 0 : std::strtoull(p + 1, nullptr, 10);
}

constexpr std::int32_t kBeingCreated = -2;

struct Supervisor {
  std::int32_t pid = -1;  // -1: not a board we understand; kBeingCreated: header not complete yet
  std::uint64_t start_ticks = 0;
  // The process that created the segment still runs: its pid is alive and started when the board says.
  bool alive() const {
    if (pid == kBeingCreated) return true;
    if (!process_alive(pid)) return false;
    const std::uint64_t now = process_start_ticks(pid);
    return start_ticks == 0 || now == 0 || now == start_ticks;  // unknown: assume it is the same process
  }
};

// Reads the supervisor of an existing segment; pid -1 when it is not a board we understand, and
// kBeingCreated for a segment less than 10 s old whose header is not complete yet (its creator may be
// between shm_open and writing the magic).
Supervisor segment_supervisor(const std::string& name) {
  Supervisor sup;
  const int fd = shm_open(name.c_str(), O_RDONLY, 0);
  if (fd < 0) return sup;
  struct stat st {};
  if (fstat(fd, &st) == 0 && st.st_ctime + 10 > time(nullptr)) sup.pid = kBeingCreated;
  if (fstat(fd, &st) == 0 && static_cast<std::size_t>(st.st_size) >= sizeof(Header)) {
    void* p = mmap(nullptr, sizeof(Header), PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      const Header* h = static_cast<const Header*>(p);
      if (reinterpret_cast<const std::atomic<std::uint32_t>*>(&h->magic)->load(std::memory_order_acquire) ==
          kBoardMagic) {
        sup.pid = h->supervisor_pid;  // at the same offset in every layout version
        sup.start_ticks = h->version >= 4 ? h->supervisor_start_ticks : 0;
      }
      munmap(p, sizeof(Header));
    }
  }
  close(fd);
  return sup;
}

void check_rank(const ProgressBoard& b, int rank) {
  if (rank < 0 || rank >= b.world_size())
    throw Error(ErrorCode::kInvalidArgument, "progress board: rank " + std::to_string(rank) +
                                                 " out of range for world size " + std::to_string(b.world_size()));
}

}  // namespace

std::string ProgressBoard::segment_name(const std::string& run_id) {
  if (run_id.empty() || run_id.size() >= kRunIdBytes)
    throw Error(ErrorCode::kInvalidArgument,
                "run id must have 1 to " + std::to_string(kRunIdBytes - 1) + " characters");
  for (char c : run_id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
      throw Error(ErrorCode::kInvalidArgument, "run id '" + run_id + "': use letters, digits, '-' and '_' only");
  return std::string("/") + kPrefix + run_id;
}

std::uint64_t ProgressBoard::monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000u;
}

ProgressBoard ProgressBoard::create(const std::string& run_id, int world_size) {
  const std::string name = segment_name(run_id);
  if (world_size < 1 || world_size > 4096)
    throw Error(ErrorCode::kInvalidArgument,
                "progress board: world size " + std::to_string(world_size) + " out of range");
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0 && errno == EEXIST) {
    const Supervisor sup = segment_supervisor(name);
    if (sup.alive())
      throw Error(ErrorCode::kInvalidArgument,
                  "a run with id " + run_id + " is still going (" +
                      (sup.pid > 0 ? "supervisor pid " + std::to_string(sup.pid) : std::string("being created")) +
                      "); pick another run id or stop that run");
    shm_unlink(name.c_str());  // stale: its supervisor is gone (or its pid now belongs to another process)
    fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  }
  if (fd < 0) throw sys_error("cannot create shared memory " + name);
  const std::size_t bytes = board_bytes(world_size);
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const Error e = sys_error("cannot size shared memory " + name);
    close(fd);
    shm_unlink(name.c_str());
    throw e;
  }
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) {
    shm_unlink(name.c_str());
    throw sys_error("cannot map shared memory " + name);
  }
  std::memset(base, 0, bytes);  // ftruncate zero-fills; explicit for clarity
  Header* h = header_of(base);
  h->version = kBoardLayoutVersion;
  h->world_size = static_cast<std::uint32_t>(world_size);
  h->slot_bytes = sizeof(Slot);
  h->supervisor_pid = static_cast<std::int32_t>(getpid());
  h->supervisor_start_ticks = process_start_ticks(h->supervisor_pid);
  std::strncpy(h->run_id, run_id.c_str(), kRunIdBytes - 1);
  std::atomic_thread_fence(std::memory_order_release);
  reinterpret_cast<std::atomic<std::uint32_t>*>(&h->magic)->store(kBoardMagic, std::memory_order_release);
  ProgressBoard b;
  b.base_ = base;
  b.bytes_ = bytes;
  b.name_ = name;
  b.owner_ = true;
  return b;
}

ProgressBoard ProgressBoard::open(const std::string& run_id) {
  const std::string name = segment_name(run_id);
  const int fd = shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) {
    if (errno == ENOENT)
      throw Error(ErrorCode::kFileNotFound,
                  "no progress board for run " + run_id + " (shared memory " + name + " does not exist)");
    throw sys_error("cannot open shared memory " + name);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < header_bytes()) {
    close(fd);
    throw Error(ErrorCode::kCorruptFile, "shared memory " + name + " is too small to be a progress board");
  }
  void* base = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) throw sys_error("cannot map shared memory " + name);
  ProgressBoard b;
  b.base_ = base;
  b.bytes_ = static_cast<std::size_t>(st.st_size);
  b.name_ = name;
  const Header* h = header_of(base);
  if (h->magic != kBoardMagic)
    throw Error(ErrorCode::kCorruptFile, "shared memory " + name + " is not a Wan Studio progress board");
  if (h->version != kBoardLayoutVersion)
    throw Error(ErrorCode::kModelMismatch, "progress board " + name + " has layout version " +
                                               std::to_string(h->version) + ", this program reads version " +
                                               std::to_string(kBoardLayoutVersion) +
                                               ": use the same Wan Studio build for the studio and the workers");
  if (h->slot_bytes != sizeof(Slot) || board_bytes(static_cast<int>(h->world_size)) != b.bytes_)
    throw Error(ErrorCode::kCorruptFile, "progress board " + name + " has an unexpected size");
  return b;
}

int ProgressBoard::remove_stale() {
  int removed = 0;
  DIR* dir = opendir("/dev/shm");
  if (!dir) return 0;
  while (dirent* e = readdir(dir)) {
    const std::string file = e->d_name;
    if (file.rfind(kPrefix, 0) != 0) continue;
    const std::string name = "/" + file;
    if (!segment_supervisor(name).alive() && shm_unlink(name.c_str()) == 0) ++removed;
  }
  closedir(dir);
  return removed;
}

ProgressBoard::ProgressBoard(ProgressBoard&& o) noexcept
    : base_(o.base_), bytes_(o.bytes_), name_(std::move(o.name_)), owner_(o.owner_) {
  o.base_ = nullptr;
  o.owner_ = false;
}

ProgressBoard& ProgressBoard::operator=(ProgressBoard&& o) noexcept {
  if (this != &o) {
    release();
    base_ = o.base_;
    bytes_ = o.bytes_;
    name_ = std::move(o.name_);
    owner_ = o.owner_;
    o.base_ = nullptr;
    o.owner_ = false;
  }
  return *this;
}

ProgressBoard::~ProgressBoard() { release(); }

void ProgressBoard::release() {
  if (owner_) unlink();
  if (base_) munmap(base_, bytes_);
  base_ = nullptr;
}

void ProgressBoard::unlink() {
  if (!owner_) return;
  shm_unlink(name_.c_str());
  owner_ = false;
}

int ProgressBoard::world_size() const { return static_cast<int>(header_of(base_)->world_size); }
std::string ProgressBoard::run_id() const { return std::string(header_of(base_)->run_id); }
std::int32_t ProgressBoard::supervisor_pid() const { return header_of(base_)->supervisor_pid; }

void ProgressBoard::publish(int rank, const RankStatus& s) {
  check_rank(*this, rank);
  Slot* slot = slot_of(base_, rank);
  SlotData d{};
  d.state = static_cast<std::int32_t>(s.state);
  d.phase = s.phase;
  d.step = s.step;
  d.total = s.total;
  d.seconds_per_step = s.seconds_per_step;
  d.memory_bytes = s.memory_bytes;
  d.peak_memory_bytes = s.peak_memory_bytes;
  d.pid = s.pid;
  d.exit_code = s.exit_code;
  std::strncpy(d.error, s.error.c_str(), kBoardErrorBytes - 1);
  std::strncpy(d.detail, s.detail.c_str(), kBoardDetailBytes - 1);
  const std::uint32_t seq = slot->sequence.load(std::memory_order_relaxed);
  slot->sequence.store(seq + 1, std::memory_order_relaxed);  // odd: writing
  std::atomic_thread_fence(std::memory_order_release);
  std::memcpy(&slot->data, &d, sizeof d);
  slot->sequence.store(seq + 2, std::memory_order_release);  // even: stable
}

RankStatus ProgressBoard::read(int rank) const {
  check_rank(*this, rank);
  const Slot* slot = slot_of(base_, rank);
  SlotData d{};
  for (;;) {
    const std::uint32_t before = slot->sequence.load(std::memory_order_acquire);
    if (before & 1u) {
      sched_yield();
      continue;
    }
    std::memcpy(&d, &slot->data, sizeof d);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (slot->sequence.load(std::memory_order_relaxed) == before) break;
  }
  RankStatus s;
  s.state = static_cast<RankState>(d.state);
  s.phase = d.phase;
  s.step = d.step;
  s.total = d.total;
  s.seconds_per_step = d.seconds_per_step;
  s.memory_bytes = d.memory_bytes;
  s.peak_memory_bytes = d.peak_memory_bytes;
  s.pid = d.pid;
  s.exit_code = d.exit_code;
  d.error[kBoardErrorBytes - 1] = '\0';
  s.error = d.error;
  d.detail[kBoardDetailBytes - 1] = '\0';
  s.detail = d.detail;
  s.progress_ms = slot->progress_ms.load(std::memory_order_relaxed);
  const std::int32_t c = slot->collective.load(std::memory_order_relaxed);
  s.in_collective = c > 0;
  s.collective = c == 0 ? CollectiveKind::kCount : static_cast<CollectiveKind>((c > 0 ? c : -c) - 1);
  s.collectives = slot->collectives.load(std::memory_order_relaxed);
  return s;
}

void ProgressBoard::mark_progress(int rank, const ProgressMark& m) {
  check_rank(*this, rank);
  Slot* slot = slot_of(base_, rank);
  const std::int32_t kind = m.collective == CollectiveKind::kCount ? 0 : static_cast<std::int32_t>(m.collective) + 1;
  slot->collective.store(m.in_collective ? kind : -kind, std::memory_order_relaxed);
  slot->collectives.store(m.collectives, std::memory_order_relaxed);
  slot->progress_ms.store(m.ms, std::memory_order_relaxed);
}

void ProgressBoard::publish_preview(const PreviewImage& image) {
  if (image.width < 1 || image.height < 1 || image.width > kPreviewMaxSide || image.height > kPreviewMaxSide ||
      image.rgb.size() != static_cast<std::size_t>(image.width) * image.height * 3)
    throw Error(ErrorCode::kInvalidArgument, "progress board: preview must be 1 to " + std::to_string(kPreviewMaxSide) +
                                                 " pixels a side with width * height * 3 bytes");
  Preview* p = preview_of(base_, world_size());
  const std::uint32_t seq = p->sequence.load(std::memory_order_relaxed);
  p->sequence.store(seq + 1, std::memory_order_relaxed);  // odd: writing
  std::atomic_thread_fence(std::memory_order_release);
  p->step = image.step;
  p->total = image.total;
  p->width = image.width;
  p->height = image.height;
  std::memcpy(p->rgb, image.rgb.data(), image.rgb.size());
  p->sequence.store(seq + 2, std::memory_order_release);
}

bool ProgressBoard::read_preview(PreviewImage* image) const {
  const Preview* p = preview_of(base_, world_size());
  for (;;) {
    const std::uint32_t before = p->sequence.load(std::memory_order_acquire);
    if (before == 0) return false;
    if (before & 1u) {
      sched_yield();
      continue;
    }
    image->step = p->step;
    image->total = p->total;
    image->width = std::clamp(p->width, 0, kPreviewMaxSide);
    image->height = std::clamp(p->height, 0, kPreviewMaxSide);
    image->rgb.assign(p->rgb, p->rgb + static_cast<std::size_t>(image->width) * image->height * 3);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (p->sequence.load(std::memory_order_relaxed) == before) {
      image->sequence = before;
      return true;
    }
  }
}

void ProgressBoard::request_cancel() { header_of(base_)->cancel.store(1, std::memory_order_release); }
bool ProgressBoard::cancel_requested() const { return header_of(base_)->cancel.load(std::memory_order_acquire) != 0; }

}  // namespace wan
