// Identity of a process that survives PID reuse: the PID plus its start time.
#pragma once

#include <cstdint>

namespace shmr::process {

struct Identity {
  int64_t pid = 0;
  uint64_t start_ticks = 0;  // 0 when unknown
};

Identity current();

// True while the process exists, is not a zombie, and (when start_ticks is
// known) started at that time.
bool is_alive(const Identity& who);

}  // namespace shmr::process
