# A 200 MB data frame sent to 2 simulated hosts x 2 mirai daemons: time,
# bytes that reach each host, and each worker's private memory growth, for
# shmr (remote mode: one copy per host, fetched from the owner's region
# server) against mirai sending the data frame by value, through a task's
# `.args` (mirai_map(), one task per worker) and through everywhere().
#
# The hosts are simulated as in the tests (tests/testthat/helper-hosts.R:
# processes in their own mount, UTS, IPC and PID namespaces with a private
# tmpfs on /dev/shm; the owner's daemons' URL on 127.0.0.2; loopback only),
# which needs root and unshare: without them the metric records why it was
# skipped. Each worker reads its own private memory (Anonymous) after a gc()
# while it holds the data, against its reading before the run.
run <- function(ctx) {
  metric <- "several_hosts"
  source("tests/testthat/helper-hosts.R", local = TRUE)
  reason <- sim_hosts_unavailable()
  if (!is.null(reason)) {
    ctx$record(metric, "skipped", "all", NA, NA, reason)
    return(invisible())
  }
  rows <- if (ctx$quick) 2e6 else 12.5e6
  df <- data.frame(x = rnorm(rows), y = runif(rows))
  size <- as.numeric(object.size(df))
  # By value: every task's copy in the owner's send buffers and in a worker.
  if (!ctx$fits(10 * size)) {
    ctx$record(metric, "skipped", "all", size, NA, ctx$skip_reason(10 * size, "10 copies"))
    return(invisible())
  }
  cluster <- sim_cluster(c("simB", "simC"), per_host = 2L, local = 0L, envir = environment())
  hosts <- vapply(cluster$hosts, `[[`, "", "name")
  old <- options(shmr.remote = TRUE, shmr.remote_url = sprintf("tcp://%s:0", sim_owner_address))
  on.exit(options(old), add = TRUE)
  on.exit(stop_region_server_quietly(), add = TRUE)
  payload <- length(serialize(df, NULL))

  work <- function(i, d) {
    value <- sum(d$x)
    invisible(gc())
    list(host = Sys.info()[["nodename"]], pid = Sys.getpid(), value = value,
         growth = shmr:::process_memory()[["anonymous"]] - as.numeric(Sys.getenv("SHMR_BENCH_BASE")))
  }
  environment(work) <- globalenv()
  mark <- function() {
    invisible(sim_on_each(cluster, function() {
      invisible(gc())
      Sys.setenv(SHMR_BENCH_BASE = shmr:::process_memory()[["anonymous"]])
    }))
  }
  via <- list(
    ".args" = function(d) mirai::mirai_map(1:4, work, .args = list(d = d), .compute = cluster$profile)[],
    "everywhere" = function(d) {
      calls <- mirai::everywhere(work(0L, d), .args = list(work = work, d = d),
                                 .compute = cluster$profile)
      mirai::collect_mirai(calls)
    }
  )
  expected <- sum(df$x)
  # Once through each route with a small object first: a worker's first
  # task loads code (and a fetcher nanonext), whatever the object's size.
  small <- share(data.frame(x = rnorm(1e4), y = runif(1e4)))
  mark()
  for (route in names(via)) invisible(via[[route]](small))
  invisible(via[[".args"]](fetch(small)))
  close(small)
  # Per route, ctx$reps rounds, shmr and mirai by value once in each in a
  # random order (the machine drifts); every figure is the median over the
  # rounds.
  runs <- list(
    shmr = function(route) {
      # A fresh region each time, so each run includes its fetches.
      shared <- share(df)
      on.exit(close(shared))
      invisible(serialize(shared, NULL))  # the region server is up before timing
      served_before <- remote_status()$served
      mark()
      t <- system.time(out <- via[[route]](shared))[["elapsed"]]
      list(t = t, out = out,
           bytes = served_per_host(served_before, remote_status()$served, hosts))
    },
    # The data frame itself in every task's message.
    "mirai by value" = function(route) {
      mark()
      t <- system.time(out <- via[[route]](df))[["elapsed"]]
      got <- vapply(out, `[[`, "", "host")
      list(t = t, out = out, bytes = vapply(hosts, function(h) sum(got == h) * payload, 0))
    }
  )
  for (route in names(via)) {
    done <- lapply(runs, function(r) list())
    for (round in seq_len(ctx$reps)) {
      for (system in sample(names(runs))) {
        done[[system]][[round]] <- runs[[system]](route)
      }
    }
    for (system in names(runs)) {
      record_route(ctx, metric, system, route, size, done[[system]], expected)
    }
  }
}

stop_region_server_quietly <- function() try(shmr:::stop_region_server(), silent = TRUE)

served_per_host <- function(before, after, hosts) {
  total <- function(s, h) sum(s$bytes[startsWith(s$host, paste0(h, ":"))])
  vapply(hosts, function(h) total(after, h) - total(before, h), 0)
}

# Rows of metric "several_hosts" (bench/README.md): system "shmr" or the
# baseline, each case naming the route; `runs` are the rounds' list(t, out,
# bytes), and each figure is the median of the rounds' figures.
record_route <- function(ctx, metric, system, route, size, runs, expected) {
  case <- function(what) sprintf("%s (%s)", what, route)
  over_runs <- function(f) median(vapply(runs, f, 0))
  growth_of <- function(run) vapply(run$out, function(o) if (is.list(o)) o$growth else NA_real_, 0)
  ctx$record(metric, case("time, s"), system, size, over_runs(function(run) run$t), "s")
  ctx$record(metric, case("bytes per host"), system, size,
             over_runs(function(run) mean(run$bytes)) / 2^20, "MB")
  ctx$record(metric, case("private memory growth per worker"), system, size,
             over_runs(function(run) mean(growth_of(run))) / 2^20, "MB")
  ctx$record(metric, case("private memory growth, largest worker"), system, size,
             over_runs(function(run) max(growth_of(run))) / 2^20, "MB")
  right <- vapply(runs, function(run) {
    values <- vapply(run$out, function(o) if (is.list(o)) o$value else NA_real_, 0)
    isTRUE(all.equal(values, rep(expected, length(values))))
  }, TRUE)
  if (!all(right)) ctx$record(metric, case("wrong result"), system, size, NA, "")
}
