# The region server: a separate R process per owner that serves the owner's
# exported regions to workers on other hosts, over nanonext sockets.
#
# It runs outside the owner's R thread (the owner is usually blocked
# collecting results), maps each exported region itself (read-only, so its
# own memory stays flat), answers only requests that carry the region's
# token, in chunks of at most `shmr.remote_chunk` bytes, answers "gone" once
# the region's name no longer leads to the file it mapped (the owner closed
# or released it), and exits when the owner does.
#
# Two sockets: a control socket (ipc:// in the owner's private temporary
# directory: only the owner's user reaches it) and the public one, bound to
# the interface of the daemons' URL, with TLS when that URL uses TLS. No
# message from the network is ever unserialized: requests are short text
# lines, replies one status byte and the payload.

# Status bytes of the public protocol.
server_status <- c(ok = 0L, gone = 1L, refused = 2L, bad = 3L)

# The longest request either socket reads; the longest valid one, a GET,
# is under 600 bytes.
max_request_bytes <- 4096

region_server_main <- function(control, listen, owner_pid, owner_ticks, tls, chunk_max,
                               cn = url_host(listen)) {
  # Started through system2(), it holds a copy of every socket its owner had
  # open (R's are not close-on-exec): a pool worker whose connection it held
  # would outlive the pool, for as long as this server runs.
  close_inherited_sockets()
  # An interrupt would end this process (Rscript halts on one), and with it
  # every fetch of other hosts, while the owner lives on: the owner's
  # interrupt is the user's, not the server's. It runs in a session of its
  # own (region_server_at()), out of reach of a terminal's Ctrl-C; a SIGINT
  # sent to it anyway is resumed where it struck, and one that cannot be
  # resumed ends only the turn of the loop it struck (serve_turn()).
  withCallingHandlers(
    serve_regions(control, listen, owner_pid, owner_ticks, tls, chunk_max, cn),
    interrupt = resume_interrupt
  )
}

resume_interrupt <- function(condition) {
  restart <- findRestart("resume")
  if (!is.null(restart)) invokeRestart(restart)
}

serve_regions <- function(control, listen, owner_pid, owner_ticks, tls, chunk_max, cn) {
  ctl <- nanonext::socket("rep", listen = control)
  cert <- if (tls) nanonext::write_cert(cn = cn)
  pub <- nanonext::socket("rep")
  # Requests are short lines: a larger message is dropped, with its
  # connection, before it is read into memory (a peer without a token could
  # otherwise make this process as large as it likes).
  nanonext::opt(ctl, "recv-size-max") <- max_request_bytes
  nanonext::opt(pub, "recv-size-max") <- max_request_bytes
  nanonext::listen(pub, url = listen, fail = "error",
                   tls = if (tls) nanonext::tls_config(server = cert$server))
  bound <- attr(pub$listener[[1L]], "url")
  state <- new.env(parent = emptyenv())
  # name -> list(token, handle); hashed, as a server may export many
  # thousand objects over its life.
  state$exports <- new.env(hash = TRUE, parent = emptyenv())
  state$served <- list()      # host -> c(bytes, requests)
  state$stop <- FALSE
  state$bound <- bound
  state$cert <- if (tls) cert$client[[1L]] else ""
  state$chunk_max <- chunk_max
  # Full chunks are sent from one buffer, kept while hosts fetch: a new
  # vector for each would be new pages to fault in (its malloc returns them
  # at once, see region_server_at()) and garbage to collect.
  state$buffer <- NULL
  state$last_chunk <- Sys.time()
  state$next_sweep <- Sys.time()

  state$cv <- nanonext::cv()
  state$ctl_aio <- nanonext::recv_aio(ctl, mode = "string", cv = state$cv)
  state$pub_aio <- nanonext::recv_aio(pub, mode = "string", cv = state$cv)
  repeat {
    # A calling handler here as well as region_server_main()'s, which covers
    # the setup above: this tryCatch()'s exiting handler is nearer than that
    # one, and would end the turn before an interrupt could be resumed.
    done <- tryCatch(
      withCallingHandlers(serve_turn(state, ctl, pub, owner_pid, owner_ticks),
                          interrupt = resume_interrupt),
      interrupt = function(condition) FALSE
    )
    if (done) break
  }
  for (name in names(state$exports)) {
    handle <- state$exports[[name]]$handle
    if (!is.null(handle)) .Call(shmr_serve_close, handle)
  }
  close(pub)
  close(ctl)
  invisible()
}

# One turn of the server's loop: answers what arrived within half a second.
# TRUE once the server is to stop. A request whose turn an interrupt ended
# is still resolved, so the next turn answers it.
serve_turn <- function(state, ctl, pub, owner_pid, owner_ticks) {
  nanonext::until(state$cv, 500)
  if (!nanonext::unresolved(state$ctl_aio)) {
    reply <- tryCatch(control_reply(state, state$ctl_aio$data), error = function(e) {
      paste("ERR", conditionMessage(e))
    })
    nanonext::send(ctl, reply, mode = "raw", block = 1000)
    if (state$stop) return(TRUE)
    state$ctl_aio <- nanonext::recv_aio(ctl, mode = "string", cv = state$cv)
  }
  if (!nanonext::unresolved(state$pub_aio)) {
    reply <- tryCatch(public_reply(state, state$pub_aio$data), error = function(e) {
      status_reply("bad", conditionMessage(e))
    })
    nanonext::send(pub, reply, mode = "raw", block = 5000)
    state$pub_aio <- nanonext::recv_aio(pub, mode = "string", cv = state$cv)
    # Other chunks sent are garbage: collect them as they go, so memory
    # stays flat while hosts fetch.
    garbage <- length(reply) > 65536L && !identical(reply, state$buffer)
    reply <- NULL
    if (garbage) gc(verbose = FALSE, full = FALSE)
  }
  if (!process_alive(owner_pid, owner_ticks)) return(TRUE)
  if (Sys.time() >= state$next_sweep) {
    release_gone_regions(state)
    release_idle_buffer(state)
  }
  FALSE
}

# An exported object its owner dropped without close() (collected, or its
# region removed) loses its region's name: the server's mapping would keep
# the region's memory until the owner exits. Looked for every 2 seconds.
# The record of an object no longer served answers "gone" for a while, then
# goes: an owner sending many objects would otherwise have its server keep
# one record for each object it ever sent.
release_gone_regions <- function(state) {
  now <- Sys.time()
  for (name in names(state$exports)) {
    export <- state$exports[[name]]
    if (is.null(export$handle)) {
      if (difftime(now, export$gone_at, units = "secs") > gone_record_seconds) rm(list = name, envir = state$exports)
    } else if (isTRUE(.Call(shmr_serve_gone, export$handle))) {
      mark_gone(state, name)
    }
  }
  state$next_sweep <- now + 2
}

# How long a fetch of an object no longer served learns that it is gone,
# rather than that no such object is served.
gone_record_seconds <- 600

# Stops serving `name`, remembered as gone so a request with its token
# learns why.
mark_gone <- function(state, name) {
  export <- state$exports[[name]]
  if (is.null(export)) return(invisible())
  if (!is.null(export$handle)) .Call(shmr_serve_close, export$handle)
  state$exports[[name]] <- list(token = export$token, handle = NULL, gone_at = Sys.time())
  invisible()
}

# An idle server holds no chunk: the buffer goes once no chunk was sent for
# 2 seconds (a full collection, as it has outlived the young ones).
release_idle_buffer <- function(state) {
  idle <- as.numeric(difftime(Sys.time(), state$last_chunk, units = "secs"))
  if (is.null(state$buffer) || idle < 2) return(invisible())
  state$buffer <- NULL
  gc(verbose = FALSE, full = TRUE)
  invisible()
}

status_reply <- function(status, text = "") {
  c(as.raw(server_status[[status]]), charToRaw(enc2utf8(text)))
}

# Requests from the owner: "HELLO", "EXPORT <name> <token>", "UNEXPORT
# <name>", "STATS", "STOP".
control_reply <- function(state, message) {
  if (!is.character(message) || length(message) != 1L) stop("bad request")
  words <- strsplit(message, " ", fixed = TRUE)[[1L]]
  switch(words[1L],
    HELLO = paste(Sys.getpid(), state$bound,
                  if (nzchar(state$cert)) .Call(shmr_sha256, state$cert) else "-", sep = "\n"),
    EXPORT = {
      name <- words[2L]
      old <- state$exports[[name]]
      if (!is.null(old$handle)) .Call(shmr_serve_close, old$handle)
      state$exports[[name]] <- list(token = words[3L], handle = .Call(shmr_serve_open, name))
      "OK"
    },
    UNEXPORT = {
      mark_gone(state, words[2L])
      "OK"
    },
    STATS = paste(vapply(names(state$served), function(host) {
      sprintf("%s %.0f %.0f", host, state$served[[host]][1L], state$served[[host]][2L])
    }, ""), collapse = "\n"),
    STOP = {
      state$stop <- TRUE
      "OK"
    },
    stop("unknown request")
  )
}

# Requests from workers: "CERT" (the server's certificate, public, so a
# worker can check it against the fingerprint its object carries before it
# sends a token), "GET <name> <token> <offset> <length> <host>".
public_reply <- function(state, message) {
  if (!is.character(message) || length(message) != 1L || nchar(message, "bytes") > 600L) {
    return(status_reply("bad", "malformed request"))
  }
  words <- strsplit(message, " ", fixed = TRUE)[[1L]]
  if (identical(words, "CERT")) return(status_reply("ok", state$cert))
  if (length(words) != 6L || words[1L] != "GET") return(status_reply("bad", "malformed request"))
  export <- if (nzchar(words[2L])) state$exports[[words[2L]]]
  # The same answer for an unknown name and a wrong token: a request learns
  # nothing without the token.
  if (is.null(export) || !identical(export$token, words[3L])) {
    return(status_reply("refused", "no such region is served, or the token is wrong"))
  }
  offset <- suppressWarnings(as.numeric(words[4L]))
  length <- suppressWarnings(as.numeric(words[5L]))
  if (is.na(offset) || is.na(length) || offset < 0 || length < 1 || offset != floor(offset) ||
      length != floor(length)) {
    return(status_reply("bad", "bad chunk"))
  }
  # A fetcher may ask for more than this server sends at once (its own
  # chunk size): it gets at most chunk_max bytes and asks again.
  length <- min(length, state$chunk_max)
  chunk <- if (!is.null(export$handle)) {
    .Call(shmr_serve_chunk, export$handle, offset, length, state$buffer)
  }
  if (is.null(state$buffer) && length == state$chunk_max && !is.null(chunk)) state$buffer <- chunk
  if (is.null(chunk)) {
    mark_gone(state, words[2L])
    return(status_reply("gone", "the object was closed by its owner"))
  }
  state$last_chunk <- Sys.time()
  host <- substr(words[6L], 1L, 100L)
  count <- state$served[[host]] %||% c(0, 0)
  state$served[[host]] <- count + c(length, 1)
  chunk
}

url_host <- function(url) {
  sub("^\\[(.*)\\]$", "\\1", sub(":[0-9]+$", "", sub("^[a-z+]+://", "", url)))
}

# --- owner side ------------------------------------------------------------

remote_state <- new.env(parent = emptyenv())
remote_state$servers <- list()  # listen URL -> the server's record
remote_state$exports <- list()  # region -> its origin on each server
remote_state$dropped <- character()  # exports forgotten, not yet released on pools

server_counter <- local({
  n <- 0L
  function() {
    n <<- n + 1L
    n
  }
})

need_nanonext <- function() {
  if (!requireNamespace("nanonext", quietly = TRUE)) {
    stop("shmr's remote mode needs the nanonext package", call. = FALSE)
  }
}

# The address the region server listens on: the option shmr.remote_url, else
# the scheme and interface of the daemons' URL of mirai's compute profile
# `compute`, else this host's first address (plain TCP), on any free port.
remote_listen_url <- function(compute = NULL) {
  url <- getOption("shmr.remote_url")
  if (!is.null(url)) {
    if (!is.character(url) || length(url) != 1L || !grepl("^(tcp|tls\\+tcp)://.+:[0-9]+$", url)) {
      stop("option shmr.remote_url must be a URL such as \"tcp://10.0.0.5:0\" or ",
           "\"tls+tcp://10.0.0.5:5555\"", call. = FALSE)
    }
    return(url)
  }
  daemons_url <- daemons_tcp_url(compute)
  if (!is.null(daemons_url)) return(sub(":[0-9]+$", ":0", daemons_url))
  sprintf("tcp://%s:0", first_address() %||% "127.0.0.1")
}

# The TCP or TLS URL the daemons of mirai's profile `compute` dial, or NULL.
daemons_tcp_url <- function(compute = NULL) {
  url <- if (requireNamespace("mirai", quietly = TRUE)) {
    tryCatch(mirai::status(.compute = compute)$daemons, error = function(e) NULL)
  }
  if (is.character(url) && length(url) == 1L && grepl("^(tcp|tls\\+tcp)://", url)) url
}

first_address <- function() {
  ip <- nanonext::ip_addr()
  ip <- ip[nzchar(ip)]
  if (length(ip)) ip[[1L]]
}

is_wildcard_host <- function(host) host %in% c("0.0.0.0", "::", "*", "")

# The host workers are told to dial for a server listening on `listen`. A
# wildcard (every interface, as a firewall rule may want) cannot be dialed:
# a worker would reach itself. Workers then get the interface of the
# daemons' URL, which they reach already, else this host's first address.
advertised_host <- function(listen) {
  host <- url_host(listen)
  if (!is_wildcard_host(host)) return(host)
  # Found here, not lazily inside mirai::status(), whose own `.compute` it
  # would find.
  compute <- mirai_compute_in_progress()
  daemons_host <- url_host(daemons_tcp_url(compute) %||% "")
  if (!is_wildcard_host(daemons_host)) return(daemons_host)
  first_address() %||% Sys.info()[["nodename"]]
}

# `bound` (a URL the server reported) with `host` in place of its host.
with_url_host <- function(bound, host) {
  if (grepl(":", host, fixed = TRUE)) host <- paste0("[", host, "]")
  sub("^([a-z+]+://).*(:[0-9]+)$", paste0("\\1", host, "\\2"), bound)
}

# The compute profile the mirai call in progress sends to: the `.compute`
# argument of the innermost mirai(), mirai_map() or everywhere() on the
# stack, so that an object sent to TLS daemons is served with TLS whatever
# the default profile. NULL (mirai's default profile) outside such a call.
mirai_compute_in_progress <- function() {
  if (!isNamespaceLoaded("mirai")) return(NULL)
  mirai_ns <- asNamespace("mirai")
  frame <- innermost_frame(function(frame, i) {
    exists(".compute", envir = frame, inherits = FALSE) &&
      identical(topenv(environment(sys.function(i))), mirai_ns)
  })
  if (!is.null(frame)) get(".compute", envir = frame, inherits = FALSE)
}

# Where an object serialized now is served from: for a pool's calls, its
# daemons' address (with_remote_mode()); for other uses, that of the mirai
# call in progress.
listen_url_in_use <- function() {
  if (!is.null(remote_state$scope_listen)) return(remote_state$scope_listen)
  # A fixed address does not depend on the daemons: no search of the stack
  # (this runs once per column of a data frame).
  if (!is.null(getOption("shmr.remote_url"))) return(remote_listen_url())
  # Found here, not lazily inside mirai::status(), whose own `.compute` it
  # would find.
  compute <- mirai_compute_in_progress()
  remote_listen_url(compute)
}

# An owner runs one region server per listen address: TLS and plain-TCP
# daemons, or daemons on two networks, each get a server on their own
# interface, with TLS when theirs uses it. A forked child inherits the
# record of its parent's servers, whose control sockets are not its own.
server_running <- function(server) {
  !is.null(server) && identical(server$owner, Sys.getpid()) && process_alive(server$pid)
}

running_servers <- function() Filter(server_running, remote_state$servers)

# The private directory of the control sockets and the servers' logs: in
# the session's temporary directory, or, when that path is too long for a
# socket's name (108 bytes on Linux; batch systems can set long TMPDIRs),
# a directory of this process's own under /tmp, removed when R exits.
control_directory <- function() {
  dir <- file.path(tempdir(), "shmr-remote")
  if (nchar(dir, type = "bytes") > 80) {
    if (is.null(remote_state$short_dir) || !identical(remote_state$short_dir_pid, Sys.getpid())) {
      remote_state$short_dir <- tempfile("shmr-remote-", tmpdir = "/tmp")
      remote_state$short_dir_pid <- Sys.getpid()
      dir.create(remote_state$short_dir, mode = "0700")
      reg.finalizer(remote_state, function(e) {
        if (identical(e$short_dir_pid, Sys.getpid())) remove_control_directory(e$short_dir)
      }, onexit = TRUE)
    }
    dir <- remote_state$short_dir
  }
  if (!dir.exists(dir)) dir.create(dir, mode = "0700")
  dir
}

# unlink(recursive = TRUE) alone leaves the directory behind while a
# server's socket is in it: R takes a socket for a directory (its mode
# shares a bit with S_IFDIR) and fails to rmdir() it.
remove_control_directory <- function(dir) {
  inside <- list.files(dir, all.files = TRUE, no.. = TRUE, full.names = TRUE)
  suppressWarnings(file.remove(inside))
  unlink(dir, recursive = TRUE)
}

# The region server listening on `listen`, started when needed; `compute`
# names the mirai profile whose daemons' interface it listens on.
region_server <- function(compute = NULL) region_server_at(remote_listen_url(compute))

region_server_at <- function(listen) {
  server <- remote_state$servers[[listen]]
  if (server_running(server)) return(server)
  need_nanonext()
  tls <- startsWith(listen, "tls+tcp://")
  dir <- control_directory()
  id <- server_counter()
  control <- sprintf("ipc://%s/server-%d-%d", dir, Sys.getpid(), id)
  self <- .Call(shmr_process_start)
  host <- advertised_host(listen)
  expr <- sprintf(
    ".libPaths(%s); shmr:::region_server_main(%s, %s, %.0f, %.0f, %s, %.0f, %s)",
    paste(deparse(.libPaths()), collapse = ""), deparse(control), deparse(listen),
    self[1L], self[2L], tls, remote_chunk_size(), deparse(host)
  )
  log <- file.path(dir, sprintf("server-%d-%d.log", Sys.getpid(), id))
  # A fixed mmap threshold: the chunk buffers it sends go back to the system
  # as soon as they are freed, so its memory stays flat however much it
  # serves.
  # In a session of its own: Ctrl-C in the owner's terminal interrupts the
  # terminal's foreground process group, which the owner's children share,
  # and must not stop the fetches of other hosts. Its lifetime follows the
  # owner's process, whatever its session (region_server_main()).
  rscript <- file.path(R.home("bin"), "Rscript")
  args <- c("--vanilla", "-e", shQuote(expr))
  setsid <- Sys.which("setsid")
  if (nzchar(setsid)) {
    args <- c(shQuote(rscript), args)
    rscript <- setsid
  }
  system2(rscript, args, wait = FALSE, stdout = log, stderr = log,
          env = "MALLOC_MMAP_THRESHOLD_=131072")
  sock <- nanonext::socket("req")
  nanonext::dial(sock, url = control, autostart = TRUE)
  # Asked again every half second until it answers, or until it has
  # stopped (a listen address it cannot bind: R's "Execution halted" in its
  # log), rather than waiting out the whole timeout.
  deadline <- Sys.time() + max(30, remote_timeout())
  repeat {
    hello <- control_request(sock, "HELLO", timeout = 0.5)
    if (is.character(hello) || Sys.time() > deadline || server_halted(log)) break
  }
  if (!is.character(hello)) {
    close(sock)
    text <- if (file.exists(log)) {
      paste(utils::tail(readLines(log, warn = FALSE), 5), collapse = "\n")
    }
    stop("shmr: the region server did not start: ", text, call. = FALSE)
  }
  parts <- strsplit(hello, "\n", fixed = TRUE)[[1L]]
  server <- list(
    pid = as.integer(parts[1L]), owner = Sys.getpid(), listen = listen,
    url = with_url_host(parts[2L], host),
    control = sock, tls = tls, fingerprint = if (tls) parts[3L] else ""
  )
  forget_servers_of_parent()
  # Origins handed out by an earlier server at this address are no longer
  # served: exported again when next sent.
  for (region in names(remote_state$exports)) {
    remote_state$exports[[region]]$origins[[listen]] <- NULL
  }
  remote_state$servers[[listen]] <- server
  server
}

# In a forked child, the records inherited from the parent.
forget_servers_of_parent <- function() {
  inherited <- vapply(remote_state$servers, function(s) !identical(s$owner, Sys.getpid()), NA)
  if (any(inherited)) {
    remote_state$servers[inherited] <- NULL
    remote_state$exports <- list()
    remote_state$dropped <- character()
  }
}

server_halted <- function(log) {
  file.exists(log) && any(grepl("Execution halted", readLines(log, warn = FALSE), fixed = TRUE))
}

control_request <- function(sock, message, timeout = 10) {
  aio <- nanonext::request(nanonext::context(sock), message, send_mode = "raw",
                           recv_mode = "string", timeout = timeout * 1000)
  value <- nanonext::call_aio(aio)$data
  if (nanonext::is_error_value(value)) NULL else value
}

# Stops the region servers (for tests and pool_stop()); they also exit on
# their own when this process does.
stop_region_server <- function() {
  servers <- remote_state$servers
  remote_state$servers <- list()
  remote_state$exports <- list()
  stopped <- FALSE
  for (s in servers) {
    # A forked child's records of its parent's servers are only forgotten.
    if (!identical(s$owner, Sys.getpid())) next
    if (server_running(s)) control_request(s$control, "STOP", timeout = 5)
    try(close(s$control), silent = TRUE)
    deadline <- Sys.time() + 5
    while (process_alive(s$pid) && Sys.time() < deadline) Sys.sleep(0.01)
    stopped <- TRUE
  }
  invisible(stopped)
}

# The origin of region `region` (called by the C++ glue when a view is
# serialized in remote mode): exports it to the region server of the
# daemons it is sent to first.
remote_origin_for <- function(region, size, pid, created, writable) {
  host <- .Call(shmr_host_identity)
  if (isTRUE(writable)) {
    # A writable share is never served; the origin only tells other hosts
    # to refuse it (same-host workers still map it).
    return(.Call(shmr_format_origin, "tcp://127.0.0.1:9", .Call(shmr_random_token), "", host,
                 size, pid, created, TRUE))
  }
  listen <- listen_url_in_use()
  known <- remote_state$exports[[region]]
  if (!is.null(known) && (known$created != created || known$pid != pid)) known <- NULL
  origin <- known$origins[[listen]]
  if (!is.null(origin) && server_running(remote_state$servers[[listen]])) return(origin)
  server <- region_server_at(listen)
  token <- .Call(shmr_random_token)
  answer <- control_request(server$control, paste("EXPORT", region, token))
  if (!identical(answer, "OK")) {
    stop("shmr: the region server could not export '", region, "': ",
         if (is.null(answer)) "no answer" else answer, call. = FALSE)
  }
  origin <- .Call(shmr_format_origin, server$url, token, server$fingerprint, host, size, pid,
                  created, FALSE)
  origins <- known$origins %||% list()
  origins[[listen]] <- origin
  sweep_exports_when_grown()
  remote_state$exports[[region]] <- list(origins = origins, created = created, pid = pid)
  origin
}

# Forgets the exports whose region is gone: an object its owner dropped
# without close() (collected, or its region removed), which the servers
# stopped serving on their own (release_gone_regions()). Their names wait in
# remote_state$dropped for release_dropped_exports(): this also runs while
# an object is serialized (remote_origin_for()), where no message can be
# sent to daemons.
forget_dropped_exports <- function() {
  exported <- names(remote_state$exports)
  if (!length(exported)) return(invisible())
  regions <- .Call(shmr_regions_named, exported)
  same <- vapply(exported, function(region) {
    at <- match(region, regions$name)
    export <- remote_state$exports[[region]]
    !is.na(at) && isTRUE(regions$creator_pid[at] == export$pid) &&
      isTRUE(abs(regions$created[at] * 1000 - export$created) < 1)
  }, NA)
  remote_state$exports[exported[!same]] <- NULL
  remote_state$dropped <- union(remote_state$dropped, exported[!same])
  remote_state$swept_at <- length(remote_state$exports)
  invisible()
}

# The copies other hosts keep of objects their owner dropped without close()
# go as after close(): pools over other hosts release them. Without this,
# every host kept a copy of each dropped object until the copy's keeper
# exited, and a loop of shares filled their /dev/shm while the owner's host
# held only the live object. Run before a pool's call and by remote_status().
release_dropped_exports <- function() {
  forget_dropped_exports()
  dropped <- remote_state$dropped
  remote_state$dropped <- character()
  if (length(dropped)) release_on_pools(dropped)
  invisible()
}

# An owner that sends objects to plain mirai daemons and drops them, without
# ever calling remote_status() or a pool, would otherwise keep a record of
# every object it ever sent (and look through all of them for each new one):
# the exports are swept each time their number has doubled.
sweep_exports_when_grown <- function() {
  if (length(remote_state$exports) >= max(64L, 2L * (remote_state$swept_at %||% 0L))) {
    forget_dropped_exports()
  }
}

# Tells the region servers that `regions` are no longer served (close()).
remote_unexport <- function(regions) {
  regions <- intersect(regions, names(remote_state$exports))
  if (!length(regions)) return(invisible())
  for (r in regions) {
    for (listen in names(remote_state$exports[[r]]$origins)) {
      server <- remote_state$servers[[listen]]
      if (server_running(server)) control_request(server$control, paste("UNEXPORT", r), 5)
    }
  }
  remote_state$exports[regions] <- NULL
  invisible()
}

# An exported region was closed by its owner: the server stops serving it,
# and pools over other hosts release their copies.
remote_closed <- function(regions) {
  remote_unexport(regions)
  release_on_pools(regions)
}
