#' Migrating from shard
#'
#' Code written for shard's shared inputs, segments and worker pools runs on
#' shmr once `library(shard)` becomes `library(shmr)` (and `shard::f`
#' becomes `shmr::f`). shmr has shard's [share()] (with `backing`,
#' `readonly`, `name`, `deep`, `min_bytes`, `cycle` and `mode`), [fetch()]
#' and its alias `materialize()`, [close()], [is_shared()], [shared_info()],
#' `share_open()`, `is_shared_vector()`, `as_shared()`, `shared_advise()`,
#', `available_backings()`, the segment functions
#' ([segment_create()], [segment_open()], [segment_read()],
#' [segment_write()], [segment_protect()], [segment_info()],
#' [segment_path()], [segment_size()], [segment_advise()],
#' [segment_close()], `segment_report()`), the hook generic
#' [shard_share_hook()] (see [share_hook()]) and the pool functions
#' ([pool_create()], [pool_get()], [pool_lapply()], [pool_sapply()],
#' [pool_status()], [pool_stop()], `pool_dispatch()`,
#' `pool_health_check()`). Arguments have shard's names (`segment_read(x
#' = seg)`, `segment_open(path = p)`).
#'
#' * `share_open(path)` opens a share from the path of its file (as given by
#'   `shared_info(x)$path`), the path given to `share(name = )`, or its
#'   name; `materialize()` is [fetch()].
#' * `share(x, backing = "mmap", name = tempfile())`: a path as the name
#'   makes a file-backed share whose file is in that path's directory
#'   (named `shmr_` and the path's last part); the path reopens it with
#'   `share_open()` ([segment_open()] opens only segments).
#' * [close()] works on anything [share()] returned; when nothing was
#'   shared (an environment, a deep share that found nothing above
#'   `min_bytes`) it does nothing.
#' * `segment_info(seg)$readonly` is `TRUE` once writes through `seg` are
#'   refused: opened read-only, or after [segment_protect()].
#' * Hooks: methods for `shard_share_hook()` are used by deep sharing; the
#'   context has shard's fields (`path` from `"<root>"`, `types`, ...), and
#'   with `mode = "balanced"` an error in a hook or in its `rewrite`
#'   function is recorded (in `shared_info(x)$skipped`) and the walk goes
#'   on.
#' * `is_shared_vector(x)` is `TRUE` for a shared atomic vector;
#'   `as_shared(x)` shares an atomic vector (`path` is its name);
#'   `shared_advise(x, advice)` advises the kernel about this
#'   process's mapping of it, or for a deep share (`share(x, deep = TRUE)`)
#'   about each region its shared vectors are in (`"dontneed"` is not
#'   applied to a read-only share, whose private pages it would drop:
#'   `FALSE`).
#' * `available_backings()` is `c("shm", "mmap")`; `segment_report()` lists
#'   the regions this process created.
#' * `pool_dispatch(worker_id, expr)` evaluates `expr` on one worker of a
#'   PSOCK pool (replacing it first if it died, or if a call to it was
#'   interrupted before its reply came), with the variables `expr`
#'   uses sent along (a shared object `expr` makes and returns becomes the
#'   caller's, as a map's results do); `pool_health_check()` replaces dead workers and
#'   recycles those over `rss_limit`, and returns `worker_actions` (`action`
#'   `"none"`, `"restart"` or `"recycle"`).
#'
#' @section Differences from shard:
#' * `share(x)` returns the shared object itself, not a handle: it behaves
#'   like `x` and reads shared memory in place, in the creating process and
#'   in every worker it is sent to (as a name). `fetch()` still returns an
#'   ordinary copy, as in shard, so existing code works; dropping the
#'   `fetch()` calls in workers avoids that copy. The fields of shard's
#'   handle (`x$path`, `x$size`, `x$class_info`, ...) are those of
#'   `shared_info(x)`, and the classes of shard's handles
#'   (`shard_shared`, `shard_shared_vector`, `shard_deep_shared`,
#'   `shard_segment`, `shard_pool`) and their print methods do not exist.
#'   The result of a deep share is the rebuilt object, and its report
#'   (shard's `x$summary`) is `shared_info(x)`, with shmr's fields
#'   (`n_regions`, `shared_bytes`, `skipped`, ...).
#' * [share()] does not refuse functions, environments or S4 objects (shard
#'   stops with "Cannot share functions"): without `deep = TRUE` it returns
#'   them unchanged, as mori does, and inside a list they are stored
#'   serialized. With `deep = TRUE`, external pointers, connections and
#'   weak references are kept as they are and listed in
#'   `shared_info(x)$skipped` (`mode = "balanced"`, the default) or stop it
#'   (`mode = "strict"`, which also stops at hook errors); shard stops at
#'   connections in either mode, and in strict mode at environments too.
#' * Every share can be opened elsewhere: `share_open()` followed by
#'   `fetch()` works for atomic vectors too, and elements read from a shared
#'   vector are plain values (`x[5]` is `identical()` to the original's).
#' * Writing to a read-only share (`x[1] <- 0`, `names(x) <- ...`) is not an
#'   error (shard's `cow = "deny"`): it changes only the writing process's
#'   copy (of the touched memory page). Use `readonly = FALSE` (or
#'   [shared_buffer()]) for writes that every process sees.
#' * Using a share or a segment after [close()] is an R error, never a read
#'   of stale memory.
#' * `share(x, deep = TRUE)` shares every vector of at least `min_bytes` =
#'   1 MiB by default, where shard's default is 64 MiB. The vectors of a
#'   typical model (residuals, fitted values, the QR decomposition, the
#'   model frame's columns) are each smaller than 64 MiB up to 8 million
#'   rows, so shard's default would send such a model whole to every
#'   worker, where shmr's sends region names and the model's small parts.
#'   Pass `min_bytes = 64 * 1024^2` for shard's behaviour.
#' * [segment_create()]'s `path` is the directory of the segment's file
#'   (shard takes the file itself), and a segment is made read-only with
#'   [segment_protect()] rather than `readonly = TRUE`. [segment_open()]
#'   finds the backing by itself.
#' * [pool_create()] replaces workers that die and, with `rss_limit`,
#'   recycles PSOCK workers whose resident memory exceeds it after a chunk;
#'   shard's `rss_drift_threshold`, `heartbeat_interval` and
#'   `min_recycle_interval` are not provided, and its `init_expr` is
#'   `init`. [pool_lapply()] returns an unnamed list like [lapply()]; the
#'   columns of [pool_status()] are shmr's (`worker`, `rss`, ...; shard's
#'   `worker_id`, `rss_bytes`), and a pool has no `stats` (deaths,
#'   recycles: see [pool_status()]). `pool_dispatch()` needs a PSOCK pool
#'   and has no timeout.
#' * Messages are shmr's (shard's "Cycle detected", "Hook error in strict
#'   mode" and "Rewrite function error" are shmr's "refers back to the
#'   environment", "share_hook() failed" and "share_hook()'s rewrite
#'   failed").
#' * Not provided: `shared_vector()` and `shared_segment()` (a typed view
#'   at a byte offset of a segment, and the segment under a shared vector:
#'   in shmr a share's region holds an object laid out as
#'   `inst/FORMAT.md` says, not a segment; [shared_info()] describes it, and
#'   [map_shared()] of a segment reads its bytes as a raw vector), `shared_diagnostics()` and
#'   `shared_reset_diagnostics()` (shmr does not count accesses to a
#'   shared vector; its guarantee is that reads never copy), `is_windows()`
#'   (shmr runs on Linux only); shard's internals (`:::` functions such as
#'   `.shard_cow_policy()`); and shard's `shard_map()`, buffers, arenas,
#'   views, tables, streams, scratch pools, kernels, adapters, affinity and
#'   reports: [pool_lapply()], [pool_apply()] and [shared_buffer()] cover
#'   the same ground.
#'
#' @param path `share_open()`: the path of a share's file
#'   (`shared_info(x)$path`), the path given to `share(name = )`, or its
#'   name. `as_shared()`: `NULL` or a name (or path) for the share.
#' @param backing `share_open()`: accepted for code written for shard; shmr
#'   finds the backing by itself. `as_shared()`: as for [share()].
#' @param size `NULL`, or the share's size in bytes, which is then checked.
#' @param x A shared object (for `is_shared_vector()`, any object; for
#'   `as_shared()`, an atomic vector).
#' @return `share_open()`, `as_shared()`: the shared object.
#'   `materialize()`: an ordinary copy of `x` (see [fetch()]).
#'   `is_shared_vector()`: `TRUE` or `FALSE`. `shared_advise()`: `TRUE` when the kernel took the advice
#'   (for a deep share, for every region).
#'   `available_backings()`: a character vector. `segment_report()`: a list
#'   (class `shmr_report`) with `type`, `timestamp`, `n_segments`,
#'   `total_bytes` and `segments` (rows of [shared_regions()]).
#'   `pool_dispatch()`: the value of `expr`. `pool_health_check()`: a list
#'   with `timestamp` and `worker_actions` (one list per worker:
#'   `worker_id`, `action`, `reason`).
#' @name compat-shard
#' @examples
#' mat <- matrix(rnorm(1e4), nrow = 100)
#' shared_mat <- share(mat)
#' identical(mat, fetch(shared_mat))
#' info <- shared_info(shared_mat)
#' info$class_info
#' reopened <- share_open(info$path)
#' identical(materialize(reopened), mat)
#' is_shared_vector(shared_mat)
#' shared_advise(shared_mat, "sequential")
#' close(shared_mat)
#'
#' # shard's way of naming a file-backed share: a path
#' p <- tempfile("shard_example_")
#' v <- share(as.double(1:10), backing = "mmap", name = p)
#' identical(share_open(p), v)
#' close(v)
#' close(new.env()) # nothing was shared: does nothing
NULL

#' @rdname compat-shard
#' @export
share_open <- function(path, backing = c("mmap", "shm"), size = NULL) {
  choose_arg(backing, c("mmap", "shm"), "backing")
  if (!is.character(path) || length(path) != 1L || is.na(path)) {
    stop("`path` must be a single string", call. = FALSE)
  }
  check_path_length(path, "`path`")
  if (!is.null(size) && (!is.numeric(size) || length(size) != 1L || is.na(size) || size < 0)) {
    stop("`size` must be NULL or a single number of bytes, not ", describe_value(size),
         call. = FALSE)
  }
  name <- basename(path)
  region <- if (startsWith(name, "shmr_")) name else paste0("shmr_", name)
  x <- tryCatch(map_shared(region), error = function(e) e)
  # A region that is there but cannot be opened (no file descriptor left,
  # the address space full) is a share: the error says why it cannot be had.
  if (inherits(x, "error") && .Call(shmr_region_file_present, region)) {
    stop(sprintf("cannot open share '%s': %s", shorten(path), conditionMessage(x)), call. = FALSE)
  }
  if (is.null(x) || inherits(x, "error")) {
    stop(sprintf("'%s' is not the path of a shmr share%s", shorten(path),
                 if (inherits(x, "error")) paste0(" (", conditionMessage(x), ")") else ""),
         call. = FALSE)
  }
  info <- shared_info(x)
  if (grepl("/", path, fixed = TRUE) && !is_region_file(path, info$path)) {
    stop(sprintf("'%s' is not the file of share '%s' (%s)", shorten(path), info$name, info$path),
         call. = FALSE)
  }
  if (!is.null(size) && !isTRUE(all.equal(as.numeric(size), info$size))) {
    stop(sprintf("share '%s' has %s bytes, not %s", info$name, format(info$size), format(size)),
         call. = FALSE)
  }
  x
}

# Whether `path` names the region whose file is `file`: that file, or the
# path given to share(name = ) for it (the file's name without "shmr_").
is_region_file <- function(path, file) {
  directory <- function(p) normalizePath(dirname(p), mustWork = FALSE)
  identical(directory(path), directory(file)) &&
    basename(path) %in% c(basename(file), sub("^shmr_", "", basename(file)))
}

#' @rdname compat-shard
#' @export
materialize <- function(x) fetch(x)

#' @rdname compat-shard
#' @export
is_shared_vector <- function(x) {
  is.atomic(x) && is_view(x)
}

#' @rdname compat-shard
#' @param readonly,cow As for [share()]'s `readonly`; `cow` is accepted for
#'   code written for shard: writes to a read-only share are always private
#'   copies (`"allow"`), never errors.
#' @export
as_shared <- function(x, readonly = TRUE, backing = "auto", cow = NULL, path = NULL) {
  if (!is.atomic(x) || is.null(x)) {
    stop("as_shared(): `x` must be an atomic vector", call. = FALSE)
  }
  if (!is.null(cow)) choose_arg(cow, c("deny", "audit", "allow"), "cow")
  # Checked here under its own name: share() checks it as its `name`, an
  # argument the caller of as_shared() never gave. (A path to a file goes to
  # share(), whose errors say what it takes.)
  if (!is.null(path) && !is_file_path_name(path)) check_region_name(path, "path")
  share(x, backing = backing, readonly = readonly, name = path)
}

#' @rdname compat-shard
#' @param advice `"normal"`, `"sequential"`, `"random"`, `"willneed"` or
#'   `"dontneed"` (see [segment_advise()]).
#' @export
shared_advise <- function(x, advice = c("normal", "sequential", "random", "willneed",
                                        "dontneed")) {
  advice <- choose_arg(advice, c("normal", "sequential", "random", "willneed", "dontneed"),
                       "advice")
  if (is_view(x)) return(advise_shared(x, advice))
  # A deep share is an ordinary list or environment whose vectors are in
  # regions of their own: those are what the kernel is told about.
  if (is.null(deep_share_report(x))) {
    stop("shared_advise(): `x` is not a shared object", call. = FALSE)
  }
  all(vapply(shared_views_in(x), advise_shared, TRUE, advice = advice))
}

#' @rdname compat-shard
#' @export
available_backings <- function() c("shm", "mmap")

#' @rdname compat-shard
#' @export
segment_report <- function() {
  regions <- shared_regions()
  mine <- regions[!is.na(regions$creator_pid) & regions$creator_pid == Sys.getpid(), ,
                  drop = FALSE]
  rownames(mine) <- NULL
  structure(list(
    type = "segment", timestamp = Sys.time(), n_segments = nrow(mine),
    total_bytes = sum(mine$bytes),
    segments = lapply(seq_len(nrow(mine)), function(i) as.list(mine[i, ]))
  ), class = "shmr_report")
}

#' @export
print.shmr_report <- function(x, ...) {
  cat(sprintf("<shmr %s report: %d regions of this process, %s bytes>\n", x$type,
              x$n_segments, format_count(x$total_bytes)))
  invisible(x)
}

#' @rdname compat-shard
#' @param worker_id The worker to run `expr` on (1 to the pool's size).
#' @param expr A quoted expression.
#' @param envir Where the variables `expr` uses are found; they are sent
#'   with it.
#' @param pool A pool from [pool_create()], by default the default pool.
#' @param timeout Accepted for code written for shard; not used.
#' @export
pool_dispatch <- function(worker_id, expr, envir = parent.frame(), pool = NULL, timeout = 3600) {
  pool <- pool %||% pool_get()
  if (is.null(pool)) stop("there is no pool; create one with pool_create()", call. = FALSE)
  check_pool(pool, running = TRUE)
  if (pool$backend != "psock") {
    stop("pool_dispatch() needs a PSOCK pool: mirai cannot address one daemon", call. = FALSE)
  }
  if (!is.numeric(worker_id) || length(worker_id) != 1L || is.na(worker_id) ||
      !worker_id %in% seq_along(pool$pids)) {
    stop(sprintf("`worker_id` must be a worker of the pool, 1 to %d", length(pool$pids)),
         call. = FALSE)
  }
  if (!is.environment(envir)) {
    stop("`envir` must be an environment, not ", describe_value(envir), call. = FALSE)
  }
  worker_id <- as.integer(worker_id)
  check_pool_idle(pool, "pool_dispatch()")
  # A worker whose reply to an interrupted call was never read would hand
  # that reply to this call: it is replaced, as the maps do (see
  # dispatch_psock()).
  replace_abandoned_workers(pool)
  if (!process_alive(pool$pids[worker_id])) replace_psock_worker(pool, worker_id)
  variables <- variables_for(all.vars(expr), envir)
  pool$in_flight[worker_id] <- pool$in_flight[worker_id] + 1L
  value <- tryCatch(
    parallel::clusterCall(pool$cluster[worker_id], eval_with, expr, variables,
                          .Call(shmr_process_identity))[[1L]],
    error = function(e) {
      # An error of `expr` comes in its reply, which was read; a worker
      # that died left none, and is replaced at the next call.
      if (!is_worker_exit(e)) {
        pool$in_flight[worker_id] <- pool$in_flight[worker_id] - 1L
      }
      stop(worker_failure(e, sprintf("while it evaluated `expr` (worker %d)", worker_id),
                          "; the next pool_dispatch() to it starts a new one"))
    }
  )
  pool$in_flight[worker_id] <- pool$in_flight[worker_id] - 1L
  value
}

# The values of `names` as `expr` finds them from `envir`: in it or in an
# environment it encloses, the global one included. Those of packages and
# of base R (`pi`, `sum`) the worker finds itself.
variables_for <- function(names, envir) {
  search_envs <- search_environments()
  variables <- list()
  for (name in names) {
    home <- envir
    while (!identical(home, emptyenv()) && !exists(name, envir = home, inherits = FALSE)) {
      home <- parent.env(home)
    }
    if (identical(home, emptyenv()) ||
        (!identical(home, globalenv()) && is_stop_environment(home, search_envs))) {
      next
    }
    variables[name] <- list(get(name, envir = home, inherits = FALSE))
  }
  variables
}

# Runs on a worker (a namespace function: it travels as a reference). As a
# map's chunk does (run_chunk()): a shared object `expr` makes and returns
# becomes the caller's as the reply is written, so that it outlives the
# worker's copy (collected, or the worker replaced); one `expr` closed is an
# error, where it would stop serialize() halfway through the reply and end
# the worker.
eval_with <- function(expr, variables, recipient = NULL) {
  .Call(shmr_set_reply_recipient, NULL)
  value <- eval(expr, list2env(variables, parent = globalenv()))
  if (length(.Call(shmr_unreadable_results, list(value)))) {
    stop(closed_result_message("`expr`"), call. = FALSE)
  }
  if (!is.null(recipient)) .Call(shmr_set_reply_recipient, recipient)
  value
}

#' @rdname compat-shard
#' @param busy_workers Accepted for code written for shard; not used.
#' @export
pool_health_check <- function(pool = NULL, busy_workers = NULL) {
  pool <- pool %||% pool_get()
  if (is.null(pool)) stop("there is no pool; create one with pool_create()", call. = FALSE)
  check_pool(pool, running = TRUE)
  # It would replace workers that compute for the call.
  check_pool_idle(pool, "pool_health_check()")
  actions <- lapply(seq_along(pool$pids), function(w) {
    action <- list(worker_id = w, action = "none", reason = NA_character_)
    if (!process_alive(pool$pids[w])) {
      if (pool$backend != "psock") {
        action$reason <- "worker_dead"
        return(action)
      }
      replace_psock_worker(pool, w)
      action$action <- "restart"
      action$reason <- "worker_dead"
    } else if (pool$backend == "psock" && !is.null(pool$rss_limit)) {
      before <- pool$recycled[w]
      recycle_if_grown(pool, w)
      if (pool$recycled[w] > before) {
        action$action <- "recycle"
        action$reason <- "rss_limit"
      }
    }
    action
  })
  list(timestamp = Sys.time(), worker_actions = actions)
}
