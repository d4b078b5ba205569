# Time for a consumer process to map a shared object, by size (should be
# flat), in microseconds; and the bytes serialize() writes for the shared
# object (what travels to a worker), measured on the same objects.
run <- function(ctx) {
  usable <- ctx$usable("map_time")
  # One consumer per system, kept for all sizes.
  workers <- lapply(usable, function(s) consumer(s$name))
  on.exit(for (w in workers) w$close())
  for (size in ctx$sizes) {
    x <- ctx$vector(size)
    for (s in usable) {
      handle <- s$share(x)
      token <- s$token(handle)
      ctx$record("serialized_size", "double vector", s$name, size,
                 length(serialize(s$object(handle), NULL)), "bytes")
      # A token that can be mapped only once (bettermc) is timed once.
      reps <- min(max(ctx$reps, 10L), s$max_maps)
      t <- workers[[s$name]]$run(function(name, token, reps) {
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
      rm(handle)
      invisible(gc())
    }
    rm(x)
  }
  ctx$drop_vector()
}
