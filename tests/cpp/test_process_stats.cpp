#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "process_stats.h"

namespace ps = shmr::process_stats;

namespace {

// A file of `bytes` in a private temporary directory, removed with it.
struct TempFile {
  std::string dir, path;
  TempFile(const std::string& name, size_t bytes) {
    char tmpl[] = "/tmp/shmr-stats-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir + "/" + name;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(bytes)), 0);
    ::close(fd);
  }
  ~TempFile() {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
};

uint64_t mapped_here(const std::string& prefix) {
  auto bytes = ps::mapped_bytes_of_files(::getpid(), {prefix});
  EXPECT_TRUE(bytes.has_value());
  return bytes.value_or(0);
}

}  // namespace

TEST(ProcessStats, ParsesSmapsFields) {
  const std::string text =
      "55d0c0000000-7ffd00000000 ---p 00000000 00:00 0    [rollup]\n"
      "Rss:               10240 kB\n"
      "Pss:                4096 kB\n"
      "Pss_Anon:           2048 kB\n"
      "Anonymous:          3072 kB\n"
      "Private_Clean:        12 kB\n"
      "Private_Dirty:        20 kB\n"
      "Shared_Clean:        999 kB\n";
  ps::Memory m = ps::parse_smaps(text);
  EXPECT_EQ(m.rss, 10240u * 1024);
  EXPECT_EQ(m.pss, 4096u * 1024);  // not Pss_Anon
  EXPECT_EQ(m.anonymous, 3072u * 1024);
  EXPECT_EQ(m.private_bytes, 32u * 1024);
  // smaps (per mapping) adds up.
  ps::Memory sum = ps::parse_smaps(text + text);
  EXPECT_EQ(sum.rss, 2u * 10240 * 1024);
  EXPECT_EQ(ps::parse_smaps("").rss, 0u);
  EXPECT_EQ(ps::parse_smaps("Rss: garbage\nRss:\n").rss, 0u);
}

TEST(ProcessStats, ParsesMapsByFilePrefix) {
  const std::string text =
      "7f0000000000-7f0000100000 r--s 00000000 00:1a 12 /dev/shm/shmr_abc\n"
      "7f0000100000-7f0000101000 rw-p 00000000 00:1a 13 /dev/shm/shmr_gone (deleted)\n"
      "7f0000200000-7f0000300000 r--p 00000000 08:01 14 /home/a b/shmr_spaced name\n"
      "7f0000300000-7f0000400000 r--p 00000000 08:01 15 /data/shmr_dir/other\n"
      "7f0000400000-7f0000500000 r--p 00000000 08:01 16 /data/notshmr_x\n"
      "7f0000500000-7f0000600000 rw-p 00000000 00:00 0 \n"
      "7f0000600000-7f0000700000 rw-p 00000000 00:00 0    [heap]\n"
      "garbage line\n";
  EXPECT_EQ(ps::parse_maps(text, {"shmr_"}), 0x100000u + 0x1000u + 0x100000u);
  EXPECT_EQ(ps::parse_maps(text, {"other"}), 0x100000u);
  EXPECT_EQ(ps::parse_maps(text, {"other", "notshmr_"}), 0x200000u);
  EXPECT_EQ(ps::parse_maps(text, {}), 0u);
  EXPECT_EQ(ps::parse_maps("", {"shmr_"}), 0u);
}

TEST(ProcessStats, CountsFileMappingsOfThisProcessIncludingRemovedFiles) {
  const std::string prefix = "shmrstatstest_" + std::to_string(::getpid()) + "_";
  const size_t bytes = 4u << 20;
  TempFile file(prefix + "region", bytes);
  EXPECT_EQ(mapped_here(prefix), 0u);
  int fd = ::open(file.path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(map, MAP_FAILED);
  EXPECT_EQ(mapped_here(prefix), bytes);
  ::unlink(file.path.c_str());  // now listed as "(deleted)"
  EXPECT_EQ(mapped_here(prefix), bytes);
  ::munmap(map, bytes);
  EXPECT_EQ(mapped_here(prefix), 0u);
}

TEST(ProcessStats, MemoryOfThisProcessSeesAnonymousGrowth) {
  auto before = ps::memory(::getpid());
  ASSERT_TRUE(before.has_value());
  EXPECT_GT(before->rss, 0u);
  const size_t bytes = 64u << 20;
  char* block = static_cast<char*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(block, MAP_FAILED);
  std::memset(block, 1, bytes);
  auto after = ps::memory(::getpid());
  ASSERT_TRUE(after.has_value());
  EXPECT_GE(after->anonymous, before->anonymous + bytes / 2);
  EXPECT_GE(after->private_bytes, bytes / 2);
  ::munmap(block, bytes);
}

TEST(ProcessStats, UnreadableProcessesAreUnknownNotErrors) {
  for (int64_t pid : {int64_t{0}, int64_t{-1}, int64_t{INT64_MIN}, int64_t{INT64_MAX},
                      int64_t{INT_MAX} + 1}) {
    EXPECT_FALSE(ps::memory(pid).has_value()) << pid;
    EXPECT_FALSE(ps::mapped_bytes_of_files(pid, {"shmr_"}).has_value()) << pid;
  }
}

TEST(ProcessStats, MemoryOfAChildUntilItIsReaped) {
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(go[1]);
    char c;
    (void)!::read(go[0], &c, 1);  // until the parent closes the pipe
    std::_Exit(0);
  }
  ::close(go[0]);
  EXPECT_TRUE(ps::memory(pid).has_value());
  ::close(go[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_FALSE(ps::memory(pid).has_value());
}

TEST(ProcessStats, PhysicalMemoryIsTheKernelsMemTotal) {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (meminfo >> key && key != "MemTotal:") meminfo.ignore(1 << 10, '\n');
  ASSERT_EQ(key, "MemTotal:");
  meminfo >> kib;
  const std::optional<uint64_t> bytes = ps::physical_memory();
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(*bytes, kib * 1024);
}

TEST(ProcessStats, CommandLineMentionsAWordWithinOneArgument) {
  const std::string cmdline("Rscript\0-e\0invisible('shmr-launch-7-abc')\0", 41);
  EXPECT_TRUE(ps::command_line_mentions(cmdline, "shmr-launch-7-abc"));
  EXPECT_TRUE(ps::command_line_mentions(cmdline, "Rscript"));
  EXPECT_FALSE(ps::command_line_mentions(cmdline, "shmr-launch-7-abd"));
  // Not across two arguments, and never for an empty word.
  EXPECT_FALSE(ps::command_line_mentions(cmdline, "-e invisible"));
  EXPECT_FALSE(ps::command_line_mentions(std::string("ab\0cd", 5), std::string("b\0c", 3)));
  EXPECT_FALSE(ps::command_line_mentions(cmdline, ""));
  EXPECT_FALSE(ps::command_line_mentions("", "x"));
}

TEST(ProcessStats, FindsTheProcessesWhoseCommandLineMentionsAWord) {
  const std::string word = "shmr-stats-word-" + std::to_string(::getpid());
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(go[1]);
    ::dup2(go[0], 0);
    // `read` waits on the pipe until the parent closes it; the word is the
    // shell's $0, so it is in the command line.
    ::execl("/bin/sh", "sh", "-c", "read x; exit 0", word.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(go[0]);
  std::vector<int64_t> found;
  for (int i = 0; i < 200 && found.empty(); ++i) {
    std::optional<std::vector<int64_t>> seen = ps::processes_mentioning(word);
    ASSERT_TRUE(seen.has_value());
    found = *seen;
    if (found.empty()) ::usleep(10000);
  }
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0], pid);
  EXPECT_EQ(ps::processes_mentioning(word + "-other"), std::vector<int64_t>());
  ::close(go[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(ps::processes_mentioning(word), std::vector<int64_t>());
}

// In a child, whose limit can be lowered without touching the suite's: the
// free count follows each descriptor opened, and is 0 once none is left
// (when not even /proc/self/fd can be opened).
TEST(ProcessStats, FreeDescriptorsFollowTheOpenFileLimit) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct rlimit limit {};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_max < 64) ::_exit(10);
    limit.rlim_cur = 64;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(11);
    const std::optional<uint64_t> before = ps::free_descriptors();
    if (!before || *before == 0 || *before > 64) ::_exit(12);
    if (::dup(0) < 0) ::_exit(13);
    const std::optional<uint64_t> after_one = ps::free_descriptors();
    if (!after_one || *after_one != *before - 1) ::_exit(14);
    while (::dup(0) >= 0) {
    }
    const std::optional<uint64_t> none = ps::free_descriptors();
    if (!none || *none != 0) ::_exit(15);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ProcessStats, SearchWithoutDescriptorsCannotTellRatherThanFindingNone) {
  // A child of this process mentions the word: with no descriptor left, an
  // empty answer would tell a pool its workers are gone while one runs.
  const std::string word = "shmr-stats-nofd-" + std::to_string(::getpid());
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t sleeper = ::fork();
  ASSERT_GE(sleeper, 0);
  if (sleeper == 0) {
    ::close(go[1]);
    ::dup2(go[0], 0);
    ::execl("/bin/sh", "sh", "-c", "read x; exit 0", word.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(go[0]);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::optional<std::vector<int64_t>> seen;
    for (int i = 0; i < 200; ++i) {
      seen = ps::processes_mentioning(word);
      if (seen && !seen->empty()) break;
      ::usleep(10000);
    }
    if (!seen || seen->size() != 1) ::_exit(10);
    struct rlimit limit {};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_max < 64) ::_exit(11);
    limit.rlim_cur = 64;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(12);
    while (::dup(0) >= 0) {
    }
    if (ps::processes_mentioning(word).has_value()) ::_exit(13);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(go[1]);
  int sleeper_status = 0;
  ASSERT_EQ(::waitpid(sleeper, &sleeper_status, 0), sleeper);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ProcessStats, ClosesInheritedSocketsOnly) {
  // In a child, which may close what it inherited from the test process.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int pair[2], pipe_ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0 || ::pipe(pipe_ends) != 0) ::_exit(10);
    const int file = ::open("/proc/self/stat", O_RDONLY);
    if (file < 0) ::_exit(11);
    const int closed = ps::close_inherited_sockets();
    const auto is_open = [](int fd) { return ::fcntl(fd, F_GETFD) != -1; };
    if (closed < 2 || is_open(pair[0]) || is_open(pair[1])) ::_exit(12);
    if (!is_open(pipe_ends[0]) || !is_open(pipe_ends[1]) || !is_open(file)) ::_exit(13);
    if (!is_open(0) || !is_open(1) || !is_open(2)) ::_exit(14);
    if (ps::close_inherited_sockets() != 0) ::_exit(15);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}
