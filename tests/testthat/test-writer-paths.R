# share() writes a region by several paths (src/core/region_sink.h): small
# parts gathered and written together, larger ones spliced through a pipe,
# the largest by a background thread while the strings are written. Every
# byte must arrive whatever the path: another process reads exactly the
# object that was shared.

test_that("columns of every size around the writer's thresholds read back exactly elsewhere", {
  skip_on_cran()
  skip_unless_shm_free(200 * 2^20)
  set.seed(11)
  # 256 KB from which a write is spliced, 1 MB of gathering buffer, 8 MB from
  # which a payload goes to the background thread: one element either side.
  doubles <- function(bytes) runif(bytes %/% 8)
  df <- list(
    tiny = c(a = 1.5, b = NA, c = -0),
    below_pipe = doubles(256 * 1024 - 8),
    at_pipe = doubles(256 * 1024),
    above_pipe = doubles(256 * 1024 + 8),
    odd_ints = sample.int(1e6, 262145),
    raw_bytes = as.raw(sample(0:255, 3 * 2^20 + 7, TRUE)),
    background = doubles(8 * 2^20 + 8),
    at_background = doubles(8 * 2^20),
    words = sprintf("w%d_%s", 1:200000, sample(c("x", "yy", NA, "\u00e9"), 200000, TRUE)),
    nested = list(m = matrix(runif(70000), 700), f = factor(sample(letters, 5e5, TRUE)))
  )
  shared <- share(df)
  on.exit(close(shared))
  # The MD5 of an element's serialization (of an ordinary copy of it).
  digest <- function(v) {
    file <- tempfile()
    on.exit(unlink(file))
    con <- file(file, "wb")
    serialize(shmr::fetch(v), con)
    close(con)
    unname(tools::md5sum(file))
  }
  environment(digest) <- globalenv()  # travels without this test's objects
  got <- in_other_process(function(name, digest) {
    vapply(map_shared(name), digest, "", USE.NAMES = TRUE)
  }, list(name = shared_name(shared), digest = digest))
  expected <- vapply(df, digest, "", USE.NAMES = TRUE)
  expect_identical(names(got), names(expected))
  for (n in names(expected)) expect_identical(got[[n]], expected[[n]], info = n)
})

test_that("a shared vector large enough for the background thread is intact in this process", {
  skip_on_cran()
  skip_unless_shm_free(100 * 2^20)
  x <- seq(0.5, by = 1, length.out = 3 * 2^20 + 5)  # 24 MB: three writes' worth of pipe
  s <- share(x)
  on.exit(close(s))
  expect_identical(s[], x)
  expect_identical(sum(s), sum(x))
})
