# Helpers for tests and diagnostics; not exported.

# TRUE when any vector inside `x` (elements or attributes) is an ALTREP.
contains_altrep <- function(x) .Call(shmr_contains_altrep, x)

# Counts of this process's mapping registry (src/mapping.h): live mappings,
# files with a group, idle mappings kept, registry entries examined since
# the start, garbage collections run to bound the number of mappings.
mapping_stats <- function() unlist(.Call(shmr_mapping_stats))

# Memory of a process in bytes, as the engine reads it from the kernel:
# `anonymous` counts pages private to the process (heap copies and pages
# copied on write); `rss` also counts shared pages it has touched; `private`
# the pages no other process maps. All NA when the process cannot be read.
process_memory <- function(pid = Sys.getpid()) {
  .Call(shmr_process_memory, check_pid(pid))
}

# FALSE once process `pid` is gone (or a zombie, or the PID was reused by a
# process started at another time than `start_ticks`, see
# shmr_process_start); TRUE while it runs or when that cannot be told
# (unknown means alive).
process_alive <- function(pid, start_ticks = 0) {
  !isFALSE(.Call(shmr_process_running, check_pid(pid), as.numeric(start_ticks)))
}

# Bytes of shmr regions process `pid` maps; NA when that cannot be read.
region_bytes_mapped <- function(pid) .Call(shmr_region_bytes_mapped, check_pid(pid))

# Removes the regions process `pid`, now gone, left behind: a worker the
# pool killed could not remove its own. Returns their names.
# One listing of the shm directory for all of `pids`.
prune_regions_of <- function(pids) {
  if (!is.numeric(pids) || anyNA(pids)) stop("`pids` must be process ids", call. = FALSE)
  .Call(shmr_prune_creator, as.numeric(pids))
}

check_pid <- function(pid) {
  if (!is.numeric(pid) || length(pid) != 1L || is.na(pid)) {
    stop("`pid` must be one process id", call. = FALSE)
  }
  as.numeric(pid)
}
