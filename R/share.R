#' Share an R object through shared memory
#'
#' `share()` writes `x` once into a new shared memory region and returns an
#' object that behaves exactly like `x` (same values, attributes and class)
#' but reads its data from that region, without copying it.
#'
#' Atomic vectors (logical, integer, double, complex, raw) and character
#' vectors become ALTREP views of the region, with every attribute kept.
#' Lists and data frames become lists of such views, nested to any depth.
#' Anything else found inside (functions, environments, formulas, S4
#' objects, language objects) is stored serialized and comes back equal. The
#' same object referenced twice inside `x` is stored once.
#'
#' A shared object serializes as its region name (about 150 bytes for a
#' vector, whatever its length), so sending it to a worker of `parallel`,
#' `mirai`, `future` or `callr` moves only the name; the worker maps the same
#' region. Workers on other hosts (mirai's remote daemons) get one copy per
#' host: see [remote].
#'
#' @section Saving shared objects:
#' `saveRDS()`, `save()`, `save.image()` (and so `q("yes")`) write a shared
#' object as what it serializes to: a reference to its region (its name, and
#' in remote mode its origin), **not its data**. Loaded while the region
#' exists, on this host, it maps the region again. Loaded after the region is
#' gone (its creator exited, it was closed), loading still succeeds, every
#' other object in the file comes back, and a warning names the region; the
#' shared object itself raises an error of class `shmr_region_unavailable`
#' when it is used. To save the data itself, save a copy made with
#' [fetch()]: `saveRDS(fetch(x), "x.rds")`. For long-lived data shared
#' between sessions, use `share(x, name = , persist = TRUE)` and
#' [map_shared()].
#'
#' @section Backings:
#' * `"shm"`: POSIX shared memory (`/dev/shm`).
#' * `"mmap"`: a file-backed mapping in the directory `path` (by default a
#'   private directory under [tempdir()], or, for `persist = TRUE`, under
#'   `tools::R_user_dir("shmr", "cache")`). This shares data larger than
#'   memory or than `/dev/shm`, or puts it on a disk of your choice.
#' * `"auto"`: `"shm"` when `/dev/shm` has room for the object with a margin
#'   (5% of its size), else `"mmap"`, with a message the first time. The
#'   room assumed in `/dev/shm` can be capped with the option
#'   `shmr.shm_capacity` or the environment variable `SHMR_SHM_CAPACITY`
#'   (bytes).
#'
#' [map_shared()] opens both kinds by name; `shared_info(x)$backing` says
#' which was used.
#'
#' @section Read-only and writable shares:
#' With `readonly = TRUE` (the default) no process can change the shared
#' bytes through R: writing to a shared object (`x[1] <- 0`) changes only the
#' writing process's private copy of the touched memory pages.
#'
#' With `readonly = FALSE`, writes to logical, integer, double, complex and
#' raw vectors, matrices and arrays (`x[i] <- v`, `x[i, j] <- v`) go to the
#' shared region and are seen by every process that mapped it. When R would
#' make a private copy first (the object is referenced from more than one
#' place, such as another variable or a function argument), shmr raises an
#' error instead of writing somewhere else. Two cases R handles without
#' asking shmr still copy privately: assigning a value of a wider type (a
#' double into an integer vector) and growing the vector. Character vectors
#' of a writable share cannot be changed. Concurrent writers are your
#' responsibility: shmr does no locking, so have processes write disjoint
#' parts, or synchronise them yourself.
#'
#' @section Names and lifetime:
#' Without `name`, the region gets an unguessable name (see
#' [shared_name()]). With `name = "my_data"` (letters, digits, `.`, `_`,
#' `-`; at most 100 characters) the region is called `shmr_my_data`, and
#' `map_shared("my_data")` opens it from any process of this user. A name
#' that exists already is an error.
#'
#' The region lives as long as the returned object, or any part extracted
#' from it, is referenced in this process; it is removed when they are
#' garbage collected, when [close()] is called, or when R exits. Processes
#' that mapped it before then keep reading it. With `persist = TRUE` the
#' region outlives this process and is removed only by [remove_shared()]
#' (never by [prune_shared()]).
#'
#' @section Deep sharing:
#' Real objects are graphs: a fitted model holds a formula and its
#' environment, R6 and Reference Class objects are environments whose
#' methods refer back to them, and one large matrix may be referenced from
#' several places. With `deep = TRUE`, `share()` walks the whole object
#' (list and data frame elements, attributes and S4 slots, closures'
#' environments and environments' bindings, stopping at the global
#' environment, namespaces and packages; an environment's enclosing
#' environment is kept as it is, not walked) and shares every atomic or
#' character vector of at least
#' `min_bytes` bytes zero-copy, each in a region of its own. The same
#' vector reached twice is shared once and both places read that one copy.
#' Everything smaller stays as it is.
#'
#' The result is rebuilt around the shared vectors and behaves like `x`:
#' methods of an R6 object work on its shared fields, a fitted model still
#' predicts, an S4 object still validates. Environments are copied, so `x`
#' itself is never changed; bindings that are not evaluated yet (promises)
#' are evaluated, as their first use would (one whose evaluation fails is
#' kept unevaluated and listed as skipped), and locked environments and
#' bindings stay locked. Like
#' any shared object, the result serializes compactly: a worker receives
#' the region names and the small parts. `shared_info(result)` lists the
#' regions, the paths shared, the aliases found, what was kept in place and
#' what was skipped; `close(result)` closes all its regions. Classes can
#' steer the walk with a [share_hook()] method. `name` is ignored.
#'
#' @param x An R object.
#' @param backing `"auto"`, `"shm"` or `"mmap"`; see Backings.
#' @param readonly `TRUE` (default) or `FALSE`; see Read-only and writable
#'   shares.
#' @param name `NULL` or a name of your choice for the region.
#' @param deep `FALSE` (default): `x` is laid out in one region. `TRUE`:
#'   walk the whole object graph and share each large vector on its own; see
#'   Deep sharing.
#' @param min_bytes With `deep = TRUE`, vectors of at least this many bytes
#'   of data are shared (8 per double, 4 per integer or logical, 16 per
#'   complex, 1 per raw; for character vectors 8 per element plus the bytes
#'   of the strings); smaller ones stay as they are. The default, 1 MiB, is
#'   the size above which the pool maps share their inputs: a model fitted
#'   on a few hundred thousand rows or more then travels as region names
#'   and its small parts (shard's default, 64 MiB, would leave every vector
#'   of a model on a few million rows to be sent whole).
#' @param cycle With `deep = TRUE`, what to do when an environment is
#'   reached again from inside itself: `"error"` stops, naming the path of
#'   the binding that refers back; `"skip"` points that binding to the
#'   shared copy without walking it again.
#' @param mode With `deep = TRUE`, what to do with parts that cannot be
#'   shared (external pointers, connections, weak references) and with
#'   errors of a [share_hook()]: `"balanced"` keeps them as they are and
#'   lists them in `shared_info(result)$skipped`; `"strict"` stops, naming
#'   the path.
#' @param path For the `"mmap"` backing (and `"auto"` when it falls back to
#'   it): the directory of the region's file.
#' @param persist `TRUE` to keep the region after this process exits.
#' @return The shared version of `x`. Sharing an object that is already
#'   shared returns it unchanged (unless a `name`, `persist = TRUE` or
#'   `readonly = FALSE` asks for a new region). So does sharing `NULL`, a
#'   function, an environment or a language object without a `name`: there
#'   is no data to share.
#' @seealso [map_shared()], [shared_name()], [fetch()], [close.default()],
#'   [remove_shared()]
#' @export
#' @examples
#' x <- share(rnorm(1e5))
#' is_shared(x)
#' length(serialize(x, NULL)) # the name, not the data
#' identical(share(x), x)
#'
#' df <- share(data.frame(id = 1:3, label = c("a", "b", "c")))
#' df$label
#' close(df)
#'
#' # A file-backed, writable share
#' w <- share(numeric(10), backing = "mmap", readonly = FALSE)
#' w[3] <- 42
#' shared_info(w)$backing
#' map_shared(shared_name(w))[3]
#' close(w)
share <- function(x, backing = c("auto", "shm", "mmap"), readonly = TRUE, name = NULL,
                  deep = FALSE, min_bytes = 1024^2, cycle = c("error", "skip"),
                  mode = c("balanced", "strict"), path = NULL, persist = FALSE) {
  backing <- match.arg(backing)
  cycle <- match.arg(cycle)
  mode <- match.arg(mode)
  check_flag(readonly, "readonly")
  check_flag(persist, "persist")
  check_flag(deep, "deep")
  if (!is.numeric(min_bytes) || length(min_bytes) != 1L || is.na(min_bytes) || min_bytes < 0) {
    stop("share(): `min_bytes` must be a single non-negative number", call. = FALSE)
  }
  if (deep) {
    if (!is.null(name)) {
      warning("share(): `name` is ignored with deep = TRUE, which creates a region for ",
              "each shared vector", call. = FALSE)
    }
    root <- substitute(x)
    root <- if (is.symbol(root)) as.character(root) else "x"
    share_vector <- function(v) {
      share(v, backing = backing, readonly = readonly, path = path, persist = persist)
    }
    return(share_deep(x, root, min_bytes, cycle, mode, share_vector))
  }
  if (!is.null(name)) check_region_name(name)
  # A function, environment or language object would only be stored
  # serialized and come back as a copy: like mori, hand it back as it is.
  if (is.null(name) && !persist && is_not_data(x)) return(x)
  directory <- if (backing == "shm") "" else data_directory(path, persist)
  options <- list(
    backing = backing, readonly = readonly, name = name, persist = persist,
    data_directory = directory, shm_capacity = shm_capacity(),
    # An object that is shared already is returned as it is, unless a new
    # region with other properties is asked for.
    reuse = is.null(name) && !persist && readonly
  )
  shared <- .Call(shmr_share, x, class(x)[1L], options)
  if (backing == "auto") explain_fallback(.Call(shmr_info, shared))
  shared
}

is_not_data <- function(x) {
  is.null(x) || is.function(x) || is.environment(x) || is.language(x)
}

#' Map a shared object by name
#'
#' Opens the region called `name` (as given by [shared_name()]) in this
#' process and returns its object, reading the shared memory in place. A
#' name may point inside an object: `"<name>[2,3]"` is element 3 of element
#' 2, and `"<name>@names"` is an attribute.
#'
#' @param name The name of a shared object, a single string.
#' @return The shared object. `NULL` when `name` is not a well-formed shmr
#'   name (not a single string, `NA`, a wrong prefix, a bad path). A
#'   well-formed name whose region is missing or corrupt is an error.
#' @export
#' @examples
#' x <- share(list(a = 1:10, b = letters))
#' y <- map_shared(shared_name(x))
#' identical(x, y)
#' map_shared(paste0(shared_name(x), "[2]"))
#' map_shared("not a name")
map_shared <- function(name) {
  if (!is.character(name) || length(name) != 1L || is.na(name)) {
    return(NULL)
  }
  .Call(shmr_map, name)
}

#' Name of a shared object
#'
#' @param x An R object.
#' @return The name that [map_shared()] opens, or `NULL` when `x` is not
#'   shared. For a part of a shared object the name includes its path, such
#'   as `"shmr_...[2]"`.
#' @export
#' @examples
#' x <- share(list(a = 1:10, b = letters))
#' shared_name(x)
#' shared_name(x$b)
#' shared_name(1:10)
shared_name <- function(x) {
  .Call(shmr_name, x)
}

#' Is an object shared?
#'
#' @param x An R object.
#' @return `TRUE` when `x` reads from a shmr region that is still open, or
#'   is the result of `share(deep = TRUE)` in the process that made it.
#' @export
#' @examples
#' is_shared(share(1:10 + 0))
#' is_shared(1:10)
is_shared <- function(x) {
  .Call(shmr_is_shared, x) || !is.null(deep_share_report(x))
}

#' Copy a shared object into ordinary memory
#'
#' @param x An R object, shared or not.
#' @param ... Ignored (accepted for code written for shard).
#' @return An ordinary deep copy of `x` that owns its memory: no ALTREP
#'   vector is left anywhere inside it, and it stays usable after the region
#'   is closed.
#' @export
#' @examples
#' x <- share(c(a = 1, b = 2))
#' y <- fetch(x)
#' is_shared(y)
#' identical(x, y)
fetch <- function(x, ...) {
  copy <- .Call(shmr_fetch, x)
  # A buffer's copy is an ordinary private vector, not a buffer.
  if (inherits(copy, "shmr_buffer")) oldClass(copy) <- NULL
  copy
}

#' Release a shared object now
#'
#' Unmaps the object's region in this process; in the process that created
#' it, also removes the region's name so no new process can map it.
#' Processes that already mapped it keep their data. Any later use of the
#' data of `con` (or of a part extracted from it) is an R error, never a
#' crash.
#'
#' shmr registers this as the default method of [base::close()], so
#' `close(x)` works for any shared object; for other objects it signals the
#' same error as base R.
#'
#' @param con A shared object.
#' @param ... Ignored.
#' @return `invisible(TRUE)`.
#' @export
#' @examples
#' x <- share(rnorm(10))
#' close(x)
#' try(sum(x))
close.default <- function(con, ...) {
  # Served to other hosts: stop serving it, and have pools release copies.
  region <- if (length(remote_state$exports)) region_of_path(shared_name(con) %||% "")
  if (!.Call(shmr_close, con) && !close_deep_share(con)) {
    stop(sprintf(
      "no applicable method for 'close' applied to an object of class \"%s\"",
      paste(class(con), collapse = "\", \"")
    ), call. = FALSE)
  }
  if (length(region) && nzchar(region)) remote_closed(region)
  invisible(TRUE)
}

#' Details of a shared object
#'
#' @param x A shared object.
#' @return `NULL` when `x` is not shared; otherwise a list with `name`,
#'   `backing`, `path` (the region's file), `size` (bytes), `readonly`,
#'   `persistent`, `creator_pid`, `format_version`, `class` (of the original
#'   object), `owner` (whether this process created it), `node`, and, as
#'   shard describes its shares, `class_info` (`type`: `"vector"`,
#'   `"matrix"`, `"array"`, `"data.frame"` or `"list"`; `mode`: the
#'   [typeof()] of `x`; `length`, or `dim` for a matrix or array) and
#'   `segment_info` (`size`, `backing`, `path`, `readonly`, `owns`).
#'
#'   For the result of `share(deep = TRUE)`, in the process that made it: a
#'   list with `deep` (`TRUE`), `regions` (their names), `n_regions`,
#'   `shared_bytes` (bytes of data shared, each vector counted once),
#'   `shared` (paths of the shared vectors), `n_aliases` and `aliases`
#'   (paths that reached a vector, list or environment met before, and now
#'   refer to its one copy), `kept` (paths of vectors smaller than
#'   `min_bytes` and of unevaluated bindings, kept as they are) and
#'   `skipped` (a data frame of `path` and `reason`: parts that could not be
#'   shared, hook decisions and cycles). Paths are written as in
#'   [share_hook()].
#' @export
#' @examples
#' str(shared_info(share(1:100 + 0L)))
#'
#' m <- matrix(runif(2e4), 100)
#' deep <- share(list(a = m, b = m, small = 1:3), deep = TRUE, min_bytes = 1000)
#' info <- shared_info(deep)
#' info$n_regions
#' info$aliases
#' close(deep)
shared_info <- function(x) {
  deep <- deep_share_report(x)
  if (!is.null(deep)) return(deep)
  info <- .Call(shmr_info, x)
  if (is.null(info)) return(NULL)
  info$class_info <- shape_of(x)
  info$segment_info <- list(size = info$size, backing = info$backing, path = info$path,
                            readonly = info$readonly, owns = info$owner)
  info
}

shape_of <- function(x) {
  type <- if (is.data.frame(x)) "data.frame" else if (is.matrix(x)) "matrix" else
    if (!is.null(dim(x))) "array" else if (is.atomic(x)) "vector" else "list"
  extent <- if (type %in% c("matrix", "array", "data.frame")) list(dim = dim(x)) else
    list(length = length(x))
  c(list(type = type, mode = typeof(x)), extent)
}
