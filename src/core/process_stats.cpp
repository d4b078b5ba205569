#include "process_stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <memory>
#include <sstream>

namespace shmr::process_stats {
namespace {

// How reading a file of /proc/<pid> ended: read; the process gone or not
// ours to read; or the reading itself failed (no descriptor left, say).
enum class ProcRead { Read, Gone, Failed };

ProcRead read_proc_text(int64_t pid, const char* file, std::string& text) {
  if (pid <= 0 || pid > INT_MAX) return ProcRead::Gone;
  const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT || errno == ESRCH || errno == EACCES || errno == EPERM ? ProcRead::Gone
                                                                                 : ProcRead::Failed;
  text.clear();
  char buffer[4096];
  int read_error = 0;
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got > 0) {
      text.append(buffer, static_cast<size_t>(got));
    } else if (got == 0) {
      break;
    } else if (errno != EINTR) {
      read_error = errno;
      break;
    }
  }
  ::close(fd);
  if (read_error == 0) return ProcRead::Read;
  return read_error == ESRCH ? ProcRead::Gone : ProcRead::Failed;
}

std::optional<std::string> read_proc_file(int64_t pid, const char* file) {
  std::string text;
  if (read_proc_text(pid, file, text) != ProcRead::Read) return std::nullopt;
  return text;
}

// "Key:   1234 kB" -> 1234 * 1024 added to `field` when the line is `key`.
void add_field(const std::string& line, const char* key, uint64_t& field) {
  const std::string k(key);
  if (line.compare(0, k.size(), k) != 0 || line.size() <= k.size() || line[k.size()] != ':') {
    return;
  }
  const char* start = line.c_str() + k.size() + 1;
  char* end = nullptr;
  unsigned long long kb = std::strtoull(start, &end, 10);
  if (end != start) field += static_cast<uint64_t>(kb) * 1024;
}

}  // namespace

Memory parse_smaps(const std::string& text) {
  Memory m;
  uint64_t private_clean = 0, private_dirty = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    add_field(line, "Rss", m.rss);
    add_field(line, "Pss", m.pss);
    add_field(line, "Anonymous", m.anonymous);
    add_field(line, "Private_Clean", private_clean);
    add_field(line, "Private_Dirty", private_dirty);
  }
  m.private_bytes = private_clean + private_dirty;
  return m;
}

std::optional<uint64_t> physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return std::nullopt;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

std::optional<uint64_t> free_descriptors() {
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return std::nullopt;
  const uint64_t soft = static_cast<uint64_t>(limit.rlim_cur);
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    if (errno == EMFILE || errno == ENFILE) return 0;
    return std::nullopt;
  }
  const int own = ::dirfd(dir);
  uint64_t held = 0;
  while (const struct dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const unsigned long long fd = std::strtoull(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || static_cast<long long>(fd) == own) continue;
    if (fd < soft) ++held;
  }
  ::closedir(dir);
  return held < soft ? soft - held : 0;
}

int close_inherited_sockets() noexcept {
  // Listed first, closed after: closing while reading the directory would
  // change what it lists.
  std::vector<int> sockets;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  const int own = ::dirfd(dir);
  while (const struct dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd < 3 || fd == own) continue;
    struct stat st {};
    if (::fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    try {
      sockets.push_back(static_cast<int>(fd));
    } catch (...) {
      break;  // out of memory: those listed so far
    }
  }
  ::closedir(dir);
  int closed = 0;
  for (int fd : sockets)
    if (::close(fd) == 0) ++closed;
  return closed;
}

std::optional<Memory> memory(int64_t pid) {
  // smaps_rollup exists since Linux 4.14; smaps has the same fields per
  // mapping.
  std::optional<std::string> text = read_proc_file(pid, "smaps_rollup");
  if (!text) text = read_proc_file(pid, "smaps");
  if (!text || text->empty()) return std::nullopt;
  return parse_smaps(*text);
}

uint64_t parse_maps(const std::string& text, const std::vector<std::string>& prefixes) {
  static const std::string deleted = " (deleted)";
  uint64_t total = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    // address perms offset dev inode [path]; the path may hold spaces.
    std::istringstream fields(line);
    std::string range, perms, offset, device, inode;
    if (!(fields >> range >> perms >> offset >> device >> inode)) continue;
    std::string path;
    std::getline(fields, path);
    size_t first = path.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    path.erase(0, first);
    if (path.size() > deleted.size() &&
        path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0) {
      path.erase(path.size() - deleted.size());
    }
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) continue;
    bool named = false;
    for (const std::string& prefix : prefixes) {
      named = named || path.compare(slash + 1, prefix.size(), prefix) == 0;
    }
    if (!named) continue;
    size_t dash = range.find('-');
    if (dash == std::string::npos) continue;
    uint64_t start = std::strtoull(range.substr(0, dash).c_str(), nullptr, 16);
    uint64_t end = std::strtoull(range.substr(dash + 1).c_str(), nullptr, 16);
    if (end > start) total += end - start;
  }
  return total;
}

std::optional<uint64_t> mapped_bytes_of_files(int64_t pid,
                                              const std::vector<std::string>& prefixes) {
  std::optional<std::string> text = read_proc_file(pid, "maps");
  if (!text) return std::nullopt;
  return parse_maps(*text, prefixes);
}

bool command_line_mentions(const std::string& cmdline, const std::string& word) {
  if (word.empty()) return false;
  size_t start = 0;
  while (start < cmdline.size()) {
    size_t end = cmdline.find('\0', start);
    if (end == std::string::npos) end = cmdline.size();
    if (cmdline.substr(start, end - start).find(word) != std::string::npos) return true;
    start = end + 1;
  }
  return false;
}

std::optional<std::vector<int64_t>> processes_mentioning(const std::string& word) {
  std::vector<int64_t> found;
  std::string cmdline;
  std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
  if (!proc) return std::nullopt;
  for (;;) {
    errno = 0;
    const struct dirent* entry = ::readdir(proc.get());
    if (entry == nullptr) {
      if (errno != 0) return std::nullopt;
      break;
    }
    char* end = nullptr;
    const long long pid = std::strtoll(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 0) continue;
    const ProcRead outcome = read_proc_text(pid, "cmdline", cmdline);
    if (outcome == ProcRead::Failed) return std::nullopt;
    if (outcome == ProcRead::Read && command_line_mentions(cmdline, word)) found.push_back(pid);
  }
  return found;
}

}  // namespace shmr::process_stats
