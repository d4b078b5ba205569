// The creator of a region as its header records it: PID, start time and
// PID namespace (inst/FORMAT.md, section 2.1).
#pragma once

#include <cstring>

#include "format.h"
#include "process.h"

namespace shmr::format {

// Bytes 120..127 of the header, the last 8 of original_class's 48, hold the
// creator's PID namespace. Writers keep original_class to 39 characters,
// so bytes 80..119 always hold a NUL; a region whose class text runs on
// past byte 119 was written before the field existed (its namespace is
// unknown), and readers of those days still find the class text, which ends
// at the first NUL.
inline constexpr size_t kClassTextBytes = 40;

inline uint64_t creator_pid_namespace(const RegionHeader& header) {
  if (std::memchr(header.original_class, 0, kClassTextBytes) == nullptr) return 0;
  uint64_t ns = 0;
  std::memcpy(&ns, header.original_class + kClassTextBytes, sizeof ns);
  return ns;
}

inline void set_creator(RegionHeader& header, const process::Identity& creator) {
  header.creator_pid = creator.pid;
  header.creator_start_ticks = creator.start_ticks;
  std::memset(header.original_class + kClassTextBytes - 1, 0,
              sizeof header.original_class - kClassTextBytes + 1);
  std::memcpy(header.original_class + kClassTextBytes, &creator.pid_namespace,
              sizeof creator.pid_namespace);
}

inline process::Identity creator_of(const RegionHeader& header) {
  return {header.creator_pid, header.creator_start_ticks, creator_pid_namespace(header)};
}

// The local process that keeps a copy of a region from another host.
inline process::Identity keeper_of(const ReplicaRecord& record) {
  return {record.keeper_pid, record.keeper_start_ticks, record.keeper_pid_namespace};
}

}  // namespace shmr::format
