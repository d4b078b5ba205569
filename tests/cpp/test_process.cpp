#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <functional>

#include <gtest/gtest.h>

#include "process.h"
#include "test_util.h"

using shmr::process::current;
using shmr::process::Identity;
using shmr::process::is_alive;
using shmr::process::liveness;
using shmr::process::Liveness;
using shmr::process::liveness_from_stat;

namespace {

struct ReportingChild {
  pid_t pid = -1;
  Identity identity{};  // as the child read it; pid 0 when it sent none
};

// Forks a child that runs `prepare`, sends the parent its identity, then runs
// `then`; the child ends there if `then` returns.
ReportingChild fork_reporting(const std::function<void()>& prepare,
                              const std::function<void()>& then) {
  ReportingChild child;
  int ready[2];
  if (::pipe(ready) != 0) return child;
  child.pid = ::fork();
  if (child.pid == 0) {
    ::close(ready[0]);
    prepare();
    Identity me = current();
    if (::write(ready[1], &me, sizeof me) != sizeof me) std::_Exit(1);
    then();
    std::_Exit(0);
  }
  ::close(ready[1]);
  if (child.pid > 0 && ::read(ready[0], &child.identity, sizeof child.identity) != sizeof child.identity)
    child.identity = Identity{};
  ::close(ready[0]);
  return child;
}

}  // namespace

TEST(Process, CurrentIsThisProcessAndAlive) {
  Identity self = current();
  EXPECT_EQ(self.pid, static_cast<int64_t>(::getpid()));
  EXPECT_NE(self.start_ticks, 0u);
  EXPECT_TRUE(is_alive(self));
  Identity pid_only{self.pid, 0};
  EXPECT_TRUE(is_alive(pid_only));
}

TEST(Process, WrongStartTimeMeansAnotherProcess) {
  Identity self = current();
  // One tick apart counts as the same start (a time namespace's boot-time
  // offset may round either way); two apart is another process.
  EXPECT_TRUE(is_alive(Identity{self.pid, self.start_ticks + 1}));
  Identity reused{self.pid, self.start_ticks + 2};
  EXPECT_FALSE(is_alive(reused));
}

TEST(Process, NonPositivePidsAreNotAlive) {
  EXPECT_FALSE(is_alive(Identity{0, 0}));
  EXPECT_FALSE(is_alive(Identity{-1, 0}));
  EXPECT_FALSE(is_alive(Identity{INT64_MIN, 0}));
  EXPECT_FALSE(is_alive(Identity{INT64_MAX, 0}));
  EXPECT_FALSE(is_alive(Identity{int64_t{INT_MAX} + 1, 0}));  // not a pid_t
}

TEST(Process, ForkedChildReportsItsOwnIdentity) {
  Identity parent = current();
  int code = shmr_test::run_in_child([&] {
    Identity child = current();
    if (child.pid != static_cast<int64_t>(::getpid())) return 1;
    if (child.pid == parent.pid) return 2;
    if (child.start_ticks == 0) return 3;
    if (!is_alive(child) || !is_alive(parent)) return 4;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

// current() answers from the identity read at load until a fork: the
// child of a child, and the parent after its children, each report their own.
TEST(Process, EveryGenerationOfForksReportsItsOwnIdentity) {
  Identity parent = current();
  int code = shmr_test::run_in_child([&] {
    Identity child = current();
    if (child.pid != static_cast<int64_t>(::getpid()) || child.pid == parent.pid) return 1;
    int grandchild_code = shmr_test::run_in_child([&] {
      Identity grandchild = current();
      if (grandchild.pid != static_cast<int64_t>(::getpid())) return 1;
      if (grandchild.pid == child.pid || grandchild.pid == parent.pid) return 2;
      if (shmr::process::fork_parent().pid != child.pid) return 3;
      return 0;
    });
    if (grandchild_code != 0) return 10 + grandchild_code;
    if (current().pid != child.pid) return 2;
    return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(current().pid, parent.pid);
  EXPECT_EQ(current().pid, static_cast<int64_t>(::getpid()));
}

TEST(Process, ZombieAndReapedChildrenAreDead) {
  const ReportingChild reporting = fork_reporting([] {}, [] {});
  const pid_t pid = reporting.pid;
  ASSERT_GT(pid, 0);
  const Identity child = reporting.identity;
  EXPECT_EQ(child.pid, static_cast<int64_t>(pid));

  // Wait (without reaping) until the child has exited: it is then a zombie.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
  EXPECT_FALSE(is_alive(child));
  EXPECT_FALSE(is_alive(Identity{child.pid, 0}));

  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_FALSE(is_alive(child));
  EXPECT_FALSE(is_alive(Identity{child.pid, 0}));
}

// A prune that finds a killed process's PID, opens its /proc/<pid>/stat and
// reads it only after the parent reaped it must still call it dead: else a
// fetch taken over keeps the killed fetcher's unfinished file.
TEST(Process, ChildReapedBetweenOpenAndReadIsDead) {
  const ReportingChild reporting = fork_reporting([] {}, [] {});
  const pid_t pid = reporting.pid;
  ASSERT_GT(pid, 0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(liveness_from_stat(fd, reporting.identity), Liveness::Dead);
  EXPECT_EQ(liveness_from_stat(fd, Identity{reporting.identity.pid, 0}), Liveness::Dead);
  ::close(fd);
}

// The kernel releases a killed process's file locks while it exits, before
// it is a zombie: whoever then takes the lock must already see it dead, or
// it keeps files the killed process was writing (a fetch taken over).
TEST(Process, KilledProcessIsDeadOnceItsLockIsReleased) {
  shmr_test::TempDir dir;
  const std::string path = dir.file("lock");
  int dead_in_time = 0;
  const int rounds = 60;
  for (int round = 0; round < rounds; ++round) {
    const ReportingChild reporting = fork_reporting(
        [&] {
          int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
          if (fd < 0 || ::flock(fd, LOCK_EX) != 0) std::_Exit(1);
        },
        [] {
          for (;;) ::pause();
        });
    const pid_t pid = reporting.pid;
    ASSERT_GT(pid, 0);
    const Identity child = reporting.identity;
    ASSERT_EQ(child.pid, static_cast<int64_t>(pid));
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    if (liveness(child) == Liveness::Dead && liveness(Identity{child.pid, 0}) == Liveness::Dead)
      ++dead_in_time;
    ::close(fd);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  }
  EXPECT_EQ(dead_in_time, rounds);
}

TEST(Process, LiveChildIsAlive) {
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(go[1]);
    char c;
    (void)!::read(go[0], &c, 1);  // blocks until the parent closes the pipe
    std::_Exit(0);
  }
  ::close(go[0]);
  EXPECT_TRUE(is_alive(Identity{pid, 0}));
  ::close(go[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_FALSE(is_alive(Identity{pid, 0}));
}

TEST(Process, ItsOwnNamespaceIsKnown) {
  Identity self = current();
  EXPECT_NE(self.pid_namespace, 0u);
  EXPECT_EQ(liveness(self), Liveness::Alive);
}

// A child PID namespace: its first process is PID 1 there. The parent
// namespace sees it (under another PID); the child namespace does not see
// the parent's processes, so it never takes them for dead.
TEST(Process, OtherPidNamespacesAreJudgedOnlyWhereTheyAreSeen) {
  int report[2], go[2];
  ASSERT_EQ(::pipe(report), 0);
  ASSERT_EQ(::pipe(go), 0);
  const Identity outside = current();
  pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    // Only the test's end of `go` may stay open, or the reader never sees EOF.
    ::close(go[1]);
    ::close(report[0]);
    if (::unshare(CLONE_NEWPID) != 0) std::_Exit(77);
    pid_t inner = ::fork();
    if (inner < 0) std::_Exit(1);
    if (inner == 0) {
      // Our own /proc is still the parent namespace's: read our identity
      // through getpid() and the namespace link as a creator would.
      Identity me = current();
      struct {
        Identity me;
        int sees_outside;
      } msg{me, liveness(outside) != Liveness::Dead};
      if (::write(report[1], &msg, sizeof msg) != sizeof msg) std::_Exit(1);
      char c;
      (void)!::read(go[0], &c, 1);
      std::_Exit(0);
    }
    int status = 0;
    ::waitpid(inner, &status, 0);
    std::_Exit(0);
  }
  ::close(report[1]);
  ::close(go[0]);
  struct {
    Identity me;
    int sees_outside;
  } msg{};
  ssize_t got = ::read(report[0], &msg, sizeof msg);
  ::close(report[0]);
  if (got != static_cast<ssize_t>(sizeof msg)) {
    int status = 0;
    ::waitpid(middle, &status, 0);
    ::close(go[1]);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) GTEST_SKIP() << "no PID namespaces here";
    FAIL() << "the child namespace did not report";
  }
  EXPECT_EQ(msg.me.pid, 1);
  EXPECT_NE(msg.me.pid_namespace, outside.pid_namespace);
  EXPECT_TRUE(msg.sees_outside) << "a process out of sight was taken for dead";
  EXPECT_EQ(liveness(msg.me), Liveness::Alive);
  // Without its namespace (a region of format version 1), PID 1 here is
  // another process: that is no proof the creator is gone.
  EXPECT_NE(liveness(Identity{msg.me.pid, msg.me.start_ticks, 0}), Liveness::Dead);
  ::close(go[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(middle, &status, 0), middle);
  // From the initial namespace every process is in sight.
  if (outside.pid_namespace == 0xEFFFFFFCu) {
    EXPECT_EQ(liveness(msg.me), Liveness::Dead);
  }
}

TEST(Process, WithoutDescriptorsLeftNothingIsDeclaredDead) {
  int code = shmr_test::run_in_child([] {
    Identity parent{static_cast<int64_t>(::getppid()), 0, 0};
    struct rlimit limit{0, 0};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1;
    // Take every descriptor there is.
    limit.rlim_cur = 64;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return 2;
    while (::dup(0) >= 0) {
    }
    Liveness seen = liveness(parent);
    return seen == Liveness::Dead ? 3 : 0;
  });
  EXPECT_EQ(code, 0);
}
