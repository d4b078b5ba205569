# A shared object whose region cannot be had (a workspace saved in a session
# that has ended, a released region) never makes unserialize() fail: it
# comes back as an object that raises a classed error naming the region when
# it is used, with one warning per region when it is loaded. The same rule
# keeps pool workers and mirai daemons alive.

# A shared data frame saved with saveRDS() in another process, which then
# exits (so the region is gone); returns the file.
saved_in_ended_session <- function() {
  path <- tempfile(fileext = ".rds")
  in_other_process(function(path) {
    x <- share(data.frame(a = as.numeric(1:1000), b = rep(c("u", "v"), 500),
                          c = seq(0.5, 500, by = 0.5)))
    saveRDS(x, path)
    shared_name(x)
  }, list(path = path))
  path
}

# An object whose region was released: what a worker receives when the
# region is gone by the time the task's arguments are unserialized. (Made in
# a function of its own: a closed object left in the test's environment
# would travel with the test's closures, and cannot be serialized.)
released_object <- function(value = as.numeric(1:100)) {
  x <- share(value)
  bytes <- serialize(x, NULL)
  name <- shared_name(x)
  close(x)
  structure(list(object = suppressWarnings(unserialize(bytes)), name = name))
}

# Two local mirai daemons of compute profile `profile`, once both connected.
start_two_daemons <- function(profile) {
  mirai::daemons(2, .compute = profile)
  deadline <- Sys.time() + 30
  while (mirai::status(.compute = profile)$connections < 2 && Sys.time() < deadline) Sys.sleep(0.05)
  expect_identical(mirai::status(.compute = profile)$connections, 2L)
}

collect_warnings <- function(expr) {
  warnings <- list()
  value <- withCallingHandlers(expr, warning = function(w) {
    warnings[[length(warnings) + 1L]] <<- w
    invokeRestart("muffleWarning")
  })
  list(value = value, warnings = warnings)
}

test_that("readRDS() of a shared object whose region is gone loads, warns once, errors at use", {
  path <- saved_in_ended_session()
  on.exit(unlink(path))
  got <- collect_warnings(readRDS(path))
  y <- got$value
  # One warning, although three columns (and the names) name the region.
  expect_length(got$warnings, 1L)
  w <- got$warnings[[1L]]
  expect_s3_class(w, "shmr_region_unavailable_warning")
  expect_match(conditionMessage(w), "^shmr: shared region 'shmr_[A-Za-z0-9]+' is not available here")
  region <- w$region
  err <- tryCatch(sum(y$a), error = function(e) e)
  expect_s3_class(err, "shmr_region_unavailable")
  expect_identical(err$region, region)
  expect_match(err$reason, "no shared region named")
  # Sent by name, so maybe to another host without remote mode: it says so.
  hint <- "if it was sent from another host, it needs remote mode where it is shared (options("
  expect_match(err$reason, hint, fixed = TRUE)
  expect_match(conditionMessage(err), region, fixed = TRUE)
  # shared_info() names the region and says why, without raising: of the
  # data frame, one object on R >= 4.3; before, of a column.
  part <- if (getRversion() >= "4.3.0") y else y$a
  expect_identical(shared_info(part), list(name = region, available = FALSE, reason = err$reason))
  expect_false(is_shared(part))
  expect_null(shared_name(part))
  expect_error(print(y), class = "shmr_region_unavailable")
  expect_error(y$b[1], class = "shmr_region_unavailable")
  expect_error(y$c + 1, class = "shmr_region_unavailable")
})

test_that("an unavailable object saved again keeps its reference", {
  path <- saved_in_ended_session()
  on.exit(unlink(path))
  y <- suppressWarnings(readRDS(path))
  again <- tempfile(fileext = ".rds")
  on.exit(unlink(again), add = TRUE)
  saveRDS(y, again)
  # Small: the reference, not data.
  expect_lt(file.size(again), 2000)
  z <- suppressWarnings(readRDS(again))
  err <- tryCatch(mean(z$a), error = function(e) e)
  expect_s3_class(err, "shmr_region_unavailable")
})

test_that("a saved workspace with a shared object loads, and its other objects survive", {
  path <- tempfile(fileext = ".RData")
  on.exit(unlink(path))
  in_other_process(function(path) {
    plain <- list(numbers = 1:5, text = "kept")
    shared <- share(rnorm(1e5))
    also_plain <- matrix(1:4, 2)
    save(plain, shared, also_plain, file = path)
  }, list(path = path))
  env <- new.env()
  got <- collect_warnings(load(path, envir = env))
  expect_setequal(got$value, c("plain", "shared", "also_plain"))
  expect_length(got$warnings, 1L)
  expect_identical(env$plain, list(numbers = 1:5, text = "kept"))
  expect_identical(env$also_plain, matrix(1:4, 2))
  expect_error(sum(env$shared), class = "shmr_region_unavailable")
})

test_that("saveRDS(fetch(x)) saves the data, which outlives the region", {
  x <- share(data.frame(a = c(1.5, 2.5), b = c("p", "q")))
  path <- tempfile(fileext = ".rds")
  on.exit(unlink(path))
  saveRDS(fetch(x), path)
  original <- fetch(x)
  close(x)
  y <- readRDS(path)
  expect_false(shmr:::contains_altrep(y))
  expect_identical(y, original)
})

test_that("a released region in a task's arguments fails the task, not the PSOCK worker", {
  u <- released_object()$object
  pool <- pool_create(2)
  on.exit(pool_stop(pool))
  pids <- pool_status(pool)$pid
  got <- pool_lapply(1:4, function(i, d) {
    tryCatch(sum(d), error = function(e) class(e)[1])
  }, d = u, pool = pool)
  expect_identical(unlist(got), rep("shmr_region_unavailable", 4))
  # The same workers, none restarted.
  expect_identical(pool_status(pool)$pid, pids)
  # Not caught, the error stops the call with its class.
  err <- tryCatch(pool_lapply(1:2, function(i, d) sum(d), d = u, pool = pool), error = function(e) e)
  expect_s3_class(err, "shmr_region_unavailable")
  expect_identical(unlist(pool_lapply(1:2, function(i) i * 2, pool = pool)), c(2, 4))
})

test_that("a released shared data frame in a task's arguments fails the task, not the worker", {
  # On R >= 4.3 the data frame is one ALTREP list; before, a list of views.
  released <- released_object(data.frame(a = as.numeric(1:50), b = rep(c("x", "y"), 25)))
  u <- released$object
  expect_s3_class(tryCatch(sum(u$a), error = function(e) e), "shmr_region_unavailable")
  pool <- pool_create(2)
  on.exit(pool_stop(pool))
  pids <- pool_status(pool)$pid
  got <- pool_lapply(1:4, function(i, d) {
    tryCatch(sum(d$a), error = function(e) c(class(e)[1], e$region))
  }, d = u, pool = pool)
  for (g in got) expect_identical(g, c("shmr_region_unavailable", released$name))
  expect_identical(pool_status(pool)$pid, pids)
  # Saved again, it is still the reference, not data.
  expect_lt(length(serialize(u, NULL)), 2000)
})

test_that("an unavailable list keeps its length and names, and raises when an element is read", {
  unnamed <- released_object(list(as.numeric(1:10), letters))$object
  expect_length(unnamed, 2L)
  expect_error(lapply(unnamed, sum), class = "shmr_region_unavailable")
  expect_error(unnamed[[2]][1], class = "shmr_region_unavailable")
  named <- released_object(list(p = as.numeric(1:10), q = as.numeric(1:5), r = 1:7))$object
  expect_identical(names(named), c("p", "q", "r"))
  expect_error(vapply(named, sum, numeric(1)), class = "shmr_region_unavailable")
  # On R >= 4.3 the list is one object; before, its elements are.
  info <- shared_info(if (getRversion() >= "4.3.0") named else named$q)
  expect_identical(info$available, FALSE)
  expect_match(info$name, "^shmr_[A-Za-z0-9]+$")
  expect_match(info$reason, "no shared region named")
  expect_true(shared_info(share(as.numeric(1:3)))$available)
  # Returned from a function (R reads the length of every list a function
  # returns) and saved again, it is still the same reference.
  again <- (function() unserialize(serialize(unnamed, NULL)))()
  expect_length(again, 2L)
  expect_error(sum(again[[1]]), class = "shmr_region_unavailable")
})

test_that("a list state whose length is not its node's is refused as unavailable", {
  skip_if(getRversion() < "4.3.0", "the length field is in the state of an ALTREP list")
  x <- share(list(as.numeric(1:10), letters))
  bytes <- serialize(x, NULL)
  at <- grepRaw(";length=2", bytes, fixed = TRUE)
  expect_length(at, 1L)
  bytes[at + 8L] <- charToRaw("3")
  got <- collect_warnings(unserialize(bytes))
  expect_length(got$warnings, 1L)
  expect_match(conditionMessage(got$warnings[[1]]), "length is not its node's")
  expect_error(got$value[[1]], class = "shmr_region_unavailable")
  # The original state is untouched by it.
  expect_identical(fetch(unserialize(serialize(x, NULL))), list(as.numeric(1:10), letters))
})

test_that("a released region in a mirai task's arguments leaves the daemon connected", {
  skip_if_not_installed("mirai")
  profile <- "shmr_test_unavailable"
  start_two_daemons(profile)
  on.exit(mirai::daemons(0, .compute = profile))
  released <- released_object()
  u <- released$object
  name <- released$name
  got <- mirai::mirai_map(1:4, function(i, d) {
    tryCatch(sum(d), error = function(e) c(class(e)[1], e$region))
  }, .args = list(d = u), .compute = profile)[]
  for (g in got) expect_identical(g, c("shmr_region_unavailable", name))
  m <- mirai::mirai(sum(d), d = u, .compute = profile)
  value <- mirai::call_mirai(m)$data
  expect_true(mirai::is_mirai_error(value))
  expect_match(conditionMessage(value), "is not available here")
  expect_identical(mirai::status(.compute = profile)$connections, 2L)
  # A data frame (one ALTREP list on R >= 4.3) likewise.
  frame <- released_object(data.frame(a = as.numeric(1:20), b = letters[1:20]))
  got <- mirai::mirai_map(1:2, function(i, d) {
    tryCatch(sum(d$a), error = function(e) c(class(e)[1], e$region))
  }, .args = list(d = frame$object), .compute = profile)[]
  for (g in got) expect_identical(g, c("shmr_region_unavailable", frame$name))
  expect_identical(mirai::status(.compute = profile)$connections, 2L)
})

test_that("a daemon under options(warn = 2) that receives an unavailable object stays connected", {
  skip_if_not_installed("mirai")
  profile <- "shmr_test_unavailable_warn2"
  start_two_daemons(profile)
  on.exit(mirai::daemons(0, .compute = profile))
  # As a profile or everywhere() may set it: warnings become errors, and one
  # raised while the daemon unserializes a task's arguments would end it.
  mirai::collect_mirai(mirai::everywhere(options(warn = 2), .compute = profile))
  expect_identical(mirai::collect_mirai(mirai::mirai(getOption("warn"), .compute = profile)), 2L)
  released <- released_object()
  got <- mirai::mirai_map(1:4, function(i, d) {
    tryCatch(sum(d), error = function(e) c(class(e)[1], e$region))
  }, .args = list(d = released$object), .compute = profile)[]
  for (g in got) expect_identical(g, c("shmr_region_unavailable", released$name))
  expect_identical(mirai::status(.compute = profile)$connections, 2L)
  expect_identical(mirai::collect_mirai(mirai::mirai(getOption("warn"), .compute = profile)), 2L)
})

test_that("a daemon whose options(warning.expression) stops receives an unavailable object and stays connected", {
  skip_if_not_installed("mirai")
  profile <- "shmr_test_unavailable_warning_expression"
  start_two_daemons(profile)
  on.exit(mirai::daemons(0, .compute = profile))
  # R evaluates warning.expression in place of a warning no handler caught,
  # whatever options(warn) says: the warning raised while the daemon
  # unserialized the task's arguments stopped it, and the task never came
  # back.
  mirai::collect_mirai(mirai::everywhere(
    options(warning.expression = quote(stop("warnings are errors here"))), .compute = profile))
  released <- released_object()
  # With a timeout far beyond what the tasks take: a daemon that ended
  # would leave them waiting for ever.
  tasks <- lapply(1:4, function(i) {
    mirai::mirai(c(tryCatch(sum(d), error = function(e) c(class(e)[1], e$region)),
                   deparse(getOption("warning.expression"))),
                 d = released$object, .timeout = 60000, .compute = profile)
  })
  for (g in mirai::collect_mirai(tasks)) {
    expect_identical(g, c("shmr_region_unavailable", released$name,
                          "stop(\"warnings are errors here\")"))
  }
  expect_identical(mirai::status(.compute = profile)$connections, 2L)
  # In this process as well: loading warns, and the setting is left as it was.
  x <- share(as.numeric(1:100))
  bytes <- serialize(x, NULL)
  close(x)
  old <- options(warning.expression = quote(stop("warnings are errors here")))
  on.exit(options(old), add = TRUE)
  loaded <- collect_warnings(unserialize(bytes))
  expect_s3_class(loaded$warnings[[1L]], "shmr_region_unavailable_warning")
  expect_error(sum(loaded$value), class = "shmr_region_unavailable")
  expect_identical(getOption("warning.expression"), quote(stop("warnings are errors here")))
})

test_that("mirai_map() with an unavailable object in its arguments fails the task, not the daemon", {
  skip_if_not_installed("mirai")
  profile <- "shmr_test_unavailable_map"
  start_two_daemons(profile)
  on.exit(mirai::daemons(0, .compute = profile))
  # mirai_map() writes .args and the elements of .x into each task's call,
  # and mirai deparses that call when the task raises an error it does not
  # catch: the unavailable object is read a second time there.
  objects <- list(
    double = released_object(),
    character = released_object(rep(c("u", "v"), 50)),
    frame = released_object(data.frame(a = as.numeric(1:20), b = letters[1:20]))
  )
  expect_task_failed_here <- function(results, name) {
    for (r in results) {
      expect_true(mirai::is_mirai_error(r))
      expect_match(conditionMessage(r), sprintf("shared region '%s' is not available here", name),
                   fixed = TRUE)
    }
  }
  for (o in objects) {
    by_args <- mirai::mirai_map(1:2, function(i, d) length(unlist(d)) + i,
                                .args = list(d = o$object), .compute = profile)[]
    expect_task_failed_here(by_args, o$name)
    by_element <- mirai::mirai_map(list(o$object, o$object), function(d) length(unlist(d)),
                                   .compute = profile)[]
    expect_task_failed_here(by_element, o$name)
    expect_identical(mirai::status(.compute = profile)$connections, 2L)
  }
  # A task that fails for another reason with one in its call, too.
  other <- mirai::mirai_map(1:2, function(i, d) stop("task's own error"),
                            .args = list(d = objects$double$object), .compute = profile)[]
  for (r in other) expect_match(conditionMessage(r), "task's own error")
  expect_identical(mirai::status(.compute = profile)$connections, 2L)
  expect_identical(unlist(mirai::mirai_map(1:2, function(i) i * 2, .compute = profile)[]), c(2, 4))
})
