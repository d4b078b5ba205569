# Real separate R processes for the tests where sharing is the point.

# processx (callr's) replaces the SIGCHLD handler of parallel's forked
# children without calling it, unless this is set: parallel then never sees
# its children end, and a test process that forked waited 10 s at exit and
# printed "unable to terminate some child processes".
Sys.setenv(PROCESSX_NOTIFY_OLD_SIGCHLD = "true")

skip_without_callr <- function() {
  testthat::skip_if_not_installed("callr")
}

# A process that a shell without job control starts in the background (`&`)
# begins with SIGINT ignored. R 4.5 keeps it so (R 4.2 puts its handler in
# place anyway), and so do the processes it starts: an interrupt sent to
# them is lost, except while R waits in Sys.sleep(), which catches SIGINT
# for the wait. tools/run-r-tests.sh puts the default back for every file.
skip_if_sigint_ignored <- function() {
  ignored <- sub("^SigIgn:\\s*", "", grep("^SigIgn:", readLines("/proc/self/status"), value = TRUE))
  low_signals <- strtoi(substring(ignored, nchar(ignored)), 16L)  # signals 1 to 4
  if (bitwAnd(low_signals, 2L) != 0L) {
    skip("SIGINT is ignored in this process (started in the background by a shell)")
  }
}

# Runs `fun(...)` in a fresh R process with shmr loaded and returns its value.
# `fun` travels without its enclosing environment: everything it needs comes
# through `args`, so no test object is sent by accident.
in_other_process <- function(fun, args = list(), timeout = Inf) {
  skip_without_callr()
  environment(fun) <- globalenv()
  callr::r(function(fun, args) {
    library(shmr)
    do.call(fun, args)
  }, args = list(fun = fun, args = args), timeout = timeout)
}

# Waits until `file` exists while `child` (a callr process) runs, at most
# `timeout` seconds, looking every `poll` seconds; returns whether it exists.
wait_for_file <- function(file, child, timeout = 60, poll = 0.02) {
  deadline <- Sys.time() + timeout
  while (!file.exists(file) && child$is_alive() && Sys.time() < deadline) Sys.sleep(poll)
  file.exists(file)
}

# A persistent worker process, for tests that need state across calls.
start_worker <- function() {
  skip_without_callr()
  session <- callr::r_session$new()
  session$run(function() library(shmr))
  session
}

region_file <- function(name) {
  file.path(Sys.getenv("SHMR_SHM_DIR", "/dev/shm"), name)
}

# Only a file by that name counts: an empty name is the directory itself.
region_exists <- function(name) {
  stopifnot(is.character(name), length(name) == 1L, nzchar(name), !grepl("/", name, fixed = TRUE))
  file.exists(region_file(name))
}

# Skips a test that needs `bytes` free in /dev/shm.
skip_unless_shm_free <- function(bytes) {
  free <- tryCatch(
    as.numeric(system2("df", c("--output=avail", "-B1", "/dev/shm"), stdout = TRUE)[2]),
    error = function(e) 0
  )
  testthat::skip_if(is.na(free) || free < bytes,
                    sprintf("needs %.0f GB free in /dev/shm", bytes / 2^30))
}

anonymous_bytes <- function() shmr:::process_memory()[["anonymous"]]

# TRUE when this process may mount a private tmpfs (root, or user namespaces).
small_tmpfs_available <- function() {
  if (Sys.which("unshare") == "" || Sys.which("mount") == "") return(FALSE)
  # The probe's mount point is removed again: R CMD check reports what
  # tests leave in the temporary directory.
  script <- paste(
    "d=$(mktemp -d) || exit 1",
    "mount -t tmpfs -o size=1m tmpfs \"$d\" && umount \"$d\"",
    "status=$?", "rmdir \"$d\"", "exit $status", sep = "; "
  )
  probe <- suppressWarnings(system2("unshare", c("--mount", "sh", "-c", shQuote(script)),
                                    stdout = FALSE, stderr = FALSE))
  identical(probe, 0L)
}

# Runs the R lines `code` (whose last value is returned) in a new R process
# whose shm directory is a real tmpfs of `size` (extra mount options in
# `options`, such as "nr_inodes=4"), private to that process. With
# `data_size`, a second private tmpfs of that size is mounted for file-backed
# regions; its path is in the environment variable SHMR_TEST_DATA_DIR.
in_small_shm <- function(code, size = "1m", data_size = NULL, options = NULL) {
  script <- tempfile(fileext = ".R")
  out <- tempfile()
  writeLines(c("result <- local({", code, "})", sprintf("saveRDS(result, %s)", deparse(out))), script)
  mount <- function(dir, size, options = NULL) {
    dir.create(dir)
    sprintf("mount -t tmpfs -o %s tmpfs %s", paste(c(paste0("size=", size), "mode=0700", options),
                                                    collapse = ","), dir)
  }
  dir <- tempfile("tmpfs")
  data_dir <- tempfile("tmpfs-data")
  mounts <- mount(dir, size, options)
  if (!is.null(data_size)) mounts <- c(mounts, mount(data_dir, data_size))
  cmd <- sprintf(
    "%s && SHMR_SHM_DIR=%s SHMR_TEST_DATA_DIR=%s %s --vanilla %s",
    paste(mounts, collapse = " && "), dir, data_dir, file.path(R.home("bin"), "Rscript"), script
  )
  status <- system2("unshare", c("--mount", "sh", "-c", shQuote(cmd)))
  if (!identical(status, 0L)) stop("the small-tmpfs process failed")
  readRDS(out)
}

# The long variants of the reliability tests run with SHMR_LONG_TESTS=1
# (README, "Reliability under faults, load and hostile input").
long_tests <- function() identical(Sys.getenv("SHMR_LONG_TESTS"), "1")

# Runs `short` or, with SHMR_LONG_TESTS=1, `long` (counts, durations).
short_or_long <- function(short, long) if (long_tests()) long else short

# Skips a bound on memory growth under AddressSanitizer (`make test-asan`
# preloads libasan), whose own bookkeeping grows with every allocation.
skip_if_memory_is_sanitized <- function() {
  testthat::skip_if(memory_is_sanitized(), "memory growth includes AddressSanitizer's own")
}

# The same test, for a bound in the middle of a test whose other
# expectations still hold under the sanitizer.
memory_is_sanitized <- function() grepl("libasan", Sys.getenv("LD_PRELOAD"), fixed = TRUE)
