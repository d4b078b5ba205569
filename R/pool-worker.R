# What a worker runs for one chunk of a pool map. A chunk is self-contained
# (any backend can run it anywhere): the elements (or a shared X and their
# positions), FUN and its extra arguments, one RNG seed per element, and
# the call and chunk it belongs to, which the reply repeats so that the
# caller matches every reply to its task. Shared objects in it arrive as
# names and are mapped here. The reply holds the values, the positions in
# the chunk of those that failed (their error conditions) and of those
# handed off through shared memory, and the relayed output and conditions.

run_chunk <- function(task) {
  # Shared objects sent from now on stay this worker's until this chunk's
  # reply (see below).
  .Call(shmr_set_reply_recipient, NULL)
  attach_packages(task$packages)
  capture <- new_capture()
  # do.call() only to pass FUN's extra arguments, quoted (a call or symbol
  # among them must reach FUN as it is).
  applied <- capture_relay(
    if (length(task$dots)) {
      do.call(apply_elements, c(task$dots, list(.shmr_task = task, .shmr_capture = capture)),
              quote = TRUE)
    } else {
      apply_elements(.shmr_task = task, .shmr_capture = capture)
    },
    capture
  )
  values <- applied$values
  failed <- applied$failed
  # A closed shared object would stop serialize() halfway through the reply,
  # and with it the worker: it fails its element instead.
  unreadable <- .Call(shmr_unreadable_results, values)
  if (length(unreadable)) {
    values[unreadable] <- list(simpleError(closed_result_message("FUN")))
    failed <- sort(c(failed, unreadable))
  }
  on_this_host <- caller_on_this_host(task)
  # Through shared memory only to a caller on this host; to one on another
  # host by value.
  handoffs <- if (on_this_host) .Call(shmr_results_over, values, task$threshold) else integer()
  if (length(handoffs)) {
    handoffs <- setdiff(handoffs, failed)
    for (k in handoffs) values[k] <- list(maybe_hand_off(values[[k]], task$threshold, task$handoff))
    handoffs <- handoffs[vapply(values[handoffs], inherits, TRUE, "shmr_handoff")]
  }
  # Shared objects FUN made here and returns become the caller's as the
  # reply is written: this worker may collect them, or end, once it is sent.
  if (on_this_host && !is.null(task$handoff)) {
    .Call(shmr_set_reply_recipient, task$handoff$owner)
  }
  list(call = task$call, chunk = task$chunk, pid = Sys.getpid(), values = values,
       failed = failed, handoffs = handoffs, relay = capture$records)
}

# What a worker says of a shared object `what` returned after closing it.
closed_result_message <- function(what) {
  paste(what, "returned a shared object that was closed (close() was called on it in the worker),",
        "which cannot be sent back; return it before closing it, or a copy of its values")
}

# What a message to a worker names to run a chunk: its code travels with
# every chunk, and run_chunk()'s compiled code is some 7 KB (the worker
# finds run_chunk() in its own shmr). Even this one, compiled as the
# package's functions are when it is installed, is some 440 bytes, mostly
# byte code: .onLoad() puts an uncompiled copy of some 130 in its place,
# less to serialize for each chunk and to read on the worker (where R does
# not compile a function this small before its first call).
chunk_runner <- function(task) run_chunk(task)

uncompiled_chunk_runner <- function() {
  eval(call("function", as.pairlist(alist(task = )), body(chunk_runner)), topenv())
}

# Packages whose functions FUN uses from the caller's search path.
attach_packages <- function(packages) {
  if (!length(packages)) return(invisible())
  for (p in setdiff(packages, sub("^package:", "", search()))) {
    suppressPackageStartupMessages(library(p, character.only = TRUE))
  }
}

# FUN applied to the chunk's elements as lapply() would (so a warning reads
# "In FUN(X[[i]], ...)"), with one error handler for the whole chunk rather
# than one per element: after an error the loop resumes at the next
# element. Its own arguments come after `...`, where no argument of FUN's
# can match them partially.
apply_elements <- function(..., .shmr_task, .shmr_capture) {
  FUN <- .shmr_task$FUN
  X <- .shmr_task$X
  positions <- .shmr_task$positions
  margin <- .shmr_task$margin
  seeds <- .shmr_task$seeds
  subset <- .shmr_task$subset
  count <- length(positions)
  values <- vector("list", count)
  failed <- integer()
  i <- 0L
  .shmr_capture$element <- function() i
  start <- 1L
  while (start <= count) {
    tryCatch({
      for (i in start:count) {
        if (!is.null(seeds)) assign(".Random.seed", seeds[[i]], envir = globalenv())
        value <- if (subset) FUN(X[[i]], ...) else FUN(select_element(X, positions[[i]], margin), ...)
        # values[i] <- list(value) would cost a list per element.
        if (!is.null(value)) values[[i]] <- value
      }
      start <- count + 1L
    }, error = function(e) {
      capture_output(.shmr_capture)
      values[i] <<- list(e)
      failed <<- c(failed, i)
      start <<- i + 1L
    }, interrupt = function(e) {
      # A worker interrupted in FUN (SIGINT, as a user stops a runaway task,
      # or mirai cancelling the chunk) ends the chunk with a reply: that
      # element and those not yet run fail. Left alone, the interrupt would
      # end the chunk without one, and a PSOCK caller would wait forever.
      capture_output(.shmr_capture)
      # From `start`: an interrupt before the loop has set `i` again would
      # otherwise fail an element twice, or one that succeeded.
      rest <- max(i, start):count
      values[rest] <<- rep(list(simpleError("the worker was interrupted")), length(rest))
      failed <<- c(failed, rest)
      start <<- count + 1L
    })
  }
  list(values = values, failed = failed)
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
  # A shared object that reads as its region goes by its name (one of this
  # worker's own becomes the caller's as the reply is written): no copy.
  if (!is.null(.Call(shmr_name, value))) return(value)
  size <- as.numeric(utils::object.size(value))
  if (size <= threshold) return(value)
  # A list whose shared parts outweigh the rest (the input data frame with
  # a column added) goes by value, its shared parts by name: a region of its
  # own would copy them. One with small shared parts is handed off, copying
  # them, rather than send its bulk through the connection.
  if (shared_parts_outweigh(value, size)) return(value)
  name <- tryCatch({
    options <- list(backing = "auto", readonly = TRUE, data_directory = target$data_directory,
                    shm_capacity = shm_capacity())
    .Call(shmr_hand_off, value, class(value)[1L], options, target)
  }, error = function(e) NULL)
  if (is.null(name)) return(value)
  structure(list(name = name), class = "shmr_handoff")
}

# Whether the shared objects anywhere in a list (not itself shared) hold
# more of its `size` bytes than the rest does. The engine's walk tells
# first, whatever the list's length or depth, whether it holds any.
shared_parts_outweigh <- function(value, size) {
  if (!is.list(value) || !isTRUE(.Call(shmr_fetch_reach, value)$view)) return(FALSE)
  rest <- unshared_bytes(value)
  size - rest > rest
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
