// Identity of a process that survives PID reuse (the PID plus its start
// time) and its PID namespace, and what can be known about whether it runs.
#pragma once

#include <cstdint>
#include <set>
#include <utility>

namespace shmr::process {

struct Identity {
  int64_t pid = 0;
  // Field 22 of /proc/<pid>/stat as the initial time namespace reads it
  // (this process's boot-time offset subtracted); 0 when unknown.
  uint64_t start_ticks = 0;
  uint64_t pid_namespace = 0;  // inode of /proc/<pid>/ns/pid; 0 when unknown
};

Identity current();

// In a forked child (parallel::mclapply(), mcparallel()), the process it was
// forked from; pid 0 elsewhere, or when the parent is gone. current() must
// have been called once before the fork (the package does so when loaded).
Identity fork_parent();

// True in a child of fork() made after the package was loaded.
bool is_forked_child();

enum class Liveness { Alive, Dead, Unknown };

// What this process can tell about `who`. Dead only when known: in this
// PID namespace, kill(pid, 0) finds no process, or /proc shows a zombie, a
// process already exiting (its files, and so its locks, are being let go) or
// a process that started at another time (in an unknown namespace, that
// and no process anywhere started when it did); in
// another namespace, the process is not among those this namespace sees
// while this is the initial namespace, which sees them all. Anything that
// cannot be read (another namespace out of sight, no descriptor left,
// /proc hidden) is Unknown, never Dead.
Liveness liveness(const Identity& who);

// What /proc/<pid>/stat of `who`, already open as `stat_fd`, says of it
// (the step of liveness() after kill(pid, 0)). A process reaped after the
// file was opened reads as no process at all: Dead, not Unknown.
Liveness liveness_from_stat(int stat_fd, const Identity& who);

// The processes of other PID namespaces visible from here, by namespace
// and start time: liveness() scans /proc for them once per call of
// prune_regions() through this cache.
class Census {
 public:
  // `who` of another PID namespace than this process's.
  Liveness find(const Identity& who);
  // `who` of an unknown PID namespace: Dead only when, from the initial
  // namespace, no process at all started when it did.
  Liveness find_anywhere(const Identity& who);

 private:
  void take();
  bool taken_ = false;
  bool complete_ = false;
  std::set<std::pair<uint64_t, uint64_t>> seen_;  // (namespace, start ticks)
  std::set<uint64_t> unplaced_;  // start ticks of processes of an unreadable namespace
};

Liveness liveness(const Identity& who, Census& census);

// Whether two start times, read by processes that may be in different time
// namespaces, can belong to one process: equal to within the one tick that
// rounding of a boot-time offset can add; an unknown (0) never rules one out.
bool same_start(uint64_t a, uint64_t b);

// Whether `recorded` (a creator written in a header) names the process
// `self`: the same PID, start time and, when recorded, PID namespace.
bool names_process(const Identity& recorded, const Identity& self);

// liveness() == Alive.
bool is_alive(const Identity& who);

}  // namespace shmr::process
