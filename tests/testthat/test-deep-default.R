# Deep sharing's default `min_bytes` shares what a user wants sent once.

test_that("by default, deep sharing of an lm fit leaves only its small parts to send", {
  # As at a user's top level: the formula's environment (which holds the
  # data) has the global environment as its parent, not this test's.
  fit_model <- function(n) {
    d <- data.frame(x1 = rnorm(n), x2 = rnorm(n))
    d$y <- 1 + 2 * d$x1 - d$x2 + rnorm(n)
    lm(y ~ x1 + x2, data = d)
  }
  environment(fit_model) <- globalenv()
  fit <- fit_model(2e5) # every vector of the fit is far below shard's 64 MiB
  s <- share(fit, deep = TRUE, cycle = "skip")
  on.exit(close(s))
  by_value <- length(serialize(fit, NULL))
  shared <- length(serialize(s, NULL))
  expect_lt(shared, 0.01 * by_value)
  expect_true(is_shared(s$residuals))
  expect_true(is_shared(s$qr$qr))
  newdata <- data.frame(x1 = c(0, 1), x2 = c(2, 3))
  expect_equal(predict(s, newdata), predict(fit, newdata))
  expect_equal(coef(s), coef(fit))
})
