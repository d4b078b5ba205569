test_that("close() releases now; later use is a clear error, never a crash", {
  x <- share(rnorm(1000))
  name <- shared_name(x)
  expect_true(region_exists(name))
  expect_invisible(close(x))
  expect_false(region_exists(name))
  expect_false(is_shared(x))
  expect_error(sum(x), "was closed")
  expect_error(x[1], "was closed")
  expect_error(x[[2]], "was closed")
  expect_error(fetch(x), "was closed")
  expect_error(serialize(x, NULL), "was closed")
  expect_error(share(list(x)), "closed")
  expect_identical(length(x), 1000L)
})

test_that("close() of a list releases every part of it", {
  df <- share(data.frame(a = 1:10, b = letters[1:10]))
  col <- df$b
  close(df)
  expect_error(col[1], "was closed")
  expect_error(print(df), "was closed")
})

test_that("close() in a consumer process leaves the region to its creator", {
  x <- share(as.numeric(1:10))
  got <- in_other_process(function(name) {
    y <- map_shared(name)
    close(y)
    list(error = tryCatch(sum(y), error = conditionMessage),
         still_there = file.exists(file.path(Sys.getenv("SHMR_SHM_DIR", "/dev/shm"), name)))
  }, list(name = shared_name(x)))
  expect_match(got$error, "was closed")
  expect_true(got$still_there)
  expect_true(region_exists(shared_name(x)))
  expect_identical(sum(x), 55)
})

test_that("close() in the creator process releases the region for everyone", {
  x <- share(as.numeric(1:10))
  y <- map_shared(shared_name(x))
  name <- shared_name(x)
  close(y)
  expect_false(region_exists(name))
  # Objects of other mappings keep their pages.
  expect_identical(sum(x), 55)
})

test_that("close() works on anything share() returned, doing nothing when nothing was shared", {
  env <- new.env()
  env$a <- 1:10
  f <- function(x) x + 1
  small <- list(a = 1:3, b = "x")
  returned <- list(
    share(env), share(f), share(NULL), share(quote(a + b)),
    share(small, deep = TRUE, min_bytes = 1e6),  # nothing above min_bytes
    share(1:3, deep = TRUE, min_bytes = 1e6)
  )
  for (r in returned) expect_false(close(r))
  expect_identical(env$a, 1:10) # left as it was
  expect_false(close(1:3))
  # A connection keeps its own method.
  con <- file(tempfile(), "w")
  expect_silent(close(con))
})

test_that("close() of one map_shared() result of a list leaves another one readable", {
  df <- share(data.frame(a = 1:3, b = c("x", "y", "z"), stringsAsFactors = FALSE))
  name <- shared_name(df)
  first <- map_shared(name)
  second <- map_shared(name)
  expect_true(close(second))
  expect_error(second$a[1], "closed")
  expect_identical(first$a[], 1:3)
  expect_identical(first$b[], c("x", "y", "z"))
  expect_identical(df$b[], c("x", "y", "z"))
})
