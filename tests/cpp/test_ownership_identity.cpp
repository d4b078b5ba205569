// An owner removes only the files it created: when its region was removed
// and the name taken again (by another process, or by itself), releasing the
// old owner must leave the new region alone.
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backing_test_util.h"
#include "listing.h"
#include "ownership.h"
#include "store.h"

using shmr::Backing;
using shmr_test::TempDir;
using namespace shmr_backing_test;

namespace {

int64_t creator_of(const TempDir& shm, const std::string& name) {
  return shmr::open_mapped_region(shm.path(), name)->reader().header().creator_pid;
}

}  // namespace

TEST(FileIdentity, OfAPath) {
  TempDir dir;
  dir.write_file("a", "x");
  dir.write_file("b", "x");
  shmr::FileIdentity a = shmr::FileIdentity::of(dir.file("a"));
  EXPECT_NE(a.inode, 0u);
  EXPECT_TRUE(a == shmr::FileIdentity::of(dir.file("a")));
  EXPECT_FALSE(a == shmr::FileIdentity::of(dir.file("b")));
  ASSERT_EQ(::link(dir.file("a").c_str(), dir.file("c").c_str()), 0);
  EXPECT_TRUE(a == shmr::FileIdentity::of(dir.file("c"))) << "the file, not the name";
  EXPECT_TRUE(shmr::FileIdentity::of(dir.file("missing")) == shmr::FileIdentity{});
  // A symbolic link is a file of its own.
  ASSERT_EQ(::symlink(dir.file("a").c_str(), dir.file("l").c_str()), 0);
  EXPECT_FALSE(a == shmr::FileIdentity::of(dir.file("l")));
}

TEST(OwnerIdentity, ShmNameRetakenByAnotherProcess) {
  TempDir shm;
  Sample sample;
  const std::string name = "shmr_retaken";
  auto old_region = shmr::create_region(sample.description, shm_options(shm, name));
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  const pid_t child = create_in_dead_child(shm_options(shm, name, true));
  ASSERT_EQ(creator_of(shm, name), child);
  old_region.reset();  // the old owner's release
  ASSERT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(creator_of(shm, name), child);
  EXPECT_EQ(read_values(*shmr::open_mapped_region(shm.path(), name)), sample.values);
}

TEST(OwnerIdentity, ShmNameRetakenThenOldOwnerCloses) {
  TempDir shm;
  Sample sample;
  const std::string name = "shmr_retaken_close";
  auto old_region = shmr::create_region(sample.description, shm_options(shm, name));
  auto old_second = shmr::open_mapped_region(shm.path(), name);
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  const pid_t child = create_in_dead_child(shm_options(shm, name, true));
  old_region->close();
  old_second->close();
  shmr::release_all_owned_regions();
  ASSERT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(creator_of(shm, name), child);
}

TEST(OwnerIdentity, ShmNameRetakenByTheSameProcess) {
  TempDir shm;
  Sample sample;
  const std::string name = "shmr_retaken_here";
  auto old_region = shmr::create_region(sample.description, shm_options(shm, name));
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  auto new_region = shmr::create_region(sample.description, shm_options(shm, name));
  old_region.reset();
  ASSERT_EQ(shm.entries(), std::vector<std::string>{name});
  auto again = shmr::open_mapped_region(shm.path(), name);
  EXPECT_TRUE(again->is_owner());
  EXPECT_EQ(read_values(*again), sample.values);
  // The new owner still removes its own region.
  new_region.reset();
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name}) << "`again` shares the new claim";
  again.reset();
  EXPECT_TRUE(shm.entries().empty());
}

TEST(OwnerIdentity, FileNameRetakenByAnotherProcess) {
  TempDir shm, data;
  Sample sample;
  const std::string name = "shmr_file_retaken";
  auto old_region = shmr::create_region(sample.description, file_options(shm, data, name));
  const uint64_t old_locator = inode_of(shm.file(name));
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  const pid_t child = create_in_dead_child(file_options(shm, data, name, true));
  ASSERT_EQ(creator_of(shm, name), child);
  // Freed inode numbers are reused (ext4 does so readily): the new locator
  // may carry the old one's number, and must survive all the same.
  RecordProperty("locator_inode_reused", inode_of(shm.file(name)) == old_locator ? 1 : 0);
  old_region.reset();
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
  EXPECT_EQ(shmr::locate_region(shm.path(), name).backing, Backing::File);
  EXPECT_EQ(creator_of(shm, name), child);
}

TEST(OwnerIdentity, FileNameRetakenWithAnotherDataDirectory) {
  // The new data file goes to another file system (/dev/shm when there is
  // one), so the new locator is the first new file here and, on ext4, gets
  // the old locator's inode number. Our data file being gone, the old owner
  // must tell by the locator's target that it is not its own.
  TempDir shm, data;
  TempDir other_data(::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  ASSERT_FALSE(other_data.path().empty());
  Sample sample;
  const std::string name = "shmr_file_moved";
  auto old_region = shmr::create_region(sample.description, file_options(shm, data, name));
  const uint64_t old_locator = inode_of(shm.file(name));
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  shmr::CreateOptions o = file_options(shm, data, name, true);
  o.data_directory = other_data.path();
  const pid_t child = create_in_dead_child(o);
  RecordProperty("locator_inode_reused", inode_of(shm.file(name)) == old_locator ? 1 : 0);
  old_region.reset();
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_TRUE(data.entries().empty());
  EXPECT_EQ(other_data.entries(), std::vector<std::string>{name});
  EXPECT_EQ(shmr::locate_region(shm.path(), name).data_directory, other_data.path());
  EXPECT_EQ(creator_of(shm, name), child);
}

TEST(OwnerIdentity, FileNameRetakenInTheSameDataDirectory) {
  // A file removed just before the new region is created frees a lower inode
  // number than the old locator's: the new data file takes that one, and the
  // new locator (same target path as ours) the old locator's. Our data file
  // was replaced, so the locator is not ours.
  TempDir shm, data;
  Sample sample;
  const std::string name = "shmr_file_same_dir";
  shm.write_file("filler", "x");
  auto old_region = shmr::create_region(sample.description, file_options(shm, data, name));
  const uint64_t old_locator = inode_of(shm.file(name));
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  ASSERT_EQ(::unlink(shm.file("filler").c_str()), 0);
  const pid_t child = create_in_dead_child(file_options(shm, data, name, true));
  RecordProperty("locator_inode_reused", inode_of(shm.file(name)) == old_locator ? 1 : 0);
  old_region.reset();
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
  EXPECT_EQ(creator_of(shm, name), child);
}

TEST(OwnerIdentity, FileNameRetakenAsShmRegion) {
  TempDir shm, data;
  Sample sample;
  const std::string name = "shmr_file_then_shm";
  auto old_region = shmr::create_region(sample.description, file_options(shm, data, name));
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  const pid_t child = create_in_dead_child(shm_options(shm, name, true));
  old_region.reset();
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(shmr::locate_region(shm.path(), name).backing, Backing::Shm);
  EXPECT_EQ(creator_of(shm, name), child);
}

TEST(OwnerIdentity, FileNameRetakenByTheSameProcess) {
  TempDir shm, data;
  Sample sample;
  const std::string name = "shmr_file_retaken_here";
  auto old_region = shmr::create_region(sample.description, file_options(shm, data, name));
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  auto new_region = shmr::create_region(sample.description, file_options(shm, data, name));
  old_region.reset();
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
  EXPECT_EQ(read_values(*shmr::open_mapped_region(shm.path(), name)), sample.values);
  new_region.reset();
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

TEST(OwnerIdentity, ForeignFilesUnderTheOldNamesStay) {
  TempDir shm, data;
  Sample sample;
  const std::string name = "shmr_planted_after";
  auto old_region = shmr::create_region(sample.description, file_options(shm, data, name));
  // Someone removes both files by hand and puts other files there.
  ASSERT_EQ(::unlink(shm.file(name).c_str()), 0);
  ASSERT_EQ(::unlink(data.file(name).c_str()), 0);
  shm.write_file(name, "someone else's locator");
  data.write_file(name, "someone else's data");
  old_region.reset();
  EXPECT_EQ(shm.read_file(name), "someone else's locator");
  EXPECT_EQ(data.read_file(name), "someone else's data");
}

// A pool worker's reply names its caller: a region the worker made and
// sends by name becomes the caller's, and the worker no longer removes it.
TEST(OwnerHandOver, RegionSentToTheReplyRecipientBecomesItsOwn) {
  TempDir shm;
  Sample sample;
  shmr::process::Identity receiver = shmr::process::current();
  receiver.pid = static_cast<int64_t>(::getppid());
  auto handed = shmr::create_region(sample.description, shm_options(shm, "shmr_handed"));
  auto kept = shmr::create_region(sample.description, shm_options(shm, "shmr_kept_here"));
  auto persistent =
      shmr::create_region(sample.description, shm_options(shm, "shmr_persistent_here", true));
  kept->hand_over_for_sending();  // no recipient yet
  shmr::set_reply_recipient(receiver);
  handed->hand_over_for_sending();
  persistent->hand_over_for_sending();
  shmr::set_reply_recipient(shmr::process::Identity{});

  EXPECT_EQ(creator_of(shm, "shmr_handed"), receiver.pid);
  EXPECT_EQ(handed->creator_pid(), receiver.pid) << "the state it writes names the new creator";
  EXPECT_EQ(shmr::made_of(*handed).creator_pid, receiver.pid);
  EXPECT_EQ(creator_of(shm, "shmr_kept_here"), ::getpid());
  EXPECT_EQ(kept->creator_pid(), ::getpid());
  EXPECT_EQ(creator_of(shm, "shmr_persistent_here"), ::getpid());

  handed.reset();
  kept.reset();
  persistent.reset();
  shmr::release_all_owned_regions();
  EXPECT_EQ(sorted(shm.entries()),
            (std::vector<std::string>{"shmr_handed", "shmr_persistent_here"}))
      << "the handed region is the receiver's to remove; the other is removed by its creator";
}
