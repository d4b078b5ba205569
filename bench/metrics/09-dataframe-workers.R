# A 200 MB data frame sent to 2 workers that bootstrap a column mean: time
# and each worker's private memory growth, sending it plainly, sharing it
# with shmr, and with each other system that shares data frames.
#
# Each task reads its worker's private memory (Anonymous) itself, at its
# end, after a gc() and while it still holds the data: what holding the data
# costs the worker, without the bootstrap's own garbage. The workers' malloc
# returns freed blocks to the system at once (a fixed mmap threshold), so
# that garbage does not linger as retained heap either; this holds for every
# system alike.
run <- function(ctx) {
  # 5.8 million rows of four doubles and an integer: 200 MB.
  rows <- if (ctx$quick) 1e6 else 5.8e6
  resamples <- 8L
  df <- data.frame(x = rnorm(rows), y = runif(rows), z = rnorm(rows), w = runif(rows),
                   g = sample.int(100L, rows, TRUE))
  size <- as.numeric(object.size(df))
  boot <- function(i, d) {
    set.seed(i)
    value <- mean(d$x[sample.int(nrow(d), nrow(d), replace = TRUE)])
    invisible(gc())
    c(value = value, pid = Sys.getpid(), anonymous = anonymous_bytes())
  }
  # What runs on the workers gets the global environment: a closure travels
  # to a worker with its enclosing environment, and this one holds `df`.
  on_worker <- function(f) {
    environment(f) <- globalenv()
    f
  }
  runs <- list(
    "plain (clusterExport)" = function(cl) {
      parallel::clusterExport(cl, "df", envir = environment())
      parallel::parLapply(cl, seq_len(resamples), on_worker(function(i) boot(i, df)))
    },
    "shmr" = function(cl) {
      shared <- share(df)
      on.exit(close(shared))
      parallel::parLapply(cl, seq_len(resamples), on_worker(function(i, d) boot(i, d)), d = shared)
    }
  )
  # Each other system that shares data frames: workers map its token.
  systems_file <- Sys.getenv("SHMR_BENCH_SYSTEMS")
  for (s in ctx$usable("dataframe_workers", kind = "data.frame")) {
    if (s$name == "shmr") next
    local({
      adapter <- s
      runs[[adapter$name]] <<- function(cl) {
        handle <- adapter$share(df)
        on.exit(adapter$release(handle))
        token <- adapter$token(handle)
        parallel::clusterCall(cl, on_worker(function(file) source(file)), systems_file)
        parallel::parLapply(cl, seq_len(resamples), on_worker(function(i, name, token) {
          boot(i, systems[[name]]$map(token))
        }), name = adapter$name, token = token)
      }
    })
  }
  expected <- vapply(seq_len(resamples), function(i) boot(i, df)[["value"]], 0)
  old <- Sys.getenv("MALLOC_MMAP_THRESHOLD_", NA)
  Sys.setenv(MALLOC_MMAP_THRESHOLD_ = "131072")
  on.exit(if (is.na(old)) Sys.unsetenv("MALLOC_MMAP_THRESHOLD_") else
    Sys.setenv(MALLOC_MMAP_THRESHOLD_ = old))
  for (label in names(runs)) measure_run(ctx, label, runs[[label]], boot, size, expected)
}

# One way of sending the data frame, on a fresh 2-worker cluster.
measure_run <- function(ctx, label, send, boot, size, expected) {
  cl <- parallel::makePSOCKcluster(2)
  on.exit(parallel::stopCluster(cl))
  parallel::clusterEvalQ(cl, suppressPackageStartupMessages(library(shmr)))
  environment(boot) <- globalenv()
  parallel::clusterExport(cl, c("boot", "anonymous_bytes", "smaps_bytes"), envir = environment())
  baseline <- function() {
    invisible(gc())
    stats::setNames(anonymous_bytes(), Sys.getpid())
  }
  environment(baseline) <- globalenv()
  before <- unlist(parallel::clusterCall(cl, baseline))
  t0 <- Sys.time()
  out <- do.call(rbind, send(cl))
  t <- as.numeric(Sys.time() - t0, units = "secs")
  pids <- as.character(out[, "pid"])
  growth <- tapply(out[, "anonymous"] - before[pids], pids, max)
  ctx$record("dataframe_workers", "time", label, size, t, "s")
  ctx$record("dataframe_workers", "private memory growth per worker", label, size,
             mean(growth) / 2^20, "MB")
  if (!isTRUE(all.equal(unname(out[, "value"]), expected))) {
    ctx$record("dataframe_workers", "wrong result", label, size, NA, "")
  }
}
