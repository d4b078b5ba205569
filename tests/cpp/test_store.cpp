// The object store: create_region, open_mapped_region, ownership, listing
// and pruning, in a private temporary directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "names.h"
#include "process.h"
#include "listing.h"
#include "store.h"
#include "test_util.h"

using shmr::CreateOptions;
using shmr::MappedRegion;
using shmr::RegionDescription;
using shmr::RegionSummary;
using shmr::format::NodeKind;
using shmr::format::StringEncoding;
using namespace shmr_test;

namespace {

// c(1.5, 2.5, 3.5) with names c("a", "b", NA).
struct Sample {
  std::vector<double> values{1.5, 2.5, 3.5};
  VectorStrings names{{{"a", StringEncoding::Utf8},
                       {"b", StringEncoding::Utf8},
                       {"", StringEncoding::Missing}}};
  RegionDescription description;
  Sample() {
    description.nodes.push_back(string_node(&names, 3));
    auto values_node = vector_node(NodeKind::Double, values.data(), 3);
    values_node.attributes = {{"names", 0}};
    description.nodes.push_back(values_node);
    description.root = 1;
    description.original_class = "numeric";
  }
};

CreateOptions options(const TempDir& dir, std::string name = "", bool persistent = false) {
  CreateOptions o;
  o.directory = dir.path();
  o.name = std::move(name);
  o.persistent = persistent;
  return o;
}

std::vector<double> read_values(const MappedRegion& region) {
  shmr::NodeView root = region.reader().node(region.reader().root());
  std::vector<double> out(root.length());
  std::memcpy(out.data(), root.data(), root.data_size());
  return out;
}

const RegionSummary* find(const std::vector<RegionSummary>& list, const std::string& name) {
  for (const RegionSummary& s : list)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Creates a region in a forked child that then exits without running any
// destructor (as a crashed or killed R session would). Returns the child's
// (now dead and reaped) pid.
pid_t create_in_dead_child(const TempDir& dir, const std::string& name, bool persistent) {
  int code = -1;
  pid_t pid = run_and_reap_child(
      [&] {
        Sample sample;
        auto region = shmr::create_region(sample.description, options(dir, name, persistent));
        std::_Exit(region && region->name() == name ? 0 : 1);
        return 2;
      },
      &code);
  EXPECT_EQ(code, 0) << "child failed to create " << name;
  return pid;
}

}  // namespace

TEST(Store, CreateAndOpenRoundTrip) {
  TempDir dir;
  Sample sample;
  const int64_t before = now_ms();
  auto created = shmr::create_region(sample.description, options(dir));
  const int64_t after = now_ms();
  ASSERT_TRUE(created);
  const std::string name = created->name();
  EXPECT_TRUE(shmr::names::is_valid_region_name(name)) << name;
  EXPECT_EQ(created->directory(), dir.path());
  EXPECT_TRUE(created->is_owner());
  EXPECT_FALSE(created->is_closed());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{name});
  struct stat st;
  ASSERT_EQ(::lstat(dir.file(name).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), created->map().size());
  EXPECT_EQ(created->map().size() % 64, 0u);

  const auto& h = created->reader().header();
  EXPECT_EQ(h.creator_pid, static_cast<int64_t>(::getpid()));
  EXPECT_EQ(h.creator_start_ticks, shmr::process::current().start_ticks);
  EXPECT_GE(h.created_unix_ms, before);
  EXPECT_LE(h.created_unix_ms, after);
  EXPECT_STREQ(h.original_class, "numeric");
  EXPECT_EQ(read_values(*created), sample.values);

  auto opened = shmr::open_mapped_region(dir.path(), name);
  ASSERT_TRUE(opened);
  // A later mapping in the creating process shares the ownership.
  EXPECT_TRUE(opened->is_owner());
  EXPECT_EQ(opened->name(), name);
  EXPECT_EQ(read_values(*opened), sample.values);
  shmr::NodeView root = opened->reader().node(1);
  ASSERT_EQ(root.attribute_count(), 1u);
  EXPECT_EQ(root.attribute_name(0), "names");
  shmr::NodeView names = opened->reader().node(root.attribute_value(0));
  EXPECT_EQ(std::string(names.string_at(1).data, names.string_at(1).size), "b");
  EXPECT_EQ(names.string_at(2).encoding, StringEncoding::Missing);
  // Two mappings, not one.
  EXPECT_NE(opened->map().data(), created->map().data());
}

TEST(Store, ExplicitNames) {
  TempDir dir;
  Sample sample;
  auto a = shmr::create_region(sample.description, options(dir, "shmr_explicit"));
  EXPECT_EQ(a->name(), "shmr_explicit");
  EXPECT_SHMR_ERROR(shmr::ErrorKind::AlreadyExists,
                    shmr::create_region(sample.description, options(dir, "shmr_explicit")));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"shmr_explicit"});
  EXPECT_EQ(read_values(*shmr::open_mapped_region(dir.path(), "shmr_explicit")), sample.values);
  EXPECT_INVALID(shmr::create_region(sample.description, options(dir, "bad/name")));
  EXPECT_INVALID(shmr::create_region(sample.description, options(dir, "shmr_")));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"shmr_explicit"});
}

TEST(Store, ANameTakenAgainLeadsElsewhere) {
  TempDir dir;
  Sample sample;
  auto first = shmr::create_region(sample.description, options(dir, "shmr_again", true));
  EXPECT_FALSE(shmr::name_leads_elsewhere(first->location(), first->stamp()));
  ASSERT_TRUE(shmr::remove_region_files(first->location()));
  // A name that leads nowhere does not lead elsewhere: whoever opens it
  // finds nothing rather than other data.
  EXPECT_FALSE(shmr::name_leads_elsewhere(first->location(), first->stamp()));
  auto second = shmr::create_region(sample.description, options(dir, "shmr_again", true));
  EXPECT_TRUE(shmr::name_leads_elsewhere(first->location(), first->stamp()));
  EXPECT_FALSE(shmr::name_leads_elsewhere(second->location(), second->stamp()));
  // An unknown identity is never called elsewhere.
  EXPECT_FALSE(shmr::name_leads_elsewhere(first->location(), shmr::FileStamp{}));
  EXPECT_TRUE(shmr::remove_region_files(second->location()));
}

TEST(Store, WhereANameLeadsTellsHereElsewhereAndNowhereApartForBothBackings) {
  using shmr::NameLeads;
  for (shmr::Backing backing : {shmr::Backing::Shm, shmr::Backing::File}) {
    TempDir dir;
    TempDir data;
    Sample sample;
    CreateOptions o = options(dir, "shmr_where", true);
    o.backing = backing;
    o.data_directory = data.path();
    auto first = shmr::create_region(sample.description, o);
    EXPECT_EQ(shmr::where_name_leads(first->location(), first->stamp()), NameLeads::Here);
    EXPECT_EQ(shmr::where_name_leads(first->location(), shmr::FileStamp{}), NameLeads::Unknown);
    ASSERT_TRUE(shmr::remove_region_files(first->location()));
    EXPECT_EQ(shmr::where_name_leads(first->location(), first->stamp()), NameLeads::Nowhere);
    auto second = shmr::create_region(sample.description, o);
    EXPECT_EQ(shmr::where_name_leads(first->location(), first->stamp()), NameLeads::Elsewhere);
    EXPECT_EQ(shmr::where_name_leads(second->location(), second->stamp()), NameLeads::Here);
    EXPECT_TRUE(shmr::remove_region_files(second->location()));
  }
}

TEST(Store, AStateRecordsWhichRegionOfAReusableNameItWasReadFrom) {
  TempDir dir;
  Sample sample;
  auto region = shmr::create_region(sample.description, options(dir, "shmr_made", true));
  auto mapped = shmr::open_mapped_region(dir.path(), region->name());
  const shmr::names::RegionMade made = shmr::made_of(*mapped);
  EXPECT_EQ(made.creator_pid, mapped->reader().header().creator_pid);
  EXPECT_NE(made.inode, 0u);
  EXPECT_NO_THROW(shmr::check_region_made(*mapped, made));
  // An unknown inode (0) is not compared.
  EXPECT_NO_THROW(shmr::check_region_made(*mapped, {made.creator_pid, made.created_unix_ms, 0}));
  // Another creator, creation time or file is another region: a newer one
  // under the name, never read in place of the one recorded.
  for (const shmr::names::RegionMade& other :
       {shmr::names::RegionMade{made.creator_pid + 1, made.created_unix_ms, made.inode},
        shmr::names::RegionMade{made.creator_pid, made.created_unix_ms - 1, made.inode},
        shmr::names::RegionMade{made.creator_pid, made.created_unix_ms, made.inode + 1}}) {
    try {
      shmr::check_region_made(*mapped, other);
      ADD_FAILURE() << "a region with another identity was accepted";
    } catch (const shmr::Error& e) {
      EXPECT_EQ(e.kind(), shmr::ErrorKind::NotFound);
      EXPECT_NE(std::string(e.what()).find("newer region"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(shmr::remove_region_files(region->location()));
}

TEST(Store, InvalidDescriptionCreatesNothing) {
  TempDir dir;
  RegionDescription bad;
  bad.nodes.push_back(list_node({0}));
  EXPECT_INVALID(shmr::create_region(bad, options(dir)));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Store, PrivateMappingsAreIndependent) {
  TempDir dir;
  Sample sample;
  auto created = shmr::create_region(sample.description, options(dir));
  auto first = shmr::open_mapped_region(dir.path(), created->name());
  const std::string file_before = dir.read_file(created->name());

  // Write through the first reader's mapping (copy-on-write).
  shmr::NodeView root = first->reader().node(1);
  const uint64_t offset =
      static_cast<const unsigned char*>(root.data()) -
      static_cast<const unsigned char*>(first->map().data());
  double changed = -99.0;
  std::memcpy(static_cast<unsigned char*>(first->map().data()) + offset, &changed, sizeof changed);
  EXPECT_EQ(read_values(*first), (std::vector<double>{-99.0, 2.5, 3.5}));

  auto second = shmr::open_mapped_region(dir.path(), created->name());
  EXPECT_EQ(read_values(*second), sample.values);
  EXPECT_EQ(read_values(*created), sample.values);
  EXPECT_EQ(dir.read_file(created->name()), file_before);

  // Nor does the creator's own mapping write through.
  std::memset(static_cast<unsigned char*>(created->map().data()) + offset, 0, 8);
  EXPECT_EQ(read_values(*second), sample.values);
  EXPECT_EQ(dir.read_file(created->name()), file_before);
}

TEST(Store, LastMappingOfTheCreatorUnlinks) {
  TempDir dir;
  Sample sample;
  auto created = shmr::create_region(sample.description, options(dir));
  const std::string name = created->name();
  auto second = shmr::open_mapped_region(dir.path(), name);
  created.reset();
  EXPECT_TRUE(dir.exists(name)) << "the second mapping still owns the region";
  second.reset();
  EXPECT_FALSE(dir.exists(name));
  EXPECT_TRUE(dir.entries().empty());
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::open_mapped_region(dir.path(), name));
}

TEST(Store, ExistingMappingsKeepTheirDataAfterUnlink) {
  TempDir dir;
  Sample sample;
  auto created = shmr::create_region(sample.description, options(dir));
  const std::string name = created->name();
  const auto file_bytes = dir.read_file(name);
  shmr::OpenedRegion file = shmr::open_region(dir.path(), name);
  auto map = shmr::MemoryMap::private_copy_on_write(file.fd.get(), file.size);
  created.reset();
  EXPECT_FALSE(dir.exists(name));
  ASSERT_EQ(map.size(), file_bytes.size());
  EXPECT_EQ(std::memcmp(map.data(), file_bytes.data(), file_bytes.size()), 0);
}

TEST(Store, ForkedChildNeverUnlinksItsParentsRegion) {
  TempDir dir;
  Sample sample;
  auto created = shmr::create_region(sample.description, options(dir));
  const std::string name = created->name();
  int code = run_in_child([&] {
    auto reader = shmr::open_mapped_region(dir.path(), name);
    if (!reader->is_owner()) return 3;  // inherits the parent's claim...
    reader->close();                    // ...but never acts on it
    created.reset();
    shmr::release_all_owned_regions();
    return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(dir.exists(name));
}

TEST(Store, PersistentOwnerDoesNotUnlink) {
  TempDir dir;
  Sample sample;
  std::string name;
  {
    auto created = shmr::create_region(sample.description, options(dir, "", true));
    name = created->name();
    created->close();
    EXPECT_TRUE(dir.exists(name));
  }
  EXPECT_TRUE(dir.exists(name));
  EXPECT_EQ(read_values(*shmr::open_mapped_region(dir.path(), name)), sample.values);
  EXPECT_TRUE(shmr::unlink_region(dir.path(), name));
}

TEST(Store, PersistentRegionsAreMarkedPersistent) {
  TempDir dir;
  Sample sample;
  auto persistent = shmr::create_region(sample.description, options(dir, "shmr_keep", true));
  auto transient = shmr::create_region(sample.description, options(dir, "shmr_drop", false));
  EXPECT_NE(persistent->reader().header().flags & shmr::format::kFlagPersistent, 0u);
  EXPECT_EQ(transient->reader().header().flags & shmr::format::kFlagPersistent, 0u);
  auto list = shmr::list_regions(dir.path());
  ASSERT_NE(find(list, "shmr_keep"), nullptr);
  ASSERT_NE(find(list, "shmr_drop"), nullptr);
  EXPECT_TRUE(find(list, "shmr_keep")->persistent);
  EXPECT_FALSE(find(list, "shmr_drop")->persistent);
  persistent.reset();
  EXPECT_TRUE(shmr::unlink_region(dir.path(), "shmr_keep"));
}

TEST(Store, CloseZeroesMemoryAndUnlinksForTheOwner) {
  TempDir dir;
  Sample sample;
  auto created = shmr::create_region(sample.description, options(dir));
  const std::string name = created->name();
  auto other = shmr::open_mapped_region(dir.path(), name);
  const volatile unsigned char* bytes =
      static_cast<const unsigned char*>(created->map().data());
  const uint64_t size = created->map().size();
  ASSERT_EQ(bytes[1], 'S');  // magic
  created->close();
  EXPECT_TRUE(created->is_closed());
  EXPECT_FALSE(dir.exists(name));
  for (uint64_t i = 0; i < size; ++i) ASSERT_EQ(bytes[i], 0) << i;
  created->close();  // idempotent
  EXPECT_TRUE(created->is_closed());
  // The other mapping is untouched.
  EXPECT_EQ(read_values(*other), sample.values);
  other->close();
  const volatile unsigned char* other_bytes =
      static_cast<const unsigned char*>(other->map().data());
  EXPECT_EQ(other_bytes[0], 0);
  created.reset();
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Store, ForkedChildDoesNotUnlinkTheParentsRegion) {
  TempDir dir;
  Sample sample;
  auto created = shmr::create_region(sample.description, options(dir));
  const std::string name = created->name();
  int code = run_in_child([&] {
    created->close();  // the child's copy: releases nothing of the parent's
    created.reset();
    return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(dir.exists(name));
  EXPECT_EQ(read_values(*created), sample.values);
  created.reset();
  EXPECT_FALSE(dir.exists(name));
}

TEST(Store, OpenMappedRegionErrors) {
  TempDir dir;
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::open_mapped_region(dir.path(), "shmr_none"));
  EXPECT_INVALID(shmr::open_mapped_region(dir.path(), "../etc/passwd"));
  EXPECT_INVALID(shmr::open_mapped_region(dir.path(), ""));
  dir.write_file("shmr_empty", "");
  EXPECT_CORRUPT(shmr::open_mapped_region(dir.path(), "shmr_empty"));
  dir.write_file("shmr_short", std::string(127, '\x89'));
  EXPECT_CORRUPT(shmr::open_mapped_region(dir.path(), "shmr_short"));
  dir.write_file("shmr_garbage", std::string(4096, 'g'));
  EXPECT_CORRUPT(shmr::open_mapped_region(dir.path(), "shmr_garbage"));
  ASSERT_EQ(::symlink(dir.file("shmr_garbage").c_str(), dir.file("shmr_link").c_str()), 0);
  EXPECT_CORRUPT(shmr::open_mapped_region(dir.path(), "shmr_link"));

  // A real region, truncated on disk.
  Sample sample;
  auto created = shmr::create_region(sample.description, options(dir, "shmr_trunc", true));
  created.reset();
  ASSERT_EQ(::truncate(dir.file("shmr_trunc").c_str(), 192), 0);
  EXPECT_CORRUPT(shmr::open_mapped_region(dir.path(), "shmr_trunc"));
}

TEST(Store, ListRegions) {
  TempDir dir;
  Sample sample;
  const int64_t before = now_ms();
  auto created = shmr::create_region(sample.description, options(dir, "shmr_listed"));
  dir.write_file("shmr_garbage", std::string(300, 'g'));
  dir.write_file("unrelated", "x");
  dir.write_file(".hidden", "x");
  dir.write_file(std::string(shmr::kTemporaryPrefix) + "abc_shmr_x", "x");  // no pid
  const std::string temp = std::string(shmr::kTemporaryPrefix) + std::to_string(::getpid()) +
                           "_shmr_inflight";
  dir.write_file(temp, "partial");

  auto list = shmr::list_regions(dir.path());
  std::vector<std::string> names;
  for (const auto& s : list) names.push_back(s.name);
  EXPECT_EQ(sorted(names), sorted({"shmr_listed", "shmr_garbage", temp}));

  const RegionSummary* r = find(list, "shmr_listed");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->valid);
  EXPECT_FALSE(r->temporary);
  EXPECT_EQ(r->size, created->map().size());
  EXPECT_EQ(r->creator.pid, static_cast<int64_t>(::getpid()));
  EXPECT_EQ(r->creator.start_ticks, shmr::process::current().start_ticks);
  EXPECT_TRUE(r->creator_alive);
  EXPECT_FALSE(r->persistent);
  EXPECT_EQ(r->format_version, shmr::format::kVersion);
  EXPECT_EQ(r->original_class, "numeric");
  EXPECT_GE(r->created_unix_ms, before);

  const RegionSummary* g = find(list, "shmr_garbage");
  ASSERT_NE(g, nullptr);
  EXPECT_FALSE(g->valid);
  EXPECT_FALSE(g->temporary);
  EXPECT_EQ(g->size, 300u);

  const RegionSummary* t = find(list, temp);
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->temporary);
  EXPECT_FALSE(t->valid);
  EXPECT_EQ(t->creator.pid, static_cast<int64_t>(::getpid()));
  EXPECT_TRUE(t->creator_alive);

  EXPECT_TRUE(shmr::list_regions(dir.file("no_such_dir")).empty());
}

TEST(Store, ListRegionsSeesTheCreatorOfAChild) {
  TempDir dir;
  pid_t child = create_in_dead_child(dir, "shmr_orphan", false);
  auto list = shmr::list_regions(dir.path());
  const RegionSummary* r = find(list, "shmr_orphan");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->valid);
  EXPECT_EQ(r->creator.pid, static_cast<int64_t>(child));
  EXPECT_NE(r->creator.start_ticks, 0u);
  EXPECT_FALSE(r->creator_alive);
}

TEST(Store, ListAndPruneDoNotBlockOnAFifo) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("shmr_fifo").c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo(dir.file(std::string(shmr::kTemporaryPrefix) + "1_shmr_f").c_str(), 0600), 0);
  int code = run_in_child(
      [&] {
        // FIFOs are not regions: not listed, and opening them never blocks.
        if (!shmr::list_regions(dir.path()).empty()) return 1;
        shmr::prune_regions(dir.path());
        return 0;
      },
      5);
  EXPECT_EQ(code, 0) << "1014: blocked until SIGALRM";
  // Neither is a region file of ours: prune leaves both alone.
  EXPECT_TRUE(dir.exists("shmr_fifo"));
  EXPECT_TRUE(dir.exists(std::string(shmr::kTemporaryPrefix) + "1_shmr_f"));
}

TEST(Store, PruneLeavesOtherUsersFilesAlone) {
  TempDir dir;
  pid_t dead = create_in_dead_child(dir, "shmr_foreign_region", false);
  const std::string live_temp = std::string(shmr::kTemporaryPrefix) +
                                std::to_string(::getpid()) + "_shmr_foreign_live";
  const std::string dead_temp = std::string(shmr::kTemporaryPrefix) + std::to_string(dead) +
                                "_shmr_foreign_dead";
  dir.write_file(live_temp, "writing");
  dir.write_file(dead_temp, "stale");
  for (const std::string& name : {std::string("shmr_foreign_region"), live_temp, dead_temp})
    if (::chown(dir.file(name).c_str(), 65534, 65534) != 0)
      GTEST_SKIP() << "cannot chown (not running as root): " << std::strerror(errno);
  // Only root can get here, and root could unlink anything: prune must
  // still only judge regular files that belong to the caller.
  EXPECT_TRUE(shmr::prune_regions(dir.path()).empty());
  EXPECT_EQ(dir.entries().size(), 3u);
}

TEST(Store, PruneRemovesRegionsOfDeadCreators) {
  TempDir dir;
  Sample sample;
  pid_t dead = create_in_dead_child(dir, "shmr_dead", false);
  const std::string dead_temp =
      std::string(shmr::kTemporaryPrefix) + std::to_string(dead) + "_shmr_x";
  dir.write_file(dead_temp, "half written");

  // Things that must survive.
  create_in_dead_child(dir, "shmr_dead_but_persistent", true);
  auto live = shmr::create_region(sample.description, options(dir, "shmr_live"));
  const std::string live_temp = std::string(shmr::kTemporaryPrefix) +
                                std::to_string(::getpid()) + "_shmr_y";
  dir.write_file(live_temp, "in progress");
  dir.write_file("shmr_garbage", std::string(300, 'g'));
  dir.write_file("unrelated", "x");

  EXPECT_EQ(dir.entries().size(), 7u);
  std::vector<std::string> removed = shmr::prune_regions(dir.path());
  EXPECT_EQ(sorted(removed), sorted({"shmr_dead", dead_temp}));
  EXPECT_EQ(dir.entries(), sorted({"shmr_dead_but_persistent", "shmr_live", live_temp,
                                   "shmr_garbage", "unrelated"}));
  EXPECT_EQ(read_values(*live), sample.values);
  EXPECT_EQ(read_values(*shmr::open_mapped_region(dir.path(), "shmr_dead_but_persistent")),
            sample.values);

  // Pruning again removes nothing.
  EXPECT_TRUE(shmr::prune_regions(dir.path()).empty());
}

TEST(Store, PruneKeepsRegionsOfLiveProcesses) {
  TempDir dir;
  LiveChild child([&]() -> std::shared_ptr<void> {
    Sample sample;
    return shmr::create_region(sample.description, options(dir, "shmr_child_alive"));
  });
  ASSERT_TRUE(child.ready());
  EXPECT_TRUE(shmr::prune_regions(dir.path()).empty());
  EXPECT_TRUE(dir.exists("shmr_child_alive"));
  child.release();  // the child exits via _Exit: no cleanup
  EXPECT_EQ(shmr::prune_regions(dir.path()), std::vector<std::string>{"shmr_child_alive"});
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Store, PruneTellsPidReuseApart) {
  // A region whose header names a live pid (ours) but another start time:
  // that process is gone and the pid was reused.
  TempDir dir;
  Sample sample;
  auto created = shmr::create_region(sample.description, options(dir, "shmr_reused", true));
  created.reset();
  int fd = ::open(dir.file("shmr_reused").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint64_t ticks = shmr::process::current().start_ticks + 12345;
  ASSERT_EQ(::pwrite(fd, &ticks, sizeof ticks,
                     offsetof(shmr::format::RegionHeader, creator_start_ticks)),
            static_cast<ssize_t>(sizeof ticks));
  uint64_t flags = 0;  // and not persistent
  ASSERT_EQ(::pwrite(fd, &flags, sizeof flags, offsetof(shmr::format::RegionHeader, flags)),
            static_cast<ssize_t>(sizeof flags));
  ::close(fd);
  auto list = shmr::list_regions(dir.path());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].creator.pid, static_cast<int64_t>(::getpid()));
  EXPECT_FALSE(list[0].creator_alive);
  EXPECT_EQ(shmr::prune_regions(dir.path()), std::vector<std::string>{"shmr_reused"});
}

TEST(Store, ListingSkipsWhatIsNotARegularFileOfThisUser) {
  TempDir dir;
  Sample sample;
  auto created = shmr::create_region(sample.description, options(dir));
  ASSERT_EQ(::mkfifo(dir.file("shmr_fifo").c_str(), 0600), 0);
  ASSERT_EQ(::mkdir(dir.file("shmr_directory").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(dir.file(created->name()).c_str(), dir.file("shmr_link").c_str()), 0);
  auto list = shmr::list_regions(dir.path());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, created->name());
  EXPECT_TRUE(shmr::prune_regions(dir.path()).empty());
}

// One descriptor serves the checks and the mapping: a region removed and
// created again between opening and mapping is never half one, half the
// other, and the stamp tells the two files apart.
TEST(Store, OpenedRegionFileMapsTheFileItOpened) {
  TempDir dir;
  Sample sample;
  auto first = shmr::create_region(sample.description, options(dir, "shmr_again"));
  shmr::RegionFile opened = shmr::open_region_file(dir.path(), "shmr_again");
  EXPECT_EQ(opened.location.backing, shmr::Backing::Shm);
  EXPECT_EQ(opened.file.stamp, first->stamp());
  first->close(shmr::Removal::Remove);
  EXPECT_FALSE(dir.exists("shmr_again"));

  Sample other;
  other.values = {9, 9, 9};
  other.description.nodes[1].bytes = other.values.data();
  auto second = shmr::create_region(other.description, options(dir, "shmr_again"));
  auto mapped = shmr::map_region_file(std::move(opened));
  EXPECT_EQ(read_values(*mapped), sample.values);
  EXPECT_EQ(read_values(*second), other.values);
  EXPECT_NE(mapped->stamp(), second->stamp());
  EXPECT_EQ(shmr::open_region_file(dir.path(), "shmr_again").file.stamp, second->stamp());
}

// Read-only regions map copy-on-write, writable ones shared, from the header
// read through the one mapping.
TEST(Store, AccessComesFromTheHeader) {
  TempDir dir;
  Sample sample;
  auto readonly = shmr::create_region(sample.description, options(dir, "shmr_ro"));
  CreateOptions writable_options = options(dir, "shmr_rw");
  writable_options.writable = true;
  auto writable = shmr::create_region(sample.description, writable_options);
  EXPECT_EQ(shmr::open_mapped_region(dir.path(), "shmr_ro")->access(), shmr::Access::CopyOnWrite);
  auto shared = shmr::open_mapped_region(dir.path(), "shmr_rw");
  EXPECT_EQ(shared->access(), shmr::Access::SharedWritable);
  static_cast<double*>(const_cast<void*>(shared->reader().node(1).data()))[0] = 42;
  EXPECT_EQ(read_values(*writable)[0], 42);
}

// What a process removes at exit besides its own mappings' regions: those
// that name it as their creator (handed to it, never taken), never the
// persistent ones, segments, or other processes' regions.
TEST(Store, RemoveRegionsCreatedByTakesOnlyThatCreatorsOrdinaryRegions) {
  TempDir dir;
  Sample sample;
  shmr::create_region(sample.description, options(dir, "shmr_untaken"))->close(shmr::Removal::Keep);
  shmr::create_region(sample.description, options(dir, "shmr_kept", true))->close(shmr::Removal::Keep);
  Sample segment;
  segment.description.original_class = "segment";
  shmr::create_region(segment.description, options(dir, "shmr_segment"))->close(shmr::Removal::Keep);
  create_in_dead_child(dir, "shmr_childs", false);

  shmr::process::Identity other = shmr::process::current();
  other.pid += 1;
  EXPECT_TRUE(shmr::remove_regions_created_by(dir.path(), other).empty());
  EXPECT_EQ(shmr::remove_regions_created_by(dir.path(), shmr::process::current()),
            std::vector<std::string>{"shmr_untaken"});
  std::vector<std::string> names;
  for (const auto& s : shmr::list_regions(dir.path())) names.push_back(s.name);
  EXPECT_EQ(sorted(names), sorted({"shmr_kept", "shmr_segment", "shmr_childs"}));
}

TEST(Process, NamesProcessComparesPidStartAndNamespace) {
  const shmr::process::Identity self = shmr::process::current();
  EXPECT_TRUE(shmr::process::names_process(self, self));
  shmr::process::Identity recorded = self;
  recorded.pid_namespace = 0;  // not recorded: not a reason to differ
  EXPECT_TRUE(shmr::process::names_process(recorded, self));
  recorded = self;
  recorded.pid += 1;
  EXPECT_FALSE(shmr::process::names_process(recorded, self));
  recorded = self;
  recorded.start_ticks += 100;
  EXPECT_FALSE(shmr::process::names_process(recorded, self));
  recorded = self;
  recorded.pid_namespace += 1;
  EXPECT_FALSE(shmr::process::names_process(recorded, self));
}
