# Column means of a large double matrix with 2 workers: shmr's pool_apply
# against parLapply + clusterExport, mclapply (fork) and mirai_map with the
# matrix in .args; time and each worker's private memory growth. mirai_map
# sends .args with every task, so it gets one chunk of columns per worker,
# as a careful user would write it.
run <- function(ctx) {
  res <- NULL # filled by the timed closures below
  cols <- 64L
  m <- matrix(runif(ctx$big / 8), ncol = cols)
  size <- as.numeric(object.size(m))
  expected <- colMeans(m)
  growth_of <- function(pids, before) mean(vapply(pids, anonymous_bytes, 0) - before) / 2^20
  record <- function(system, t, growth, ok) {
    ctx$record("parallel_colmeans", "time", system, size, t, "s")
    ctx$record("parallel_colmeans", "private memory growth per worker", system, size, growth, "MB")
    if (!ok) ctx$record("parallel_colmeans", "wrong result", system, size, NA, "")
  }

  pool <- pool_create(2)
  invisible(pool_sapply(1:2, function(i) i))
  before <- pool_status(pool)$anonymous
  t <- seconds(function() res <<- pool_apply(m, 2, mean))
  record("shmr pool_apply", t, mean(pool_status(pool)$anonymous - before) / 2^20,
         isTRUE(all.equal(res, expected)))
  pool_stop(pool)

  cl <- parallel::makePSOCKcluster(2)
  pids <- unlist(parallel::clusterCall(cl, Sys.getpid))
  before <- vapply(pids, anonymous_bytes, 0)
  t <- seconds(function() {
    parallel::clusterExport(cl, "m", envir = environment())
    res <<- unlist(parallel::parLapply(cl, seq_len(cols), function(j) mean(m[, j])))
  })
  record("parLapply + clusterExport", t, growth_of(pids, before), isTRUE(all.equal(res, expected)))
  parallel::stopCluster(cl)

  t <- seconds(function() {
    res <<- unlist(parallel::mclapply(seq_len(cols), function(j) mean(m[, j]), mc.cores = 2))
  })
  record("mclapply (fork)", t, NA, isTRUE(all.equal(res, expected)))

  # mirai serializes .args into every task: at 2 GB the caller grew to
  # 14.6 GB here (and was killed), with the daemons' copies on top; about
  # 12 copies of the matrix must fit.
  if (available_memory() < 12 * size) {
    ctx$record("parallel_colmeans", "skipped", "mirai_map (.args)", size, NA,
               sprintf("needs about %.0f GB of memory (12 copies of the matrix); %.0f GB available",
                       12 * size / 1e9, available_memory() / 1e9))
  } else if (requireNamespace("mirai", quietly = TRUE)) {
    mirai::daemons(2)
    pids <- unique(unlist(mirai::mirai_map(1:8, function(i) { Sys.sleep(0.05); Sys.getpid() })[]))
    before <- vapply(pids, anonymous_bytes, 0)
    t <- seconds(function() {
      chunks <- split(seq_len(cols), rep(1:2, length.out = cols))
      res <<- unname(unlist(mirai::mirai_map(chunks, function(js, m) colMeans(m[, js, drop = FALSE]),
                                             .args = list(m = m))[])[order(unlist(chunks))])
    })
    record("mirai_map (.args)", t, growth_of(pids, before), isTRUE(all.equal(res, expected)))
    mirai::daemons(0)
  } else {
    ctx$record("parallel_colmeans", "skipped", "mirai_map (.args)", size, NA, "mirai not installed")
  }
}
