# A full /dev/shm gives a clear R error naming the requested size; nothing is
# left behind. Uses a real 1 MB tmpfs in a private mount namespace, which
# needs root (or user namespaces); elsewhere the test is skipped.

test_that("sharing into a full file system is a clear error and leaves nothing behind", {
  skip_on_cran()
  skip_if_not(small_tmpfs_available(), "cannot mount a private tmpfs here")
  got <- in_small_shm(c(
    "library(shmr)",
    "small <- share(rnorm(1000), backing = 'shm')",
    "res <- tryCatch(share(rnorm(1e6), backing = 'shm'), error = function(e) conditionMessage(e))",
    "left <- list.files(Sys.getenv('SHMR_SHM_DIR'), all.files = TRUE, no.. = TRUE)",
    "list(res = res, left = left, small = shared_name(small))"
  ))
  expect_type(got$res, "character")
  expect_match(got$res, "not enough space .* for a region of [0-9]+ bytes")
  # Only the small region that fitted is there; no temporary file remains.
  expect_identical(got$left, got$small)
})
