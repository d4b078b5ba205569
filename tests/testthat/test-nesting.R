# Deeply nested objects: every walk over an object in the engine (encoding,
# decoding, fetch(), the checks) uses its own stack or R's stack check, so a
# deep object is a result or an R error, never a C stack overflow. Run in
# another process: a crash there fails the test instead of ending the run.

test_that("a list nested 200,000 deep is shared, fetched and walked without a crash", {
  skip_on_cran()
  got <- in_other_process(function() {
    deep <- function(n) {
      x <- list(as.numeric(1:20) + 0)  # not an ALTREP sequence
      for (i in seq_len(n)) x <- list(x)
      x
    }
    depth <- function(x) {
      d <- 0
      while (is.list(x)) {
        x <- x[[1]]
        d <- d + 1
      }
      d
    }
    outcome <- function(expr) tryCatch({
      force(expr)
      "ok"
    }, error = function(e) "error")
    x <- deep(2e5)
    s <- share(x)
    fetched <- fetch(s)
    list(
      shared = depth(s),
      fetched = depth(fetched),
      fetched_is_plain = !shmr:::contains_altrep(fetched),
      plain_fetch = depth(fetch(x)),
      contains_plain = shmr:::contains_altrep(x),
      contains_shared = shmr:::contains_altrep(s),
      mapped = depth(map_shared(shared_name(s))),
      # R's own serialize() may refuse this depth (its stack check); when it
      # does not (a shared list that travels as one name), unserialize()
      # rebuilds every level.
      unserialized = tryCatch(depth(unserialize(serialize(s, NULL))),
                              error = function(e) "error"),
      leaf = fetched[[c(rep(1, 2e5), 1)]][20],
      deep_sharing = outcome(share(x, deep = TRUE, min_bytes = 0))
    )
  })
  expect_identical(got$shared, 2e5 + 1)
  expect_identical(got$fetched, 2e5 + 1)
  expect_true(got$fetched_is_plain)
  expect_identical(got$plain_fetch, 2e5 + 1)
  expect_false(got$contains_plain)
  expect_true(got$contains_shared)
  expect_identical(got$mapped, 2e5 + 1)
  expect_true(identical(got$unserialized, "error") || identical(got$unserialized, 2e5 + 1))
  expect_identical(got$leaf, 20)
  # Deep sharing walks in R: R's own stack check makes depth an R error.
  expect_true(got$deep_sharing %in% c("ok", "error"))
})

test_that("an object nested deeply through its attributes is an R error in fetch(), not a crash", {
  skip_on_cran()
  got <- in_other_process(function() {
    x <- as.numeric(1:3)
    for (i in 1:1e5) x <- structure(list(1), inner = x)
    tryCatch({
      fetch(x)
      "ok"
    }, error = function(e) conditionMessage(e))
  })
  expect_true(identical(got, "ok") || grepl("stack", got))
})
