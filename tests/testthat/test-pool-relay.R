# Output, messages and warnings of FUN reach the caller, in order, as with
# lapply() (and the future package).

noisy <- function(i) {
  cat("out", i, "\n")
  message("msg ", i)
  if (i %% 2 == 0) warning("warn ", i)
  print(i * 10)
  i
}
environment(noisy) <- globalenv()

# Everything `code` prints and signals, in order.
events <- function(code) {
  log <- character()
  out <- textConnection(NULL, "w", local = TRUE)
  sink(out)
  on.exit({
    sink()
    close(out)
  })
  taken <- 0L
  take_output <- function() {
    lines <- textConnectionValue(out)
    if (length(lines) > taken) log <<- c(log, lines[(taken + 1L):length(lines)])
    taken <<- length(lines)
  }
  value <- withCallingHandlers(
    code,
    message = function(m) {
      take_output()
      log <<- c(log, paste("message:", trimws(conditionMessage(m))))
      invokeRestart("muffleMessage")
    },
    warning = function(w) {
      take_output()
      log <<- c(log, paste("warning:", conditionMessage(w)))
      invokeRestart("muffleWarning")
    }
  )
  take_output()
  list(value = value, log = log)
}

test_that("output, messages and warnings of FUN are relayed in the order of the elements", {
  skip_on_cran()
  skip_without_callr()
  pool <- pool_create(2)
  on.exit(pool_stop(pool))
  expected <- events(lapply(1:6, noisy))
  for (chunk_size in c(1, 2, 6)) {
    got <- events(pool_lapply(1:6, noisy, pool = pool, chunk_size = chunk_size))
    expect_identical(got$value, expected$value)
    expect_identical(got$log, expected$log, label = paste("chunk_size", chunk_size))
  }
  # Conditions are the workers' own, re-signalled with their class.
  classed <- function(i) {
    warning(structure(class = c("my_warning", "warning", "condition"),
                      list(message = paste("custom", i), call = NULL)))
    signalCondition(structure(class = c("my_note", "condition"),
                              list(message = "note", call = NULL)))
    i
  }
  environment(classed) <- globalenv()
  seen <- character()
  withCallingHandlers(
    pool_lapply(1:2, classed, pool = pool),
    my_warning = function(w) {
      seen <<- c(seen, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    my_note = function(n) seen <<- c(seen, "note")
  )
  expect_identical(seen, c("custom 1", "note", "custom 2", "note"))
  expect_silent(suppressWarnings(suppressMessages(capture.output(
    pool_lapply(1:4, noisy, pool = pool)
  ))))
})

test_that("relayed conditions stop at the failing element; sinks left open by FUN are closed", {
  skip_on_cran()
  skip_without_callr()
  pool <- pool_create(2)
  on.exit(pool_stop(pool))
  fails_at_3 <- function(i) {
    message("before ", i)
    if (i == 3) stop("boom")
    i
  }
  environment(fails_at_3) <- globalenv()
  seen <- character()
  err <- tryCatch(withCallingHandlers(
    pool_lapply(1:6, fails_at_3, pool = pool, chunk_size = 6),
    message = function(m) {
      seen <<- c(seen, trimws(conditionMessage(m)))
      invokeRestart("muffleMessage")
    }
  ), error = conditionMessage)
  expect_match(err, "in element 3: boom")
  expect_identical(seen, paste("before", 1:3))
  leaves_sink <- function(i) {
    sink(tempfile())
    cat("hidden\n")
    i
  }
  environment(leaves_sink) <- globalenv()
  expect_identical(pool_sapply(1:2, leaves_sink, pool = pool), 1:2)
  # The workers print normally again afterwards.
  expect_output(pool_lapply(1, function(i) cat("visible\n"), pool = pool), "visible")
})

test_that("the mirai backend relays output and conditions too", {
  skip_on_cran()
  skip_if_not_installed("mirai")
  pool <- pool_create(1, backend = "mirai")
  on.exit(pool_stop(pool))
  expected <- events(lapply(1:3, noisy))
  expect_identical(events(pool_lapply(1:3, noisy, pool = pool))$log, expected$log)
})
