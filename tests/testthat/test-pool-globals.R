# What FUN needs travels with it, found recursively: the global variables
# and functions it reaches, theirs in turn, closures' environments.

test_that("globals of FUN are found recursively, large ones shared", {
  skip_on_cran()
  skip_without_callr()
  got <- in_other_process(function() {
    # As a user's script would, at the top level.
    eval(quote({
      library(tools) # file_ext() is found on an attached package
      big <- as.numeric(1:3e5) # over the sharing threshold
      offset <- 100
      helper <- function(i) sum(big) + i
      deeper <- function(i) middle(i) + 1
      middle <- function(i) inner(i) * 2
      inner <- function(i) i + offset
      fib <- function(k) if (k < 2) k else fib(k - 1) + fib(k - 2)
      make_adder <- function(n) function(i) i + n + offset
      add5 <- make_adder(5)
      outer <- function() {
        a <- 1
        middle_env <- function() {
          b <- 2
          function(i) i + a + b + offset + helper(0) - sum(big)
        }
        middle_env()
      }
      nested <- outer()
      `second<-` <- function(x, value) {
        x[2] <- value
        x
      }
      pool <- pool_create(2)
      out <- list(
        issue = pool_lapply(1:2, function(i) helper(i), pool = pool),
        deeper = pool_sapply(1:3, function(i) deeper(i), pool = pool),
        fib = pool_sapply(1:6, function(i) fib(i), pool = pool),
        factory = pool_sapply(1:2, function(i) add5(i), pool = pool),
        nested = pool_sapply(1:2, nested, pool = pool),
        replacement = pool_lapply(7L, function(i) {
          x <- 1:3
          second(x) <- i
          x
        }, pool = pool),
        package = pool_sapply(1, function(i) file_ext("a.txt"), pool = pool),
        shared = pool_sapply(1, function(i) shmr::is_shared(big), pool = pool),
        sum_big = sum(big)
      )
      pool_stop(pool)
      out
    }), globalenv())
  })
  expect_identical(got$issue, list(got$sum_big + 1, got$sum_big + 2))
  expect_identical(got$deeper, ((1:3) + 100) * 2 + 1)
  expect_identical(got$fib, c(1, 1, 2, 3, 5, 8))
  expect_identical(got$factory, (1:2) + 105)
  expect_identical(got$nested, (1:2) + 103)
  expect_identical(got$replacement, list(c(1L, 7L, 3L)))
  expect_identical(got$package, "txt")
  expect_true(got$shared)
})

test_that("FUN's own arguments and variables are not taken for globals", {
  globals <- function(f) sort(shmr:::code_globals(f))
  expect_identical(globals(function(i) {
    huge <- i * 2
    for (k in 1:3) huge <- huge + k
    g <- function(z) z + huge + w
    list(a$b, obj@slot, quote(never), stats::median(i), g(1))
  }), sort(c("{", "*", "for", ":", "+", "w", "list", "a", "obj")))
  # A variable changed in place is read first: it may be a global.
  expect_true("x" %in% globals(function(i) {
    x[i] <- 0
    x
  }))
  expect_true("names<-" %in% globals(function(i) {
    v <- 1:2
    names(v) <- c("a", "b")
    v
  }))
  # Defaults of arguments count; `...` does not.
  expect_identical(globals(function(i, k = default_k, ...) list(...)), sort(c("default_k", "list")))
})

test_that("a shared object closed in the frame FUN was made in does not stop the call", {
  skip_on_cran()
  skip_without_callr()
  got <- in_other_process(function() {
    pool <- pool_create(1)
    on.exit(pool_stop(pool))
    # The frame of main() holds x, which FUN never uses: it once made the
    # call fail with "cannot share an object that was closed".
    main <- function(use) {
      x <- share(rnorm(1e5))
      close(x)
      kept <- 10
      tryCatch(pool_sapply(1:2, if (use) function(i) sum(x) + i else function(i) i + kept,
                           pool = pool), error = conditionMessage)
    }
    list(unused = main(FALSE), used = main(TRUE))
  })
  expect_identical(got$unused, c(11, 12))
  expect_match(got$used, "`x` is a shared object that was closed", fixed = TRUE)
})
