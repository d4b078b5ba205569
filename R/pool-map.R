#' Parallel maps over shared data
#'
#' `pool_lapply()`, `pool_sapply()` and `pool_apply()` are parallel versions
#' of [lapply()], [sapply()] and [apply()] that make the zero-copy path the
#' default. Without a `pool` they use the default pool (see [pool_create()]),
#' or start a temporary one for the call.
#'
#' @section What travels to the workers:
#' `FUN` travels with what it needs, found recursively as the future
#' package does: the global variables and functions its code refers to, the
#' globals of those functions in turn, and the environments of closures
#' (copied up to the global environment, never changed). A function it uses
#' from a package attached in the caller is found by attaching that package
#' on the workers.
#'
#' Large inputs travel by name. `X`, each argument in `...`, and each object
#' `FUN` takes along that is larger than
#' `getOption("shmr.share_threshold", 1024^2)` bytes (a number of bytes;
#' `Inf` shares nothing) is shared once for the
#' call (or used as it is when already shared; of an S4 or S7 object, each
#' such slot) and released afterwards,
#' unless a result still reads it (`FUN` returned an element unchanged):
#' then it is released with the results. A
#' task receives its own elements of a shared list, or the shared `X` and
#' its positions, never a copy of the data. A result larger than the
#' threshold comes back through shared memory: the worker writes it to a
#' region whose ownership passes to the caller, which maps it instead of
#' reading it through a socket. So does a shared object that `FUN` makes
#' with [share()] and returns (on this host: it stays readable, and keeps its
#' name, after the worker collects it or exits); one that `FUN` closed before
#' returning it is an error of its element.
#'
#' @section Output and conditions:
#' What `FUN` prints, and the messages, warnings and other conditions it
#' signals (errors aside), are relayed to the caller as the future package
#' does: the output is printed and the conditions are signalled again in
#' the caller, in the order of the elements (a chunk's as soon as it and
#' every chunk before it are done). `suppressWarnings()`,
#' `suppressMessages()`, `withCallingHandlers()` and `capture.output()`
#' around a map therefore act as they would around [lapply()]. When the call
#' stops at an error, what the elements before it relayed is relayed first.
#' Such a handler may stop the pool with [pool_stop()], which ends the call;
#' another use of a PSOCK pool while a call on it runs (a map,
#' `pool_dispatch()`, `pool_health_check()`) is an error.
#'
#' @section Random numbers:
#' With `seed`, element `i` gets the `i`-th L'Ecuyer-CMRG stream from
#' `set.seed(seed)`, so results are the same for any number of workers and
#' any `chunk_size`. The caller's random number state is left as it was.
#'
#' @section Errors:
#' An error in `FUN` stops the call with the error's own class and a message
#' naming the element. With `on_error = "continue"` the error conditions are
#' returned in place of the failed elements. A worker that dies (killed, or
#' crashed) is replaced and its chunk is run once more; if it dies again the
#' call stops with an error. A call never hangs on a dead worker. A worker
#' interrupted while it runs `FUN` (sent SIGINT, to stop a runaway task)
#' stays in the pool: that element and those after it in its chunk fail
#' with the error "the worker was interrupted". (R 4.5 starts PSOCK workers
#' with SIGINT ignored: there only a `FUN` waiting in `Sys.sleep()` sees
#' it.) A call
#' that ends early (an error, or an interrupt such as Ctrl-C, even a second
#' one during the clean-up) stops the workers still computing for it and
#' replaces them, at once or when the pool is next used: a later call never
#' receives its results. R removes a session's temporary directory only when
#' it exits, and a killed process cannot remove its regions either: the
#' pool removes the directories, and the regions that were not `persist`ed,
#' of its workers that died or that it stopped this way (PSOCK workers,
#' and mirai daemons it started itself), once they are gone: at
#' the latest at its next map or at `pool_stop()`. On a mirai pool the
#' chunks still running are cancelled with mirai's `stop_mirai()`; with
#' nanonext 1.10.4 a daemon interrupted while `FUN` waits in `Sys.sleep()`
#' can, rarely, crash (nanonext raises the interrupt from one of its own
#' threads): a daemon the pool started is replaced, one it was given
#' (`compute`) is not.
#'
#' @param X A vector, list or environment (`pool_lapply()`, `pool_sapply()`;
#'   as for [lapply()], an environment's values are the elements), or a
#'   matrix of any atomic type (`pool_apply()`).
#' @param FUN The function to apply.
#' @param ... Further arguments to `FUN`.
#' @param pool A pool, or `NULL` for the default (or a temporary) pool.
#' @param chunk_size Elements per task, a whole number >= 1; by default the
#'   elements are split into four tasks per worker.
#' @param seed `NULL`, or an integer seed for reproducible random numbers.
#' @param progress Show a progress bar (cli): `TRUE` or `FALSE`.
#' @param on_error `"stop"` or `"continue"`.
#' @param simplify,USE.NAMES As for [sapply()].
#' @param MARGIN `1` for rows, `2` for columns.
#' @return `pool_lapply()`: a list like `lapply(X, FUN, ...)`.
#'   `pool_sapply()`: like `sapply()`. `pool_apply()`: like `apply()`.
#' @name pool_maps
#' @examples
#' \donttest{
#' pool <- pool_create(2)
#' m <- matrix(rnorm(2e4), 100)
#' all.equal(pool_apply(m, 2, mean), colMeans(m))
#' pool_sapply(1:4, function(i) i * 10)
#' pool_lapply(1:2, function(i) runif(1), seed = 42)
#' pool_stop(pool)
#' }
NULL

#' @rdname pool_maps
#' @export
pool_lapply <- function(X, FUN, ..., pool = NULL, chunk_size = NULL, seed = NULL,
                        progress = interactive(), on_error = c("stop", "continue")) {
  on_error <- choose_arg(on_error, c("stop", "continue"), "on_error")
  check_map_fun(FUN)
  FUN <- match.fun(FUN)
  # As lapply() does: an environment's bindings are the elements.
  if (is.environment(X)) X <- as.list(X)
  pool_map(X, FUN, list(...), margin = NULL, pool = pool, chunk_size = chunk_size,
           seed = seed, progress = progress, on_error = on_error)
}

#' @rdname pool_maps
#' @export
pool_sapply <- function(X, FUN, ..., simplify = TRUE, USE.NAMES = TRUE, pool = NULL,
                        chunk_size = NULL, seed = NULL, progress = interactive(),
                        on_error = c("stop", "continue")) {
  check_map_fun(FUN)
  FUN <- match.fun(FUN)
  check_flag(USE.NAMES, "USE.NAMES")
  if (!(isTRUE(simplify) || isFALSE(simplify) || identical(simplify, "array"))) {
    stop("`simplify` must be TRUE, FALSE or \"array\", not ", describe_value(simplify),
         call. = FALSE)
  }
  answer <- pool_lapply(X, FUN, ..., pool = pool, chunk_size = chunk_size, seed = seed,
                        progress = progress, on_error = on_error)
  if (USE.NAMES && is.character(X) && is.null(names(answer))) names(answer) <- X
  if (!isFALSE(simplify) && length(answer)) {
    simplify2array(answer, higher = (simplify == "array"))
  } else {
    answer
  }
}

#' @rdname pool_maps
#' @export
pool_apply <- function(X, MARGIN, FUN, ..., pool = NULL, chunk_size = NULL, seed = NULL,
                       progress = interactive(), on_error = c("stop", "continue")) {
  on_error <- choose_arg(on_error, c("stop", "continue"), "on_error")
  check_map_fun(FUN)
  FUN <- match.fun(FUN)
  if (!is.matrix(X) || !is.atomic(X)) stop("`X` must be a matrix of an atomic type", call. = FALSE)
  if (!(identical(MARGIN, 1) || identical(MARGIN, 2) || identical(MARGIN, 1L) ||
        identical(MARGIN, 2L))) {
    stop("`MARGIN` must be 1 (rows) or 2 (columns)", call. = FALSE)
  }
  MARGIN <- as.integer(MARGIN)
  # No row or column: apply() calls FUN once on an empty one to learn the
  # type of the empty result; that needs no worker.
  if (dim(X)[MARGIN] == 0L) return(apply(X, MARGIN, FUN, ...))
  answer <- pool_map(X, FUN, list(...), margin = MARGIN, pool = pool, chunk_size = chunk_size,
                     seed = seed, progress = progress, on_error = on_error)
  apply_result(answer, X, MARGIN)
}

# The results of FUN on each row (MARGIN 1) or column (2) of matrix X, put
# together as apply() does: a vector, a matrix, or a list, with the same
# names and dimnames.
apply_result <- function(answer, X, MARGIN) {
  d2 <- length(answer)
  if (!d2) return(answer)
  dn_ans <- dimnames(X)[MARGIN]
  dn_call <- dimnames(X)[-MARGIN]
  answer <- unname(answer)
  first_names <- names(answer[[1L]])
  as_list <- is.recursive(answer[[1L]]) || any(lengths(answer) != length(answer[[1L]]))
  if (!as_list && length(first_names) &&
      !all(vapply(answer, function(a) identical(names(a), first_names), NA))) {
    first_names <- NULL
  }
  flat <- if (as_list) answer else unlist(answer, recursive = FALSE)
  if (length(flat) == d2 || as_list) {
    names(flat) <- if (length(dn_ans[[1L]])) dn_ans[[1L]]
    return(flat)
  }
  if (!length(flat) || length(flat) %% d2 != 0L) return(flat)
  if (is.null(dn_ans)) dn_ans <- list(NULL)
  row_names <- list(first_names)
  call_name <- names(dn_call[1])
  if (length(dn_call) && !is.null(call_name) && nzchar(call_name) &&
      length(first_names) == length(dn_call[[1L]])) {
    names(row_names) <- call_name
  }
  dn_ans <- c(row_names, dn_ans)
  array(flat, c(length(flat) %/% d2, d2),
        if (!is.null(names(dn_ans)) || !all(vapply(dn_ans, is.null, NA))) dn_ans)
}

share_threshold <- function() {
  threshold <- getOption("shmr.share_threshold", 1024^2)
  if (!is.numeric(threshold) || length(threshold) != 1L || is.na(threshold) || threshold < 0) {
    stop("the option `shmr.share_threshold` must be one number of bytes >= 0 (Inf to share ",
         "nothing), not ", paste(deparse(threshold), collapse = " "), call. = FALSE)
  }
  as.numeric(threshold)
}

# Shares `x` for one call when it is large and shareable; records what was
# shared so it can be released afterwards.
share_for_call <- function(x, threshold, created) {
  if (is_shared(x) || is.null(x) || is.environment(x)) return(x)
  if (typeof(x) %in% c("S4", "object")) return(share_slots_for_call(x, threshold, created))
  if (!(is.atomic(x) || is.list(x))) return(x)
  # An object whose region could not be had (a loaded workspace's) goes as
  # it is: the task that uses it fails, the worker does not.
  size <- tryCatch(bytes_by_value(x), shmr_region_unavailable = function(e) NA)
  if (is.na(size) || size <= threshold) return(x)
  shared <- share(x)
  created$objects <- c(created$objects, list(shared))
  shared
}

# An S4 object that is not a vector (an lme4 fit, say) or an S7 object
# keeps its data in slots (attributes): each large slot is shared for the
# call on its own, as an argument is, so that the call can tell which of
# them its results still read (release_call_shares()). Shared whole, such
# an object would be several regions behind one object.
share_slots_for_call <- function(x, threshold, created) {
  for (slot in setdiff(names(attributes(x)), "class")) {
    attr(x, slot) <- share_for_call(attr(x, slot, exact = TRUE), threshold, created)
  }
  x
}

# About the bytes of `x` a worker would receive by value: its shared parts
# travel as names. (A list of shared objects is sent as it is, not shared
# again, which would copy them into a new region at every call.)
unshared_bytes <- function(x) if (is_shared(x)) 0 else bytes_by_value(x)

# unshared_bytes() of an `x` known not to be shared itself (is_shared()
# costs as much as the rest for a small vector).
bytes_by_value <- function(x) {
  # Walked element by element only when a shared object is inside (a list
  # of R's own compact sequences is not).
  if (!is.list(x) || !.Call(shmr_fetch_reach, x)$view) return(as.numeric(utils::object.size(x)))
  sum(vapply(unclass(x), unshared_bytes, 0)) + 64 * length(x)
}

check_seed <- function(seed) {
  # set.seed() would drop a fraction silently, and two seeds would then give
  # the same streams.
  if (!is.null(seed) && (!is.numeric(seed) || length(seed) != 1L || !is.finite(seed) ||
                         seed != round(seed) || abs(seed) > .Machine$integer.max)) {
    stop("`seed` must be NULL or a whole number (an integer seed)", call. = FALSE)
  }
}

element_seeds <- function(seed, n) {
  if (is.null(seed)) return(NULL)
  had_seed <- exists(".Random.seed", envir = globalenv(), inherits = FALSE)
  old_seed <- if (had_seed) get(".Random.seed", envir = globalenv(), inherits = FALSE)
  old_kind <- RNGkind()
  on.exit({
    RNGkind(old_kind[1L], old_kind[2L], old_kind[3L])
    if (had_seed) {
      assign(".Random.seed", old_seed, envir = globalenv())
    } else if (exists(".Random.seed", envir = globalenv(), inherits = FALSE)) {
      rm(".Random.seed", envir = globalenv())
    }
  })
  RNGkind("L'Ecuyer-CMRG")
  set.seed(seed)
  seeds <- vector("list", n)
  current <- get(".Random.seed", envir = globalenv(), inherits = FALSE)
  for (i in seq_len(n)) {
    seeds[[i]] <- current
    current <- parallel::nextRNGStream(current)
  }
  seeds
}

# `FUN` as a map accepts it: a function, or a name that match.fun() then
# looks up where the map was called (it stays in the map's own frame for
# that: match.fun() searches its caller's caller). Checked here so that
# the error names the argument, as the other checks of a map's arguments do,
# instead of match.fun()'s "'NULL' is not a function, character or symbol".
check_map_fun <- function(FUN) {
  if (is.function(FUN)) return(invisible())
  if (is.symbol(FUN) || (is.character(FUN) && length(FUN) == 1L && !is.na(FUN))) {
    # Where match.fun() will look: from the caller of the map.
    if (!exists(as.character(FUN), envir = parent.frame(2L), mode = "function")) {
      stop(sprintf("`FUN` names no function: there is no function called '%s'",
                   shorten(as.character(FUN))), call. = FALSE)
    }
    return(invisible())
  }
  what <- if (is.null(FUN)) "NULL" else if (is.object(FUN)) class(FUN)[1L] else
    if (is.character(FUN) && length(FUN) == 1L) "NA" else
    if (is.character(FUN)) sprintf("a character vector of length %d", length(FUN)) else typeof(FUN)
  stop("`FUN` must be a function or the name of one, not ", what, call. = FALSE)
}

# `pool` as a map accepts it: NULL, or a pool that is running.
check_map_pool <- function(pool) {
  if (is.null(pool)) return(invisible())
  if (!is_pool(pool)) {
    what <- if (inherits(pool, "shmr_pool")) "an object of class shmr_pool that pool_create() did not make" else
      if (is.object(pool)) class(pool)[1L] else typeof(pool)
    stop("`pool` must be NULL or a pool from pool_create(), not ", what, call. = FALSE)
  }
  if (isTRUE(pool$stopped)) {
    stop("`pool` was stopped with pool_stop(); create another with pool_create()",
         call. = FALSE)
  }
  invisible()
}

# The pool a map runs on: `pool`, else the default pool, else a temporary
# one: list(pool, temporary).
map_pool_for <- function(pool) {
  if (!is.null(pool)) return(list(pool = pool, temporary = FALSE))
  if (!is.null(pool_get())) return(list(pool = pool_get(), temporary = FALSE))
  pool <- pool_create()
  pool$temporary <- TRUE
  list(pool = pool, temporary = TRUE)
}

pool_map <- function(X, FUN, dots, margin, pool, chunk_size, seed, progress, on_error) {
  # What lapply() takes (it refuses the rest with as.list()'s error); a
  # function or a symbol would only fail when a chunk is cut from it.
  if (is.null(margin) && !(is.null(X) || is.vector(X) || is.atomic(X) || is.list(X) ||
                           is.call(X))) {
    stop("`X` must be a vector or a list, not ", describe_value(X), call. = FALSE)
  }
  n <- if (is.null(margin)) length(X) else dim(X)[margin]
  check_map_pool(pool)
  # As lapply() does: an empty list, with X's names (none) when it has them.
  if (n == 0L) return(if (is.null(margin)) structure(list(), names = names(X)) else list())
  if (!is.null(chunk_size) && (!is.numeric(chunk_size) || length(chunk_size) != 1L ||
                               is.na(chunk_size) || chunk_size < 1 ||
                               chunk_size != floor(chunk_size))) {
    stop("`chunk_size` must be a whole number >= 1", call. = FALSE)
  }
  check_seed(seed)
  check_flag(progress, "progress")
  threshold <- share_threshold()
  chosen <- map_pool_for(pool)
  pool <- chosen$pool
  check_pool_process(pool)
  # Clean-up that an interrupt must not cut short.
  if (chosen$temporary) on.exit(suspendInterrupts(pool_stop(pool)), add = TRUE)
  workers <- length(pool$pids)
  chunk_size <- if (is.null(chunk_size)) max(1L, ceiling(n / (4 * workers))) else
    min(chunk_size, n)
  # Large results come back in regions made for this process; those never
  # adopted (an interrupt, a reply lost with its worker) are removed when the
  # call ends. A call that returns having sent no chunk twice adopted every
  # one: it spares the look through the regions directory, which costs more
  # the more regions the machine holds.
  handoff <- handoff_target()
  resent <- pool$chunks_resent
  returned <- FALSE
  on.exit(suspendInterrupts(
    if (!returned || !identical(pool$chunks_resent, resent)) discard_handoffs(handoff)
  ), add = TRUE)

  created <- new.env(parent = emptyenv())
  on.exit(suspendInterrupts(release_call_shares(created)), add = TRUE)
  # Names of the caller's X: those of the copy shared for the call would
  # read a region that is released when the call returns.
  result_names <- if (is.null(margin)) names(X)
  X <- share_for_call(X, threshold, created)
  if (length(dots)) dots <- lapply(dots, share_for_call, threshold = threshold, created = created)
  prepared <- function_for_workers(FUN, threshold, created)
  seeds <- element_seeds(seed, n)

  # A list's elements, or those of an atomic X that is not shared, are sent
  # per chunk (shared elements as names); a shared X (or a matrix for
  # pool_apply) is sent whole, as its name, with the positions to take.
  subset <- is.null(margin) && (is.list(X) || !is_shared(X))
  starts <- seq.int(1L, n, by = chunk_size)
  ends <- pmin(starts + as.integer(chunk_size) - 1L, n)
  call_id <- next_call_id(pool)
  tasks <- vector("list", length(starts))
  for (t in seq_along(starts)) {
    p <- starts[t]:ends[t]
    tasks[[t]] <- list(
      call = call_id, chunk = t, X = if (subset) X[p] else X, subset = subset, positions = p,
      margin = margin, FUN = prepared$FUN, dots = dots, packages = prepared$packages,
      seeds = if (!is.null(seeds)) seeds[p], threshold = threshold, handoff = handoff
    )
  }

  results <- vector("list", n)
  relays <- new_relay_queue(length(tasks))
  # on_error = "wait" (internal): finish every chunk, then raise the first
  # error, so no worker is interrupted (the memshare layer runs on a
  # cluster that belongs to the caller).
  first_error <- NULL
  bar <- if (isTRUE(progress)) {
    cli::cli_progress_bar("Computing", total = n, .envir = environment())
  }
  on_done <- function(t, reply) {
    values <- reply$values
    if (length(reply$handoffs)) values[reply$handoffs] <- adopt_results(values[reply$handoffs])
    positions <- tasks[[t]]$positions
    results[positions] <<- values
    relays$add(t, reply$relay)
    for (k in reply$failed) {
      position <- positions[k]
      if (on_error == "stop") {
        relays$replay_before(t, k)
        signal_element_error(values[[k]], position)
      }
      if (on_error == "wait" && (is.null(first_error) || position < first_error$position)) {
        first_error <<- list(condition = values[[k]], position = position)
      }
    }
    relays$replay_ready()
    if (!is.null(bar)) cli::cli_progress_update(inc = length(values), id = bar)
  }
  dispatch(pool, tasks, on_done)
  if (!is.null(bar)) cli::cli_progress_done(id = bar)
  if (!is.null(first_error)) signal_element_error(first_error$condition, first_error$position)
  if (is.null(margin)) names(results) <- result_names
  created$results <- results
  returned <- TRUE
  results
}

# Closes what a call shared of its arguments, except the regions its
# results read (FUN returned an element or a part of one unchanged): those
# stay, as the caller's, while the results use them.
release_call_shares <- function(created) {
  if (!length(created$objects)) return(invisible())
  kept <- if (is.null(created$results)) logical(length(created$objects)) else
    .Call(shmr_regions_read_by, created$results, created$objects)
  for (obj in created$objects[!kept]) close.default(obj)
  invisible()
}

next_call_id <- function(pool) {
  pool$calls <- (if (is.null(pool$calls)) 0 else pool$calls) + 1
  pool$calls
}

# Relayed output and conditions, replayed in the order of the elements
# although chunks finish in any order: a chunk's records wait until those
# of every chunk before it are replayed.
new_relay_queue <- function(chunks) {
  records <- vector("list", chunks)
  arrived <- logical(chunks)
  next_chunk <- 1L
  queue <- list()
  queue$add <- function(t, chunk_records) {
    if (length(chunk_records)) records[t] <<- list(chunk_records)
    arrived[t] <<- TRUE
  }
  queue$replay_ready <- function() {
    while (next_chunk <= chunks && arrived[next_chunk]) {
      chunk_records <- records[[next_chunk]]
      records[next_chunk] <<- list(NULL)
      next_chunk <<- next_chunk + 1L
      replay_relay(chunk_records)
    }
  }
  # Before stopping at element k of chunk t: what arrived of the chunks
  # before it, then chunk t's records up to element k.
  queue$replay_before <- function(t, k) {
    for (c in seq_len(t - 1L)) if (c >= next_chunk && arrived[c]) replay_relay(records[[c]])
    replay_relay(records[[t]], upto = k)
    next_chunk <<- chunks + 1L
  }
  queue
}

# Re-raises a worker's error with its own class, naming the element.
signal_element_error <- function(condition, position) {
  condition$message <- sprintf("in element %d: %s", position, conditionMessage(condition))
  condition$call <- NULL
  stop(condition)
}
