#' Share an R object through shared memory
#'
#' `share()` writes `x` once into a new shared memory region and returns an
#' object that behaves exactly like `x` (same values, attributes and class)
#' but reads its data from that region, without copying it.
#'
#' Atomic vectors (logical, integer, double, complex, raw) and character
#' vectors become ALTREP views of the region, with every attribute kept.
#' Lists and data frames, nested to any depth, hold such views: on R 4.3 and
#' later each list is itself one ALTREP list whose elements are read from the
#' region when first used; on R 4.2 it is an ordinary list. Pairlists come
#' back as pairlists. Anything else found inside (functions, environments,
#' formulas, S4 objects, language objects) is stored serialized and comes
#' back equal, each such object on its own: two of them that share an
#' environment (two closures of one function factory, formulas made in one
#' function) come back with an environment each (`deep = TRUE` keeps it
#' one). The same object referenced twice inside `x` is stored once and
#' comes back as one object; in a writable share (`readonly = FALSE`) each
#' place of a vector or list gets its own copy, as R would make at the
#' first change.
#'
#' A shared object serializes as its region name (about 130 bytes for a
#' vector, whatever its length; on R 4.3 and later about 100 bytes plus its
#' attributes for a list or data frame, whatever its size), so sending it to
#' a worker of `parallel`, `mirai`, `future` or `callr` moves only the name;
#' the worker maps the same region, and what it receives is shared there
#' too. Changing a shared list (`x$a <- 1`) makes a private list that
#' travels by value; the region never changes (a script's `x$a <- 1` to a
#' writable share is refused instead, on R 4.3 and later: see below). On R 4.2 a list travels
#' element by element (its views by name; in a list of 64 elements or more,
#' elements of at most 56 bytes by value, except in a writable share) and
#' arrives as an ordinary list.
#' Workers on other hosts (mirai's remote daemons) get one copy per host:
#' see [remote].
#'
#' @section Saving shared objects:
#' `saveRDS()`, `save()`, `save.image()` (and so `q("yes")`) write a shared
#' object as what it serializes to: a reference to its region (its name, and
#' in remote mode its origin), **not its data**. Loaded while the region
#' exists, on this host, it maps the region again. Loaded after the region is
#' gone (its creator exited, it was closed), loading still succeeds, every
#' other object in the file comes back, and a warning names the region; the
#' shared object itself raises an error of class `shmr_region_unavailable`
#' when it is used (a list or data frame keeps its length and names, and
#' raises it when an element is read). One loaded while its region exists
#' but cannot be mapped (file descriptors or address space used up, see
#' `ulimit -n` and `ulimit -v`) tries again each time it is used, and works
#' once the region can be mapped, without a second warning; on R >= 4.3 a
#' shared list or data frame (read from its region element by element) does
#' not: load it again. To save the data itself, save a copy made with
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
#'   (a number of bytes, 0 for no cap; any other value is an error).
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
#' shared region and are seen by every process that mapped it, also when
#' the code runs through [source()], knitr or an IDE's Source button (R then
#' copies the object before its first change; that copy becomes the share's
#' new value and writes through). So do writes to such columns of a
#' writable data frame and elements of a writable list (`d$a[i] <- v`,
#' `d[i, "a"] <- v`, `d[["a"]][i] <- v`, `l[[c(1, 2)]] <- v`), though R
#' copies the column on the way, and a function's `l$v[i] <<- v` to a
#' variable of the script. Reading never fails: copies R makes for
#' its own purposes (`unclass()`, `names<-`, `print()`, arithmetic, a package
#' function changing its argument, as [replace()] does) read the shared
#' memory in place and become ordinary private copies if R writes into them;
#' they never change the share. Such a copy bound to a variable of your own
#' (`y <- unclass(w)`) is refused when you write into it, as a second
#' variable is: make it with [fetch()] instead.
#'
#' An assignment whose value reads the share it changes (`w[o] <- w`,
#' `m[4:1, ] <- m`, `d$a[o] <- d$a`) gives R's values and writes through:
#' R reads the value while the shared elements are being written, so the
#' objects it reads become private copies of the old elements before the
#' first one is written.
#'
#' A change that would reach only a private copy is an error instead: a
#' write through a second variable (`y <- w; y[1] <- 0`; for a data frame
#' or list, while a second variable holds it or the column), a change inside
#' `local()` or `within()` to a variable of the code around it (R gives
#' them a copy of its value: `local(w[1] <- 0)`), or a change R makes to a
#' copy inside a function you wrote: of an argument (R gives the function
#' its own copy) or, as shmr cannot tell the two apart, of a variable of the
#' function's own (`v[4:1] <- v`; for output that functions and pool workers
#' write into, use [shared_buffer()]). shmr finds those variables in the frames of the
#' running code and in the lists they hold; an object kept out of their
#' sight (in an environment, a closure, an attribute or S4 slot, a list or
#' pairlist more than 8 levels deep or past its first 65,536 elements) is not
#' found, and may change with the share. Four cases R handles without asking shmr still copy
#' privately: assigning a value of a wider type (a double into an integer
#' vector), growing the vector, `[<-` with names (`w["b"] <- 2`: R
#' builds a new vector for a character index even when the names exist;
#' `w[["b"]] <- 2` and `w[2] <- 2` write through), and replacement
#' functions written in R (`diag(w) <- 0`, `is.na(w) <- 2`): they change
#' their own copy, which then takes the share's place in `w`
#' (`is_shared(w)` turns `FALSE`); an index does the same in place
#' (`w[cbind(i, i)] <- 0`). Character vectors of a writable share
#' cannot be changed (the copies package code changes, as `rbind()` or
#' `replace()` do, and those base R's C code rewrites, as `format()` and
#' `iconv()` do, are private copies as above). A data frame's `[<-` (`w[i, ] <- v`) changes the
#' columns one after another: when one of them cannot be written through
#' (a character or list column, a factor, whose `[<-` method changes a
#' copy of its own, or a column given values of a wider type), the whole
#' change is an error raised before any column reaches shared memory; `w[i, c("a", "b")] <- v` changes the others.
#' A Date, POSIXct or difftime stored as integers
#' (`structure(1:3, class = "Date")`) cannot take the doubles its `[<-`
#' method makes of any value (R would put them in a new vector of doubles):
#' such a change is refused; give integer values
#' (`w[i] <- structure(10L, class = "Date")`).
#' A new object in place of an element of a writable list or a column of a
#' writable data frame cannot reach shared memory: a whole element replaced
#' (`l$a <- v`, `l[[1]] <- v`, `d[["a"]] <- v`, `d[, "a"] <- v`), or one R
#' makes anew for a change (`l$b[1] <- 1.5` into integers, `l$b[9] <- 1L`
#' past its end, `names(l$a) <- n`). On R 4.3 and later, where R hands it
#' to the shared list itself, such a change to a script's variable (also
#' `l$a <<- v` from a function, or inside `local()`) is an error and
#' nothing changes: write the values in place (`l$a[] <- v`,
#' `d[["a"]][] <- v`, `d[i, "a"] <- v`) or change a private copy made with
#' [fetch()]. Putting the element itself back (`l$a <- l$a`) keeps the
#' share. A list that a function of yours or package code changes for a
#' value of its own (an argument, [transform()], [modifyList()]) becomes a
#' private list, as in R. Adding or removing an element (`l$new <- v`,
#' `l$a <- NULL`, and `l["a"] <- list(v)`, for which R builds a new list)
#' makes a private list, as growing a vector does; so does setting one to
#' NULL (`l[1] <- list(NULL)`), which R does as well to empty a list it has
#' moved the elements out of. On R 4.2 a shared list
#' is an ordinary R list of shared vectors and R replaces an element
#' without calling shmr: the list becomes private (`is_shared(l)` turns
#' `FALSE`) and the region, and every other process, keeps the old values.
#' Concurrent writers are your responsibility: shmr does
#' no locking, so have processes write disjoint parts, or synchronise them
#' yourself. `share(w, readonly = TRUE)` of a writable share `w` makes a
#' read-only copy of it in a new region.
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
#' In a forked child (`parallel::mclapply()`, `mcparallel()`), which ends
#' without releasing anything, a region the child sends to its parent (by
#' returning a shared object) becomes the parent's: the parent is its
#' creator and owner, and it is removed with the parent's objects or at the
#' parent's exit. Regions the child keeps to itself are removed by
#' [prune_shared()] once the child is gone. Large results of a pool map are
#' likewise the caller's from the start.
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
#' @param name `NULL` or a name of your choice for the region. An absolute
#'   file path (as shard takes it), such as `tempfile()`, makes a
#'   file-backed region named by the path's last part, with its file in the
#'   path's directory, which must exist (`share(x, name = "/data/run1")` is
#'   the region `run1`, file `/data/shmr_run1`). Relative paths are refused,
#'   as any name with a `/`.
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
#'   shared (external pointers, connections, weak references, shared
#'   objects that were closed) and with
#'   errors of a [share_hook()]: `"balanced"` keeps them as they are and
#'   lists them in `shared_info(result)$skipped`; `"strict"` stops, naming
#'   the path.
#' @param path For the `"mmap"` backing (and `"auto"` when it falls back to
#'   it): the directory of the region's file.
#' @param persist `TRUE` to keep the region after this process exits.
#' @return The shared version of `x`. Sharing an object that is already
#'   shared returns it unchanged (unless a `name`, `persist = TRUE` or
#'   `readonly = FALSE` asks for a new region; a writable share asked for
#'   with `readonly = TRUE` gets a read-only region of its own, and so does
#'   one whose region's name is gone or taken by another region, since no
#'   other process could map it by its name). So does
#'   sharing `NULL`, a function, an environment, a language object (a
#'   formula, a call), an external pointer or a weak reference: there is no
#'   data to share. With a `name` or
#'   `persist = TRUE` these are an error, since no other process could map
#'   them by that name; share a list that holds them instead. An S4 object
#'   that is not a vector (also one that extends `"list"` or
#'   `"data.frame"`), and an S7 object, is shared as with `deep = TRUE`: each
#'   slot, property or element of at least `min_bytes` bytes in a region of
#'   its own, the rest as it is.
#'   An S4 object that is a vector (a class that contains `"numeric"`, say)
#'   is shared like any vector, its slots with it, and stays an S4 object
#'   here, in workers and through [map_shared()].
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
  # share(x) of a vector: every option at its default, and none of the checks
  # below applies. A loop of small shares spends as much time in those
  # checks as in writing the region.
  if (nargs() == 1L && is.atomic(x) && !is.null(x) && !isS4(x)) {
    return(share_region(x, "auto", TRUE, NULL, FALSE, data_directory(NULL, FALSE)))
  }
  # The defaults without choose_arg(), whose cost shows on small shares. Each
  # default is still evaluated: an unevaluated one would keep this call's
  # frame, and with it the result, referenced after return (a writable
  # share could then not be changed in place).
  backing <- if (identical(backing, c("auto", "shm", "mmap"))) "auto" else
    choose_arg(backing, c("auto", "shm", "mmap"), "backing")
  cycle <- if (identical(cycle, c("error", "skip"))) "error" else
    choose_arg(cycle, c("error", "skip"), "cycle")
  mode <- if (identical(mode, c("balanced", "strict"))) "balanced" else
    choose_arg(mode, c("balanced", "strict"), "mode")
  check_flag(readonly, "readonly")
  check_flag(persist, "persist")
  check_flag(deep, "deep")
  if (!is.numeric(min_bytes) || length(min_bytes) != 1L || is.na(min_bytes) || min_bytes < 0) {
    stop("share(): `min_bytes` must be a single non-negative number", call. = FALSE)
  }
  if (!deep && isS4(x) && is.atomic(x)) {
    # An S4 object that is a vector: the shared view gets the S4 bit back.
    shared <- share(s4_vector_as_s3(x), backing = backing, readonly = readonly,
                    name = name, path = path, persist = persist)
    return(asS4(shared))
  }
  if (!deep && (is_not_data(x) || is_shared_as_deep(x))) {
    if (!is.null(name) || persist) {
      stop(sprintf(paste0("share(): %s cannot be shared under a name or persistently: it ",
                          "holds no data another process could map; share a list that holds ",
                          "it, such as share(list(x), name = ), or save it with saveRDS()"),
                   describe_not_data(x)), call. = FALSE)
    }
    # A function, environment, language object or external pointer would
    # only be stored serialized and come back as a copy: like mori, hand it
    # back as it is.
    if (is_not_data(x)) return(x)
    # An S4 object (not a vector) or an S7 object shares its data as deep
    # sharing does: each slot, property or list element of at least
    # min_bytes in a region of its own.
    deep <- TRUE
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
  if (is_file_path_name(name)) {
    # shard's way of naming a file-backed share: a path.
    placed <- place_named_file(name, backing, path)
    name <- placed$name
    path <- placed$path
    backing <- "mmap"
  }
  if (!is.null(name)) check_region_name(name)
  directory <- if (backing == "shm") "" else data_directory(path, persist)
  share_region(x, backing, readonly, name, persist, directory)
}

# The region of `x` with options already checked, and the once-per-session
# message when "auto" fell back to a file. share(x) of a vector calls it
# directly: the result is then never bound in share()'s frame, whose
# unevaluated defaults would keep it referenced after the return.
share_region <- function(x, backing, readonly, name, persist, directory) {
  options <- list(
    backing = backing, readonly = readonly, name = name, persist = persist,
    data_directory = directory, shm_capacity = shm_capacity(),
    # An object that is shared already is returned as it is, unless a new
    # region with other properties is asked for.
    reuse = is.null(name) && !persist && readonly
  )
  shared <- .Call(shmr_share, x, class(x)[1L], options)
  if (backing == "auto" && !isTRUE(fallback_explained$done) &&
      identical(.Call(shmr_backing, shared), "mmap")) {
    explain_fallback(.Call(shmr_info, shared))
  }
  shared
}

# Only absolute paths: "a/b" or "../up" stay malformed names, so a typo
# never creates a file relative to the working directory.
is_file_path_name <- function(name) {
  is.character(name) && length(name) == 1L && !is.na(name) && startsWith(name, "/")
}

# share(x, name = "/some/dir/data"): the region is "data" (file
# "/some/dir/shmr_data"), file-backed in "/some/dir".
place_named_file <- function(name, backing, path) {
  if (backing == "shm") {
    stop("share(): with backing = \"shm\", `name` must be a name, not a path ('", shorten(name),
         "')", call. = FALSE)
  }
  check_path_length(name, "share(): `name`")
  # dirname() and basename() drop a trailing "/": "<dir>/" would name a
  # file beside <dir>, not in it.
  if (endsWith(name, "/")) {
    stop("share(): `name` is a path that ends with '/' ('", shorten(name),
         "'); give the file's name too", call. = FALSE)
  }
  directory <- dirname(name)
  if (!dir.exists(directory)) {
    stop("share(): `name` is a path in '", shorten(directory),
         "', which is not an existing directory", call. = FALSE)
  }
  if (!is.null(path) && !identical(normalizePath(path, mustWork = FALSE),
                                   normalizePath(directory, mustWork = FALSE))) {
    stop("share(): `name` is a path in '", shorten(directory), "' but `path` is '", shorten(path),
         "'", call. = FALSE)
  }
  list(name = basename(name), path = directory)
}

# Anything but a vector, a list or an object shared as deep sharing does
# (below): a region would store it serialized, and the result would refer to
# nothing in it (under a name, nothing another process could map).
is_not_data <- function(x) {
  is.null(x) || !(is.atomic(x) || is.list(x) || typeof(x) %in% c("S4", "object"))
}

# Objects share() walks as deep sharing does. A region would store them
# serialized, their data copied into every process that reads them, and the
# result would refer to nothing in it (under a name or persistent, a region
# no one could find). These are: an object whose data are all in its
# attributes, an S4 object that is not a vector or an S7 object (R 4.4 and
# later call the type of the latter "object", typeof() says "S4" only when
# the S4 bit is set; earlier R calls both "S4"); and an S4 object that
# extends "list" or "data.frame", which a region does not keep S4.
is_shared_as_deep <- function(x) {
  typeof(x) %in% c("S4", "object") || (isS4(x) && typeof(x) == "list")
}

# What a region stores of an S4 vector (setClass(contains = "numeric")): the
# vector with its slots as attributes, without the S4 bit, which a region
# does not record (map_shared() sets it again from the class).
s4_vector_as_s3 <- function(x) {
  if (isS4(x) && is.atomic(x)) asS3(x, complete = FALSE) else x
}

describe_not_data <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.function(x)) return("a function")
  if (is.environment(x)) return("an environment")
  if (inherits(x, "formula")) return("a formula")
  if (is.language(x)) return("a language object (a call or a symbol)")
  if (typeof(x) == "externalptr") return("an external pointer")
  if (typeof(x) == "weakref") return("a weak reference")
  if (is_not_data(x)) return(sprintf("an object of type \"%s\"", typeof(x)))
  if (isS4(x)) "an S4 object" else "an object whose data are all in its attributes (an S7 object, say)"
}

#' Map a shared object by name
#'
#' Opens the region called `name` (as given by [shared_name()]) in this
#' process and returns its object, reading the shared memory in place. A
#' name may point inside an object: `"<name>[2,3]"` is element 3 of element
#' 2, and `"<name>@names"` is an attribute. Past half the mappings the
#' kernel allows a process (`vm.max_map_count`), the object of a region this
#' process maps already for other objects is an ordinary copy of its data
#' (one of a region written in place, a writable share or a buffer, still
#' reads it). Past seven eighths of them, no region is mapped at all: an
#' error says so, and the rest stays for R.
#'
#' @param name The name of a shared object, a single string; or the path
#'   given to `share(name = )` for a file-backed region.
#' @return The shared object. `NULL` when `name` is not the name of a shmr
#'   object: not a single string, `NA`, a bad path, or a name without the
#'   `shmr_` prefix (a name of your choosing, as given to `share(name = )`)
#'   when no region of that name exists. A name with the prefix whose region
#'   is missing or corrupt, or a path that leads nowhere, is an error.
#' @export
#' @examples
#' x <- share(list(a = 1:10, b = letters))
#' y <- map_shared(shared_name(x))
#' identical(x, y)
#' map_shared(paste0(shared_name(x), "[2]"))
#' map_shared("not a name")
map_shared <- function(name) {
  # The entry point also answers NULL for a name that is not one string, and
  # makes an S4 vector S4 again (see share()).
  x <- .Call(shmr_map, name)
  # A path, as share(name = "/dir/data") and remove_shared() take it, is
  # looked for only once the name as such has found nothing.
  if (is.null(x) && is_file_path_name(name)) {
    region <- region_of_file_path(name)
    if (nzchar(region)) x <- .Call(shmr_map, region)
  }
  x
}

#' Name of a shared object
#'
#' @param x An R object.
#' @return The name that [map_shared()] opens, or `NULL` when `x` is not
#'   shared. For a part of a shared object the name includes its path, such
#'   as `"shmr_...[2]"`. Also `NULL` when an attribute of `x` was changed
#'   after it was shared (`names(x) <- `, `dimnames<-`, `class<-`): the
#'   region still holds the old ones, so its name would not give `x` back;
#'   `share(x)` then shares `x` as it is now, in a new region. The same
#'   holds when the name no longer leads to the region `x` reads: a vector
#'   from `allocate_from_shm(copy = FALSE)`, whose name was removed, or a
#'   region whose name was given to a new region since.
#' @details A name opens its region only while the region lives: keep the
#'   shared object referenced until the other processes have mapped it.
#'   `shared_name(share(y))` alone keeps nothing, and the new region is
#'   removed at the next garbage collection (unless it was shared with
#'   `persist = TRUE`).
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

#' Release a shared object now
#'
#' Unmaps the object's region in this process; in the process that created
#' it, also removes the region's name so no new process can map it.
#' Processes that already mapped it keep their data. Any later use of the
#' data of `con` (or of a part extracted from it) is an R error, never a
#' crash. So is the use of what R derives from it lazily, reading it only
#' when needed: `as.character()` of a numeric vector is such a result. So
#' is the use of what reads the same memory instead of copying it: the
#' object with its attributes changed (`unclass(x)`, `names<-`, `dim<-`,
#' `class<-`), `sort()` of a vector already sorted, `as.numeric()` of a double
#' vector (R returns the vector itself). Subsets, conversions to another
#' type (`as.integer()` of a double vector, `as.numeric()` of a character
#' vector) and results of arithmetic made before the close stay valid.
#'
#' shmr registers this as the default method of [base::close()], so
#' `close(x)` works for any shared object. It also works, doing nothing, for
#' anything [share()] handed back without sharing it: `NULL`, a function, an
#' environment, or the result of a deep share that found nothing to share.
#' (Connections keep their own method.)
#'
#' @param con A shared object, or anything [share()] returned.
#' @param ... Ignored.
#' @return `invisible(TRUE)` when something was released, else
#'   `invisible(FALSE)` (closing twice does nothing). When the creator
#'   cannot remove the region's file (its directory turned read-only), the
#'   close warns naming the file, which stays findable: [remove_shared()]
#'   removes it later.
#' @export
#' @examples
#' x <- share(rnorm(10))
#' close(x)
#' try(sum(x))
close.default <- function(con, ...) {
  # Served to other hosts: stop serving its regions, and have pools release
  # copies. Found before the close, which makes them unknown.
  regions <- if (length(remote_state$exports)) regions_of_share(con)
  # share() hands back what it does not share, and closing twice is
  # harmless (as for a file closed already): nothing to do.
  left <- close_shared(con)
  if (is.null(left)) return(invisible(FALSE))
  if (length(regions)) remote_closed(regions)
  if (length(left)) {
    warning(sprintf("closed, but %s stay%s: remove_shared() removes %s once %s",
                    paste(left, collapse = ", "), if (length(left) == 1L) "s" else "",
                    if (length(left) == 1L) "it" else "them",
                    "the directory can be written again"), call. = FALSE)
  }
  invisible(TRUE)
}

# The regions of a shared object, or of a deep share (a plain list or
# environment, which has no region of its own), in this process.
regions_of_share <- function(con) {
  region <- .Call(shmr_info, con)$name
  if (length(region) && nzchar(region)) return(region)
  deep_share_report(con)$regions
}

# Closes a shared object or a deep share: NULL when `con` is neither, else
# the files its regions left behind (their directory read-only, say), which
# still lead to the region.
close_shared <- function(con) {
  left <- .Call(shmr_close, con)
  if (is.na(left)) close_deep_share(con) else left[nzchar(left)]
}

#' Details of a shared object
#'
#' @param x A shared object.
#' @return `NULL` when `x` is not shared; otherwise a list with `name`,
#'   `backing`, `path` (the region's file), `size` (bytes), `readonly`,
#'   `persistent`, `creator_pid`, `format_version`, `class` (of the original
#'   object), `owner` (whether this process created it), `node`,
#'   `available` (`TRUE`), and, as
#'   shard describes its shares, `class_info` (`type`: `"vector"`,
#'   `"matrix"`, `"array"`, `"data.frame"` or `"list"`; `mode`: the
#'   [typeof()] of `x`; `length`, or `dim` for a matrix or array) and
#'   `segment_info` (`size`, `backing`, `path`, `readonly`, `owns`).
#'
#'   For an object whose region could not be had when it was unserialized
#'   (it was removed, or is on another host not in remote mode): a list
#'   with `name` (the region's), `available` (`FALSE`) and `reason`, what
#'   the object's error says when it is used. [is_shared()] is `FALSE` and
#'   [shared_name()] is `NULL` for such an object.
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
  if (is.null(info)) {
    missing <- .Call(shmr_unavailable, x)
    return(if (!is.null(missing)) list(name = missing$region, available = FALSE, reason = missing$reason))
  }
  info$available <- TRUE
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
