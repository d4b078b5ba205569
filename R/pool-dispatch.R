# Running a list of chunk tasks on a pool's workers: each worker gets one
# chunk at a time; a worker that dies is replaced and its chunk retried once.
# `on_done(index, results)` is called as chunks complete; the work is
# counted for the worker that did it.

dispatch <- function(pool, tasks, on_done) {
  # Departed workers' session directories, before and after: some workers
  # are only just gone.
  sweep_departed(pool)
  on.exit(sweep_departed(pool))
  if (pool$backend == "psock") dispatch_psock(pool, tasks, on_done) else dispatch_mirai(pool, tasks, on_done)
}

worker_died_error <- function(task) {
  stop(sprintf(
    "a worker died twice while computing elements %s; giving up",
    describe_positions(task$positions)
  ), call. = FALSE)
}

# The caller's own code runs during a call (handlers of relayed messages
# and warnings, progress): it may stop the pool, and the call then ends
# rather than start new workers for a pool that is no more.
stop_if_pool_stopped <- function(pool) {
  if (isTRUE(pool$stopped)) {
    stop("the pool was stopped with pool_stop() while this call was running", call. = FALSE)
  }
}

# A PSOCK pool runs one call at a time. Code of the caller's that runs
# during a call (a handler of a relayed message or warning, progress) and
# uses the same pool would take over the workers still computing for the
# call: it found their chunks in flight and replaced them, and the call
# then waited forever for replies the new workers never send. Such a use
# is an error instead (`what` names it).
check_pool_idle <- function(pool, what) {
  if (isTRUE(pool$busy)) {
    stop(sprintf(paste0(
      "%s cannot use this pool while a call on it is running (here from the caller's own ",
      "code during that call, such as a handler of a message or warning it relays); ",
      "use another pool, or wait until the call returns"), what), call. = FALSE)
  }
  invisible()
}

describe_positions <- function(positions) {
  if (length(positions) == 1L) return(as.character(positions))
  sprintf("%d to %d", min(positions), max(positions))
}

done_by_key <- function(pool, key) {
  n <- pool$done_by_key[key]
  if (is.null(n) || is.na(n)) 0L else unname(n)
}

chunk_done <- function(pool, t, reply, on_done) {
  w <- if (is.null(reply$host)) match(reply$pid, pool$pids) else
    match(paste(reply$host, reply$pid), paste(pool$hosts, pool$pids))
  if (!is.na(w)) pool$tasks_done[w] <- pool$tasks_done[w] + length(reply$values)
  # A mirai daemon's elements are also counted by its host and pid: one
  # the pool does not know yet (it joined during the call) or that a survey
  # missed gets its count when it takes a place (survey_mirai_workers()).
  if (!is.null(reply$host)) {
    key <- paste(reply$host, reply$pid)
    pool$done_by_key[key] <- done_by_key(pool, key) + length(reply$values)
  }
  on_done(t, reply)
}

# Each worker has up to two chunks outstanding: it finds the next one
# waiting in its socket when it sends a reply, so the round trip between
# chunks costs it nothing.
#
# pool$in_flight counts, per worker, the chunks sent whose replies have not
# been read: it rises before the first byte of a chunk goes out and falls
# once its whole reply is read. A call that ends in any way with chunks in
# flight (an error, an interrupt, even during its own clean-up) leaves that
# count, and a worker with one is stopped and replaced before it gets more
# work: no late reply can be read as the answer of a later call. Replies
# also name their call and chunk, and one that does not match is dropped.
dispatch_psock <- function(pool, tasks, on_done) {
  check_pool_idle(pool, "a map")
  on.exit(pool$busy <- FALSE, add = TRUE)
  pool$busy <- TRUE
  if (any(pool$in_flight > 0L)) replace_abandoned_workers(pool)
  replace_disconnected_workers(pool)
  workers <- length(pool$cluster)
  # Recycling replaces a worker after a chunk: nothing may wait for it.
  depth <- if (is.null(pool$rss_limit)) 2L else 1L
  queue <- seq_along(tasks)
  outstanding <- rep(list(integer()), workers)
  attempts <- integer(length(tasks))
  tag <- function(t) c(tasks[[t]]$call, tasks[[t]]$chunk)
  send <- function(w) {
    t <- queue[1L]
    message <- list(type = "EXEC", data = list(fun = chunk_runner, args = list(tasks[[t]]),
                                               return = TRUE, tag = tag(t)))
    # Serialized before it is counted or sent: a chunk that cannot be (a
    # closed shared object among its data, a failing serialization hook) is
    # an error of the call, and the worker, which got no byte of it, is fine.
    # An error once `bytes` is set is the write's: the worker is lost. (One
    # tryCatch() for both: each costs as much as the count.)
    bytes <- NULL
    failure <- tryCatch({
      bytes <- serialize(message, NULL, xdr = FALSE)
      queue <<- queue[-1L]
      outstanding[[w]] <<- c(outstanding[[w]], t)
      pool$in_flight[w] <- pool$in_flight[w] + 1L
      writeBin(bytes, pool$cluster[[w]]$con)
      NULL
    }, error = function(e) e)
    if (is.null(failure)) return(invisible())
    if (is.null(bytes)) {
      stop(sprintf("cannot send elements %s to a worker: %s",
                   describe_positions(tasks[[t]]$positions), conditionMessage(failure)), call. = FALSE)
    }
    lost(w)
  }
  # After lost(), w is a fresh worker and gets work like any other.
  fill <- function(w, upto = depth) {
    while (length(queue) && length(outstanding[[w]]) < upto) send(w)
  }
  # The chunk worker w was computing counts as tried; those behind it go
  # back to the queue as they were.
  lost <- function(w) {
    stop_if_pool_stopped(pool)
    mine <- outstanding[[w]]
    outstanding[w] <<- list(integer())
    attempts[mine[1L]] <<- attempts[mine[1L]] + 1L
    pool$chunks_resent <- pool$chunks_resent + 1L
    # The pool gets a working replacement whatever happens to this call.
    replace_psock_worker(pool, w)
    if (attempts[mine[1L]] > 1L) worker_died_error(tasks[[mine[1L]]])
    queue <<- c(mine, queue)
  }
  on.exit(abandon_chunks(pool), add = TRUE)
  # A worker that died while something still holds its socket open (a child
  # process of its) is found by its process instead, looked at when a wait
  # found no reply or at most once a second: reading /proc at every reply
  # cost a small call more than the rest of its bookkeeping. (Seconds as a
  # plain number: comparing POSIXct times dispatches to Ops.POSIXt, which
  # costs as much as the /proc read.) The clock is read only in a turn that
  # leaves a worker waiting (most turns of a small call leave none), and the
  # first such turn starts the second.
  next_liveness_check <- NULL
  liveness_check_due <- function(ready) {
    now <- as.numeric(Sys.time())
    if (is.null(next_liveness_check)) next_liveness_check <<- now + 1
    if (any(ready) && now < next_liveness_check) return(FALSE)
    next_liveness_check <<- now + 1
    TRUE
  }
  # Every worker gets a chunk before any gets a second: a call of no more
  # chunks than workers runs them all at once, not two after each other on
  # one worker.
  for (level in seq_len(depth)) for (w in seq_len(workers)) fill(w, upto = level)
  repeat {
    busy <- which(lengths(outstanding) > 0L)
    if (!length(busy)) break
    ready <- socketSelect(lapply(busy, function(w) pool$cluster[[w]]$con), timeout = 1)
    for (w in busy[ready]) {
      reply <- tryCatch(unserialize(pool$cluster[[w]]$con), error = function(e) e)
      t <- outstanding[[w]][1L]
      if (inherits(reply, "error")) {
        lost(w)
      } else if (!identical(reply$tag, tag(t))) {
        next # a late reply to an earlier call: the worker is still on ours
      } else {
        pool$in_flight[w] <- pool$in_flight[w] - 1L
        outstanding[[w]] <- outstanding[[w]][-1L]
        if (!isTRUE(reply$success)) {
          stop(sprintf("a worker could not run elements %s: %s",
                       describe_positions(tasks[[t]]$positions), reply$value), call. = FALSE)
        }
        chunk_done(pool, t, reply$value, on_done)
        stop_if_pool_stopped(pool)
        recycle_if_grown(pool, w)
      }
      fill(w)
    }
    waiting <- busy[!ready]
    for (w in if (length(waiting) && liveness_check_due(ready)) waiting) {
      if (length(outstanding[[w]]) && !process_alive(pool$pids[w])) {
        lost(w)
        fill(w)
      }
    }
  }
}

# After a call: workers with chunks in flight are stopped (with interrupts
# held back, so that a second interrupt does not cut this short) and
# replaced, here or, after another interrupt, when the pool is next used.
abandon_chunks <- function(pool) {
  if (!any(pool$in_flight > 0L)) return(invisible())
  # pool_stop() ran during the call and stopped the workers itself.
  if (isTRUE(pool$stopped)) return(replace_abandoned_workers(pool))
  if (!isTRUE(pool$borrowed)) {
    for (w in which(pool$in_flight > 0L)) read_arrived_replies(pool, w)
    suspendInterrupts(for (w in which(pool$in_flight > 0L)) {
      kill_worker(pool, w)
      close_worker_connection(pool$cluster[[w]])
    })
  }
  # A call's temporary pool is stopped next: no need for new workers.
  if (!isTRUE(pool$temporary)) replace_abandoned_workers(pool)
}

# Reads and drops the replies of worker `w` that have begun to arrive. A
# reply may hold shared objects its worker made and handed to this process;
# read, they are this process's and go with the reply, where a reply killed
# with its worker would leave their regions until this process exits. A
# worker with nothing left in flight is kept.
read_arrived_replies <- function(pool, w) {
  node <- pool$cluster[[w]]
  while (pool$in_flight[w] > 0L && worker_connection_open(node) &&
         isTRUE(socketSelect(list(node$con), timeout = 0))) {
    if (inherits(tryCatch(unserialize(node$con), error = function(e) e), "error")) break
    pool$in_flight[w] <- pool$in_flight[w] - 1L
  }
  invisible()
}

# A borrowed cluster's workers are not ours to stop: their replies are read
# and dropped instead.
replace_abandoned_workers <- function(pool) {
  if (isTRUE(pool$stopped) && !isTRUE(pool$borrowed)) {
    pool$in_flight[] <- 0L  # pool_stop() stopped them
    return(invisible())
  }
  for (w in which(pool$in_flight > 0L)) {
    if (isTRUE(pool$borrowed)) {
      while (pool$in_flight[w] > 0L) {
        if (worker_connection_open(pool$cluster[[w]])) {
          try(unserialize(pool$cluster[[w]]$con), silent = TRUE)
        }
        pool$in_flight[w] <- pool$in_flight[w] - 1L
      }
    } else {
      kill_worker(pool, w)
      replace_psock_worker(pool, w)
    }
  }
}

# A worker whose connection was closed outside the pool (closeAllConnections()
# in the caller's code) has seen its end and exits; it is replaced. A
# borrowed cluster's cannot be.
replace_disconnected_workers <- function(pool) {
  for (w in seq_along(pool$cluster)) {
    if (worker_connection_open(pool$cluster[[w]])) next
    if (isTRUE(pool$borrowed)) {
      stop(sprintf("the connection to worker %d of `CLUSTER` was closed; make a new cluster", w),
           call. = FALSE)
    }
    replace_psock_worker(pool, w)
  }
}
