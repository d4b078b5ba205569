# Reading, and even asking for a writable pointer, never copies the vector;
# writing copies only the touched pages, privately.

test_that("element access and writable-pointer reads in a consumer do not copy", {
  n <- 5e7 # 400 MB
  x <- share(seq_len(n) + 0.5)
  got <- in_other_process(function(name, n) {
    anon <- function() shmr:::process_memory()[["anonymous"]]
    growth <- function(expr) {
      invisible(gc())
      before <- anon()
      force(expr)
      anon() - before
    }
    measure <- function(x, y) {
      list(
        elt = growth(x[5]), elt2 = growth(x[[7]]), slice = growth(x[1:10]),
        head = growth(head(x)), range = growth(range(x)),
        identical = growth(identical(x, y)), sum = growth(sum(x)),
        equal = growth(x == 5.5)
      )
    }
    x <- map_shared(name)
    y <- map_shared(name)
    shared <- measure(x, y)
    values <- list(range = range(x), same = identical(x, y), sum = sum(x),
                   equal = sum(x == 5.5), elts = c(x[5], x[[7]]))
    rm(x, y)
    plain_x <- seq_len(n) + 0.5
    plain_y <- plain_x + 0
    plain <- measure(plain_x, plain_y)
    list(shared = shared, plain = plain, values = values)
  }, list(name = shared_name(x), n = n))
  size <- 8 * n
  slack <- 4 * 2^20
  for (op in c("elt", "elt2", "slice", "head", "identical", "sum")) {
    expect_lt(got$shared[[op]], slack, label = op)
  }
  # range() and == allocate like they do for an ordinary vector (range.default
  # combines its arguments with c(); == allocates its logical result), and
  # never an extra copy of the shared vector.
  for (op in c("range", "equal")) {
    expect_lt(got$shared[[op]], got$plain[[op]] + slack, label = op)
    expect_lt(got$shared[[op]], size + slack, label = op)
  }
  expect_identical(got$values$range, c(1.5, n + 0.5))
  expect_true(got$values$same)
  expect_equal(got$values$sum, sum(seq_len(n) + 0.5))
  expect_identical(got$values$equal, 1L)
  expect_identical(got$values$elts, c(5.5, 7.5))
})

test_that("a write in a consumer costs about a page and stays private", {
  n <- 2.5e7 # 200 MB
  x <- share(seq_len(n) + 0.25)
  name <- shared_name(x)
  got <- in_other_process(function(name) {
    anon <- function() shmr:::process_memory()[["anonymous"]]
    x <- map_shared(name)
    invisible(gc())
    before <- anon()
    x[1] <- 0
    growth <- anon() - before
    other <- map_shared(name)
    list(growth = growth, mine = x[1:2], other = other[1:2],
         shared = is_shared(x), serialized = length(serialize(x, NULL)))
  }, list(name = name))
  expect_lt(got$growth, 4 * 2^20)
  expect_identical(got$mine, c(0, 2.25))
  expect_identical(got$other, c(1.25, 2.25))
  # A written object travels by value: its name would not describe it.
  expect_gt(got$serialized, 8 * n)
  # The creator and the region itself are unchanged.
  expect_identical(x[1], 1.25)
  expect_identical(map_shared(name)[1], 1.25)
})

test_that("writes never reach another object of the same process", {
  x <- share(c(1, 2, 3))
  y <- x
  y[1] <- 100
  expect_identical(x[], c(1, 2, 3))
  expect_identical(y[], c(100, 2, 3))
  z <- map_shared(shared_name(x))
  z[2] <- -1
  expect_identical(x[], c(1, 2, 3))
  w <- map_shared(shared_name(x))
  expect_identical(w[], c(1, 2, 3))

  s <- share(c("a", "b"))
  t <- s
  t[1] <- "changed"
  expect_identical(s[], c("a", "b"))
  expect_identical(t, c("changed", "b"))
})

test_that("a write through a read-only data pointer (Rcpp's) is seen as a write", {
  write <- in_place_writers()
  n <- 1e5
  x <- share(as.numeric(seq_len(n)))
  invisible(x[1])
  write$double_ro(x, 1, NA)
  expect_true(anyNA(x))
  expect_identical(is.unsorted(x), NA)
  y <- x
  y[2] <- 0
  expect_identical(y[1:2], c(NA_real_, 0))
  expect_null(shared_name(x))
  expect_identical(unserialize(serialize(x, NULL))[1], NA_real_)
  expect_identical(in_other_process(function(x) x[1], list(x)), NA_real_)
  # The region and a new object of it keep the old values.
  kept <- share(as.numeric(seq_len(n)))
  name <- shared_name(kept)
  z <- map_shared(name)
  write$double_ro(z, 3, -1)
  rm(z)
  invisible(gc())
  expect_identical(map_shared(name)[3], 3)
  expect_identical(in_other_process(function(name) map_shared(name)[3], list(name)), 3)
  close(kept)
})

test_that("the region's bytes never change, whatever R does to the object", {
  x <- share(as.numeric(1:1000))
  path <- region_file(shared_name(x))
  before <- readBin(path, "raw", file.size(path))
  x[1:10] <- 0
  x[[20]] <- -1
  in_other_process(function(name) {
    y <- map_shared(name)
    y[5] <- 99
    NULL
  }, list(name = shared_name(x)))
  expect_identical(readBin(path, "raw", file.size(path)), before)
})

test_that("character vectors are materialised lazily and shared", {
  words <- paste0("word", seq_len(2e5))
  s <- share(words)
  expect_identical(s[12345], "word12345")
  expect_identical(sort(s)[1:3], sort(words)[1:3])
  expect_identical(s, words)
  expect_identical(nchar(s[c(1, 2e5)]), c(5L, 10L))
})
