#include "termination.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <mutex>
#include <vector>

namespace shmr::termination {
namespace {

constexpr size_t kSlotsPerChunk = 64;
constexpr size_t kMaxChunks = 4096;
// A ticket is its slot's index + 1 in the low bits and a serial number
// above them: cancelling a ticket twice never clears a later entry that
// reuses the slot.
constexpr int kIndexBits = 20;
static_assert(kSlotsPerChunk * kMaxChunks < (uint64_t{1} << kIndexBits), "slot index overflows");

// One file of an entry. Its text buffer is never freed (a handler on
// another thread may be reading it): a slot reuses it, or replaces it by a
// larger one and leaves the old one allocated.
struct RecordedFile {
  char* text = nullptr;
  size_t capacity = 0;
  std::atomic<uint64_t> device{0};
  std::atomic<uint64_t> inode{0};
};

struct Slot {
  // Even while the entry is stable, odd while a writer changes it.
  std::atomic<uint64_t> version{0};
  std::atomic<uint64_t> ticket{0};  // 0: free
  std::atomic<int64_t> pid{0};
  RecordedFile data;
  RecordedFile name;  // empty text: none
};

struct Chunk {
  Slot slots[kSlotsPerChunk];
};

std::atomic<Chunk*> chunks[kMaxChunks];
std::atomic<size_t> chunks_in_use{0};

// Writers (registration, cancellation) take this lock; the handler never does.
std::mutex writers_mutex;
uint64_t next_serial = 1;
std::vector<size_t>& free_slots() {
  static std::vector<size_t> slots;
  return slots;
}

Slot& slot_at(size_t index) {
  return chunks[index / kSlotsPerChunk].load(std::memory_order_relaxed)->slots[index % kSlotsPerChunk];
}

// A free slot's index, or SIZE_MAX when every chunk is full and no more
// can be made. Under writers_mutex.
size_t take_free_slot() {
  if (free_slots().empty()) {
    const size_t in_use = chunks_in_use.load(std::memory_order_relaxed);
    if (in_use == kMaxChunks) return SIZE_MAX;
    Chunk* chunk = new (std::nothrow) Chunk();
    if (chunk == nullptr) return SIZE_MAX;
    chunks[in_use].store(chunk, std::memory_order_release);
    chunks_in_use.store(in_use + 1, std::memory_order_release);
    for (size_t i = kSlotsPerChunk; i-- > 0;) free_slots().push_back(in_use * kSlotsPerChunk + i);
  }
  const size_t index = free_slots().back();
  free_slots().pop_back();
  return index;
}

// Under writers_mutex, between begin_write() and end_write().
bool record(RecordedFile& file, const FileToRemove& source) {
  const size_t needed = source.path.size() + 1;
  if (needed > file.capacity) {
    char* larger = new (std::nothrow) char[needed];
    if (larger == nullptr) return false;
    file.text = larger;
    file.capacity = needed;
  }
  std::memcpy(file.text, source.path.c_str(), needed);
  file.device.store(source.device, std::memory_order_relaxed);
  file.inode.store(source.inode, std::memory_order_relaxed);
  return true;
}

void begin_write(Slot& slot) {
  slot.version.store(slot.version.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}

void end_write(Slot& slot) {
  slot.version.store(slot.version.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

// ---- What the handler runs: async-signal-safe calls only. ----

struct Snapshot {
  char path[PATH_MAX];
  uint64_t device;
  uint64_t inode;
};

// Copies `file` into `out`; false when its text does not fit or is empty.
bool copy_file(const RecordedFile& file, Snapshot& out) {
  const char* text = file.text;
  if (text == nullptr) return false;
  size_t i = 0;
  for (; i < sizeof out.path && i < file.capacity; ++i) {
    out.path[i] = text[i];
    if (text[i] == '\0') break;
  }
  if (i == sizeof out.path || i == file.capacity || i == 0) return false;
  out.device = file.device.load(std::memory_order_relaxed);
  out.inode = file.inode.load(std::memory_order_relaxed);
  return true;
}

enum class Outcome { Removed, Gone, Other };

Outcome remove_if_same(const Snapshot& file) {
  struct stat st;
  if (::lstat(file.path, &st) != 0) return Outcome::Gone;
  if (static_cast<uint64_t>(st.st_dev) != file.device ||
      static_cast<uint64_t>(st.st_ino) != file.inode)
    return Outcome::Other;
  return ::unlink(file.path) == 0 ? Outcome::Removed : Outcome::Other;
}

void remove_entry(const Slot& slot, int64_t self) {
  const uint64_t before = slot.version.load(std::memory_order_acquire);
  if ((before & 1) != 0 || slot.ticket.load(std::memory_order_relaxed) == 0 ||
      slot.pid.load(std::memory_order_relaxed) != self)
    return;
  Snapshot data, name;
  const bool have_data = copy_file(slot.data, data);
  const bool have_name = copy_file(slot.name, name);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (slot.version.load(std::memory_order_relaxed) != before || !have_data) return;
  const Outcome data_outcome = remove_if_same(data);
  // Only after removing the data file, which shows that the name is still
  // this region's: once a removal elsewhere freed the locator's inode, a
  // disk file system gives its number to the next file, which may take the
  // same name.
  if (have_name && data_outcome == Outcome::Removed) remove_if_same(name);
}

constexpr int kSignals[] = {SIGTERM, SIGHUP, SIGQUIT, SIGABRT};

sigset_t termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int signal_number : kSignals) sigaddset(&set, signal_number);
  return set;
}

std::atomic<bool> terminating{false};

void on_termination_signal(int signal_number) {
  // A second signal, on another thread while the first is handled, waits
  // for the first to end the process: by its own number, with its removals
  // done.
  if (terminating.exchange(true)) {
    for (;;) ::pause();
  }
  const int64_t self = static_cast<int64_t>(::getpid());
  const size_t in_use = chunks_in_use.load(std::memory_order_acquire);
  for (size_t c = 0; c < in_use; ++c) {
    const Chunk* chunk = chunks[c].load(std::memory_order_acquire);
    if (chunk == nullptr) continue;
    for (const Slot& slot : chunk->slots) remove_entry(slot, self);
  }
  // With the default action back, the signal raised again ends the process
  // as soon as it is unblocked here, before any other termination signal
  // that arrived meanwhile (and stays blocked) could end it by its number.
  struct sigaction default_action;
  std::memset(&default_action, 0, sizeof default_action);
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  ::sigaction(signal_number, &default_action, nullptr);
  ::raise(signal_number);
  sigset_t this_signal;
  sigemptyset(&this_signal);
  sigaddset(&this_signal, signal_number);
  ::pthread_sigmask(SIG_UNBLOCK, &this_signal, nullptr);
}

}  // namespace

uint64_t remove_at_termination(const FileToRemove& data, const FileToRemove& name) {
  std::lock_guard<std::mutex> lock(writers_mutex);
  const size_t index = take_free_slot();
  if (index == SIZE_MAX) return 0;
  Slot& slot = slot_at(index);
  const uint64_t ticket = (next_serial++ << kIndexBits) | (index + 1);
  begin_write(slot);
  const bool recorded = record(slot.data, data) && record(slot.name, name);
  slot.pid.store(static_cast<int64_t>(::getpid()), std::memory_order_relaxed);
  slot.ticket.store(recorded ? ticket : 0, std::memory_order_relaxed);
  end_write(slot);
  if (!recorded) {
    free_slots().push_back(index);
    return 0;
  }
  return ticket;
}

void cancel(uint64_t ticket) noexcept {
  if (ticket == 0) return;
  const size_t index = static_cast<size_t>(ticket & ((uint64_t{1} << kIndexBits) - 1)) - 1;
  std::lock_guard<std::mutex> lock(writers_mutex);
  if (index >= chunks_in_use.load(std::memory_order_relaxed) * kSlotsPerChunk) return;
  Slot& slot = slot_at(index);
  if (slot.ticket.load(std::memory_order_relaxed) != ticket) return;
  begin_write(slot);
  slot.ticket.store(0, std::memory_order_relaxed);
  end_write(slot);
  try {
    free_slots().push_back(index);
  } catch (...) {
    // The slot stays unused: one fewer for later entries.
  }
}

Entry::Entry(const FileToRemove& data, const FileToRemove& name) noexcept {
  try {
    ticket_ = remove_at_termination(data, name);
  } catch (...) {
    // No memory for the list of free slots: no entry.
  }
}

Entry& Entry::operator=(Entry&& other) noexcept {
  if (this != &other) {
    reset();
    ticket_ = other.ticket_.exchange(0);
  }
  return *this;
}

DeferredSignals::DeferredSignals() noexcept {
  const sigset_t set = termination_signals();
  blocked_ = ::pthread_sigmask(SIG_BLOCK, &set, &previous_) == 0;
}

DeferredSignals::~DeferredSignals() {
  if (blocked_) ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

void install_handlers() noexcept {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true)) return;
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_termination_signal;
  // One termination signal at a time: the handler never runs nested.
  action.sa_mask = termination_signals();
  for (int signal_number : kSignals) {
    struct sigaction current;
    if (::sigaction(signal_number, nullptr, &current) != 0) continue;
    if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) continue;
    ::sigaction(signal_number, &action, nullptr);
  }
}

}  // namespace shmr::termination
