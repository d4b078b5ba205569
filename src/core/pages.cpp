#include "pages.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "region_file.h"

namespace shmr::pages {

bool has_private_copies(const void* data, uint64_t size) noexcept {
  if (size == 0) return false;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t first = reinterpret_cast<uintptr_t>(data) / page;
  const uint64_t last = (reinterpret_cast<uintptr_t>(data) + size - 1) / page;

  int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  FileDescriptor guard(fd);

  constexpr uint64_t kPresent = 1ull << 63;
  constexpr uint64_t kSwapped = 1ull << 62;
  constexpr uint64_t kFileOrShared = 1ull << 61;
  uint64_t entries[4096];
  const uint64_t capacity = sizeof entries / sizeof entries[0];
  for (uint64_t at = first; at <= last;) {
    uint64_t count = std::min<uint64_t>(capacity, last - at + 1);
    ssize_t want = static_cast<ssize_t>(count * sizeof(uint64_t));
    if (::pread(fd, entries, want, static_cast<off_t>(at * sizeof(uint64_t))) != want)
      return true;
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t e = entries[i];
      if ((e & kSwapped) != 0) return true;
      if ((e & kPresent) != 0 && (e & kFileOrShared) == 0) return true;
    }
    at += count;
  }
  return false;
}

}  // namespace shmr::pages
