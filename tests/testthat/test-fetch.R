test_that("fetch() returns an ordinary deep copy with no ALTREP inside", {
  original <- list(
    v = setNames(rnorm(100), paste0("n", 1:100)),
    s = c("a", NA, "b"),
    df = data.frame(a = 1:5, f = factor(letters[1:5]), stringsAsFactors = FALSE),
    nested = list(list(m = matrix(1:6, 2, dimnames = list(c("r1", "r2"), NULL))))
  )
  shared <- share(original)
  expect_true(shmr:::contains_altrep(shared))
  copy <- fetch(shared)
  expect_false(shmr:::contains_altrep(copy))
  expect_identical(copy, original)
  expect_false(is_shared(copy))
  close(shared)
  expect_identical(copy, original)
})

test_that("fetch() of an ordinary object is a copy of it", {
  x <- list(1:3, "a")
  expect_identical(fetch(x), x)
  expect_false(shmr:::contains_altrep(fetch(1:10)))
})

test_that("fetch() copies an S4 object's slots and a pairlist's cells: usable after close()", {
  setClass("shmrFetchSlots", representation(x = "numeric", inner = "list"), where = globalenv())
  on.exit(removeClass("shmrFetchSlots", where = globalenv()), add = TRUE)
  s4 <- new("shmrFetchSlots", x = as.numeric(seq_len(2e4)), inner = list(y = as.numeric(seq_len(2e4)) * 2))
  cells <- pairlist(a = as.numeric(seq_len(1e4)), b = "x", c = pairlist(d = as.numeric(seq_len(1e4)) + 1))
  for (value in list(s4, cells, list(s4 = s4, cells = cells))) {
    shared <- share(value)
    copy <- fetch(shared)
    expect_false(shmr:::contains_altrep(copy))
    close(shared)
    # Before, these still read the closed region ("was closed").
    expect_identical(copy, value)
    expect_identical(unserialize(serialize(copy, NULL)), value)
  }
})

test_that("fetch() copies the environments a shared object is reached through: an R6-style object outlives close()", {
  values <- runif(5e4)
  s <- share(make_r6_style_store(values), deep = TRUE, min_bytes = 1e4, cycle = "skip")
  expect_true(is_shared(s$values))
  copy <- fetch(s)
  expect_false(identical(copy, s))
  close(s)
  # Before, the copy's environments were the shared object's: "was closed".
  expect_error(s$total(), "was closed")
  expect_false(shmr:::contains_altrep(copy$values))
  expect_identical(copy$values, values)
  expect_equal(copy$total(), sum(values))
  expect_equal(copy$size, 5e4)
  expect_true(bindingIsActive("size", copy))
  expect_true(bindingIsLocked("total", copy))
  expect_s3_class(copy, "store")
  # The copy's methods read the copy: `self` is the copy, a cycle kept.
  expect_identical(environment(copy$total)$self, copy)
  copy$values <- c(1, 2, 3)
  expect_equal(copy$total(), 6)
  expect_equal(copy$size, 3)
})

test_that("fetch() copies a closure's enclosing frames that hold shared data, and keeps other environments", {
  # The shared vector is an argument of the frame enclosing the closure's
  # own (empty) frame, not yet evaluated.
  outer <- local(function(v) {
    inner <- function() function() sum(v)
    inner()
  }, envir = new.env(parent = globalenv()))
  values <- as.numeric(seq_len(1e5))
  f <- outer(share(values))
  # Its parent is this test's frame, which holds shared data: an
  # environment that is data, not a closure's scope, is not followed there.
  plain <- new.env()
  plain$a <- 1
  g <- local(function() 1, envir = new.env(parent = globalenv()))
  x <- list(f = f, plain = plain, g = g, v = share(values))
  copy <- fetch(x)
  close(get("v", envir = parent.env(environment(f))))
  close(x$v)
  expect_equal(copy$f(), sum(values))
  expect_identical(copy$v, values)
  expect_false(identical(environment(copy$f), environment(f)))
  # Environments that lead to no shared object are the same objects, as in
  # any copy of an R value; so is the global environment.
  expect_identical(copy$plain, plain)
  expect_identical(environment(copy$g), environment(g))
  expect_identical(parent.env(parent.env(environment(copy$f))), environment(outer))
})

test_that("fetch() of a formula whose environment holds shared data, and of a Reference Class object", {
  make_formula <- function(w) {
    force(w)
    y ~ x
  }
  weights <- runif(1e4)
  shared_weights <- share(weights)
  fo <- make_formula(shared_weights)
  copy <- fetch(fo)
  close(shared_weights)
  expect_identical(environment(copy)$w, weights)
  expect_s3_class(copy, "formula")

  Account <- setRefClass("ShmrFetchAccount", fields = list(values = "numeric"), where = globalenv(),
                         methods = list(total = function() sum(values)))
  on.exit(removeClass("ShmrFetchAccount", where = globalenv()))
  amounts <- runif(1e5)
  s <- share(Account$new(values = amounts), deep = TRUE, min_bytes = 1e4, cycle = "skip")
  account <- fetch(s)
  close(s)
  expect_equal(account$total(), sum(amounts))
  expect_identical(account$values, amounts)
  expect_true(validObject(account))
})

test_that("fetch() stops with the error of a promise that fails, naming its variable", {
  e <- new.env()
  delayedAssign("p", stop("boom"), assign.env = e)
  e$x <- share(as.numeric(1:10))
  # The error comes once, as the first use of `p` would raise it: no
  # "restarting interrupted promise evaluation" warning from a second try.
  expect_no_warning(err <- tryCatch(fetch(e), error = function(e) e))
  expect_s3_class(err, "shmr_promise_error")
  expect_match(conditionMessage(err), "`p`.*boom")
  expect_identical(conditionMessage(err$parent), "boom")

  long <- strrep("v", 500)
  delayedAssign(long, stop("late"), assign.env = e)
  rm("p", envir = e)
  err <- tryCatch(fetch(e), error = function(e) e)
  expect_lt(nchar(conditionMessage(err)), 200)
  expect_match(conditionMessage(err), "late")

  # A promise that evaluates is copied with its value, as before.
  rm(list = long, envir = e)
  delayedAssign("q", 1 + 1, assign.env = e)
  copy <- fetch(e)
  expect_identical(copy$q, 2)
  expect_identical(copy$x, as.numeric(1:10))
})
