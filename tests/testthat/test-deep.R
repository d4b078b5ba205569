# share(deep = TRUE): whole object graphs, with aliases, cycles, parts that
# cannot be shared and class hooks.

region_of <- function(x) sub("\\[.*$|@.*$", "", shared_name(x))

# A region directory of this test's own, so counting files is exact.
with_private_shm <- function(code) {
  dir <- tempfile("shm")
  dir.create(dir, mode = "0700")
  old <- Sys.getenv("SHMR_SHM_DIR", unset = NA)
  Sys.setenv(SHMR_SHM_DIR = dir)
  on.exit({
    if (is.na(old)) Sys.unsetenv("SHMR_SHM_DIR") else Sys.setenv(SHMR_SHM_DIR = old)
    unlink(dir, recursive = TRUE)
  })
  force(code)
  list.files(dir, all.files = TRUE, no.. = TRUE)
}

test_that("the same matrix reached twice is shared once", {
  m <- matrix(runif(2e5), 1000)
  x <- list(a = m, b = m, small = 1:3)
  s <- share(x, deep = TRUE, min_bytes = 1e5)
  expect_identical(s, x)
  info <- shared_info(s)
  expect_true(info$deep)
  expect_equal(info$n_regions, 1L)
  expect_equal(info$shared_bytes, 8 * length(m))
  expect_identical(info$shared, "x$a")
  expect_identical(info$aliases, "x$b")
  expect_equal(info$n_aliases, 1L)
  expect_identical(region_of(s$a), region_of(s$b))
  expect_false(is_shared(s$small))
  expect_true(is_shared(s))
  # The region holds one copy of m, not two.
  expect_lt(shared_info(s$a)$size, 1.1 * 8 * length(m))

  # In another process both elements still read the one region.
  got <- in_other_process(function(s) {
    list(a = shared_name(s$a), b = shared_name(s$b), sum = sum(s$a) + sum(s$b))
  }, list(s = s))
  expect_identical(got$a, shared_name(s$a))
  expect_identical(sub("\\[.*$", "", got$b), region_of(s$a))
  expect_equal(got$sum, 2 * sum(m))
  close(s)
})

test_that("one matrix held by two environments is shared once", {
  m <- matrix(runif(1e5), 100)
  first <- new.env(parent = emptyenv())
  second <- new.env(parent = emptyenv())
  first$m <- m
  second$m <- m
  s <- share(list(first, second), deep = TRUE, min_bytes = 1e4)
  expect_equal(shared_info(s)$n_regions, 1L)
  expect_identical(shared_info(s)$aliases, "x[[2]]$m")
  expect_identical(region_of(s[[1]]$m), region_of(s[[2]]$m))
  expect_false(identical(s[[1]], first))
})

test_that("a deep share serializes as names and small parts", {
  big <- runif(1e6)
  x <- list(model = list(coef = c(a = 1, b = 2), fitted = big, resid = big - 1), label = "run 1")
  s <- share(x, deep = TRUE, min_bytes = 1e4)
  expect_equal(shared_info(s)$n_regions, 2L)
  expect_lt(length(serialize(s, NULL)), 1500)
  expect_identical(unserialize(serialize(s, NULL)), x)
})

test_that("min_bytes is inclusive: a vector of exactly min_bytes bytes is shared", {
  v <- runif(1000) # 8000 bytes
  strings <- rep("abcd", 100) # 100 * 8 + 400 = 1200 bytes
  at <- share(list(v = v, s = strings), deep = TRUE, min_bytes = 8000)
  expect_true(is_shared(at$v))
  expect_false(is_shared(at$s))
  above <- share(list(v = v, w = runif(2000)), deep = TRUE, min_bytes = 8001)
  expect_true(is_shared(above$w))
  expect_false(is_shared(above$v))
  expect_true("x$v" %in% shared_info(above)$kept)
  expect_true(is_shared(share(list(s = strings), deep = TRUE, min_bytes = 1200)$s))
  expect_false(is_shared(share(list(s = strings), deep = TRUE, min_bytes = 1201)$s))
})

test_that("an R6-style object keeps working through its methods in another process", {
  store <- make_r6_style_store(runif(5e5))
  expect_error(share(store, deep = TRUE, min_bytes = 1e4),
               "store\\$scaled<env>\\$self refers back to the environment at store")
  s <- share(store, deep = TRUE, min_bytes = 1e4, cycle = "skip")
  expect_true(is_shared(s$values))
  expect_false(identical(s, store)) # a copy: the original is untouched
  expect_false(is_shared(store$values))
  expect_equal(s$total(), store$total())
  expect_equal(s$size, 5e5)
  expect_true(bindingIsLocked("total", s))
  expect_true(bindingIsActive("size", s))
  expect_s3_class(s, "store")
  expect_true("store$scaled<env>$self" %in% shared_info(s)$skipped$path)

  # The 4 MB of values are not in it (what is, is mostly the methods'
  # source references, which testthat keeps).
  expect_lt(length(serialize(s, NULL)), 0.1 * 8 * 5e5)
  got <- in_other_process(function(s) {
    before <- shmr:::process_memory()[["anonymous"]]
    total <- s$total()
    list(total = total, scaled = s$scaled(2), shared = is_shared(s$values),
         size = s$size, growth = shmr:::process_memory()[["anonymous"]] - before)
  }, list(s = s))
  expect_equal(got$total, store$total())
  expect_equal(got$scaled, store$values[1:5] * 2)
  expect_true(got$shared)
  expect_equal(got$size, 5e5)
  expect_lt(got$growth, 0.5 * 8 * 5e5)
})

test_that("an R6 object is shared deep and its methods work in another process", {
  skip_if_not_installed("R6")
  Model <- R6::R6Class("Model",
    public = list(
      data = NULL,
      initialize = function(data) self$data <- data,
      column_means = function() colMeans(self$data),
      rows = function() private$count()
    ),
    private = list(count = function() nrow(self$data)),
    active = list(width = function() ncol(self$data))
  )
  model <- Model$new(matrix(runif(4e5), ncol = 4))
  s <- share(model, deep = TRUE, min_bytes = 1e5, cycle = "skip")
  expect_true(is_shared(s$data))
  expect_equal(s$column_means(), model$column_means())
  expect_equal(s$rows(), 1e5)
  got <- in_other_process(function(s) {
    list(means = s$column_means(), rows = s$rows(), width = s$width,
         shared = is_shared(s$data), class = class(s))
  }, list(s = s))
  expect_equal(got$means, model$column_means())
  expect_equal(got$rows, 1e5)
  expect_equal(got$width, 4)
  expect_true(got$shared)
  expect_identical(got$class, c("Model", "R6"))
})

test_that("a Reference Class object is shared deep and its methods use the shared field", {
  Account <- setRefClass("ShmrAccount", fields = list(values = "numeric"), where = globalenv(),
    methods = list(
      total = function() sum(values),
      add = function(k) {
        values <<- values + k
        invisible(.self)
      }
    ))
  on.exit(removeClass("ShmrAccount", where = globalenv()))
  account <- Account$new(values = runif(1e5))
  expect_error(share(account, deep = TRUE, min_bytes = 1e4), "account@.xData\\$.self")
  s <- share(account, deep = TRUE, min_bytes = 1e4, cycle = "skip")
  expect_true(is_shared(s$values))
  expect_equal(s$total(), account$total())
  # A typed field is an active binding over a hidden `.->values` binding.
  expect_identical(shared_info(s)$shared, "account@.xData$.->values")
  expect_true(validObject(s))
  got <- in_other_process(function(s) {
    list(total = s$total(), shared = is_shared(s$values))
  }, list(s = s))
  expect_equal(got$total, account$total())
  expect_true(got$shared)
  # Methods that assign change the copy, never the original or the region.
  s$add(1)
  expect_equal(s$total(), account$total() + 1e5)
  expect_false(is_shared(s$values))
})

test_that("close() of a deep-shared Reference Class object removes its regions", {
  Account <- setRefClass("ShmrClosedAccount", fields = list(values = "numeric"), where = globalenv(),
                         methods = list(total = function() sum(values)))
  on.exit(removeClass("ShmrClosedAccount", where = globalenv()))
  s <- share(Account$new(values = runif(1e5)), deep = TRUE, min_bytes = 1e4, cycle = "skip")
  regions <- shared_info(s)$regions
  expect_length(regions, 1L)
  expect_true(regions %in% shared_regions()$name)
  # The object is an S4 object whose environment is its .xData slot: close()
  # raised "internal error: not an environment" and removed nothing.
  expect_true(close(s))
  expect_false(regions %in% shared_regions()$name)
  expect_error(s$total(), "was closed")
})

test_that("a fitted lm shared deep predicts in a worker as it does locally", {
  # Fitted as at a user's top level, in an environment whose parent is the
  # global one (a test's environment leads to testthat's, and, when the file
  # runs outside the package, to the helpers, which deep sharing would walk).
  # That environment is the formula's, and it holds `fit` itself.
  fitted_in <- new.env(parent = globalenv())
  local({
    data <- data.frame(x1 = runif(5e4), x2 = runif(5e4), g = factor(sample(letters[1:3], 5e4, TRUE)))
    data$y <- 2 * data$x1 - data$x2 + as.integer(data$g) + rnorm(5e4)
    fit <- lm(y ~ x1 + x2 + g, data = data)
  }, envir = fitted_in)
  fit <- fitted_in$fit
  expect_error(share(fit, deep = TRUE, min_bytes = 1e5), "fit\\$terms@.Environment\\$fit")
  s <- share(fit, deep = TRUE, min_bytes = 1e5, cycle = "skip")
  info <- shared_info(s)
  expect_gt(info$n_regions, 3)
  expect_true(is_shared(s$residuals))
  expect_lt(length(serialize(s, NULL)), length(serialize(fit, NULL)) / 20)
  new_data <- data.frame(x1 = c(0.1, 0.5), x2 = c(0.3, 0.9), g = factor(c("a", "c"), letters[1:3]))
  local <- predict(fit, new_data, se.fit = TRUE)
  got <- in_other_process(function(s, new_data) {
    predict(s, new_data, se.fit = TRUE)
  }, list(s = s, new_data = new_data))
  expect_equal(got$fit, local$fit)
  expect_equal(got$se.fit, local$se.fit)
  expect_equal(summary(s)$coefficients, summary(fit)$coefficients)
})

test_that("an S4 object keeps its class and validity, with its slots shared", {
  setClass("Measured", representation(values = "numeric", unit = "character"),
           validity = function(object) if (length(object@unit) != 1) "one unit" else TRUE,
           where = globalenv())
  on.exit(removeClass("Measured", where = globalenv()))
  obj <- new("Measured", values = runif(1e5), unit = "cm")
  s <- share(obj, deep = TRUE, min_bytes = 1e4)
  expect_true(is(s, "Measured"))
  expect_true(validObject(s))
  expect_true(is_shared(s@values))
  expect_identical(shared_info(s)$shared, "obj@values")
  expect_identical(s, obj)
})

test_that("a self-referencing environment: cycle = 'error' names the path, 'skip' shares", {
  inner <- new.env()
  inner$data <- runif(1e5)
  inner$self <- inner
  x <- list(model = list(env = inner))
  expect_error(share(x, deep = TRUE, min_bytes = 1e4),
               "x\\$model\\$env\\$self refers back to the environment at x\\$model\\$env")
  s <- share(x, deep = TRUE, min_bytes = 1e4, cycle = "skip")
  env <- s$model$env
  expect_true(is_shared(env$data))
  expect_identical(env$self, env)
  expect_false(identical(env, inner))
  skipped <- shared_info(s)$skipped
  expect_identical(skipped$path, "x$model$env$self")
  expect_match(skipped$reason, "cycle")
})

test_that("external pointers: balanced keeps and reports them, strict names the path", {
  e <- new.env()
  e$handle <- new("externalptr")
  e$data <- runif(1e5)
  x <- list(cache = e)
  s <- share(x, deep = TRUE, min_bytes = 1e4)
  expect_identical(s$cache$handle, e$handle)
  expect_true(is_shared(s$cache$data))
  expect_identical(shared_info(s)$skipped$path, "x$cache$handle")
  expect_match(shared_info(s)$skipped$reason, "external pointer")
  expect_error(share(x, deep = TRUE, min_bytes = 1e4, mode = "strict"),
               "external pointer at x\\$cache\\$handle")
  con <- file(tempfile(), "w")
  on.exit(close(con))
  expect_error(share(list(out = con), deep = TRUE, mode = "strict"), "connection at x\\$out")
})

test_that("a closed shared object met by the walk is kept and reported", {
  gone <- share(runif(1e5))
  close(gone)
  s <- share(list(gone = gone, fresh = runif(1e5)), deep = TRUE, min_bytes = 1e4)
  expect_true(is_shared(s$fresh))
  expect_identical(shared_info(s)$skipped$path, "x$gone")
  expect_match(shared_info(s)$skipped$reason, "closed")
  # mode = "strict" stops there, as at any part that cannot be shared, and
  # removes the region it made for the vector walked before.
  left <- with_private_shm({
    gone <- share(runif(1e5))
    close(gone)
    expect_error(share(list(fresh = runif(1e5), gone = gone), deep = TRUE, min_bytes = 1e4,
                       mode = "strict"),
                 "mode = \"strict\"): a shared object that was closed at x$gone cannot be shared",
                 fixed = TRUE)
  })
  expect_length(left, 0)
})

test_that("a failing deep share leaves no region behind", {
  left <- with_private_shm({
    e <- new.env()
    e$a <- runif(1e5)
    e$b <- runif(1e5)
    e$z <- new("externalptr")
    expect_error(share(e, deep = TRUE, min_bytes = 1e4, mode = "strict"), "external pointer")
  })
  expect_length(left, 0)
  left <- with_private_shm({
    s <- share(list(a = runif(1e5), b = runif(1e5)), deep = TRUE, min_bytes = 1e4)
    expect_equal(shared_info(s)$n_regions, 2L)
    close(s)
    expect_error(sum(s$a), "closed")
  })
  expect_length(left, 0)
})

test_that("hooks skip, force and rewrite parts of a class", {
  registerS3method("share_hook", "tuned", function(x, ctx) {
    list(skip = "scratch", force = "weights", rewrite = function(obj) {
      obj$doubled <- obj$data * 2
      obj
    })
  })
  registerS3method("share_hook", "by_path", function(x, ctx) {
    list(skip_paths = paste0(ctx$path, "$keep"), force_share_paths = paste0(ctx$path, "$tiny"))
  })
  x <- structure(list(weights = c(1, 2), scratch = runif(1e5), data = runif(1e5)), class = "tuned")
  s <- share(x, deep = TRUE, min_bytes = 1e4)
  expect_true(is_shared(s$weights))
  expect_false(is_shared(s$scratch))
  expect_true(is_shared(s$data))
  expect_true(is_shared(s$doubled))
  expect_equal(s$doubled, x$data * 2)
  expect_identical(shared_info(s)$skipped$path, "x$scratch")

  y <- list(inner = structure(list(keep = runif(1e5), tiny = 1:2), class = "by_path"))
  t <- share(y, deep = TRUE, min_bytes = 1e4)
  expect_false(is_shared(t$inner$keep))
  expect_true(is_shared(t$inner$tiny))

  registerS3method("share_hook", "broken", function(x, ctx) stop("no luck"))
  z <- list(part = structure(list(v = runif(1e5)), class = "broken"))
  expect_error(share(z, deep = TRUE, min_bytes = 1e4, mode = "strict"), "share_hook\\(\\) failed \\(no luck\\) at z\\$part")
  b <- share(z, deep = TRUE, min_bytes = 1e4)
  expect_true(is_shared(b$part$v))
  expect_match(shared_info(b)$skipped$reason, "no luck")

  registerS3method("share_hook", "bad_answer", function(x, ctx) "nope")
  expect_error(share(structure(list(1), class = "bad_answer"), deep = TRUE),
               "share_hook\\(\\) for class \"bad_answer\" must return a list")
})

test_that("closures, formulas and promises are walked without changing the original", {
  make_scorer <- function(reference) function(v) sum(v * reference[seq_along(v)])
  reference <- runif(1e5)
  scorer <- make_scorer(reference) # `reference` is still an unevaluated promise
  f <- y ~ x
  environment(f) <- list2env(list(weights = runif(1e5)))
  s <- share(list(score = scorer, formula = f), deep = TRUE, min_bytes = 1e4)
  expect_true(is_shared(environment(s$score)$reference))
  expect_identical(shared_info(s)$aliases, character())
  expect_equal(s$score(1:3), scorer(1:3))
  expect_true(is_shared(environment(s$formula)$weights))
  expect_false(is_shared(environment(f)$weights))
  expect_identical(class(s$formula), "formula")

  failing <- (function(value) function() value)(stop("not yet"))
  kept <- share(list(g = failing), deep = TRUE)
  expect_identical(shared_info(kept)$skipped$path, "x$g<env>$value")
  expect_match(shared_info(kept)$skipped$reason, "promise not evaluated")
  # R warns that the promise is evaluated again: the first attempt was ours.
  expect_error(suppressWarnings(kept$g()), "not yet")
})

test_that("deep = FALSE is unchanged and bad deep arguments are errors", {
  expect_null(shared_info(share(runif(10)))$deep)
  expect_error(share(1, deep = TRUE, cycle = "maybe"), "should be one of")
  expect_error(share(1, deep = TRUE, mode = "fast"), "should be one of")
  expect_error(share(1, deep = TRUE, min_bytes = -1), "min_bytes")
  expect_warning(share(list(1), deep = TRUE, name = "deep_named"), "ignored")
  expect_false(is_shared(share(1:3, deep = TRUE)))
  small <- list(a = 1:3, b = "x")
  expect_identical(share(small, deep = TRUE), small)
  expect_false(is_shared(small))
})
