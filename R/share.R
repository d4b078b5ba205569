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
#' A shared object serializes as its region name (a little over 100 bytes
#' for a vector, whatever its length), so sending it to a worker of
#' `parallel`, `mirai`, `future` or `callr` moves only the name; the worker
#' maps the same region.
#'
#' Writing to a shared object (`x[1] <- 0`) changes only the writing
#' process's private copy of the touched memory pages; the region and every
#' other process are never changed.
#'
#' The region lives as long as the returned object, or any part extracted
#' from it, is referenced in this process; it is removed when they are
#' garbage collected, when [close()] is called, or when R exits. Processes
#' that mapped it before then keep reading it.
#'
#' @param x An R object.
#' @param ... Reserved for the options of later versions; must be empty.
#' @return The shared version of `x`. Sharing an object that is already
#'   shared returns it unchanged.
#' @seealso [map_shared()], [shared_name()], [fetch()], [close.default()]
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
share <- function(x, ...) {
  if (...length() > 0L) {
    stop("share(): unused arguments; this version takes only `x`", call. = FALSE)
  }
  .Call(shmr_share, x, class(x)[1L])
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
  .Call(shmr_fetch, x)
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
