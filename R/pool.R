#' Worker pools
#'
#' A pool is a set of R worker processes on this machine, started by an
#' existing engine: base R's `parallel` (PSOCK sockets, the default) or
#' `mirai` daemons. [pool_lapply()], [pool_sapply()] and [pool_apply()] run
#' work on it; shared objects travel to the workers as names.
#'
#' `pool_create()` starts `n` workers with the caller's library paths
#' ([.libPaths()]) ahead of their own, loads shmr and `packages` on each, runs
#' `init` (a function of no arguments, or an expression) on each, and makes
#' the pool the default for the `pool_*()` maps; `pool_get()` returns the
#' default pool. PSOCK sockets use the
#' `"no-delay"` option at both ends, so a message does not wait for the
#' operating system's small-packet delay. A pool is for the process that
#' created it: a forked child of that process (`parallel::mclapply()`,
#' `mcparallel()`) that uses it gets an error (it would read the replies
#' meant for its parent); create a pool in the child instead.
#'
#' A worker keeps its state from one call to the next, as a `parallel`
#' cluster's does: what `FUN` assigns in the global environment, sets with
#' [options()], [Sys.setenv()] or [setwd()], or attaches, is still there when
#' the worker runs later work, until it is replaced (it died, or was
#' recycled under `rss_limit`). A `FUN` that changes such settings restores
#' them (`on.exit()`); `init` is the place for settings every call needs.
#'
#' PSOCK workers make their temporary directories ([tempdir()]) inside the
#' caller's, one directory per start, unless the environment variables
#' `TMPDIR`, `TMP` or `TEMP` now point elsewhere than where the caller's is:
#' R removes its temporary directory when it exits, never when it is
#' killed, and a worker killed during its set-up (an interrupted
#' `pool_create()`, or `SIGKILL`) has not told the pool where its directory
#' is. The pool removes a start's directory once its workers are gone.
#'
#' @param n Number of workers. By default the number of usable cores: the
#'   option `mc.cores` when set, else [parallel::detectCores()], at most 2
#'   when the environment variable `_R_CHECK_LIMIT_CORES_` is set (as under
#'   `R CMD check`). A number the machine cannot start is an error before
#'   any worker starts: more workers than its memory holds at 32 MB each,
#'   or PSOCK workers beyond the R session's free connections (128 in all;
#'   on R >= 4.4, as many as `--max-connections` sets), or PSOCK workers or
#'   mirai daemons the pool starts beyond its free file descriptors (one
#'   per worker and one more, at least 4; `ulimit -n`), checked again
#'   before a dead worker is replaced.
#' @param timeout Seconds `pool_stop()` waits at most for the workers to
#'   exit.
#' @param backend `"psock"` (default) or `"mirai"`.
#' @param compute For `backend = "mirai"`: the name of a mirai compute
#'   profile whose connected daemons, on this host or others, the pool uses
#'   (`"default"` for the profile of [mirai::daemons()] without `.compute`).
#'   Give `n` or `compute`, not both. Without either, the pool uses the
#'   daemons of mirai's default profile when [mirai::daemons()] set it up,
#'   else starts its own daemons on this host. When no daemon of the profile
#'   has connected yet (a scheduler or ssh is still starting them), the pool
#'   waits for the first one, with a message, for at most
#'   `getOption("shmr.daemon_wait", 600)` seconds, and so does a map whose
#'   pool has no daemon left; those that connect later join at the pool's
#'   next call. The pool also waits for a daemon busy with a task of yours on
#'   the profile (it answers when that task ends); after 5 seconds a message
#'   says for how many. A pool does not stop daemons it did
#'   not start, and does not replace them when they die: a dead daemon on
#'   another host is not replaced by one on this host (`pool_status()` shows
#'   it as `"dead"`). Daemons the pool started itself are replaced, on this
#'   host. A pool whose workers are not all on this host sends shared
#'   objects in remote mode (see [remote]).
#' @param packages Character vector of packages to attach on every worker.
#'   Workers started by the pool use this session's library paths: a
#'   package not installed there is an error before any worker starts.
#' @param init `NULL`, a function of no arguments, or a quoted expression,
#'   run on every worker after `packages` are attached (also on workers that
#'   replace one that died or was recycled).
#' @param rss_limit `NULL`, or the most resident memory a worker may have
#'   after finishing a chunk, in bytes or as a string such as `"2GB"`: a
#'   PSOCK worker that has more is replaced by a fresh one (recycled) before
#'   it gets more work, so memory a worker accumulates (caches, fragmented
#'   heap) is returned.
#' @param pool A pool. For `pool_stop()` and `pool_status()`, the default
#'   pool when `NULL`.
#' @param con A pool: `close(pool)` is `pool_stop(pool)`.
#' @param ... Ignored.
#' @return `pool_create()`: the pool (class `shmr_pool`), invisibly.
#'   `pool_get()`: the default pool, or `NULL` when there is none.
#'   `pool_stop()`: `NULL`, invisibly, once the workers have exited (or
#'   `timeout` passed); a map running on the pool meanwhile (`pool_stop()`
#'   called from a handler of a message it relayed) ends with an error, and
#'   no worker is started for it. `pool_status()`: a data frame with one row per
#'   worker: `worker`, `host` (the host identity of its host, see
#'   [remote]), `pid` (on that host), `status` (`"ok"`, or `"dead"` for a worker
#'   that is no longer running), `tasks_done` (elements computed),
#'   `recycled` (times the worker was replaced for exceeding `rss_limit`),
#'   `rss` (resident bytes), `uss` (unique set size: bytes mapped by this
#'   worker alone, which also counts pages of a shared region that no other
#'   process happens to have touched), `anonymous` (bytes of the worker's
#'   own memory: its R heap and pages it copied; this is what grows when
#'   data is copied into a worker), and `shared_mapped` (bytes of shmr
#'   regions it has mapped). Memory columns are `NA` for a worker whose
#'   memory cannot be read (a dead one).
#' @name pools
#' @examples
#' \donttest{
#' pool <- pool_create(2)
#' pool_status(pool)[, c("worker", "pid", "tasks_done")]
#' unlist(pool_lapply(1:4, function(i) i^2))
#' identical(pool_get(), pool)
#' pool_stop(pool)
#' is.null(pool_get())
#' }
NULL

pools <- new.env(parent = emptyenv())

#' @rdname pools
#' @export
pool_create <- function(n = NULL, backend = c("psock", "mirai"), packages = NULL, init = NULL,
                        rss_limit = NULL, compute = NULL) {
  backend <- choose_arg(backend, c("psock", "mirai"), "backend")
  rss_limit <- parse_bytes(rss_limit)
  if (!is.null(rss_limit) && backend != "psock") {
    stop("`rss_limit` needs backend = \"psock\"", call. = FALSE)
  }
  compute <- mirai_compute(backend, n, compute)
  pool <- start_pool(n, backend, packages, init, compute)
  pool$rss_limit <- rss_limit
  pools$default <- pool
  invisible(pool)
}

# NULL, a number of bytes, or a string such as "2GB" or "512 MB" (units of
# 1024) -> NULL or a number of bytes.
parse_bytes <- function(size) {
  if (is.null(size)) return(NULL)
  units <- c(B = 0, KB = 1, MB = 2, GB = 3, TB = 4)
  if (is.character(size) && length(size) == 1L && !is.na(size)) {
    # toupper() of a string that is not valid text is an error of its own.
    upper <- tryCatch(toupper(size), error = function(e) "")
    parts <- regmatches(upper, regexec("^\\s*([0-9.]+)\\s*([KMGT]?B)?\\s*$", upper))[[1]]
    number <- if (length(parts) == 3L) suppressWarnings(as.numeric(parts[2])) else NA
    # As for a number: a limit of 0 bytes would recycle every worker after each task.
    if (!is.na(number) && number > 0) {
      unit <- if (nzchar(parts[3])) parts[3] else "B"
      return(number * 1024^units[[unit]])
    }
  } else if (is.numeric(size) && length(size) == 1L && !is.na(size) && size > 0) {
    return(as.numeric(size))
  }
  stop("`rss_limit` must be NULL, a number of bytes, or a size such as \"2GB\"", call. = FALSE)
}

#' @rdname pools
#' @export
pool_get <- function() {
  pool <- pools$default
  if (is.null(pool) || isTRUE(pool$stopped)) NULL else pool
}

# A started pool that is not made the default.
start_pool <- function(n, backend, packages, init, compute = NULL) {
  n <- if (is.null(n)) usable_cores() else n
  if (!is.numeric(n) || length(n) != 1L || is.na(n) || n < 1 || n != round(n)) {
    stop("`n` must be a whole number of workers >= 1", call. = FALSE)
  }
  check_workers_fit(n, backend)
  check_packages(packages, local = is.null(compute))
  if (!is.null(init) && !is.function(init) && !is.language(init)) {
    stop("`init` must be NULL, a function or a quoted expression", call. = FALSE)
  }
  pool <- new_pool_object(backend, n, packages, init)
  if (backend == "psock") start_psock(pool) else start_mirai(pool, compute)
  pool
}

# Workers started here load `packages` from this session's library paths: a
# package missing here is missing there, and is refused before any worker
# starts. Daemons of a compute profile (`local` FALSE) may be elsewhere.
check_packages <- function(packages, local) {
  if (is.null(packages)) return(invisible())
  if (!is.character(packages) || anyNA(packages) || !all(nzchar(packages))) {
    stop("`packages` must be a character vector of package names", call. = FALSE)
  }
  for (package in if (local) packages) {
    if (!length(find.package(package, quiet = TRUE))) {
      stop(sprintf("`packages`: there is no package called '%s'", shorten(package)),
           call. = FALSE)
    }
  }
  invisible()
}

# Refuses a number of workers this machine cannot start, before any is
# started: each is an R process (with shmr loaded, some 40 MB of memory of
# its own, counted here as at least worker_bytes), and a PSOCK worker also
# takes one of R's connections, of which there are 128 in all (R >= 4.4:
# --max-connections), while makePSOCKcluster() starts every worker before it
# finds that none is left.
check_workers_fit <- function(n, backend, arg = "n") {
  memory <- .Call(shmr_physical_memory)
  if (!is.na(memory) && n * worker_bytes > memory) {
    stop(sprintf(paste("`%s` = %s workers cannot fit in this machine's %s of memory: each is an R",
                       "process that needs at least %s (at most %d here)"),
                 arg, format_count(n), format_bytes(memory),
                 format_bytes(worker_bytes), as.integer(memory %/% worker_bytes)), call. = FALSE)
  }
  if (backend == "psock") {
    table_size <- connection_table_size()
    # One more for the socket makePSOCKcluster() listens on.
    free <- table_size - nrow(showConnections(all = TRUE)) - 1L
    if (n > free) {
      stop(sprintf(paste("`%s` = %s PSOCK workers need a connection each, and this R session has",
                         "%d free (R allows %d in all%s); use fewer workers, or backend = \"mirai\""),
                   arg, format_count(n), max(free, 0L), table_size,
                   if (getRversion() >= "4.4.0") ", more when started with --max-connections" else ""),
           call. = FALSE)
    }
  }
  invisible()
}

worker_bytes <- 32 * 1024^2

format_bytes <- function(bytes) {
  format(structure(bytes, class = "object_size"), units = "auto", standard = "IEC")
}

# The size of R's connection table: 128, or on R >= 4.4 what
# --max-connections set (R ignores values outside 128..4096).
connection_table_size <- function() {
  given <- grep("^--max-connections=", commandArgs(), value = TRUE)
  size <- suppressWarnings(as.integer(sub("^--max-connections=", "", given[length(given)])))
  if (getRversion() >= "4.4.0" && length(size) && !is.na(size) && size >= 128L && size <= 4096L) {
    size
  } else {
    128L
  }
}

# The compute profile whose connected daemons a mirai pool uses, or NULL for
# a pool that starts its own `n` daemons on this host: `compute` when given;
# with neither `n` nor `compute`, mirai's default profile when
# mirai::daemons() set it up (its daemons may still be starting).
mirai_compute <- function(backend, n, compute) {
  if (!is.null(compute)) {
    if (backend != "mirai") stop("`compute` needs backend = \"mirai\"", call. = FALSE)
    if (!is.character(compute) || length(compute) != 1L || is.na(compute)) {
      stop("`compute` must be the name of a mirai compute profile", call. = FALSE)
    }
    if (!is.null(n)) {
      stop("give `n` (the pool starts n daemons on this host) or `compute` (the pool uses the ",
           "daemons connected to that profile), not both", call. = FALSE)
    }
    return(compute)
  }
  if (backend == "mirai" && is.null(n) && requireNamespace("mirai", quietly = TRUE) &&
      mirai_profile_set("default")) {
    return("default")
  }
  NULL
}

new_pool_object <- function(backend, n, packages, init) {
  pool <- new.env(parent = emptyenv())
  class(pool) <- "shmr_pool"
  pool$backend <- backend
  # Only this process reads its workers' replies (see check_pool_process()).
  pool$owner_pid <- Sys.getpid()
  pool$n <- as.integer(n)
  pool$packages <- packages
  pool$init <- init
  pool$tasks_done <- integer(n)
  pool$recycled <- integer(n)
  # PSOCK: chunks sent to each worker whose replies have not been read
  # (see dispatch_psock()).
  pool$in_flight <- integer(n)
  # Chunks sent again after their worker was lost, in all calls (see
  # pool_map()).
  pool$chunks_resent <- 0L
  # Workers killed and not yet replaced (see kill_worker()).
  pool$killed <- logical(n)
  # Each worker's session directory (tempdir()), which the pool removes
  # when the worker ends without R's exit (see forget_worker()).
  pool$tempdirs <- rep(NA_character_, n)
  pool$departed <- data.frame(pid = integer(), dir = character())
  # The directories holding the session directories of the PSOCK workers
  # each start made (see launch_directory()), until they are empty.
  pool$launch_dirs <- character()
  # Whether sweep_departed() may find something to remove (see there).
  pool$sweep_due <- FALSE
  pool$stopped <- FALSE
  pool
}

# A pool that runs on an existing PSOCK (or fork) cluster of the caller's,
# for the maps of the memshare layer. Its workers load shmr. Stopping it
# leaves the cluster running: it belongs to the caller.
pool_on_cluster <- function(cluster) {
  if (!inherits(cluster, "cluster") || !length(cluster) ||
      !all(vapply(cluster, function(node) inherits(node$con, "connection"), TRUE))) {
    stop("`CLUSTER` must be a socket cluster from parallel::makeCluster()", call. = FALSE)
  }
  check_cluster_running(cluster, "CLUSTER")
  pool <- new_pool_object("psock", length(cluster), NULL, NULL)
  pool$cluster <- cluster
  pool$borrowed <- TRUE
  record_workers(pool, parallel::clusterCall(cluster, worker_setup_function(), NULL, NULL,
                                             .libPaths()))
  pool
}

#' @rdname pools
#' @export
pool_stop <- function(pool = NULL, timeout = 5) {
  pool <- pool %||% pools$default
  if (is.null(pool)) return(invisible(NULL))
  check_pool(pool)
  if (isTRUE(pool$stopped)) return(invisible(NULL))
  if (!is.numeric(timeout) || length(timeout) != 1L || is.na(timeout) || timeout < 0) {
    stop("`timeout` must be a number of seconds >= 0", call. = FALSE)
  }
  if (pool$backend == "mirai") {
    # Daemons it did not start keep running, without this owner's copies.
    stop_mirai(pool)
  } else if (isTRUE(pool$borrowed)) {
    # Not ours to stop.
  } else {
    # Node by node: one whose connection is gone (a worker abandoned by an
    # interrupted call) must not keep the others running.
    for (w in seq_along(pool$cluster)) {
      if (pool$in_flight[w] > 0L && !isTRUE(pool$killed[w])) tools::pskill(pool$pids[w], tools::SIGKILL)
      # A worker whose connection is closed has seen its end and exits.
      if (worker_connection_open(pool$cluster[[w]])) {
        try(parallel::stopCluster(pool$cluster[w]), silent = TRUE)
      }
    }
  }
  pool$stopped <- TRUE
  if (identical(pools$default, pool)) pools$default <- NULL
  if (!isTRUE(pool$borrowed)) {
    # Those killed above, once gone; the others remove their own.
    for (w in seq_along(pool$pids)) forget_worker(pool, w)
    wait_for_exit(pool$pids, timeout)
    sweep_departed(pool)
  }
  invisible(NULL)
}

# Waits until the processes `pids` have exited, for at most `timeout` seconds.
wait_for_exit <- function(pids, timeout) {
  deadline <- Sys.time() + timeout
  while (any(vapply(pids, process_alive, TRUE)) && Sys.time() < deadline) Sys.sleep(0.01)
}

# Without it, close() of a pool would reach close.default(), find no shared
# object and leave every worker running.
#' @rdname pools
#' @export
close.shmr_pool <- function(con, ...) {
  pool_stop(con)
}

#' @rdname pools
#' @export
pool_status <- function(pool = NULL) {
  pool <- pool %||% pools$default
  if (is.null(pool)) stop("there is no pool; create one with pool_create()", call. = FALSE)
  check_pool(pool, running = TRUE)
  if (pool$backend == "mirai") return(mirai_status(pool))
  memory <- lapply(pool$pids, function(pid) {
    m <- process_memory(pid)
    c(rss = m[["rss"]], uss = m[["private"]], anonymous = m[["anonymous"]],
      shared = region_bytes_mapped(pid))
  })
  data.frame(
    worker = seq_along(pool$pids), host = host_identity(), pid = as.integer(pool$pids),
    status = ifelse(vapply(pool$pids, process_alive, TRUE), "ok", "dead"),
    tasks_done = pool$tasks_done, recycled = pool$recycled,
    rss = vapply(memory, `[[`, 0, "rss"), uss = vapply(memory, `[[`, 0, "uss"),
    anonymous = vapply(memory, `[[`, 0, "anonymous"),
    shared_mapped = vapply(memory, `[[`, 0, "shared")
  )
}

#' @export
print.shmr_pool <- function(x, ...) {
  state <- if (isTRUE(x$stopped)) "stopped" else paste(length(x$pids), "workers")
  cat(sprintf("<shmr pool: %s, %s>\n", x$backend, state))
  invisible(x)
}

`%||%` <- function(a, b) if (is.null(a)) b else a

check_pool <- function(pool, running = FALSE) {
  if (!is_pool(pool)) stop("`pool` must be a pool from pool_create()", call. = FALSE)
  check_pool_process(pool)
  if (running && isTRUE(pool$stopped)) stop("the pool was stopped", call. = FALSE)
}

# A pool that new_pool_object() made: an object given the class by hand
# would fail later, inside the code that uses its fields.
is_pool <- function(pool) {
  inherits(pool, "shmr_pool") && is.environment(pool) && is.character(pool$backend) &&
    length(pool$backend) == 1L && is.numeric(pool$n)
}

# A forked child (mclapply()) inherits the pool's connections: children
# using them at once would read each other's replies and wait forever.
check_pool_process <- function(pool) {
  owner <- pool$owner_pid
  if (is.null(owner) || identical(owner, Sys.getpid())) return(invisible())
  stop(sprintf(paste0(
    "this pool belongs to process %d, which created it: a forked child of it ",
    "(parallel::mclapply(), mcparallel()) cannot use its workers. Run the map in process %d, ",
    "or create a pool in the child"), owner, owner), call. = FALSE)
}

usable_cores <- function() {
  n <- getOption("mc.cores", NA_integer_)
  if (is.na(n)) n <- parallel::detectCores(logical = TRUE)
  if (is.na(n) || n < 1) n <- 1L
  if (nzchar(Sys.getenv("_R_CHECK_LIMIT_CORES_"))) n <- min(n, 2L)
  as.integer(n)
}

# Code run on every new worker. It is sent with the global environment as
# its enclosure (see worker_setup_function()), so that a worker unserializes
# it before shmr is loaded: it first puts the caller's library paths
# (`libs`) ahead of its own, where shmr and `packages` are found as in the
# caller (paths that do not exist there are dropped).
worker_setup <- function(packages, init, libs) {
  .libPaths(unique(c(libs, .libPaths())))
  suppressPackageStartupMessages(library(shmr))
  for (p in packages) suppressPackageStartupMessages(library(p, character.only = TRUE))
  if (is.function(init)) init() else if (!is.null(init)) eval(init, globalenv())
  list(pid = Sys.getpid(), tempdir = tempdir())
}

# Workers `w` of the pool are those that answered worker_setup() (or a
# mirai daemon's survey) with `answers`. A daemon on another host may run
# a shmr that does not report its session directory.
record_workers <- function(pool, answers, w = seq_along(answers)) {
  pool$pids[w] <- vapply(answers, function(a) as.integer(a$pid), 0L)
  pool$killed[w] <- FALSE
  pool$tempdirs[w] <- vapply(answers, function(a) a$tempdir %||% NA_character_, "")
}

# Stops worker `w` of a pool of the package's own at once, and removes its
# session directory once it is gone. Once only: after the kill its pid may
# name another process, so a second call before the worker is replaced
# (abandon_chunks() and then replace_abandoned_workers()) sends nothing.
kill_worker <- function(pool, w) {
  if (isTRUE(pool$killed[w])) return(invisible())
  tools::pskill(pool$pids[w], tools::SIGKILL)
  pool$killed[w] <- TRUE
  wait_for_exit(pool$pids[w], 2)
  forget_worker(pool, w)
  sweep_departed(pool)
}

# R removes its session directory (tempdir()) when it exits, not when it is
# killed or dies. Worker `w` has ended or is ending: its directory goes on
# the pool's list of departed workers, and sweep_departed() removes it once
# the process is gone. A worker that dies closes its connection before the
# system has taken its process down, so the pool cannot remove the
# directory at the moment it notices; nor can it wait for every worker it
# replaces (a recycled one is still running, and removes its own).
# Never a borrowed cluster's (a fork cluster's workers share the caller's),
# never one on another host, never this process's.
forget_worker <- function(pool, w) {
  dir <- pool$tempdirs[w]
  pool$tempdirs[w] <- NA_character_
  # Its start's directory may now hold no current worker's.
  pool$sweep_due <- TRUE
  elsewhere <- !is.null(pool$local_host) && length(pool$hosts) >= w &&
    !identical(pool$hosts[w], pool$local_host)
  if (isTRUE(pool$borrowed) || elsewhere || length(dir) != 1L || is.na(dir) ||
      !grepl("^Rtmp", basename(dir)) ||
      identical(normalizePath(dir, mustWork = FALSE), normalizePath(tempdir(), mustWork = FALSE))) {
    return(invisible())
  }
  pool$departed <- rbind(pool$departed, data.frame(pid = pool$pids[w], dir = dir))
  invisible()
}

# Removes the session directories of the departed workers whose processes
# are gone, and the regions they left (a killed or crashed worker removes
# neither), after waiting at most `wait` seconds for them; the others stay
# listed for the next sweep (at each map and at pool_stop()). A sweep is
# due only once a worker departed or a start was made (forget_worker(),
# set_up_psock_nodes()), and until what they left is gone: a map on a
# settled pool pays a look at one flag, not at the file system.
sweep_departed <- function(pool, wait = 0) {
  if (isFALSE(pool$sweep_due)) return(invisible())
  departed <- pool$departed
  if (NROW(departed)) {
    wait_for_exit(departed$pid, wait)
    gone <- !vapply(departed$pid, process_alive, TRUE)
    # The regions first: a file-backed one keeps its data in the directory.
    if (any(gone)) prune_regions_of(departed$pid[gone])
    unlink(departed$dir[gone], recursive = TRUE)
    # A directory already gone (its worker exited as usual) needs no sweep.
    pool$departed <- departed[!gone & dir.exists(departed$dir), , drop = FALSE]
  }
  remove_empty_launch_directories(pool)
  pool$sweep_due <- NROW(pool$departed) > 0L || length(vacated_launch_directories(pool)) > 0L
  invisible()
}

# A start's directory is empty once each of its workers has removed its
# session directory (at its exit) or the pool has (sweep_departed()): a live
# worker's is there as long as it runs, so an empty one holds no live
# worker's. Only those holding no current worker's are looked at.
remove_empty_launch_directories <- function(pool) {
  for (dir in vacated_launch_directories(pool)) {
    if (dir.exists(dir) && !length(list.files(dir, all.files = TRUE, no.. = TRUE))) {
      suppressWarnings(file.remove(dir))
    }
  }
  pool$launch_dirs <- pool$launch_dirs[dir.exists(pool$launch_dirs)]
  invisible()
}

# The start directories in which no current worker has its session
# directory (a worker's tempdir() is made directly inside its start's):
# the only ones that can have become empty.
vacated_launch_directories <- function(pool) {
  setdiff(pool$launch_dirs, dirname(pool$tempdirs[!is.na(pool$tempdirs)]))
}

# worker_setup(), to be called on a worker with the caller's .libPaths() as
# `libs`: for every backend that starts or borrows workers.
worker_setup_function <- function() {
  setup <- worker_setup
  environment(setup) <- globalenv()
  setup
}

# Runs `code` with the environment variable R_LIBS holding the caller's
# .libPaths(), for launching R processes (such as local mirai daemons) that
# must find the packages the caller finds.
with_worker_libs <- function(code) {
  old <- Sys.getenv("R_LIBS", unset = NA)
  on.exit(if (is.na(old)) Sys.unsetenv("R_LIBS") else Sys.setenv(R_LIBS = old))
  Sys.setenv(R_LIBS = paste(.libPaths(), collapse = .Platform$path.sep))
  force(code)
}

# --- PSOCK ---------------------------------------------------------------

# `launch` (from launch_tag()) is written into each worker's command line,
# where stop_launched() finds the workers of a start that was interrupted.
# With `dir` (from launch_directory()), the workers make their session
# directories in it.
#
# parallel writes its timeouts (120 and 2592000 seconds) into the workers'
# command line with paste0(), which under options(scipen = -3) or less and
# options(OutDec = ",") writes "2,592e+06": a worker reads that as NA and
# never connects, and makePSOCKcluster() waits 4 minutes before it fails.
# They are written here as R writes them by default.
new_psock_nodes <- function(n, launch, dir = NULL) {
  old <- options(socketOptions = "no-delay", scipen = 0, OutDec = ".")
  on.exit(options(old))
  if (!is.null(dir)) {
    old_tmpdir <- Sys.getenv("TMPDIR", unset = NA)
    on.exit(if (is.na(old_tmpdir)) Sys.unsetenv("TMPDIR") else Sys.setenv(TMPDIR = old_tmpdir),
            add = TRUE)
    Sys.setenv(TMPDIR = dir)
  }
  parallel::makePSOCKcluster(
    n, useXDR = FALSE,
    rscript_args = c("-e", shQuote("options(socketOptions = 'no-delay')"),
                     "-e", shQuote(sprintf("invisible('%s')", launch)),
                     "-e", shQuote("invisible(try(shmr:::close_inherited_sockets(), silent = TRUE))"))
  )
}

# In a process shmr starts through system() (a PSOCK worker, the region
# server), before it opens sockets of its own: see
# shmr_close_inherited_sockets().
close_inherited_sockets <- function() .Call(shmr_close_inherited_sockets)

# A word that names one start of workers, and nothing else; the caller's
# random numbers are left as they were.
launch_tag <- function() {
  # tempfile() draws its letters without touching R's random number stream.
  basename(tempfile(paste0("shmr-launch-", Sys.getpid(), "-")))
}

# The processes of this machine whose command line holds `launch`; NULL
# when they cannot all be looked at (no file descriptor left).
launched_pids <- function(launch) {
  pids <- .Call(shmr_processes_mentioning, launch)
  if (is.null(pids)) NULL else as.integer(pids)
}

# A directory for the session directories (tempdir()) of the workers of the
# start `launch`, in this process's own session directory; NULL when there
# is none. R removes a session directory when it exits, never when it is
# killed, and a worker killed before it has answered its set-up (an
# interrupted start, or SIGKILL, see stop_launched()) has told the pool
# neither its process nor its directory: R's names for these directories
# (RtmpXXXXXX) say nothing of whose they are. Once no process of the start
# runs, its directory holds none but theirs, and goes whole. Inside this
# process's own, it also goes when this process exits. None when the
# environment (TMPDIR, TMP or TEMP) sends new R processes elsewhere than
# where this one made its own: workers then use the directory the user
# chose.
launch_directory <- function(launch) {
  here <- dirname(tempdir())
  chosen <- Filter(function(d) nzchar(d) && dir.exists(d) && file.access(d, 2L) == 0L,
                   Sys.getenv(c("TMPDIR", "TMP", "TEMP")))
  workers_dir <- if (length(chosen)) chosen[[1]] else "/tmp"
  if (!identical(normalizePath(workers_dir, mustWork = FALSE), normalizePath(here, mustWork = FALSE))) {
    return(NULL)
  }
  dir <- file.path(tempdir(), launch)
  if (!dir.create(dir, showWarnings = FALSE, mode = "0700")) return(NULL)
  dir
}

# Removes the directory `dir` of the start `launch` once none of its
# workers runs (`stopped`, from stop_launched()); kept when that cannot be
# told: a live worker's session directory is in it.
remove_launch_directory <- function(dir, stopped) {
  if (!is.null(dir) && isTRUE(stopped)) unlink(dir, recursive = TRUE)
  invisible()
}

# Ends the workers of the start `launch` that no pool took: a start that an
# interrupt (or an error) cut short leaves workers the caller has no handle
# on, some still connecting to a port that is closed, which would wait
# minutes, or join the next pool started on that port. SIGTERM ends them
# at any stage, their set-up included (an interrupt would only end that
# task), and shmr's handler, where it is loaded, removes their regions. Not
# SIGUSR1 or SIGUSR2, with which R ends by saving a changed workspace to
# .RData in its working directory, the caller's: a user's own .RData there
# would be overwritten. A killed worker leaves its session directory, as
# after SIGKILL (see remove_launch_directory()). One still running after
# `wait` seconds is killed; one seen in its first `grace` seconds is left to
# end by itself (a worker told to stop). TRUE once no process of the start
# is left, FALSE when one may be.
stop_launched <- function(launch, wait = 3, grace = 0) {
  # When each process seen gets SIGTERM, in seconds from the start.
  due <- numeric()
  termed <- character()
  start <- Sys.time()
  repeat {
    pids <- launched_pids(launch)
    if (is.null(pids)) return(FALSE)
    pids <- setdiff(pids, Sys.getpid())
    if (!length(pids)) return(TRUE)
    now <- as.numeric(Sys.time() - start, units = "secs")
    for (pid in pids) {
      key <- as.character(pid)
      if (is.na(due[key])) due[key] <- max(now, grace)
      if (now >= due[[key]] && !key %in% termed) {
        tools::pskill(pid, tools::SIGTERM)
        termed <- c(termed, key)
      }
      if (now - due[[key]] > wait) tools::pskill(pid, tools::SIGKILL)
    }
    if (now > 2 * wait + grace) return(FALSE)
    Sys.sleep(0.2)
  }
}

# Starting workers takes file descriptors here: makePSOCKcluster() keeps
# one for each worker's socket and one for the socket it listens on (mirai
# as many for its listener and daemons), and the shell that starts a worker
# inherits the limit and this process's descriptors, and needs a pipe and
# a copy of one more. Without them, makePSOCKcluster() waits twice its
# setup_timeout, 4 minutes by default, to say "Cluster setup failed", and
# mirai::daemons() never returns: refused at once here, naming the limit
# (ulimit -n). NA (no limit, or unknown) is no refusal.
check_descriptors_free <- function(n) {
  free <- .Call(shmr_free_descriptors)
  needed <- max(n + 1, 4)
  if (!is.na(free) && free < needed) {
    stop(sprintf(paste("starting %d worker%s needs %d free file descriptors and this",
                       "process has %d (its limit on open files, `ulimit -n`, is reached):",
                       "close files or connections no longer needed, or raise the limit"),
                 n, if (n == 1) "" else "s", needed, as.integer(free)), call. = FALSE)
  }
  invisible()
}

# A socket cluster given to stopCluster() keeps its nodes, whose
# connections are closed: parallel's own error would be "invalid
# connection". Nodes of other kinds (a mirai cluster's) have no connection.
check_cluster_running <- function(cluster, arg) {
  sockets <- Filter(function(node) inherits(node$con, "connection"), cluster)
  if (!all(vapply(sockets, worker_connection_open, TRUE))) {
    stop(sprintf("`%s` was stopped (parallel::stopCluster()): its workers cannot be reached", arg),
         call. = FALSE)
  }
}

# R gives a closed connection's number to the next connection it opens, and
# close(), readBin() and writeBin() on an old connection object act on
# whatever connection now has its number. A worker's connection is used
# only while it is still the one the worker was given, or a second close
# would close another worker's (the pool then waits for it forever) or the
# caller's own.
worker_connection_open <- function(node) connection_is_current(node$con)

# Whether the connection object `con` still names the connection it was
# made for. getConnection() is asked only about a number in use, where it
# cannot fail (no tryCatch(), which cost more than the rest: this runs for
# every worker at every map).
connection_is_current <- function(con) {
  if (!inherits(con, "connection")) return(FALSE)
  number <- as.integer(con)
  if (!number %in% getAllConnections()) return(FALSE)
  identical(attr(getConnection(number), "conn_id"), attr(con, "conn_id"))
}

close_worker_connection <- function(node) {
  if (worker_connection_open(node)) try(close(node$con), silent = TRUE)
  invisible()
}

start_psock <- function(pool) {
  started <- set_up_psock_nodes(pool, pool$n)
  pool$cluster <- started$nodes
  reg.finalizer(pool, close_dropped_pool)
  record_workers(pool, started$answers)
}

# A pool collected without pool_stop(): its workers end when they see their
# connections close. R closes an unused connection in a finalizer of its
# own that warns first, and under options(warn = 2) (which R 4.2's table()
# leaves set after an error) that warning is an error which leaves the
# connection open, and the worker running, for the rest of the session.
# close() does not warn; a connection R has closed already is left alone
# (see worker_connection_open()).
close_dropped_pool <- function(pool) {
  if (isTRUE(pool$stopped)) return(invisible())
  for (node in pool$cluster) close_worker_connection(node)
  invisible()
}

# `n` new PSOCK workers, set up for the pool, and their answers. Workers
# whose set-up fails (an error in `init`, a missing package) are stopped
# before the error is raised: nothing else would stop them, and they would
# wait until their connections were collected.
#
# An interrupt while the workers start or are set up (Ctrl-C during
# pool_create(), or during a map that replaces a worker) leaves workers that
# no pool holds: they are ended before the interrupt goes on. The session
# directories of workers that were killed or died before their set-up
# answered, which the pool never learnt, go with their start's directory
# (launch_directory()).
set_up_psock_nodes <- function(pool, n) {
  check_descriptors_free(n)
  launch <- launch_tag()
  dir <- launch_directory(launch)
  nodes <- NULL
  withCallingHandlers({
    nodes <- new_psock_nodes(n, launch, dir)
    answers <- tryCatch(
      parallel::clusterCall(nodes, worker_setup_function(), pool$packages, pool$init, .libPaths()),
      error = function(e) {
        try(parallel::stopCluster(nodes), silent = TRUE)
        # stopCluster() leaves the connections to the garbage collector, which
        # warns as it closes each one.
        for (node in nodes) close_worker_connection(node)
        # Told to stop, the workers end by themselves, those still in their
        # set-up once it is done: they are given a second, then ended.
        suspendInterrupts(remove_launch_directory(dir, stop_launched(launch, grace = 1)))
        stop(worker_failure(e, "while it was set up (`init` or loading `packages`)"))
      })
  }, interrupt = function(e) {
    suspendInterrupts({
      for (node in nodes) close_worker_connection(node)
      remove_launch_directory(dir, stop_launched(launch))
    })
  }, error = function(e) {
    # makePSOCKcluster() failing (a worker that never connected) leaves the
    # others running too.
    if (is.null(nodes)) suspendInterrupts(remove_launch_directory(dir, stop_launched(launch)))
  })
  pool$launch_dirs <- c(pool$launch_dirs, dir)
  pool$sweep_due <- TRUE
  list(nodes = nodes, answers = answers)
}

# The error of a call to PSOCK workers as the user can act on it: parallel
# reports a worker that exited as "error reading from connection" in its
# own unserialize() call, and a worker's error with "one node produced an
# error: " and its own checkForRemoteErrors() call.
worker_failure <- function(e, when, exit_note = "") {
  message <- conditionMessage(e)
  message <- if (is_worker_exit(e)) {
    sprintf("a worker exited %s%s", when, exit_note)
  } else {
    sprintf("error on a worker %s: %s", when, sub("^one node produced an error: ", "", message))
  }
  errorCondition(message, class = "shmr_worker_error", call = NULL)
}

# Whether error `e` of a call to PSOCK workers is a worker's exit. R raises
# that read error in the session's language, so the English text alone
# would read a German session's dead worker as a worker's error.
is_worker_exit <- function(e) {
  english <- "error reading from connection"
  said <- unique(c(english, gettext(english, domain = "R", trim = FALSE)))
  any(vapply(said, grepl, NA, x = conditionMessage(e), fixed = TRUE))
}

# Replaces worker `w` with a fresh one after a chunk when its resident
# memory has grown past the pool's rss_limit.
recycle_if_grown <- function(pool, w) {
  if (is.null(pool$rss_limit)) return(invisible())
  rss <- process_memory(pool$pids[w])[["rss"]]
  if (!is.na(rss) && rss > pool$rss_limit) {
    replace_psock_worker(pool, w)
    pool$recycled[w] <- pool$recycled[w] + 1L
  }
}

# Replaces worker `w` (which died, grew, or was abandoned) with a fresh
# one. The pool changes only once the new worker is ready, in one step that
# an interrupt cannot split.
replace_psock_worker <- function(pool, w) {
  close_worker_connection(pool$cluster[[w]])
  forget_worker(pool, w)
  started <- set_up_psock_nodes(pool, 1L)
  suspendInterrupts({
    pool$cluster[[w]] <- started$nodes[[1]]
    record_workers(pool, started$answers, w)
    pool$in_flight[w] <- 0L
  })
}
