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
#' region.
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
#' @param x An R object.
#' @param backing `"auto"`, `"shm"` or `"mmap"`; see Backings.
#' @param readonly `TRUE` (default) or `FALSE`; see Read-only and writable
#'   shares.
#' @param name `NULL` or a name of your choice for the region.
#' @param deep,min_bytes,cycle,mode Deep sharing of whole object graphs.
#'   Only `deep = FALSE` is available in this version; the other three are
#'   checked and kept for it.
#' @param path For the `"mmap"` backing (and `"auto"` when it falls back to
#'   it): the directory of the region's file.
#' @param persist `TRUE` to keep the region after this process exits.
#' @return The shared version of `x`. Sharing an object that is already
#'   shared returns it unchanged (unless a `name`, `persist = TRUE` or
#'   `readonly = FALSE` asks for a new region).
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
                  deep = FALSE, min_bytes = 64 * 1024^2, cycle = c("error", "skip"),
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
    stop("share(): deep = TRUE (sharing whole object graphs) is not available in this ",
         "version of shmr", call. = FALSE)
  }
  if (!is.null(name)) check_region_name(name)
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
#' @return `TRUE` when `x` reads from a shmr region that is still open.
#' @export
#' @examples
#' is_shared(share(1:10 + 0))
#' is_shared(1:10)
is_shared <- function(x) {
  .Call(shmr_is_shared, x)
}

#' Copy a shared object into ordinary memory
#'
#' @param x An R object, shared or not.
#' @return An ordinary deep copy of `x` that owns its memory: no ALTREP
#'   vector is left anywhere inside it, and it stays usable after the region
#'   is closed.
#' @export
#' @examples
#' x <- share(c(a = 1, b = 2))
#' y <- fetch(x)
#' is_shared(y)
#' identical(x, y)
fetch <- function(x) {
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
  if (!.Call(shmr_close, con)) {
    stop(sprintf(
      "no applicable method for 'close' applied to an object of class \"%s\"",
      paste(class(con), collapse = "\", \"")
    ), call. = FALSE)
  }
  invisible(TRUE)
}

#' Details of a shared object
#'
#' @param x A shared object.
#' @return `NULL` when `x` is not shared; otherwise a list with `name`,
#'   `backing`, `path` (the region's file), `size` (bytes), `readonly`,
#'   `creator_pid`, `format_version`, `class` (of the original object),
#'   `owner` (whether this process created it) and `node`.
#' @export
#' @examples
#' str(shared_info(share(1:100 + 0L)))
shared_info <- function(x) {
  .Call(shmr_info, x)
}
