# The mirai backend of pools: daemons started by the pool on this host, or
# daemons already connected to a compute profile (on this host or others).
#
# mirai cannot address one daemon, so a pool knows its workers by surveying
# them (everywhere(): each connected daemon answers once with its host and
# process id), and every task sets its daemon up on first use (packages,
# init, whether the caller is on another host). A pool whose workers are not
# all on this host serializes its tasks in remote mode (see ?remote).

mirai_profiles <- local({
  n <- 0L
  # A profile name from a counter, not from the caller's random numbers.
  function() {
    n <<- n + 1L
    sprintf("shmr_%d_%d", Sys.getpid(), n)
  }
})

# Pools running on mirai, so that closing an object can release its copies.
mirai_pools <- new.env(parent = emptyenv())

# Evaluates `expr` and puts the caller's random number state back as it was:
# mirai draws from it when it starts daemons.
keeping_rng <- function(expr) {
  had <- exists(".Random.seed", envir = globalenv(), inherits = FALSE)
  seed <- if (had) get(".Random.seed", envir = globalenv(), inherits = FALSE)
  on.exit({
    if (had) {
      assign(".Random.seed", seed, envir = globalenv())
    } else if (exists(".Random.seed", envir = globalenv(), inherits = FALSE)) {
      rm(".Random.seed", envir = globalenv())
    }
  })
  expr
}

start_mirai <- function(pool, compute = NULL) {
  if (!requireNamespace("mirai", quietly = TRUE)) {
    stop("backend = \"mirai\" needs the mirai package", call. = FALSE)
  }
  pool$local_host <- host_identity()
  pool$setup <- list(id = mirai_profiles(), packages = pool$packages, init = pool$init,
                     libs = .libPaths(), caller_host = pool$local_host,
                     r_series = paste(R.version$major, sub("[.].*$", "", R.version$minor), sep = "."))
  if (is.null(compute)) {
    pool$profile <- pool$setup$id
    check_descriptors_free(pool$n)
    keeping_rng(with_worker_libs(mirai::daemons(pool$n, .compute = pool$profile)))
    pool$borrowed <- FALSE
  } else {
    pool$profile <- compute
    pool$borrowed <- TRUE
    wait_for_daemons(pool)
    pool$n <- mirai_connections(pool)
  }
  survey_mirai_workers(pool, expected = pool$n)
  pool$tasks_done <- integer(length(pool$pids))
  pool$recycled <- integer(length(pool$pids))
  assign(pool$setup$id, pool, envir = mirai_pools)
  pool
}

mirai_connections <- function(pool) {
  status <- tryCatch(mirai::status(.compute = pool$profile), error = function(e) NULL)
  as.integer(status$connections %||% 0L)
}

# Whether mirai::daemons() set up compute profile `profile`, whether or not
# any daemon has connected to it: status() gives its URL then, 0 otherwise.
mirai_profile_set <- function(profile) {
  status <- tryCatch(mirai::status(.compute = profile), error = function(e) NULL)
  is.character(status$daemons)
}

# Daemons that a scheduler (sbatch, a slow ssh) starts connect seconds or
# minutes after mirai::daemons() set up their profile. A pool over such a
# profile waits for the first one, as a mirai task would, rather than fail
# (or, without `compute`, start daemons of its own on this host). Those
# that connect later join at the pool's next call. The wait has an end:
# getOption("shmr.daemon_wait", 600) seconds.
wait_for_daemons <- function(pool) {
  if (mirai_connections(pool) >= 1L) return(invisible())
  profile <- pool$profile
  if (!mirai_profile_set(profile)) {
    stop(sprintf(paste0(
      "no mirai daemons are connected to compute profile \"%s\", and none are set up for it: ",
      "call mirai::daemons() for that profile first"), profile), call. = FALSE)
  }
  wait <- daemon_wait()
  cli::cli_inform(c(i = paste0("Waiting up to {wait} s for a mirai daemon to connect to ",
                               "compute profile {.val {profile}}.")))
  deadline <- Sys.time() + wait
  repeat {
    Sys.sleep(0.1)
    if (mirai_connections(pool) >= 1L) return(invisible())
    if (!mirai_profile_set(profile)) {
      stop(sprintf("compute profile \"%s\" was reset (mirai::daemons(0)) before any daemon connected",
                   profile), call. = FALSE)
    }
    if (Sys.time() >= deadline) {
      stop(sprintf(paste0(
        "no mirai daemon connected to compute profile \"%s\" within %g s; launch daemons for it ",
        "(mirai::launch_remote()), or wait longer with options(shmr.daemon_wait = <seconds>)"),
        profile, wait), call. = FALSE)
    }
  }
}

daemon_wait <- function() {
  wait <- getOption("shmr.daemon_wait", 600)
  if (!is.numeric(wait) || length(wait) != 1L || is.na(wait) || wait < 0) {
    stop("the option `shmr.daemon_wait` must be one number of seconds >= 0, not ",
         describe_value(wait), call. = FALSE)
  }
  as.numeric(wait)
}

# What a daemon runs for a pool: sets itself up once for this pool, then
# runs `task` (a chunk), or only reports itself when `task` is NULL.
mirai_worker_run <- function(task, setup) {
  if (!identical(worker_state$pool, setup$id)) {
    worker_setup(setup$packages, setup$init, if (isFALSE(setup$libs_first)) character() else setup$libs)
    # Shares made here mean nothing to a caller on another host: they travel
    # back as data.
    if (!identical(setup$caller_host, host_identity())) .Call(shmr_remote_peer, TRUE)
    worker_state$pool <- setup$id
    worker_state$set_up <- union(worker_state$set_up, setup$id)
  }
  # mirai read this task's arguments before the runner could put the
  # caller's libraries on the path and load the pool's packages: a daemon
  # not yet set up for this pool (one that connected after the pool's
  # survey) read them with its own libraries only. Without shmr there,
  # every shared object in them read as an empty vector (R's fallback for
  # an ALTREP class whose package it cannot load); without another package
  # there, a closure of its namespace (FUN, or one in FUN's arguments) got
  # the global environment instead and computed with other bindings or
  # failed. Both with a warning here only. The daemon is set up now: the
  # caller sends the task again.
  if (!is.null(task) && isFALSE(setup$ready)) {
    return(list(read_again = TRUE, pid = Sys.getpid(), host = host_identity()))
  }
  # A daemon that connected after the pool last surveyed its workers (one
  # a scheduler started late) may be on another host while this task was
  # written for workers on the caller's host only: its shared objects carry
  # no origin and cannot be had here. It says so rather than run, and the
  # caller sends the task again in remote mode.
  if (!is.null(task) && !isTRUE(task$remote_mode) && !caller_on_this_host(task)) {
    return(list(resend_remote = TRUE, pid = Sys.getpid(), host = host_identity()))
  }
  if (is.null(task)) {
    memory <- tryCatch(suppressWarnings(process_memory()), error = function(e) NULL)
    return(list(pid = Sys.getpid(), host = host_identity(), tempdir = tempdir(),
                memory = memory, shared = region_bytes_mapped(Sys.getpid())))
  }
  reply <- run_chunk(task)
  reply$host <- host_identity()
  reply
}

worker_state <- new.env(parent = emptyenv())

# What a message to a daemon names to run: a few hundred bytes rather than
# mirai_worker_run()'s code, enclosed by the global environment so that a
# daemon puts the caller's library paths first before it loads shmr (a
# daemon on another host keeps those of its own that exist there).
#
# A library holds packages built for one R x.y, and a daemon on another host
# may run another R, with its own shmr, while the caller's library paths
# exist there too (a home directory shared between hosts): that daemon
# looks in its own libraries first, and in the caller's only for what they
# lack. Before, it loaded the caller's build of shmr and failed ("undefined
# symbol"), and the pool refused it.
mirai_runner <- function() {
  run <- function(task, setup) {
    # Whether `task` was read with shmr at hand, and after this daemon had
    # been set up for the pool (see mirai_worker_run()).
    setup$ready <- isNamespaceLoaded("shmr") &&
      setup$id %in% asNamespace("shmr")$worker_state$set_up
    series <- paste(R.version$major, sub("[.].*$", "", R.version$minor), sep = ".")
    setup$libs_first <- is.null(setup$r_series) || identical(setup$r_series, series)
    .libPaths(unique(if (setup$libs_first) c(setup$libs, .libPaths()) else c(.libPaths(), setup$libs)))
    asNamespace("shmr")$mirai_worker_run(task, setup)
  }
  environment(run) <- globalenv()
  run
}

# Asks every connected daemon who it is; sets pool$pids, pool$hosts and
# pool$remote, and returns the answers.
survey_mirai_workers <- function(pool, expected = NULL, timeout = 60) {
  deadline <- Sys.time() + timeout
  if (!is.null(expected)) {
    while (mirai_connections(pool) < expected && Sys.time() < deadline) Sys.sleep(0.02)
    if (mirai_connections(pool) < expected) {
      stop("mirai daemons did not connect in time", call. = FALSE)
    }
  }
  run <- mirai_runner()
  calls <- mirai::everywhere(run(NULL, setup), run = run, setup = pool$setup,
                             .compute = pool$profile)
  answers <- collect_survey(pool, calls)
  stop_if_daemons_unable(pool, answers)
  answers <- Filter(function(a) is.list(a) && !is.null(a$pid), answers)
  keys <- vapply(answers, function(a) paste(a$host, a$pid), "")
  answers <- answers[!duplicated(keys)]
  old_keys <- paste(pool$hosts, pool$pids)
  new_keys <- vapply(answers, function(a) paste(a$host, a$pid), "")
  if (length(pool$pids)) {
    # Workers keep their place; newcomers take the places of the departed.
    alive <- old_keys %in% new_keys
    fresh <- answers[!new_keys %in% old_keys]
    for (w in which(!alive)) forget_worker(pool, w)
    sweep_departed(pool)
    for (w in which(!alive)) {
      if (!length(fresh)) break
      record_workers(pool, fresh[1L], w)
      pool$hosts[w] <- fresh[[1L]]$host
      pool$tasks_done[w] <- done_by_key(pool, paste(fresh[[1L]]$host, fresh[[1L]]$pid))
      fresh <- fresh[-1L]
    }
    for (a in fresh) {
      record_workers(pool, list(a), length(pool$pids) + 1L)
      pool$hosts <- c(pool$hosts, a$host)
      pool$tasks_done <- c(pool$tasks_done, done_by_key(pool, paste(a$host, a$pid)))
      pool$recycled <- c(pool$recycled, 0L)
    }
  } else {
    pool$pids <- integer(0)
    pool$tempdirs <- character(0)
    record_workers(pool, answers)
    pool$hosts <- vapply(answers, function(a) a$host, "")
  }
  pool$alive <- paste(pool$hosts, pool$pids) %in% new_keys
  pool$remote <- any(pool$hosts != pool$local_host)
  invisible(answers)
}

# The answers of a survey. A daemon answers once it is free: one running a
# long task of the caller's own (a mirai() on the same profile) holds the
# survey, and with it pool_create() or the map, until that task ends. After
# a few seconds a message says what the pool waits for, where it would
# otherwise seem to hang.
collect_survey <- function(pool, calls, notice_after = 5) {
  notice_at <- Sys.time() + notice_after
  pause <- 0.001
  while (mirai::unresolved(calls)) {
    if (!is.null(notice_at) && Sys.time() >= notice_at) {
      waiting <- sum(vapply(calls, mirai::unresolved, NA))
      profile <- pool$profile
      cli::cli_inform(c(i = paste0(
        "Waiting for {waiting} of the {length(calls)} daemon{?s} of compute profile ",
        "{.val {profile}} to answer the pool: a daemon answers when the task it runs ",
        "(one of yours on that profile, or the pool's set-up: `packages`, `init`) ends.")))
      notice_at <- NULL
    }
    Sys.sleep(pause)
    pause <- min(2 * pause, 0.05)
  }
  mirai::collect_mirai(calls)
}

# A daemon that answers the survey with an R error cannot run the pool's
# tasks: shmr is not installed where it runs (nor in the caller's libraries
# as its host sees them), or the pool's `packages` or `init` fail there.
# mirai would still give it tasks, each failing: the pool stops instead,
# with the daemon's reason. (Other error values are daemons that went away
# during the survey.)
stop_if_daemons_unable <- function(pool, answers) {
  failed <- Filter(function(a) inherits(a, "miraiError"), answers)
  if (!length(failed)) return(invisible())
  reasons <- unique(vapply(failed, function(a) attr(a, "message") %||% as.character(a), ""))
  stop(errorCondition(sprintf(paste0(
    "%d of the %d daemons of compute profile \"%s\" could not be set up for the pool (loading ",
    "shmr or `packages`, or running `init`): %s. Every host needs shmr and those packages in a ",
    "library its daemons find"),
    length(failed), length(answers), pool$profile, paste(reasons, collapse = "; ")),
    class = "shmr_worker_error", call = NULL))
}

# Before a call: a pool that started its own daemons replaces those that
# died (locally, where it started them); a pool over someone else's daemons
# never starts any (a dead remote daemon is not replaced by a local one).
ensure_mirai_workers <- function(pool) {
  connected <- mirai_connections(pool)
  if (pool$borrowed && connected < 1L) {
    wait_for_daemons(pool)
    connected <- mirai_connections(pool)
  }
  if (!pool$borrowed && connected < pool$n) {
    check_descriptors_free(pool$n - connected)
    keeping_rng(with_worker_libs(
      mirai::launch_local(pool$n - connected, .compute = pool$profile)
    ))
    survey_mirai_workers(pool, expected = pool$n)
  } else if (connected != sum(pool$alive)) {
    survey_mirai_workers(pool)
  }
  if (mirai_connections(pool) < 1L) {
    stop(sprintf("no mirai daemons are connected to compute profile \"%s\"", pool$profile),
         call. = FALSE)
  }
}

dispatch_mirai <- function(pool, tasks, on_done) {
  ensure_mirai_workers(pool)
  for (t in seq_along(tasks)) tasks[[t]]$caller_host <- pool$local_host
  listen <- NULL
  go_remote <- function() {
    release_dropped_exports()
    # Start the region server on the daemons' interface and export what the
    # tasks share before mirai serializes them.
    listen <<- region_server(pool$profile)$listen
    with_remote_mode(invisible(serialize(tasks, NULL)), listen)
  }
  if (pool$remote) go_remote()
  attempts <- integer(length(tasks))
  run <- mirai_runner()
  submit <- function(t) {
    task <- tasks[[t]]
    # Whether its shared objects carry their origin: a daemon on another
    # host that gets a task without (it joined after the survey) sends it
    # back (mirai_worker_run()).
    task$remote_mode <- pool$remote
    send <- function() {
      mirai::mirai(run(task, setup), run = run, task = task, setup = pool$setup,
                   .compute = pool$profile)
    }
    if (pool$remote) with_remote_mode(send(), listen) else send()
  }
  # A call that ends early (an error, an interrupt) cancels its chunks still
  # queued or running, so that the daemons are free for the next call.
  pending <- list()
  on.exit(suspendInterrupts(cancel_mirai(pending)))
  for (t in seq_along(tasks)) pending[[t]] <- submit(t)
  open <- seq_along(tasks)
  while (length(open)) {
    done <- open[!vapply(pending[open], mirai::unresolved, TRUE)]
    for (t in done) {
      value <- pending[[t]]$data
      if (is.list(value) && isTRUE(value[["read_again"]])) {
        pending[[t]] <- submit(t)
        next
      }
      if (is.list(value) && isTRUE(value[["resend_remote"]])) {
        # A daemon of another host joined the profile after the survey (a
        # scheduler queue, a slow ssh): from now on this pool's tasks carry
        # their objects' origins. Its next call surveys the newcomers (their
        # number differs from the workers it knows); surveying now would
        # wait behind the tasks in flight.
        if (!pool$remote) {
          pool$remote <- TRUE
          go_remote()
        }
        pending[[t]] <- submit(t)
        next
      }
      if (mirai::is_error_value(value)) {
        stop_if_pool_stopped(pool)
        if (inherits(value, "errorValue")) {
          # The daemon went away (connection reset): replace it when it was
          # ours, and retry the chunk once on the workers left.
          attempts[t] <- attempts[t] + 1L
          pool$chunks_resent <- pool$chunks_resent + 1L
          if (attempts[t] > 1L) worker_died_error(tasks[[t]])
          ensure_mirai_workers(pool)
          pending[[t]] <- submit(t)
          next
        }
        stop(sprintf("a worker could not run elements %s: %s",
                     describe_positions(tasks[[t]]$positions), conditionMessage(value)),
             call. = FALSE)
      }
      open <- setdiff(open, t)
      chunk_done(pool, t, value, on_done)
      stop_if_pool_stopped(pool)
    }
    if (length(open)) Sys.sleep(0.001)
  }
}

cancel_mirai <- function(pending) {
  calls <- Filter(function(m) inherits(m, "mirai"), pending)
  running <- Filter(mirai::unresolved, calls)
  if (length(running)) try(mirai::stop_mirai(running), silent = TRUE)
  # A reply that arrived unread may hold shared objects its daemon made and
  # handed to this process: read, they are this process's and go with the
  # reply, where an unread one would leave their regions until it exits.
  for (m in calls) if (!mirai::unresolved(m)) try(m$data, silent = TRUE)
  invisible()
}

# pool_status() of a mirai pool: each daemon reports its own memory (those
# on other hosts cannot be read from here).
mirai_status <- function(pool) {
  answers <- survey_mirai_workers(pool)
  by_key <- answers
  names(by_key) <- vapply(answers, function(a) paste(a$host, a$pid), "")
  keys <- paste(pool$hosts, pool$pids)
  field <- function(name) {
    vapply(keys, function(k) {
      m <- by_key[[k]]$memory
      if (is.null(m)) NA_real_ else unname(m[[name]])
    }, 0, USE.NAMES = FALSE)
  }
  data.frame(
    worker = seq_along(pool$pids), host = pool$hosts, pid = as.integer(pool$pids),
    status = ifelse(keys %in% names(by_key), "ok", "dead"),
    tasks_done = pool$tasks_done, recycled = pool$recycled,
    rss = field("rss"), uss = field("private"), anonymous = field("anonymous"),
    shared_mapped = vapply(keys, function(k) by_key[[k]]$shared %||% NA_real_, 0,
                           USE.NAMES = FALSE),
    stringsAsFactors = FALSE
  )
}

# Sends the release of `regions` to the workers of every running mirai pool
# over other hosts, without waiting (the owner closed them).
release_on_pools <- function(regions) {
  for (id in ls(mirai_pools)) {
    pool <- mirai_pools[[id]]
    if (isTRUE(pool$stopped) || !isTRUE(pool$remote)) next
    release <- release_replicas
    try(mirai::everywhere(release(regions), release = release, regions = regions,
                          .compute = pool$profile), silent = TRUE)
  }
  invisible()
}

stop_mirai <- function(pool) {
  if (exists(pool$setup$id, envir = mirai_pools, inherits = FALSE)) {
    rm(list = pool$setup$id, envir = mirai_pools)
  }
  if (pool$borrowed) {
    # The daemons are not ours: leave them running, without this owner's
    # copies.
    # Objects dropped without close() among them, forgotten or not yet.
    regions <- c(names(remote_state$exports), remote_state$dropped)
    if (pool$remote && length(regions)) {
      release <- release_replicas
      calls <- try(mirai::everywhere(release(regions), release = release,
                                     regions = regions,
                                     .compute = pool$profile), silent = TRUE)
      if (!inherits(calls, "try-error")) try(mirai::collect_mirai(calls), silent = TRUE)
    }
  } else {
    try(mirai::daemons(0, .compute = pool$profile), silent = TRUE)
  }
}
