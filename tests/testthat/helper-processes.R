# Real separate R processes for the tests where sharing is the point.

skip_without_callr <- function() {
  testthat::skip_if_not_installed("callr")
}

# Runs `fun(...)` in a fresh R process with shmr loaded and returns its value.
# `fun` travels without its enclosing environment: everything it needs comes
# through `args`, so no test object is sent by accident.
in_other_process <- function(fun, args = list()) {
  skip_without_callr()
  environment(fun) <- globalenv()
  callr::r(function(fun, args) {
    library(shmr)
    do.call(fun, args)
  }, args = list(fun = fun, args = args))
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

region_exists <- function(name) file.exists(region_file(name))

anonymous_bytes <- function() shmr:::process_memory()[["anonymous"]]

# TRUE when this process may mount a private tmpfs (root, or user namespaces).
small_tmpfs_available <- function() {
  if (Sys.which("unshare") == "" || Sys.which("mount") == "") return(FALSE)
  probe <- suppressWarnings(system2(
    "unshare", c("--mount", "sh", "-c", shQuote("d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d")),
    stdout = FALSE, stderr = FALSE
  ))
  identical(probe, 0L)
}

# Runs the R lines `code` (whose last value is returned) in a new R process
# whose shm directory is a real 1 MB tmpfs, private to that process.
in_small_shm <- function(code, size = "1m") {
  script <- tempfile(fileext = ".R")
  out <- tempfile()
  writeLines(c("result <- local({", code, "})", sprintf("saveRDS(result, %s)", deparse(out))), script)
  dir <- tempfile("tmpfs")
  dir.create(dir)
  cmd <- sprintf(
    "mount -t tmpfs -o size=%s,mode=0700 tmpfs %s && SHMR_SHM_DIR=%s %s --vanilla %s",
    size, dir, dir, file.path(R.home("bin"), "Rscript"), script
  )
  status <- system2("unshare", c("--mount", "sh", "-c", shQuote(cmd)))
  if (!identical(status, 0L)) stop("the small-tmpfs process failed")
  readRDS(out)
}

# The long variants of the reliability tests run with SHMR_LONG_TESTS=1
# (README, "Reliability and guarantees").
long_tests <- function() identical(Sys.getenv("SHMR_LONG_TESTS"), "1")

# Runs `short` or, with SHMR_LONG_TESTS=1, `long` (counts, durations).
short_or_long <- function(short, long) if (long_tests()) long else short
