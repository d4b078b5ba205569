#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "process.h"
#include "test_util.h"

using shmr::process::current;
using shmr::process::Identity;
using shmr::process::is_alive;

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
  Identity reused{self.pid, self.start_ticks + 1};
  EXPECT_FALSE(is_alive(reused));
}

TEST(Process, NonPositivePidsAreNotAlive) {
  EXPECT_FALSE(is_alive(Identity{0, 0}));
  EXPECT_FALSE(is_alive(Identity{-1, 0}));
  EXPECT_FALSE(is_alive(Identity{INT64_MIN, 0}));
  EXPECT_FALSE(is_alive(Identity{INT64_MAX, 0}));
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

TEST(Process, ZombieAndReapedChildrenAreDead) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(ready[0]);
    Identity me = current();
    if (::write(ready[1], &me, sizeof me) != sizeof me) std::_Exit(1);
    std::_Exit(0);
  }
  ::close(ready[1]);
  Identity child{};
  ASSERT_EQ(::read(ready[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  ::close(ready[0]);
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
