# Adapters for the shared-memory systems the benchmarks compare. Each is a
# list with:
#   name       short label used in the CSV ("shmr", "mori", ...)
#   package    the R package it needs (NULL for base R baselines)
#   available  function() returning TRUE, or a string saying why it is skipped
#   share      function(x) -> handle, in the creating process; x is a double
#              vector (or a data frame / character vector where a metric
#              says so). Must keep whatever the system needs alive.
#   token      function(handle) -> a small R object (usually a string) that
#              another process uses to map the data
#   map        function(token) -> the data as an R vector-like object in a
#              consumer process (with the system's package loaded); must be
#              zero-copy where the system supports it
#   release    function(handle) -> frees the shared memory
#   supports   character vector of the data kinds it handles:
#              "double", "character", "data.frame"
# Adapters must be self-contained functions (they are sent to consumer
# processes with callr), referring to packages with `pkg::fun`.
#
# Optional elements (complete_adapter() at the end of this file fills in the
# defaults, so every adapter in `systems` has all of them):
#   read       function(obj, i) -> elements i of a mapped double vector, as
#              a plain double vector (default obj[i]). Use it instead of
#              obj[i]: bigmemory maps a one-column big.matrix (obj[i, 1]).
#   sum        function(obj) -> sum of a mapped double vector (default
#              sum(obj)).
#   unmap      function(token, obj) -> in the consumer, gives back what
#              map() took (default: nothing to do; dropping obj is enough).
#              memshare needs it: its views stay registered (and keep the
#              memory alive) until released. Do not touch obj afterwards.
#   copies     data kinds whose map() returns a private copy in the consumer
#              instead of reading shared memory in place (default none).
#   max_maps   how many times one token can be mapped (default Inf);
#              bettermc's token can be mapped once only.
#   maps_reused TRUE when mapping a token again in a process that has not
#              unmapped it returns the mapping it already has, pages
#              already read included (default FALSE); memshare's views are.
#              A first-call time is then taken on a share of its own.
#   object     function(handle) -> the R object a user of this system hands
#              to a worker, i.e. what serialize() should be measured on
#              (default: the handle itself; mori: the shared vector, since
#              its handle is an environment; bigmemory: the descriptor).
#
# Lifetime: release(handle) frees the memory for good only once no consumer
# still maps it (true of every system here). The handle is all the creator
# holds: a metric must not keep other references to the shared data (for
# the GC-managed systems, mori and bigmemory, the handle is an environment
# that release() empties before running gc()).
#
# The peers install with `Rscript bench/install-peers.R`; mori and memshare
# need R >= 4.3.
systems <- list()

# available() for an adapter: the R version, the package, then (once per
# process) a small share / map / read / release round trip in this process,
# so that a system that fails on this machine is skipped with its error.
# `known_problem`, when not NULL, is returned as the reason without running
# anything (for systems known to crash the R session here).
adapter_available <- function(package, min_r = NULL, known_problem = NULL) {
  force(package)
  force(min_r)
  force(known_problem)
  verdict <- NULL
  function(adapter = NULL) {
    if (!is.null(verdict)) return(verdict)
    if (!is.null(min_r) && getRversion() < min_r) {
      return(sprintf("%s needs R >= %s; this is R %s", package, min_r, getRversion()))
    }
    if (!requireNamespace(package, quietly = TRUE)) {
      return(sprintf("package '%s' is not installed (Rscript bench/install-peers.R)", package))
    }
    if (!is.null(known_problem)) return(known_problem)
    if (is.null(adapter)) return(TRUE)
    verdict <<- tryCatch({
      x <- c(0.5, 1.5, 2.5, 3.5)
      handle <- adapter$share(x)
      ok <- tryCatch({
        token <- adapter$token(handle)
        obj <- adapter$map(token)
        good <- isTRUE(all.equal(adapter$read(obj, 2L), 1.5)) &&
          isTRUE(all.equal(adapter$sum(obj), sum(x)))
        adapter$unmap(token, obj)
        rm(obj)
        good
      }, finally = adapter$release(handle))
      if (ok) TRUE else sprintf("%s fails on this machine: a mapped vector reads wrong values", package)
    }, error = function(e) {
      sprintf("%s fails on this machine: %s", package, conditionMessage(e))
    })
    verdict
  }
}

# --- shmr (this package) ----------------------------------------------------
# share() writes x once into a region (POSIX shm under /dev/shm, or a
# file-backed mapping when /dev/shm lacks room: backing = "auto", the
# default users get) and returns an ALTREP object reading it in place; the
# token is the region name; map_shared() maps it read-only in any process of
# the same user; close() removes it at once (mapped copies keep reading).
systems$shmr <- list(
  name = "shmr",
  package = "shmr",
  available = adapter_available("shmr"),
  share = function(x) shmr::share(x),
  token = function(handle) shmr::shared_name(handle),
  map = function(token) shmr::map_shared(token),
  release = function(handle) close(handle),
  supports = c("double", "character", "data.frame")
)

# --- mori (CRAN, R >= 4.3) --------------------------------------------------
# share(x) writes x into POSIX shm and returns an ALTREP view (strings and
# data frame columns too, materialised lazily); shared_name() is the token;
# map_shared(name) maps it zero-copy in another process. There is no
# explicit free: the region is unlinked when the shared object is garbage
# collected in the creating process (or that process exits). So the handle
# is an environment holding the shared object, and release() drops it and
# runs gc(); the creator must hold no other reference to it.
# Observed (mori 0.2.2): sum() reads a mapped double vector in place, but
# the first element access (x[5], x[[5]]) makes a private copy of the whole
# vector in the consumer (8 MB for rnorm(1e6), 76 MB for rnorm(1e7)); later
# accesses reuse it. read() keeps obj[i], so metrics see that cost.
systems$mori <- list(
  name = "mori",
  package = "mori",
  available = adapter_available("mori", min_r = "4.3"),
  share = function(x) {
    handle <- new.env(parent = emptyenv())
    handle$obj <- mori::share(x)
    handle
  },
  token = function(handle) mori::shared_name(handle$obj),
  object = function(handle) handle$obj,
  map = function(token) mori::map_shared(token),
  release = function(handle) {
    # mori frees on garbage collection only.
    if (exists("obj", envir = handle, inherits = FALSE)) rm("obj", envir = handle)
    invisible(gc())
  },
  supports = c("double", "character", "data.frame")
)

# --- shard (CRAN) -----------------------------------------------------------
# Doubles: as_shared(x, backing = "shm") copies x into a POSIX shm segment
# and returns an ALTREP view of it; the token is the segment's shm name and
# length; a consumer attaches with segment_open(name, backing = "shm") and
# wraps it with shared_vector(segment, "double", length), a zero-copy
# ALTREP view (sum() reads it without materialising). close() on the
# creator's vector unlinks the segment.
# Character vectors and data frames: shard's views cover integer, double,
# logical and raw only, so they go through share(), which serializes x into
# a segment; the consumer opens it with share_open() and fetch()
# deserializes it: a full private copy in every consumer (see `copies`).
# deep = TRUE shares large double columns separately, but fetch() in another
# process still rebuilds ordinary vectors, so it is not used.
# Observed defects (shard 0.2.0):
# - elements read from a view carry two attributes ("shard_cow",
#   "shard_readonly"), so x[5] is not identical() to the original: read()
#   strips them;
# - share() of a plain atomic vector takes a fast path whose segment
#   share_open() + fetch() cannot read ("unknown input format"), hence
#   segment_open() + shared_vector() for doubles;
# - as_shared(x, backing = "shm", path = "name") ignores the backing and
#   creates a file called "name" in the working directory;
# - after close(), the creator's view reads garbage without an error.
systems$shard <- list(
  name = "shard",
  package = "shard",
  available = adapter_available("shard"),
  share = function(x) {
    if (is.double(x) && is.null(attributes(x))) {
      shard::as_shared(x, backing = "shm")
    } else {
      shard::share(x, backing = "shm")
    }
  },
  token = function(handle) {
    if (shard::is_shared_vector(handle)) {
      list(path = shard::segment_info(shard::shared_segment(handle))$path,
           length = length(handle), serialized = FALSE)
    } else {
      list(path = shard::shared_info(handle)$path, serialized = TRUE)
    }
  },
  map = function(token) {
    if (token$serialized) {
      shard::fetch(shard::share_open(token$path, backing = "shm"))
    } else {
      segment <- shard::segment_open(token$path, backing = "shm")
      shard::shared_vector(segment, "double", length = token$length)
    }
  },
  read = function(obj, i) {
    out <- obj[i]
    attr(out, "shard_cow") <- NULL
    attr(out, "shard_readonly") <- NULL
    out
  },
  release = function(handle) close(handle),
  supports = c("double", "character", "data.frame"),
  copies = c("character", "data.frame")
)

# --- bettermc (CRAN archive; removed from CRAN) -----------------------------
# copy2shm(x, name) copies a logical/integer/double/complex/raw vector into
# the POSIX shm object `name` (which must not exist) and returns an
# "shm_obj" (name, type, length, size, attributes): that is the token.
# allocate_from_shm(obj, copy = FALSE) in the consumer maps the object
# privately (MAP_PRIVATE: shared pages until written) and returns an
# ordinary-looking vector; copy = TRUE would copy it into private memory.
# Limits:
# - a token can be mapped ONCE: allocate_from_shm() unlinks the shm object
#   right after opening it, so a second map (in any process) fails with
#   "'shm_open' failed" (max_maps = 1). It is a one-shot hand-off, not a
#   share that many workers attach to: one share() per consumer.
# - copy2shm() reports most failures by returning a string instead of an
#   error (share() turns that into an error); a character vector is an
#   error, but only after an empty /dev/shm entry was created, which is
#   left behind (release() removes it).
# - release() unlinks the shm object when no consumer took it; once mapped,
#   the memory is freed when the consumer's vector is garbage collected.
systems$bettermc <- list(
  name = "bettermc",
  package = "bettermc",
  available = adapter_available("bettermc"),
  share = function(x) {
    count <- getOption("shmr.bench.counter", 0) + 1
    options(shmr.bench.counter = count)
    name <- sprintf("/shmrbench_%d_%s_%d", Sys.getpid(),
                    format(as.numeric(Sys.time()) * 1e6, scientific = FALSE), count)
    obj <- tryCatch(bettermc::copy2shm(x, name, copy = FALSE), error = function(e) {
      unlink(file.path("/dev/shm", substring(name, 2L)))
      stop(e)
    })
    if (!inherits(obj, "shm_obj")) {
      unlink(file.path("/dev/shm", substring(name, 2L)))
      stop("bettermc::copy2shm() failed: ", paste(obj, collapse = " "), call. = FALSE)
    }
    obj
  },
  token = function(handle) handle,
  map = function(token) bettermc::allocate_from_shm(token, copy = FALSE),
  release = function(handle) {
    unlink(file.path("/dev/shm", sub("^/", "", handle$name)))
    invisible(NULL)
  },
  supports = "double",
  max_maps = 1
)

# --- memshare (CRAN, R >= 4.3) ----------------------------------------------
# registerVariables(namespace, list(x = x)) copies x into POSIX shm
# ("/dev/shm/<namespace>.x" plus a metadata object "<namespace>.md.x"); the
# token is the namespace and variable name; retrieveViews(namespace, "x") in
# a consumer returns a list of ALTREP views (writable: writes go to the
# shared memory); releaseViews() must be called in every consumer (unmap),
# then releaseVariables() in the creator frees the memory (it cannot while
# any view is held; the creator's exit also removes it).
# Limits:
# - only double vectors and matrices: integer vectors are converted to
#   double with a warning, character vectors become NA doubles with only a
#   warning, so supports = "double";
# - touching a view after releaseViews() segfaults the consumer (e.g.
#   returning it from a callr function after releasing it);
# - a process holds one view per variable: mapping the same token again
#   returns the same view, and one releaseViews() (unmap) invalidates every
#   object mapped from it in that process. A consumer that maps repeatedly
#   without unmap keeps that one view until it exits, and until then the
#   creator's releaseVariables() cannot free the memory.
systems$memshare <- list(
  name = "memshare",
  package = "memshare",
  available = adapter_available("memshare", min_r = "4.3"),
  share = function(x) {
    count <- getOption("shmr.bench.counter", 0) + 1
    options(shmr.bench.counter = count)
    namespace <- sprintf("shmrbench_%d_%s_%d", Sys.getpid(),
                         format(as.numeric(Sys.time()) * 1e6, scientific = FALSE), count)
    memshare::registerVariables(namespace, list(x = x))
    list(namespace = namespace, variable = "x")
  },
  token = function(handle) handle,
  map = function(token) memshare::retrieveViews(token$namespace, token$variable)[[1L]],
  unmap = function(token, obj) {
    memshare::releaseViews(token$namespace, token$variable)
    invisible(NULL)
  },
  release = function(handle) {
    memshare::releaseVariables(handle$namespace, handle$variable)
    invisible(NULL)
  },
  maps_reused = TRUE,
  supports = "double"
)

# --- bigmemory (CRAN) -------------------------------------------------------
# big.matrix(length(x), 1, shared = TRUE) creates a one-column big.matrix
# in POSIX shm (a uuid name plus a "<uuid>_counter" object) and obj[, 1] <- x
# copies x into it (as.big.matrix(matrix(x)) would be about 4x slower and
# hold 4 more copies of x at its peak: 10 GB for a 2 GB vector);
# describe() gives the token (a big.matrix.descriptor, about 600 bytes
# serialized); attach.big.matrix(descriptor) in the consumer maps it and
# returns the big.matrix, which is not an R vector: element i is obj[i, 1],
# hence read(), and every read copies the elements it returns into R
# memory: sum() copies the whole column (a transient private copy of the
# data) since bigmemory has no in-place sum (biganalytics::colsum does).
# There is no explicit free: the shm objects are removed when the creator's
# big.matrix is garbage collected, so the handle is an environment and
# release() drops it and runs gc().
systems$bigmemory <- list(
  name = "bigmemory",
  package = "bigmemory",
  available = adapter_available("bigmemory"),
  share = function(x) {
    handle <- new.env(parent = emptyenv())
    handle$obj <- bigmemory::big.matrix(length(x), 1L, type = "double", shared = TRUE)
    handle$obj[, 1L] <- x
    handle
  },
  token = function(handle) bigmemory::describe(handle$obj),
  object = function(handle) bigmemory::describe(handle$obj),
  map = function(token) bigmemory::attach.big.matrix(token),
  read = function(obj, i) obj[i, 1L],
  sum = function(obj) sum(obj[, 1L]),
  release = function(handle) {
    # bigmemory frees on garbage collection only.
    if (exists("obj", envir = handle, inherits = FALSE)) rm("obj", envir = handle)
    invisible(gc())
  },
  supports = "double"
)

# Fills in the optional elements and makes available() run the round trip
# with the adapter itself. Keep this at the end of the file: adapters added
# after it are not completed.
complete_adapter <- function(adapter) {
  if (isTRUE(adapter$completed)) return(adapter)
  if (is.null(adapter$read)) adapter$read <- function(obj, i) obj[i]
  if (is.null(adapter$sum)) adapter$sum <- function(obj) sum(obj)
  if (is.null(adapter$unmap)) adapter$unmap <- function(token, obj) invisible(NULL)
  if (is.null(adapter$copies)) adapter$copies <- character()
  if (is.null(adapter$max_maps)) adapter$max_maps <- Inf
  if (is.null(adapter$maps_reused)) adapter$maps_reused <- FALSE
  if (is.null(adapter$object)) adapter$object <- function(handle) handle
  check <- adapter$available
  self <- adapter
  adapter$available <- function() check(self)
  adapter$completed <- TRUE
  adapter
}
systems <- lapply(systems, complete_adapter)
