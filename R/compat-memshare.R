#' Migrating from memshare
#'
#' Code written for memshare runs on shmr once `library(memshare)` becomes
#' `library(shmr)` (and `memshare::f` becomes `shmr::f`): shmr provides
#' memshare's functions with memshare's arguments.
#'
#' * `registerVariables(namespace, variableList)` shares each element of the
#'   named list `variableList` under its name in `namespace`.
#' * `retrieveViews(namespace, variableNames)` returns a named list of the
#'   variables, read in place (zero-copy), in any process of this user.
#' * `releaseViews(namespace, variableNames)` lets go of the views this
#'   process retrieved of those variables (an error for a variable it holds
#'   no view of, as in memshare).
#' * `releaseVariables(namespace, variableNames)` removes variables this
#'   process registered.
#' * `retrieveMetadata(namespace, variableName)` describes variables:
#'   `type` (`"matrix"` with `nrow` and `ncol`, `"array"` with `dim`,
#'   `"vector"` or `"list"` with `n`) and `mode` (their [typeof()]). For one
#'   name the description itself, for several a list named by variable.
#' * `pageList()` and `viewList()` list the variables this process
#'   registered and the views it holds, as `"<namespace>.<variable>"`.
#' * `memshare_gc(namespace, cluster)` releases every variable and view of
#'   `namespace` in this process and, when `cluster` is given, the views
#'   and variables of that namespace on each of its workers.
#' * `memApply(X, MARGIN, FUN, ...)` and `memLapply(X, FUN, ...)` are
#'   parallel [apply()] and [lapply()] over shared data. `X` is an object
#'   (a matrix for `memApply()`, a list for `memLapply()`) or the name of a
#'   variable registered in `NAMESPACE`. `VARS` is a named list of objects,
#'   registered in `NAMESPACE` for the duration of the call, or the names of
#'   registered variables; each is passed to `FUN` as the argument of the
#'   same name. They run on `CLUSTER` (a cluster from
#'   [parallel::makeCluster()], left running), else on the default pool of
#'   [pool_create()] when there is one and `MAX.CORES` is `NULL`, else on a
#'   temporary pool of `MAX.CORES` workers (by default one less than the
#'   usable cores). `NAMESPACE` defaults to the name of `FUN`. The result is
#'   an unnamed list, as memshare's. `memApply()` on something that is not
#'   a matrix (a data frame, say) warns and uses `as.matrix(X)`, as
#'   memshare does.
#' * [mutualinfo()], the statistic of memshare's main example, with
#'   memshare's arguments and estimators (see its differences below).
#'
#' @section How namespaces map onto regions:
#' Variable `v` of namespace `ns` is the named region `memshare.ns.v` (any
#' character other than a letter, digit or `_` in `ns` or `v` is written as
#' `-` and its hexadecimal byte, so different pairs never share a region;
#' the whole name may have at most 100 characters). Any process of the same
#' user can therefore retrieve a variable by its namespace and name, with
#' no registry to consult: a PSOCK worker's `retrieveViews("ns", "v")` maps
#' the region the master registered.
#'
#' @section Differences from memshare:
#' * A registered list may hold any R objects, with their attributes
#'   (memshare: double vectors and matrices only). As in memshare, other
#'   atomic vectors and matrices are converted to double with a warning
#'   (names and dimnames kept). A data frame is refused, and so is a
#'   factor, character or complex vector, whose values a conversion would
#'   lose: [share()] shares any of them whole.
#' * `memApply(X, 1, FUN)` applies `FUN` to rows, correctly.
#' * Views are copy-on-write: writing to a view (`v[1] <- 0`) changes only
#'   the writing process's copy of the touched memory; it never crashes
#'   and never changes the registered variable. Results that workers write
#'   for the master belong in a [shared_buffer()].
#' * A view used after `releaseViews()` (or after `memshare_gc()`) is an R
#'   error, not a crash.
#' * `releaseVariables()` need not wait for the views: processes that hold
#'   views keep reading them; the variable's name is removed at once, and
#'   its memory is freed when the last view goes.
#' * An error in `FUN` stops `memApply()` and `memLapply()` with that error
#'   (its class kept, the element named) instead of printing it and
#'   returning `NA`; what the call registered is released either way. The
#'   caller's cluster keeps running.
#' * `retrieveMetadata()` holds no mapping: the view it lists (as memshare's
#'   does, to be released with `releaseViews()`) costs nothing.
#' * Messages are shmr's (memshare's "Variable was already registered!" is
#'   "variable 'x' is registered in namespace 'ns' already", its "not
#'   previously allocated" is "is not registered in namespace").
#' * [mutualinfo()] gives memshare's values in every mode (to 1e-8); a
#'   missing value with `na.rm = FALSE` is a clear error where memshare
#'   fails inside `seq()`, and so is a missing suggested package (which
#'   memshare's answers with a warning and `NULL`).
#' * memshare's namespaces are limited by the operating system (31
#'   characters on macOS, a `Local\\` prefix on Windows); shmr runs on
#'   Linux, where a region name (`memshare.<namespace>.<variable>`) may
#'   have 100 characters.
#'
#' @param namespace,NAMESPACE A namespace: a single non-empty string.
#' @param variableList A named list of the objects to register.
#' @param variableNames,variableName Names of variables in `namespace`.
#' @param cluster `NULL`, or a cluster from [parallel::makeCluster()] whose
#'   workers should release their views and variables of `namespace` too.
#' @param X A matrix (`memApply()`) or a list or vector (`memLapply()`), or
#'   the name of a variable registered in `NAMESPACE`.
#' @param MARGIN `1` for rows, `2` for columns.
#' @param FUN The function to apply; its first argument receives the row,
#'   column or element, the others are named as in `VARS`.
#' @param CLUSTER `NULL`, or a cluster from [parallel::makeCluster()].
#' @param VARS `NULL`, a named list of objects, or the names of variables
#'   registered in `NAMESPACE`.
#' @param MAX.CORES `NULL`, or the number of workers of a temporary pool.
#' @return `registerVariables()`, `releaseViews()`, `memshare_gc()`: `NULL`,
#'   invisibly. `releaseVariables()`: `TRUE`, invisibly. `retrieveViews()`:
#'   a list of the variables, named by `variableNames`. `retrieveMetadata()`:
#'   see above. `pageList()`, `viewList()`: a list of strings. `memApply()`,
#'   `memLapply()`: a list of `FUN`'s results.
#' @name compat-memshare
#' @examples
#' x <- matrix(as.double(1:6), 2, dimnames = list(c("a", "b"), NULL))
#' registerVariables("example_ns", list(x = x, weights = c(0.5, 1.5)))
#' pageList()
#' views <- retrieveViews("example_ns", c("x", "weights"))
#' views$x
#' viewList()
#' retrieveMetadata("example_ns", "x")
#' releaseViews("example_ns", c("x", "weights"))
#' releaseVariables("example_ns", c("x", "weights"))
#' \donttest{
#' cl <- parallel::makeCluster(1)
#' m <- matrix(rnorm(20), 4)
#' unlist(memApply(m, 1, function(row, w) sum(row * w),
#'                 NAMESPACE = "example_apply", CLUSTER = cl, VARS = list(w = 1:5)))
#' memLapply(list(a = 1:3, b = 4:6), function(el, k) el * k,
#'           NAMESPACE = "example_lapply", CLUSTER = cl, VARS = list(k = 10))
#' parallel::stopCluster(cl)
#' }
NULL

memshare_state <- new.env(parent = emptyenv())
memshare_state$pages <- list() # region name -> list(label, namespace, object)
memshare_state$views <- list() # region name -> list(label, namespace, objects)
memshare_state$calls <- 0L

#' @rdname compat-memshare
#' @export
registerVariables <- function(namespace, variableList) {
  check_namespace(namespace)
  variables <- names(variableList)
  if (!is.list(variableList) || !length(variableList) || is.null(variables) ||
      anyNA(variables) || any(!nzchar(variables)) || anyDuplicated(variables)) {
    stop("`variableList` must be a list with a unique name for every element", call. = FALSE)
  }
  framed <- vapply(variableList, is.data.frame, TRUE)
  if (any(framed)) {
    stop(sprintf(paste("registerVariables(): unknown element type of variable '%s': a data frame",
                       "(memshare registers matrices, vectors and lists; share() takes data frames)"),
                 variables[framed][1L]), call. = FALSE)
  }
  unregistrable <- vapply(variableList, function(v) is.null(v) || !(is.atomic(v) || is.list(v)), TRUE)
  if (any(unregistrable)) {
    first <- which(unregistrable)[1L]
    stop(sprintf(paste("registerVariables(): variable '%s' is %s; memshare registers matrices,",
                       "vectors and lists"),
                 variables[first], describe_type(variableList[[first]])), call. = FALSE)
  }
  variableList <- as_doubles(variableList, "registerVariables()")
  regions <- memshare_region(namespace, variables)
  taken <- regions[regions %in% names(memshare_state$pages)]
  if (length(taken)) {
    stop(sprintf("variable '%s' is registered in namespace '%s' already",
                 variables[match(taken[1L], regions)], namespace), call. = FALSE)
  }
  done <- character()
  # All or nothing: a variable that cannot be shared releases the others.
  on.exit(for (region in done) release_page(region))
  for (k in seq_along(variables)) {
    # (An empty list is not a shared object on R < 4.3, but its region is
    # there for retrieveViews().)
    shared <- tryCatch(share(variableList[[k]], name = regions[[k]]), error = function(e) {
      # Registered by another process (a worker, say): say so in memshare's
      # terms, not with the name of a region the user never made.
      if (.Call(shmr_region_file_present, paste0("shmr_", regions[[k]]))) {
        stop(sprintf(paste("variable '%s' is registered in namespace '%s' already, by another",
                           "process (releaseVariables() or memshare_gc() there frees the name)"),
                     variables[[k]], namespace), call. = FALSE)
      }
      stop(e)
    })
    memshare_state$pages[[regions[[k]]]] <- list(
      label = memshare_label(namespace, variables[[k]]), namespace = namespace, object = shared
    )
    done <- c(done, regions[[k]])
  }
  done <- character()
  invisible(NULL)
}

#' @rdname compat-memshare
#' @export
retrieveViews <- function(namespace, variableNames) {
  check_namespace(namespace)
  check_variable_names(variableNames)
  views <- lapply(variableNames, function(variable) {
    region <- memshare_region(namespace, variable)
    view <- map_variable(namespace, variable, region)
    hold_view(namespace, variable, region, list(view))
    view
  })
  names(views) <- variableNames
  views
}

#' @rdname compat-memshare
#' @export
releaseViews <- function(namespace, variableNames) {
  check_namespace(namespace)
  check_variable_names(variableNames)
  regions <- memshare_region(namespace, variableNames)
  unviewed <- !(regions %in% names(memshare_state$views))
  if (any(unviewed)) {
    stop(sprintf(paste("releaseViews(): variable '%s' of namespace '%s' was not previously",
                       "allocated as a view in this R session"),
                 variableNames[unviewed][1L], namespace), call. = FALSE)
  }
  for (region in regions) release_views(region)
  invisible(NULL)
}

#' @rdname compat-memshare
#' @export
releaseVariables <- function(namespace, variableNames) {
  check_namespace(namespace)
  check_variable_names(variableNames)
  regions <- memshare_region(namespace, variableNames)
  unknown <- !(regions %in% names(memshare_state$pages))
  if (any(unknown)) {
    stop(sprintf("variable '%s' is not registered in namespace '%s' by this R session",
                 variableNames[unknown][1L], namespace), call. = FALSE)
  }
  for (region in regions) release_page(region)
  invisible(TRUE)
}

#' @rdname compat-memshare
#' @export
retrieveMetadata <- function(namespace, variableName) {
  check_namespace(namespace)
  check_variable_names(variableName)
  described <- lapply(variableName, function(variable) {
    region <- memshare_region(namespace, variable)
    page <- memshare_state$pages[[region]]
    if (!is.null(page)) {
      description <- describe_variable(page$object)
    } else {
      view <- map_variable(namespace, variable, region)
      on.exit(unmap_shared(view))
      description <- describe_variable(view)
    }
    # memshare's retrieveMetadata() retrieves a view that its callers then
    # release: the entry (holding no mapping) keeps that releaseViews() valid.
    hold_view(namespace, variable, region, list())
    description
  })
  if (length(variableName) == 1L) return(described[[1L]])
  names(described) <- variableName
  described
}

#' @rdname compat-memshare
#' @export
pageList <- function() {
  as.list(unname(vapply(memshare_state$pages, `[[`, "", "label")))
}

#' @rdname compat-memshare
#' @export
viewList <- function() {
  as.list(unname(vapply(memshare_state$views, `[[`, "", "label")))
}

#' @rdname compat-memshare
#' @export
memshare_gc <- function(namespace, cluster = NULL) {
  check_namespace(namespace)
  if (!is.null(cluster)) {
    if (!inherits(cluster, "cluster")) stop("`cluster` must be NULL or a cluster", call. = FALSE)
    check_cluster_running(cluster, "cluster")
    parallel::clusterCall(cluster, release_namespace, namespace)
  }
  release_namespace(namespace)
  invisible(NULL)
}

#' @rdname compat-memshare
#' @export
memApply <- function(X, MARGIN, FUN, NAMESPACE = NULL, CLUSTER = NULL, VARS = NULL,
                     MAX.CORES = NULL) {
  NAMESPACE <- NAMESPACE %||% namespace_of(substitute(FUN))
  check_map_fun(FUN)
  FUN <- match.fun(FUN)
  if (!(identical(MARGIN, 1) || identical(MARGIN, 2) || identical(MARGIN, 1L) ||
        identical(MARGIN, 2L))) {
    stop("`MARGIN` must be 1 (rows) or 2 (columns)", call. = FALSE)
  }
  memshare_map(X, FUN, as.integer(MARGIN), NAMESPACE, CLUSTER, VARS, MAX.CORES)
}

#' @rdname compat-memshare
#' @export
memLapply <- function(X, FUN, NAMESPACE = NULL, CLUSTER = NULL, VARS = NULL, MAX.CORES = NULL) {
  NAMESPACE <- NAMESPACE %||% namespace_of(substitute(FUN))
  check_map_fun(FUN)
  FUN <- match.fun(FUN)
  memshare_map(X, FUN, NULL, NAMESPACE, CLUSTER, VARS, MAX.CORES)
}

# --- the maps ------------------------------------------------------------

memshare_map <- function(X, FUN, margin, namespace, cluster, vars, max_cores) {
  check_namespace(namespace)
  # What this call registers or maps, undone on the way out.
  call <- new.env(parent = emptyenv())
  call$registered <- character()
  call$shared <- list()
  call$mapped <- list()
  on.exit(end_call(call, namespace))

  if (!is.null(margin) && !is.matrix(X) && !(is.character(X) && length(X) == 1L)) {
    # as.matrix() would fail on these with an error of its own internals.
    if (is.null(X) || !(is.atomic(X) || is.data.frame(X))) {
      stop("memApply(): `X` must be a matrix, or the name of one, not ", describe_value(X),
           call. = FALSE)
    }
    # As memshare: a data frame (or anything else) is tried as a matrix.
    warning("memApply(): X is neither a matrix nor the name of one; using as.matrix(X)",
            call. = FALSE)
    X <- as.matrix(X)
  }
  if (!is.null(margin) && is.matrix(X)) X <- as_doubles(list(X), "memApply()")[[1L]]
  X <- map_input(X, namespace, call)
  if (!is.null(margin) && (!is.matrix(X) || !is.atomic(X))) {
    stop("memApply(): `X` must be a matrix of an atomic type, or the name of one", call. = FALSE)
  }
  vars <- map_vars(vars, namespace, call)
  pool <- map_pool(cluster, max_cores)
  if (!identical(pool, pools$default)) on.exit(pool_stop(pool), add = TRUE)

  answer <- pool_map(X, FUN, vars, margin = margin, pool = pool, chunk_size = NULL, seed = NULL,
                     progress = FALSE, on_error = "wait")
  # memshare's results are unnamed, whatever the names of X.
  names(answer) <- NULL
  answer
}

# X as an object is shared for the call; as a name, it is the registered
# variable.
map_input <- function(X, namespace, call) {
  if (is.character(X) && length(X) == 1L && !is.na(X)) return(call_variable(X, namespace, call))
  if (is_shared(X)) return(X)
  shared <- share(X)
  if (is_shared(shared)) call$shared <- c(call$shared, list(shared))
  shared
}

map_vars <- function(vars, namespace, call) {
  if (is.null(vars)) return(list())
  if (is.character(vars)) {
    check_variable_names(vars)
    out <- lapply(vars, call_variable, namespace = namespace, call = call)
    names(out) <- vars
    return(out)
  }
  if (!is.list(vars) || is.null(names(vars))) {
    stop("`VARS` must be NULL, a named list, or the names of registered variables", call. = FALSE)
  }
  registerVariables(namespace, vars)
  call$registered <- names(vars)
  out <- lapply(names(vars), function(v) memshare_state$pages[[memshare_region(namespace, v)]]$object)
  names(out) <- names(vars)
  out
}

# A registered variable for one call: this session's own, or mapped until
# the call ends.
call_variable <- function(variable, namespace, call) {
  region <- memshare_region(namespace, variable)
  page <- memshare_state$pages[[region]]
  if (!is.null(page)) return(page$object)
  view <- map_variable(namespace, variable, region)
  call$mapped <- c(call$mapped, list(view))
  view
}

end_call <- function(call, namespace) {
  if (length(call$registered)) releaseVariables(namespace, call$registered)
  for (object in call$mapped) unmap_shared(object)
  for (object in call$shared) close.default(object)
}

map_pool <- function(cluster, max_cores) {
  if (!is.null(cluster)) return(pool_on_cluster(cluster))
  # Checked here, where the error can name memshare's argument, not
  # pool_create()'s `n`.
  if (!is.null(max_cores) &&
      (!is.numeric(max_cores) || length(max_cores) != 1L || !is.finite(max_cores) ||
       max_cores < 1 || max_cores != round(max_cores))) {
    stop("`MAX.CORES` must be NULL or a whole number of workers >= 1, not ",
         describe_value(max_cores), call. = FALSE)
  }
  if (is.null(max_cores) && !is.null(pool_get())) return(pool_get())
  n <- max_cores %||% max(1L, usable_cores() - 1L)
  check_workers_fit(n, "psock", "MAX.CORES")
  start_pool(n, "psock", NULL, NULL)
}

# --- registry ------------------------------------------------------------

check_namespace <- function(namespace) {
  if (!is.character(namespace) || length(namespace) != 1L || is.na(namespace) ||
      !nzchar(namespace)) {
    stop("a namespace must be a single non-empty string", call. = FALSE)
  }
}

check_variable_names <- function(names) {
  if (!is.character(names) || !length(names) || anyNA(names) || any(!nzchar(names))) {
    stop("variable names must be non-empty strings", call. = FALSE)
  }
}

memshare_label <- function(namespace, variable) paste0(namespace, ".", variable)

# The regions of variables: "memshare.<namespace>.<variable>", each part
# with any byte other than [A-Za-z0-9_] written as "-" and two hex digits,
# so the name is unambiguous and valid.
memshare_region <- function(namespace, variables) {
  vapply(variables, function(variable) {
    region <- paste("memshare", escape_name(namespace), escape_name(variable), sep = ".")
    if (nchar(region) > 100L) {
      stop(sprintf("namespace '%s' with variable '%s' makes a region name longer than 100 ",
                   shorten(namespace), shorten(variable)), "characters", call. = FALSE)
    }
    region
  }, "", USE.NAMES = FALSE)
}

escape_name <- function(text) {
  bytes <- charToRaw(enc2utf8(text))
  plain <- grepl("[A-Za-z0-9_]", vapply(as.list(bytes), rawToChar, ""), useBytes = TRUE) &
    bytes < as.raw(0x80)
  out <- paste0("-", as.character(bytes))
  out[plain] <- vapply(as.list(bytes[plain]), rawToChar, "")
  paste(out, collapse = "")
}

namespace_of <- function(fun_expression) {
  if (is.name(fun_expression)) return(as.character(fun_expression))
  memshare_state$calls <- memshare_state$calls + 1L
  sprintf("memshare_call_%d_%d", Sys.getpid(), memshare_state$calls)
}

map_variable <- function(namespace, variable, region) {
  # The prefixed name: a missing region is an error, not NULL.
  tryCatch(map_shared(paste0("shmr_", region)), error = function(e) {
    stop(sprintf("no variable '%s' in namespace '%s' (%s)", shorten(variable), shorten(namespace),
                 conditionMessage(e)), call. = FALSE)
  })
}

release_page <- function(region) {
  page <- memshare_state$pages[[region]]
  memshare_state$pages[[region]] <- NULL
  if (is.null(page)) return(invisible())
  # An empty list is no shared object on R < 4.3 (close() finds no region
  # in it): its region goes by name.
  if (is_shared(page$object)) close.default(page$object) else remove_shared(region)
  invisible()
}

# Records `objects` (views of `variable`) among this process's views; an
# entry without objects is a view listed but holding no mapping.
hold_view <- function(namespace, variable, region, objects) {
  entry <- memshare_state$views[[region]] %||%
    list(label = memshare_label(namespace, variable), namespace = namespace, objects = list())
  entry$objects <- c(entry$objects, objects)
  memshare_state$views[[region]] <- entry
}

release_views <- function(region) {
  entry <- memshare_state$views[[region]]
  memshare_state$views[[region]] <- NULL
  for (view in entry$objects) unmap_shared(view)
}

# Every view and variable of `namespace` in this process.
release_namespace <- function(namespace) {
  in_namespace <- function(entries) {
    names(entries)[vapply(entries, function(e) identical(e$namespace, namespace), TRUE)]
  }
  for (region in in_namespace(memshare_state$views)) release_views(region)
  for (region in in_namespace(memshare_state$pages)) release_page(region)
  invisible(NULL)
}

describe_variable <- function(x) {
  d <- dim(x)
  shape <- if (is.matrix(x)) {
    list(type = "matrix", nrow = as.numeric(d[1L]), ncol = as.numeric(d[2L]))
  } else if (!is.null(d)) {
    list(type = "array", dim = as.numeric(d))
  } else if (is.atomic(x)) {
    list(type = "vector", n = as.numeric(length(x)))
  } else {
    list(type = "list", n = as.numeric(length(x)))
  }
  c(shape, list(mode = typeof(x)))
}

# memshare's engine holds doubles: other atomic vectors and matrices are
# converted, with one warning, so that results are memshare's (integer
# arithmetic would overflow where memshare's does not). A factor, a
# character vector or a complex one cannot be: its values would become its
# codes, NAs or their real parts, and the variable would be lost under a
# warning.
as_doubles <- function(values, caller) {
  converted <- vapply(values, function(v) is.atomic(v) && !is.null(v) && !is.double(v), TRUE)
  if (!any(converted)) return(values)
  labels <- if (is.null(names(values))) rep("X", length(values)) else names(values)
  for (k in which(converted)) {
    v <- values[[k]]
    lossy <- if (is.factor(v)) "a factor" else if (is.character(v)) "a character vector" else
      if (is.complex(v)) "a complex vector"
    if (!is.null(lossy)) {
      stop(sprintf(paste("%s: variable '%s' is %s, which cannot be converted to double (memshare",
                         "registers double matrices and vectors; share() takes any object)"),
                   caller, labels[k], lossy), call. = FALSE)
    }
  }
  warning(caller, ": non-double matrices or vectors are converted to double, as memshare does",
          call. = FALSE)
  values[converted] <- lapply(values[converted], function(v) {
    storage.mode(v) <- "double"
    v
  })
  values
}

describe_type <- function(x) {
  if (is.null(x)) "NULL" else if (is.function(x)) "a function" else
    if (is.environment(x)) "an environment" else paste("of type", typeof(x))
}
