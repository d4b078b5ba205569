// The file backing: a data file in a directory of the user's choice plus a
// locator under the region's name in the shm directory. Round trip, name
// reservation across backings, ownership and removal.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backing_test_util.h"
#include "listing.h"
#include "locator.h"
#include "names.h"
#include "process.h"
#include "store.h"

using shmr::Backing;
using shmr_test::TempDir;
using namespace shmr_backing_test;

TEST(FileBacking, RoundTrip) {
  TempDir shm, data;
  Sample sample;
  auto created = shmr::create_region(sample.description, file_options(shm, data));
  ASSERT_TRUE(created);
  const std::string name = created->name();
  EXPECT_TRUE(shmr::names::is_valid_region_name(name)) << name;
  EXPECT_TRUE(created->is_owner());
  EXPECT_EQ(created->location().backing, Backing::File);
  EXPECT_EQ(created->location().shm_directory, shm.path());
  EXPECT_EQ(created->directory(), data.path());
  EXPECT_EQ(created->access(), shmr::Access::CopyOnWrite);
  EXPECT_EQ(read_values(*created), sample.values);

  // The shm directory holds only the locator; the data directory the region.
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
  EXPECT_EQ(mode_of(shm.file(name)), 0600);
  EXPECT_EQ(mode_of(data.file(name)), 0600);

  const std::string locator = shm.read_file(name);
  ASSERT_GE(locator.size(), sizeof(shmr::LocatorHeader));
  EXPECT_EQ(std::memcmp(locator.data(), shmr::kLocatorMagic, sizeof shmr::kLocatorMagic), 0);
  const shmr::LocatorHeader header = parse_locator_header(locator);
  EXPECT_EQ(header.version, shmr::kLocatorVersion);
  EXPECT_EQ(header.path_length, data.file(name).size());
  EXPECT_EQ(locator.size(), sizeof header + data.file(name).size());
  EXPECT_EQ(locator.substr(sizeof header), data.file(name));
  EXPECT_EQ(header.creator_pid, static_cast<int64_t>(::getpid()));
  EXPECT_EQ(header.creator_start_ticks, shmr::process::current().start_ticks);
  EXPECT_EQ(header.flags, created->reader().header().flags);
  EXPECT_NE(header.flags & shmr::format::kFlagReadonly, 0u);
  EXPECT_EQ(header.flags & shmr::format::kFlagPersistent, 0u);

  // The data file is the region, byte for byte what the creator mapped.
  const std::string bytes = data.read_file(name);
  ASSERT_EQ(bytes.size(), created->map().size());
  EXPECT_EQ(std::memcmp(bytes.data(), created->map().data(), bytes.size()), 0);
  EXPECT_EQ(std::memcmp(bytes.data(), shmr::format::kMagic, sizeof shmr::format::kMagic), 0);

  shmr::RegionLocation where = shmr::locate_region(shm.path(), name);
  EXPECT_EQ(where.backing, Backing::File);
  EXPECT_EQ(where.shm_directory, shm.path());
  EXPECT_EQ(where.data_directory, data.path());
  EXPECT_EQ(where.name, name);
  EXPECT_EQ(where.data_path(), data.file(name));
  EXPECT_EQ(where.name_path(), shm.file(name));

  auto opened = shmr::open_mapped_region(shm.path(), name);
  ASSERT_TRUE(opened);
  EXPECT_TRUE(opened->is_owner()) << "a later mapping in the creator shares the claim";
  EXPECT_EQ(opened->location().backing, Backing::File);
  EXPECT_EQ(opened->directory(), data.path());
  EXPECT_EQ(opened->access(), shmr::Access::CopyOnWrite);
  EXPECT_EQ(read_values(*opened), sample.values);
  EXPECT_EQ(opened->map().size(), created->map().size());
  shmr::NodeView root = opened->reader().node(1);
  ASSERT_EQ(root.attribute_count(), 1u);
  shmr::NodeView names = opened->reader().node(root.attribute_value(0));
  EXPECT_EQ(std::string(names.string_at(0).data, names.string_at(0).size), "a");
  EXPECT_NE(opened->map().data(), created->map().data());

  // The name is looked up in the shm directory, not the data directory.
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound,
                    shmr::open_mapped_region(shm.path(), "shmr_not_there"));
}

TEST(FileBacking, ShmRegionsLocateToTheirOwnDirectory) {
  TempDir shm;
  Sample sample;
  auto created = shmr::create_region(sample.description, shm_options(shm, "shmr_plain"));
  EXPECT_EQ(created->location().backing, Backing::Shm);
  shmr::RegionLocation where = shmr::locate_region(shm.path(), "shmr_plain");
  EXPECT_EQ(where.backing, Backing::Shm);
  EXPECT_EQ(where.data_directory, shm.path());
  EXPECT_EQ(where.data_path(), shm.file("shmr_plain"));
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::locate_region(shm.path(), "shmr_none"));
  EXPECT_INVALID(shmr::locate_region(shm.path(), "../shmr_plain"));
}

TEST(FileBacking, DataDirectoryMustBeAbsolute) {
  TempDir shm, data;
  Sample sample;
  shmr::CreateOptions o = file_options(shm, data, "shmr_rel");
  o.data_directory = "relative/dir";
  EXPECT_INVALID(shmr::create_region(sample.description, o));
  o.data_directory = "";
  EXPECT_INVALID(shmr::create_region(sample.description, o));
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

TEST(FileBacking, NameIsReservedAcrossBackings) {
  TempDir shm, data, other_data;
  Sample sample;
  const std::string name = "shmr_reserved";
  auto original = shmr::create_region(sample.description, file_options(shm, data, name));
  const std::string locator_before = shm.read_file(name);
  const std::string data_before = data.read_file(name);

  // Neither an shm region, nor a file region in another or the same data
  // directory, can take the name.
  EXPECT_SHMR_ERROR(shmr::ErrorKind::AlreadyExists,
                    shmr::create_region(sample.description, shm_options(shm, name)));
  EXPECT_SHMR_ERROR(shmr::ErrorKind::AlreadyExists,
                    shmr::create_region(sample.description, file_options(shm, other_data, name)));
  EXPECT_SHMR_ERROR(shmr::ErrorKind::AlreadyExists,
                    shmr::create_region(sample.description, file_options(shm, data, name)));
  // Also not as persistent or writable regions.
  EXPECT_SHMR_ERROR(
      shmr::ErrorKind::AlreadyExists,
      shmr::create_region(sample.description, file_options(shm, other_data, name, true, true)));

  // No stray data file, temporary file or locator anywhere.
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
  EXPECT_TRUE(other_data.entries().empty());
  EXPECT_EQ(shm.read_file(name), locator_before);
  EXPECT_EQ(data.read_file(name), data_before);
  EXPECT_EQ(read_values(*shmr::open_mapped_region(shm.path(), name)), sample.values);
  EXPECT_EQ(shmr::locate_region(shm.path(), name).data_directory, data.path());

  // The failed attempts released nothing of the original.
  original.reset();
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

TEST(FileBacking, ShmRegionNameIsReservedForFileRegions) {
  TempDir shm, data;
  Sample sample;
  const std::string name = "shmr_taken_by_shm";
  auto original = shmr::create_region(sample.description, shm_options(shm, name));
  const std::string before = shm.read_file(name);
  // The locator is published first and finds the name taken: no data file is
  // ever written.
  EXPECT_SHMR_ERROR(shmr::ErrorKind::AlreadyExists,
                    shmr::create_region(sample.description, file_options(shm, data, name)));
  EXPECT_TRUE(data.entries().empty());
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(shm.read_file(name), before);
  EXPECT_EQ(shmr::locate_region(shm.path(), name).backing, Backing::Shm);
  EXPECT_EQ(read_values(*shmr::open_mapped_region(shm.path(), name)), sample.values);
}

TEST(FileBacking, ForeignFileInTheDataDirectoryKeepsItsName) {
  TempDir shm, data;
  Sample sample;
  data.write_file("shmr_squatted", "not a region");
  EXPECT_SHMR_ERROR(shmr::ErrorKind::AlreadyExists,
                    shmr::create_region(sample.description, file_options(shm, data, "shmr_squatted")));
  EXPECT_EQ(data.read_file("shmr_squatted"), "not a region");
  EXPECT_EQ(data.entries(), std::vector<std::string>{"shmr_squatted"});
  EXPECT_TRUE(shm.entries().empty()) << "no locator for a region that was never created";
}

TEST(FileBacking, OwnerReleaseRemovesLocatorAndDataFile) {
  TempDir shm, data;
  Sample sample;
  auto created = shmr::create_region(sample.description, file_options(shm, data));
  const std::string name = created->name();
  auto second = shmr::open_mapped_region(shm.path(), name);
  created.reset();
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name}) << "the second mapping still owns it";
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
  second.reset();
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::open_mapped_region(shm.path(), name));
}

TEST(FileBacking, CloseRemovesBothFilesAndZeroesThePages) {
  TempDir shm, data;
  Sample sample;
  auto created = shmr::create_region(sample.description, file_options(shm, data));
  const std::string name = created->name();
  const volatile unsigned char* bytes = static_cast<const unsigned char*>(created->map().data());
  ASSERT_EQ(bytes[1], 'S');
  created->close();
  EXPECT_EQ(bytes[1], 0);
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

TEST(FileBacking, ReleaseAllOwnedRegionsRemovesFileRegions) {
  TempDir shm, data;
  Sample sample;
  auto created = shmr::create_region(sample.description, file_options(shm, data));
  shmr::release_all_owned_regions();
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
  EXPECT_EQ(read_values(*created), sample.values) << "the pages stay mapped";
}

TEST(FileBacking, ForkedChildDoesNotRemoveTheParentsFileRegion) {
  TempDir shm, data;
  Sample sample;
  auto created = shmr::create_region(sample.description, file_options(shm, data));
  const std::string name = created->name();
  int code = shmr_test::run_in_child([&] {
    auto reader = shmr::open_mapped_region(shm.path(), name);
    reader->close();
    created->close();
    shmr::release_all_owned_regions();
    return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});
  created.reset();
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

TEST(FileBacking, PersistentRegionSurvivesOwnerAndPrune) {
  TempDir shm, data;
  Sample sample;
  const std::string name = "shmr_file_keep";
  {
    auto created = shmr::create_region(sample.description, file_options(shm, data, name, true));
    EXPECT_NE(created->reader().header().flags & shmr::format::kFlagPersistent, 0u);
    EXPECT_NE(parse_locator_header(shm.read_file(name)).flags & shmr::format::kFlagPersistent,
              0u);
    created->close();
  }
  shmr::release_all_owned_regions();
  EXPECT_EQ(shm.entries(), std::vector<std::string>{name});
  EXPECT_EQ(data.entries(), std::vector<std::string>{name});

  // Also one whose creator is dead: prune keeps both.
  const std::string orphan = "shmr_file_keep_orphan";
  create_in_dead_child(file_options(shm, data, orphan, true));
  EXPECT_TRUE(shmr::prune_regions(shm.path()).empty());
  EXPECT_EQ(shm.entries(), sorted({name, orphan}));
  EXPECT_EQ(data.entries(), sorted({name, orphan}));
  auto list = shmr::list_regions(shm.path());
  ASSERT_NE(find(list, orphan), nullptr);
  EXPECT_TRUE(find(list, orphan)->persistent);
  EXPECT_FALSE(find(list, orphan)->creator_alive);
  EXPECT_EQ(read_values(*shmr::open_mapped_region(shm.path(), orphan)), sample.values);
  EXPECT_EQ(read_values(*shmr::open_mapped_region(shm.path(), name)), sample.values);

  // remove_region takes both files of each, once.
  for (const std::string& n : {name, orphan}) {
    EXPECT_EQ(shmr::remove_region(shm.path(), n), shmr::RemovalByName::Removed) << n;
    EXPECT_EQ(shmr::remove_region(shm.path(), n), shmr::RemovalByName::NoRegion) << n;
  }
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

TEST(FileBacking, RemoveRegionOfALiveOwner) {
  TempDir shm, data;
  Sample sample;
  auto created = shmr::create_region(sample.description, file_options(shm, data));
  const std::string name = created->name();
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::Removed);
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
  EXPECT_EQ(shmr::remove_region(shm.path(), name), shmr::RemovalByName::NoRegion);
  EXPECT_EQ(read_values(*created), sample.values) << "existing mappings keep their pages";
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::open_mapped_region(shm.path(), name));
  created.reset();  // the owner finds nothing to remove
  EXPECT_TRUE(shm.entries().empty());
  EXPECT_TRUE(data.entries().empty());
  // The name is free again.
  auto again = shmr::create_region(sample.description, file_options(shm, data, name));
  EXPECT_EQ(read_values(*shmr::open_mapped_region(shm.path(), name)), sample.values);
}

TEST(FileBacking, RemoveRegionArguments) {
  TempDir shm;
  EXPECT_EQ(shmr::remove_region(shm.path(), "shmr_absent"), shmr::RemovalByName::NoRegion);
  EXPECT_EQ(shmr::remove_region(shm.path(), "../etc"), shmr::RemovalByName::NoRegion);
  EXPECT_EQ(shmr::remove_region(shm.path(), ""), shmr::RemovalByName::NoRegion);
  // Someone else's file under a region's name is not shmr's to remove.
  shm.write_file("shmr_foreign", std::string(300, 'g'));
  shm.write_file("shmr_empty", "");
  EXPECT_EQ(shmr::remove_region(shm.path(), "shmr_foreign"), shmr::RemovalByName::NotARegion);
  EXPECT_EQ(shmr::remove_region(shm.path(), "shmr_empty"), shmr::RemovalByName::NotARegion);
  EXPECT_EQ(shm.entries().size(), 2u);
  // A corrupt region (the magic bytes, then garbage) and a corrupt locator
  // are shmr's, whatever else they hold.
  std::string magic(shmr::format::kMagic, sizeof shmr::format::kMagic);
  std::string locator_magic(shmr::kLocatorMagic, sizeof shmr::kLocatorMagic);
  shm.write_file("shmr_corrupt", magic + std::string(300, 'g'));
  shm.write_file("shmr_corrupt_locator", locator_magic + std::string(40, '\xff'));
  EXPECT_EQ(shmr::remove_region(shm.path(), "shmr_corrupt"), shmr::RemovalByName::Removed);
  EXPECT_EQ(shmr::remove_region(shm.path(), "shmr_corrupt_locator"), shmr::RemovalByName::Removed);
  EXPECT_EQ(shm.entries().size(), 2u);
}
