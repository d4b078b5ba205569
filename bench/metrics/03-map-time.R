# Time for a consumer process to map a shared object, by size (should be
# flat), in microseconds; and the bytes serialize() writes for the shared
# object (what travels to a worker), measured on the same objects.
#
# One consumer, with every system's package loaded, maps for all systems:
# each peer is paired with shmr, both share the vector, and the consumer
# maps the two in turn, in a random order each round, so that the drift of
# this shared machine affects both alike. shmr's figure is the median of
# its maps over all pairings (and, as "alongside <peer>", in each pairing);
# a peer's the median of its maps in its own.
run <- function(ctx) {
  usable <- ctx$usable("map_time")
  if (is.null(usable$shmr)) stop("the map times are taken alongside shmr's")
  worker <- consumer(NULL)
  on.exit(worker$close())
  set.seed(20161)
  for (size in ctx$sizes) {
    x <- ctx$vector(size)
    peers <- usable[names(usable) != "shmr"]
    pairings <- if (length(peers)) lapply(peers, function(p) list(usable$shmr, p)) else list(list(usable$shmr))
    shmr_times <- numeric()
    for (pair in pairings) {
      if (!ctx$fits((1 + length(pair)) * size)) {
        for (s in pair[-1]) ctx$record("map_time", "skipped", s$name, size, NA,
                                       ctx$skip_reason((1 + length(pair)) * size,
                                                       "the vector and two shared copies"))
        next
      }
      handles <- lapply(pair, function(s) s$share(x))
      names(handles) <- vapply(pair, `[[`, "", "name")
      tokens <- Map(function(s, h) s$token(h), pair, handles)
      for (i in seq_along(pair)) {
        if (length(shmr_times) && pair[[i]]$name == "shmr") next  # once per size
        ctx$record("serialized_size", "double vector", pair[[i]]$name, size,
                   length(serialize(pair[[i]]$object(handles[[i]]), NULL)), "bytes")
      }
      # 20 maps each (medians of a few tens of microseconds move with the
      # machine); a token that can be mapped only once (bettermc) once.
      maps <- vapply(pair, function(s) as.integer(min(max(ctx$reps, 20L), s$max_maps)), 0L)
      times <- worker$run(function(names, tokens, maps, seed) {
        set.seed(seed)
        one_map <- function(s, token) {
          t0 <- Sys.time()
          obj <- s$map(token)
          t <- as.numeric(Sys.time() - t0, units = "secs")
          s$unmap(token, obj)
          t
        }
        out <- lapply(maps, function(n) numeric())
        for (round in seq_len(max(maps))) {
          due <- which(maps >= round)
          for (i in due[sample.int(length(due))]) {
            out[[i]] <- c(out[[i]], one_map(systems[[names[i]]], tokens[[i]]))
          }
        }
        invisible(gc())
        out
      }, list(names = names(handles), tokens = unname(tokens), maps = maps,
              seed = sample.int(1e6, 1L)))
      peer_names <- setdiff(names(handles), "shmr")
      for (i in seq_along(pair)) {
        if (pair[[i]]$name == "shmr") {
          shmr_times <- c(shmr_times, times[[i]])
          # shmr's median alongside this peer alone, for the ratio of two
          # figures taken at the same moments.
          if (length(peer_names)) {
            ctx$record("map_time", paste("double vector, alongside", peer_names), "shmr", size,
                       median(times[[i]]) * 1e6, "us")
          }
        } else {
          ctx$record("map_time", "double vector", pair[[i]]$name, size,
                     median(times[[i]]) * 1e6, "us")
        }
      }
      for (i in seq_along(pair)) pair[[i]]$release(handles[[i]])
      rm(handles, tokens)
      invisible(gc())
    }
    if (length(shmr_times)) {
      ctx$record("map_time", "double vector", "shmr", size, median(shmr_times) * 1e6, "us")
    }
    rm(x)
  }
  ctx$drop_vector()
}
