// FileDescriptor, MemoryMap, PendingRegion, open_region and unlink_region,
// in a private temporary directory instead of /dev/shm.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "names.h"
#include "region_file.h"
#include "test_util.h"

using shmr::FileDescriptor;
using shmr::MemoryMap;
using shmr::PendingRegion;
using namespace shmr_test;

namespace {

std::string temp_name_for(const std::string& name) {
  return std::string(shmr::kTemporaryPrefix) + std::to_string(::getpid()) + "_" + name;
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

TEST(FileDescriptor, ClosesOnDestructionAndMove) {
  int raw = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(raw, 0);
  {
    FileDescriptor fd(raw);
    EXPECT_EQ(fd.get(), raw);
    FileDescriptor moved(std::move(fd));
    EXPECT_EQ(fd.get(), -1);
    EXPECT_EQ(moved.get(), raw);
    EXPECT_TRUE(fd_is_open(raw));
  }
  EXPECT_FALSE(fd_is_open(raw));

  int a = ::open("/dev/null", O_RDONLY);
  int b = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  {
    FileDescriptor fa(a), fb(b);
    fa = std::move(fb);  // closes a, takes b
    EXPECT_FALSE(fd_is_open(a));
    EXPECT_EQ(fa.get(), b);
    EXPECT_EQ(fb.get(), -1);
    fa = std::move(fa);  // self-move keeps it
    EXPECT_TRUE(fd_is_open(b));
    int released = fa.release();
    EXPECT_EQ(released, b);
    EXPECT_EQ(fa.get(), -1);
  }
  EXPECT_TRUE(fd_is_open(b));
  ::close(b);
}

TEST(MemoryMap, SharedWritableReachesTheFile) {
  TempDir dir;
  std::string path = dir.file("f");
  dir.write_file("f", std::string(8192, 'a'));
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  FileDescriptor guard(fd);
  {
    MemoryMap map = MemoryMap::shared_writable(fd, 8192);
    ASSERT_NE(map.data(), nullptr);
    EXPECT_EQ(map.size(), 8192u);
    static_cast<char*>(map.data())[100] = 'Z';
    MemoryMap moved(std::move(map));
    EXPECT_EQ(map.data(), nullptr);
    EXPECT_EQ(map.size(), 0u);
    EXPECT_EQ(static_cast<char*>(moved.data())[100], 'Z');
  }
  EXPECT_EQ(dir.read_file("f")[100], 'Z');
}

TEST(MemoryMap, PrivateCopyOnWriteStaysPrivate) {
  TempDir dir;
  dir.write_file("f", std::string(8192, 'a'));
  int fd = ::open(dir.file("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  FileDescriptor guard(fd);
  MemoryMap one = MemoryMap::private_copy_on_write(fd, 8192);
  MemoryMap two = MemoryMap::private_copy_on_write(fd, 8192);
  static_cast<char*>(one.data())[5000] = 'Q';
  EXPECT_EQ(static_cast<char*>(one.data())[5000], 'Q');
  EXPECT_EQ(static_cast<char*>(two.data())[5000], 'a');
  EXPECT_EQ(dir.read_file("f"), std::string(8192, 'a'));
}

TEST(MemoryMap, ZeroPagesReplaceTheFile) {
  TempDir dir;
  dir.write_file("f", std::string(10000, 'a'));
  int fd = ::open(dir.file("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  FileDescriptor guard(fd);
  MemoryMap map = MemoryMap::private_copy_on_write(fd, 10000);
  const volatile char* p = static_cast<const char*>(map.data());
  EXPECT_EQ(p[0], 'a');
  map.replace_with_zero_pages();
  EXPECT_EQ(map.data(), p);
  for (size_t i = 0; i < 10000; i += 997) EXPECT_EQ(p[i], 0) << i;
  EXPECT_EQ(p[9999], 0);
  EXPECT_EQ(dir.read_file("f"), std::string(10000, 'a'));
  MemoryMap empty;
  EXPECT_NO_THROW(empty.replace_with_zero_pages());
}

TEST(MemoryMap, EmptyMappingIsRefused) {
  int fd = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  FileDescriptor guard(fd);
  EXPECT_INVALID(MemoryMap::private_copy_on_write(fd, 0));
  EXPECT_INVALID(MemoryMap::shared_writable(fd, 0));
}

TEST(MemoryMap, BadDescriptorIsASystemError) {
  EXPECT_SHMR_ERROR(shmr::ErrorKind::System, MemoryMap::private_copy_on_write(-1, 4096));
}

TEST(MemoryMap, AddressSpaceRefusalIsItsOwnError) {
  // The glue collects garbage and tries again on this error alone: another
  // failure (a bad descriptor) is not it.
  TempDir dir;
  dir.write_file("f", std::string(8192, 'a'));
  const std::string path = dir.file("f");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    struct rlimit none = {0, 0};
    if (fd < 0 || ::setrlimit(RLIMIT_AS, &none) != 0) ::_exit(3);
    try {
      MemoryMap map = MemoryMap::private_copy_on_write(fd, 8192);
      ::_exit(1);
    } catch (const shmr::AddressSpaceRefused& e) {
      ::_exit(std::strstr(e.what(), "ulimit -v") != nullptr ? 0 : 2);
    } catch (...) {
      ::_exit(4);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  try {
    MemoryMap::private_copy_on_write(-1, 4096);
    ADD_FAILURE() << "a bad descriptor was mapped";
  } catch (const shmr::AddressSpaceRefused&) {
    ADD_FAILURE() << "a bad descriptor is not an address-space refusal";
  } catch (const shmr::Error&) {
  }
}

TEST(RegionFile, Paths) {
  EXPECT_EQ(shmr::region_path("/dev/shm", "shmr_x"), "/dev/shm/shmr_x");
  const char* saved = std::getenv("SHMR_SHM_DIR");
  std::string saved_value = saved ? saved : "";
  ::unsetenv("SHMR_SHM_DIR");
  EXPECT_EQ(shmr::default_shm_directory(), "/dev/shm");
  ::setenv("SHMR_SHM_DIR", "", 1);
  EXPECT_EQ(shmr::default_shm_directory(), "/dev/shm");
  ::setenv("SHMR_SHM_DIR", "/tmp/elsewhere", 1);
  EXPECT_EQ(shmr::default_shm_directory(), "/tmp/elsewhere");
  if (saved)
    ::setenv("SHMR_SHM_DIR", saved_value.c_str(), 1);
  else
    ::unsetenv("SHMR_SHM_DIR");
}

TEST(PendingRegion, CreatesAPrivateTemporaryFile) {
  TempDir dir;
  const std::string name = "shmr_pending";
  PendingRegion pending(dir.path(), name, 4096);
  ASSERT_NE(pending.data(), nullptr);
  EXPECT_EQ(pending.size(), 4096u);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{temp_name_for(name)});
  struct stat st;
  ASSERT_EQ(::lstat(dir.file(temp_name_for(name)).c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 4096);
  EXPECT_EQ(st.st_uid, ::geteuid());
  // Space is reserved up front, not on first touch.
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, 4096u);
  // Fresh pages read as zeros, and writes go to the file.
  const unsigned char* bytes = static_cast<const unsigned char*>(pending.data());
  for (size_t i = 0; i < 4096; ++i) ASSERT_EQ(bytes[i], 0) << i;
  std::memcpy(pending.data(), "hello", 5);
  EXPECT_EQ(dir.read_file(temp_name_for(name)).substr(0, 5), "hello");
  EXPECT_FALSE(dir.exists(name));
}

TEST(PendingRegion, ModeIgnoresPermissiveUmask) {
  TempDir dir;
  mode_t old = ::umask(0);
  {
    PendingRegion pending(dir.path(), "shmr_umask", 64);
    struct stat st;
    ASSERT_EQ(::lstat(dir.file(temp_name_for("shmr_umask")).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
  }
  ::umask(old);
}

TEST(PendingRegion, UnpublishedLeavesNothingBehind) {
  TempDir dir;
  {
    PendingRegion pending(dir.path(), "shmr_abandoned", 8192);
    std::memset(pending.data(), 0x11, 8192);
    EXPECT_EQ(dir.entries().size(), 1u);
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(PendingRegion, AnAbandonedOneLeavesAlonePathTakenSince) {
  // A copy abandoned and not yet destroyed (its R handle waits for the
  // garbage collector); the same process copies the same region again under
  // the same temporary name, after removing the stale file.
  TempDir dir;
  const std::string name = "shmr_retried";
  auto abandoned = std::make_unique<PendingRegion>(dir.path(), name, 4096);
  ASSERT_EQ(::unlink(dir.file(temp_name_for(name)).c_str()), 0);
  PendingRegion retry(dir.path(), name, 4096);
  std::memcpy(retry.data(), "retry", 5);
  abandoned.reset();
  ASSERT_TRUE(dir.exists(temp_name_for(name)));
  EXPECT_EQ(dir.read_file(temp_name_for(name)).substr(0, 5), "retry");
}

TEST(PendingRegion, PublishMakesTheNameVisible) {
  TempDir dir;
  const std::string name = "shmr_published";
  FileDescriptor fd;
  {
    PendingRegion pending(dir.path(), name, 4096);
    std::memcpy(pending.data(), "region bytes", 12);
    fd = pending.publish();
    EXPECT_GE(fd.get(), 0);
    EXPECT_EQ(dir.entries(), std::vector<std::string>{name});
  }
  // Still there after the PendingRegion is gone.
  EXPECT_EQ(dir.entries(), std::vector<std::string>{name});
  std::string content = dir.read_file(name);
  EXPECT_EQ(content.size(), 4096u);
  EXPECT_EQ(content.substr(0, 12), "region bytes");
  struct stat st;
  ASSERT_EQ(::lstat(dir.file(name).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_nlink, 1u);
  // The returned descriptor is the published file.
  struct stat fst;
  ASSERT_EQ(::fstat(fd.get(), &fst), 0);
  EXPECT_EQ(fst.st_ino, st.st_ino);
}

TEST(PendingRegion, PublishOverAnExistingNameFails) {
  TempDir dir;
  const std::string name = "shmr_taken";
  {
    PendingRegion first(dir.path(), name, 64);
    std::memcpy(first.data(), "first", 5);
    first.publish();
  }
  {
    PendingRegion second(dir.path(), name, 128);
    std::memcpy(second.data(), "second", 6);
    EXPECT_SHMR_ERROR(shmr::ErrorKind::AlreadyExists, second.publish());
  }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{name});
  std::string content = dir.read_file(name);
  EXPECT_EQ(content.size(), 64u);
  EXPECT_EQ(content.substr(0, 5), "first");

  // Not even a non-region file is replaced.
  dir.write_file("shmr_plain", "plain");
  {
    PendingRegion third(dir.path(), "shmr_plain", 64);
    EXPECT_SHMR_ERROR(shmr::ErrorKind::AlreadyExists, third.publish());
  }
  EXPECT_EQ(dir.read_file("shmr_plain"), "plain");
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"shmr_plain", name}));
}

TEST(PendingRegion, InvalidNameCreatesNothing) {
  TempDir dir;
  for (const char* bad : {"", "shmr_", "../shmr_x", "shmr_a/b", "x", "shmr_\xc3\xa9"})
    EXPECT_INVALID(PendingRegion(dir.path(), bad, 64));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(PendingRegion, MissingDirectoryIsASystemError) {
  TempDir dir;
  EXPECT_SHMR_ERROR(shmr::ErrorKind::System,
                    PendingRegion(dir.file("does_not_exist"), "shmr_x", 64));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(PendingRegion, ZeroSizeFailsWithoutLeavingAFile) {
  TempDir dir;
  try {
    PendingRegion pending(dir.path(), "shmr_empty", 0);
    ADD_FAILURE() << "a region of 0 bytes was created";
  } catch (const shmr::Error& e) {
    EXPECT_NE(e.kind(), shmr::ErrorKind::Corrupt) << e.what();
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(PendingRegion, DoesNotFollowAPlantedSymlinkAtItsTemporaryName) {
  TempDir dir;
  const std::string name = "shmr_planted";
  dir.write_file("target", "precious");
  ASSERT_EQ(::symlink(dir.file("target").c_str(), dir.file(temp_name_for(name)).c_str()), 0);
  EXPECT_SHMR_ERROR(shmr::ErrorKind::System, PendingRegion(dir.path(), name, 64));
  EXPECT_EQ(dir.read_file("target"), "precious");
  EXPECT_TRUE(dir.exists(temp_name_for(name)));  // someone else's file: left alone
}

TEST(PendingRegion, FileSizeLimitIsNoSpace) {
  TempDir dir;
  // RLIMIT_FSIZE in a forked child: posix_fallocate beyond it fails with
  // EFBIG (SIGXFSZ is ignored so the child is not killed).
  int code = run_in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {64 * 1024, 64 * 1024};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
    try {
      PendingRegion pending(dir.path(), "shmr_too_big", 16 * 1024 * 1024);
      return 11;  // no error
    } catch (const shmr::Error& e) {
      if (e.kind() != shmr::ErrorKind::NoSpace) return 12;
    }
    // Below the limit still works.
    try {
      PendingRegion pending(dir.path(), "shmr_small", 4096);
      pending.publish();
    } catch (...) {
      return 13;
    }
    return 0;
  });
  EXPECT_EQ(code, 0) << "10: setrlimit failed, 11: no error, 12: wrong error kind, "
                        "13: small region failed";
  // The failed region left no temporary file behind.
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"shmr_small"});
}

TEST(PendingRegion, FileSizeLimitIsNoSpaceWithSigxfszLeftToItsDefault) {
  TempDir dir;
  // R leaves SIGXFSZ at its default action, which ends the process when a
  // file is sized past the limit: the size is compared before.
  int code = run_in_child([&] {
    ::signal(SIGXFSZ, SIG_DFL);
    struct rlimit limit = {64 * 1024, 64 * 1024};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
    try {
      PendingRegion pending(dir.path(), "shmr_too_big", 16 * 1024 * 1024);
      return 11;
    } catch (const shmr::Error& e) {
      if (e.kind() != shmr::ErrorKind::NoSpace) return 12;
      if (std::string(e.what()).find("ulimit -f") == std::string::npos) return 13;
    }
    return 0;
  });
  EXPECT_EQ(code, 0) << "10: setrlimit failed, 11: no error, 12: wrong error kind, "
                        "13: the message does not name the limit; else killed by SIGXFSZ";
  EXPECT_TRUE(dir.entries().empty());
}

TEST(OpenRegion, OpensAnExistingRegionReadOnly) {
  TempDir dir;
  {
    PendingRegion pending(dir.path(), "shmr_open", 4096);
    std::memcpy(pending.data(), "abc", 3);
    pending.publish();
  }
  shmr::OpenedRegion opened = shmr::open_region(dir.path(), "shmr_open");
  EXPECT_EQ(opened.size, 4096u);
  ASSERT_GE(opened.fd.get(), 0);
  char buf[3];
  EXPECT_EQ(::pread(opened.fd.get(), buf, 3, 0), 3);
  EXPECT_EQ(std::string(buf, 3), "abc");
  EXPECT_EQ(::write(opened.fd.get(), "x", 1), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_NE(::fcntl(opened.fd.get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST(OpenRegion, MissingIsNotFound) {
  TempDir dir;
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::open_region(dir.path(), "shmr_missing"));
}

TEST(OpenRegion, SymlinkIsCorrupt) {
  TempDir dir;
  dir.write_file("shmr_real", std::string(256, 'r'));
  ASSERT_EQ(::symlink(dir.file("shmr_real").c_str(), dir.file("shmr_link").c_str()), 0);
  EXPECT_CORRUPT(shmr::open_region(dir.path(), "shmr_link"));
  // A dangling link, too.
  ASSERT_EQ(::symlink(dir.file("nowhere").c_str(), dir.file("shmr_dangling").c_str()), 0);
  EXPECT_CORRUPT(shmr::open_region(dir.path(), "shmr_dangling"));
}

TEST(OpenRegion, DirectoryIsCorrupt) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.file("shmr_dir").c_str(), 0700), 0);
  EXPECT_CORRUPT(shmr::open_region(dir.path(), "shmr_dir"));
}

TEST(OpenRegion, FifoIsCorruptAndDoesNotBlock) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("shmr_fifo").c_str(), 0600), 0);
  // In a child with an alarm: opening a FIFO for reading blocks until a
  // writer appears, which would hang whoever opens this "region".
  int code = run_in_child(
      [&] {
        try {
          shmr::open_region(dir.path(), "shmr_fifo");
        } catch (const shmr::Error& e) {
          return e.kind() == shmr::ErrorKind::Corrupt ? 0 : 2;
        }
        return 1;
      },
      5);
  EXPECT_EQ(code, 0) << "1: opened, 2: wrong error kind, 1014: blocked until SIGALRM";
}

TEST(OpenRegion, AnotherUsersFileIsCorrupt) {
  TempDir dir;
  dir.write_file("shmr_foreign", std::string(256, 'f'));
  if (::chown(dir.file("shmr_foreign").c_str(), 65534, 65534) != 0)
    GTEST_SKIP() << "cannot chown (not running as root): " << std::strerror(errno);
  EXPECT_CORRUPT(shmr::open_region(dir.path(), "shmr_foreign"));
}

TEST(UnlinkRegion, RemovesOnlyValidNames) {
  TempDir dir;
  dir.write_file("shmr_gone", "x");
  EXPECT_TRUE(shmr::unlink_region(dir.path(), "shmr_gone"));
  EXPECT_FALSE(dir.exists("shmr_gone"));
  EXPECT_FALSE(shmr::unlink_region(dir.path(), "shmr_gone"));

  // Names that are not region names are never unlinked, even if they exist.
  ASSERT_EQ(::mkdir(dir.file("sub").c_str(), 0700), 0);
  dir.write_file("sub/shmr_deep", "x");
  dir.write_file("other", "x");
  EXPECT_FALSE(shmr::unlink_region(dir.path(), "other"));
  EXPECT_FALSE(shmr::unlink_region(dir.path(), "sub/shmr_deep"));
  EXPECT_TRUE(dir.exists("other"));
  EXPECT_TRUE(dir.exists("sub/shmr_deep"));
  ::unlink(dir.file("sub/shmr_deep").c_str());
}

TEST(UnlinkRegion, MappingsSurviveUnlink) {
  TempDir dir;
  FileDescriptor fd;
  {
    PendingRegion pending(dir.path(), "shmr_kept", 4096);
    std::memcpy(pending.data(), "still here", 10);
    fd = pending.publish();
  }
  MemoryMap map = MemoryMap::private_copy_on_write(fd.get(), 4096);
  EXPECT_TRUE(shmr::unlink_region(dir.path(), "shmr_kept"));
  EXPECT_TRUE(dir.entries().empty());
  EXPECT_EQ(std::string(static_cast<const char*>(map.data()), 10), "still here");
}
