# Time for a consumer process to map a shared object, by size (should be
# flat), in microseconds.
run <- function(ctx) {
  for (s in ctx$usable("map_time")) {
    worker <- consumer()
    for (size in ctx$sizes) {
      handle <- s$share(runif(size / 8))
      token <- s$token(handle)
      # A token that can be mapped only once (bettermc) is timed once.
      reps <- min(max(ctx$reps, 10L), s$max_maps)
      t <- worker$run(function(name, token, reps) {
        s <- systems[[name]]
        times <- vapply(seq_len(reps), function(i) {
          t0 <- Sys.time()
          obj <- s$map(token)
          t <- as.numeric(Sys.time() - t0, units = "secs")
          s$unmap(token, obj)
          rm(obj)
          t
        }, 0)
        invisible(gc())
        median(times)
      }, list(name = s$name, token = token, reps = reps))
      ctx$record("map_time", "double vector", s$name, size, t * 1e6, "us")
      s$release(handle)
    }
    worker$close()
  }
}
