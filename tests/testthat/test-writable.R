# readonly = FALSE: writes reach shared memory and every process; a write
# that R would redirect to a private copy is an error, not a silent copy.

test_that("writes to a writable share are seen by another process, both ways", {
  for (backing in c("shm", "mmap")) {
    w <- share(as.numeric(1:10), readonly = FALSE, backing = backing)
    w[2] <- 200
    m <- share(matrix(0L, 3, 4), readonly = FALSE, backing = backing)
    m[2, 3] <- 7L
    got <- in_other_process(function(wn, mn) {
      w <- map_shared(wn)
      m <- map_shared(mn)
      seen <- list(w = w[2], m = m[2, 3])
      w[10] <- -1
      m[, 4] <- 1:3
      seen
    }, list(wn = shared_name(w), mn = shared_name(m)))
    expect_identical(got$w, 200, info = backing)
    expect_identical(got$m, 7L, info = backing)
    expect_identical(w[10], -1, info = backing)
    expect_identical(m[, 4], 1:3, info = backing)
    expect_false(shared_info(w)$readonly, info = backing)
  }
})

test_that("writes from two worker processes to disjoint parts all land", {
  w <- share(numeric(2e5), readonly = FALSE)
  name <- shared_name(w)
  procs <- lapply(1:2, function(k) {
    callr::r_bg(function(name, k) {
      library(shmr)
      w <- map_shared(name)
      half <- length(w) / 2
      idx <- seq_len(half) + (k - 1) * half
      w[idx] <- k
      TRUE
    }, list(name = name, k = k))
  })
  for (p in procs) p$wait(60000)
  for (p in procs) expect_true(p$get_result())
  expect_identical(w[1], 1)
  expect_identical(w[2e5], 2)
  expect_identical(sum(w), 1e5 * 1 + 1e5 * 2)
})

test_that("a write R would send to a private copy is an error", {
  w <- share(as.numeric(1:5), readonly = FALSE)
  alias <- w
  expect_error(alias[1] <- 0, "would go to a private copy")
  f <- function(v) {
    v[1] <- 0
    v
  }
  expect_error(f(w), "would go to a private copy")
  rm(alias)
  # Reads that need a private copy still work: sort() copies deeply.
  expect_identical(sort(w, decreasing = TRUE), as.numeric(5:1))
  expect_identical(w[], as.numeric(1:5))
  s <- share(c("a", "b"), readonly = FALSE)
  expect_error(s[1] <- "z", "cannot be changed in place")
})

test_that("readonly shares never change on disk, for either backing", {
  for (backing in c("shm", "mmap")) {
    x <- share(as.numeric(1:1000), backing = backing)
    path <- shared_info(x)$path
    before <- readBin(path, "raw", file.size(path))
    x[1:10] <- 0
    in_other_process(function(name) {
      y <- map_shared(name)
      y[5] <- 99
      NULL
    }, list(name = shared_name(x)))
    expect_identical(readBin(path, "raw", file.size(path)), before, info = backing)
    expect_identical(format(file.info(path)$mode), "600", info = backing)
  }
})

test_that("a writable share that falls back to a file mapping can be changed in place", {
  # Regression: the fallback message was signalled through cli, which
  # records the calling frames; share()'s frame then kept a second reference
  # to the new object, and its first change was refused as a private copy.
  # Run where nothing else holds the object (expect_message() would), with
  # the message going to a file.
  got <- in_other_process(function() {
    log <- tempfile()
    con <- file(log, "w")
    sink(con, type = "message")
    options(shmr.shm_capacity = 4096)
    w <- share(numeric(1e4), readonly = FALSE)
    sink(type = "message")
    close(con)
    changed <- tryCatch({
      w[3] <- 42
      "changed"
    }, error = function(e) conditionMessage(e))
    list(message = readLines(log), backing = shared_info(w)$backing, changed = changed,
         seen = map_shared(shared_name(w))[3])
  })
  expect_match(paste(got$message, collapse = " "), "too little room")
  expect_identical(got$backing, "mmap")
  expect_identical(got$changed, "changed")
  expect_identical(got$seen, 42)
})
