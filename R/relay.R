# Output and conditions of FUN, relayed from a worker to the caller as the
# future package does. In the worker, capture_relay() evaluates code with
# its printed output captured and its warnings, messages and other
# conditions (errors and interrupts aside) recorded and muffled, in the
# order they happen. In the caller, replay_relay() prints the output and
# re-signals the conditions in that order, so that suppressWarnings(),
# withCallingHandlers() and sink() around a map see them as they would
# around lapply(). Any backend that runs a task through capture_relay() on
# the worker and hands its records to replay_relay() relays the same way.

# A capture for one task: `element()` tags what is recorded (the code being
# run may replace it with a function that tells its current element, at no
# cost per element), `records` holds what was recorded.
new_capture <- function() {
  capture <- new.env(parent = emptyenv())
  capture$element <- function() 0L
  capture$records <- list()
  capture$con <- NULL
  capture$offset <- 0
  capture
}

# Worker side: evaluates `expr` with output and conditions recorded into
# `capture`. (sink() and sink.number() each cost a match.arg(): called once
# each way.)
capture_relay <- function(expr, capture) {
  capture$con <- take_output_connection()
  level <- sink.number()
  sink(capture$con)
  on.exit({
    # Also ends sinks that the code itself left open (none when it ended
    # more than it opened).
    for (i in seq_len(max(0L, sink.number() - level))) sink()
    capture_output(capture)
    give_back_output_connection(capture$con, written = capture$offset > 0)
    capture$con <- NULL
  })
  withCallingHandlers(
    expr,
    warning = function(w) {
      capture_condition(capture, w)
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      capture_condition(capture, m)
      invokeRestart("muffleMessage")
    },
    condition = function(c) {
      if (!inherits(c, c("error", "warning", "message", "interrupt"))) capture_condition(capture, c)
    }
  )
}

# The connection a task's output is captured in. Opening one (and the
# deparse() rawConnection() makes of its argument) and closing it cost more
# than the rest of capturing a small chunk, so a process keeps one that
# nothing was written to for its next task. Taken while in use: a task that
# captures inside another gets one of its own.
output_connections <- new.env(parent = emptyenv())

take_output_connection <- function() {
  con <- output_connections$spare
  output_connections$spare <- NULL
  # Code run since (closeAllConnections()) may have closed it.
  if (!is.null(con) && connection_is_current(con)) return(con)
  nothing <- raw(0L)
  rawConnection(nothing, "w")
}

# Kept when empty (a raw connection cannot be emptied: one written to would
# hand its old output to the next task's records), closed otherwise; left
# alone when it is no longer ours, as its number may now be another
# connection's.
give_back_output_connection <- function(con, written) {
  if (!connection_is_current(con)) return(invisible())
  if (written || !is.null(output_connections$spare)) {
    close(con)
  } else {
    output_connections$spare <- con
  }
  invisible()
}

# Records the output printed since the last record (so that output and
# conditions keep their order), tagged with the current element.
capture_output <- function(capture) {
  if (is.null(capture$con)) return(invisible())
  bytes <- rawConnectionValue(capture$con)
  if (length(bytes) > capture$offset) {
    text <- rawToChar(bytes[(capture$offset + 1):length(bytes)])
    capture$offset <- length(bytes)
    capture$records[[length(capture$records) + 1L]] <- list(element = capture$element(),
                                                            output = text)
  }
  invisible()
}

capture_condition <- function(capture, condition) {
  capture_output(capture)
  capture$records[[length(capture$records) + 1L]] <- list(element = capture$element(),
                                                          condition = condition)
}

# Caller side: prints the output and re-signals the conditions of `records`
# in order, those of elements up to `upto` only.
replay_relay <- function(records, upto = Inf) {
  for (record in records) {
    if (record$element > upto) break
    if (!is.null(record$output)) {
      cat(record$output)
    } else {
      condition <- record$condition
      if (inherits(condition, "warning")) {
        warning(condition)
      } else if (inherits(condition, "message")) {
        message(condition)
      } else {
        signalCondition(condition)
      }
    }
  }
  invisible()
}
