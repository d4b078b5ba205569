#include "locator.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "error.h"
#include "names.h"
#include "region_file.h"

namespace shmr {

void publish_locator(const std::string& shm_directory, const std::string& name,
                     const Locator& locator) {
  if (locator.target_path.empty() || locator.target_path[0] != '/' ||
      locator.target_path.size() > kMaxLocatorPath)
    throw Error(ErrorKind::InvalidArgument, "a region's file path must be absolute and shorter "
                                            "than 4096 bytes");
  LocatorHeader header{};
  std::memcpy(header.magic, kLocatorMagic, sizeof header.magic);
  header.version = kLocatorVersion;
  header.path_length = static_cast<uint32_t>(locator.target_path.size());
  header.creator_pid = locator.creator.pid;
  header.creator_start_ticks = locator.creator.start_ticks;
  header.flags = locator.flags;
  std::vector<char> bytes(sizeof header + locator.target_path.size());
  std::memcpy(bytes.data(), &header, sizeof header);
  std::memcpy(bytes.data() + sizeof header, locator.target_path.data(), locator.target_path.size());

  PendingRegion pending(shm_directory, name, bytes.size());
  std::memcpy(pending.data(), bytes.data(), bytes.size());
  pending.publish();
}

bool read_locator(int fd, const std::string& name, Locator& out) {
  LocatorHeader header;
  if (::pread(fd, &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header)) return false;
  if (std::memcmp(header.magic, kLocatorMagic, sizeof header.magic) != 0) return false;
  if (header.version != kLocatorVersion || header.path_length == 0 ||
      header.path_length > kMaxLocatorPath)
    throw Error(ErrorKind::Corrupt, "the locator of region '" + name + "' is corrupt");
  std::string path(header.path_length, '\0');
  if (::pread(fd, path.data(), path.size(), sizeof header) != static_cast<ssize_t>(path.size()))
    throw Error(ErrorKind::Corrupt, "the locator of region '" + name + "' is truncated");
  // The data file must carry the region's own name: a locator never leads
  // to an arbitrary file.
  size_t slash = path.rfind('/');
  if (path[0] != '/' || path.find('\0') != std::string::npos || slash == std::string::npos ||
      path.compare(slash + 1, std::string::npos, name) != 0)
    throw Error(ErrorKind::Corrupt, "the locator of region '" + name + "' points elsewhere");
  out.target_path = std::move(path);
  out.creator = {header.creator_pid, header.creator_start_ticks};
  out.flags = header.flags;
  return true;
}

}  // namespace shmr
