#' Migrating from bettermc
#'
#' Code that hands vectors between processes with bettermc's `copy2shm()`
#' and `allocate_from_shm()` runs on shmr once `library(bettermc)` becomes
#' `library(shmr)` (and `bettermc::f` becomes `shmr::f`).
#'
#' `copy2shm(x, name)` copies a logical, integer, double, complex or raw
#' vector, a factor, or an S3 object built on one of these (long vectors
#' included, every attribute kept) into a shared memory object called
#' `name`, which outlives the calling process: typically a forked or other
#' child copies its result and returns the small `shm_obj` to its parent.
#' `name` is a POSIX shared memory name: an optional leading `/` followed by
#' 1 to 100 letters, digits, `.`, `_` or `-`; the object is the shmr region
#' `shmr_<name>` (in `/dev/shm`, or the directory named by the environment
#' variable `SHMR_SHM_DIR`).
#'
#' `allocate_from_shm(obj)` opens that object and removes its name at once,
#' so it can be allocated only once; a second call is an error. With
#' `copy = TRUE` the vector is copied into ordinary memory and the shared
#' memory is freed. With `copy = FALSE` it is not copied: the vector reads
#' a private (copy-on-write) mapping of the object, so later writes stay in
#' the writing process (and its forked children), and the memory is freed
#' when the vector is garbage collected. Such a vector serializes by value,
#' like an ordinary one.
#'
#' @section Differences from bettermc:
#' * Every failure is an R error (bettermc returns some of them as a
#'   string), and a failed `copy2shm()` leaves nothing in `/dev/shm`: not for
#'   an unsupported type, nor a name that exists already, nor a full
#'   `/dev/shm`.
#' * With `overwrite = TRUE` an existing object of that name is removed and
#'   a new one created: processes that already opened the old one keep
#'   their data intact.
#' * Names may hold only letters, digits, `.`, `_` and `-` after the
#'   leading `/` (bettermc allows any character but `/`).
#' * Objects that were never allocated are not removed when their creator
#'   exits (as in bettermc); [remove_shared()] removes one by name.
#' * bettermc's `mclapply()` and semaphores are not provided: use
#'   [parallel::mclapply()], or [pool_lapply()], which returns large
#'   results through shared memory by itself.
#'
#' @param x A logical, integer, double, complex or raw vector, a factor, or
#'   an S3 object built on one of these.
#' @param name The shared memory object's name, such as `"/my_result"`.
#' @param overwrite Replace an existing object called `name` (`TRUE`), or
#'   fail (`FALSE`, the default).
#' @param copy The default for `allocate_from_shm()`'s `copy`.
#' @param obj An object returned by `copy2shm()`, usually in another process.
#' @return `copy2shm()`: an object of class `shm_obj`, a list with `name`
#'   (as given), `type` (the SEXP type of `x`, an integer), `length` (a
#'   double), `size` (of the shared memory object, in bytes, a double),
#'   `attributes` (those of `x`, as a pairlist) and `copy`.
#'   `allocate_from_shm()`: the vector, equal to `x`.
#' @name compat-bettermc
#' @examples
#' x <- factor(c("low", "high", "low"))
#' obj <- copy2shm(x, "/bettermc_example")
#' str(unclass(obj))
#' y <- allocate_from_shm(obj)
#' identical(x, y)
#' try(allocate_from_shm(obj)) # the name was removed by the first call
#'
#' # Zero-copy hand-off from a child process
#' \donttest{
#' if (requireNamespace("callr", quietly = TRUE)) {
#'   obj <- callr::r(function() shmr::copy2shm(rnorm(1e6), "/bettermc_child"))
#'   big <- allocate_from_shm(obj, copy = FALSE)
#'   length(big)
#' }
#' }
NULL

#' @rdname compat-bettermc
#' @export
copy2shm <- function(x, name, overwrite = FALSE, copy = TRUE) {
  region <- shm_obj_region(name)
  check_flag(overwrite, "overwrite")
  check_flag(copy, "copy")
  if (!typeof(x) %in% names(sexp_types) || is.object(x) && !is.atomic(x)) {
    stop(sprintf(paste0("copy2shm(): `x` must be a logical, integer, double, complex or raw ",
                        "vector (or a factor or S3 object built on one), not %s"),
                 describe_type(x)), call. = FALSE)
  }
  if (overwrite) {
    remove_shared(region)
  } else if (region_exists_here(region)) {
    stop(sprintf(paste0("copy2shm(): a shared memory object named '%s' exists already ",
                        "(overwrite = TRUE replaces it)"), name), call. = FALSE)
  }
  # The region is written and published, then left without an owner: it
  # stays until allocate_from_shm() (or remove_shared()) removes it. A
  # failure while writing removes what was written.
  options <- list(backing = "shm", readonly = TRUE, name = region, persist = TRUE,
                  data_directory = "", shm_capacity = shm_capacity())
  .Call(shmr_share_handoff, x, class(x)[1L], options)
  structure(list(
    name = name, type = sexp_types[[typeof(x)]], length = as.numeric(length(x)),
    size = file.size(file.path(shm_directory(), region_file_name(region))),
    attributes = as.pairlist(attributes(x)), copy = copy
  ), class = "shm_obj")
}

#' @rdname compat-bettermc
#' @export
allocate_from_shm <- function(obj, copy = obj$copy) {
  if (!inherits(obj, "shm_obj")) stop("`obj` must be an object returned by copy2shm()", call. = FALSE)
  check_flag(copy, "copy")
  region <- shm_obj_region(obj$name)
  x <- tryCatch(map_shared(region), error = function(e) {
    stop(sprintf(paste0("allocate_from_shm(): cannot open the shared memory object '%s': it ",
                        "was allocated already, removed, or never created (%s)"),
                 obj$name, conditionMessage(e)), call. = FALSE)
  })
  # One allocation per object: the name goes as soon as it is open.
  remove_shared(region)
  if (copy) {
    y <- fetch(x)
    .Call(shmr_unmap, x)
    return(y)
  }
  .Call(shmr_detach, x)
  x
}

sexp_types <- c(logical = 10L, integer = 13L, double = 14L, complex = 15L, raw = 24L)

# The shmr region name for a bettermc name ("/name" or "name").
shm_obj_region <- function(name) {
  if (!is.character(name) || length(name) != 1L || is.na(name) ||
      !grepl("^/?[A-Za-z0-9._-]{1,100}$", name) || sub("^/", "", name) %in% c(".", "..")) {
    stop("a shared memory name must be '/' followed by 1 to 100 letters, digits, '.', '_' ",
         "or '-'", call. = FALSE)
  }
  sub("^/", "", name)
}

region_exists_here <- function(region) {
  file.exists(file.path(shm_directory(), region_file_name(region)))
}

# The file a region name (as share(name = ) takes it) has in shm_directory().
region_file_name <- function(region) {
  if (startsWith(region, "shmr_")) region else paste0("shmr_", region)
}
