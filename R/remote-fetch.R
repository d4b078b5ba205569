# The worker side of several machines: getting a local copy (a replica) of a
# region whose origin is on another host.
#
# Called from the C++ glue while an object is unserialized (view_state.cpp),
# so it never raises an error: it returns NULL when the region can now be
# mapped here, or the reason it cannot. Exactly one process per host fetches
# (the fetch lock, released by the kernel if that process dies); the others
# wait for it and map its copy. Bytes are written straight into the copy's
# mapping, chunk by chunk, so the fetching process's own memory stays small.

remote_obtain <- function(region, origin) {
  tryCatch({
    obtain_replica(region, .Call(shmr_parse_origin, origin))
    NULL
  }, error = function(e) conditionMessage(e))
}

obtain_replica <- function(region, origin) {
  if (is.null(origin)) stop("malformed origin")
  deadline <- Sys.time() + remote_timeout()
  local_copy <- function() {
    .Call(shmr_local_copy, region, origin$host, origin$size, origin$creator_pid, origin$created)
  }
  here <- c("origin", "replica")
  lock <- NULL
  waits <- 0L
  repeat {
    if (local_copy() %in% here) return(invisible())
    # An interrupt between taking the lock and registering its release
    # would leave it to the garbage collector, and the host's other
    # processes waiting (shmr holds an interrupt until its call returns).
    suspendInterrupts({
      lock <- .Call(shmr_fetch_lock, region)
      if (!is.null(lock)) on.exit(.Call(shmr_fetch_unlock, lock))
    })
    if (!is.null(lock)) break
    if (Sys.time() > deadline) {
      stop(sprintf("timed out after %g s waiting for another process of this host to copy it",
                   remote_timeout()))
    }
    Sys.sleep(0.02)
    # A wait can last as long as a copy: collect its small garbage as it
    # goes rather than let it pile up in the heap until R's next collection.
    waits <- waits + 1L
    if (waits %% 25L == 0L) gc(verbose = FALSE, full = FALSE)
  }
  # Another process may have finished the copy while this one waited.
  found <- local_copy()
  if (found %in% here) return(invisible())
  # A copy of the region its owner shared before under this name (closed
  # since) makes way: the owner's host no longer has that region.
  if (found == "superseded") {
    .Call(shmr_remove_superseded_copy, region, origin$host, origin$size, origin$creator_pid,
          origin$created)
  }
  # Or failed at the end of the time this one had.
  if (Sys.time() > deadline) {
    stop(sprintf(if (waits > 0L) {
      "timed out after %g s waiting for another process of this host to copy it"
    } else {
      "the timeout of %g s ran out before the copy began"
    }, remote_timeout()))
  }
  refuse_if_silent(origin$address)
  need_nanonext()
  # What killed processes of this host left (copies, unfinished files) goes
  # now rather than piling up until someone runs prune_shared().
  prune_dead_copies(after_wait = waits > 0L)
  # A copy that stopped midway is not this condition (fetch_replica() says
  # how much came): that server did answer. Nor is one that began after a
  # wait for another process's copy: the server was busy serving it, and
  # this one had only what was left of its time.
  withCallingHandlers(fetch_replica(region, origin, deadline),
                      shmr_deadline_reached = function(e) {
                        if (waits == 0L) remember_silent(origin$address, conditionMessage(e))
                      })
  invisible()
}

# Looking for what killed processes left reads the header of every region
# of the host: before each fetch, a task of many small objects on a host
# that keeps many copies did work that grew with their product (1,800 read
# calls and 4 ms per fetch with 500 copies). A process looks at most every
# `prune_interval` seconds, and always after it waited for another process
# of its host to copy a region (that process may have been killed midway).
prune_interval <- 2
prune_state <- new.env(parent = emptyenv())

prune_dead_copies <- function(after_wait = FALSE) {
  last <- prune_state$at
  if (!after_wait && identical(prune_state$pid, Sys.getpid()) && !is.null(last) &&
      as.numeric(Sys.time() - last, units = "secs") < prune_interval) {
    return(invisible())
  }
  .Call(shmr_prune_remote_copies)
  prune_state$at <- Sys.time()
  prune_state$pid <- Sys.getpid()
  invisible()
}

# Region servers that did not answer this process within the timeout, by
# address, with when and what was said. A task's objects from one server
# would otherwise each wait the whole timeout again (every column of a data
# frame has its own region on R < 4.3): for the length of the timeout after
# such a failure, they fail at once with its reason. A refused connection
# or a failed TLS handshake fails within seconds and is not remembered: a
# replaced server may listen on the same address at once (a fixed port).
silent_servers <- new.env(parent = emptyenv())

remember_silent <- function(address, reason) {
  assign(address, list(at = Sys.time(), reason = reason), envir = silent_servers)
}

refuse_if_silent <- function(address) {
  seen <- silent_servers[[address]]
  if (is.null(seen)) return(invisible())
  ago <- as.numeric(Sys.time() - seen$at, units = "secs")
  if (ago >= remote_timeout()) {
    rm(list = address, envir = silent_servers)
    return(invisible())
  }
  stop(sprintf(paste0("%s (%.1f s ago, for another object: that server is not asked again ",
                      "until %g s have passed)"), seen$reason, ago, remote_timeout()))
}

# Requests for the next chunks are sent before the one asked first has
# arrived, so the server reads and sends a chunk while this process copies
# the one before: with one request at a time, each side waited for the
# other. Replies are taken in the order asked.
fetch_replica <- function(region, origin, deadline) {
  fallback <- copy_fallback_directory()
  # Likewise for the copy's file, its whole size reserved (obtain_replica()).
  suspendInterrupts({
    builder <- tryCatch(
      .Call(shmr_replica_begin, region, origin$host, origin$size, origin$creator_pid,
            origin$created, if (is.null(fallback$problem)) fallback$path else "", shm_capacity()),
      error = function(e) {
        if (is.null(fallback$problem)) stop(e)
        stop(conditionMessage(e), "; nor could the copy be kept as a file: ", fallback$problem,
             call. = FALSE)
      })
    on.exit(.Call(shmr_replica_abort, builder))
  })
  sock <- origin_socket(origin, deadline)
  on.exit(close(sock), add = TRUE)
  host <- .Call(shmr_host_identity)
  chunk <- remote_chunk_size()
  in_flight <- list()
  on.exit(for (asked in in_flight) nanonext::stop_aio(asked$sent$aio), add = TRUE, after = FALSE)
  ask <- function(offset, n) {
    request <- sprintf("GET %s %s %.0f %.0f %s", region, origin$token, offset, n, host)
    list(offset = offset, n = n, sent = origin_send(sock, deadline, request))
  }
  # Ranges not asked for yet, as c(offset, length): the region, and then the
  # rests of replies shorter than asked.
  rests <- list(c(0, origin$size))
  copied <- 0
  repeat {
    while (length(in_flight) < remote_requests_in_flight && length(rests)) {
      range <- rests[[1L]]
      n <- min(chunk, range[[2L]])
      rests <- if (n < range[[2L]]) c(list(range + c(n, -n)), rests[-1L]) else rests[-1L]
      in_flight[[length(in_flight) + 1L]] <- ask(range[[1L]], n)
    }
    if (!length(in_flight)) break
    asked <- in_flight[[1L]]
    reply <- tryCatch(origin_reply(asked$sent, sock, origin$address), error = function(e) {
      # The timeout covers the whole copy: say so, rather than that the
      # server did not answer, once part of it came. (A request waits until
      # the deadline, but its timer may fire a moment before it.)
      if (copied > 0 && inherits(e, "shmr_deadline_reached")) {
        stop(sprintf(paste0(
          "the copy did not complete within %g s (%s of %s bytes copied): a larger object or ",
          "a slower network needs a longer timeout (SHMR_REMOTE_TIMEOUT on workers, ",
          "options(shmr.remote_timeout) elsewhere)"), remote_timeout(),
          format_count(copied),
          format_count(origin$size)), call. = FALSE)
      }
      stop(e)
    })
    in_flight <- in_flight[-1L]
    check_reply(reply, origin$address)
    # The server sends at most its own chunk size, which may be smaller:
    # the rest of the range is asked for again, in chunks of that size.
    got <- length(reply) - 1
    if (got < 1 || got > asked$n) {
      stop("the region server at ", origin$address, " sent a chunk of ", got,
           " bytes where at most ", format(asked$n, scientific = FALSE), " were asked for")
    }
    .Call(shmr_replica_write, builder, asked$offset, reply, 1)
    copied <- copied + got
    if (got < asked$n) {
      chunk <- got
      rests[[length(rests) + 1L]] <- c(asked$offset + got, asked$n - got)
    }
    # Each chunk arrives as a new R vector: collect them as they go, so
    # this process's memory stays small whatever the region's size.
    rm(reply)
    gc(verbose = FALSE, full = FALSE)
  }
  .Call(shmr_replica_publish, builder, region)
}

# Where a copy goes as a file when /dev/shm has no room for it: this
# session's directory for file-backed regions, or why there is none (its
# temporary directory removed, read-only, or its path too long). Without one,
# a copy that fits in /dev/shm is still made there.
copy_fallback_directory <- function() {
  tryCatch(list(path = suppressWarnings(data_directory(NULL, FALSE))), error = function(e) {
    list(problem = sprintf("'%s' is not a directory this process can make or use",
                           file.path(tempdir(), "shmr")))
  })
}

# Requests a fetcher has sent and not yet had answered: two let the server
# prepare a chunk while the fetcher copies the one before.
remote_requests_in_flight <- 2L

check_reply <- function(reply, address) {
  status <- as.integer(reply[1L])
  if (status == server_status[["ok"]]) return(invisible())
  text <- rawToChar(reply[-1L])
  what <- switch(as.character(status), "1" = "gone: ", "2" = "refused: ", "")
  stop(sprintf("the region server at %s answered %s%s", address, what, text))
}

trusted_certificates <- new.env(parent = emptyenv())

# A req socket connected to the origin's region server. With TLS, the
# server's certificate is first fetched over an unauthenticated connection
# and checked against the fingerprint the object carries; only then is a
# verified connection opened, and only that one carries the token.
origin_socket <- function(origin, deadline) {
  if (!nzchar(origin$fingerprint)) return(dial_origin(origin$address, NULL))
  cert <- trusted_certificates[[origin$address]]
  if (is.null(cert) || !identical(.Call(shmr_sha256, cert), origin$fingerprint)) {
    probe <- dial_origin(origin$address, nanonext::tls_config(auth = FALSE))
    reply <- tryCatch(origin_request(probe, origin$address, deadline, "CERT"),
                      finally = close(probe))
    check_reply(reply, origin$address)
    cert <- rawToChar(reply[-1L])
    if (!identical(.Call(shmr_sha256, cert), origin$fingerprint)) {
      stop("the region server at ", origin$address, " presented a certificate that does not ",
           "match the object's fingerprint")
    }
    trusted_certificates[[origin$address]] <- cert
  }
  dial_origin(origin$address, nanonext::tls_config(client = c(cert, "")))
}

dial_origin <- function(address, tls) {
  sock <- nanonext::socket("req")
  # No reply is larger than a chunk, its status byte and the protocol's
  # header (which counts): a larger one is dropped before it is read into
  # memory.
  nanonext::opt(sock, "recv-size-max") <- remote_chunk_size() + 1024
  nanonext::dial(sock, url = address, tls = tls, autostart = TRUE)
  sock
}

# Sends `message` and waits for the reply until `deadline`; fails early when
# the connection is refused or TLS authentication fails.
origin_request <- function(sock, address, deadline, message) {
  origin_reply(origin_send(sock, deadline, message), sock, address)
}

# A request in flight: its reply may wait until `deadline`.
origin_send <- function(sock, deadline, message) {
  remaining <- max(0, as.numeric(deadline - Sys.time(), units = "secs"))
  # nanonext takes the wait as an integer of milliseconds: a longer one
  # (a timeout of 25 days or more, or Inf) would become NA, with a warning
  # for each request. So long a wait is none: the request waits for its reply.
  timeout <- if (remaining * 1000 < .Machine$integer.max) remaining * 1000
  cv <- nanonext::cv()
  aio <- nanonext::request(nanonext::context(sock), message, send_mode = "raw",
                           recv_mode = "raw", timeout = timeout, cv = cv)
  list(aio = aio, cv = cv)
}

origin_reply <- function(sent, sock, address) {
  aio <- sent$aio
  started <- Sys.time()
  while (nanonext::unresolved(aio)) {
    nanonext::until(sent$cv, 100)
    if (!nanonext::unresolved(aio)) break
    dialer <- sock$dialer[[1L]]
    if (nanonext::stat(sock, "pipes") == 0) {
      if (nanonext::stat(dialer, "auth") > 0) {
        nanonext::stop_aio(aio)
        stop("TLS authentication with the region server at ", address, " failed")
      }
      if (nanonext::stat(dialer, "refused") >= 3 && Sys.time() - started > 0.5) {
        nanonext::stop_aio(aio)
        stop("the region server at ", address, " refused the connection: the owner exited, ",
             "or its region server was stopped (sending the object again starts a new one), ",
             "or the port is not open to this host")
      }
    }
  }
  value <- aio$data
  if (nanonext::is_error_value(value)) {
    message <- sprintf("no answer from the region server at %s within %g s (%s)", address,
                       remote_timeout(), nanonext::nng_error(value))
    # Each request waits for what is left of the deadline: a timeout means
    # it is reached.
    class <- c(if (value == 5L) "shmr_deadline_reached", "error", "condition")
    stop(structure(class = class, list(message = message, call = NULL)))
  }
  value
}

# Removes the replicas this process keeps among `regions` (all when NULL);
# sent to workers by pools when their owner closes an object.
release_replicas <- function(regions = NULL) {
  .Call(shmr_release_replicas, if (!is.null(regions)) as.character(regions))
}
