# R runs no exit code when SIGTERM (kill, timeout, Slurm's scancel), SIGHUP
# (a closed terminal or SSH session) or SIGABRT (abort()) ends it: shmr's handler removes
# the regions the process owns first, then the signal ends the process as it
# would have. Each test runs real R processes (Rscript) in a private shm
# directory and data directory.

# Starts `script` (R code) in Rscript under `wrapper` (a shell command with
# %s for the Rscript command line), with SHMR_SHM_DIR set to `shm`. The
# script writes its lines of output to `report`; returns once the report is
# complete (its last line "ready"), with the report's lines and the file in
# which the shell writes the exit status of Rscript.
start_script <- function(script, shm, wrapper = "%s") {
  dir <- tempfile("signals")
  dir.create(dir)
  code <- file.path(dir, "script.R")
  report <- file.path(dir, "report")
  status <- file.path(dir, "status")
  writeLines(c("library(shmr)", sprintf("report <- %s", deparse(report)), script), code)
  rscript <- sprintf("%s --vanilla %s", shQuote(file.path(R.home("bin"), "Rscript")), shQuote(code))
  shell <- sprintf("%s; echo $? > %s", sprintf(wrapper, rscript), shQuote(status))
  system2("env", c(paste0("SHMR_SHM_DIR=", shQuote(shm)), "bash", "-c", shQuote(shell)),
          wait = FALSE, stdout = file.path(dir, "out"), stderr = file.path(dir, "out"))
  for (i in 1:1200) {
    lines <- if (file.exists(report)) readLines(report, warn = FALSE) else character()
    if (identical(utils::tail(lines, 1), "ready")) break
    Sys.sleep(0.05)
  }
  expect_identical(utils::tail(lines, 1), "ready",
                   info = paste(readLines(file.path(dir, "out"), warn = FALSE), collapse = "\n"))
  list(lines = lines, status = status)
}

# The exit status the shell recorded, once Rscript has ended.
exit_status <- function(started) {
  for (i in 1:600) {
    if (file.exists(started$status) && length(readLines(started$status, warn = FALSE))) break
    Sys.sleep(0.05)
  }
  as.integer(readLines(started$status, warn = FALSE))
}

private_dirs <- function() {
  shm <- tempfile("shm")
  data <- tempfile("data")
  dir.create(shm, mode = "0700")
  dir.create(data, mode = "0700")
  list(shm = shm, data = data)
}

everything_in <- function(dir) sort(list.files(dir, all.files = TRUE, no.. = TRUE))

# Shares one region of each kind and reports the PID, then waits.
owner_script <- function(data) {
  c(sprintf("data <- %s", deparse(data)),
    "x <- share(rnorm(1e5))",
    "f <- share(rnorm(1e5), backing = 'mmap', path = data)",
    "p <- share(rnorm(1e5), persist = TRUE)",
    "writeLines(c(Sys.getpid(), shared_name(p), 'ready'), report)",
    "Sys.sleep(120)")
}

test_that("SIGTERM, SIGHUP and SIGABRT remove the regions a process owns, then end it", {
  skip_on_os(c("windows", "mac", "solaris"))
  for (signal in c(TERM = tools::SIGTERM, HUP = tools::SIGHUP, ABRT = 6L)) {
    dirs <- private_dirs()
    # No core file from SIGABRT.
    started <- start_script(owner_script(dirs$data), dirs$shm, wrapper = "ulimit -c 0; %s")
    pid <- as.integer(started$lines[1])
    persistent <- started$lines[2]
    expect_length(everything_in(dirs$shm), 3)
    expect_length(everything_in(dirs$data), 1)
    tools::pskill(pid, signal)
    # Ended by the signal (128 + its number), not by an exit of its own.
    expect_identical(exit_status(started), 128L + as.integer(signal))
    expect_identical(everything_in(dirs$shm), persistent)
    expect_identical(everything_in(dirs$data), character())
    unlink(c(dirs$shm, dirs$data), recursive = TRUE)
  }
})

test_that("a signal the process ignores stays ignored", {
  skip_on_os(c("windows", "mac", "solaris"))
  dirs <- private_dirs()
  # As under nohup: SIGHUP ignored from the start.
  started <- start_script(owner_script(dirs$data), dirs$shm, wrapper = "trap '' HUP; %s")
  pid <- as.integer(started$lines[1])
  tools::pskill(pid, tools::SIGHUP)
  Sys.sleep(1)
  expect_false(file.exists(started$status) && length(readLines(started$status, warn = FALSE)) > 0)
  expect_length(everything_in(dirs$shm), 3)
  tools::pskill(pid, tools::SIGTERM)
  expect_identical(exit_status(started), 128L + tools::SIGTERM)
  expect_length(everything_in(dirs$shm), 1)
  unlink(c(dirs$shm, dirs$data), recursive = TRUE)
})

test_that("a pool's workers and their caller ended by one signal to their group leave no region", {
  skip_on_os(c("windows", "mac", "solaris"))
  skip_if_not(nzchar(Sys.which("setsid")), "needs setsid")
  backends <- c("psock", if (requireNamespace("mirai", quietly = TRUE)) "mirai")
  for (backend in backends) {
    dirs <- private_dirs()
    # Each worker keeps a share of its own; each also returns one, which the
    # caller then owns; and the caller shares one itself.
    script <- c(
      sprintf("pool <- pool_create(2, backend = %s)", deparse(backend)),
      "names <- pool_lapply(1:4, function(i) {",
      "  kept <<- c(if (exists('kept')) kept, list(share(rnorm(1e5))))",
      "  list(pid = Sys.getpid(), kept = shared_name(kept[[length(kept)]]),",
      "       returned = share(rnorm(1e5) + i))",
      "}, pool = pool, chunk_size = 1)",
      "own <- share(rnorm(1e5))",
      "workers <- unique(vapply(names, function(r) r$pid, 0))",
      "writeLines(c(Sys.getpid(), workers, 'ready'), report)",
      "Sys.sleep(120)")
    # setsid: the caller leads a process group of its own, which its workers join.
    started <- start_script(script, dirs$shm, wrapper = "setsid %s")
    pids <- as.integer(utils::head(started$lines, -1))
    expect_gte(length(pids), 2)
    # 4 kept by workers, 4 returned to the caller, 1 the caller's own.
    expect_length(grep("^shmr_", everything_in(dirs$shm)), 9)
    # tools::pskill() signals single processes only; bash's kill a group.
    system2("bash", c("-c", shQuote(sprintf("kill -TERM -- -%d", pids[1]))))
    expect_identical(exit_status(started), 128L + tools::SIGTERM, info = backend)
    for (i in 1:200) {
      if (!any(file.exists(file.path("/proc", pids)))) break
      Sys.sleep(0.05)
    }
    expect_false(any(file.exists(file.path("/proc", pids))), info = backend)
    expect_identical(everything_in(dirs$shm), character(), info = backend)
    unlink(c(dirs$shm, dirs$data), recursive = TRUE)
  }
})

test_that("a forked child ended by SIGTERM removes its own regions, never its parent's", {
  skip_on_os(c("windows", "mac", "solaris"))
  dirs <- private_dirs()
  script <- c(
    "x <- share(rnorm(1e5))",
    "job <- parallel::mcparallel({",
    "  y <- share(rnorm(1e5))",
    "  writeLines(c(shared_name(y), 'ready'), paste0(report, '.child'))",
    "  Sys.sleep(120)",
    "})",
    "for (i in 1:1200) if (file.exists(paste0(report, '.child'))) break else Sys.sleep(0.05)",
    "child <- readLines(paste0(report, '.child'))[1]",
    "writeLines(c(Sys.getpid(), job$pid, shared_name(x), child, 'ready'), report)",
    "Sys.sleep(120)")
  started <- start_script(script, dirs$shm)
  pids <- as.integer(started$lines[1:2])
  parents <- started$lines[3]
  expect_identical(everything_in(dirs$shm), sort(started$lines[3:4]))
  tools::pskill(pids[2], tools::SIGTERM)
  for (i in 1:200) if (length(everything_in(dirs$shm)) < 2) break else Sys.sleep(0.05)
  expect_identical(everything_in(dirs$shm), parents)
  tools::pskill(pids[1], tools::SIGTERM)
  expect_identical(exit_status(started), 128L + tools::SIGTERM)
  expect_identical(everything_in(dirs$shm), character())
  unlink(c(dirs$shm, dirs$data), recursive = TRUE)
})

test_that("an interrupt at any moment of a session's first share() leaves the session working", {
  # R acts on an interrupt in any allocation that collects garbage. Before
  # shmr held interrupts in its C++ code, one that came while the first
  # share() of a session made cpp11's preserve list left it half made: the
  # next share() aborted R ("recursive_init_error") or waited forever.
  skip_on_cran()
  skip_without_callr()
  skip_if_sigint_ignored()
  shm <- tempfile("shm")
  dir.create(shm, mode = "0700")
  on.exit(unlink(shm, recursive = TRUE), add = TRUE)
  for (delay in c(0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4)) {
    marker <- tempfile("sharing")
    child <- callr::r_bg(function(marker) {
      library(shmr)
      chars <- as.character(sample(1e6, 3e6, TRUE))
      writeLines("sharing", marker)
      started <- Sys.time()
      outcome <- tryCatch({
        s <- share(chars)
        Sys.sleep(10)
        "not interrupted"
      }, interrupt = function(e) "interrupted")
      later <- share(list(1, "a"))
      list(outcome = outcome, later = identical(later, list(1, "a")) && is_shared(later))
    }, args = list(marker = marker), env = c(callr::rcmd_safe_env(), SHMR_SHM_DIR = shm))
    expect_true(wait_for_file(marker, child, poll = 0.005), label = paste("delay", delay, "started"))
    Sys.sleep(delay)
    tools::pskill(child$get_pid(), tools::SIGINT)
    child$wait(60000)
    if (child$is_alive()) child$kill()
    result <- tryCatch(child$get_result(), error = function(e) conditionMessage(e))
    expect_identical(result, list(outcome = "interrupted", later = TRUE),
                     label = paste("delay", delay, ":", paste(child$read_all_error(), collapse = " ")))
    unlink(marker)
  }
  expect_identical(everything_in(shm), character())
})

test_that("an interrupt resumed by its handler during share() gives back the whole object", {
  # A calling handler may resume an interrupt (invokeRestart("resume")) and
  # run R code first. The interrupt held during share() is acted on once the
  # entry point has returned, with its value protected: acted on before, in
  # the entry point's last destructor, the handler's collection freed the
  # value on its way back (a segfault in the second round).
  skip_on_cran()
  skip_without_callr()
  skip_if_sigint_ignored()
  shm <- tempfile("shm")
  dir.create(shm, mode = "0700")
  markers <- tempfile("markers")
  dir.create(markers)
  on.exit(unlink(c(shm, markers), recursive = TRUE), add = TRUE)
  delays <- c(0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12)
  child <- callr::r_bg(function(markers, rounds) {
    library(shmr)
    x <- lapply(1:20000, function(i) runif(1000))
    resume <- function(condition) {
      gc()
      invokeRestart("resume")
    }
    # Every interrupt is resumed, wherever it lands.
    withCallingHandlers(vapply(seq_len(rounds), function(k) {
      writeLines("", file.path(markers, paste0("sharing-", k)))
      s <- share(x)
      same <- identical(s, x) && is_shared(s)
      sent <- file.path(markers, paste0("sent-", k))
      while (!file.exists(sent)) Sys.sleep(0.01)
      same
    }, NA), interrupt = resume)
  }, args = list(markers = markers, rounds = length(delays)),
  env = c(callr::rcmd_safe_env(), SHMR_SHM_DIR = shm))
  on.exit(child$kill(), add = TRUE)
  for (k in seq_along(delays)) {
    sharing <- file.path(markers, paste0("sharing-", k))
    expect_true(wait_for_file(sharing, child, poll = 0.005), label = paste("round", k, "started"))
    Sys.sleep(delays[k])
    tools::pskill(child$get_pid(), tools::SIGINT)
    file.create(file.path(markers, paste0("sent-", k)))
  }
  child$wait(60000)
  result <- tryCatch(child$get_result(), error = function(e) conditionMessage(e))
  expect_identical(result, rep(TRUE, length(delays)),
                   label = paste(child$read_all_error(), collapse = " "))
  expect_identical(everything_in(shm), character())
})
