// What the kernel tells about another process (a pool's worker): its memory,
// the bytes of shmr regions it maps (whether it still runs: process.h).
// Nothing here throws; what cannot be read is reported as unknown.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shmr::process_stats {

// Bytes, from /proc/<pid>/smaps_rollup (or the sum over /proc/<pid>/smaps
// on kernels without it).
struct Memory {
  uint64_t rss = 0;            // resident, shared pages it touched included
  uint64_t pss = 0;            // resident, shared pages divided among users
  uint64_t anonymous = 0;      // its own pages: heap, pages copied on write
  uint64_t private_bytes = 0;  // mapped by this process alone (clean + dirty)
};

// nullopt when the process does not exist or its memory cannot be read.
std::optional<Memory> memory(int64_t pid);

// Sum of the lengths of the mappings of files whose name starts with one of
// `prefixes` (removed files included), from /proc/<pid>/maps; nullopt when
// that cannot be read.
std::optional<uint64_t> mapped_bytes_of_files(int64_t pid,
                                              const std::vector<std::string>& prefixes);

// The machine's physical memory in bytes; nullopt when it cannot be told.
std::optional<uint64_t> physical_memory();

// How many more descriptors this process may open: the numbers below its
// soft limit on open files (ulimit -n) that no open descriptor holds. 0
// when not even /proc/self/fd can be opened for lack of one; nullopt when
// there is no limit or the count cannot be read.
std::optional<uint64_t> free_descriptors();

// Closes every socket this process holds (descriptor 3 and up) and returns
// how many. For a process started by another that opened its sockets
// without FD_CLOEXEC (R does), before it opens any of its own.
int close_inherited_sockets() noexcept;

// The processes whose command line has an argument containing `word` (a
// pool writes a word of its own into its workers' command lines, to find
// those of a start cut short). Processes that exit meanwhile, and those of
// other users that /proc keeps from this one, are left out; nullopt when
// the search could not look at every other process (/proc or a command
// line unreadable for lack of descriptors or memory): a pool then cannot
// tell that its workers are all gone.
std::optional<std::vector<int64_t>> processes_mentioning(const std::string& word);

// Whether the command line `cmdline` (arguments separated by NUL bytes, as
// /proc/<pid>/cmdline has them) has an argument containing `word`.
bool command_line_mentions(const std::string& cmdline, const std::string& word);

// Parses the text of a smaps_rollup or smaps file (fields in kB).
Memory parse_smaps(const std::string& text);

// Parses the lines of a maps file.
uint64_t parse_maps(const std::string& text, const std::vector<std::string>& prefixes);

}  // namespace shmr::process_stats
