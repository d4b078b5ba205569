# Deep sharing of a fitted model (share(deep = TRUE)): the time to share an
# lm fit against serialize(), which every send to a worker pays otherwise,
# and the bytes a worker receives either way.
fit_model <- function(n) {
  data <- data.frame(x1 = runif(n), x2 = runif(n), g = factor(sample(letters[1:5], n, TRUE)))
  data$y <- 2 * data$x1 - data$x2 + rnorm(n)
  # The formula's environment is this frame: `data` and `n`, not the fit.
  lm(y ~ x1 + x2 + g, data = data)
}

run <- function(ctx) {
  fit <- fit_model(if (ctx$quick) 2e5 else 1e6)
  size <- as.numeric(object.size(fit))
  shared <- NULL
  time <- median_seconds(function() {
    if (!is.null(shared)) close(shared)
    shared <<- share(fit, deep = TRUE, min_bytes = 1e5)
  }, ctx$reps)
  ctx$record("deep_share", "lm fit time", "shmr", size, time, "s")
  ctx$record("deep_share", "lm fit time", "ordinary", size,
             median_seconds(function() serialize(fit, NULL), ctx$reps), "s")
  ctx$record("deep_share", "lm fit bytes sent", "shmr", size, length(serialize(shared, NULL)),
             "bytes")
  ctx$record("deep_share", "lm fit bytes sent", "ordinary", size, length(serialize(fit, NULL)),
             "bytes")
  close(shared)
}
