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
# `capture`.
capture_relay <- function(expr, capture) {
  nothing <- raw(0L)
  capture$con <- rawConnection(nothing, "w")
  level <- sink.number()
  sink(capture$con, type = "output")
  on.exit({
    # Also ends sinks that the code itself left open.
    while (sink.number() > level) sink()
    capture_output(capture)
    close(capture$con)
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
