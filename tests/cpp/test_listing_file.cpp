// list_regions() and prune_regions() for file-backed regions: locators are
// followed to their data files; regions of dead creators are pruned with both
// files; dangling locators go only when their creator is gone.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backing_test_util.h"
#include "listing.h"
#include "process.h"
#include "store.h"

using shmr::Backing;
using shmr::RegionSummary;
using shmr_test::TempDir;
using namespace shmr_backing_test;

TEST(ListingFile, LiveFileRegion) {
  TempDir shm, data;
  Sample sample;
  auto created = shmr::create_region(sample.description, file_options(shm, data, "shmr_listed"));
  auto list = shmr::list_regions(shm.path());
  ASSERT_EQ(list.size(), 1u);
  const RegionSummary& r = list[0];
  EXPECT_EQ(r.name, "shmr_listed");
  EXPECT_EQ(r.backing, Backing::File);
  EXPECT_EQ(r.data_path, data.file("shmr_listed"));
  EXPECT_EQ(r.size, created->map().size());
  EXPECT_NE(r.size, static_cast<uint64_t>(size_of(shm.file("shmr_listed")))) << "not the locator";
  EXPECT_TRUE(r.valid);
  EXPECT_FALSE(r.temporary);
  EXPECT_EQ(r.creator.pid, static_cast<int64_t>(::getpid()));
  EXPECT_EQ(r.creator.start_ticks, shmr::process::current().start_ticks);
  EXPECT_TRUE(r.creator_alive);
  EXPECT_FALSE(r.persistent);
  EXPECT_FALSE(r.writable);
  EXPECT_EQ(r.format_version, shmr::format::kVersion);
  EXPECT_EQ(r.original_class, "numeric");
  EXPECT_EQ(r.created_unix_ms, created->reader().header().created_unix_ms);
  // The data directory itself lists the data file as an shm-style region.
  auto in_data = shmr::list_regions(data.path());
  ASSERT_EQ(in_data.size(), 1u);
  EXPECT_EQ(in_data[0].backing, Backing::Shm);
  EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
  EXPECT_EQ(shm.entries().size(), 1u);
  EXPECT_EQ(data.entries().size(), 1u);
}

TEST(ListingFile, DeadCreatorsRegionIsListedAndPruned) {
  TempDir shm, data;
  const pid_t child = create_in_dead_child(file_options(shm, data, "shmr_file_orphan"));
  ASSERT_EQ(shm.entries(), std::vector<std::string>{"shmr_file_orphan"});
  ASSERT_EQ(data.entries(), std::vector<std::string>{"shmr_file_orphan"});
  auto list = shmr::list_regions(shm.path());
  ASSERT_EQ(list.size(), 1u);
  const RegionSummary& r = list[0];
  EXPECT_EQ(r.backing, Backing::File);
  EXPECT_EQ(r.data_path, data.file("shmr_file_orphan"));
  EXPECT_EQ(r.size, static_cast<uint64_t>(size_of(data.file("shmr_file_orphan"))));
  EXPECT_TRUE(r.valid);
  EXPECT_EQ(r.creator.pid, static_cast<int64_t>(child));
  EXPECT_NE(r.creator.start_ticks, 0u);
  EXPECT_FALSE(r.creator_alive);
  EXPECT_FALSE(r.persistent);

  EXPECT_EQ(shmr::prune_regions(shm.path()), std::vector<std::string>{"shmr_file_orphan"});
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
  EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
}

TEST(ListingFile, PruneMixesBackings) {
  TempDir shm, data;
  Sample sample;
  create_in_dead_child(file_options(shm, data, "shmr_dead_file"));
  create_in_dead_child(shm_options(shm, "shmr_dead_shm"));
  create_in_dead_child(file_options(shm, data, "shmr_dead_file_kept", true));
  auto live = shmr::create_region(sample.description, file_options(shm, data, "shmr_live_file"));
  EXPECT_EQ(sorted(shmr::prune_regions(shm.path())), sorted({"shmr_dead_file", "shmr_dead_shm"}));
  EXPECT_EQ(shm.entries(), sorted({"shmr_dead_file_kept", "shmr_live_file"}));
  EXPECT_EQ(data.entries(), sorted({"shmr_dead_file_kept", "shmr_live_file"}));
  EXPECT_EQ(read_values(*live), sample.values);
}

TEST(ListingFile, PruneOfOneCreatorLeavesOtherDeadCreatorsRegions) {
  TempDir shm, data;
  const pid_t first = create_in_dead_child(shm_options(shm, "shmr_dead_first"));
  const pid_t second = create_in_dead_child(file_options(shm, data, "shmr_dead_second"));
  const pid_t third = create_in_dead_child(shm_options(shm, "shmr_dead_third"));
  using Pids = std::set<int64_t>;
  EXPECT_TRUE(shmr::prune_regions(shm.path(), shmr::PruneScope::AllRegions, Pids{::getpid()}).empty());
  EXPECT_EQ(shmr::prune_regions(shm.path(), shmr::PruneScope::AllRegions, Pids{first}),
            std::vector<std::string>{"shmr_dead_first"});
  EXPECT_EQ(shm.entries(), sorted({"shmr_dead_second", "shmr_dead_third"}));
  // Several creators in one listing.
  EXPECT_EQ(sorted(shmr::prune_regions(shm.path(), shmr::PruneScope::AllRegions,
                                       Pids{second, third, ::getpid()})),
            sorted({"shmr_dead_second", "shmr_dead_third"}));
  EXPECT_TRUE(shm.entries().empty());
}

TEST(ListingFile, DanglingLocatorOfADeadCreatorIsPruned) {
  TempDir shm, data;
  const pid_t child = create_in_dead_child(file_options(shm, data, "shmr_dangling"));
  ASSERT_EQ(::unlink(data.file("shmr_dangling").c_str()), 0);
  auto list = shmr::list_regions(shm.path());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].backing, Backing::File);
  EXPECT_EQ(list[0].size, 0u);
  EXPECT_EQ(list[0].creator.pid, static_cast<int64_t>(child));
  EXPECT_FALSE(list[0].creator_alive);
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound,
                    shmr::open_mapped_region(shm.path(), "shmr_dangling"));
  EXPECT_EQ(shmr::prune_regions(shm.path()), std::vector<std::string>{"shmr_dangling"});
  EXPECT_TRUE(shm.entries().empty());
}

TEST(ListingFile, DanglingLocatorOfAPersistentRegionIsKept) {
  TempDir shm, data;
  create_in_dead_child(file_options(shm, data, "shmr_dangling_kept", true));
  ASSERT_EQ(::unlink(data.file("shmr_dangling_kept").c_str()), 0);
  auto list = shmr::list_regions(shm.path());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(list[0].persistent) << "from the locator's flags";
  EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
  EXPECT_EQ(shm.entries(), std::vector<std::string>{"shmr_dangling_kept"});
  EXPECT_EQ(shmr::remove_region(shm.path(), "shmr_dangling_kept"), shmr::RemovalByName::Removed);
  EXPECT_TRUE(shm.entries().empty());
}

TEST(ListingFile, DanglingLocatorOfALiveCreatorIsKept) {
  TempDir shm, data;
  Sample sample;
  auto created = shmr::create_region(sample.description, file_options(shm, data, "shmr_live_dangling"));
  ASSERT_EQ(::unlink(data.file("shmr_live_dangling").c_str()), 0);
  auto list = shmr::list_regions(shm.path());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(list[0].creator_alive);
  EXPECT_EQ(list[0].size, 0u);
  EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
  EXPECT_EQ(shm.entries(), std::vector<std::string>{"shmr_live_dangling"});
  // In another live process too: a child that holds its region until told.
  shmr_test::LiveChild child([&]() -> std::shared_ptr<void> {
    Sample mine;
    auto region = shmr::create_region(mine.description,
                                      file_options(shm, data, "shmr_child_dangling"));
    ::unlink(data.file("shmr_child_dangling").c_str());
    return region;
  });
  ASSERT_TRUE(child.ready());
  EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
  EXPECT_EQ(shm.entries(), sorted({"shmr_child_dangling", "shmr_live_dangling"}));
  child.release();
  EXPECT_EQ(shmr::prune_regions(shm.path()), std::vector<std::string>{"shmr_child_dangling"});
  EXPECT_EQ(shm.entries(), std::vector<std::string>{"shmr_live_dangling"});
  // Its owner still removes the locator.
  created.reset();
  EXPECT_TRUE(shm.entries().empty());
}

TEST(ListingFile, DataFileWithoutAValidHeader) {
  // The locator speaks for the region when its data file is not readable as
  // a region: listed as valid with the locator's creator, pruned when dead.
  TempDir shm, data;
  const pid_t child = create_in_dead_child(file_options(shm, data, "shmr_garbled"));
  data.write_file("shmr_garbled", std::string(256, 'g'));
  auto list = shmr::list_regions(shm.path());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(list[0].valid);
  EXPECT_EQ(list[0].size, 256u);
  EXPECT_EQ(list[0].creator.pid, static_cast<int64_t>(child));
  EXPECT_CORRUPT(shmr::open_mapped_region(shm.path(), "shmr_garbled"));
  EXPECT_EQ(shmr::prune_regions(shm.path()), std::vector<std::string>{"shmr_garbled"});
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

TEST(ListingFile, PruneLeavesOtherUsersDataFilesAlone) {
  // A dead creator's locator that leads to a data file of another user (root
  // could unlink it): prune must only remove files that belong to the caller.
  TempDir shm, data;
  create_in_dead_child(file_options(shm, data, "shmr_foreign_data"));
  if (::chown(data.file("shmr_foreign_data").c_str(), 65534, 65534) != 0)
    GTEST_SKIP() << "cannot chown (not running as root): " << std::strerror(errno);
  EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
  EXPECT_EQ(data.entries(), std::vector<std::string>{"shmr_foreign_data"});
  EXPECT_EQ(shm.entries(), std::vector<std::string>{"shmr_foreign_data"});
}

TEST(ListingFile, TemporaryLocatorOfADeadCreatorIsPruned) {
  TempDir shm;
  const int64_t dead = dead_pid();
  const std::string temp =
      std::string(shmr::kTemporaryPrefix) + std::to_string(dead) + "_shmr_half_locator";
  shm.write_file(temp, locator_bytes({"/tmp/shmr_half_locator", dead, 0}));
  auto list = shmr::list_regions(shm.path());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(list[0].temporary);
  EXPECT_EQ(shmr::prune_regions(shm.path()), std::vector<std::string>{temp});
  EXPECT_TRUE(shm.entries().empty());
}

namespace {

// The locator is published before the data file, so a creator killed while
// writing leaves the locator and a temporary data file next to where the
// data file would go. Made here by renaming a dead child's data file.
void leave_unfinished_file_region(const TempDir& shm, const TempDir& data, const std::string& name,
                                  bool persistent) {
  const pid_t child = create_in_dead_child(file_options(shm, data, name, persistent));
  const std::string temp = shmr::temporary_name(child, name);
  ASSERT_EQ(::rename(data.file(name).c_str(), data.file(temp).c_str()), 0);
}

}  // namespace

TEST(ListingFile, RegionKilledWhileWritingItsDataFileIsPruned) {
  for (bool persistent : {false, true}) {
    TempDir shm, data;
    const std::string name = "shmr_half_written";
    leave_unfinished_file_region(shm, data, name, persistent);
    auto list = shmr::list_regions(shm.path());
    ASSERT_EQ(list.size(), 1u);
    EXPECT_TRUE(list[0].valid);
    EXPECT_FALSE(list[0].complete);
    EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::open_mapped_region(shm.path(), name));
    // Even a persistent region goes: it was never finished.
    EXPECT_EQ(shmr::prune_regions(shm.path()), std::vector<std::string>{name})
        << "persistent " << persistent;
    EXPECT_TRUE(shm.entries().empty());
    EXPECT_TRUE(data.entries().empty());
  }
}

TEST(ListingFile, TemporaryDataFileOfAFinishedPersistentRegionGoesAlone) {
  // Killed between publishing the data file (link) and removing its
  // temporary name: the region is complete and persistent, so it stays.
  TempDir shm, data;
  const std::string name = "shmr_finished";
  const pid_t child = create_in_dead_child(file_options(shm, data, name, true));
  const std::string temp = shmr::temporary_name(child, name);
  ASSERT_EQ(::link(data.file(name).c_str(), data.file(temp).c_str()), 0);
  auto list = shmr::list_regions(shm.path());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(list[0].complete);
  EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  Sample sample;
  EXPECT_EQ(read_values(*shmr::open_mapped_region(shm.path(), name)), sample.values);
}

TEST(ListingFile, RemoveRegionTakesAnUnfinishedDataFileToo) {
  TempDir shm, data;
  const std::string name = "shmr_removed_half";
  leave_unfinished_file_region(shm, data, name, true);
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

TEST(ListingFile, TemporaryDataFileOfALiveCreatorIsKept) {
  // A live creator still writing: its locator and temporary data file stay.
  TempDir shm, data;
  Sample sample;
  const std::string name = "shmr_being_written";
  auto created = shmr::create_region(sample.description, file_options(shm, data, name));
  const std::string temp = shmr::temporary_name(::getpid(), name);
  ASSERT_EQ(::link(data.file(name).c_str(), data.file(temp).c_str()), 0);
  EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
  EXPECT_EQ(data.entries(), sorted({temp, name}));
  ASSERT_EQ(::unlink(data.file(temp).c_str()), 0);
}

// A prune lists the regions, then removes those of dead creators. Meanwhile
// another process may remove such a region (a second prune, remove_shared())
// and a live process take its name: the region under the name is then not
// the one judged, and stays. (Without the check, two prunes at the start of
// several sessions removed a live process's region that one of them had
// just made under a fixed name.)
TEST(ListingFile, PruneOfAStaleListingLeavesARegionThatTookTheName) {
  TempDir shm, data;
  Sample sample;
  create_in_dead_child(shm_options(shm, "shmr_taken_shm"));
  create_in_dead_child(file_options(shm, data, "shmr_taken_file"));
  create_in_dead_child(shm_options(shm, "shmr_still_dead"));
  const auto listed = shmr::list_regions(shm.path());
  ASSERT_EQ(listed.size(), 3u);
  for (const RegionSummary& r : listed) ASSERT_FALSE(r.creator_alive) << r.name;

  ASSERT_EQ(shmr::remove_region(shm.path(), "shmr_taken_shm"), shmr::RemovalByName::Removed);
  ASSERT_EQ(shmr::remove_region(shm.path(), "shmr_taken_file"), shmr::RemovalByName::Removed);
  auto live_shm = shmr::create_region(sample.description, shm_options(shm, "shmr_taken_shm"));
  auto live_file =
      shmr::create_region(sample.description, file_options(shm, data, "shmr_taken_file"));
  ASSERT_TRUE(live_shm && live_file);

  EXPECT_EQ(shmr::prune_listed_regions(shm.path(), listed),
            std::vector<std::string>{"shmr_still_dead"});
  EXPECT_EQ(shm.entries(), sorted({"shmr_taken_file", "shmr_taken_shm"}));
  EXPECT_EQ(data.entries(), std::vector<std::string>{"shmr_taken_file"});
  // Both are still this process's regions, mapped by name.
  auto listed_now = shmr::list_regions(shm.path());
  ASSERT_EQ(listed_now.size(), 2u);
  for (const RegionSummary& r : listed_now) EXPECT_TRUE(r.creator_alive) << r.name;
  EXPECT_EQ(read_values(*live_shm), sample.values);
  EXPECT_EQ(read_values(*live_file), sample.values);
}

// A file-backed region re-created under the same name and data path.
TEST(ListingFile, PruneOfAStaleListingKeepsAReplacedDataFile) {
  TempDir shm, data;
  Sample sample;
  create_in_dead_child(file_options(shm, data, "shmr_data_replaced"));
  const auto listed = shmr::list_regions(shm.path());
  ASSERT_EQ(listed.size(), 1u);
  ASSERT_EQ(shmr::remove_region(shm.path(), "shmr_data_replaced"), shmr::RemovalByName::Removed);
  auto live = shmr::create_region(sample.description, file_options(shm, data, "shmr_data_replaced"));
  ASSERT_TRUE(live);
  EXPECT_TRUE(shmr::prune_listed_regions(shm.path(), listed).empty());
  EXPECT_EQ(shm.entries(), std::vector<std::string>{"shmr_data_replaced"});
  EXPECT_EQ(data.entries(), std::vector<std::string>{"shmr_data_replaced"});
  EXPECT_EQ(read_values(*live), sample.values);
}

TEST(ListingFile, RegionFilePresentTellsByTheNameAlone) {
  TempDir shm;
  Sample sample;
  auto created = shmr::create_region(sample.description, shm_options(shm, "shmr_present"));
  EXPECT_TRUE(shmr::region_file_present(shm.path(), "shmr_present"));
  EXPECT_FALSE(shmr::region_file_present(shm.path(), "shmr_absent"));
  // Not a region name, a directory, a link: none is a region file.
  EXPECT_FALSE(shmr::region_file_present(shm.path(), "shmr_present/."));
  ASSERT_EQ(::mkdir(shm.file("shmr_a_directory").c_str(), 0700), 0);
  EXPECT_FALSE(shmr::region_file_present(shm.path(), "shmr_a_directory"));
  ASSERT_EQ(::symlink(shm.file("shmr_present").c_str(), shm.file("shmr_a_link").c_str()), 0);
  EXPECT_FALSE(shmr::region_file_present(shm.path(), "shmr_a_link"));
  // With every descriptor taken, where opening the region fails, the name
  // still tells it is there.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    struct rlimit few = {16, 16};
    if (::setrlimit(RLIMIT_NOFILE, &few) != 0) ::_exit(3);
    while (::open("/dev/null", O_RDONLY) >= 0) {
    }
    const bool descriptors_exhausted = errno == EMFILE;
    const bool present = shmr::region_file_present(shm.path(), "shmr_present");
    const bool absent = shmr::region_file_present(shm.path(), "shmr_absent");
    ::_exit(descriptors_exhausted && present && !absent ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}
