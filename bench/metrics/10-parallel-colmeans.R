# Column means of a large double matrix with 2 workers: shmr's pool_apply
# against parLapply + clusterExport, mclapply (fork) and mirai_map with the
# matrix in .args; time and each worker's private memory growth. mirai_map
# sends .args with every task, so it gets one chunk of columns per worker,
# as a careful user would write it.
#
# Task functions are given the global environment: a closure travels to a
# PSOCK or mirai worker with its enclosing environment, and this one holds
# the matrix, which would then be sent along with every task.
run <- function(ctx) {
  res <- NULL # filled by the timed closures below
  cols <- 64L
  m <- matrix(runif(ctx$big / 8), ncol = cols)
  invisible(gc())
  size <- as.numeric(object.size(m))
  expected <- colMeans(m)
  growth_of <- function(pids, before) mean(vapply(pids, anonymous_bytes, 0) - before) / 2^20
  record <- function(system, t, growth, ok) {
    ctx$record("parallel_colmeans", "time", system, size, t, "s")
    ctx$record("parallel_colmeans", "private memory growth per worker", system, size, growth, "MB")
    if (!ok) ctx$record("parallel_colmeans", "wrong result", system, size, NA, "")
  }

  # shmr and mclapply, the two that need no copy per worker, are timed
  # alternately, `reps` times each, so that both see the same machine
  # (issue #16 item 8 compares them). pool_apply() shares the ordinary
  # matrix for the call and releases it afterwards, so every repeat of it
  # includes writing the matrix into shared memory; the matrix shared
  # beforehand (a user who shares it once for several maps) is timed too.
  reps <- 3L
  chunks <- split(seq_len(cols), rep(1:2, length.out = cols))
  pool <- pool_create(2)
  invisible(pool_sapply(1:2, function(i) i))
  shared_m <- share(m)
  times <- matrix(NA_real_, reps, 3, dimnames = list(NULL, c("shmr", "shared", "fork")))
  ok <- c(shmr = TRUE, shared = TRUE, fork = TRUE)
  growth <- c(shmr = NA_real_, fork = NA_real_)
  for (i in seq_len(reps)) {
    before <- pool_status(pool)$anonymous
    times[i, "shmr"] <- seconds(function() res <<- pool_apply(m, 2, mean, pool = pool))
    if (i == 1L) growth[["shmr"]] <- mean(pool_status(pool)$anonymous - before) / 2^20
    ok[["shmr"]] <- ok[["shmr"]] && isTRUE(all.equal(res, expected))
    res <- NULL
    times[i, "shared"] <- seconds(function() res <<- pool_apply(shared_m, 2, mean, pool = pool))
    ok[["shared"]] <- ok[["shared"]] && isTRUE(all.equal(res, expected))
    res <- NULL
    # A forked worker starts sharing all of the parent's memory, which its
    # Anonymous counts: its growth is that of Private_Dirty (pages it wrote,
    # including those R's garbage collector copies on write), read by each
    # worker over its chunk of columns, after a gc().
    times[i, "fork"] <- seconds(function() {
      res <<- parallel::mclapply(chunks, function(js) {
        before <- private_dirty_bytes()
        means <- vapply(js, function(j) mean(m[, j]), 0)
        invisible(gc())
        list(means = means, growth = private_dirty_bytes() - before)
      }, mc.cores = 2)
    })
    means <- unname(unlist(lapply(res, `[[`, "means"))[order(unlist(chunks))])
    if (i == 1L) growth[["fork"]] <- mean(vapply(res, `[[`, 0, "growth")) / 2^20
    ok[["fork"]] <- ok[["fork"]] && isTRUE(all.equal(means, expected))
    res <- NULL
  }
  pool_stop(pool)
  close(shared_m)
  rm(shared_m)
  invisible(gc())
  record("shmr pool_apply", median(times[, "shmr"]), growth[["shmr"]], ok[["shmr"]])
  ctx$record("parallel_colmeans", "time, matrix shared beforehand", "shmr pool_apply", size,
             median(times[, "shared"]), "s")
  if (!ok[["shared"]]) ctx$record("parallel_colmeans", "wrong result, matrix shared beforehand",
                                  "shmr pool_apply", size, NA, "")
  record("mclapply (fork)", median(times[, "fork"]), growth[["fork"]], ok[["fork"]])

  cl <- parallel::makePSOCKcluster(2)
  pids <- unlist(parallel::clusterCall(cl, Sys.getpid))
  before <- vapply(pids, anonymous_bytes, 0)
  column_mean <- function(j) mean(m[, j])
  environment(column_mean) <- globalenv()
  t <- seconds(function() {
    parallel::clusterExport(cl, "m", envir = environment())
    res <<- unlist(parallel::parLapply(cl, seq_len(cols), column_mean))
  })
  record("parLapply + clusterExport", t, growth_of(pids, before), isTRUE(all.equal(res, expected)))
  parallel::stopCluster(cl)

  # mirai serializes .args into every task: at its peak a run holds 7
  # copies of the matrix (measured at 512 MB): the caller's, one serialized
  # per task, and two in each daemon (the message and the matrix).
  needed <- 7 * size
  if (!ctx$fits(needed)) {
    ctx$record("parallel_colmeans", "skipped", "mirai_map (.args)", size, NA,
               ctx$skip_reason(needed, "7 copies of the matrix"))
  } else if (requireNamespace("mirai", quietly = TRUE)) {
    mirai::daemons(2)
    pid_after_nap <- function(i) {
      Sys.sleep(0.05)
      Sys.getpid()
    }
    environment(pid_after_nap) <- globalenv()
    pids <- unique(unlist(mirai::mirai_map(1:8, pid_after_nap)[]))
    before <- vapply(pids, anonymous_bytes, 0)
    chunk_means <- function(js, m) colMeans(m[, js, drop = FALSE])
    environment(chunk_means) <- globalenv()
    t <- seconds(function() {
      res <<- unname(unlist(mirai::mirai_map(chunks, chunk_means, .args = list(m = m))[])[
        order(unlist(chunks))])
    })
    record("mirai_map (.args)", t, growth_of(pids, before), isTRUE(all.equal(res, expected)))
    mirai::daemons(0)
  } else {
    ctx$record("parallel_colmeans", "skipped", "mirai_map (.args)", size, NA, "mirai not installed")
  }
}
