// RegionSink: every byte lands where it was put, whichever path a put takes
// in FileSink (gathered in its buffer, written at once, or written by its
// background thread in pieces), and the writer's output through a file is
// byte for byte its output into memory.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "region_sink.h"
#include "test_util.h"
#include "writer.h"

using shmr::FileSink;
using shmr::MemorySink;
using shmr::format::NodeKind;
using shmr_test::TempDir;

namespace {

// Non-zero bytes that differ with their position, so that a byte written at
// the wrong offset, twice or not at all shows.
std::vector<unsigned char> pattern(uint64_t size, unsigned seed) {
  std::vector<unsigned char> out(size);
  uint32_t x = seed * 2654435761u + 1u;
  for (uint64_t i = 0; i < size; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<unsigned char>((x >> 24) | 1u);
  }
  return out;
}

class ScratchFile {
 public:
  ScratchFile(const TempDir& dir, uint64_t size) : path_(dir.file("region")) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    EXPECT_EQ(::ftruncate(fd_, static_cast<off_t>(size)), 0);
  }
  ~ScratchFile() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  std::vector<unsigned char> contents(uint64_t size) const {
    std::vector<unsigned char> out(size);
    uint64_t done = 0;
    while (done < size) {
      ssize_t got = ::pread(fd_, out.data() + done, size - done, static_cast<off_t>(done));
      if (got <= 0) break;
      done += static_cast<uint64_t>(got);
    }
    EXPECT_EQ(done, size);
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

struct Put {
  uint64_t offset;
  uint64_t size;
  bool lasting;
};

// Puts `puts` (non-overlapping) into a file and into memory; the file must
// hold exactly the memory's bytes, zeros wherever nothing was put.
void expect_file_matches_memory(const std::vector<Put>& puts, uint64_t total) {
  TempDir dir("/dev/shm");
  ScratchFile file(dir, total);
  std::vector<unsigned char> expected(total, 0);
  std::vector<std::vector<unsigned char>> sources;
  for (size_t i = 0; i < puts.size(); ++i) sources.push_back(pattern(puts[i].size, unsigned(i)));
  {
    FileSink sink(file.fd(), total, dir.path());
    MemorySink memory(expected.data(), total);
    for (size_t i = 0; i < puts.size(); ++i) {
      const Put& p = puts[i];
      memory.put(p.offset, sources[i].data(), p.size);
      if (p.lasting) {
        sink.put_lasting(p.offset, sources[i].data(), p.size);
      } else {
        // A transient put's data may change at once: the sink must have
        // taken its own copy.
        std::vector<unsigned char> transient = sources[i];
        sink.put(p.offset, transient.data(), p.size);
        std::fill(transient.begin(), transient.end(), 0xEE);
      }
    }
    sink.finish();
  }
  std::vector<unsigned char> got = file.contents(total);
  ASSERT_EQ(got.size(), expected.size());
  for (uint64_t i = 0; i < total; ++i) {
    if (got[i] != expected[i]) {
      FAIL() << "first wrong byte at offset " << i << " of " << total;
    }
  }
}

// Puts one after another with the given sizes, separated by `gap` bytes.
std::vector<Put> run_of(const std::vector<uint64_t>& sizes, uint64_t gap, bool lasting,
                        uint64_t& total) {
  std::vector<Put> puts;
  uint64_t at = 0;
  for (uint64_t size : sizes) {
    puts.push_back({at, size, lasting});
    at += size + gap;
  }
  total = at;
  return puts;
}

const uint64_t kBuffer = FileSink::kBufferBytes;
const uint64_t kBackground = FileSink::kBackgroundBytes;

}  // namespace

TEST(FileSink, SmallPutsAroundTheBufferSize) {
  for (uint64_t gap : {uint64_t{0}, uint64_t{1}, uint64_t{63}, uint64_t{64}, uint64_t{4097}}) {
    uint64_t total = 0;
    auto puts = run_of({1, 7, kBuffer - 9, 1, kBuffer - 1, kBuffer, kBuffer + 1, 3, 5000}, gap,
                       false, total);
    SCOPED_TRACE("gap " + std::to_string(gap));
    expect_file_matches_memory(puts, total);
  }
}

TEST(FileSink, WritesAroundThePipeThreshold) {
  // Below kSpliceBytes by pwrite(), from it on through a pipe of (at most)
  // 1 MB, so runs of odd lengths cross the pipe's capacity too.
  const uint64_t pipe_size = FileSink::kSpliceBytes;
  uint64_t total = 0;
  auto puts = run_of({pipe_size - 1, pipe_size, pipe_size + 1, (uint64_t{1} << 20) + 4095,
                      3 * (uint64_t{1} << 20) + 17},
                     0, false, total);
  expect_file_matches_memory(puts, total);
  // The source not aligned to a page: the pipe takes parts of pages.
  auto shifted = run_of({5, pipe_size + 3, 7, 2 * pipe_size + 1}, 0, false, total);
  expect_file_matches_memory(shifted, total);
}

TEST(FileSink, LastingPutsAroundTheBackgroundThreshold) {
  uint64_t total = 0;
  auto puts = run_of({kBackground - 1, 13, kBackground, kBackground + 1, 1, 3 * kBackground + 5},
                     64, true, total);
  expect_file_matches_memory(puts, total);
}

TEST(FileSink, ABackgroundJobLongerThanOnePiece) {
  // The background thread writes 64 MB at a time.
  uint64_t total = 0;
  auto puts = run_of({(uint64_t{64} << 20) * 2 + 12345, 77}, 0, true, total);
  expect_file_matches_memory(puts, total);
}

TEST(FileSink, ManyInterleavedPutsInAnyOrder) {
  // Lasting and transient puts of odd sizes, in shuffled order, as a
  // region with many nodes makes them.
  std::mt19937 rng(20240611);
  std::vector<uint64_t> sizes;
  for (int i = 0; i < 400; ++i) {
    switch (rng() % 5) {
      case 0: sizes.push_back(1 + rng() % 63); break;
      case 1: sizes.push_back(1 + rng() % 5000); break;
      case 2: sizes.push_back(kBuffer - 2 + rng() % 5); break;
      case 3: sizes.push_back(kBackground - 2 + rng() % 5); break;
      default: sizes.push_back(rng() % 300000); break;
    }
  }
  std::vector<Put> puts;
  uint64_t at = 0;
  for (uint64_t size : sizes) {
    if (size == 0) continue;
    puts.push_back({at, size, rng() % 2 == 0});
    at = shmr::format::align_up(at + size) + (rng() % 3 == 0 ? 64 : 0);
  }
  std::shuffle(puts.begin(), puts.end(), rng);
  expect_file_matches_memory(puts, at);
}

TEST(FileSink, RefusesAPutOutsideTheFile) {
  TempDir dir;
  ScratchFile file(dir, 100);
  FileSink sink(file.fd(), 100, dir.path());
  unsigned char bytes[10] = {};
  EXPECT_INVALID(sink.put(95, bytes, 10));
  EXPECT_INVALID(sink.put_lasting(UINT64_MAX - 2, bytes, 10));
}

TEST(FileSink, AFullFileSystemIsNoSpaceFromEitherThread) {
  // RLIMIT_FSIZE stands in for a full file system: writes past it fail with
  // EFBIG (SIGXFSZ ignored), as ENOSPC would. Run in a child, which the
  // limit does not outlive.
  TempDir dir;
  const uint64_t total = 3 * kBackground;
  for (bool lasting : {false, true}) {
    int status = shmr_test::run_in_child([&]() -> int {
      ::signal(SIGXFSZ, SIG_IGN);
      std::string path = dir.file(lasting ? "lasting" : "direct");
      int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) return 10;
      struct rlimit limit = {kBackground, kBackground};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 11;
      std::vector<unsigned char> data = pattern(total, 3);
      int code = 12;
      try {
        FileSink sink(fd, total, dir.path());
        if (lasting) {
          sink.put_lasting(0, data.data(), total);
        } else {
          sink.put(0, data.data(), total);
        }
        sink.finish();
      } catch (const shmr::Error& e) {
        code = e.kind() == shmr::ErrorKind::NoSpace ? 0 : 13;
      }
      ::unlink(path.c_str());
      return code;
    });
    EXPECT_EQ(status, 0) << (lasting ? "background write" : "direct write");
  }
}

namespace {

// Writes `data` (its first `size` bytes) at offset 0 of a new file at
// `path` through a FileSink on the calling thread; 0, or which step failed.
int write_file_through_sink(const std::string& path, const std::string& directory,
                            const unsigned char* data, uint64_t size) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 1;
  int code = 0;
  try {
    FileSink sink(fd, size, directory);
    sink.put(0, data, size);
    sink.finish();
  } catch (const shmr::Error&) {
    code = 2;
  }
  ::close(fd);
  return code;
}

// 0 when the file at `path` holds exactly the first `size` bytes of `data`.
int compare_file(const std::string& path, const unsigned char* data, uint64_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 3;
  std::vector<unsigned char> got(size + 1);
  uint64_t done = 0;
  for (;;) {
    ssize_t n = ::pread(fd, got.data() + done, got.size() - done, static_cast<off_t>(done));
    if (n <= 0) break;
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
  if (done != size) return 4;
  return std::memcmp(got.data(), data, size) == 0 ? 0 : 5;
}

}  // namespace

TEST(FileSink, AForkedChildAndItsParentWriteAtOnceWithoutMixing) {
  // Each thread keeps its pipe between writes. A forked child must not
  // splice through its parent's: here both write at once, many times,
  // unaligned runs just long enough to go through the pipe, each into its
  // own file (through one pipe, one process's splice() soon takes bytes the
  // other handed to it).
  TempDir dir("/dev/shm");
  const uint64_t size = FileSink::kSpliceBytes + 3;
  std::vector<unsigned char> parent_data = pattern(size + 16, 21);
  std::vector<unsigned char> child_data = pattern(size + 16, 22);
  // The parent's pipe exists before the fork.
  ASSERT_EQ(write_file_through_sink(dir.file("warm"), dir.path(), parent_data.data() + 5, size), 0);
  // Both start at once: the child waits for the parent's byte.
  int start[2];
  ASSERT_EQ(::pipe(start), 0);
  std::fflush(nullptr);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  const int rounds = 1000;
  if (child == 0) {
    ::alarm(60);
    char go = 0;
    if (::read(start[0], &go, 1) != 1) std::_Exit(1);
    int code = 0;
    for (int i = 0; i < rounds && code == 0; ++i) {
      std::string path = dir.file("child");
      code = write_file_through_sink(path, dir.path(), child_data.data() + 7, size);
      if (code == 0) code = compare_file(path, child_data.data() + 7, size);
      if (code != 0) code += 10 * (i + 1);
    }
    std::_Exit(code);
  }
  ASSERT_EQ(::write(start[1], "g", 1), 1);
  ::close(start[0]);
  ::close(start[1]);
  int parent_code = 0;
  for (int i = 0; i < rounds && parent_code == 0; ++i) {
    std::string path = dir.file("parent");
    parent_code = write_file_through_sink(path, dir.path(), parent_data.data() + 5, size);
    if (parent_code == 0) parent_code = compare_file(path, parent_data.data() + 5, size);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  EXPECT_EQ(parent_code, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's write (step % 10) failed in round / 10";
  for (const char* name : {"warm", "parent", "child"}) ::unlink(dir.file(name).c_str());
}

TEST(FileSink, AWriteAfterOneThatFailedHalfwayIsExact) {
  // A write that fails with bytes still in the thread's pipe must not hand
  // them to the next write. RLIMIT_FSIZE fails the first write part way
  // through a full pipe (as a full file system would); the limit is then
  // lifted and another file is written on the same thread.
  TempDir dir("/dev/shm");
  const uint64_t size = 3 * (uint64_t{1} << 20) + 5;
  int status = shmr_test::run_in_child([&]() -> int {
    ::signal(SIGXFSZ, SIG_IGN);
    std::vector<unsigned char> first = pattern(size, 31);
    std::vector<unsigned char> second = pattern(size, 32);
    struct rlimit limit;
    if (::getrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
    const rlim_t unlimited = limit.rlim_cur;
    limit.rlim_cur = (uint64_t{1} << 20) + 12345;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 11;
    if (write_file_through_sink(dir.file("failed"), dir.path(), first.data(), size) != 2) return 12;
    limit.rlim_cur = unlimited;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 13;
    int code = write_file_through_sink(dir.file("next"), dir.path(), second.data(), size);
    if (code == 0) code = compare_file(dir.file("next"), second.data(), size);
    ::unlink(dir.file("failed").c_str());
    ::unlink(dir.file("next").c_str());
    return code == 0 ? 0 : 20 + code;
  });
  EXPECT_EQ(status, 0) << "12: the limited write did not fail; 2x: the next write was wrong";
}

TEST(FileSink, DestroyedWithBackgroundWorkPendingStopsCleanly) {
  TempDir dir("/dev/shm");
  const uint64_t total = 4 * kBackground;
  ScratchFile file(dir, total);
  std::vector<unsigned char> data = pattern(total, 9);
  {
    FileSink sink(file.fd(), total, dir.path());
    sink.put_lasting(0, data.data(), 2 * kBackground);
    sink.put_lasting(2 * kBackground, data.data() + 2 * kBackground, 2 * kBackground);
    // No finish(): as when the writer throws half-way.
  }
  // The source may go now; nothing reads it any more.
  std::vector<unsigned char>().swap(data);
  SUCCEED();
}

namespace {

// A description with many nodes of every kind, payloads around the sink's
// thresholds included.
struct ManyNodes {
  std::vector<std::vector<double>> doubles;
  std::vector<std::vector<int32_t>> ints;
  std::vector<std::vector<unsigned char>> raws;
  shmr_test::VectorStrings strings;
  shmr::RegionDescription description;

  ManyNodes() {
    std::mt19937 rng(7);
    for (int i = 0; i < 40; ++i) {
      const char* text[] = {"", "a", "\xc3\xa9t\xc3\xa9", "a longer string of some bytes"};
      strings.items.push_back({std::string(text[i % 4]) + std::to_string(i),
                               i % 7 == 3 ? shmr::format::StringEncoding::Missing
                                          : shmr::format::StringEncoding::Utf8});
    }
    const uint64_t double_lengths[] = {0, 1, 3, 1023, FileSink::kBufferBytes / 8,
                                       FileSink::kBufferBytes / 8 + 1,
                                       FileSink::kBackgroundBytes / 8 - 1,
                                       FileSink::kBackgroundBytes / 8,
                                       FileSink::kBackgroundBytes / 8 + 3};
    std::vector<uint64_t> children;
    auto& nodes = description.nodes;
    for (int round = 0; round < 30; ++round) {
      uint64_t len = double_lengths[round % 9];
      std::vector<double> d(len);
      for (auto& v : d) v = static_cast<double>(rng()) / 7.0;
      doubles.push_back(std::move(d));
      shmr::NodeSpec dn = shmr_test::vector_node(NodeKind::Double, doubles.back().data(), len);
      if (round % 4 == 1) dn.attributes.push_back({"names" + std::to_string(round), 0});
      if (round == 0) dn.attributes.clear();
      nodes.push_back(std::move(dn));
      children.push_back(nodes.size() - 1);

      std::vector<int32_t> iv(static_cast<size_t>(1 + rng() % 777));
      for (auto& v : iv) v = static_cast<int32_t>(rng());
      ints.push_back(std::move(iv));
      nodes.push_back(shmr_test::vector_node(NodeKind::Integer, ints.back().data(),
                                             ints.back().size()));
      children.push_back(nodes.size() - 1);

      raws.push_back(pattern(1 + rng() % 100, unsigned(round)));
      shmr::NodeSpec blob;
      blob.kind = NodeKind::Serialized;
      blob.bytes = raws.back().data();
      blob.byte_count = raws.back().size();
      nodes.push_back(std::move(blob));
      children.push_back(nodes.size() - 1);

      nodes.push_back(shmr_test::string_node(&strings, 1 + round % strings.items.size()));
      children.push_back(nodes.size() - 1);
    }
    nodes.push_back(shmr_test::list_node(children));
    description.root = nodes.size() - 1;
    description.original_class = "list";
  }
};

}  // namespace

TEST(RegionWriterFile, WritesThroughAFileExactlyWhatItWritesIntoMemory) {
  ManyNodes many;
  shmr::RegionWriter writer(many.description);
  const uint64_t total = writer.total_size();
  std::vector<unsigned char> expected(total, 0);
  writer.write(expected.data(), total, shmr_test::kTestPid, shmr_test::kTestTicks,
               shmr_test::kTestMillis);

  TempDir dir("/dev/shm");
  ScratchFile file(dir, total);
  {
    FileSink sink(file.fd(), total, dir.path());
    writer.write(sink, shmr_test::kTestPid, shmr_test::kTestTicks, shmr_test::kTestMillis,
                 many.description.flags);
  }
  std::vector<unsigned char> got = file.contents(total);
  ASSERT_EQ(got.size(), total);
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < total; ++i) wrong += got[i] != expected[i];
  EXPECT_EQ(wrong, 0u) << "of " << total << " bytes";
}

TEST(RegionWriterFile, HeaderFlagsComeFromTheCaller) {
  ManyNodes many;
  shmr::RegionWriter writer(many.description);
  const uint64_t total = writer.total_size();
  TempDir dir("/dev/shm");
  ScratchFile file(dir, total);
  {
    FileSink sink(file.fd(), total, dir.path());
    writer.write(sink, 1, 2, 3, shmr::format::kFlagReadonly | shmr::format::kFlagPersistent);
  }
  std::vector<unsigned char> got = file.contents(sizeof(shmr::format::RegionHeader));
  shmr::format::RegionHeader header;
  std::memcpy(&header, got.data(), sizeof header);
  EXPECT_EQ(header.flags, shmr::format::kFlagReadonly | shmr::format::kFlagPersistent);
  EXPECT_EQ(header.total_size, total);
  EXPECT_EQ(std::memcmp(header.magic, shmr::format::kMagic, sizeof header.magic), 0);
}
