#' Parallel maps over shared data
#'
#' `pool_lapply()`, `pool_sapply()` and `pool_apply()` are parallel versions
#' of [lapply()], [sapply()] and [apply()] that make the zero-copy path the
#' default. Without a `pool` they use the default pool (see [pool_create()]),
#' or start a temporary one for the call.
#'
#' @section What travels to the workers:
#' Large inputs travel by name. `X`, each argument in `...`, and each object
#' captured in the environment of `FUN` that is larger than
#' `getOption("shmr.share_threshold", 1024^2)` bytes is shared once for the
#' call (or used as it is when already shared) and released afterwards. A
#' task receives its own elements of a shared list, or the shared `X` and
#' its positions, never a copy of the data. A result larger than the
#' threshold comes back through shared memory: the worker writes it to a
#' region whose ownership passes to the caller, which maps it instead of
#' reading it through a socket.
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
#' call stops with an error. A call never hangs on a dead worker.
#'
#' @param X A vector or list (`pool_lapply()`, `pool_sapply()`), or a matrix
#'   of any atomic type (`pool_apply()`).
#' @param FUN The function to apply.
#' @param ... Further arguments to `FUN`.
#' @param pool A pool, or `NULL` for the default (or a temporary) pool.
#' @param chunk_size Elements per task; by default the elements are split
#'   into four tasks per worker.
#' @param seed `NULL`, or an integer seed for reproducible random numbers.
#' @param progress Show a progress bar (cli).
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
  on_error <- match.arg(on_error)
  FUN <- match.fun(FUN)
  pool_map(X, FUN, list(...), margin = NULL, pool = pool, chunk_size = chunk_size,
           seed = seed, progress = progress, on_error = on_error)
}

#' @rdname pool_maps
#' @export
pool_sapply <- function(X, FUN, ..., simplify = TRUE, USE.NAMES = TRUE, pool = NULL,
                        chunk_size = NULL, seed = NULL, progress = interactive(),
                        on_error = c("stop", "continue")) {
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
  on_error <- match.arg(on_error)
  FUN <- match.fun(FUN)
  if (!is.matrix(X) || !is.atomic(X)) stop("`X` must be a matrix of an atomic type", call. = FALSE)
  if (!(identical(MARGIN, 1) || identical(MARGIN, 2) || identical(MARGIN, 1L) ||
        identical(MARGIN, 2L))) {
    stop("`MARGIN` must be 1 (rows) or 2 (columns)", call. = FALSE)
  }
  MARGIN <- as.integer(MARGIN)
  answer <- pool_map(X, FUN, list(...), margin = MARGIN, pool = pool, chunk_size = chunk_size,
                     seed = seed, progress = progress, on_error = on_error)
  names(answer) <- dimnames(X)[[MARGIN]]
  lengths <- unique(lengths(answer))
  if (length(answer) && length(lengths) == 1L && lengths >= 1L &&
      all(vapply(answer, is.atomic, TRUE))) {
    if (lengths == 1L) return(unlist(answer))
    result <- simplify2array(answer, higher = FALSE)
    dimnames(result) <- list(names(answer[[1L]]), dimnames(X)[[MARGIN]])
    return(result)
  }
  answer
}

share_threshold <- function() {
  getOption("shmr.share_threshold", 1024^2)
}

# Shares `x` for one call when it is large and shareable; records what was
# shared so it can be released afterwards.
share_for_call <- function(x, threshold, created) {
  if (is_shared(x) || is.null(x) || !(is.atomic(x) || is.list(x)) || is.environment(x)) return(x)
  # An object whose region could not be had (a loaded workspace's) goes as
  # it is: the task that uses it fails, the worker does not.
  size <- tryCatch(as.numeric(utils::object.size(x)), shmr_region_unavailable = function(e) NA)
  if (is.na(size) || size <= threshold) return(x)
  shared <- share(x)
  created$objects <- c(created$objects, list(shared))
  shared
}

# FUN with what it captured made available to the workers, large objects
# shared: for a function defined at the top level, the global objects its
# body refers to (workers have their own, empty, global environment); for a
# closure, the bindings of its own environment. Namespace functions stay.
share_captured <- function(FUN, threshold, created) {
  env <- environment(FUN)
  if (is.null(env) || isNamespace(env) || identical(env, baseenv()) ||
      (!identical(env, globalenv()) && environmentName(env) != "")) {
    return(FUN)
  }
  if (identical(env, globalenv())) {
    names <- intersect(all.names(body(FUN)), ls(globalenv(), all.names = TRUE))
    parent <- globalenv()
  } else {
    names <- ls(env, all.names = TRUE)
    parent <- parent.env(env)
  }
  if (!length(names)) return(FUN)
  copy <- new.env(parent = parent)
  for (name in names) {
    if (bindingIsActive(name, env)) {
      makeActiveBinding(name, activeBindingFunction(name, env), copy)
    } else {
      assign(name, share_for_call(get(name, envir = env, inherits = FALSE), threshold, created),
             envir = copy)
    }
  }
  environment(FUN) <- copy
  FUN
}

element_seeds <- function(seed, n) {
  if (is.null(seed)) return(NULL)
  if (!is.numeric(seed) || length(seed) != 1L || is.na(seed)) {
    stop("`seed` must be NULL or a single number", call. = FALSE)
  }
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

pool_map <- function(X, FUN, dots, margin, pool, chunk_size, seed, progress, on_error) {
  n <- if (is.null(margin)) length(X) else dim(X)[margin]
  if (n == 0L) return(list())
  if (is.null(pool)) pool <- pools$default
  if (is.null(pool) || isTRUE(pool$stopped)) {
    pool <- pool_create()
    on.exit(pool_stop(pool), add = TRUE)
  }
  check_pool(pool, running = TRUE)
  workers <- length(pool$pids)
  if (is.null(chunk_size)) chunk_size <- max(1L, ceiling(n / (4 * workers)))
  if (!is.numeric(chunk_size) || length(chunk_size) != 1L || is.na(chunk_size) || chunk_size < 1) {
    stop("`chunk_size` must be a whole number >= 1", call. = FALSE)
  }

  threshold <- share_threshold()
  created <- new.env(parent = emptyenv())
  on.exit(for (obj in created$objects) close(obj), add = TRUE)
  # Names of the caller's X: those of the copy shared for the call would
  # read a region that is released when the call returns.
  result_names <- if (is.null(margin)) names(X)
  X <- share_for_call(X, threshold, created)
  dots <- lapply(dots, share_for_call, threshold = threshold, created = created)
  FUN <- share_captured(FUN, threshold, created)
  seeds <- element_seeds(seed, n)

  # A list's elements are sent per chunk (shared elements as names); an
  # atomic X (or a matrix for pool_apply) is sent whole, as its name when
  # shared, with the positions to take.
  subset <- is.null(margin) && is.list(X)
  positions <- split(seq_len(n), ceiling(seq_len(n) / chunk_size))
  tasks <- lapply(positions, function(p) {
    list(
      X = if (subset) X[p] else X, subset = subset, positions = p, margin = margin,
      FUN = FUN, dots = dots, seeds = if (!is.null(seeds)) seeds[p],
      threshold = threshold
    )
  })
  names(tasks) <- NULL

  results <- vector("list", n)
  # on_error = "wait" (internal): finish every chunk, then raise the first
  # error, so no worker is interrupted (the memshare layer runs on a
  # cluster that belongs to the caller).
  first_error <- NULL
  bar <- if (isTRUE(progress)) {
    cli::cli_progress_bar("Computing", total = n, .envir = environment())
  }
  on_done <- function(t, chunk) {
    chunk <- adopt_results(chunk)
    for (k in seq_along(chunk)) {
      value <- chunk[[k]]
      position <- tasks[[t]]$positions[k]
      if (inherits(value, "shmr_task_error")) {
        condition <- value$condition
        if (on_error == "stop") signal_element_error(condition, position)
        if (on_error == "wait" && (is.null(first_error) || position < first_error$position)) {
          first_error <<- list(condition = condition, position = position)
        }
        value <- condition
      }
      results[position] <<- list(value)
    }
    if (!is.null(bar)) cli::cli_progress_update(inc = length(chunk), id = bar)
  }
  dispatch(pool, tasks, on_done)
  if (!is.null(bar)) cli::cli_progress_done(id = bar)
  if (!is.null(first_error)) signal_element_error(first_error$condition, first_error$position)
  if (is.null(margin)) names(results) <- result_names
  results
}

# Re-raises a worker's error with its own class, naming the element.
signal_element_error <- function(condition, position) {
  condition$message <- sprintf("in element %d: %s", position, conditionMessage(condition))
  condition$call <- NULL
  stop(condition)
}
