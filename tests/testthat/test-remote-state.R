# Remote mode on one host: what a shared object carries, what the region
# server answers, and how untrusted origins are treated. The tests with
# several (simulated) hosts are in test-remote-hosts.R.

skip_without_nanonext <- function() {
  skip_on_cran()
  skip_if_not_installed("nanonext")
}

# Remote mode for the calling test, with the region server on loopback.
local_remote_mode <- function(envir = parent.frame()) {
  old <- options(shmr.remote = TRUE, shmr.remote_url = "tcp://127.0.0.1:0")
  do.call(base::on.exit, list(bquote({
    options(.(old))
    shmr:::stop_region_server()
  }), TRUE, FALSE), envir = envir)
}

# The bytes of serialize(x) as text, where a view's compact state (a raw
# vector, FORMAT.md 4) can be read: every byte that is not printable ASCII
# becomes a newline.
state_strings <- function(x) {
  bytes <- serialize(x, NULL)
  bytes[bytes < as.raw(0x20) | bytes > as.raw(0x7e)] <- as.raw(0x0a)
  rawToChar(bytes)
}

# Sends `message` to the region server at `url`, returns the raw reply (of
# any size).
ask_server <- function(url, message) {
  sock <- nanonext::socket("req")
  on.exit(close(sock))
  nanonext::opt(sock, "recv-size-max") <- 0
  nanonext::dial(sock, url = url, autostart = TRUE)
  aio <- nanonext::request(nanonext::context(sock), message, send_mode = "raw",
                           recv_mode = "raw", timeout = 10000)
  nanonext::call_aio(aio)$data
}

test_that("remote mode off: a shared vector serializes as before, with no origin", {
  x <- share(rnorm(1e6))
  bytes <- length(serialize(x, NULL))
  expect_lt(bytes, 200)
  expect_false(grepl("tcp://", state_strings(x), fixed = TRUE))
  expect_null(remote_status())
})

test_that("options(shmr.remote) other than TRUE or FALSE is an error, a warning in a worker", {
  x <- share(as.numeric(1:1e5))
  df <- share(data.frame(a = 1:10, b = letters[1:10]))
  for (value in list("yes", NA, 1, c(TRUE, TRUE))) {
    local({
      old <- options(shmr.remote = value)
      on.exit(options(old))
      expect_error(serialize(x, NULL), "options(shmr.remote) must be TRUE or FALSE", fixed = TRUE)
      expect_error(serialize(df, NULL), "options(shmr.remote) must be TRUE or FALSE", fixed = TRUE)
    })
  }
  expect_null(remote_status())
  # A worker that cannot send its result exits, so there the value is read
  # as FALSE, with a warning, and the worker stays.
  cl <- parallel::makePSOCKcluster(1)
  on.exit(parallel::stopCluster(cl))
  pid <- parallel::clusterEvalQ(cl, Sys.getpid())[[1L]]
  back <- parallel::clusterEvalQ(cl, {
    options(shmr.remote = "yes")
    shmr::share(as.numeric(1:10))
  })[[1L]]
  expect_identical(back[], as.numeric(1:10))
  expect_identical(parallel::clusterEvalQ(cl, Sys.getpid())[[1L]], pid)
})

test_that("a timeout or chunk size that is not a positive number is warned about once, and the default used", {
  old <- options(shmr.remote_timeout = "10s", shmr.remote_chunk = -1)
  on.exit(options(old))
  expect_warning(timeout <- shmr:::remote_timeout(),
                 "options(shmr.remote_timeout) must be a positive number, not '10s'; 60 is used",
                 fixed = TRUE)
  expect_identical(timeout, 60)
  expect_silent(shmr:::remote_timeout())
  # The default in full (before, "4.1943e+06 is used instead").
  expect_warning(chunk <- shmr:::remote_chunk_size(),
                 "options(shmr.remote_chunk) must be a positive number, not -1; 4194304 is used instead",
                 fixed = TRUE)
  expect_identical(chunk, 4 * 1024^2)
  options(shmr.remote_timeout = NULL, shmr.remote_chunk = NULL)
  on.exit(Sys.unsetenv("SHMR_REMOTE_TIMEOUT"), add = TRUE)
  Sys.setenv(SHMR_REMOTE_TIMEOUT = "soon")
  expect_warning(shmr:::remote_timeout(), "the environment variable SHMR_REMOTE_TIMEOUT", fixed = TRUE)
  Sys.setenv(SHMR_REMOTE_TIMEOUT = "2.5")
  expect_identical(shmr:::remote_timeout(), 2.5)
})

test_that("remote mode on: the origin travels, under 400 bytes, and maps here", {
  skip_without_nanonext()
  x <- share(rnorm(1e6))
  off <- length(serialize(x, NULL))
  local_remote_mode()
  stream <- serialize(x, NULL)
  expect_lt(length(stream), 400)
  expect_gt(length(stream), off)
  text <- state_strings(x)
  expect_match(text, ";origin=tcp://127.0.0.1:[0-9]+ [A-Za-z0-9]{22} - ")
  expect_match(text, shmr:::host_identity(), fixed = TRUE)
  status <- remote_status()
  expect_identical(status$exported, shared_name(x))
  expect_match(status$url, "^tcp://127\\.0\\.0\\.1:[0-9]+$")
  # Unserialized on its own host, the object maps the region itself.
  y <- unserialize(stream)
  expect_identical(y[], x[])
  expect_true(is_shared(y))
  # A data frame: every column carries the origin; sizes stay bounded.
  df <- share(data.frame(a = 1:1e5, b = rnorm(1e5)))
  expect_lt(length(serialize(df, NULL)), 1200)
  expect_identical(unserialize(serialize(df, NULL))$b[], df$b[])
})

test_that("forked children in remote mode share and return objects; the parent's server is untouched", {
  skip_without_nanonext()
  skip_on_os("windows")
  local_remote_mode()
  x <- share(as.numeric(1:1e5))
  invisible(serialize(x, NULL))  # starts the region server, exports x
  server <- remote_status()$pid
  # Before, each child used the parent's control socket and died (SIGILL);
  # without a server yet, each started its own and the parent got
  # unavailable objects.
  made <- parallel::mclapply(1:2, function(i) share(as.numeric(1:100) + i), mc.cores = 2)
  expect_identical(lapply(made, function(v) v[]), lapply(1:2, function(i) as.numeric(1:100) + i))
  expect_true(all(vapply(made, is_shared, logical(1))))
  used <- parallel::mclapply(1:2, function(i) sum(x) + i, mc.cores = 2)
  expect_identical(unlist(used), sum(as.numeric(1:1e5)) + 1:2)
  status <- remote_status()
  expect_identical(status$pid, server)
  expect_identical(status$exported, shared_name(x))
  # The children's objects serialize with an origin here, as the parent's do.
  expect_match(state_strings(made[[1]]), ";origin=tcp://127.0.0.1:", fixed = TRUE)
})

test_that("a region server that cannot listen is reported at once, not after the timeout", {
  skip_without_nanonext()
  local_remote_mode()
  options(shmr.remote_url = "tcp://127.0.0.1:99999")
  x <- share(as.numeric(1:10))
  started <- Sys.time()
  # Before, serialize() waited 60 s (the remote timeout) for a server that
  # had already stopped.
  expect_error(serialize(x, NULL), "region server did not start")
  expect_lt(as.numeric(Sys.time() - started, units = "secs"), 20)
  expect_null(remote_status())
})

test_that("the region server lets go of an exported object its owner dropped without close()", {
  skip_without_nanonext()
  local_remote_mode()
  x <- share(rnorm(4e6))  # 32 MB
  invisible(serialize(x, NULL))
  server <- remote_status()$pid
  expect_gte(shmr:::region_bytes_mapped(server), 32e6)
  rm(x)
  invisible(gc())
  # Before, the server kept the removed region mapped, and its memory,
  # until the owner exited.
  deadline <- Sys.time() + 15
  while (shmr:::region_bytes_mapped(server) >= 32e6 && Sys.time() < deadline) Sys.sleep(0.2)
  expect_lt(shmr:::region_bytes_mapped(server), 32e6)
  # The server goes on serving.
  y <- share(rnorm(10))
  expect_identical(unserialize(serialize(y, NULL))[], y[])
  expect_identical(remote_status()$pid, server)
  # And the owner's record no longer lists the dropped object (before, it
  # did until the owner exited).
  expect_identical(remote_status()$exported, shared_name(y))
})

test_that("an owner that sends objects and drops them keeps no record of each one", {
  skip_without_nanonext()
  local_remote_mode()
  # Objects serialized in remote mode (as for mirai() with plain daemons)
  # and dropped without close(), with no remote_status() or pool call to
  # look at them. Before, the owner kept the origin of every object it had
  # ever sent, and went through all of them for each new one.
  for (i in 1:400) {
    x <- share(rnorm(10) + i)
    invisible(serialize(x, NULL))
    rm(x)
    if (i %% 50 == 0) invisible(gc())
  }
  expect_lt(length(shmr:::remote_state$exports), 200)
  # What is still used stays exported.
  kept <- share(rnorm(10))
  expect_identical(unserialize(serialize(kept, NULL))[], kept[])
  expect_true(shared_name(kept) %in% names(shmr:::remote_state$exports))
  expect_identical(remote_status()$exported, shared_name(kept))
})

test_that("the region server answers only with the token, and 'gone' after close()", {
  skip_without_nanonext()
  local_remote_mode()
  x <- share(as.numeric(1:1000))
  invisible(serialize(x, NULL))
  name <- shared_name(x)
  url <- remote_status()$url
  token <- shmr:::remote_state$exports[[name]]$origins[[1]]
  token <- strsplit(token, " ", fixed = TRUE)[[1]][2]
  host <- shmr:::host_identity()
  ok <- ask_server(url, sprintf("GET %s %s 0 64 %s", name, token, host))
  expect_identical(as.integer(ok[1]), 0L)
  expect_length(ok, 65L)
  # The region's first bytes: the magic number.
  expect_identical(ok[2:6], as.raw(c(0x89, 0x53, 0x48, 0x4d, 0x52)))
  wrong <- paste(rev(strsplit(token, "")[[1]]), collapse = "")
  # A region of this owner that was never sent in remote mode is not served,
  # whatever the token.
  private <- share(as.numeric(1:1000))
  on.exit(close(private), add = TRUE)
  for (request in c(sprintf("GET %s %s 0 64 %s", name, wrong, host),
                    sprintf("GET shmr_unknown %s 0 64 %s", token, host),
                    sprintf("GET %s %s 0 64 %s", shared_name(private), token, host))) {
    reply <- ask_server(url, request)
    expect_identical(as.integer(reply[1]), 2L, info = request)
  }
  for (request in c("HELLO", "GET", sprintf("GET %s %s -1 64 %s", name, token, host),
                    sprintf("GET %s %s 0 1e12 %s", name, token, host), strrep("x", 3000))) {
    reply <- ask_server(url, request)
    expect_identical(as.integer(reply[1]), 3L, info = request)
  }
  # Bytes served are counted per requesting host.
  expect_identical(remote_status()$served$bytes[remote_status()$served$host == host], 64)
  close(x)
  gone <- ask_server(url, sprintf("GET %s %s 0 64 %s", name, token, host))
  expect_identical(as.integer(gone[1]), 1L)
  expect_match(rawToChar(gone[-1]), "closed")
  expect_length(remote_status()$exported, 0L)
})

test_that("a region server forgets objects no longer served after a while", {
  # Each object a server exported stayed in its records for the server's
  # life, as "gone" once closed or dropped: an owner sending thousands of
  # objects made every later export and request slower. A record of an
  # object no longer served answers "gone" for ten minutes, then goes.
  state <- new.env(parent = emptyenv())
  state$exports <- new.env(hash = TRUE, parent = emptyenv())
  state$exports[["old"]] <- list(token = "a", handle = NULL,
                                 gone_at = Sys.time() - shmr:::gone_record_seconds - 1)
  state$exports[["recent"]] <- list(token = "b", handle = NULL, gone_at = Sys.time() - 1)
  shmr:::release_gone_regions(state)
  expect_setequal(names(state$exports), "recent")
  reply <- shmr:::public_reply(state, "GET recent b 0 64 here")
  expect_identical(as.integer(reply[1]), shmr:::server_status[["gone"]])
  reply <- shmr:::public_reply(state, "GET old a 0 64 here")
  expect_identical(as.integer(reply[1]), shmr:::server_status[["refused"]])
  # A request with no name is refused, not an R error of the server.
  reply <- shmr:::public_reply(state, "GET  a 0 64 here")
  expect_identical(as.integer(reply[1]), shmr:::server_status[["refused"]])
})

test_that("the region server sends full chunks from one buffer, and lets it go when idle", {
  skip_without_nanonext()
  shmr:::stop_region_server()
  local_remote_mode()
  # The server takes its chunk size when it starts: large, so that the
  # buffer it keeps shows in its memory.
  chunk <- 64 * 2^20
  old <- options(shmr.remote_chunk = chunk)
  on.exit(options(old), add = TRUE)
  x <- share(as.numeric(seq_len(2^24)))
  on.exit(close(x), add = TRUE)
  invisible(serialize(x, NULL))
  name <- shared_name(x)
  token <- strsplit(shmr:::remote_state$exports[[name]]$origins[[1]], " ", fixed = TRUE)[[1]][2]
  host <- shmr:::host_identity()
  server_memory <- function() shmr:::process_memory(remote_status()$pid)[["anonymous"]]
  before <- server_memory()
  get <- function(offset) {
    ask_server(remote_status()$url, sprintf("GET %s %s %.0f %.0f %s", name, token, offset, chunk, host))
  }
  first <- get(0)
  second <- get(chunk)
  again <- get(0)
  held <- server_memory() - before
  # The buffer the second chunk was written into gave the first one's bytes
  # again, unchanged.
  expect_length(first, chunk + 1)
  expect_identical(again, first)
  expect_false(identical(second, first))
  # Kept while hosts fetch, let go once no chunk was asked for a while.
  expect_gt(held, 0.5 * chunk)
  deadline <- Sys.time() + 20
  while (server_memory() - before > 0.1 * chunk && Sys.time() < deadline) Sys.sleep(0.5)
  expect_lt(server_memory() - before, 0.1 * chunk)
})

test_that("a region server that died is replaced, and what it served is exported again", {
  skip_without_nanonext()
  local_remote_mode()
  x <- share(as.numeric(1:1000))
  y <- share(as.numeric(1:2000))
  invisible(serialize(list(x, y), NULL))
  first <- remote_status()
  tools::pskill(first$pid, tools::SIGKILL)
  deadline <- Sys.time() + 10
  while (shmr:::process_alive(first$pid) && Sys.time() < deadline) Sys.sleep(0.05)
  # x starts the new server; y, sent after, must not keep its old origin.
  invisible(serialize(x, NULL))
  invisible(serialize(y, NULL))
  second <- remote_status()
  expect_length(second$pid, 1L)
  expect_false(identical(second$pid, first$pid))
  for (object in list(x, y)) {
    fields <- strsplit(shmr:::remote_state$exports[[shared_name(object)]]$origins[[1]], " ",
                       fixed = TRUE)[[1]]
    expect_identical(fields[1], second$url)
    reply <- ask_server(second$url, sprintf("GET %s %s 0 64 %s", shared_name(object), fields[2],
                                            shmr:::host_identity()))
    expect_identical(as.integer(reply[1]), 0L)
  }
})

test_that("the region server does not read a request larger than any valid one", {
  skip_without_nanonext()
  local_remote_mode()
  x <- share(as.numeric(1:1000))
  invisible(serialize(x, NULL))
  status <- remote_status()
  before <- shmr:::process_memory(status$pid)[["anonymous"]]
  # 100 MB from a peer without a token: before, the server read all of it
  # (its memory grew by that much) and answered "malformed request".
  sock <- nanonext::socket("req")
  on.exit(close(sock), add = TRUE)
  nanonext::dial(sock, url = status$url, autostart = TRUE)
  aio <- nanonext::request(nanonext::context(sock), strrep("A", 1e8), send_mode = "raw",
                           recv_mode = "raw", timeout = 5000)
  reply <- nanonext::call_aio(aio)$data
  expect_true(nanonext::is_error_value(reply))
  expect_lt(shmr:::process_memory(status$pid)[["anonymous"]] - before, 20e6)
  # It goes on serving.
  fields <- strsplit(shmr:::remote_state$exports[[shared_name(x)]]$origins[[1]], " ", fixed = TRUE)[[1]]
  ok <- ask_server(status$url, sprintf("GET %s %s 0 64 %s", shared_name(x), fields[2],
                                       shmr:::host_identity()))
  expect_identical(as.integer(ok[1]), 0L)
  expect_identical(remote_status()$pid, status$pid)
})

test_that("a daemon reads from the URL it dials whether its caller is on another host", {
  kind <- function(url) shmr:::dialed_host_kind(url, c(eth0 = "192.0.2.2"))
  node <- Sys.info()[["nodename"]]
  expect_identical(kind("abstract://a1b2"), "this")
  expect_identical(kind("ipc:///tmp/mirai-1"), "this")
  expect_identical(kind("tcp://192.0.2.2:5555"), "this")
  expect_identical(kind(sprintf("tcp://%s:5555", toupper(node))), "this")
  expect_identical(kind(sprintf("tls+tcp://%s.example.org:5555", node)), "this")
  # Loopback: this host, or another one through an SSH tunnel.
  for (url in c("tcp://127.0.0.1:5555", "tcp://127.0.0.2:1", "tcp://localhost:1", "tcp://[::1]:1")) {
    expect_identical(kind(url), "unknown", info = url)
  }
  expect_identical(kind("tcp://10.0.0.5:5555"), "other")
  expect_identical(kind("tls+tcp://headnode.cluster:5555"), "other")
  expect_identical(kind(sprintf("tcp://%s-other:1", node)), "other")
})

test_that("hand-edited origins give unavailable objects, never a crash or a wrong region", {
  skip_without_nanonext()
  local_remote_mode()
  x <- share(c(1, 2, 3))
  stream <- serialize(x, NULL)
  origin <- shmr:::remote_state$exports[[shared_name(x)]]$origins[[1]]
  fields <- strsplit(origin, " ", fixed = TRUE)[[1]]
  edited <- function(new) {
    suppressWarnings(unserialize(replace_serialized_origin(stream, origin, new)))
  }
  bad <- c("", "x", paste(fields[-1], collapse = " "), paste(c(fields, "extra"), collapse = " "),
           sub("^tcp", "udp", origin), sub(" r$", " q", origin),
           paste(replace(fields, 2, "short"), collapse = " "),
           paste(replace(fields, 4, "no/host:1:2"), collapse = " "))
  for (b in bad) {
    y <- edited(b)
    err <- tryCatch(sum(y), error = function(e) e)
    expect_s3_class(err, "shmr_region_unavailable")
    expect_match(err$reason, "invalid origin", info = b)
  }
  # Well formed, but another region's identity: the region here is not
  # the one the object names.
  other <- paste(replace(fields, 7, as.character(as.numeric(fields[7]) + 1)), collapse = " ")
  err <- tryCatch(sum(edited(other)), error = function(e) e)
  expect_s3_class(err, "shmr_region_unavailable")
  expect_match(err$reason, "not the one the object refers to")
  # Unedited, it maps.
  expect_identical(unserialize(stream)[], c(1, 2, 3))
})

test_that("a writable share in remote mode is never exported, and still maps on its host", {
  skip_without_nanonext()
  local_remote_mode()
  w <- share(numeric(10), readonly = FALSE)
  stream <- serialize(w, NULL)
  expect_match(state_strings(w), " w\n", fixed = TRUE)
  expect_null(remote_status())
  w[2] <- 5
  expect_identical(unserialize(stream)[2], 5)
  close(w)
})

test_that("the region server exits when its owner does", {
  skip_without_nanonext()
  skip_without_callr()
  owner <- callr::r_session$new()
  on.exit(owner$kill())
  started <- owner$run(function() {
    library(shmr)
    options(shmr.remote = TRUE, shmr.remote_url = "tcp://127.0.0.1:0")
    keep <<- share(rnorm(10))
    invisible(serialize(keep, NULL))
    list(pid = remote_status()$pid, region = shared_name(keep))
  })
  pid <- started$pid
  # The owner is killed before it can remove its region.
  on.exit(remove_shared(started$region), add = TRUE)
  expect_true(shmr:::process_alive(pid))
  owner$kill()
  deadline <- Sys.time() + 20
  while (shmr:::process_alive(pid) && Sys.time() < deadline) Sys.sleep(0.1)
  expect_false(shmr:::process_alive(pid))
})

test_that("a temporary directory too long for a socket's name still starts the region server", {
  skip_without_nanonext()
  long <- file.path(tempfile("a-long-temporary-directory-"), strrep("b", 60))
  dir.create(long, recursive = TRUE)
  on.exit(unlink(dirname(long), recursive = TRUE))
  skip_without_callr()
  got <- callr::r(function() {
    library(shmr)
    options(shmr.remote = TRUE, shmr.remote_url = "tcp://127.0.0.1:0")
    x <- share(rnorm(10))
    invisible(serialize(x, NULL))
    status <- remote_status()
    list(tempdir = tempdir(), url = status$url, exported = identical(status$exported, shared_name(x)),
         control = shmr:::control_directory())
  }, env = c(callr::rcmd_safe_env(), TMPDIR = long))
  expect_gt(nchar(got$tempdir, type = "bytes"), 108)
  # The directory of its own under /tmp, holding the server's socket, went
  # with the process.
  expect_true(startsWith(got$control, "/tmp/shmr-remote-"))
  expect_false(dir.exists(got$control))
  expect_match(got$url, "^tcp://127\\.0\\.0\\.1:[0-9]+$")
  expect_true(got$exported)
})

test_that("this host's identity is its name and the device of its shm directory", {
  id <- shmr:::host_identity()
  expect_match(id, "^[A-Za-z0-9._-]+:[0-9]+:[0-9]+$")
  expect_true(startsWith(id, paste0(gsub("[^A-Za-z0-9.-]", "_", Sys.info()[["nodename"]]), ":")))
  regions <- shared_regions()
  if (nrow(regions)) expect_true(all(regions$host == id))
  expect_true(all(c("host", "replica", "origin") %in% names(regions)))
})

test_that("a wildcard shmr.remote_url listens everywhere but gives workers an address they can dial", {
  skip_without_nanonext()
  skip_if_not_installed("mirai")
  on.exit(shmr:::stop_region_server())
  for (scheme in c("tcp", "tls+tcp")) {
    old <- options(shmr.remote = TRUE, shmr.remote_url = sprintf("%s://0.0.0.0:0", scheme))
    mirai::daemons(url = sprintf("%s://127.0.0.7:0", scheme))
    x <- share(as.numeric(1:1000))
    invisible(serialize(x, NULL))
    origin <- shmr:::remote_state$exports[[shared_name(x)]]$origins[[1]]
    origin <- .Call(shmr:::shmr_parse_origin, origin)
    # The daemons' interface, which workers reach already; never 0.0.0.0,
    # which a worker would dial as itself.
    expect_match(origin$address, sprintf("^%s://127\\.0\\.0\\.7:[0-9]+$", sub("+", "\\+", scheme, fixed = TRUE)))
    expect_identical(remote_status()$url, origin$address)
    # A worker's own path to the bytes; with TLS, the certificate is checked
    # against the address dialed.
    deadline <- Sys.time() + 10
    sock <- shmr:::origin_socket(origin, deadline)
    request <- sprintf("GET %s %s 0 64 %s", shared_name(x), origin$token, shmr:::host_identity())
    reply <- shmr:::origin_request(sock, origin$address, deadline, request)
    close(sock)
    expect_identical(reply[2:6], as.raw(c(0x89, 0x53, 0x48, 0x4d, 0x52)))
    if (scheme == "tcp") {
      # Every interface is listened on.
      port <- sub("^.*:", "", origin$address)
      expect_identical(as.integer(ask_server(sprintf("tcp://127.0.0.1:%s", port), request)[1]), 0L)
    }
    mirai::daemons(0)
    shmr:::stop_region_server()
    close(x)
    options(old)
  }
  # Without daemons, workers are given this host's first address.
  old <- options(shmr.remote = TRUE, shmr.remote_url = "tcp://0.0.0.0:0")
  on.exit(options(old), add = TRUE)
  x <- share(as.numeric(1:10))
  invisible(serialize(x, NULL))
  first <- nanonext::ip_addr()
  first <- first[nzchar(first)]
  expected <- if (length(first)) first[[1]] else Sys.info()[["nodename"]]
  expect_identical(sub(":[0-9]+$", "", remote_status()$url), paste0("tcp://", expected))
  close(x)
})

# serialize(x) as a daemon of another host sends it: its origin's host field
# edited to another name of the same length. (x must be exported: remote
# mode on.)
other_host_bytes <- function(x) {
  bytes <- serialize(x, NULL)
  me <- charToRaw(shmr:::host_identity())
  at <- grepRaw(me, bytes, fixed = TRUE)
  bytes[at] <- if (me[1] == charToRaw("Z")) charToRaw("Y") else charToRaw("Z")
  bytes
}

test_that("a parallel worker that reads an object from another host returns its shares by value", {
  skip_without_nanonext()
  local_remote_mode()
  x <- share(rnorm(10))
  bytes <- other_host_bytes(x)
  cl <- parallel::makeCluster(1)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  got <- parallel::clusterCall(cl, function(bytes) {
    foreign <- unserialize(bytes)
    list(sum = sum(foreign), made = shmr::share(as.numeric(1:1e5)))
  }, bytes)[[1]]
  expect_equal(got$sum, sum(x))
  # Its caller may be on another host, where the name means nothing.
  expect_false(is_shared(got$made))
  expect_identical(got$made, as.numeric(1:1e5))
})

test_that("a session that reads an object from another host still shares by name with its own workers", {
  skip_without_nanonext()
  skip_without_callr()
  # In a process of its own: what the session learns lasts its lifetime.
  got <- callr::r(function() {
    library(shmr)
    local <- share(rnorm(1e5))
    before <- length(serialize(local, NULL))
    # An object as a daemon of another host sends it: its origin names
    # another host (the host field edited to another name of equal length).
    old <- options(shmr.remote = TRUE, shmr.remote_url = "tcp://127.0.0.1:0")
    x <- share(rnorm(10))
    bytes <- serialize(x, NULL)
    options(old)
    me <- charToRaw(shmr:::host_identity())
    at <- grepRaw(me, bytes, fixed = TRUE)
    bytes[at] <- if (me[1] == charToRaw("Z")) charToRaw("Y") else charToRaw("Z")
    foreign <- unserialize(bytes)
    list(before = before, after = length(serialize(local, NULL)),
         new_share = length(serialize(share(rnorm(1e5)), NULL)),
         foreign = identical(foreign[], x[]))
  })
  expect_true(got$foreign)
  expect_lt(got$before, 200)
  # Not by value: this session is no daemon whose caller is elsewhere.
  expect_identical(got$after, got$before)
  expect_lt(got$new_share, 200)
})

# Counts the calls of shmr:::<fun> made while `expr` runs (the C++ glue
# calls it by name in the namespace, so the traced function is the one run).
calls_of <- function(fun, expr) {
  count <- new.env()
  count$n <- 0L
  tracer <- bquote(assign("n", get("n", envir = .(count)) + 1L, envir = .(count)))
  suppressMessages(trace(fun, tracer, where = asNamespace("shmr"), print = FALSE))
  on.exit(suppressMessages(untrace(fun, where = asNamespace("shmr"))))
  force(expr)
  count$n
}

# As sent by a daemon of another host: every origin in `bytes` names
# another host (its host field edited to a name of equal length).
as_from_other_host <- function(bytes) {
  me <- charToRaw(shmr:::host_identity())
  at <- grepRaw(me, bytes, fixed = TRUE, all = TRUE)
  bytes[at] <- if (me[1] == charToRaw("Z")) charToRaw("Y") else charToRaw("Z")
  bytes
}

origins_in <- function(bytes) {
  text <- rawToChar(replace(bytes, bytes < as.raw(0x20) | bytes > as.raw(0x7e), as.raw(0x0a)))
  regmatches(text, gregexpr(";origin=[^\n]+", text))[[1]]
}

test_that("a pool call's scope asks R for each region's origin once, not once per column", {
  skip_without_nanonext()
  df <- share(as.data.frame(matrix(as.numeric(1:4000), ncol = 40)))
  # An ordinary list of 40 views of one region (a data frame's columns on
  # R < 4.3, where a list is not one shared object).
  columns <- lapply(seq_len(40), function(i) df[[i]])
  on.exit(shmr:::stop_region_server(), add = TRUE)
  listen <- "tcp://127.0.0.1:0"
  first <- NULL
  asked <- calls_of("remote_origin_for", {
    first <- shmr:::with_remote_mode(serialize(columns, NULL), listen)
  })
  expect_identical(asked, 1L)
  # Every column still carries the origin, and the same one.
  origins <- origins_in(first)
  expect_length(origins, 40L)
  expect_length(unique(origins), 1L)
  expect_identical(unserialize(first)[[40]], df[[40]][])
  # Outside the scope nothing is remembered: a server replaced between two
  # calls gives the second call its new origin.
  server <- remote_status()
  tools::pskill(server$pid, tools::SIGKILL)
  deadline <- Sys.time() + 10
  while (shmr:::process_alive(server$pid) && Sys.time() < deadline) Sys.sleep(0.05)
  second <- shmr:::with_remote_mode(serialize(columns, NULL), listen)
  replaced <- remote_status()
  expect_false(identical(replaced$pid, server$pid))
  origins <- origins_in(second)
  expect_length(origins, 40L)
  expect_true(all(startsWith(origins, paste0(";origin=", replaced$url, " "))))
})

test_that("columns of an object from another host whose region is here already map without asking R", {
  skip_without_nanonext()
  local_remote_mode()
  df <- share(as.data.frame(matrix(as.numeric(1:4000), ncol = 40)))
  columns <- lapply(seq_len(40), function(i) df[[i]])
  bytes <- serialize(columns, NULL)
  expect_length(origins_in(bytes), 40L)
  # The region itself is on this host, so nothing needs fetching.
  foreign <- NULL
  asked <- calls_of("remote_obtain", foreign <- unserialize(as_from_other_host(bytes)))
  expect_identical(asked, 0L)
  expect_true(is_shared(foreign[[40]]))
  expect_identical(foreign[[40]][], df[[40]][])
  # A region not here (closed) still goes to remote_obtain(), once per
  # column, and gives unavailable columns, not an error.
  other <- share(data.frame(a = as.numeric(1:10), b = as.numeric(11:20)))
  gone <- as_from_other_host(serialize(list(other$a, other$b), NULL))
  close(other)
  lost <- NULL
  asked <- calls_of("remote_obtain", lost <- unserialize(gone))
  expect_identical(asked, 2L)
  expect_error(sum(lost[[1]]), class = "shmr_region_unavailable")
})

test_that("in remote mode a shared data frame on R >= 4.3 is one object with one origin, whatever its width", {
  skip_without_nanonext()
  skip_if(getRversion() < "4.3", "a list is one shared object on R >= 4.3 only")
  local_remote_mode()
  wide <- share(as.data.frame(matrix(as.numeric(1:20000), ncol = 200)))
  bytes <- serialize(wide, NULL)
  # The list's origin, and its names' (a shared character vector).
  expect_lte(length(origins_in(bytes)), 2L)
  expect_lt(length(bytes), 1200)
  # From another host, with its region here: the same shared data frame.
  foreign <- unserialize(as_from_other_host(bytes))
  expect_true(is_shared(foreign))
  expect_identical(shared_name(foreign), shared_name(wide))
  expect_identical(foreign$V200[], wide$V200[])
  # Sent on from there, it names the same origin (a daemon passing it on).
  expect_identical(origins_in(serialize(foreign, NULL))[1], origins_in(as_from_other_host(bytes))[1])
  # Closed by its owner: an unavailable list, whose use is a classed error.
  other <- share(data.frame(a = as.numeric(1:10), b = as.numeric(11:20)))
  gone <- as_from_other_host(serialize(other, NULL))
  close(other)
  lost <- suppressWarnings(unserialize(gone))
  expect_error(lost$a, class = "shmr_region_unavailable")
  # An origin whose identity is not the region's of that name here (its
  # size edited): never mapped.
  stream <- serialize(wide, NULL)
  origin <- sub("^;origin=", "", origins_in(stream)[1])
  fields <- strsplit(origin, " ", fixed = TRUE)[[1]]
  fields[5] <- format(as.numeric(fields[5]) + 8, scientific = FALSE)
  edited <- replace_serialized_origin(stream, origin, paste(fields, collapse = " "))
  other_size <- suppressWarnings(unserialize(as_from_other_host(edited)))
  expect_error(other_size$V1, "not the one the object refers to",
               class = "shmr_region_unavailable")
  # A writable data frame of another host is never mapped there.
  w <- share(data.frame(a = as.numeric(1:10)), readonly = FALSE)
  theirs <- suppressWarnings(unserialize(as_from_other_host(serialize(w, NULL))))
  expect_error(theirs$a, "writable share", class = "shmr_region_unavailable")
})
