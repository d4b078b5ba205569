# shmr demo: send a large data frame and a large matrix to two worker
# processes, first by copying them (parallel::clusterExport), then through
# shared memory (shmr::share), and compare time and the workers' memory.
#
#   Rscript inst/examples/share-with-workers.R [rows]
#
# Worker memory is the growth of "Anonymous" in /proc/<pid>/smaps_rollup:
# pages that belong to that process alone (its R heap, and pages it copied).
# Shared pages the worker only reads are not counted there, because they are
# the one physical copy every process uses.
suppressPackageStartupMessages({
  library(parallel)
  library(shmr)
})

args <- commandArgs(trailingOnly = TRUE)
rows <- if (length(args) >= 1) as.numeric(args[1]) else 5e6
workers <- 2L

mb <- function(bytes) sprintf("%8.1f MB", bytes / 2^20)
secs <- function(t) sprintf("%7.3f s", t)
anonymous <- function(pid) shmr:::process_memory(pid)[["anonymous"]]

set.seed(42)
df <- data.frame(
  id = seq_len(rows), x = rnorm(rows), y = runif(rows),
  group = factor(sample(c("a", "b", "c", "d"), rows, replace = TRUE)),
  z = rnorm(rows)
)
m <- matrix(rnorm(rows * 10), ncol = 10)
data_bytes <- as.numeric(object.size(df)) + as.numeric(object.size(m))
cat(sprintf("data: a data frame (%s rows) and a %s x 10 matrix, %s in all; %d workers\n\n",
            format(rows, big.mark = ",", scientific = FALSE), format(rows, big.mark = ",", scientific = FALSE), trimws(mb(data_bytes)),
            workers))

# The work each worker does: a bootstrap of a column mean and the matrix's
# column means. It reads all of the data.
work <- function(i) {
  set.seed(i)
  boot <- mean(df$x[sample.int(nrow(df), 1e5, replace = TRUE)])
  c(boot = boot, colmeans = sum(colMeans(m)))
}

run <- function(label, send) {
  cl <- makePSOCKcluster(workers)
  on.exit(stopCluster(cl))
  clusterEvalQ(cl, suppressPackageStartupMessages(library(shmr)))
  pids <- unlist(clusterCall(cl, Sys.getpid))
  clusterCall(cl, gc)
  before <- vapply(pids, anonymous, 0)
  t_send <- system.time(send(cl))[["elapsed"]]
  clusterExport(cl, "work", envir = environment())
  t_work <- system.time(res <- parLapply(cl, seq_len(workers), function(i) work(i)))[["elapsed"]]
  growth <- vapply(pids, anonymous, 0) - before
  list(label = label, send = t_send, work = t_work, growth = growth, result = res)
}

copy_run <- run("copy (clusterExport)", function(cl) {
  clusterExport(cl, c("df", "m"), envir = globalenv())
})

t_share <- system.time({
  shared_df <- share(df)
  shared_m <- share(m)
})[["elapsed"]]
share_run <- run("shmr (share once)", function(cl) {
  clusterCall(cl, function(df, m) {
    assign("df", df, globalenv())
    assign("m", m, globalenv())
    NULL
  }, shared_df, shared_m)
})

stopifnot(isTRUE(all.equal(copy_run$result, share_run$result)))
sent <- length(serialize(list(shared_df, shared_m), NULL))

cat(sprintf("%-22s %12s %12s %12s   %s\n", "", "prepare", "send", "work", "worker memory growth"))
for (r in list(copy_run, share_run)) {
  prep <- if (identical(r, share_run)) secs(t_share) else secs(0)
  cat(sprintf("%-22s %12s %12s %12s   %s\n", r$label, prep, secs(r$send), secs(r$work),
              paste(mb(r$growth), collapse = " ")))
}
cat(sprintf("\nbytes sent per worker: copy %s, shmr %s bytes (the region names)\n",
            trimws(mb(as.numeric(object.size(df)) + as.numeric(object.size(m)))), sent))
cat(sprintf("memory saved across %d workers: %s\n", workers,
            trimws(mb(sum(copy_run$growth) - sum(share_run$growth)))))
cat("results are identical in both runs\n")
