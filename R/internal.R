# Helpers for tests and diagnostics; not exported.

# TRUE when any vector inside `x` (elements or attributes) is an ALTREP.
contains_altrep <- function(x) .Call(shmr_contains_altrep, x)

# Counts of this process's mapping registry (src/mapping.h): live mappings,
# files with a group, idle mappings kept, registry entries examined since
# the start, garbage collections run to bound the number of mappings.
mapping_stats <- function() unlist(.Call(shmr_mapping_stats))

# Memory of a process from /proc/<pid>/smaps_rollup, in bytes. `anonymous`
# counts pages private to the process (heap copies and pages copied on
# write); `rss` also counts shared pages it has touched.
process_memory <- function(pid = Sys.getpid()) {
  lines <- readLines(sprintf("/proc/%d/smaps_rollup", pid))
  field <- function(key) {
    line <- grep(paste0("^", key, ":"), lines, value = TRUE)
    if (length(line) == 0L) return(NA_real_)
    as.numeric(sub("^[^:]+:\\s*([0-9]+) kB.*$", "\\1", line[1L])) * 1024
  }
  c(rss = field("Rss"), pss = field("Pss"), anonymous = field("Anonymous"),
    private = field("Private_Clean") + field("Private_Dirty"))
}
