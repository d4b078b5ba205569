# Warm whole-vector reads (range, ==, identical, a gather at random
# positions, sum) of every system's shared vector and of an ordinary copy,
# all in one consumer and timed in turn, in a random order each round: the
# ratios to the ordinary copy then compare the systems at the same moments
# and against the same copy. (In 04-consumer-access.R each system has its
# own consumer and its own copy, and where that copy's fresh memory lands
# moves its time by up to 2x.) Recorded as "<probe> time, warm, side by
# side", in ms, for each system, for "ordinary", and for "minimal ALTREP": a
# vector of the least ALTREP class there can be (bench/altrep_floor.c), the
# share of those times that is R's dispatch to ALTREP methods, whoever
# implements them.
side_by_side_probes <- c("range(x)", "x == 5", "identical(x, y)", "x[idx]", "sum(x)")

run <- function(ctx) {
  usable <- ctx$usable("warm_side_by_side")
  size <- ctx$scan_size
  # The vector, each system's share, and in the consumer an ordinary copy,
  # its duplicate (for identical()), the minimal ALTREP vector's copy and a
  # private copy a system may make.
  need <- (5 + length(usable)) * size
  if (!ctx$fits(need)) {
    ctx$record("warm_side_by_side", "skipped", "all", size, NA,
               ctx$skip_reason(need, "every system's share and four copies"))
    return(invisible())
  }
  x <- ctx$vector(size)
  handles <- lapply(usable, function(s) s$share(x))
  on.exit(for (s in usable) s$release(handles[[s$name]]), add = TRUE)
  tokens <- lapply(usable, function(s) s$token(handles[[s$name]]))
  floor_library <- altrep_floor_library()
  worker <- consumer(NULL)
  on.exit(worker$close(), add = TRUE)
  rows <- worker$run(function(tokens, probes, reps, floor_library) {
    objects <- list()
    skipped <- character()
    for (name in names(tokens)) {
      obj <- systems[[name]]$map(tokens[[name]])
      if (is.numeric(obj)) objects[[name]] <- obj else skipped <- c(skipped, name)
    }
    first <- objects[[1L]]
    objects$ordinary <- first + 0
    if (!is.null(floor_library)) {
      dyn.load(floor_library)
      objects[["minimal ALTREP"]] <- .Call("altrep_floor_wrap", first + 0, PACKAGE = "altrep_floor")
    }
    # y of identical(x, y): a second map of the same share, or a copy.
    second <- lapply(names(objects), function(name) {
      if (name == "ordinary") return(objects$ordinary + 0)
      if (name == "minimal ALTREP") return(NULL)
      s <- systems[[name]]
      if (is.finite(s$max_maps)) NULL else s$map(tokens[[name]])
    })
    names(second) <- names(objects)
    # Also seeds the order of the rounds below.
    idx <- random_positions(first)
    call_of <- function(probe, name) {
      obj <- objects[[name]]
      s <- systems[[name]]  # NULL for the ordinary copy: read_of() and sum_of() give R's own
      switch(probe,
             "range(x)" = function() range(obj),
             "x == 5" = function() obj == 5,
             "identical(x, y)" = if (is.null(second[[name]])) NULL else function() identical(obj, second[[name]]),
             "x[idx]" = function() read_of(s)(obj, idx),
             "sum(x)" = function() sum_of(s)(obj))
    }
    out <- list()
    for (probe in probes) {
      calls <- Filter(Negate(is.null), lapply(setNames(names(objects), names(objects)),
                                              function(name) call_of(probe, name)))
      medians <- medians_in_turn(calls, reps)
      for (name in names(calls)) {
        out[[length(out) + 1L]] <- data.frame(case = paste(probe, "time, warm, side by side"),
                                              system = name, value = medians[[name]],
                                              stringsAsFactors = FALSE)
      }
    }
    list(rows = do.call(rbind, out), not_vectors = skipped)
  }, list(tokens = tokens, probes = side_by_side_probes, reps = max(ctx$reps, 3L),
         floor_library = floor_library))
  for (i in seq_len(nrow(rows$rows))) {
    ctx$record("warm_side_by_side", rows$rows$case[i], rows$rows$system[i], size,
               rows$rows$value[i], "ms")
  }
  for (name in rows$not_vectors) {
    ctx$record("warm_side_by_side", "range(x) time, warm, side by side", name, size, NA,
               "not a vector")
  }
  invisible()
}
