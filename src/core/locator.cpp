#include "locator.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"
#include "names.h"
#include "region_file.h"

namespace shmr {

std::vector<char> encode_locator(const Locator& locator) {
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
  header.creator_pid_namespace = locator.creator.pid_namespace;
  std::vector<char> bytes(sizeof header + locator.target_path.size());
  std::memcpy(bytes.data(), &header, sizeof header);
  std::memcpy(bytes.data() + sizeof header, locator.target_path.data(), locator.target_path.size());
  return bytes;
}

void publish_locator(const std::string& shm_directory, const std::string& name,
                     const Locator& locator) {
  std::vector<char> bytes = encode_locator(locator);
  PendingRegion pending(shm_directory, name, bytes.size());
  std::memcpy(pending.data(), bytes.data(), bytes.size());
  pending.publish();
}

bool parse_locator(const unsigned char* bytes, size_t size, const std::string& name, Locator& out) {
  LocatorHeader header;
  if (size < sizeof header) return false;
  std::memcpy(&header, bytes, sizeof header);
  if (std::memcmp(header.magic, kLocatorMagic, sizeof header.magic) != 0) return false;
  if (header.version != kLocatorVersion || header.path_length == 0 ||
      header.path_length > kMaxLocatorPath)
    throw Error(ErrorKind::Corrupt, "the locator of region '" + name + "' is corrupt");
  if (header.path_length > size - sizeof header)
    throw Error(ErrorKind::Corrupt, "the locator of region '" + name + "' is truncated");
  std::string path(reinterpret_cast<const char*>(bytes) + sizeof header, header.path_length);
  // The data file must carry the region's own name: a locator never leads
  // to an arbitrary file.
  size_t slash = path.rfind('/');
  if (path[0] != '/' || path.find('\0') != std::string::npos || slash == std::string::npos ||
      path.compare(slash + 1, std::string::npos, name) != 0)
    throw Error(ErrorKind::Corrupt, "the locator of region '" + name + "' points elsewhere");
  out.target_path = std::move(path);
  out.creator = {header.creator_pid, header.creator_start_ticks, header.creator_pid_namespace};
  out.flags = header.flags;
  return true;
}

namespace {

size_t read_fully(int fd, unsigned char* out, size_t size) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, out + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

}  // namespace

bool read_locator(int fd, const std::string& name, Locator& out) {
  // Every map_shared() asks this of a region file: read the magic alone
  // first, and the path only from a locator.
  unsigned char magic[sizeof kLocatorMagic];
  if (read_fully(fd, magic, sizeof magic) != sizeof magic ||
      std::memcmp(magic, kLocatorMagic, sizeof magic) != 0)
    return false;
  std::vector<unsigned char> bytes(sizeof(LocatorHeader) + kMaxLocatorPath);
  return parse_locator(bytes.data(), read_fully(fd, bytes.data(), bytes.size()), name, out);
}

}  // namespace shmr
