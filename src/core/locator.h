// Locators: how a file-backed region is found by name. The region's data
// file lives in a directory of the user's choice; a small locator file with
// the same name in the shm directory records where (FORMAT.md section 1.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "process.h"

namespace shmr {

inline constexpr char kLocatorMagic[8] = {'\x89', 'S', 'H', 'M', 'R', 'L', 'O', 'C'};
inline constexpr uint32_t kLocatorVersion = 1;
inline constexpr uint32_t kMaxLocatorPath = 4096;

struct LocatorHeader {
  char magic[8];
  uint32_t version;
  uint32_t path_length;
  int64_t creator_pid;
  uint64_t creator_start_ticks;
  uint64_t flags;  // same bits as the region header (persistent)
  uint64_t creator_pid_namespace;  // 0 when unknown (and in older locators)
};
static_assert(sizeof(LocatorHeader) == 48, "locator header is 48 bytes");

struct Locator {
  std::string target_path;  // absolute path of the data file
  process::Identity creator;
  uint64_t flags = 0;
};

// The bytes of a locator file. Throws InvalidArgument for a path that is
// not absolute or is too long.
std::vector<char> encode_locator(const Locator& locator);

// Publishes a locator for `name` in `shm_directory` atomically. Throws
// AlreadyExists when the name is taken (by a region or another locator).
void publish_locator(const std::string& shm_directory, const std::string& name,
                     const Locator& locator);

// True when `bytes` (the first `size` bytes of a file; untrusted) are a
// locator of the region `name`; fills `out`. Throws Corrupt for a locator
// that is truncated, of an unknown version, or leads anywhere but a file
// called `name`.
bool parse_locator(const unsigned char* bytes, size_t size, const std::string& name, Locator& out);

// parse_locator() on the start of the file `fd`.
bool read_locator(int fd, const std::string& name, Locator& out);

}  // namespace shmr
