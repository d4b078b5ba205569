#' Shared objects on several machines
#'
#' Shared memory ends at the machine's edge. With mirai daemons on other
#' hosts (started with [mirai::daemons()] and `ssh_config()`,
#' `cluster_config()` or by hand), shmr sends each shared object across the
#' network **once per host**, not once per worker: the first worker of a host
#' that meets the object fetches the region's bytes from its owner and writes
#' them into that host's shared memory under the same name; every other
#' worker of that host maps that copy, zero-copy, as workers on the owner's
#' host map the region itself.
#'
#' @section Remote mode:
#' A shared object serializes as its region's name (about 130 bytes). That
#' name means nothing on another host, so in *remote mode* the object also
#' carries its origin: the address of its owner's region server, a token
#' that is different for every region, a fingerprint of the server's TLS
#' certificate when TLS is used, and the region's identity (host, size,
#' creator, creation time); about 350 bytes for a vector. Remote mode is on
#'
#' * for this process, with `options(shmr.remote = TRUE)` (for example
#'   before [mirai::mirai_map()] with shared objects in `.args`; a value
#'   other than `TRUE`, `FALSE` or `NULL` makes serializing a shared object
#'   an error, and in a worker, where that error would end the worker, a
#'   warning and `FALSE`);
#' * for the calls of a pool whose workers are not all on this host
#'   ([pool_create()] with `backend = "mirai"`), on its own.
#'
#' Off, nothing changes: no server, no extra bytes.
#'
#' On R 4.3 and later an unchanged shared data frame (or list) is one object
#' and carries one origin, whatever its width. On older R, and for a list
#' that was changed, each column is a view that carries the origin. A pool's
#' call then finds each region's origin once; with the option, it is found
#' again for every column each time the object is serialized (35 to 65 us a
#' column on the 2-core machine of the README's figures, so a 2,000-column
#' data frame adds 70 to 130 ms to each [mirai::mirai()] that sends it):
#' there, send wide data frames to many tasks through a pool.
#'
#' @section The region server:
#' The first object serialized in remote mode starts the owner's region
#' server: a separate R process (so it answers while the owner is busy)
#' that maps the owner's exported regions itself and sends them in chunks of
#' at most `getOption("shmr.remote_chunk", 4 MiB)` bytes, so neither the
#' owner's nor the server's private memory grows with the object. It
#' listens on the interface of the daemons' URL (see below for which
#' daemons), on a free port, with TLS when that URL uses
#' TLS (`tls+tcp://`; the certificate is made with [nanonext::write_cert()]);
#' or on `getOption("shmr.remote_url")`, such as `"tls+tcp://10.0.0.5:5555"`
#' for a fixed port a firewall lets through. A wildcard address
#' (`"tcp://0.0.0.0:5555"`) listens on every interface; workers, who cannot
#' dial a wildcard, are given the interface of the daemons' URL instead, else
#' this host's first address ([nanonext::ip_addr()]). It serves only exported regions,
#' only to requests with the region's token, answers "gone" once the object
#' is closed (and, within 2 seconds, once its owner dropped it without
#' `close()`), and exits when the owner exits. It runs in a session of its
#' own and carries on through interrupts: Ctrl-C in the owner's terminal
#' interrupts the owner only, and hosts go on fetching. A worker may ask for
#' chunks of another size (`SHMR_REMOTE_CHUNK`): it gets at most the server's.
#'
#' An owner runs one region server per address its daemons use, started
#' by the first object sent there: an object sent to `tls+tcp://` daemons is
#' served with TLS even when a plain-TCP server already runs for other
#' daemons. The daemons are those of the pool, or of the `.compute` profile
#' of the [mirai::mirai()], [mirai::mirai_map()] or [mirai::everywhere()]
#' call that sends the object; outside such a call (a bare `serialize()`),
#' those of mirai's default profile. `getOption("shmr.remote_url")` puts
#' every object on one server at that address.
#'
#' @section Copies on other hosts (replicas):
#' A copy is built under a hidden temporary name, its space reserved first,
#' checked like any region (header, every node) and against the origin's
#' identity, then published under the region's name. It records that it is
#' a replica, of which origin, and which local process keeps it (the worker
#' that fetched it): [shared_regions()] shows `host`, `replica` and `origin`.
#' The copy is removed when its keeper exits (also when SIGTERM ends it, as
#' `daemons(0)` ends a busy daemon), when the pool that sent it
#' releases it after its owner closed the object (or a deep share holding
#' it) or removed its region with [remove_shared()], or at its next call
#' after the owner dropped the object without `close()` (garbage
#' collected), or, once its keeper is
#' dead without cleaning up (killed by SIGKILL), at that host's next
#' fetch (a process looks for such copies at most every 2 seconds, and
#' after it waited for another one's copy) or by [prune_shared()]. One process per host fetches: the others wait on
#' a lock the kernel releases if that process dies (another one then
#' completes the copy). A region of the same name on that host that is not
#' a copy of that origin is an error naming both, never mapped; but a copy
#' of a region its owner shared earlier under that name (closed since)
#' makes way for the new one.
#'
#' @section When a region cannot be had:
#' An object whose region is gone, unreachable, refused, or not fetched
#' within `getOption("shmr.remote_timeout", 60)` seconds (on daemons, whose
#' options mirai resets after each task, set the environment variable
#' `SHMR_REMOTE_TIMEOUT` instead, for example with
#' `mirai::everywhere(Sys.setenv(SHMR_REMOTE_TIMEOUT = 30))`; the same wait
#' applies to a worker waiting for another one of its host to finish a copy;
#' a value that is not a positive number is warned about once and 60 used)
#' still unserializes:
#' the worker stays connected, and using the object raises an error of class
#' `shmr_region_unavailable` naming the region and the reason. A region
#' server that did not answer a worker within the timeout is not asked
#' again by that worker for the length of the timeout: the other objects of
#' a task from that server fail at once, with the same reason, rather than
#' each after the whole timeout. (A refused connection fails within seconds
#' and is tried again for each object.)
#'
#' @section Security: what the token protects:
#' A region server answers only requests that name an exported region with
#' its token, 131 random bits generated for that region. Someone who can
#' reach the port but never received a shared object learns nothing. The
#' token travels inside every serialized object: anyone who can read those
#' (the daemons, anyone on the network path without TLS) can fetch that
#' region while it is exported. With TLS, a worker checks the server's
#' certificate against the fingerprint its object carries before it sends
#' the token, so a machine in the middle can neither read the data nor
#' obtain tokens. The token does not authenticate workers: trust the hosts
#' your daemons run on.
#'
#' @section Firewalls and SSH tunnels:
#' The region server needs its own port, besides the daemons' one: fix it
#' with `options(shmr.remote_url = "tcp://<ip>:<port>")` and open it to the
#' workers' hosts. Through SSH, forward it as mirai forwards the daemons'
#' port: `options(shmr.remote_url = "tcp://127.0.0.1:5556")` and add
#' `-R 5556:127.0.0.1:5556` to the ssh command (for example in
#' `ssh_config(..., command = "ssh")` arguments or `~/.ssh/config`
#' `RemoteForward`), so workers reach `127.0.0.1:5556` on their host.
#'
#' @section Limits:
#' Writable shares (`readonly = FALSE`, [shared_buffer()]) stay on their
#' host: on another host they are unavailable objects, since writes could
#' not reach the owner. Copies go to the shm directory of each host, which
#' must have room for them. All hosts need the same shmr version (format
#' version 4). mirai cannot address one daemon, so a pool releases copies by
#' sending its release to every daemon. A share made on a worker on another
#' host comes back as data when the worker knows its caller is elsewhere: a
#' pool tells its workers; a plain mirai daemon knows from the address it
#' dials (another host's address or name), or once it received a shared
#' object from another host. One that dials a loopback address (an SSH
#' tunnel) cannot tell, and its shares arrive unavailable: return plain data
#' there, or use a pool. A session that is not a worker (reading results, or
#' a file saved on another host) goes on sharing by name with its host's
#' workers.
#'
#' @return `remote_status()`: `NULL` when no region server runs, else a list
#'   with `pid`, `url` (the address workers dial) and `tls`, one element for each
#'   running server, `exported` (the names of the exported regions) and
#'   `served`, a data frame of `host`, `bytes`, `requests` (what each host
#'   fetched) and `server` (from which server's `url`).
#' @name remote
#' @aliases several-machines
#' @examples
#' \donttest{
#' if (requireNamespace("nanonext", quietly = TRUE)) {
#'   old <- options(shmr.remote = TRUE, shmr.remote_url = "tcp://127.0.0.1:0")
#'   x <- share(rnorm(1e5))
#'   length(serialize(x, NULL))   # the name and the origin
#'   remote_status()$exported
#'   close(x)
#'   options(old)
#' }
#' }
NULL

#' @rdname remote
#' @export
remote_status <- function() {
  servers <- running_servers()
  if (!length(servers)) return(NULL)
  served <- do.call(rbind, lapply(servers, function(s) {
    stats <- control_request(s$control, "STATS", timeout = 10)
    lines <- if (is.character(stats) && nzchar(stats)) strsplit(stats, "\n", fixed = TRUE)[[1L]]
    fields <- strsplit(lines %||% character(), " ", fixed = TRUE)
    data.frame(
      host = vapply(fields, `[`, "", 1L),
      bytes = as.numeric(vapply(fields, `[`, "", 2L)),
      requests = as.numeric(vapply(fields, `[`, "", 3L)),
      server = rep(s$url, length(fields)),
      stringsAsFactors = FALSE
    )
  }))
  rownames(served) <- NULL
  release_dropped_exports()
  field <- function(name, type) unname(vapply(servers, `[[`, type, name))
  list(pid = field("pid", 0L), url = field("url", ""), tls = field("tls", NA),
       exported = names(remote_state$exports), served = served)
}

# This host's identity: host name and the device of the shm directory.
host_identity <- function() .Call(shmr_host_identity)

# options(shmr.remote) set to something other than TRUE, FALSE or NULL, met
# while a shared object is serialized. An error there would take a worker
# down (a daemon or a PSOCK worker that cannot send its result exits), so a
# worker warns and reads the value as FALSE.
bad_remote_option <- function(value) {
  problem <- paste0("options(shmr.remote) must be TRUE or FALSE, not ", describe_value(value))
  if (!running_as_worker()) stop(problem, call. = FALSE)
  warn_once(paste0(problem, "; read as FALSE in this worker"))
  FALSE
}

# A setting from the option `option`, else the environment variable `env`
# (daemons reset options after each task; a variable set once with
# mirai::everywhere(Sys.setenv(...)) stays), else `default`.
# A value that is not a positive number is warned about (once) and replaced
# by `default`: an error could end a daemon, which reads these settings while
# it unserializes its task.
remote_setting <- function(option, env, default) {
  setting <- numeric_setting(option, env)
  if (is.null(setting)) return(default)
  if (!is.na(setting$value) && setting$value > 0) return(setting$value)
  # The default in full: "%g" would say 4.1943e+06 for the chunk's 4194304.
  warn_once(sprintf("%s must be a positive number, not %s; %s is used instead",
                    setting$source, describe_value(setting$given),
                    format(default, scientific = FALSE)))
  default
}

warned_messages <- new.env(parent = emptyenv())

warn_once <- function(message) {
  if (!is.null(warned_messages[[message]])) return(invisible())
  warned_messages[[message]] <- TRUE
  warn_while_unserializing(simpleWarning(message))
}

remote_timeout <- function() remote_setting("shmr.remote_timeout", "SHMR_REMOTE_TIMEOUT", 60)

remote_chunk_size <- function() {
  n <- remote_setting("shmr.remote_chunk", "SHMR_REMOTE_CHUNK", 4 * 1024^2)
  floor(min(max(n, 4096), 256 * 1024^2))
}

# Evaluates `expr` with remote mode on, for a pool over other hosts' daemons,
# whose objects are served from the region server listening on `listen`.
with_remote_mode <- function(expr, listen) {
  old <- remote_state$scope_listen
  remote_state$scope_listen <- listen
  .Call(shmr_remote_scope, TRUE)
  on.exit({
    remote_state$scope_listen <- old
    .Call(shmr_remote_scope, FALSE)
  })
  expr
}
