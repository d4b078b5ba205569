# How fast each system writes a double vector into shared memory (GB/s).
run <- function(ctx) {
  for (s in ctx$usable("share_throughput")) {
    for (size in ctx$sizes) {
      x <- runif(size / 8)
      times <- vapply(seq_len(ctx$reps), function(i) {
        t0 <- Sys.time()
        handle <- s$share(x)
        t <- as.numeric(Sys.time() - t0, units = "secs")
        s$release(handle)
        rm(handle)
        invisible(gc())
        t
      }, 0)
      ctx$record("share_throughput", "double vector", s$name, size, size / 1e9 / median(times), "GB/s")
      ctx$record("share_time", "double vector", s$name, size, median(times), "s")
    }
  }
  # The base R baseline: serialize() into memory.
  for (size in ctx$sizes) {
    x <- runif(size / 8)
    t <- median_seconds(function() serialize(x, NULL), ctx$reps)
    ctx$record("share_throughput", "double vector", "serialize", size, size / 1e9 / t, "GB/s")
  }
}
