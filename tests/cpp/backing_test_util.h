// Helpers shared by the tests of the shm and file backings, writable and
// automatic regions, locators and ownership (test_backings.cpp and friends).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "listing.h"
#include "locator.h"
#include "process.h"
#include "store.h"
#include "test_util.h"

namespace shmr_backing_test {

using shmr_test::string_node;
using shmr_test::TempDir;
using shmr_test::vector_node;
using shmr_test::VectorStrings;

// c(1.5, 2.5, 3.5) with names c("a", "b", NA), or `count` doubles 0.5, 1.5,
// ... (a region of about count * 8 bytes) without names.
struct Sample {
  std::vector<double> values{1.5, 2.5, 3.5};
  VectorStrings names{{{"a", shmr::format::StringEncoding::Utf8},
                       {"b", shmr::format::StringEncoding::Utf8},
                       {"", shmr::format::StringEncoding::Missing}}};
  shmr::RegionDescription description;
  Sample() {
    description.nodes.push_back(string_node(&names, 3));
    auto values_node = vector_node(shmr::format::NodeKind::Double, values.data(), 3);
    values_node.attributes = {{"names", 0}};
    description.nodes.push_back(values_node);
    description.root = 1;
    description.original_class = "numeric";
  }
  explicit Sample(size_t count) : values(count) {
    for (size_t i = 0; i < count; ++i) values[i] = static_cast<double>(i) + 0.5;
    description.nodes.push_back(
        vector_node(shmr::format::NodeKind::Double, values.data(), values.size()));
    description.root = 0;
    description.original_class = "numeric";
  }
  uint64_t region_size() const { return shmr::RegionWriter(description).total_size(); }
};

inline shmr::CreateOptions shm_options(const TempDir& shm, std::string name = "",
                                       bool persistent = false, bool writable = false) {
  shmr::CreateOptions o;
  o.backing = shmr::Backing::Shm;
  o.directory = shm.path();
  o.name = std::move(name);
  o.persistent = persistent;
  o.writable = writable;
  return o;
}

inline shmr::CreateOptions file_options(const TempDir& shm, const TempDir& data,
                                        std::string name = "", bool persistent = false,
                                        bool writable = false) {
  shmr::CreateOptions o = shm_options(shm, std::move(name), persistent, writable);
  o.backing = shmr::Backing::File;
  o.data_directory = data.path();
  return o;
}

inline std::vector<double> read_values(const shmr::MappedRegion& region) {
  shmr::NodeView root = region.reader().node(region.reader().root());
  std::vector<double> out(root.length());
  std::memcpy(out.data(), root.data(), root.data_size());
  return out;
}

// Offset of the root vector's first element in the region.
inline uint64_t values_offset(const shmr::MappedRegion& region) {
  shmr::NodeView root = region.reader().node(region.reader().root());
  return static_cast<uint64_t>(static_cast<const unsigned char*>(root.data()) -
                               static_cast<const unsigned char*>(region.map().data()));
}

// Writes `value` over the root vector's first element through the mapping.
inline void poke_first_value(const shmr::MappedRegion& region, double value) {
  std::memcpy(static_cast<unsigned char*>(region.map().data()) + values_offset(region), &value,
              sizeof value);
}

// The first element as stored in the bytes of a region file.
inline double first_value_in_file(const std::string& bytes, uint64_t offset) {
  double value = 0;
  if (bytes.size() < offset + sizeof value) return -12345.0;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

inline const shmr::RegionSummary* find(const std::vector<shmr::RegionSummary>& list,
                                       const std::string& name) {
  for (const shmr::RegionSummary& s : list)
    if (s.name == name) return &s;
  return nullptr;
}

inline std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Permission bits of a path (not following symlinks), or -1.
inline int mode_of(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

inline int64_t size_of(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_size);
}

inline uint64_t inode_of(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}


// The bytes of a locator file, built by hand: header fields as given, then
// `path_bytes` (which need not be path_length long).
struct LocatorSpec {
  std::string path;
  int64_t creator_pid = 0;
  uint64_t creator_start_ticks = 0;
  uint64_t flags = shmr::format::kFlagReadonly;
  uint32_t version = shmr::kLocatorVersion;
  int64_t path_length = -1;  // -1: path.size()
};

inline std::string locator_bytes(const LocatorSpec& spec) {
  shmr::LocatorHeader header{};
  std::memcpy(header.magic, shmr::kLocatorMagic, sizeof header.magic);
  header.version = spec.version;
  header.path_length =
      static_cast<uint32_t>(spec.path_length < 0 ? spec.path.size() : spec.path_length);
  header.creator_pid = spec.creator_pid;
  header.creator_start_ticks = spec.creator_start_ticks;
  header.flags = spec.flags;
  std::string out(reinterpret_cast<const char*>(&header), sizeof header);
  out += spec.path;
  return out;
}

inline shmr::LocatorHeader parse_locator_header(const std::string& bytes) {
  shmr::LocatorHeader header{};
  if (bytes.size() >= sizeof header) std::memcpy(&header, bytes.data(), sizeof header);
  return header;
}

// The pid of a process that has exited and been reaped.
inline int64_t dead_pid() {
  return static_cast<int64_t>(shmr_test::run_and_reap_child([] { return 0; }));
}

// Creates a region in a forked child that then exits without running any
// destructor (as a crashed R session would). Returns the dead child's pid.
inline pid_t create_in_dead_child(const shmr::CreateOptions& options) {
  int code = -1;
  pid_t pid = shmr_test::run_and_reap_child(
      [&] {
        Sample sample;
        auto region = shmr::create_region(sample.description, options);
        std::_Exit(region && region->name() == options.name ? 0 : 1);
        return 2;
      },
      &code);
  EXPECT_EQ(code, 0) << "child failed to create " << options.name;
  return pid;
}

}  // namespace shmr_backing_test
