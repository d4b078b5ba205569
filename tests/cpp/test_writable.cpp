// Writable regions (shared, read-write mappings) and read-only regions
// (copy-on-write mappings), for both backings.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backing_test_util.h"
#include "listing.h"
#include "store.h"

using shmr::Access;
using shmr::Backing;
using shmr_test::TempDir;
using namespace shmr_backing_test;

namespace {

// The shm and data directories of one test, and options for either backing.
struct Dirs {
  TempDir shm, data;
  shmr::CreateOptions options(Backing backing, std::string name, bool writable) const {
    return backing == Backing::Shm ? shm_options(shm, std::move(name), false, writable)
                                   : file_options(shm, data, std::move(name), false, writable);
  }
  // Where the region's bytes are.
  const TempDir& data_dir(Backing backing) const { return backing == Backing::Shm ? shm : data; }
};

class Writable : public ::testing::TestWithParam<Backing> {};

std::string backing_label(const ::testing::TestParamInfo<Backing>& info) {
  return info.param == Backing::Shm ? "Shm" : "File";
}

}  // namespace

TEST_P(Writable, MappingsShareWritesWithEachOtherAndTheFile) {
  const Backing backing = GetParam();
  Dirs dirs;
  Sample sample;
  const std::string name = "shmr_writable";
  auto created = shmr::create_region(sample.description, dirs.options(backing, name, true));
  EXPECT_EQ(created->access(), Access::SharedWritable);
  EXPECT_EQ(created->location().backing, backing);
  EXPECT_EQ(created->reader().header().flags & shmr::format::kFlagReadonly, 0u);
  const TempDir& where = dirs.data_dir(backing);
  const uint64_t offset = values_offset(*created);

  auto other = shmr::open_mapped_region(dirs.shm.path(), name);
  EXPECT_EQ(other->access(), Access::SharedWritable) << "the header says writable";
  EXPECT_NE(other->map().data(), created->map().data());

  poke_first_value(*created, -1.25);
  EXPECT_EQ(read_values(*other), (std::vector<double>{-1.25, 2.5, 3.5}));
  EXPECT_EQ(first_value_in_file(where.read_file(name), offset), -1.25);

  poke_first_value(*other, 42.0);
  EXPECT_EQ(read_values(*created), (std::vector<double>{42.0, 2.5, 3.5}));
  EXPECT_EQ(first_value_in_file(where.read_file(name), offset), 42.0);

  // A mapping opened now starts from the written bytes.
  EXPECT_EQ(read_values(*shmr::open_mapped_region(dirs.shm.path(), name)),
            (std::vector<double>{42.0, 2.5, 3.5}));

  auto list = shmr::list_regions(dirs.shm.path());
  ASSERT_NE(find(list, name), nullptr);
  EXPECT_TRUE(find(list, name)->writable);
  EXPECT_EQ(find(list, name)->backing, backing);
}

TEST_P(Writable, WritesReachOtherProcesses) {
  const Backing backing = GetParam();
  Dirs dirs;
  Sample sample;
  const std::string name = "shmr_writable_shared";
  auto created = shmr::create_region(sample.description, dirs.options(backing, name, true));
  int code = shmr_test::run_in_child([&] {
    auto mine = shmr::open_mapped_region(dirs.shm.path(), name);
    if (mine->access() != Access::SharedWritable) return 3;
    poke_first_value(*mine, 7.75);
    return 0;
  });
  ASSERT_EQ(code, 0);
  EXPECT_EQ(read_values(*created), (std::vector<double>{7.75, 2.5, 3.5}));
  EXPECT_EQ(first_value_in_file(dirs.data_dir(backing).read_file(name), values_offset(*created)),
            7.75);
}

TEST_P(Writable, ReadOnlyRegionWritesStayPrivate) {
  const Backing backing = GetParam();
  Dirs dirs;
  Sample sample;
  const std::string name = "shmr_readonly";
  auto created = shmr::create_region(sample.description, dirs.options(backing, name, false));
  EXPECT_EQ(created->access(), Access::CopyOnWrite);
  EXPECT_NE(created->reader().header().flags & shmr::format::kFlagReadonly, 0u);
  const TempDir& where = dirs.data_dir(backing);
  const std::string file_before = where.read_file(name);
  auto other = shmr::open_mapped_region(dirs.shm.path(), name);
  EXPECT_EQ(other->access(), Access::CopyOnWrite);

  poke_first_value(*created, -5.0);
  EXPECT_EQ(read_values(*created), (std::vector<double>{-5.0, 2.5, 3.5}));
  EXPECT_EQ(read_values(*other), sample.values);
  EXPECT_EQ(where.read_file(name), file_before);

  poke_first_value(*other, -6.0);
  EXPECT_EQ(read_values(*created), (std::vector<double>{-5.0, 2.5, 3.5}));
  EXPECT_EQ(where.read_file(name), file_before);
  EXPECT_EQ(read_values(*shmr::open_mapped_region(dirs.shm.path(), name)), sample.values);

  auto list = shmr::list_regions(dirs.shm.path());
  ASSERT_NE(find(list, name), nullptr);
  EXPECT_FALSE(find(list, name)->writable);
}

TEST_P(Writable, SharedReadOnlyAccessSeesWritesAndCannotWrite) {
  const Backing backing = GetParam();
  Dirs dirs;
  Sample sample;
  const std::string name = "shmr_watch";
  auto created = shmr::create_region(sample.description, dirs.options(backing, name, true));
  auto watcher = shmr::open_mapped_region(dirs.shm.path(), name, Access::SharedReadOnly);
  EXPECT_EQ(watcher->access(), Access::SharedReadOnly);
  poke_first_value(*created, 9.5);
  EXPECT_EQ(read_values(*watcher), (std::vector<double>{9.5, 2.5, 3.5}));

  // A write through the read-only mapping faults (in a child, which leaves
  // through its own SIGSEGV/SIGBUS handler).
  int code = shmr_test::run_in_child([&] {
    struct sigaction action {};
    action.sa_handler = [](int) { ::_exit(42); };
    ::sigaction(SIGSEGV, &action, nullptr);
    ::sigaction(SIGBUS, &action, nullptr);
    poke_first_value(*watcher, 1.0);
    return 0;
  });
  EXPECT_EQ(code, 42) << "0: the write went through";
  EXPECT_EQ(read_values(*created), (std::vector<double>{9.5, 2.5, 3.5}));

  // A read-only region can be watched the same way.
  auto readonly = shmr::create_region(sample.description,
                                      dirs.options(backing, "shmr_watch_ro", false));
  auto ro_watcher =
      shmr::open_mapped_region(dirs.shm.path(), "shmr_watch_ro", Access::SharedReadOnly);
  EXPECT_EQ(read_values(*ro_watcher), sample.values);
}

INSTANTIATE_TEST_SUITE_P(Backings, Writable, ::testing::Values(Backing::Shm, Backing::File),
                         backing_label);
