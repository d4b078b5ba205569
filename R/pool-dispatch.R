# Running a list of chunk tasks on a pool's workers: each worker gets one
# chunk at a time; a worker that dies is replaced and its chunk retried once.
# `on_done(index, results)` is called as chunks complete; the work is
# counted for the worker that did it.

dispatch <- function(pool, tasks, on_done) {
  if (pool$backend == "psock") dispatch_psock(pool, tasks, on_done) else dispatch_mirai(pool, tasks, on_done)
}

worker_died_error <- function(task) {
  stop(sprintf(
    "a worker died twice while computing elements %s; giving up",
    describe_positions(task$positions)
  ), call. = FALSE)
}

describe_positions <- function(positions) {
  if (length(positions) == 1L) return(as.character(positions))
  sprintf("%d to %d", min(positions), max(positions))
}

chunk_done <- function(pool, t, reply, on_done) {
  w <- if (is.null(reply$host)) match(reply$pid, pool$pids) else
    match(paste(reply$host, reply$pid), paste(pool$hosts, pool$pids))
  if (!is.na(w)) pool$tasks_done[w] <- pool$tasks_done[w] + length(reply$results)
  on_done(t, reply$results)
}

process_alive <- function(pid) {
  stat <- tryCatch(readLines(sprintf("/proc/%d/stat", pid), warn = FALSE), error = function(e) "")
  length(stat) == 1L && nzchar(stat) && !grepl("^[0-9]+ \\(.*\\) [ZX] ", stat)
}

dispatch_psock <- function(pool, tasks, on_done) {
  workers <- length(pool$cluster)
  queue <- seq_along(tasks)
  running <- rep(NA_integer_, workers)
  attempts <- integer(length(tasks))
  send <- function(w) {
    t <- queue[1L]
    queue <<- queue[-1L]
    message <- list(type = "EXEC", data = list(fun = run_chunk, args = list(tasks[[t]]),
                                               return = TRUE, tag = t))
    ok <- tryCatch({
      serialize(message, pool$cluster[[w]]$con, xdr = FALSE)
      TRUE
    }, error = function(e) FALSE)
    running[w] <<- t
    if (!ok) lost(w)
  }
  lost <- function(w) {
    t <- running[w]
    running[w] <<- NA_integer_
    attempts[t] <<- attempts[t] + 1L
    # The pool gets a working replacement whatever happens to this call.
    replace_psock_worker(pool, w)
    if (attempts[t] > 1L) worker_died_error(tasks[[t]])
    queue <<- c(t, queue)
  }
  # Leaving early (an error in FUN, an interrupt) would leave chunks running,
  # and their late replies would be read as answers to the next call: such
  # workers are replaced instead.
  on.exit(for (w in which(!is.na(running))) {
    tools::pskill(pool$pids[w], tools::SIGKILL)
    try(replace_psock_worker(pool, w), silent = TRUE)
  })
  for (w in seq_len(min(workers, length(queue)))) send(w)
  while (any(!is.na(running))) {
    busy <- which(!is.na(running))
    ready <- socketSelect(lapply(pool$cluster[busy], function(node) node$con), timeout = 1)
    for (w in busy[ready]) {
      reply <- tryCatch(unserialize(pool$cluster[[w]]$con), error = function(e) e)
      if (inherits(reply, "error")) {
        lost(w)
      } else {
        t <- running[w]
        running[w] <- NA_integer_
        if (!isTRUE(reply$success)) {
          stop(sprintf("a worker could not run elements %s: %s",
                       describe_positions(tasks[[t]]$positions), reply$value), call. = FALSE)
        }
        chunk_done(pool, t, reply$value, on_done)
        recycle_if_grown(pool, w)
      }
      if (is.na(running[w]) && length(queue)) send(w)
    }
    for (w in busy[!ready]) {
      if (!is.na(running[w]) && !process_alive(pool$pids[w])) {
        lost(w)
        if (length(queue)) send(w)
      }
    }
  }
}
