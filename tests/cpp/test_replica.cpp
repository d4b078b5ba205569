// Several machines in the engine: origins (parsing untrusted text), SHA-256,
// host identity, the fetch lock, building a replica from bytes, recognising
// a local copy, and how listing and pruning treat replicas.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backing_test_util.h"
#include "listing.h"
#include "origin.h"
#include "reader.h"
#include "creator.h"
#include "replica.h"
#include "sha256.h"
#include "store.h"
#include "test_util.h"

using shmr::FetchLock;
using shmr::LocalCopy;
using shmr::RegionIdentity;
using shmr::RemoteOrigin;
using shmr::ReplicaBuilder;
using shmr::format::NodeKind;
using namespace shmr_test;

namespace {

const char* kToken = "AbCdEfGhIjKlMnOpQrStUv";
const char* kFingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

RemoteOrigin sample_origin(bool tls) {
  RemoteOrigin o;
  o.address = tls ? "tls+tcp://127.0.0.2:40123" : "tcp://127.0.0.2:40123";
  o.token = kToken;
  o.fingerprint = tls ? kFingerprint : "";
  o.identity = {"hostA:0:26", 4096, 1234, 1700000000123};
  return o;
}

// A small region written by this process in `dir`, named `name`.
std::shared_ptr<shmr::MappedRegion> make_region(const TempDir& dir, const std::string& name) {
  static std::vector<double> values{1, 2, 3, 4, 5};
  shmr::RegionDescription d;
  d.nodes.push_back(vector_node(NodeKind::Double, values.data(), values.size()));
  d.nodes.push_back(list_node({0, 0}));
  d.root = 1;
  shmr::CreateOptions o;
  o.directory = dir.path();
  o.name = name;
  return shmr::create_region(d, o);
}

std::vector<unsigned char> bytes_of(const shmr::MappedRegion& region) {
  const auto* p = static_cast<const unsigned char*>(region.map().data());
  return std::vector<unsigned char>(p, p + region.map().size());
}

RegionIdentity identity_of(const shmr::MappedRegion& region, const std::string& host) {
  const auto& h = region.reader().header();
  return {host, h.total_size, h.creator_pid, h.created_unix_ms};
}

// A complete copy of `bytes`, the region of `origin`, published in `dir`.
void publish_copy(const TempDir& dir, const std::string& name, const RegionIdentity& origin,
                  const std::vector<unsigned char>& bytes) {
  ReplicaBuilder builder(dir.path(), name, origin);
  builder.write(0, bytes.data(), bytes.size());
  builder.publish();
}

bool has_entry(const TempDir& dir, const std::string& prefix) {
  for (const auto& e : dir.entries())
    if (e.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

}  // namespace

TEST(Origin, RoundTrip) {
  for (bool tls : {false, true}) {
    RemoteOrigin o = sample_origin(tls);
    std::string text = shmr::format_origin(o);
    auto back = shmr::parse_origin(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(back->address, o.address);
    EXPECT_EQ(back->token, o.token);
    EXPECT_EQ(back->fingerprint, o.fingerprint);
    EXPECT_TRUE(back->identity == o.identity);
    EXPECT_FALSE(back->writable);
    EXPECT_EQ(shmr::format_origin(*back), text);
  }
}

TEST(Origin, RejectsMalformedText) {
  std::string good = shmr::format_origin(sample_origin(false));
  std::vector<std::string> bad = {
      "",
      good + " ",
      " " + good,
      good.substr(0, good.size() - 2),
      "udp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrStUv - hostA:0:26 4096 1234 1700000000123 r",
      "tcp://127.0.0.2:0 AbCdEfGhIjKlMnOpQrStUv - hostA:0:26 4096 1234 1700000000123 r",
      "tcp://127.0.0.2:70000 AbCdEfGhIjKlMnOpQrStUv - hostA:0:26 4096 1234 1700000000123 r",
      "tcp://127.0.0.2:1/x AbCdEfGhIjKlMnOpQrStUv - hostA:0:26 4096 1234 1700000000123 r",
      "tcp://127.0.0.2:1 short - hostA:0:26 4096 1234 1700000000123 r",
      "tcp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrSt/v - hostA:0:26 4096 1234 1700000000123 r",
      // TLS without a fingerprint, a fingerprint without TLS
      "tls+tcp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrStUv - hostA:0:26 4096 1234 1700000000123 r",
      std::string("tcp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrStUv ") + kFingerprint +
          " hostA:0:26 4096 1234 1700000000123 r",
      "tcp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrStUv - host/A:0:26 4096 1234 1700000000123 r",
      "tcp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrStUv - hostA 4096 1234 1700000000123 r",
      "tcp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrStUv - hostA:0:26 0 1234 1700000000123 r",
      "tcp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrStUv - hostA:0:26 -5 1234 1700000000123 r",
      "tcp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrStUv - hostA:0:26 4096 99999999999999999999 1 r",
      "tcp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrStUv - hostA:0:26 4096 1234 1700000000123 x",
      std::string("tcp://127.0.0.2:1 AbCdEfGhIjKlMnOpQrStUv - hostA:0:26 4096 1234 17\0 r", 70),
      std::string(2000, 'a'),
  };
  for (const auto& text : bad) EXPECT_FALSE(shmr::parse_origin(text).has_value()) << text;
}

TEST(Origin, ServerAddresses) {
  EXPECT_TRUE(shmr::is_valid_server_address("tcp://10.0.0.5:5555"));
  EXPECT_TRUE(shmr::is_valid_server_address("tls+tcp://node-b.example.org:1"));
  EXPECT_TRUE(shmr::is_valid_server_address("tcp://[::1]:5555"));
  EXPECT_FALSE(shmr::is_valid_server_address("ipc:///tmp/x"));
  EXPECT_FALSE(shmr::is_valid_server_address("tcp://:5555"));
  EXPECT_FALSE(shmr::is_valid_server_address("tcp://a b:5555"));
  EXPECT_FALSE(shmr::is_valid_server_address("tcp://[zz]:5555"));
}

TEST(Origin, WantedRegionIsTheSameIdentityOrTheOriginUnderAnotherHostName) {
  RegionIdentity wanted{"hostA:0:26", 4096, 100, 1700000000000};
  RegionIdentity other_name = wanted;
  other_name.host = "container:0:26";
  EXPECT_TRUE(shmr::is_wanted_region(wanted, false, wanted));
  EXPECT_TRUE(shmr::is_wanted_region(wanted, true, wanted));
  // The origin seen from a container sharing its shm directory.
  EXPECT_TRUE(shmr::is_wanted_region(other_name, false, wanted));
  // A copy of another host's region of the same numbers is not this one.
  EXPECT_FALSE(shmr::is_wanted_region(other_name, true, wanted));
  for (auto change : {+1, -1}) {
    RegionIdentity size = wanted, pid = wanted, created = wanted;
    size.size += change;
    pid.creator_pid += change;
    created.created_unix_ms += change;
    EXPECT_FALSE(shmr::is_wanted_region(size, false, wanted));
    EXPECT_FALSE(shmr::is_wanted_region(pid, false, wanted));
    EXPECT_FALSE(shmr::is_wanted_region(created, false, wanted));
  }
}

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(shmr::sha256::hex_digest("", 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(shmr::sha256::hex_digest("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(shmr::sha256::hex_digest(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(shmr::sha256::hex_digest(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(HostIdentity, NameAndDeviceOfTheShmDirectory) {
  TempDir dir;
  std::string id = shmr::host_identity(dir.path());
  EXPECT_TRUE(shmr::is_valid_host_identity(id)) << id;
  EXPECT_EQ(id, shmr::host_identity(dir.path()));
  // Another file system (another device) is another host, whatever the name.
  TempDir shm("/dev/shm");
  struct stat a, b;
  ASSERT_EQ(::stat(dir.path().c_str(), &a), 0);
  ASSERT_EQ(::stat(shm.path().c_str(), &b), 0);
  if (a.st_dev != b.st_dev) {
    EXPECT_NE(id, shmr::host_identity(shm.path()));
  }
}

TEST(FetchLock, OneHolderAtATimeAndNothingLeft) {
  TempDir dir;
  auto first = FetchLock::try_acquire(dir.path(), "shmr_locked");
  ASSERT_TRUE(first.has_value());
  // Another process cannot take it while this one holds it.
  pid_t child = ::fork();
  if (child == 0) {
    auto other = FetchLock::try_acquire(dir.path(), "shmr_locked");
    ::_exit(other.has_value() ? 1 : 0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  first.reset();
  EXPECT_TRUE(dir.entries().empty());
  EXPECT_TRUE(FetchLock::try_acquire(dir.path(), "shmr_locked").has_value());
  EXPECT_TRUE(dir.entries().empty());
  EXPECT_INVALID(FetchLock::try_acquire(dir.path(), "../etc"));
}

TEST(FetchLock, ReleasedByTheKernelWhenItsHolderDies) {
  TempDir dir;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  if (child == 0) {
    auto lock = FetchLock::try_acquire(dir.path(), "shmr_dies");
    char c = lock ? 1 : 0;
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 1);
  EXPECT_FALSE(FetchLock::try_acquire(dir.path(), "shmr_dies").has_value());
  // The holder's lock file stays while it lives; pruning leaves it alone.
  EXPECT_TRUE(shmr::prune_fetch_locks(dir.path()).empty());
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  // Left behind by the killed holder: free, and pruned.
  EXPECT_TRUE(has_entry(dir, shmr::kFetchLockPrefix));
  EXPECT_EQ(shmr::prune_fetch_locks(dir.path()), std::vector<std::string>{"shmr_dies"});
  EXPECT_FALSE(has_entry(dir, shmr::kFetchLockPrefix));
  EXPECT_TRUE(FetchLock::try_acquire(dir.path(), "shmr_dies").has_value());
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST(Replica, BuiltFromChunksIsTheOriginsBytesPlusItsRecord) {
  TempDir origin_dir, here;
  auto origin = make_region(origin_dir, "shmr_copied");
  std::vector<unsigned char> bytes = bytes_of(*origin);
  RegionIdentity id = identity_of(*origin, "hostA:0:26");
  {
    ReplicaBuilder builder(here.path(), "shmr_copied", id);
    // Out of order, in odd sizes.
    size_t half = bytes.size() / 2 + 3;
    builder.write(half, bytes.data() + half, bytes.size() - half);
    builder.write(0, bytes.data(), half);
    EXPECT_CORRUPT(builder.write(bytes.size() - 1, bytes.data(), 2));
    builder.publish();
  }
  EXPECT_EQ(here.entries(), std::vector<std::string>{"shmr_copied"});
  auto copy = shmr::open_mapped_region(here.path(), "shmr_copied");
  const auto& reader = copy->reader();
  EXPECT_TRUE(reader.is_replica());
  EXPECT_EQ(reader.replica().keeper_pid, static_cast<int64_t>(::getpid()));
  EXPECT_EQ(reader.replica().keeper_pid_namespace, shmr::process::current().pid_namespace);
  // The creator's PID namespace (header bytes 120..127) stays the origin's.
  EXPECT_EQ(shmr::format::creator_pid_namespace(reader.header()),
            shmr::format::creator_pid_namespace(origin->reader().header()));
  EXPECT_STREQ(reader.replica().origin_host, "hostA:0:26");
  EXPECT_EQ(reader.header().creator_pid, origin->reader().header().creator_pid);
  const auto* data = static_cast<const unsigned char*>(copy->map().data());
  // Apart from the flag and the record, the origin's bytes.
  EXPECT_EQ(std::memcmp(data + shmr::format::kHeaderSizeV2, bytes.data() + shmr::format::kHeaderSizeV2,
                        bytes.size() - shmr::format::kHeaderSizeV2),
            0);
  EXPECT_EQ(shmr::find_local_copy(here.path(), "shmr_copied", id, "hostB:0:41"), LocalCopy::Replica);
}

// Chunks go to the file by the kernel's copy, as share() writes, the short
// ones gathered first: sizes on both sides of the sink's buffer, in an
// order where a short chunk is followed by one elsewhere.
TEST(Replica, ChunksOfEverySizeInAnyOrderGiveTheOriginsBytes) {
  TempDir origin_dir, here;
  std::vector<double> values(400000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i) / 7;
  shmr::RegionDescription d;
  d.nodes.push_back(vector_node(NodeKind::Double, values.data(), values.size()));
  shmr::CreateOptions o;
  o.directory = origin_dir.path();
  o.name = "shmr_large_copy";
  auto origin = shmr::create_region(d, o);
  std::vector<unsigned char> bytes = bytes_of(*origin);
  ASSERT_GT(bytes.size(), 3 * shmr::FileSink::kBufferBytes);
  {
    ReplicaBuilder builder(here.path(), "shmr_large_copy", identity_of(*origin, "hostA:0:26"));
    const uint64_t big = shmr::FileSink::kBufferBytes + 4099;
    const uint64_t small = 70001;
    // The tail, a short chunk at the front, a long one after it, then the
    // rest in short chunks.
    builder.write(2 * big, bytes.data() + 2 * big, bytes.size() - 2 * big);
    builder.write(0, bytes.data(), small);
    builder.write(small, bytes.data() + small, big);
    for (uint64_t at = small + big; at < 2 * big; at += small)
      builder.write(at, bytes.data() + at, std::min(small, 2 * big - at));
    builder.publish();
  }
  auto copy = shmr::open_mapped_region(here.path(), "shmr_large_copy");
  ASSERT_EQ(copy->map().size(), bytes.size());
  const auto* data = static_cast<const unsigned char*>(copy->map().data());
  EXPECT_EQ(std::memcmp(data + shmr::format::kHeaderSizeV2, bytes.data() + shmr::format::kHeaderSizeV2,
                        bytes.size() - shmr::format::kHeaderSizeV2),
            0);
}

TEST(Replica, CorruptOrForeignBytesLeaveNothing) {
  TempDir origin_dir, here;
  auto origin = make_region(origin_dir, "shmr_bad");
  std::vector<unsigned char> bytes = bytes_of(*origin);
  RegionIdentity id = identity_of(*origin, "hostA:0:26");

  auto attempt = [&](std::vector<unsigned char> b, RegionIdentity who) {
    ReplicaBuilder builder(here.path(), "shmr_bad", who);
    builder.write(0, b.data(), std::min<uint64_t>(b.size(), who.size));
    builder.publish();
  };
  // A node table entry pointing outside the region.
  auto broken = bytes;
  uint64_t table = 0;
  std::memcpy(&table, broken.data() + offsetof(shmr::format::RegionHeader, node_table_offset), 8);
  uint64_t huge = UINT64_MAX / 2;
  std::memcpy(broken.data() + table + offsetof(shmr::format::NodeRecord, data_offset), &huge, 8);
  EXPECT_CORRUPT(attempt(broken, id));
  EXPECT_TRUE(here.entries().empty());
  // Garbage.
  EXPECT_CORRUPT(attempt(std::vector<unsigned char>(bytes.size(), 0x5a), id));
  EXPECT_TRUE(here.entries().empty());
  // A valid region, but not the origin's (another creation time).
  RegionIdentity other = id;
  other.created_unix_ms += 1;
  EXPECT_CORRUPT(attempt(bytes, other));
  EXPECT_TRUE(here.entries().empty());
  // A copy of a copy is refused.
  auto flagged = bytes;
  auto* h = reinterpret_cast<shmr::format::RegionHeader*>(flagged.data());
  h->flags |= shmr::format::kFlagReplica;
  EXPECT_CORRUPT(attempt(flagged, id));
  EXPECT_TRUE(here.entries().empty());
}

TEST(Replica, ANameTakenByAnotherRegionIsAnErrorNamingBoth) {
  TempDir origin_dir, here;
  auto origin = make_region(origin_dir, "shmr_same_name");
  auto local = make_region(here, "shmr_same_name");
  // Made in this process in the same millisecond as `local`: another
  // host's origin has its own creator.
  RegionIdentity id = identity_of(*origin, "hostA:0:26");
  id.creator_pid += 1;
  try {
    shmr::find_local_copy(here.path(), "shmr_same_name", id, "hostB:0:41");
    ADD_FAILURE() << "no error";
  } catch (const shmr::Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("hostB:0:41"), std::string::npos) << what;
    EXPECT_NE(what.find("hostA:0:26"), std::string::npos) << what;
  }
  // On its own host the region is the origin itself; so it is under
  // another host name, seen through a shared shm directory (a container
  // started with --ipc=host): name, creator, creation time and size agree.
  EXPECT_EQ(shmr::find_local_copy(here.path(), "shmr_same_name", identity_of(*local, "hostB:0:41"),
                                  "hostB:0:41"),
            LocalCopy::Origin);
  EXPECT_EQ(shmr::find_local_copy(here.path(), "shmr_same_name", identity_of(*local, "hostA:0:41"),
                                  "hostB:0:41"),
            LocalCopy::Origin);
  EXPECT_EQ(shmr::find_local_copy(here.path(), "shmr_absent", id, "hostB:0:41"), LocalCopy::Absent);
}

TEST(Replica, ACopyOfAnEarlierRegionOfTheNameMakesWayForTheNewOne) {
  TempDir origin_dir, here;
  auto origin = make_region(origin_dir, "shmr_daily");
  std::vector<unsigned char> bytes = bytes_of(*origin);
  RegionIdentity earlier = identity_of(*origin, "hostA:0:26");
  publish_copy(here, "shmr_daily", earlier, bytes);
  // The owner closed it and shared again under the name.
  RegionIdentity later = earlier;
  later.created_unix_ms += 5000;
  EXPECT_EQ(shmr::find_local_copy(here.path(), "shmr_daily", later, "hostB:0:41"), LocalCopy::Superseded);
  // A stale object (older than the copy) supersedes nothing; nor does a
  // later region of another host that happens to use the name.
  RegionIdentity older = earlier;
  older.created_unix_ms -= 5000;
  EXPECT_CORRUPT(shmr::find_local_copy(here.path(), "shmr_daily", older, "hostB:0:41"));
  EXPECT_CORRUPT(shmr::remove_superseded_copy(here.path(), "shmr_daily", older, "hostB:0:41"));
  RegionIdentity elsewhere = later;
  elsewhere.host = "hostC:0:26";
  EXPECT_CORRUPT(shmr::find_local_copy(here.path(), "shmr_daily", elsewhere, "hostB:0:41"));
  EXPECT_CORRUPT(shmr::remove_superseded_copy(here.path(), "shmr_daily", elsewhere, "hostB:0:41"));
  EXPECT_EQ(here.entries(), std::vector<std::string>{"shmr_daily"});

  EXPECT_TRUE(shmr::remove_superseded_copy(here.path(), "shmr_daily", later, "hostB:0:41"));
  EXPECT_TRUE(here.entries().empty());
  EXPECT_EQ(shmr::find_local_copy(here.path(), "shmr_daily", later, "hostB:0:41"), LocalCopy::Absent);
  EXPECT_FALSE(shmr::remove_superseded_copy(here.path(), "shmr_daily", later, "hostB:0:41"));
  // A region of this host's own is never a superseded copy.
  auto local = make_region(here, "shmr_daily");
  RegionIdentity after_local = identity_of(*local, "hostB:0:41");
  after_local.created_unix_ms += 5000;
  EXPECT_CORRUPT(shmr::remove_superseded_copy(here.path(), "shmr_daily", after_local, "hostB:0:41"));
  EXPECT_EQ(here.entries(), std::vector<std::string>{"shmr_daily"});
}

TEST(Replica, ListedWithItsKeeperAndPrunedOnlyWhenTheKeeperIsDead) {
  TempDir origin_dir, here;
  auto origin = make_region(origin_dir, "shmr_kept");
  std::vector<unsigned char> bytes = bytes_of(*origin);
  RegionIdentity id = identity_of(*origin, "hostA:0:26");
  // A child fetches the copy and keeps it; the creator pid in the copy is
  // the origin's, which on a real other host names an unrelated process.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t keeper = ::fork();
  if (keeper == 0) {
    publish_copy(here, "shmr_kept", id, bytes);
    char c = 1;
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  auto regions = shmr::list_regions(here.path());
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_TRUE(regions[0].replica);
  EXPECT_EQ(regions[0].origin_host, "hostA:0:26");
  EXPECT_EQ(regions[0].creator.pid, keeper);
  EXPECT_EQ(regions[0].creator.pid_namespace, shmr::process::current().pid_namespace);
  EXPECT_TRUE(regions[0].creator_alive);
  EXPECT_TRUE(shmr::prune_regions(here.path()).empty());
  ::kill(keeper, SIGKILL);
  ::waitpid(keeper, nullptr, 0);
  EXPECT_EQ(shmr::prune_regions(here.path()), std::vector<std::string>{"shmr_kept"});
  EXPECT_TRUE(here.entries().empty());
  ::close(ready[0]);
  ::close(ready[1]);
}

// The prune a fetch runs first: copies whose keeper died go; another dead
// process's own region stays for prune_shared() to judge.
TEST(Replica, PruningCopiesLeavesOtherRegionsOfTheDead) {
  TempDir origin_dir, here;
  auto origin = make_region(origin_dir, "shmr_copy");
  std::vector<unsigned char> bytes = bytes_of(*origin);
  RegionIdentity id = identity_of(*origin, "hostA:0:26");
  // run_and_reap_child() ends the child with _Exit(): no destructor runs,
  // so the copy stays, as after SIGKILL.
  int code = -1;
  pid_t keeper = run_and_reap_child(
      [&] {
        publish_copy(here, "shmr_copy", id, bytes);
        return 0;
      },
      &code);
  ASSERT_EQ(code, 0);
  ASSERT_GT(keeper, 0);
  shmr_backing_test::create_in_dead_child(shmr_backing_test::shm_options(here, "shmr_own"));
  ASSERT_EQ(here.entries().size(), 2u);
  EXPECT_EQ(shmr::prune_regions(here.path(), shmr::PruneScope::CopiesAndUnfinished),
            std::vector<std::string>{"shmr_copy"});
  EXPECT_EQ(here.entries(), std::vector<std::string>{"shmr_own"});
  EXPECT_EQ(shmr::prune_regions(here.path()), std::vector<std::string>{"shmr_own"});
}

TEST(Replica, KeptUntilReleased) {
  TempDir origin_dir, here;
  auto origin = make_region(origin_dir, "shmr_released");
  std::vector<unsigned char> bytes = bytes_of(*origin);
  publish_copy(here, "shmr_released", identity_of(*origin, "hostA:0:26"), bytes);
  shmr::keep_replica(here.path(), "shmr_released");
  EXPECT_EQ(here.entries(), std::vector<std::string>{"shmr_released"});
  EXPECT_TRUE(shmr::release_replicas({"shmr_other"}).empty());
  EXPECT_EQ(shmr::release_replicas({"shmr_released"}), std::vector<std::string>{"shmr_released"});
  EXPECT_TRUE(here.entries().empty());
}

// A host whose shm directory has no room for the copy (a container's 64 MB
// one): the copy is a data file in the fallback directory, found through a
// locator, and is listed, kept, released, superseded and pruned as a copy.
TEST(Replica, WithoutRoomInShmACopyIsAFileBehindALocator) {
  TempDir origin_dir, here, data;
  auto origin = make_region(origin_dir, "shmr_on_disk");
  std::vector<unsigned char> bytes = bytes_of(*origin);
  RegionIdentity id = identity_of(*origin, "hostA:0:26");
  const auto publish_on_disk = [&](const RegionIdentity& who) {
    // A capacity of one byte: no room in shm, whatever the file system has.
    ReplicaBuilder builder(here.path(), "shmr_on_disk", who, data.path(), 1);
    EXPECT_TRUE(builder.file_backed());
    builder.write(0, bytes.data(), bytes.size());
    builder.publish();
  };
  publish_on_disk(id);
  EXPECT_EQ(here.entries(), std::vector<std::string>{"shmr_on_disk"});
  EXPECT_EQ(data.entries(), std::vector<std::string>{"shmr_on_disk"});
  EXPECT_EQ(shmr::find_local_copy(here.path(), "shmr_on_disk", id, "hostB:0:41"), LocalCopy::Replica);
  auto copy = shmr::open_mapped_region(here.path(), "shmr_on_disk");
  EXPECT_TRUE(copy->reader().is_replica());
  EXPECT_EQ(std::memcmp(static_cast<const unsigned char*>(copy->map().data()) + shmr::format::kHeaderSizeV2,
                        bytes.data() + shmr::format::kHeaderSizeV2, bytes.size() - shmr::format::kHeaderSizeV2),
            0);
  auto regions = shmr::list_regions(here.path());
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_TRUE(regions[0].replica);
  EXPECT_EQ(regions[0].backing, shmr::Backing::File);
  EXPECT_EQ(regions[0].creator.pid, ::getpid());
  copy.reset();

  shmr::keep_replica(here.path(), "shmr_on_disk");
  EXPECT_EQ(shmr::release_replicas({"shmr_on_disk"}), std::vector<std::string>{"shmr_on_disk"});
  EXPECT_TRUE(here.entries().empty());
  EXPECT_TRUE(data.entries().empty());

  // A copy of an earlier region of the name makes way, data file and locator.
  publish_on_disk(id);
  RegionIdentity later = id;
  later.created_unix_ms += 5000;
  EXPECT_EQ(shmr::find_local_copy(here.path(), "shmr_on_disk", later, "hostB:0:41"), LocalCopy::Superseded);
  EXPECT_TRUE(shmr::remove_superseded_copy(here.path(), "shmr_on_disk", later, "hostB:0:41"));
  EXPECT_TRUE(here.entries().empty());
  EXPECT_TRUE(data.entries().empty());

  // One whose keeper died goes at the next fetch's prune.
  int code = -1;
  run_and_reap_child(
      [&] {
        publish_on_disk(id);
        return 0;
      },
      &code);
  ASSERT_EQ(code, 0);
  EXPECT_EQ(data.entries(), std::vector<std::string>{"shmr_on_disk"});
  EXPECT_EQ(shmr::prune_regions(here.path(), shmr::PruneScope::CopiesAndUnfinished),
            std::vector<std::string>{"shmr_on_disk"});
  EXPECT_TRUE(here.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

// The locator's room in shm is taken with the copy's, before any byte
// comes: a shm directory too full even for it fails the fetch at once (it
// failed at publish(), once the whole copy had come over the network). The
// reservation is no copy to the host's other processes until published.
TEST(Replica, AFileBackedCopyReservesItsLocatorBeforeTheCopy) {
  TempDir origin_dir, here, data;
  auto origin = make_region(origin_dir, "shmr_reserved");
  std::vector<unsigned char> bytes = bytes_of(*origin);
  RegionIdentity id = identity_of(*origin, "hostA:0:26");
  const std::string reservation = shmr::temporary_name(::getpid(), "shmr_reserved");
  {
    ReplicaBuilder builder(here.path(), "shmr_reserved", id, data.path(), 1);
    ASSERT_TRUE(builder.file_backed());
    EXPECT_EQ(here.entries(), std::vector<std::string>{reservation});
    EXPECT_EQ(shmr::find_local_copy(here.path(), "shmr_reserved", id, "hostB:0:41"), LocalCopy::Absent);
  }
  // Unpublished: the reservation goes with the builder.
  EXPECT_TRUE(here.entries().empty());
  EXPECT_TRUE(data.entries().empty());
  {
    ReplicaBuilder builder(here.path(), "shmr_reserved", id, data.path(), 1);
    builder.write(0, bytes.data(), bytes.size());
    builder.publish();
  }
  EXPECT_EQ(here.entries(), std::vector<std::string>{"shmr_reserved"});
  EXPECT_EQ(shmr::find_local_copy(here.path(), "shmr_reserved", id, "hostB:0:41"), LocalCopy::Replica);
  shmr::keep_replica(here.path(), "shmr_reserved");
  EXPECT_EQ(shmr::release_replicas({"shmr_reserved"}), std::vector<std::string>{"shmr_reserved"});
  EXPECT_TRUE(here.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

// A fetcher killed in the middle of a copy kept as a file: its unfinished
// data file is in its own session directory, which nothing else leads to;
// the next fetch's prune finds it through the reserved locator.
TEST(Replica, AFetcherKilledMidwayLeavesNoUnfinishedFileCopy) {
  TempDir origin_dir, here, data;
  auto origin = make_region(origin_dir, "shmr_cut_short");
  std::vector<unsigned char> bytes = bytes_of(*origin);
  RegionIdentity id = identity_of(*origin, "hostA:0:26");
  int code = -1;
  run_and_reap_child(
      [&] {
        // Never destroyed: the child ends as a killed process would.
        auto* builder = new ReplicaBuilder(here.path(), "shmr_cut_short", id, data.path(), 1);
        builder->write(0, bytes.data(), bytes.size() / 2);
        return builder->file_backed() ? 0 : 3;
      },
      &code);
  ASSERT_EQ(code, 0);
  ASSERT_EQ(here.entries().size(), 1u);
  ASSERT_EQ(data.entries().size(), 1u);
  shmr::prune_regions(here.path(), shmr::PruneScope::CopiesAndUnfinished);
  EXPECT_TRUE(here.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

// With room in shm, or without a fallback directory, the copy is in shm as
// before; a fallback must be an absolute path other than the shm directory.
TEST(Replica, ACopyGoesToTheFallbackOnlyWhenShmHasNoRoom) {
  TempDir origin_dir, here, data;
  auto origin = make_region(origin_dir, "shmr_in_shm");
  RegionIdentity id = identity_of(*origin, "hostA:0:26");
  EXPECT_FALSE(ReplicaBuilder(here.path(), "shmr_in_shm", id, data.path(), 0).file_backed());
  EXPECT_FALSE(ReplicaBuilder(here.path(), "shmr_in_shm", id, "", 1).file_backed());
  EXPECT_THROW(ReplicaBuilder(here.path(), "shmr_in_shm", id, "relative/dir", 1), shmr::Error);
  EXPECT_THROW(ReplicaBuilder(here.path(), "shmr_in_shm", id, here.path(), 1), shmr::Error);
  // Unpublished builders leave nothing.
  EXPECT_TRUE(here.entries().empty());
  EXPECT_TRUE(data.entries().empty());
}

TEST(FormatVersion, VersionOneRegionsStillRead) {
  // A version 1 region: 128-byte header, node table right after it.
  std::vector<double> values{7, 8, 9};
  shmr::RegionDescription d;
  d.nodes.push_back(vector_node(NodeKind::Double, values.data(), values.size()));
  Buffer v2 = write_region(d);
  const uint64_t shift = shmr::format::kHeaderSizeV2 - shmr::format::kHeaderSizeV1;
  Buffer v1(v2.size() - shift);
  std::memcpy(v1.data() + shmr::format::kHeaderSizeV1, v2.data() + shmr::format::kHeaderSizeV2,
              v2.size() - shmr::format::kHeaderSizeV2);
  auto header = v2.get<shmr::format::RegionHeader>(0);
  header.format_version = 1;
  header.header_size = shmr::format::kHeaderSizeV1;
  header.total_size = v1.size();
  header.node_table_offset -= shift;
  v1.put(0, header);
  auto record = v1.get<shmr::format::NodeRecord>(header.node_table_offset);
  record.data_offset -= shift;
  v1.put(header.node_table_offset, record);
  shmr::RegionReader reader(v1.data(), v1.size(), "shmr_v1");
  EXPECT_FALSE(reader.is_replica());
  auto node = reader.node(0);
  EXPECT_EQ(static_cast<const double*>(node.data())[2], 9.0);
  // A version 1 header cannot claim to be a replica.
  header.flags |= shmr::format::kFlagReplica;
  v1.put(0, header);
  EXPECT_CORRUPT(shmr::RegionReader(v1.data(), v1.size(), "shmr_v1"));
}

TEST(Replica, MappingACopyNeverClaimsIt) {
  // The copy's header names the origin's creator, here this very process
  // (on a real other host, an unrelated one that may share its PID): mapping
  // the copy must not make this process its owner, which would remove it
  // once the mapping is gone.
  TempDir origin_dir, here;
  auto origin = make_region(origin_dir, "shmr_mapped_copy");
  std::vector<unsigned char> bytes = bytes_of(*origin);
  publish_copy(here, "shmr_mapped_copy", identity_of(*origin, "hostA:0:26"), bytes);
  {
    auto copy = shmr::open_mapped_region(here.path(), "shmr_mapped_copy");
    EXPECT_TRUE(copy->reader().is_replica());
  }
  shmr::release_all_owned_regions();
  EXPECT_EQ(here.entries(), std::vector<std::string>{"shmr_mapped_copy"});
}
