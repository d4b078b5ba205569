// Shared helpers for the shmr core tests.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "error.h"
#include "format.h"
#include "writer.h"

namespace shmr_test {

inline const char* kind_name(shmr::ErrorKind kind) {
  switch (kind) {
    case shmr::ErrorKind::InvalidArgument: return "InvalidArgument";
    case shmr::ErrorKind::NotFound: return "NotFound";
    case shmr::ErrorKind::AlreadyExists: return "AlreadyExists";
    case shmr::ErrorKind::Corrupt: return "Corrupt";
    case shmr::ErrorKind::NoSpace: return "NoSpace";
    case shmr::ErrorKind::System: return "System";
    case shmr::ErrorKind::Closed: return "Closed";
  }
  return "?";
}

}  // namespace shmr_test

namespace shmr_test {

// Success when `body` throws shmr::Error of exactly `expected`.
template <typename Body>
::testing::AssertionResult throws_shmr_error(shmr::ErrorKind expected, Body&& body,
                                             const char* text) {
  try {
    body();
  } catch (const shmr::Error& e) {
    if (e.kind() == expected) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "expected shmr::Error(" << kind_name(expected) << ") but got shmr::Error("
           << kind_name(e.kind()) << "): " << e.what() << "\n  from: " << text;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "expected shmr::Error(" << kind_name(expected)
                                         << ") but got std::exception: " << e.what()
                                         << "\n  from: " << text;
  }
  return ::testing::AssertionFailure() << "expected shmr::Error(" << kind_name(expected)
                                       << ") but nothing was thrown\n  from: " << text;
}

}  // namespace shmr_test

// Expects the statement(s) to throw shmr::Error of exactly `expected_kind`.
// Further context can be streamed in: EXPECT_CORRUPT(f()) << "case " << i;
#define EXPECT_SHMR_ERROR(expected_kind, ...)                                          \
  switch (0)                                                                           \
  case 0:                                                                              \
  default:                                                                             \
    if (const ::testing::AssertionResult shmr_test_result_ = ::shmr_test::throws_shmr_error( \
            expected_kind, [&] { __VA_ARGS__; }, #__VA_ARGS__))                        \
      ;                                                                                \
    else                                                                               \
      ADD_FAILURE() << shmr_test_result_.message()

#define EXPECT_CORRUPT(...) EXPECT_SHMR_ERROR(::shmr::ErrorKind::Corrupt, __VA_ARGS__)
#define EXPECT_INVALID(...) EXPECT_SHMR_ERROR(::shmr::ErrorKind::InvalidArgument, __VA_ARGS__)

namespace shmr_test {

// Heap bytes of exactly the requested size (so AddressSanitizer sees every
// overrun), 64-byte aligned like a mapping.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t size, unsigned char fill = 0) : size_(size) {
    void* p = nullptr;
    if (::posix_memalign(&p, 64, size == 0 ? 1 : size) != 0) throw std::bad_alloc();
    data_ = static_cast<unsigned char*>(p);
    std::memset(data_, fill, size);
  }
  Buffer(const unsigned char* bytes, size_t size) : Buffer(size) {
    if (size > 0) std::memcpy(data_, bytes, size);
  }
  Buffer(const Buffer& other) : Buffer(other.data_, other.size_) {}
  Buffer& operator=(const Buffer& other) {
    Buffer copy(other);
    swap(copy);
    return *this;
  }
  Buffer(Buffer&& other) noexcept { swap(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    swap(other);
    return *this;
  }
  ~Buffer() { std::free(data_); }

  void swap(Buffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }
  unsigned char* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  Buffer prefix(size_t n) const { return Buffer(data_, n); }

  template <typename T>
  T get(uint64_t offset) const {
    T value;
    std::memcpy(&value, data_ + offset, sizeof value);
    return value;
  }
  template <typename T>
  void put(uint64_t offset, T value) {
    std::memcpy(data_ + offset, &value, sizeof value);
  }

 private:
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

struct TestString {
  std::string bytes;
  shmr::format::StringEncoding encoding;
};

class VectorStrings : public shmr::StringSource {
 public:
  VectorStrings() = default;
  explicit VectorStrings(std::vector<TestString> items) : items(std::move(items)) {}
  shmr::StringRef at(uint64_t i) const override {
    const TestString& s = items.at(i);
    return {s.bytes.data(), s.bytes.size(), s.encoding};
  }
  std::vector<TestString> items;
};

inline shmr::NodeSpec vector_node(shmr::format::NodeKind kind, const void* data, uint64_t length) {
  shmr::NodeSpec spec;
  spec.kind = kind;
  spec.length = length;
  spec.bytes = data;
  spec.byte_count = length * shmr::format::element_size(kind);
  return spec;
}

inline shmr::NodeSpec string_node(const shmr::StringSource* source, uint64_t length) {
  shmr::NodeSpec spec;
  spec.kind = shmr::format::NodeKind::String;
  spec.length = length;
  spec.strings = source;
  return spec;
}

inline shmr::NodeSpec list_node(std::vector<uint64_t> children) {
  shmr::NodeSpec spec;
  spec.kind = shmr::format::NodeKind::List;
  spec.length = children.size();
  spec.children = std::move(children);
  return spec;
}

inline constexpr int64_t kTestPid = 4242;
inline constexpr uint64_t kTestTicks = 987654321;
inline constexpr int64_t kTestMillis = 1700000000123;

// Lays out and writes `description` into a fresh buffer pre-filled with
// `fill` (the writer must not depend on zeroed memory).
inline Buffer write_region(const shmr::RegionDescription& description, unsigned char fill = 0xCD) {
  shmr::RegionWriter writer(description);
  Buffer buffer(writer.total_size(), fill);
  writer.write(buffer.data(), buffer.size(), kTestPid, kTestTicks, kTestMillis);
  return buffer;
}

inline uint64_t node_record_offset(const Buffer& region, uint64_t index) {
  auto table = region.get<uint64_t>(offsetof(shmr::format::RegionHeader, node_table_offset));
  return table + index * sizeof(shmr::format::NodeRecord);
}

inline shmr::format::NodeRecord node_record(const Buffer& region, uint64_t index) {
  return region.get<shmr::format::NodeRecord>(node_record_offset(region, index));
}

// A fresh directory under `parent` (/tmp by default; /dev/shm for another
// file system), removed (with its files) at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& parent = "/tmp") {
    std::string pattern = parent + "/shmr_test_XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed: " << std::strerror(errno);
      return;
    }
    path_ = buffer.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (path_.empty()) return;
    for (const std::string& entry : entries()) {
      std::string p = file(entry);
      struct stat st;
      if (::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        ::rmdir(p.c_str());
      else
        ::unlink(p.c_str());
    }
    ::rmdir(path_.c_str());
  }

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  // Names in the directory, sorted, without "." and "..".
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    DIR* dir = ::opendir(path_.c_str());
    if (dir == nullptr) return out;
    while (struct dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(dir);
    std::sort(out.begin(), out.end());
    return out;
  }

  bool exists(const std::string& name) const {
    struct stat st;
    return ::lstat(file(name).c_str(), &st) == 0;
  }

  void write_file(const std::string& name, const std::string& bytes, mode_t mode = 0600) const {
    int fd = ::open(file(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }

  std::string read_file(const std::string& name) const {
    std::string out;
    int fd = ::open(file(name).c_str(), O_RDONLY);
    if (fd < 0) return out;
    char chunk[4096];
    ssize_t got;
    while ((got = ::read(fd, chunk, sizeof chunk)) > 0) out.append(chunk, static_cast<size_t>(got));
    ::close(fd);
    return out;
  }

 private:
  std::string path_;
};

// Runs `body` in a forked child and returns its exit status (0..255), or
// 1000 + signal number when it was killed. The child leaves with _exit, so
// no destructor and no gtest machinery of the parent runs there.
inline int run_in_child(const std::function<int()>& body, unsigned timeout_seconds = 20) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::alarm(timeout_seconds);
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    std::_Exit(code);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return -2;
}

// A forked child that stays alive holding what `setup` returns (its
// regions belong to a live process) until release(); then it _Exit()s
// without cleanup and is reaped. `setup` returns nullptr on failure.
class LiveChild {
 public:
  explicit LiveChild(const std::function<std::shared_ptr<void>()>& setup) {
    int ready[2], go[2];
    if (::pipe(ready) != 0 || ::pipe(go) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(go[1]);
      ::alarm(20);
      std::shared_ptr<void> held;
      try {
        held = setup();
      } catch (...) {
      }
      char ok = held != nullptr;
      (void)!::write(ready[1], &ok, 1);
      char c;
      (void)!::read(go[0], &c, 1);
      std::_Exit(0);
    }
    ::close(ready[1]);
    ::close(go[0]);
    go_ = go[1];
    char ok = 0;
    ready_ = pid_ > 0 && ::read(ready[0], &ok, 1) == 1 && ok == 1;
    ::close(ready[0]);
  }
  LiveChild(const LiveChild&) = delete;
  LiveChild& operator=(const LiveChild&) = delete;
  ~LiveChild() { release(); }

  bool ready() const { return ready_; }

  // Lets the child exit and reaps it.
  void release() {
    if (pid_ <= 0) return;
    ::close(go_);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
  bool ready_ = false;
};

// Forks a child that runs `body` and then _exit()s; returns the child's pid
// after it has been reaped (so the pid names a dead process).
inline pid_t run_and_reap_child(const std::function<int()>& body, int* exit_code = nullptr) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::alarm(20);
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    std::_Exit(code);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (exit_code != nullptr) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return pid;
}

}  // namespace shmr_test
