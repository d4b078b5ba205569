# Character vectors: share time (medians of ctx$reps rounds, every system
# once in each, in a random order), and in a fresh consumer the map (its
# time and the private memory it takes) and the first element read after
# it, medians of ctx$reps consumers. Whole-vector operations (radix sort()
# among them) are 14-string-ops.R.
run <- function(ctx) {
  n <- if (ctx$quick) 1e6 else 1e7
  x <- sprintf("id_%d_%s", sample.int(n), sample(c("alpha", "beta", "gamma"), n, TRUE))
  size <- as.numeric(object.size(x))
  usable <- ctx$usable("strings", kind = "character")
  names(usable) <- vapply(usable, function(s) s$name, "")
  # Which system shares first moves its time (the machine's state after the
  # previous system's release), so each round takes them in a new order.
  share_times <- lapply(usable, function(s) numeric())
  for (round in seq_len(ctx$reps)) {
    for (name in sample(names(usable))) {
      s <- usable[[name]]
      handle <- NULL
      share_times[[name]] <- c(share_times[[name]], seconds(function() handle <<- s$share(x)))
      s$release(handle)
      rm(handle)
      invisible(gc())
    }
  }
  for (s in usable) {
    ctx$record("strings", "share time", s$name, size, median(share_times[[s$name]]), "s")
    handle <- s$share(x)
    # Each repeat in a fresh consumer: the map (a system may copy the vector
    # then, see `copies` in systems.R) and the first element read after it.
    got <- vapply(seq_len(ctx$reps), function(rep) {
      in_consumer(function(name, token) {
        s <- systems[[name]]
        invisible(gc())
        obj <- NULL
        before_map <- anonymous_bytes()
        t_map <- seconds(function() obj <<- s$map(token))
        map_growth <- anonymous_bytes() - before_map
        invisible(gc())
        before <- anonymous_bytes()
        t_elt <- seconds(function() obj[12345])
        growth <- anonymous_bytes() - before
        c(map = t_map, map_growth = map_growth, elt = t_elt, growth = growth)
      }, list(name = s$name, token = s$token(handle)), system = s$name)
    }, c(map = 0, map_growth = 0, elt = 0, growth = 0))
    got <- apply(got, 1, median)
    ctx$record("strings", "map time", s$name, size, got[["map"]] * 1e3, "ms")
    ctx$record("strings", "map memory growth", s$name, size, got[["map_growth"]] / 2^20, "MB")
    ctx$record("strings", "x[12345] time", s$name, size, got[["elt"]] * 1e3, "ms")
    ctx$record("strings", "x[12345] memory growth", s$name, size, got[["growth"]] / 2^20, "MB")
    s$release(handle)
  }
}
