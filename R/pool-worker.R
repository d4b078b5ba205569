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
    if (!inherits(value, "shmr_task_error")) {
      value <- maybe_hand_off(value, task$threshold, task$handoff)
    }
    results[k] <- list(value)
  }
  list(pid = Sys.getpid(), results = results)
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

# A result above the threshold goes back through shared memory, in a region
# made for the caller (`target`, from handoff_target()): the region names the
# caller as its creator and, when it falls back to a file, lives in the
# caller's directory, so neither depends on this worker living on. The
# worker keeps no claim on it; the caller adopts it. A result that cannot be
# handed off goes back by value.
maybe_hand_off <- function(value, threshold, target = NULL) {
  if (is.null(target) || !is.finite(threshold) || !(is.atomic(value) || is.list(value)) ||
      is.null(value)) {
    return(value)
  }
  if (as.numeric(utils::object.size(value)) <= threshold) return(value)
  options <- list(backing = "auto", readonly = TRUE, data_directory = target$data_directory,
                  shm_capacity = shm_capacity())
  name <- tryCatch(.Call(shmr_hand_off, value, class(value)[1L], options, target),
                   error = function(e) NULL)
  if (is.null(name)) return(value)
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

# Where the workers of one map call put its large results (see
# maybe_hand_off()): this process's identity, the call's name prefix, and
# the directory for results that fall back to a file.
handoff_target <- function() {
  handoffs$calls <- handoffs$calls + 1
  list(owner = .Call(shmr_process_identity),
       prefix = sprintf("%s%d_", handoff_process_prefix(), handoffs$calls),
       data_directory = data_directory(NULL, FALSE))
}

# Removes the results of the call of `target` that were handed off but never
# adopted (the caller was interrupted, or the reply never came).
discard_handoffs <- function(target) {
  invisible(.Call(shmr_discard_handoffs, target$prefix))
}

handoffs <- new.env(parent = emptyenv())
handoffs$calls <- 0

# "shmr_h<pid>x<start ticks>_": the hand-off names of this process, made of
# its identity (no random numbers: the caller's random stream is left alone).
handoff_process_prefix <- function() {
  if (!identical(handoffs$pid, Sys.getpid())) {
    handoffs$pid <- Sys.getpid()
    parts <- strsplit(.Call(shmr_process_identity), ":", fixed = TRUE)[[1L]]
    handoffs$prefix <- sprintf("shmr_h%sx%s_", parts[1L], parts[2L])
  }
  handoffs$prefix
}

# At exit: late results of interrupted calls of this process.
discard_own_handoffs <- function() {
  if (identical(handoffs$pid, Sys.getpid())) .Call(shmr_discard_handoffs, handoffs$prefix)
  invisible()
}
