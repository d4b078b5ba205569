# What a worker runs for one chunk of a pool map. A chunk is self-contained:
# the elements (or a shared X and their positions), FUN and its extra
# arguments, and one RNG seed per element. Shared objects in it arrive as
# names and are mapped here.

run_chunk <- function(task) {
  positions <- task$positions
  results <- vector("list", length(positions))
  for (k in seq_along(positions)) {
    element <- if (task$subset) task$X[[k]] else select_element(task$X, positions[k], task$margin)
    if (!is.null(task$seeds)) assign(".Random.seed", task$seeds[[k]], envir = globalenv())
    value <- tryCatch(
      do.call(task$FUN, c(list(element), task$dots), quote = TRUE),
      error = function(e) structure(list(condition = e), class = "shmr_task_error")
    )
    # Through shared memory only to a caller on this host; to one on another
    # host by value.
    if (!inherits(value, "shmr_task_error") && caller_on_this_host(task)) {
      value <- maybe_hand_off(value, task$threshold)
    }
    results[k] <- list(value)
  }
  list(pid = Sys.getpid(), results = results)
}

caller_on_this_host <- function(task) {
  is.null(task$caller_host) || identical(task$caller_host, host_identity())
}

select_element <- function(X, position, margin) {
  if (is.null(margin)) return(X[[position]])
  if (margin == 1L) return(X[position, ])
  # A column of a shared matrix is contiguous: hand it over as a zero-copy
  # slice of the region rather than a copy.
  rows <- nrow(X)
  column <- .Call(shmr_slice, X, (position - 1) * rows, rows)
  if (is.null(column)) return(X[, position])
  names(column) <- rownames(X)
  column
}

# A result above the threshold goes back through shared memory: it is
# written to a region this worker does not keep, and the caller adopts it.
maybe_hand_off <- function(value, threshold) {
  if (!is.finite(threshold) || !(is.atomic(value) || is.list(value)) || is.null(value)) {
    return(value)
  }
  if (as.numeric(utils::object.size(value)) <= threshold) return(value)
  options <- list(backing = "auto", readonly = TRUE, data_directory = data_directory(NULL, FALSE),
                  shm_capacity = shm_capacity())
  name <- .Call(shmr_share_handoff, value, class(value)[1L], options)
  structure(list(name = name), class = "shmr_handoff")
}

# In the caller: turn handed-off results into shared objects it owns.
adopt_results <- function(results) {
  for (k in seq_along(results)) {
    if (inherits(results[[k]], "shmr_handoff")) {
      results[k] <- list(.Call(shmr_adopt, results[[k]]$name))
    }
  }
  results
}
