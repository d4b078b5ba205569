// A termination signal (SIGTERM, SIGHUP, SIGQUIT, SIGABRT) ends a process without
// its exit code: the handler must remove the regions the process owns, and
// only those, then let the signal end the process as it would have.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backing_test_util.h"
#include "ownership.h"
#include "region_file.h"
#include "store.h"
#include "replica.h"
#include "termination.h"

using shmr_test::TempDir;
using namespace shmr_backing_test;

namespace {

// Runs `body` in a child with the handlers installed, then sends the child
// `signal_number`; returns the child's wait status, -1 when the body
// failed (it ends the child with _Exit()).
int status_after_signal(const std::function<void()>& body, int signal_number) {
  std::fflush(nullptr);
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::alarm(20);
    ::close(ready[0]);
    // As a process started in the foreground has it: a test run started in
    // the background by a shell without job control inherits SIGQUIT (and
    // SIGINT) ignored, and the handlers rightly leave an ignored signal be.
    ::signal(signal_number, SIG_DFL);
    shmr::termination::install_handlers();
    try {
      body();
    } catch (...) {
      std::_Exit(98);
    }
    const char byte = 1;
    if (::write(ready[1], &byte, 1) != 1) std::_Exit(97);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char byte = 0;
  const bool body_done = ::read(ready[0], &byte, 1) == 1;
  ::close(ready[0]);
  ::kill(pid, body_done ? signal_number : SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return body_done ? status : -1;
}

bool ended_by(int status, int signal_number) {
  return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == signal_number;
}

}  // namespace

TEST(Termination, SignalRemovesOwnedRegionsOnly) {
  for (int signal_number : {SIGTERM, SIGHUP, SIGQUIT, SIGABRT}) {
    TempDir shm, data;
    Sample sample;
    // The parent's own region: a child's signal must leave it.
    auto parents = shmr::create_region(sample.description, shm_options(shm, "shmr_parents"));
    const int status = status_after_signal(
        [&] {
          static std::vector<std::shared_ptr<shmr::MappedRegion>> held;
          held.push_back(shmr::create_region(sample.description, shm_options(shm, "shmr_owned")));
          held.push_back(shmr::create_region(sample.description,
                                             file_options(shm, data, "shmr_file_owned")));
          held.push_back(shmr::create_region(sample.description,
                                             shm_options(shm, "shmr_persistent", true)));
          auto kept = shmr::create_region(sample.description, shm_options(shm, "shmr_kept"));
          kept->close(shmr::Removal::Keep);
          held.push_back(kept);
          // Released, then its name taken by a region of another process:
          // the old entry must not remove the new file.
          auto retaken = shmr::create_region(sample.description, shm_options(shm, "shmr_retaken"));
          retaken->close(shmr::Removal::AsOwner);
          create_in_dead_child(shm_options(shm, "shmr_retaken", true));
        },
        signal_number);
    ASSERT_TRUE(ended_by(status, signal_number)) << "signal " << signal_number;
    EXPECT_EQ(sorted(shm.entries()),
              sorted({"shmr_kept", "shmr_parents", "shmr_persistent", "shmr_retaken"}))
        << "signal " << signal_number;
    EXPECT_TRUE(data.entries().empty()) << "the file backing's data file";
    parents->close();
  }
}

// A signal the process was started with ignored (SIGQUIT, SIGINT for a
// command run in the background by a shell) stays ignored: the handlers
// are installed only where the action is the default.
TEST(Termination, ASignalIgnoredAtInstallationStaysIgnored) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(20);
    ::signal(SIGQUIT, SIG_IGN);
    ::signal(SIGTERM, SIG_DFL);
    shmr::termination::install_handlers();
    struct sigaction quit, term;
    if (::sigaction(SIGQUIT, nullptr, &quit) != 0 || ::sigaction(SIGTERM, nullptr, &term) != 0)
      std::_Exit(90);
    if (quit.sa_handler != SIG_IGN) std::_Exit(91);
    if (term.sa_handler == SIG_DFL || term.sa_handler == SIG_IGN) std::_Exit(92);
    // Ignored, SIGQUIT leaves the process running; SIGTERM then ends it.
    ::raise(SIGQUIT);
    std::_Exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ASSERT_TRUE(WIFEXITED(status)) << "ended by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Termination, CancelledEntryIsLeft) {
  TempDir dir;
  dir.write_file("cancelled", "x");
  dir.write_file("recorded", "x");
  const int status = status_after_signal(
      [&] {
        auto entry = [&](const std::string& file) {
          shmr::FileIdentity id = shmr::FileIdentity::of(dir.file(file));
          return shmr::termination::remove_at_termination({dir.file(file), id.device, id.inode},
                                                          {});
        };
        const uint64_t cancelled = entry("cancelled");
        if (cancelled == 0) std::_Exit(96);
        shmr::termination::cancel(cancelled);
        // Cancelling again after the slot was reused leaves the new entry.
        if (entry("recorded") == 0) std::_Exit(96);
        shmr::termination::cancel(cancelled);
      },
      SIGTERM);
  ASSERT_TRUE(ended_by(status, SIGTERM));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"cancelled"});
}

TEST(Termination, ManyEntries) {
  TempDir dir;
  const int count = 300;  // several chunks of slots
  for (int i = 0; i < count; ++i) dir.write_file("f" + std::to_string(i), "x");
  const int status = status_after_signal(
      [&] {
        for (int i = 0; i < count; ++i) {
          const std::string path = dir.file("f" + std::to_string(i));
          shmr::FileIdentity id = shmr::FileIdentity::of(path);
          const uint64_t ticket = shmr::termination::remove_at_termination(
              {path, id.device, id.inode}, {});
          if (ticket == 0) std::_Exit(96);
          if (i % 3 == 0) shmr::termination::cancel(ticket);
        }
      },
      SIGTERM);
  ASSERT_TRUE(ended_by(status, SIGTERM));
  EXPECT_EQ(dir.entries().size(), static_cast<size_t>((count + 2) / 3));
}

TEST(Termination, RegionBeingWrittenIsRemoved) {
  TempDir shm;
  const int status = status_after_signal(
      [&] {
        static std::unique_ptr<shmr::PendingRegion> pending;
        pending = std::make_unique<shmr::PendingRegion>(shm.path(), "shmr_unfinished", 4096);
        if (shm.entries().size() != 1) std::_Exit(96);
      },
      SIGTERM);
  ASSERT_TRUE(ended_by(status, SIGTERM));
  EXPECT_TRUE(shm.entries().empty());
}

TEST(Termination, NameOfAGoneDataFileIsLeft) {
  // As after a removal elsewhere: the data file is gone and a new file took
  // the name (on a disk file system, possibly with the old inode number).
  TempDir dir;
  dir.write_file("name", "someone else's");
  const int status = status_after_signal(
      [&] {
        shmr::FileIdentity name = shmr::FileIdentity::of(dir.file("name"));
        if (shmr::termination::remove_at_termination({dir.file("data"), 1, 2},
                                                      {dir.file("name"), name.device, name.inode}) == 0)
          std::_Exit(96);
      },
      SIGTERM);
  ASSERT_TRUE(ended_by(status, SIGTERM));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"name"});
}

TEST(Termination, HeldFetchLockFileIsRemoved) {
  // daemons(0) ends a daemon in the middle of a fetch with SIGTERM.
  TempDir shm;
  const int status = status_after_signal(
      [&] {
        // Held until the signal: the child never returns from the body's caller.
        static const auto* lock =
            new std::optional<shmr::FetchLock>(shmr::FetchLock::try_acquire(shm.path(), "shmr_fetching"));
        if (!lock->has_value() || shm.entries().size() != 1) std::_Exit(96);
      },
      SIGTERM);
  ASSERT_TRUE(ended_by(status, SIGTERM));
  EXPECT_TRUE(shm.entries().empty());
}
