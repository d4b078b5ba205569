# A plain mirai daemon (not a pool's) is never told where its caller is, yet
# a share it makes and returns by name means nothing to a caller on another
# host: the region stays behind, and the result arrives unavailable. The
# address the daemon dials is the hint it has; until it has one, a daemon
# learns its caller is elsewhere only from the first shared object that
# arrives from another host.

# What URL `url` says of the host at its other end: "this" host, an "other"
# one, or "unknown" for a loopback address, which is what a daemon on
# another host reached through an SSH tunnel dials too. `local_addresses`:
# this host's interface addresses.
dialed_host_kind <- function(url, local_addresses) {
  if (grepl("^(ipc|abstract|inproc)://", url)) return("this")
  host <- tolower(url_host(url))
  if (!nzchar(host) || host %in% c("localhost", "::1") || startsWith(host, "127.")) {
    return("unknown")
  }
  if (host %in% tolower(local_addresses)) return("this")
  # This host's name, in full or short, whichever form its node name has.
  short <- function(name) sub("\\..*$", "", name)
  node <- tolower(Sys.info()[["nodename"]])
  if (!grepl("^[0-9.:]+$", host) && short(host) == short(node)) return("this")
  "other"
}

# The URL this process dialed as a mirai daemon: the `url` of mirai's
# daemon() on the stack (shmr is loaded while a task runs or unserializes),
# else NULL.
daemon_dialed_url <- function() {
  if (!isNamespaceLoaded("mirai")) return(NULL)
  daemon <- get("daemon", envir = asNamespace("mirai"))
  frame <- innermost_frame(function(frame, i) identical(sys.function(i), daemon))
  url <- if (!is.null(frame)) get0("url", envir = frame, inherits = FALSE)
  if (is.character(url) && length(url) == 1L) url
}

# Whether this process runs as a worker whose task is being read or run: a
# mirai daemon, or a worker of a parallel (PSOCK) cluster, which may run on
# another host too.
running_as_worker <- function() {
  tryCatch({
    if (!is.null(daemon_dialed_url())) return(TRUE)
    work_loop <- get("workLoop", envir = asNamespace("parallel"))
    !is.null(innermost_frame(function(frame, i) identical(sys.function(i), work_loop)))
  }, error = function(e) FALSE)
}

# Called when shmr is loaded: on a daemon whose caller is on another host,
# shares made here travel back as data, as they do for a pool's workers.
note_remote_caller <- function() {
  url <- daemon_dialed_url()
  if (is.null(url) || !requireNamespace("nanonext", quietly = TRUE)) return(invisible())
  if (identical(dialed_host_kind(url, nanonext::ip_addr()), "other")) {
    .Call(shmr_remote_peer, TRUE)
  }
  invisible()
}
