// Hand-made and damaged locators: a locator never leads to a file of another
// name, and a corrupt one is reported as Corrupt, listed, and never pruned.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backing_test_util.h"
#include "listing.h"
#include "locator.h"
#include "store.h"

using shmr::Backing;
using shmr_test::TempDir;
using namespace shmr_backing_test;

namespace {

// A persistent region named `name` in `dir` whose creator is this process,
// for locators to point at.
void make_region(const TempDir& dir, const std::string& name) {
  Sample sample;
  shmr::create_region(sample.description, shm_options(dir, name, true));
}

struct HostileCase {
  const char* label;
  std::string bytes;
};

}  // namespace

TEST(LocatorHostile, HandMadeLocatorToARegionOfTheSameName) {
  // The positive control for the cases below: a well-formed locator written
  // by hand works, wherever the data file is.
  TempDir shm, data;
  Sample sample;
  make_region(data, "shmr_elsewhere");
  shm.write_file("shmr_elsewhere", locator_bytes({data.file("shmr_elsewhere"), 1, 0}));
  shmr::RegionLocation where = shmr::locate_region(shm.path(), "shmr_elsewhere");
  EXPECT_EQ(where.backing, Backing::File);
  EXPECT_EQ(where.data_directory, data.path());
  auto opened = shmr::open_mapped_region(shm.path(), "shmr_elsewhere");
  EXPECT_EQ(read_values(*opened), sample.values);
  EXPECT_FALSE(opened->is_owner());
  // A locator whose target lies directly under the root directory.
  shm.write_file("shmr_at_root", locator_bytes({"/shmr_at_root", 1, 0}));
  where = shmr::locate_region(shm.path(), "shmr_at_root");
  EXPECT_EQ(where.data_directory, "/");
  // Trailing bytes after the path are ignored.
  shm.write_file("shmr_trailing",
                 locator_bytes({data.file("shmr_trailing"), 1, 0}) + std::string(100, 'x'));
  EXPECT_EQ(shmr::locate_region(shm.path(), "shmr_trailing").data_path(),
            data.file("shmr_trailing"));
  // A path of exactly the maximum length is accepted.
  std::string longest = data.path() + "/";
  longest += std::string(shmr::kMaxLocatorPath - longest.size() - std::strlen("/shmr_long"), 'd');
  longest += "/shmr_long";
  ASSERT_EQ(longest.size(), shmr::kMaxLocatorPath);
  shm.write_file("shmr_long", locator_bytes({longest, 1, 0}));
  EXPECT_EQ(shmr::locate_region(shm.path(), "shmr_long").data_path(), longest);
  EXPECT_EQ(shmr::remove_region(data.path(), "shmr_elsewhere"), shmr::RemovalByName::Removed);
}

TEST(LocatorHostile, CorruptLocatorsAreCorrupt) {
  TempDir shm, data;
  const std::string name = "shmr_hostile";
  // A real region under another name, which no locator for `name` may reach.
  make_region(data, "shmr_other");
  const int64_t dead = dead_pid();
  auto spec = [&](std::string path) {
    LocatorSpec s;
    s.path = std::move(path);
    s.creator_pid = dead;
    return s;
  };
  std::vector<HostileCase> cases;
  cases.push_back({"other name", locator_bytes(spec(data.file("shmr_other")))});
  cases.push_back({"name as a directory", locator_bytes(spec(data.file(name) + "/shmr_other"))});
  cases.push_back({"name as a prefix", locator_bytes(spec(data.file(name) + "x"))});
  cases.push_back({"name as a suffix", locator_bytes(spec(data.path() + "/x" + name))});
  cases.push_back({"trailing slash", locator_bytes(spec(data.file(name) + "/"))});
  cases.push_back({"relative, bare name", locator_bytes(spec(name))});
  cases.push_back({"relative with directory", locator_bytes(spec("tmp/" + name))});
  cases.push_back({"empty path", locator_bytes(spec(""))});
  cases.push_back({"NUL in the directory",
                   locator_bytes(spec(data.path() + std::string("\0/", 2) + name))});
  cases.push_back({"NUL after the name", locator_bytes(spec(data.file(name) + std::string(1, '\0')))});
  {
    LocatorSpec s = spec(data.file(name));
    s.path_length = static_cast<int64_t>(s.path.size()) + 10;
    cases.push_back({"path truncated", locator_bytes(s)});
  }
  {
    std::string bytes = locator_bytes(spec(data.file(name)));
    cases.push_back({"path cut in half", bytes.substr(0, bytes.size() - 5)});
  }
  {
    std::string path = data.path() + "/" + std::string(5000, 'd') + "/" + name;
    cases.push_back({"path longer than 4096", locator_bytes(spec(path))});
    LocatorSpec s = spec(path.substr(path.size() - 4097));
    s.path[0] = '/';
    cases.push_back({"path of 4097 bytes", locator_bytes(s)});
  }
  {
    LocatorSpec s = spec(data.file(name));
    s.path_length = 0xFFFFFFFF;
    cases.push_back({"huge path length", locator_bytes(s)});
  }
  {
    LocatorSpec s = spec(data.file(name));
    s.version = 2;
    cases.push_back({"version 2", locator_bytes(s)});
  }
  {
    LocatorSpec s = spec(data.file(name));
    s.version = 0;
    cases.push_back({"version 0", locator_bytes(s)});
  }

  for (const HostileCase& c : cases) {
    SCOPED_TRACE(c.label);
    shm.write_file(name, c.bytes);
    EXPECT_CORRUPT(shmr::locate_region(shm.path(), name));
    EXPECT_CORRUPT(shmr::open_mapped_region(shm.path(), name));
    EXPECT_CORRUPT(shmr::open_mapped_region(shm.path(), name, shmr::Access::SharedWritable));
    auto list = shmr::list_regions(shm.path());
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].name, name);
    EXPECT_FALSE(list[0].valid);
    EXPECT_FALSE(list[0].creator_alive);
    EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
    EXPECT_EQ(shm.read_file(name), c.bytes);
    EXPECT_EQ(data.entries(), std::vector<std::string>{"shmr_other"});
  }
  // remove_region takes the corrupt locator, and only it.
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_EQ(data.entries(), std::vector<std::string>{"shmr_other"});
  EXPECT_EQ(shmr::remove_region(data.path(), "shmr_other"), shmr::RemovalByName::Removed);
}

TEST(LocatorHostile, TruncatedHeaderIsNotARegion) {
  // Shorter than a locator header: not taken for a locator, and not a
  // region either.
  TempDir shm;
  const std::string bytes = locator_bytes({"/tmp/shmr_short", 1, 0}).substr(0, 20);
  shm.write_file("shmr_short", bytes);
  EXPECT_CORRUPT(shmr::open_mapped_region(shm.path(), "shmr_short"));
  auto list = shmr::list_regions(shm.path());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_FALSE(list[0].valid);
  EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
  EXPECT_EQ(shm.read_file("shmr_short"), bytes);
}

TEST(LocatorHostile, TargetThatIsNotARegularFile) {
  TempDir shm, data;
  make_region(data, "shmr_real");
  // A symbolic link carrying the region's name, to a real region.
  ASSERT_EQ(::symlink(data.file("shmr_real").c_str(), data.file("shmr_symlink").c_str()), 0);
  shm.write_file("shmr_symlink", locator_bytes({data.file("shmr_symlink"), 1, 0}));
  EXPECT_EQ(shmr::locate_region(shm.path(), "shmr_symlink").backing, Backing::File);
  EXPECT_CORRUPT(shmr::open_mapped_region(shm.path(), "shmr_symlink"));
  // A FIFO: opening it must not block.
  ASSERT_EQ(::mkfifo(data.file("shmr_fifo").c_str(), 0600), 0);
  shm.write_file("shmr_fifo", locator_bytes({data.file("shmr_fifo"), 1, 0}));
  // A directory.
  ASSERT_EQ(::mkdir(data.file("shmr_dir").c_str(), 0700), 0);
  shm.write_file("shmr_dir", locator_bytes({data.file("shmr_dir"), 1, 0}));
  int code = shmr_test::run_in_child(
      [&] {
        for (const char* name : {"shmr_fifo", "shmr_dir"}) {
          try {
            shmr::open_mapped_region(shm.path(), name);
            return 1;
          } catch (const shmr::Error& e) {
            if (e.kind() != shmr::ErrorKind::Corrupt) return 2;
          }
        }
        if (shmr::list_regions(shm.path()).size() != 3) return 3;
        return 0;
      },
      5);
  EXPECT_EQ(code, 0) << "1: opened, 2: not Corrupt, 3: listing, 1014: blocked";
  // A missing target: NotFound.
  shm.write_file("shmr_gone", locator_bytes({data.file("shmr_gone"), 1, 0}));
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::open_mapped_region(shm.path(), "shmr_gone"));
  // A target that is garbage of the right name.
  data.write_file("shmr_junk", std::string(4096, 'j'));
  shm.write_file("shmr_junk", locator_bytes({data.file("shmr_junk"), 1, 0}));
  EXPECT_CORRUPT(shmr::open_mapped_region(shm.path(), "shmr_junk"));
  // The real region was never touched.
  EXPECT_EQ(shmr::remove_region(data.path(), "shmr_real"), shmr::RemovalByName::Removed);
}

TEST(LocatorHostile, PruneKeepsCorruptLocatorsButTakesDanglingOnes) {
  TempDir shm, data;
  const int64_t dead = dead_pid();
  LocatorSpec bad;
  bad.path = data.file("shmr_points_elsewhere");  // wrong name for the entry below
  bad.creator_pid = dead;
  shm.write_file("shmr_bad", locator_bytes(bad));
  LocatorSpec dangling;
  dangling.path = data.file("shmr_dangling");
  dangling.creator_pid = dead;
  shm.write_file("shmr_dangling", locator_bytes(dangling));
  data.write_file("shmr_points_elsewhere", "do not touch");

  auto list = shmr::list_regions(shm.path());
  ASSERT_EQ(list.size(), 2u);
  const shmr::RegionSummary* d = find(list, "shmr_dangling");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->backing, Backing::File);
  EXPECT_TRUE(d->valid);
  EXPECT_EQ(d->size, 0u);
  EXPECT_EQ(d->creator.pid, dead);
  EXPECT_FALSE(d->creator_alive);
  ASSERT_NE(find(list, "shmr_bad"), nullptr);
  EXPECT_FALSE(find(list, "shmr_bad")->valid);

  EXPECT_EQ(shmr::prune_regions(shm.path()), std::vector<std::string>{"shmr_dangling"});
  EXPECT_EQ(shm.entries(), std::vector<std::string>{"shmr_bad"});
  EXPECT_EQ(data.read_file("shmr_points_elsewhere"), "do not touch");
}
