# A private shm directory for one test: regions with fixed names (as in the
# documented examples of other packages) cannot collide with anyone else's,
# and what is left behind can be listed exactly. Child processes started
# during the test (callr, PSOCK workers) inherit it.
use_private_shm <- function() {
  dir <- tempfile("shmr-shm-")
  dir.create(dir, mode = "0700")
  old <- Sys.getenv("SHMR_SHM_DIR", unset = NA)
  Sys.setenv(SHMR_SHM_DIR = dir)
  function() {
    if (is.na(old)) Sys.unsetenv("SHMR_SHM_DIR") else Sys.setenv(SHMR_SHM_DIR = old)
    unlink(dir, recursive = TRUE)
  }
}

shm_files <- function() {
  list.files(Sys.getenv("SHMR_SHM_DIR", "/dev/shm"), all.files = TRUE, no.. = TRUE)
}
