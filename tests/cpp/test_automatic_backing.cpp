// Automatic choice of the backing: has_room(), shm_capacity, a full shm file
// system, and the fallback to the file backing when shm turns out full.
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backing_test_util.h"
#include "store.h"

using shmr::Backing;
using shmr_test::TempDir;
using namespace shmr_backing_test;

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr int kCannotMount = 77;

uint64_t free_bytes(const std::string& directory) {
  struct statvfs st;
  if (::statvfs(directory.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

shmr::CreateOptions automatic(const TempDir& shm, const TempDir& data, uint64_t capacity,
                              std::string name = "") {
  shmr::CreateOptions o = file_options(shm, data, std::move(name));
  o.backing = Backing::Shm;  // ignored when automatic
  o.automatic = true;
  o.shm_capacity = capacity;
  return o;
}

bool write_proc(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// For a forked child: a private mount namespace (a user namespace mapping
// our own ids when we lack the privilege) with a tmpfs mounted over `path`.
// The mount is gone when the child exits; the parent never sees it.
bool mount_private_tmpfs(const std::string& path, const std::string& options) {
  if (::unshare(CLONE_NEWNS) != 0) {
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
    write_proc("/proc/self/setgroups", "deny");
    if (!write_proc("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1"))
      return false;
    if (!write_proc("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1"))
      return false;
  }
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  return ::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0;
}

// Without CAP_SYS_RESOURCE, root is held to quotas like everyone else.
bool drop_cap_sys_resource() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  const uint32_t bit = 1u << (CAP_SYS_RESOURCE % 32);
  data[CAP_SYS_RESOURCE / 32].effective &= ~bit;
  data[CAP_SYS_RESOURCE / 32].permitted &= ~bit;
  data[CAP_SYS_RESOURCE / 32].inheritable &= ~bit;
  return ::syscall(SYS_capset, &header, data) == 0;
}

bool has_temporary_files(const TempDir& dir) {
  for (const std::string& entry : dir.entries())
    if (entry.rfind(shmr::kTemporaryPrefix, 0) == 0) return true;
  return false;
}

}  // namespace

TEST(HasRoom, Margins) {
  TempDir dir;
  if (free_bytes(dir.path()) < 64 * kMiB) GTEST_SKIP() << "needs 64 MiB free in /tmp";
  // capacity caps the room: the margin is 5% of it, at least 1 MiB.
  const uint64_t small = 4 * kMiB;
  EXPECT_TRUE(shmr::has_room(dir.path(), small - kMiB, small));
  EXPECT_FALSE(shmr::has_room(dir.path(), small - kMiB + 1, small));
  EXPECT_TRUE(shmr::has_room(dir.path(), 0, kMiB));
  EXPECT_FALSE(shmr::has_room(dir.path(), 1, kMiB));
  EXPECT_FALSE(shmr::has_room(dir.path(), 0, kMiB - 1));
  EXPECT_FALSE(shmr::has_room(dir.path(), 0, 1));
  const uint64_t large = 40 * kMiB;  // margin 2 MiB
  EXPECT_TRUE(shmr::has_room(dir.path(), large - 2 * kMiB, large));
  EXPECT_FALSE(shmr::has_room(dir.path(), large - 2 * kMiB + 1, large));
  // More than there is never fits (and never wraps around).
  EXPECT_FALSE(shmr::has_room(dir.path(), large + 1, large));
  EXPECT_FALSE(shmr::has_room(dir.path(), UINT64_MAX, large));
  EXPECT_FALSE(shmr::has_room(dir.path(), UINT64_MAX, 0));
  // Without a cap, the file system's own free space counts.
  struct statvfs st;
  ASSERT_EQ(::statvfs(dir.path().c_str(), &st), 0);
  const uint64_t total = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  if (free_bytes(dir.path()) > total / 10 + 2 * kMiB) {
    EXPECT_TRUE(shmr::has_room(dir.path(), 4096, 0));
  }
  EXPECT_FALSE(shmr::has_room(dir.path(), free_bytes(dir.path()) + 1, 0));
  // No such directory: no room.
  EXPECT_FALSE(shmr::has_room(dir.file("missing"), 0, 0));
}

TEST(AutomaticBacking, TinyCapacityPicksTheFileBacking) {
  TempDir shm, data;
  Sample sample;
  auto created = shmr::create_region(sample.description, automatic(shm, data, 1));
  ASSERT_TRUE(created);
  EXPECT_EQ(created->location().backing, Backing::File);
  EXPECT_EQ(created->directory(), data.path());
  const std::string name = created->name();
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
  EXPECT_EQ(std::memcmp(shm.read_file(name).data(), shmr::kLocatorMagic, 8), 0);
  EXPECT_EQ(shmr::locate_region(shm.path(), name).backing, Backing::File);
  EXPECT_EQ(read_values(*shmr::open_mapped_region(shm.path(), name)), sample.values);
}

TEST(AutomaticBacking, NoCapacityAndRoomPicksShm) {
  TempDir shm, data;
  Sample sample;
  if (!shmr::has_room(shm.path(), sample.region_size(), 0)) GTEST_SKIP() << "/tmp is full";
  shmr::CreateOptions o = automatic(shm, data, 0);
  o.backing = Backing::File;  // ignored when automatic
  auto created = shmr::create_region(sample.description, o);
  EXPECT_EQ(created->location().backing, Backing::Shm);
  EXPECT_EQ(created->directory(), shm.path());
  EXPECT_EQ(shm.entries(), std::vector<std::string>{created->name()});
  EXPECT_TRUE(data.entries().empty());
  EXPECT_EQ(read_values(*created), sample.values);
}

TEST(AutomaticBacking, CapacityBoundary) {
  TempDir shm, data;
  Sample sample;
  const uint64_t size = sample.region_size();
  ASSERT_GT(size, 0u);
  if (free_bytes(shm.path()) < 64 * kMiB) GTEST_SKIP() << "needs 64 MiB free in /tmp";
  // Room for the region plus the 1 MiB margin: shm. One byte less: file.
  auto fits = shmr::create_region(sample.description,
                                  automatic(shm, data, size + kMiB, "shmr_fits"));
  EXPECT_EQ(fits->location().backing, Backing::Shm);
  auto spills = shmr::create_region(sample.description,
                                    automatic(shm, data, size + kMiB - 1, "shmr_spills"));
  EXPECT_EQ(spills->location().backing, Backing::File);
  EXPECT_EQ(data.entries(), std::vector<std::string>{"shmr_spills"});
  EXPECT_EQ(shm.entries(), sorted({"shmr_fits", "shmr_spills"}));
}

TEST(AutomaticBacking, FallbackNeedsADataDirectory) {
  TempDir shm, data;
  Sample sample;
  shmr::CreateOptions o = automatic(shm, data, 1, "shmr_nowhere");
  o.data_directory.clear();
  EXPECT_INVALID(shmr::create_region(sample.description, o));
  EXPECT_TRUE(shm.entries().empty());
}

TEST(AutomaticBacking, WritableAndPersistentCarryOverToTheFileBacking) {
  TempDir shm, data;
  Sample sample;
  shmr::CreateOptions o = automatic(shm, data, 1, "shmr_auto_rw");
  o.writable = true;
  o.persistent = true;
  {
    auto created = shmr::create_region(sample.description, o);
    EXPECT_EQ(created->location().backing, Backing::File);
    EXPECT_EQ(created->access(), shmr::Access::SharedWritable);
    poke_first_value(*created, 3.25);
  }
  EXPECT_EQ(shm.entries(), std::vector<std::string>{"shmr_auto_rw"}) << "persistent";
  auto opened = shmr::open_mapped_region(shm.path(), "shmr_auto_rw");
  EXPECT_EQ(opened->access(), shmr::Access::SharedWritable);
  EXPECT_EQ(read_values(*opened), (std::vector<double>{3.25, 2.5, 3.5}));
  EXPECT_EQ(shmr::remove_region(shm.path(), "shmr_auto_rw"), shmr::RemovalByName::Removed);
}

TEST(AutomaticBacking, FullShmFileSystemPicksTheFileBacking) {
  // A real, small shm file system (no capacity given): has_room() reads it
  // with statvfs and finds less than the 1 MiB margin.
  TempDir shm, data;
  const std::string name = "shmr_tiny_shm";
  int code = shmr_test::run_in_child([&] {
    if (!mount_private_tmpfs(shm.path(), "size=256k,mode=0700")) return kCannotMount;
    Sample sample;
    if (shmr::has_room(shm.path(), sample.region_size(), 0)) return 10;
    auto created = shmr::create_region(sample.description, automatic(shm, data, 0, name));
    if (created->location().backing != Backing::File) return 11;
    if (shm.entries() != std::vector<std::string>{name}) return 12;  // the locator
    if (read_values(*shmr::open_mapped_region(shm.path(), name)) != sample.values) return 13;
    std::_Exit(0);  // keep the data file for the parent to see
  });
  if (code == kCannotMount) GTEST_SKIP() << "cannot mount a private tmpfs here";
  EXPECT_EQ(code, 0) << "10: has_room said yes, 11: shm backing, 12: shm entries, 13: values";
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
  EXPECT_TRUE(shm.entries().empty()) << "the tmpfs (and the locator) went with the child";
}

TEST(AutomaticBacking, ShmOutOfInodesIsNoSpaceAndTriesTheFileBacking) {
  // statvfs shows plenty of bytes, but no inode is left: creating the region
  // fails with ENOSPC, which is NoSpace. Automatic mode then tries the file
  // backing, whose locator (published before the data file) needs an inode
  // too, so it fails as well, before any data file is written.
  TempDir shm, data;
  int code = shmr_test::run_in_child([&] {
    if (!mount_private_tmpfs(shm.path(), "size=64m,nr_inodes=1,mode=0700")) return kCannotMount;
    Sample sample;
    if (!shmr::has_room(shm.path(), sample.region_size(), 0)) return 10;
    try {
      shmr::create_region(sample.description, shm_options(shm, "shmr_no_inode"));
      return 11;
    } catch (const shmr::Error& e) {
      if (e.kind() != shmr::ErrorKind::NoSpace) return 12;
      // Refused its temporary file, in the shm directory.
      if (std::string(e.what()).find("not enough space in " + shm.path()) == std::string::npos)
        return 19;
    }
    int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (watch < 0 || ::inotify_add_watch(watch, data.path().c_str(), IN_CREATE) < 0) return 13;
    try {
      shmr::create_region(sample.description, automatic(shm, data, 0, "shmr_no_inode"));
      return 14;
    } catch (const shmr::Error& e) {
      if (e.kind() != shmr::ErrorKind::NoSpace) return 15;
    }
    char events[4096];
    if (::read(watch, events, sizeof events) > 0) return 16;  // a data file was written
    if (!data.entries().empty()) return 17;
    if (!shm.entries().empty()) return 18;
    return 0;
  });
  if (code == kCannotMount) GTEST_SKIP() << "cannot mount a private tmpfs here";
  EXPECT_EQ(code, 0) << "10: no room, 11/14: created, 12/15: not NoSpace, 13: inotify, "
                        "16: data file written, 17/18: files left behind, 19: message";
  EXPECT_TRUE(data.entries().empty());
}

TEST(AutomaticBacking, FallsBackToTheFileBackingWhenShmIsFull) {
  // has_room() must say yes and the shm file system must then refuse the
  // region, while a small locator still fits there. A per-user block quota
  // does exactly that (statvfs does not show it). RLIMIT_FSIZE cannot: it
  // applies to the data file as well. tmpfs quotas need CONFIG_TMPFS_QUOTA.
  TempDir shm, data;
  const std::string name = "shmr_over_quota";
  int code = shmr_test::run_in_child([&] {
    if (!mount_private_tmpfs(shm.path(),
                             "size=64m,mode=0700,usrquota,usrquota_block_hardlimit=256k"))
      return kCannotMount;
    if (!drop_cap_sys_resource()) return 9;
    Sample sample(64 * 1024);  // 512 KiB of doubles
    if (!shmr::has_room(shm.path(), sample.region_size(), 0)) return 10;
    try {
      shmr::create_region(sample.description, shm_options(shm, name));
      return 11;
    } catch (const shmr::Error& e) {
      if (e.kind() != shmr::ErrorKind::NoSpace) return 12;
    }
    if (!shm.entries().empty()) return 13;
    auto created = shmr::create_region(sample.description, automatic(shm, data, 0, name));
    if (created->location().backing != Backing::File) return 14;
    if (shm.entries() != std::vector<std::string>{name} || has_temporary_files(shm)) return 15;
    if (read_values(*shmr::open_mapped_region(shm.path(), name)) != sample.values) return 16;
    std::_Exit(0);
  });
  if (code == kCannotMount)
    GTEST_SKIP() << "cannot mount a tmpfs with a user quota here (CONFIG_TMPFS_QUOTA, "
                    "privileges); no other way makes shm full behind has_room()'s back";
  EXPECT_EQ(code, 0) << "9: capset, 10: no room, 11: shm region created over quota, "
                        "12: not NoSpace, 13: shm leftovers, 14: not file-backed, "
                        "15: shm entries, 16: values";
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
}

TEST(AutomaticBacking, PublishingNeedsNoInodeOfItsOwn) {
  // tmpfs counts each name as an inode. A region is published by renaming
  // its temporary file, which takes no inode: with one inode left, the
  // temporary file takes it and the region is published. (Publishing by
  // link(), as before, failed there with ENOSPC.)
  TempDir shm, data;
  int code = shmr_test::run_in_child([&] {
    // The root directory takes one inode, the temporary file the second.
    if (!mount_private_tmpfs(shm.path(), "size=64m,nr_inodes=2,mode=0700")) return kCannotMount;
    Sample sample;
    try {
      auto region = shmr::create_region(sample.description, shm_options(shm, "shmr_one_inode"));
      if (region->location().backing != shmr::Backing::Shm) return 10;
      // While it lives (its owner removes it when it goes).
      if (shm.entries() != std::vector<std::string>{"shmr_one_inode"}) return 12;
    } catch (const shmr::Error&) {
      return 11;
    }
    return 0;
  });
  if (code == kCannotMount) GTEST_SKIP() << "cannot mount a private tmpfs here";
  EXPECT_EQ(code, 0) << "10: not shm, 11: not created, 12: not exactly the region's name";
}
