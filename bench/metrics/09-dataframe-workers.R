# A data frame sent to 2 workers that bootstrap a column mean: time and each
# worker's private memory growth, sending it plainly, sharing it with shmr,
# and with each other system that shares data frames.
run <- function(ctx) {
  rows <- if (ctx$quick) 1e6 else 5e6
  df <- data.frame(x = rnorm(rows), y = runif(rows), z = rnorm(rows), w = runif(rows),
                   g = sample.int(100L, rows, TRUE))
  size <- as.numeric(object.size(df))
  boot <- function(i, d) {
    set.seed(i)
    mean(d$x[sample.int(nrow(d), nrow(d), replace = TRUE)])
  }
  runs <- list(
    "plain (clusterExport)" = function(cl) {
      parallel::clusterExport(cl, "df", envir = environment())
      parallel::parLapply(cl, 1:4, function(i) boot(i, df))
    },
    "shmr" = function(cl) {
      shared <- share(df)
      on.exit(close(shared))
      parallel::parLapply(cl, 1:4, function(i, d) boot(i, d), d = shared)
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
        parallel::parLapply(cl, 1:4, function(i, name, token, file) {
          source(file)
          boot(i, systems[[name]]$map(token))
        }, name = adapter$name, token = token, file = systems_file)
      }
    })
  }
  for (label in names(runs)) {
    cl <- parallel::makePSOCKcluster(2)
    parallel::clusterEvalQ(cl, suppressPackageStartupMessages(library(shmr)))
    environment(boot) <- globalenv()
    parallel::clusterExport(cl, "boot", envir = environment())
    pids <- unlist(parallel::clusterCall(cl, Sys.getpid))
    parallel::clusterCall(cl, gc)
    before <- vapply(pids, anonymous_bytes, 0)
    t <- seconds(function() runs[[label]](cl))
    growth <- vapply(pids, anonymous_bytes, 0) - before
    parallel::stopCluster(cl)
    ctx$record("dataframe_workers", "time", label, size, t, "s")
    ctx$record("dataframe_workers", "private memory growth per worker", label, size,
               mean(growth) / 2^20, "MB")
  }
}
