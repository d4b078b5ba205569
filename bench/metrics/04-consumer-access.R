# What a consumer pays to use a big shared double vector: element access and
# one write on a 2 GB vector (ctx$big), reads through a writable pointer
# (range, ==, identical), a gather at 10 million random positions (x[idx],
# fewer in quick mode) and a full scan (sum) on a ctx$scan_size vector;
# time and growth of its own memory (Anonymous), against an ordinary
# in-memory vector in the same kind of process.
element_probes <- c("x[5]", "x[[7]]", "x[1:10]", "x[1] <- 0")
scan_probes <- c("range(x)", "x == 5", "identical(x, y)", "x[idx]", "sum(x)")
# Probes whose first call is short enough to be noise-bound in one sample:
# each runs ctx$reps times on fresh maps (fresh shares where the system
# needs them), the systems taking turns, and the medians are recorded. The
# long first calls (whole-vector reads of seconds) are taken once.
repeated_probes <- c(element_probes, "sum(x)")

run <- function(ctx) {
  # Each plan: a vector size and the probes run on it.
  plans <- if (ctx$big == ctx$scan_size) {
    list(list(size = ctx$big, probes = c(element_probes, scan_probes)))
  } else {
    list(list(size = ctx$big, probes = element_probes),
         list(size = ctx$scan_size, probes = scan_probes))
  }
  # One consumer per system, and one for the ordinary vector, for the whole
  # run: each has loaded its package once.
  takers <- c(lapply(ctx$usable("consumer_access"), function(s) system_taker(ctx, s)),
              list(ordinary_taker(ctx)))
  names(takers) <- vapply(takers, function(taker) taker$name, "")
  on.exit(for (taker in takers) taker$worker$close())
  for (plan in plans) {
    fitting <- Filter(function(taker) fits_plan(ctx, taker, plan$size), takers)
    rows <- lapply(fitting, function(taker) list())
    # The probes taken once (first calls of seconds): one system after another.
    once <- setdiff(plan$probes, repeated_probes)
    for (taker in fitting) {
      for (group in probe_groups(once, taker$fresh_per_probe)) {
        rows[[taker$name]] <- c(rows[[taker$name]], list(taker$round(plan$size, group)))
      }
    }
    # The repeated probes (first calls of microseconds, which the machine's
    # drift moves as much as the systems differ): round after round, every
    # system once in each, in a random order, so that each system's median
    # comes from the same moments as its peers'.
    repeated <- intersect(plan$probes, repeated_probes)
    for (round in seq_len(if (length(repeated)) ctx$reps else 0L)) {
      for (name in sample(names(fitting))) {
        taker <- fitting[[name]]
        for (group in probe_groups(repeated, taker$fresh_per_probe)) {
          rows[[name]] <- c(rows[[name]], list(taker$round(plan$size, group)))
        }
      }
    }
    for (name in names(fitting)) record_rows(ctx, median_rows(rows[[name]]), name, plan$size)
  }
  ctx$drop_vector()
}

# The groups of probes to run, each on a fresh share: all of them at once,
# or one probe per group with `fresh_per_probe`.
probe_groups <- function(probes, fresh_per_probe) {
  if (!length(probes)) list() else if (fresh_per_probe) as.list(probes) else list(probes)
}

# One row per metric, case and unit: the median of the values of the
# rounds (a value of NA, such as an error, stays NA).
median_rows <- function(rows) {
  all <- do.call(rbind, rows)
  keys <- unique(all[c("metric", "case", "unit")])
  keys$value <- vapply(seq_len(nrow(keys)), function(i) {
    same <- all$metric == keys$metric[i] & all$case == keys$case[i] & all$unit == keys$unit[i]
    median(all$value[same])
  }, 0)
  keys
}

# A system's consumer process and how it runs one group of probes: each
# group on a new share, released afterwards. A new share per probe for a
# token that can be mapped once only (bettermc), and for a system whose
# second map of a token is the first one again (memshare): each probe's
# first call is then on a fresh mapping.
system_taker <- function(ctx, s) {
  worker <- consumer(s$name)
  list(name = s$name, worker = worker, system = s,
       fresh_per_probe = is.finite(s$max_maps) || s$maps_reused,
       round = function(size, group) {
         handle <- s$share(ctx$vector(size))
         tryCatch(measure_consumer(worker, s$name, s$token(handle), group, ctx$reps),
                  finally = {
                    s$release(handle)
                    rm(handle)
                    invisible(gc())
                  })
       })
}

# The ordinary in-memory vector, made in its own consumer for each group.
ordinary_taker <- function(ctx) {
  worker <- consumer("ordinary")
  list(name = "ordinary", worker = worker, system = NULL, fresh_per_probe = FALSE,
       round = function(size, group) measure_consumer(worker, NULL, size, group, ctx$reps))
}

# At its peak a system's plan holds the creator's vector, its shared copy
# and a private copy in the consumer (mori copies the vector on first
# access); a system that does not fit is recorded as skipped.
fits_plan <- function(ctx, taker, size) {
  if (is.null(taker$system) || ctx$fits(3 * size)) return(TRUE)
  ctx$record("consumer_access", "skipped", taker$name, size, NA,
             ctx$skip_reason(3 * size, "the vector, its shared copy and a consumer's copy"))
  FALSE
}

record_rows <- function(ctx, rows, system, size) {
  for (i in seq_len(nrow(rows))) {
    ctx$record(rows$metric[i], rows$case[i], system, size, rows$value[i], rows$unit[i])
  }
}

# The probes in a consumer process (`worker`): name NULL means an ordinary
# vector of `token` bytes. Each probe maps the vector afresh and drops it.
measure_consumer <- function(worker, name, token, probes, reps) {
  worker$run(function(name, token, probes, reps) {
    s <- if (is.null(name)) NULL else systems[[name]]
    fresh <- function() {
      # The ordinary baseline: a plain vector, quick to make at 2 GB.
      if (is.null(s)) seq_len(token / 8) + 0.5 else s$map(token)
    }
    # Warm repeats: a few suffice, and range() is slow for ALTREP vectors.
    warm_reps <- min(reps, 3L)
    read <- compiler::cmpfun(if (is.null(s)) function(obj, i) obj[i] else read_of(s))
    out <- list()
    add <- function(metric, case, value, unit) {
      out[[length(out) + 1L]] <<- data.frame(metric = metric, case = case, value = value,
                                             unit = unit, stringsAsFactors = FALSE)
    }
    # Warm times of f(obj, extra), recorded as `case`; with `alongside`, when
    # obj is a shared vector, alternating with f on an ordinary copy of it
    # made here (and `prepare_plain` of that copy), so that their ratio is
    # taken in the same process at the same moment: the shared machine's
    # speed drifts.
    warm <- function(metric, case, f, obj, extra, alongside = FALSE,
                     prepare_plain = function(plain) NULL) {
      plain <- if (alongside && !is.null(s) && is.numeric(obj)) obj + 0 else NULL
      plain_extra <- if (is.null(plain)) NULL else prepare_plain(plain)
      times <- vapply(seq_len(warm_reps), function(i) {
        c(shared = seconds(function() f(obj, extra)),
          plain = if (is.null(plain)) NA else seconds(function() f(plain, plain_extra)))
      }, c(shared = 0, plain = 0))
      add(metric, case, median(times["shared", ]) * 1e3, "ms")
      if (!is.null(plain)) {
        add(metric, paste0(case, ", ordinary copy alongside"), median(times["plain", ]) * 1e3, "ms")
      }
    }
    # Time and memory growth of f(obj) on a freshly mapped object, first call,
    # then warm. `prepare(obj)` builds what f needs besides obj, untimed.
    probe <- function(metric, case, f, vector_only = FALSE, prepare = function(obj) NULL,
                      alongside = FALSE, prepare_plain = function(plain) NULL) {
      if (!(case %in% probes)) return(invisible())
      if (case == "identical(x, y)" && !is.null(s) && is.finite(s$max_maps)) {
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
        add(metric, paste(case, "time"), NA, paste("error:", conditionMessage(t)))
        return(invisible())
      }
      add(metric, paste(case, "time"), t * 1e3, "ms")
      add(metric, paste(case, "memory growth"), (anonymous_bytes() - before) / 2^20, "MB")
      warm(metric, paste(case, "time, warm"), f, obj, extra, alongside, prepare_plain)
      rm(obj, extra)
      invisible(gc())
    }
    # The values are used (summed), so a system whose x[i] returns a lazy
    # view (shard) is timed reading them too, as any use of them would.
    probe("element_access", "x[5]", function(obj, extra) sum(read(obj, 5)))
    probe("element_access", "x[[7]]", function(obj, extra) {
      if (is.numeric(obj)) obj[[7]] else read(obj, 7)
    })
    probe("element_access", "x[1:10]", function(obj, extra) sum(read(obj, 1:10)))
    probe("writable_pointer_read", "range(x)", function(obj, extra) range(obj), vector_only = TRUE,
          alongside = TRUE)
    probe("writable_pointer_read", "x == 5", function(obj, extra) obj == 5, vector_only = TRUE,
          alongside = TRUE)
    # y: a second map of the same share, or a copy of an ordinary vector.
    probe("writable_pointer_read", "identical(x, y)", function(obj, y) identical(obj, y),
          vector_only = TRUE, alongside = TRUE,
          prepare = function(obj) if (is.null(s)) obj + 0 else s$map(token),
          prepare_plain = function(plain) plain + 0)
    # The same random positions for the shared vector and its ordinary copy.
    probe("subset", "x[idx]", function(obj, idx) read(obj, idx), prepare = random_positions,
          alongside = TRUE, prepare_plain = random_positions)
    # One write, on a variable referenced once (as at the top level), so R
    # modifies it in place; passing it to a function would force a copy.
    if ("x[1] <- 0" %in% probes) {
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
          # A system may refuse the write (shard denies it): a result too.
          add("one_write", "x[1] <- 0 time", NA, paste("error:", failed))
        }
      } else {
        add("one_write", "x[1] <- 0", NA, "not a vector")
      }
      rm(obj)
    }
    if ("sum(x)" %in% probes) {
      obj <- fresh()
      total <- if (is.null(s)) sum else sum_of(s)
      invisible(gc())
      first <- seconds(function() total(obj))
      add("full_scan", "sum(x) first touch", first * 1e3, "ms")
      warm("full_scan", "sum(x) warm", function(v, extra) total(v), obj, NULL, alongside = TRUE)
      rm(obj)
    }
    # Every mapped object is dropped: give back what the maps took, as the
    # process lives on (memshare frees nothing until then).
    invisible(gc())
    if (!is.null(s)) s$unmap(token, NULL)
    do.call(rbind, out)
  }, list(name = name, token = token, probes = probes, reps = reps))
}
