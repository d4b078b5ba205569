# Dispatch overhead (10,000 tiny tasks on 2 workers), one round trip, the
# cost of one call of 2 tiny tasks, and returning two large results from
# workers.
run <- function(ctx) {
  res <- NULL # filled by the timed closures below
  n <- 10000L
  # Repeats of the 10,000 tasks (mirai takes seconds for them); shmr's and
  # parLapply's are interleaved, on two workers each, so that both see the
  # same machine.
  reps <- if (ctx$quick) 3L else 7L
  pool <- pool_create(2)
  invisible(pool_sapply(1:2, identity))
  cl <- parallel::makePSOCKcluster(2)
  invisible(parallel::parLapply(cl, 1:2, identity))
  times <- vapply(seq_len(reps), function(i) c(
    shmr = seconds(function() pool_lapply(seq_len(n), identity)),
    parLapply = seconds(function() parallel::parLapply(cl, seq_len(n), identity))
  ), c(shmr = 0, parLapply = 0))
  ctx$record("dispatch", "10,000 tiny tasks, per task", "shmr pool_lapply", NA,
             median(times["shmr", ]) / n * 1e3, "ms")
  ctx$record("dispatch", "10,000 tiny tasks, per task", "parLapply", NA,
             median(times["parLapply", ]) / n * 1e3, "ms")
  rt <- median(vapply(1:20, function(i) seconds(function() pool_lapply(1L, identity)), 0))
  ctx$record("dispatch", "one round trip", "shmr pool_lapply", NA, rt * 1e3, "ms")
  # The fixed cost of one call, which a map inside an iterative algorithm
  # pays at every step: calls of two tiny tasks, one per worker, timed in
  # batches, shmr's and parLapply's interleaved as above.
  calls <- if (ctx$quick) 200L else 1000L
  batches <- vapply(seq_len(reps), function(i) c(
    shmr = seconds(function() for (k in seq_len(calls)) pool_lapply(1:2, identity)),
    parLapply = seconds(function() for (k in seq_len(calls)) parallel::parLapply(cl, 1:2, identity))
  ), c(shmr = 0, parLapply = 0))
  ctx$record("dispatch", "one call of 2 tiny tasks, per call", "shmr pool_lapply", NA,
             median(batches["shmr", ]) / calls * 1e3, "ms")
  ctx$record("dispatch", "one call of 2 tiny tasks, per call", "parLapply", NA,
             median(batches["parLapply", ]) / calls * 1e3, "ms")

  result_bytes <- if (ctx$quick) 64 * 2^20 else 400 * 2^20
  # Sent to workers: given the global environment, so that it does not carry
  # this function's along.
  make_result <- function(i, n) runif(n)
  environment(make_result) <- globalenv()
  t <- seconds(function() res <<- pool_lapply(1:2, make_result, n = result_bytes / 8))
  ctx$record("return_results", "two results", "shmr pool_lapply", result_bytes, t, "s")
  res <- NULL
  pool_stop(pool)

  t <- seconds(function() parallel::parLapply(cl, 1:2, make_result, n = result_bytes / 8))
  ctx$record("return_results", "two results", "parLapply", result_bytes, t, "s")
  parallel::stopCluster(cl)

  t <- seconds(function() parallel::mclapply(1:2, function(i) runif(result_bytes / 8), mc.cores = 2))
  ctx$record("return_results", "two results", "mclapply (fork)", result_bytes, t, "s")
  if (requireNamespace("mirai", quietly = TRUE)) {
    mirai::daemons(2)
    invisible(mirai::mirai_map(1:2, identity)[])
    mirai_reps <- if (ctx$quick) 1L else 3L
    t <- median(vapply(seq_len(mirai_reps), function(i) {
      seconds(function() mirai::mirai_map(seq_len(n), identity)[])
    }, 0))
    ctx$record("dispatch", "10,000 tiny tasks, per task", "mirai_map", NA, t / n * 1e3, "ms")
    t <- seconds(function() mirai::mirai_map(1:2, make_result, .args = list(n = result_bytes / 8))[])
    ctx$record("return_results", "two results", "mirai_map", result_bytes, t, "s")
    mirai::daemons(0)
  } else {
    ctx$record("dispatch", "skipped", "mirai_map", NA, NA, "mirai not installed")
  }
}
