# What a consumer pays to use a big shared double vector: element access,
# reads through a writable pointer (range, ==, identical), one write, and a
# full scan; time and growth of its own memory (Anonymous), against an
# ordinary in-memory vector in the same kind of process.
run <- function(ctx) {
  size <- ctx$big
  for (s in ctx$usable("consumer_access")) {
    handle <- s$share(runif(size / 8))
    rows <- measure_consumer(s$name, s$token(handle), ctx$reps)
    s$release(handle)
    rm(handle)
    invisible(gc())
    record_rows(ctx, rows, s$name, size)
  }
  record_rows(ctx, measure_consumer(NULL, size, ctx$reps), "ordinary", size)
}

record_rows <- function(ctx, rows, system, size) {
  for (i in seq_len(nrow(rows))) {
    ctx$record(rows$metric[i], rows$case[i], system, size, rows$value[i], rows$unit[i])
  }
}

# In a fresh consumer: name NULL means an ordinary vector of `token` bytes.
measure_consumer <- function(name, token, reps) {
  worker <- consumer()
  on.exit(worker$close())
  worker$run(function(name, token, reps) {
    s <- if (is.null(name)) NULL else systems[[name]]
    fresh <- function() {
      if (is.null(s)) runif(token / 8) else s$map(token)
    }
    read <- if (is.null(s)) function(obj, i) obj[i] else read_of(s)
    out <- list()
    add <- function(metric, case, value, unit) {
      out[[length(out) + 1L]] <<- data.frame(metric = metric, case = case, value = value,
                                             unit = unit, stringsAsFactors = FALSE)
    }
    # Time and memory growth of f(obj) on a freshly mapped object, first call.
    # `prepare(obj)` builds what f needs besides obj, outside the timing.
    probe <- function(metric, case, f, vector_only = FALSE, prepare = function(obj) NULL) {
      obj <- fresh()
      if (vector_only && !is.numeric(obj)) {
        add(metric, case, NA, "not a vector")
        return(invisible())
      }
      extra <- prepare(obj)
      # R compiles a closure on its first calls: do that on a small vector.
      for (i in 1:3) f(as.numeric(1:16), if (is.null(extra)) NULL else as.numeric(1:16))
      invisible(gc())
      before <- anonymous_bytes()
      t <- seconds(function() f(obj, extra))
      add(metric, paste(case, "time"), t * 1e3, "ms")
      add(metric, paste(case, "memory growth"), (anonymous_bytes() - before) / 2^20, "MB")
      # Again on the same object: pages already touched.
      warm <- median(vapply(seq_len(reps), function(i) seconds(function() f(obj, extra)), 0))
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
    obj <- fresh()
    if (is.numeric(obj)) {
      invisible(gc())
      before <- anonymous_bytes()
      t0 <- Sys.time()
      obj[1] <- 0
      t <- as.numeric(Sys.time() - t0, units = "secs")
      add("one_write", "x[1] <- 0 time", t * 1e3, "ms")
      add("one_write", "x[1] <- 0 memory growth", (anonymous_bytes() - before) / 2^20, "MB")
    } else {
      add("one_write", "x[1] <- 0", NA, "not a vector")
    }
    rm(obj)
    obj <- fresh()
    total <- if (is.null(s)) sum else sum_of(s)
    invisible(gc())
    first <- seconds(function() total(obj))
    warm <- median(vapply(seq_len(reps), function(i) seconds(function() total(obj)), 0))
    add("full_scan", "sum(x) first touch", first * 1e3, "ms")
    add("full_scan", "sum(x) warm", warm * 1e3, "ms")
    do.call(rbind, out)
  }, list(name = name, token = token, reps = reps))
}
