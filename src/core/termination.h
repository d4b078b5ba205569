// Regions removed when a termination signal ends the process.
//
// R runs no exit code when SIGTERM (kill, timeout, Slurm's scancel), SIGHUP
// (a closed terminal or SSH session), SIGQUIT or SIGABRT (abort(): a failed
// assertion, a corrupted heap glibc detects) ends it, so the
// regions a process owns would stay in shared memory, using it, until a
// prune_shared(). The handler installed here removes them first, then lets
// the signal end the process as it would have.
//
// A signal handler may only call async-signal-safe functions: no malloc,
// no locks, no C++ exceptions. So the files to remove are kept in slots of
// fixed memory that the handler reads without a lock; each slot has a
// sequence number, odd while its entry is live, that tells the handler
// whether the entry changed while it was read.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace shmr::termination {

// A file to remove, and the identity (device and inode) it had when
// recorded: the handler never removes another file that took its name.
struct FileToRemove {
  std::string path;
  uint64_t device = 0;
  uint64_t inode = 0;
};

// Records files that this process removes if a termination signal ends it:
// `data`, and `name` too (a locator) when it is not empty. The name is
// removed only if the data file was still this entry's or gone. Returns a
// ticket for cancel(); 0 when no slot is left (then a prune_shared()
// removes the files, as before).
uint64_t remove_at_termination(const FileToRemove& data, const FileToRemove& name);

// Forgets the entry of `ticket` (0 is ignored). After it returns, the
// handler no longer removes those files.
void cancel(uint64_t ticket) noexcept;

// An entry owned by an object: recorded by the constructor, forgotten by
// reset() or the destructor, whichever comes first. Without a slot or
// memory left there is no entry (a prune_shared() then removes the files,
// as before). reset() may race with itself on two threads.
class Entry {
 public:
  Entry() noexcept = default;
  Entry(const FileToRemove& data, const FileToRemove& name) noexcept;
  Entry(Entry&& other) noexcept : ticket_(other.ticket_.exchange(0)) {}
  Entry& operator=(Entry&& other) noexcept;
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;
  ~Entry() { reset(); }

  void reset() noexcept { cancel(ticket_.exchange(0)); }

 private:
  std::atomic<uint64_t> ticket_{0};
};

// While it lives, the termination signals wait (blocked in this thread):
// around the steps that create a file and record it here, or publish a
// region and hand its entry on, so that the handler never runs between
// them and misses the file.
class DeferredSignals {
 public:
  DeferredSignals() noexcept;
  DeferredSignals(const DeferredSignals&) = delete;
  DeferredSignals& operator=(const DeferredSignals&) = delete;
  ~DeferredSignals();

 private:
  sigset_t previous_;
  bool blocked_ = false;
};

// Installs the handler for SIGTERM, SIGHUP, SIGQUIT and SIGABRT where their
// disposition is the default one (never over a handler someone else
// installed, nor over an ignored signal). Idempotent.
void install_handlers() noexcept;

}  // namespace shmr::termination
