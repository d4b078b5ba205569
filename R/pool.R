#' Worker pools
#'
#' A pool is a set of R worker processes on this machine, started by an
#' existing engine: base R's `parallel` (PSOCK sockets, the default) or
#' `mirai` daemons. [pool_lapply()], [pool_sapply()] and [pool_apply()] run
#' work on it; shared objects travel to the workers as names.
#'
#' `pool_create()` starts `n` workers, loads shmr and `packages` on each, runs
#' `init` (a function of no arguments, or an expression) on each, and makes
#' the pool the default for the `pool_*()` maps; `pool_get()` returns the
#' default pool. PSOCK sockets use the
#' `"no-delay"` option at both ends, so a message does not wait for the
#' operating system's small-packet delay.
#'
#' @param n Number of workers. By default the number of usable cores: the
#'   option `mc.cores` when set, else [parallel::detectCores()], at most 2
#'   when the environment variable `_R_CHECK_LIMIT_CORES_` is set (as under
#'   `R CMD check`).
#' @param timeout Seconds `pool_stop()` waits at most for the workers to
#'   exit.
#' @param backend `"psock"` (default) or `"mirai"`.
#' @param compute For `backend = "mirai"`: the name of a mirai compute
#'   profile whose connected daemons, on this host or others, the pool uses
#'   (`"default"` for the profile of [mirai::daemons()] without `.compute`).
#'   Give `n` or `compute`, not both. Without either, the pool uses the
#'   daemons connected to mirai's default profile when there are any, else
#'   starts its own daemons on this host. A pool does not stop daemons it did
#'   not start, and does not replace them when they die: a dead daemon on
#'   another host is not replaced by one on this host (`pool_status()` shows
#'   it as `"dead"`). Daemons the pool started itself are replaced, on this
#'   host. A pool whose workers are not all on this host sends shared
#'   objects in remote mode (see [remote]).
#' @param packages Character vector of packages to attach on every worker.
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
#' @return `pool_create()`: the pool (class `shmr_pool`), invisibly.
#'   `pool_get()`: the default pool, or `NULL` when there is none.
#'   `pool_stop()`: `NULL`, invisibly, once the workers have exited (or
#'   `timeout` passed). `pool_status()`: a data frame with one row per
#'   worker: `worker`, `host` (the host identity of its host, see
#'   [remote]), `pid` (on that host), `status` (`"ok"`, or `"dead"` for a worker
#'   that is no longer running), `tasks_done` (elements computed),
#'   `recycled` (times the worker was replaced for exceeding `rss_limit`),
#'   `rss` (resident bytes), `uss` (unique set size: bytes mapped by this
#'   worker alone, which also counts pages of a shared region that no other
#'   process happens to have touched), `anonymous` (bytes of the worker's
#'   own memory: its R heap and pages it copied; this is what grows when
#'   data is copied into a worker), and `shared_mapped` (bytes of shmr
#'   regions it has mapped).
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
  backend <- match.arg(backend)
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
    upper <- toupper(size)
    parts <- regmatches(upper, regexec("^\\s*([0-9.]+)\\s*([KMGT]?B)?\\s*$", upper))[[1]]
    if (length(parts) == 3L && !is.na(suppressWarnings(as.numeric(parts[2])))) {
      unit <- if (nzchar(parts[3])) parts[3] else "B"
      return(as.numeric(parts[2]) * 1024^units[[unit]])
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
  if (!is.null(packages) && !is.character(packages)) {
    stop("`packages` must be a character vector", call. = FALSE)
  }
  if (!is.null(init) && !is.function(init) && !is.language(init)) {
    stop("`init` must be NULL, a function or a quoted expression", call. = FALSE)
  }
  pool <- new_pool_object(backend, n, packages, init)
  if (backend == "psock") start_psock(pool) else start_mirai(pool, compute)
  pool
}

# The compute profile whose connected daemons a mirai pool uses, or NULL for
# a pool that starts its own `n` daemons on this host: `compute` when given;
# with neither `n` nor `compute`, mirai's default profile when daemons are
# connected to it.
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
      isTRUE(tryCatch(mirai::status()$connections > 0, error = function(e) FALSE))) {
    return("default")
  }
  NULL
}

new_pool_object <- function(backend, n, packages, init) {
  pool <- new.env(parent = emptyenv())
  class(pool) <- "shmr_pool"
  pool$backend <- backend
  pool$n <- as.integer(n)
  pool$packages <- packages
  pool$init <- init
  pool$tasks_done <- integer(n)
  pool$recycled <- integer(n)
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
  pool <- new_pool_object("psock", length(cluster), NULL, NULL)
  pool$cluster <- cluster
  pool$borrowed <- TRUE
  pool$pids <- unlist(parallel::clusterCall(cluster, worker_setup, NULL, NULL))
  pool
}

#' @rdname pools
#' @export
pool_stop <- function(pool = NULL, timeout = 5) {
  pool <- pool %||% pools$default
  if (is.null(pool) || isTRUE(pool$stopped)) return(invisible(NULL))
  check_pool(pool)
  if (!is.numeric(timeout) || length(timeout) != 1L || is.na(timeout) || timeout < 0) {
    stop("`timeout` must be a number of seconds >= 0", call. = FALSE)
  }
  if (isTRUE(pool$borrowed)) {
    # Not ours to stop.
  } else if (pool$backend == "psock") {
    try(parallel::stopCluster(pool$cluster), silent = TRUE)
  } else {
    stop_mirai(pool)
  }
  pool$stopped <- TRUE
  if (identical(pools$default, pool)) pools$default <- NULL
  if (!isTRUE(pool$borrowed)) wait_for_exit(pool$pids, timeout)
  invisible(NULL)
}

# Waits until the processes `pids` have exited, for at most `timeout` seconds.
wait_for_exit <- function(pids, timeout) {
  deadline <- Sys.time() + timeout
  while (any(vapply(pids, process_alive, TRUE)) && Sys.time() < deadline) Sys.sleep(0.01)
}

#' @rdname pools
#' @export
pool_status <- function(pool = NULL) {
  pool <- pool %||% pools$default
  if (is.null(pool)) stop("there is no pool; create one with pool_create()", call. = FALSE)
  check_pool(pool, running = TRUE)
  if (pool$backend == "mirai") return(mirai_status(pool))
  memory <- lapply(pool$pids, function(pid) {
    m <- tryCatch(suppressWarnings(process_memory(pid)),
                  error = function(e) c(rss = NA_real_, private = NA_real_, anonymous = NA_real_))
    c(rss = m[["rss"]], uss = m[["private"]], anonymous = m[["anonymous"]],
      shared = shared_bytes_mapped(pid))
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
  if (!inherits(pool, "shmr_pool")) stop("`pool` must be a pool from pool_create()", call. = FALSE)
  if (running && isTRUE(pool$stopped)) stop("the pool was stopped", call. = FALSE)
}

usable_cores <- function() {
  n <- getOption("mc.cores", NA_integer_)
  if (is.na(n)) n <- parallel::detectCores(logical = TRUE)
  if (is.na(n) || n < 1) n <- 1L
  if (nzchar(Sys.getenv("_R_CHECK_LIMIT_CORES_"))) n <- min(n, 2L)
  as.integer(n)
}

# Bytes of shmr regions mapped by a process, from /proc/<pid>/maps.
shared_bytes_mapped <- function(pid) {
  maps <- tryCatch(readLines(sprintf("/proc/%d/maps", pid)), error = function(e) character())
  maps <- maps[grepl("/shmr_[^/]*( \\(deleted\\))?$", maps)]
  if (!length(maps)) return(0)
  ranges <- do.call(rbind, strsplit(sub(" .*$", "", maps), "-", fixed = TRUE))
  sum(strtoi_hex(ranges[, 2]) - strtoi_hex(ranges[, 1]))
}

# Hexadecimal addresses can exceed what strtoi() handles; go digit by digit.
strtoi_hex <- function(x) {
  vapply(x, function(h) {
    digits <- match(strsplit(tolower(h), "")[[1]], c(0:9, letters[1:6])) - 1
    sum(digits * 16^(rev(seq_along(digits)) - 1))
  }, 0, USE.NAMES = FALSE)
}

# Code run on every new worker.
worker_setup <- function(packages, init) {
  suppressPackageStartupMessages(library(shmr))
  for (p in packages) suppressPackageStartupMessages(library(p, character.only = TRUE))
  if (is.function(init)) init() else if (!is.null(init)) eval(init, globalenv())
  Sys.getpid()
}

# --- PSOCK ---------------------------------------------------------------

new_psock_nodes <- function(n) {
  old <- options(socketOptions = "no-delay")
  on.exit(options(old))
  parallel::makePSOCKcluster(
    n, useXDR = FALSE,
    rscript_args = c("-e", shQuote("options(socketOptions = 'no-delay')"))
  )
}

start_psock <- function(pool) {
  pool$cluster <- new_psock_nodes(pool$n)
  pool$pids <- unlist(parallel::clusterCall(pool$cluster, worker_setup, pool$packages, pool$init))
}

# Replaces worker `w` with a fresh one after a chunk when its resident
# memory has grown past the pool's rss_limit.
recycle_if_grown <- function(pool, w) {
  if (is.null(pool$rss_limit)) return(invisible())
  rss <- tryCatch(process_memory(pool$pids[w])[["rss"]], error = function(e) NA_real_)
  if (!is.na(rss) && rss > pool$rss_limit) {
    replace_psock_worker(pool, w)
    pool$recycled[w] <- pool$recycled[w] + 1L
  }
}

# Replaces worker `w` (which died, or grew) with a fresh one.
replace_psock_worker <- function(pool, w) {
  try(close(pool$cluster[[w]]$con), silent = TRUE)
  node <- new_psock_nodes(1)
  pool$cluster[[w]] <- node[[1]]
  pool$pids[w] <- parallel::clusterCall(node, worker_setup, pool$packages, pool$init)[[1]]
}
