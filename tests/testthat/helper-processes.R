# Real separate R processes for the tests where sharing is the point.

skip_without_callr <- function() {
  testthat::skip_if_not_installed("callr")
}

# Runs `fun(...)` in a fresh R process with shmr loaded and returns its value.
in_other_process <- function(fun, args = list()) {
  skip_without_callr()
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
