# What a consumer pays to use a big shared double vector: element access,
# reads through a writable pointer (range, ==, identical), one write, and a
# full scan; time and growth of its own memory (Anonymous), against an
# ordinary in-memory vector in the same kind of process.
run <- function(ctx) {
  size <- ctx$big
  for (s in ctx$usable("consumer_access")) {
    if (is.finite(s$max_maps)) {
      # One map per share (bettermc): a new share for every probe.
      rows <- do.call(rbind, lapply(probe_names, function(probe) {
        handle <- s$share(runif(size / 8))
        on.exit({
          s$release(handle)
          invisible(gc())
        })
        measure_consumer(s$name, s$token(handle), ctx$reps, only = probe)
      }))
    } else {
      handle <- s$share(runif(size / 8))
      rows <- measure_consumer(s$name, s$token(handle), ctx$reps)
      s$release(handle)
      rm(handle)
      invisible(gc())
    }
    record_rows(ctx, rows, s$name, size)
  }
  record_rows(ctx, measure_consumer(NULL, size, ctx$reps), "ordinary", size)
}

probe_names <- c("x[5]", "x[[7]]", "x[1:10]", "range(x)", "x == 5", "identical(x, y)",
                 "x[1] <- 0", "sum(x)")

record_rows <- function(ctx, rows, system, size) {
  for (i in seq_len(nrow(rows))) {
    ctx$record(rows$metric[i], rows$case[i], system, size, rows$value[i], rows$unit[i])
  }
}

# In a fresh consumer: name NULL means an ordinary vector of `token` bytes.
# `only`: run just that probe (for tokens that can be mapped once).
measure_consumer <- function(name, token, reps, only = NULL) {
  worker <- consumer()
  on.exit(worker$close())
  worker$run(function(name, token, reps, only) {
    wanted <- function(probe) is.null(only) || identical(only, probe)
    s <- if (is.null(name)) NULL else systems[[name]]
    fresh <- function() {
      # The ordinary baseline: a plain vector, quick to make at 2 GB.
      if (is.null(s)) seq_len(token / 8) + 0.5 else s$map(token)
    }
    # Warm repeats: a few suffice, and range() at 2 GB is slow for ALTREP.
    warm_reps <- min(reps, 3L)
    read <- compiler::cmpfun(if (is.null(s)) function(obj, i) obj[i] else read_of(s))
    out <- list()
    add <- function(metric, case, value, unit) {
      out[[length(out) + 1L]] <<- data.frame(metric = metric, case = case, value = value,
                                             unit = unit, stringsAsFactors = FALSE)
    }
    # Time and memory growth of f(obj) on a freshly mapped object, first call.
    # `prepare(obj)` builds what f needs besides obj, outside the timing.
    probe <- function(metric, case, f, vector_only = FALSE, prepare = function(obj) NULL) {
      if (!wanted(case)) return(invisible())
      if (case == "identical(x, y)" && is.finite(if (is.null(s)) Inf else s$max_maps)) {
        add(metric, paste(case, "time"), NA, "needs two maps of one share")
        return(invisible())
      }
      obj <- fresh()
      if (vector_only && !is.numeric(obj)) {
        add(metric, case, NA, "not a vector")
        return(invisible())
      }
      extra <- prepare(obj)
      # Compiled up front, so the first call's time is not R's JIT compiling it.
      f <- compiler::cmpfun(f)
      invisible(gc())
      before <- anonymous_bytes()
      t <- tryCatch(seconds(function() f(obj, extra)), error = function(e) e)
      if (inherits(t, "error")) {
        # A system may refuse an operation (shard denies writes): a result too.
        add(metric, paste(case, "time"), NA, paste("error:", conditionMessage(t)))
        return(invisible())
      }
      add(metric, paste(case, "time"), t * 1e3, "ms")
      add(metric, paste(case, "memory growth"), (anonymous_bytes() - before) / 2^20, "MB")
      # Again on the same object: pages already touched.
      warm <- median(vapply(seq_len(warm_reps), function(i) seconds(function() f(obj, extra)), 0))
      add(metric, paste(case, "time, warm"), warm * 1e3, "ms")
      rm(obj, extra)
      invisible(gc())
    }
    probe("element_access", "x[5]", function(obj, extra) read(obj, 5))
    probe("element_access", "x[[7]]", function(obj, extra) {
      if (is.numeric(obj)) obj[[7]] else read(obj, 7)
    })
    probe("element_access", "x[1:10]", function(obj, extra) read(obj, 1:10))
    probe("writable_pointer_read", "range(x)", function(obj, extra) range(obj), vector_only = TRUE)
    probe("writable_pointer_read", "x == 5", function(obj, extra) obj == 5, vector_only = TRUE)
    probe("writable_pointer_read", "identical(x, y)", function(obj, y) identical(obj, y),
          vector_only = TRUE,
          prepare = function(obj) if (is.null(s)) obj + 0 else s$map(token))
    # One write, on a variable referenced once (as at the top level), so R
    # modifies it in place; passing it to a function would force a copy.
    if (wanted("x[1] <- 0")) {
    obj <- fresh()
    if (is.numeric(obj)) {
      invisible(gc())
      before <- anonymous_bytes()
      t0 <- Sys.time()
      failed <- tryCatch({
        obj[1] <- 0
        NULL
      }, error = function(e) conditionMessage(e))
      t <- as.numeric(Sys.time() - t0, units = "secs")
      if (is.null(failed)) {
        add("one_write", "x[1] <- 0 time", t * 1e3, "ms")
        add("one_write", "x[1] <- 0 memory growth", (anonymous_bytes() - before) / 2^20, "MB")
      } else {
        add("one_write", "x[1] <- 0 time", NA, paste("error:", failed))
      }
    } else {
      add("one_write", "x[1] <- 0", NA, "not a vector")
    }
    rm(obj)
    }
    if (wanted("sum(x)")) {
      obj <- fresh()
      total <- if (is.null(s)) sum else sum_of(s)
      invisible(gc())
      first <- seconds(function() total(obj))
      warm <- median(vapply(seq_len(warm_reps), function(i) seconds(function() total(obj)), 0))
      add("full_scan", "sum(x) first touch", first * 1e3, "ms")
      add("full_scan", "sum(x) warm", warm * 1e3, "ms")
    }
    do.call(rbind, out)
  }, list(name = name, token = token, reps = reps, only = only))
}
