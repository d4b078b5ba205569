# A full /dev/shm gives a clear R error naming the requested size; nothing is
# left behind. Uses a real 1 MB tmpfs in a private mount namespace, which
# needs root (or user namespaces); elsewhere the test is skipped.

small_tmpfs_available <- function() {
  if (Sys.which("unshare") == "" || Sys.which("mount") == "") return(FALSE)
  probe <- suppressWarnings(system2(
    "unshare", c("--mount", "sh", "-c", shQuote("d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d")),
    stdout = FALSE, stderr = FALSE
  ))
  identical(probe, 0L)
}

test_that("sharing into a full file system is a clear error and leaves nothing behind", {
  skip_on_cran()
  skip_if_not(small_tmpfs_available(), "cannot mount a private tmpfs here")
  script <- tempfile(fileext = ".R")
  out <- tempfile()
  writeLines(c(
    "library(shmr)",
    "small <- share(rnorm(1000))",
    "res <- tryCatch(share(rnorm(1e6)), error = function(e) conditionMessage(e))",
    "left <- list.files(Sys.getenv('SHMR_SHM_DIR'), all.files = TRUE, no.. = TRUE)",
    sprintf("saveRDS(list(res = res, left = left, small = shared_name(small)), %s)", deparse(out))
  ), script)
  dir <- tempfile("tmpfs")
  dir.create(dir)
  cmd <- sprintf(
    "mount -t tmpfs -o size=1m,mode=0700 tmpfs %s && SHMR_SHM_DIR=%s %s --vanilla %s",
    dir, dir, file.path(R.home("bin"), "Rscript"), script
  )
  status <- system2("unshare", c("--mount", "sh", "-c", shQuote(cmd)))
  expect_identical(status, 0L)
  got <- readRDS(out)
  expect_type(got$res, "character")
  expect_match(got$res, "not enough space .* for a region of [0-9]+ bytes")
  # Only the small region that fitted is there; no temporary file remains.
  expect_identical(got$left, got$small)
})
