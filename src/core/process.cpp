#include "process.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace shmr::process {
namespace {

// The initial PID namespace's inode number (PROC_PID_INIT_INO in Linux):
// from there every process of the machine is visible.
constexpr uint64_t kInitialPidNamespace = 0xEFFFFFFCu;

enum class StatResult { Read, Missing, Unreadable };

int64_t boottime_offset_ticks();

struct StatFields {
  char state = '?';
  uint64_t flags = 0;  // the kernel's PF_* flags of the task
  uint64_t start_ticks = 0;
};

// Set from the first step of exit(), before the kernel closes the process's
// files (and so releases its locks); the process is a zombie only later.
constexpr uint64_t kTaskExiting = 0x4;  // PF_EXITING

// Reads an open /proc/<pid>/stat with plain system calls (no allocation).
// Missing: the process was reaped after the file was opened (the read
// fails with ESRCH); Unreadable: anything else that leaves no fields.
StatResult read_stat_descriptor(int fd, StatFields& out) {
  char line[1024];
  ssize_t n;
  do {
    n = ::read(fd, line, sizeof line - 1);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == ESRCH) return StatResult::Missing;
  if (n <= 0) return StatResult::Unreadable;
  line[n] = '\0';
  // The command name (field 2) may contain spaces and ')': fields are
  // counted from the last ')'.
  const char* close = std::strrchr(line, ')');
  if (close == nullptr) return StatResult::Unreadable;
  const char* p = close + 1;
  for (int field = 3; field <= 22; ++field) {
    while (*p == ' ') ++p;
    if (*p == '\0') return StatResult::Unreadable;
    if (field == 3) out.state = *p;
    if (field == 9) out.flags = std::strtoull(p, nullptr, 10);
    if (field == 22) {
      out.start_ticks = std::strtoull(p, nullptr, 10);
      const int64_t offset = boottime_offset_ticks();
      if (offset != 0) {
        // As the initial time namespace reads it; never 0 (unknown).
        const int64_t shifted = static_cast<int64_t>(out.start_ticks) - offset;
        out.start_ticks = shifted > 0 ? static_cast<uint64_t>(shifted) : 1;
      }
      return StatResult::Read;
    }
    while (*p != ' ' && *p != '\0') ++p;
  }
  return StatResult::Unreadable;
}

// The same for a path, with one descriptor. Missing: no such process;
// Unreadable: no descriptor left, /proc hidden or absent.
StatResult read_stat_file(const char* path, StatFields& out) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ESRCH ? StatResult::Missing : StatResult::Unreadable;
  const StatResult result = read_stat_descriptor(fd, out);
  ::close(fd);
  return result;
}

// This process's time namespace's boot-time offset, in clock ticks (0 in
// the initial time namespace, or when unknown). /proc/<pid>/stat reports
// start times shifted by the reader's offset, so a process in a time
// namespace (unshare --time, CRIU) would see every start time differently
// from one outside; subtracting it gives every process the same frame.
int64_t boottime_offset_ticks() {
  static const int64_t offset = [] {
    int fd = ::open("/proc/self/timens_offsets", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return int64_t{0};
    char text[256];
    ssize_t n = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    if (n <= 0) return int64_t{0};
    text[n] = '\0';
    const char* line = std::strstr(text, "boottime");
    long long seconds = 0, nanoseconds = 0;
    if (line == nullptr || std::sscanf(line, "boottime %lld %lld", &seconds, &nanoseconds) != 2)
      return int64_t{0};
    const long hz = ::sysconf(_SC_CLK_TCK);
    if (hz <= 0) return int64_t{0};
    // Rounded down, as the kernel rounds; comparisons allow one tick.
    const long double ticks = (static_cast<long double>(seconds) +
                               static_cast<long double>(nanoseconds) / 1e9L) * hz;
    return static_cast<int64_t>(std::floor(ticks));
  }();
  return offset;
}

StatResult read_stat(int64_t pid, StatFields& out) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%lld/stat", static_cast<long long>(pid));
  return read_stat_file(path, out);
}

uint64_t pid_namespace_of(const char* ns_link) {
  struct stat st;
  if (::stat(ns_link, &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

bool is_gone(const StatFields& st) {
  return st.state == 'Z' || st.state == 'X' || st.state == 'x' || (st.flags & kTaskExiting) != 0;
}

Identity read_self() {
  Identity id;
  id.pid = static_cast<int64_t>(::getpid());
  // /proc/self, not /proc/<getpid()>: /proc may belong to a parent PID
  // namespace, which numbers this process differently.
  StatFields st;
  if (read_stat_file("/proc/self/stat", st) == StatResult::Read) id.start_ticks = st.start_ticks;
  id.pid_namespace = pid_namespace_of("/proc/self/ns/pid");
  return id;
}

// The rules of liveness() for a process of this PID namespace (or one whose
// namespace is unknown).
Liveness judge_stat(StatResult result, const StatFields& st, const Identity& who) {
  switch (result) {
    case StatResult::Missing:
      return Liveness::Dead;  // reaped since kill(pid, 0) found it or its file was opened
    case StatResult::Unreadable:
      return Liveness::Unknown;
    case StatResult::Read:
      break;
  }
  if (is_gone(st)) return Liveness::Dead;
  if (!same_start(who.start_ticks, st.start_ticks)) return Liveness::Dead;  // the PID was reused
  return Liveness::Alive;
}

// True when /proc numbers processes as this process's PID namespace does.
// A /proc of a parent namespace (unshare --pid without --mount-proc, some
// sandboxes) describes other processes under the same numbers, and an empty
// or missing one none: read as this namespace's, either makes a live
// process look dead.
bool proc_numbers_as_here() {
  char target[32];
  const ssize_t length = ::readlink("/proc/self", target, sizeof target - 1);
  if (length <= 0) return false;
  target[length] = '\0';
  char* end = nullptr;
  const long long pid = std::strtoll(target, &end, 10);
  return end != target && *end == '\0' && pid == static_cast<long long>(::getpid());
}

Liveness in_this_namespace(const Identity& who) {
  if (::kill(static_cast<pid_t>(who.pid), 0) != 0 && errno == ESRCH) return Liveness::Dead;
  // The PID is taken; by the same process or a newer one, only /proc tells.
  if (!proc_numbers_as_here()) return Liveness::Unknown;
  StatFields st;
  const StatResult result = read_stat(who.pid, st);
  return judge_stat(result, st, who);
}

}  // namespace

namespace {

// Set in a child of fork() (a pthread_atfork() handler): until then the
// identity read when the package was loaded is this process's, and
// current() needs no system call (it is on the path of every map).
std::atomic<bool> forked_since_first_identity{false};

void note_fork_in_child() { forked_since_first_identity.store(true, std::memory_order_relaxed); }

Identity read_first_identity() {
  // Without the handler no fork can be seen: current() then asks getpid()
  // each time.
  if (::pthread_atfork(nullptr, nullptr, note_fork_in_child) != 0)
    forked_since_first_identity.store(true, std::memory_order_relaxed);
  return read_self();
}

const Identity& first_identity() {
  static const Identity self = read_first_identity();
  return self;
}

Identity identity_of(int64_t pid) {
  Identity id;
  id.pid = pid;
  StatFields st;
  if (read_stat(pid, st) == StatResult::Read) id.start_ticks = st.start_ticks;
  char link[64];
  std::snprintf(link, sizeof link, "/proc/%lld/ns/pid", static_cast<long long>(pid));
  id.pid_namespace = pid_namespace_of(link);
  return id;
}

}  // namespace

Identity current() {
  const Identity& self = first_identity();
  if (!forked_since_first_identity.load(std::memory_order_relaxed)) return self;
  const auto pid = static_cast<int64_t>(::getpid());
  if (self.pid == pid) return self;
  // A forked child has a new PID: its own identity, read from /proc once
  // per thread rather than on every map (a child of the child, whose PID
  // differs again, reads its own).
  thread_local Identity forked_self;
  if (forked_self.pid != pid) forked_self = read_self();
  return forked_self;
}

bool is_forked_child() { return first_identity().pid != static_cast<int64_t>(::getpid()); }

Identity fork_parent() {
  if (!is_forked_child()) return {};
  // A child of the process that loaded shmr inherited its identity: /proc
  // is not read, and where it numbers processes as another PID namespace
  // does, it would describe another process.
  const Identity& loader = first_identity();
  if (static_cast<int64_t>(::getppid()) == loader.pid && loader.start_ticks != 0) return loader;
  Identity parent = identity_of(static_cast<int64_t>(::getppid()));
  if (parent.pid <= 1 || parent.start_ticks == 0) return {};
  return parent;
}

Liveness Census::find_anywhere(const Identity& who) {
  take();
  const uint64_t first = who.start_ticks > 0 ? who.start_ticks - 1 : 0;
  if (!complete_ || current().pid_namespace != kInitialPidNamespace || who.start_ticks == 0)
    return Liveness::Unknown;
  for (const auto& seen : seen_)
    if (same_start(seen.second, who.start_ticks)) return Liveness::Unknown;
  auto unplaced = unplaced_.lower_bound(first);
  if (unplaced != unplaced_.end() && same_start(*unplaced, who.start_ticks))
    return Liveness::Unknown;
  return Liveness::Dead;
}

void Census::take() {
  if (!taken_) {
    taken_ = true;
    complete_ = true;
    std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
    if (!proc) {
      complete_ = false;
    } else {
      while (struct dirent* entry = ::readdir(proc.get())) {
        char* end = nullptr;
        long long pid = std::strtoll(entry->d_name, &end, 10);
        if (end == entry->d_name || *end != '\0' || pid <= 0) continue;
        StatFields st;
        StatResult read = read_stat(pid, st);
        if (read == StatResult::Missing || (read == StatResult::Read && is_gone(st))) continue;
        char link[64];
        std::snprintf(link, sizeof link, "/proc/%lld/ns/pid", pid);
        uint64_t ns = pid_namespace_of(link);
        if (read == StatResult::Unreadable) {
          // Gone in the meantime, or out of reach (no descriptor left): the
          // census cannot rule anyone out.
          if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) complete_ = false;
          continue;
        }
        // A process whose namespace is out of reach (a container's init, for
        // one) may be anyone who started when it did.
        if (ns == 0)
          unplaced_.insert(st.start_ticks);
        else
          seen_.insert({ns, st.start_ticks});
      }
    }
  }
}

Liveness Census::find(const Identity& who) {
  take();
  // Start times may differ by one tick (see boottime_offset_ticks()).
  const uint64_t first = who.start_ticks > 0 ? who.start_ticks - 1 : 0;
  auto seen = seen_.lower_bound({who.pid_namespace, first});
  if (seen != seen_.end() && seen->first == who.pid_namespace &&
      same_start(seen->second, who.start_ticks))
    return Liveness::Alive;
  // Only the initial namespace sees every process.
  auto unplaced = unplaced_.lower_bound(first);
  if (complete_ && current().pid_namespace == kInitialPidNamespace && who.start_ticks != 0 &&
      (unplaced == unplaced_.end() || !same_start(*unplaced, who.start_ticks)))
    return Liveness::Dead;
  return Liveness::Unknown;
}

Liveness liveness_from_stat(int stat_fd, const Identity& who) {
  StatFields st;
  const StatResult result = read_stat_descriptor(stat_fd, st);
  return judge_stat(result, st, who);
}

Liveness liveness(const Identity& who, Census& census) {
  if (who.pid <= 0 || who.pid > INT_MAX) return Liveness::Dead;
  const Identity self = current();
  if (who.pid_namespace != 0 && self.pid_namespace != 0 && who.pid_namespace != self.pid_namespace)
    return census.find(who);
  const Liveness here = in_this_namespace(who);
  if (here != Liveness::Dead || (who.pid_namespace != 0 && self.pid_namespace != 0) ||
      who.start_ticks == 0)
    return here;
  // A namespace not recorded (a region of format version 1) or not known
  // here: the PID may be another namespace's. Dead only when no process
  // anywhere started when it did. (A PID alone, as in the name of a
  // half-written temporary file, is judged in this namespace.)
  return census.find_anywhere(who);
}

Liveness liveness(const Identity& who) {
  Census census;
  return liveness(who, census);
}

bool is_alive(const Identity& who) { return liveness(who) == Liveness::Alive; }

bool same_start(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return true;
  return (a > b ? a - b : b - a) <= 1;
}

bool names_process(const Identity& recorded, const Identity& self) {
  return recorded.pid == self.pid && (recorded.start_ticks == 0) == (self.start_ticks == 0) &&
         same_start(recorded.start_ticks, self.start_ticks) &&
         (recorded.pid_namespace == 0 || recorded.pid_namespace == self.pid_namespace);
}

}  // namespace shmr::process
