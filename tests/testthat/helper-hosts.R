# Simulated hosts, for the tests of several machines (and the benchmark's
# "several machines" metric, which sources this file).
#
# A simulated host is a set of processes in their own mount, UTS, IPC and PID
# namespaces with a private tmpfs on /dev/shm and a host name of their own:
# it cannot see the other hosts' /dev/shm. It keeps the machine's network
# namespace; traffic goes to loopback addresses only, and the owner (this R
# process) gives its daemons the URL tcp://127.0.0.2:<port>, so a server
# bound to another address, or an origin written as 127.0.0.1, fails as it
# would between real machines. mirai daemons are launched into a host
# unchanged, with launch_remote() and a remote_config() whose command enters
# the namespaces (the path ssh_config() takes). Needs root, unshare and
# nsenter; every namespace, mount and process is removed at the end, also
# when a test fails.

sim_owner_address <- "127.0.0.2"

# NULL when simulated hosts can be made here, else the reason they cannot.
sim_hosts_unavailable <- function() {
  if (.Platform$OS.type != "unix" || Sys.info()[["sysname"]] != "Linux") return("not Linux")
  if (Sys.info()[["effective_user"]] != "root") return("needs root (unshare, mount, nsenter)")
  for (tool in c("unshare", "nsenter", "setsid", "mount")) {
    if (!nzchar(Sys.which(tool))) return(sprintf("needs %s", tool))
  }
  if (!requireNamespace("mirai", quietly = TRUE)) return("needs mirai")
  if (!requireNamespace("nanonext", quietly = TRUE)) return("needs nanonext")
  probe <- suppressWarnings(system2("unshare", c(
    "--mount", "--uts", "--ipc", "--pid", "--fork", "--propagation", "private", "sh", "-c",
    shQuote("mount -t tmpfs -o size=1m shmr-probe /dev/shm && hostname shmr-probe")
  ), stdout = FALSE, stderr = FALSE))
  if (!identical(probe, 0L)) return("unshare cannot make private namespaces here")
  NULL
}

skip_without_sim_hosts <- function() {
  testthat::skip_on_cran()
  reason <- sim_hosts_unavailable()
  if (!is.null(reason)) testthat::skip(paste("simulated hosts:", reason))
}

# The scripts that run a command line ($2) in host <init pid> ($1): with
# `exec`, the shell gives way to the command (a daemon: no shell is left to
# report its death). SHMR_SHM_DIR is dropped: a test's private shm directory
# lives on the shared root file system.
sim_launcher <- local({
  paths <- list()
  function(exec = FALSE) {
    key <- if (exec) "exec" else "shell"
    if (is.null(paths[[key]]) || !file.exists(paths[[key]])) {
      path <- tempfile(paste0("shmr-sim-", key, "-"), fileext = ".sh")
      writeLines(c(
        "#!/bin/sh",
        "pid=\"$1\"; shift",
        sprintf("exec nsenter -t \"$pid\" --mount --uts --ipc --pid -- env -u SHMR_SHM_DIR %s sh -c \"%s$1\"",
                if (exec) sim_daemon_env else "", if (exec) "exec " else "")
      ), path)
      Sys.chmod(path, "0700")
      paths[[key]] <<- path
    }
    paths[[key]]
  }
})

# The daemons' malloc returns freed blocks to the system at once (a fixed
# mmap threshold, as the benchmark's workers do), so their private memory
# measures what they hold, not heap they retain from garbage.
sim_daemon_env <- "MALLOC_MMAP_THRESHOLD_=131072"

# Starts host `name`: returns a list with `name`, `pid` (of the process that
# holds the namespaces; killing it ends the host) and `unshare` (its parent).
# The host also ends when this R process does, however it ends: a watchdog
# outside the namespaces kills `unshare` once this process is gone, and
# `--kill-child` passes that on to the namespaces' init. Without it, an R
# process that crashes before its deferred clean-up runs (mirai's dispatcher
# can segfault at exit after an error) leaves the host and its tmpfs behind.
sim_host_start <- function(name, shm_size = "2g") {
  inner <- sprintf(
    "mount -t tmpfs -o size=%s,mode=1777 shmr-sim-%s /dev/shm && hostname %s && exec sleep infinity",
    shm_size, name, name
  )
  outer <- sprintf(
    "setsid unshare --mount --uts --ipc --pid --kill-child --mount-proc --propagation private sh -c %s </dev/null >/dev/null 2>&1 & echo $!",
    shQuote(inner)
  )
  unshare_pid <- as.integer(system2("sh", c("-c", shQuote(outer)), stdout = TRUE))
  sim_watch_owner(unshare_pid)
  host <- list(name = name, unshare = unshare_pid, pid = NA_integer_)
  deadline <- Sys.time() + 10
  repeat {
    child <- suppressWarnings(run_tool("pgrep", c("-P", unshare_pid), stdout = TRUE))
    if (length(child) == 1L) {
      seen <- suppressWarnings(system2("nsenter", c("-t", child, "--uts", "hostname"),
                                       stdout = TRUE, stderr = FALSE))
      if (identical(seen, name)) {
        host$pid <- as.integer(child)
        return(host)
      }
    }
    if (Sys.time() > deadline) {
      sim_host_stop(host)
      stop("simulated host ", name, " did not start")
    }
    Sys.sleep(0.05)
  }
}

# Kills `unshare_pid` once this R process has gone; ends by itself when
# `unshare_pid` goes first (sim_host_stop()).
sim_watch_owner <- function(unshare_pid) {
  watch <- sprintf(
    "while kill -0 %d 2>/dev/null && kill -0 %d 2>/dev/null; do sleep 1; done; kill -KILL %d 2>/dev/null",
    Sys.getpid(), unshare_pid, unshare_pid
  )
  system2("setsid", c("sh", "-c", shQuote(watch)), stdout = FALSE, stderr = FALSE, stdin = "/dev/null",
          wait = FALSE)
}

# Ends the host: SIGKILL to the namespaces' init ends every process in it,
# and the tmpfs with the last of them.
sim_host_stop <- function(host) {
  if (!is.na(host$pid)) tools::pskill(host$pid, tools::SIGKILL)
  if (!is.na(host$unshare)) tools::pskill(host$unshare, tools::SIGKILL)
  deadline <- Sys.time() + 10
  while (Sys.time() < deadline &&
         (sim_process_exists(host$pid) || sim_process_exists(host$unshare))) {
    Sys.sleep(0.05)
  }
  invisible()
}

# Runs a system tool (not R) without the sanitizer library that
# `make test-asan` preloads into every process: pgrep, for one, never returns
# with libasan preloaded (it waits on a lock forever).
run_tool <- function(command, args, ...) {
  if (grepl("libasan", Sys.getenv("LD_PRELOAD"), fixed = TRUE)) {
    args <- c("-u", "LD_PRELOAD", command, args)
    command <- "env"
  }
  system2(command, args, ...)
}

# Whether the lines read from /proc/<pid>/stat are those of a running
# process: neither gone (nothing read) nor a zombie.
stat_shows_running <- function(stat) {
  length(stat) == 1L && nzchar(stat) && !grepl("^[0-9]+ \\(.*\\) [ZX] ", stat)
}

sim_process_exists <- function(pid) {
  if (is.na(pid)) return(FALSE)
  stat <- tryCatch(suppressWarnings(readLines(sprintf("/proc/%d/stat", pid), warn = FALSE)),
                   error = function(e) "")
  stat_shows_running(stat)
}

# Whether process `pid` of `host` (a PID of the host's namespace) runs.
sim_host_process_exists <- function(host, pid) {
  stat_shows_running(suppressWarnings(
    sim_host_run(host, sprintf("cat /proc/%d/stat 2>/dev/null", as.integer(pid)))))
}

# Runs a shell command line in the host; returns its standard output.
sim_host_run <- function(host, command) {
  system2(sim_launcher(), c(host$pid, shQuote(command)), stdout = TRUE, stderr = TRUE)
}

# Runs R code (a single string) in a fresh R process of the host; returns its
# standard output lines.
sim_host_r <- function(host, code) {
  rscript <- file.path(R.home("bin"), "Rscript")
  sim_host_run(host, paste(shQuote(rscript), "--vanilla -e", shQuote(code)))
}

sim_remote_config <- function(host) {
  mirai::remote_config(command = sim_launcher(exec = TRUE), args = c(host$pid, "."), quote = TRUE,
                       rscript = file.path(R.home("bin"), "Rscript"))
}

sim_counter <- local({
  n <- 0L
  function() {
    n <<- n + 1L
    n
  }
})

# A cluster: simulated hosts `hosts`, each with `per_host` mirai daemons,
# plus `local` daemons on this (the owner's) host, all connected to a new
# compute profile whose URL is on `address`, 127.0.0.2 by default (tls+tcp
# with `tls`). Returns an
# environment with `profile`, `url`, `tls` and `hosts`. Everything (daemons,
# hosts, and this process's region server) is removed when the frame
# `envir` exits (a test's, by default), also when it fails.
sim_cluster <- function(hosts = c("simB", "simC"), per_host = 2L, local = 1L, tls = FALSE,
                        shm_size = "2g", envir = parent.frame(), address = sim_owner_address) {
  cluster <- new.env(parent = emptyenv())
  cluster$profile <- sprintf("shmr_sim_%d_%d", Sys.getpid(), sim_counter())
  cluster$hosts <- list()
  cluster$tls <- tls
  sim_defer(bquote(sim_cluster_stop(.(cluster))), envir)
  url <- sprintf("%s://%s:0", if (tls) "tls+tcp" else "tcp", address)
  mirai::daemons(url = url, dispatcher = TRUE, .compute = cluster$profile)
  cluster$url <- mirai::status(.compute = cluster$profile)$daemons
  for (name in hosts) {
    host <- sim_host_start(sprintf("%s-%d", name, Sys.getpid()), shm_size)
    cluster$hosts[[name]] <- host
    mirai::launch_remote(per_host, remote = sim_remote_config(host), .compute = cluster$profile)
  }
  if (local > 0L) {
    old <- Sys.getenv("MALLOC_MMAP_THRESHOLD_", NA)
    Sys.setenv(MALLOC_MMAP_THRESHOLD_ = "131072")
    mirai::launch_local(local, .compute = cluster$profile)
    if (is.na(old)) Sys.unsetenv("MALLOC_MMAP_THRESHOLD_") else Sys.setenv(MALLOC_MMAP_THRESHOLD_ = old)
  }
  cluster$expected <- per_host * length(hosts) + local
  sim_wait_connections(cluster, cluster$expected)
  cluster
}

# Runs the call `expr` when `envir` ends: a function's frame, or testthat's
# teardown environment (the end of a test file).
sim_defer <- function(expr, envir) {
  if (requireNamespace("withr", quietly = TRUE)) {
    do.call(withr::defer, list(expr, envir = envir))
  } else {
    do.call(base::on.exit, list(expr, TRUE, FALSE), envir = envir)
  }
}

# Runs `fun(...)` on every daemon of the cluster once (mirai::everywhere())
# and returns the values, each with the daemon's `host` (its host name) and
# `pid` added. `fun` travels without its enclosing environment: what it
# needs comes through `args`, so no object of the test is sent by accident.
sim_on_each <- function(cluster, fun, args = list()) {
  environment(fun) <- globalenv()
  calls <- mirai::everywhere(
    {
      value <- do.call(fun, args)
      list(host = Sys.info()[["nodename"]], pid = Sys.getpid(), value = value)
    },
    .args = list(fun = fun, args = args), .compute = cluster$profile
  )
  mirai::collect_mirai(calls)
}

sim_connections <- function(cluster) mirai::status(.compute = cluster$profile)$connections

sim_wait_connections <- function(cluster, n, timeout = 60) {
  deadline <- Sys.time() + timeout
  while (sim_connections(cluster) != n && Sys.time() < deadline) Sys.sleep(0.05)
  if (sim_connections(cluster) != n) {
    stop(sprintf("expected %d daemons connected, found %d; processes of the hosts:\n%s",
                 n, sim_connections(cluster), sim_hosts_processes(cluster)))
  }
}

# The processes running in each simulated host of `cluster`, as text: what a
# failure to connect leaves to look at (a daemon that never started, or one
# that started and waits).
sim_hosts_processes <- function(cluster) {
  lines <- unlist(lapply(names(cluster$hosts), function(name) {
    host <- cluster$hosts[[name]]
    out <- suppressWarnings(run_tool("nsenter", c("-t", host$pid, "--pid", "--mount", "ps", "-eo",
                                                 "pid,etimes,stat,args"),
                                     stdout = TRUE, stderr = TRUE))
    c(sprintf("%s (pid %s):", name, host$pid), paste(" ", substr(out, 1, 200)))
  }))
  paste(lines, collapse = "\n")
}

sim_cluster_stop <- function(cluster) {
  try(mirai::daemons(0, .compute = cluster$profile), silent = TRUE)
  for (host in cluster$hosts) sim_host_stop(host)
  try(shmr:::stop_region_server(), silent = TRUE)
  invisible()
}

# unshare processes of this process's simulated hosts still running (there
# should be none once a test is over); another test run's hosts are its own.
sim_leftover_hosts <- function() {
  pattern <- sprintf("[u]nshare .*shmr-sim-[^ ]*-%d ", Sys.getpid())
  out <- suppressWarnings(run_tool("pgrep", c("-f", shQuote(pattern)), stdout = TRUE))
  as.integer(out)
}
