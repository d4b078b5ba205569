# Deep sharing: share(x, deep = TRUE).
#
# The walk reaches the data of an object: list elements, attributes (S4
# slots), closures' environments and environments' bindings, stopping at
# the global, base and empty environments, namespaces and everything on the
# search path. Every atomic or character vector of at least `min_bytes`
# bytes goes into a region of its own; the containers around them are
# rebuilt with the shared views in place, and environments are copied, so
# the caller's objects are never modified.
#
# An environment's enclosing (parent) environment is where its code was
# defined, not part of the object: the copy keeps the same parent. Walking
# parents would pull in the frame that called each new.env(), and with it
# everything else that frame holds.
#
# Identity is the object's address. The walk keeps every object it looked
# at reachable (from `x`, or in `keepalive` for hook rewrites), so an
# address cannot be reused for another object while it runs.
#
# Paths name each part as R code would reach it: `x$a` (element or
# binding), `x[[2]]` (unnamed element), `x@a` (attribute or slot),
# `x$f<env>` (a closure's environment).

share_deep <- function(x, root, min_bytes, cycle, mode, share_vector) {
  walk <- new_walk(min_bytes, cycle, mode, share_vector)
  walk$root <- root
  completed <- FALSE
  on.exit(if (!completed) discard_views(walk), add = TRUE)
  result <- visit(walk, x, root)
  completed <- TRUE
  # A vector comes back shared or as it was: it needs no report of its own.
  # Nor does an object that came back as it was, which is not shared.
  unchanged <- same_object(result, x) && length(walk$regions$values()) == 0L
  if (!is.atomic(result) && !unchanged) remember_deep_share(result, walk_report(walk))
  result
}

new_walk <- function(min_bytes, cycle, mode, share_vector) {
  walk <- new.env(parent = emptyenv())
  walk$min_bytes <- min_bytes
  walk$cycle <- cycle
  walk$mode <- mode
  walk$share_vector <- share_vector
  walk$done <- new.env(hash = TRUE, parent = emptyenv())   # address -> result
  walk$open <- new.env(hash = TRUE, parent = emptyenv())   # environments being walked -> path
  walk$search_envs <- search_environments()
  walk$views <- accumulator(list())
  walk$regions <- accumulator()
  walk$shared <- accumulator()
  walk$shared_bytes <- 0
  walk$aliases <- accumulator()
  walk$kept <- accumulator()
  walk$skipped_path <- accumulator()
  walk$skipped_reason <- accumulator()
  walk$skip_paths <- character()
  walk$force_paths <- character()
  walk$keepalive <- list()
  walk$rewrites <- 0L
  walk
}

# More share_hook() rewrites than this, one inside the other, are taken for
# a rewrite that nests without end (one returning an object of the same
# class that holds its input, rewritten again at every level): R's stack
# would end first.
max_nested_rewrites <- 100L

# Attributes R reads directly in C and expects to be ordinary vectors.
structural_attributes <- c("class", "dim", "tsp", "srcref", "srcfile", "wholeSrcref")

visit <- function(walk, x, path, force = FALSE) {
  if (path %in% walk$skip_paths) return(skip_part(walk, x, path, "skipped by share_hook()"))
  force <- force || path %in% walk$force_paths
  hook <- list(skip = character(), force = character())
  if (is.object(x)) {
    hook <- apply_hook(walk, x, path)
    if (hook$rewritten) {
      walk$rewrites <- walk$rewrites + 1L
      on.exit(walk$rewrites <- walk$rewrites - 1L)
      if (walk$rewrites > max_nested_rewrites) {
        stop(sprintf(paste0(
          "share(deep = TRUE): more than %d share_hook() rewrites one inside the other, at %s: ",
          "a rewrite that returns an object of the same class holding its input is rewritten ",
          "again at every level"), max_nested_rewrites, path), call. = FALSE)
      }
    }
    x <- hook$x
  }
  if (inherits(x, "connection")) return(unshareable(walk, x, path, "a connection"))
  if (is_class_metadata(x)) return(x)
  switch(typeof(x),
    logical = , integer = , double = , complex = , raw = , character =
      visit_vector(walk, x, path, force, hook),
    list = visit_list(walk, x, path, force, hook),
    environment = visit_environment(walk, x, path, force, hook),
    closure = visit_closure(walk, x, path),
    externalptr = unshareable(walk, x, path, "an external pointer"),
    weakref = unshareable(walk, x, path, "a weak reference"),
    rebuild(x, list(), visit_attributes(walk, x, path, force, hook))
  )
}

visit_vector <- function(walk, x, path, force, hook) {
  if (is_view(x)) return(x)
  if (.Call(shmr_is_closed_view, x)) return(unshareable(walk, x, path, "a shared object that was closed"))
  bytes <- .Call(shmr_data_bytes, x)
  if (bytes > 0 && (force || bytes >= walk$min_bytes)) return(share_part(walk, x, path, bytes))
  walk$kept$add(path)
  rebuild(x, list(), visit_attributes(walk, x, path, force, hook))
}

share_part <- function(walk, x, path, bytes) {
  key <- address(x)
  earlier <- get0(key, envir = walk$done, inherits = FALSE)
  if (!is.null(earlier)) {
    walk$aliases$add(path)
    return(earlier)
  }
  view <- walk$share_vector(x)
  walk$views$add(list(view))
  walk$regions$add(shared_region(view))
  walk$shared$add(path)
  walk$shared_bytes <- walk$shared_bytes + bytes
  assign(key, view, envir = walk$done)
  view
}

visit_list <- function(walk, x, path, force, hook) {
  key <- address(x)
  earlier <- get0(key, envir = walk$done, inherits = FALSE)
  if (!is.null(earlier)) {
    if (!same_object(earlier, x)) walk$aliases$add(path)
    return(earlier)
  }
  plain <- unclass(x)
  labels <- names(plain)
  elements <- list()
  for (i in seq_along(plain)) {
    label <- if (is.null(labels) || is.na(labels[i])) "" else labels[i]
    child <- if (nzchar(label)) paste0(path, "$", label) else paste0(path, "[[", i, "]]")
    element <- .subset2(plain, i)
    if (nzchar(label) && label %in% hook$skip) {
      skip_part(walk, element, child, "skipped by share_hook()")
      next
    }
    result <- visit(walk, element, child, force || (nzchar(label) && label %in% hook$force))
    if (!same_object(result, element)) elements[[as.character(i)]] <- list(result)
  }
  result <- rebuild(x, elements, visit_attributes(walk, x, path, force, hook))
  assign(key, result, envir = walk$done)
  result
}

# The attributes of `x` that changed, as a named list.
visit_attributes <- function(walk, x, path, force, hook) {
  stored <- .Call(shmr_stored_attributes, x)
  changed <- list()
  for (label in setdiff(names(stored), structural_attributes)) {
    value <- stored[[label]]
    child <- paste0(path, "@", label)
    if (label %in% hook$skip) {
      skip_part(walk, value, child, "skipped by share_hook()")
      next
    }
    result <- visit(walk, value, child, force || label %in% hook$force)
    if (!same_object(result, value)) changed[[label]] <- result
  }
  changed
}

rebuild <- function(x, elements, attributes) {
  if (length(elements) == 0L && length(attributes) == 0L) return(x)
  .Call(shmr_rebuild, x, as.numeric(names(elements)), unname(lapply(elements, `[[`, 1L)),
        as.character(names(attributes)), unname(attributes))
}

visit_closure <- function(walk, f, path) {
  env <- environment(f)
  if (is.null(env) || is_stop_environment(env, walk$search_envs)) return(f)
  key <- address(f)
  earlier <- get0(key, envir = walk$done, inherits = FALSE)
  if (!is.null(earlier)) return(earlier)
  shared_env <- visit(walk, env, paste0(path, "<env>"))
  result <- f
  if (!same_object(shared_env, env)) environment(result) <- shared_env
  assign(key, result, envir = walk$done)
  result
}

visit_environment <- function(walk, env, path, force, hook) {
  if (is_stop_environment(env, walk$search_envs)) return(env)
  key <- address(env)
  first_path <- get0(key, envir = walk$open, inherits = FALSE)
  if (!is.null(first_path)) return(revisit_open_environment(walk, key, path, first_path))
  earlier <- get0(key, envir = walk$done, inherits = FALSE)
  if (!is.null(earlier)) {
    walk$aliases$add(path)
    return(earlier)
  }
  copy <- new.env(parent = parent.env(env))
  assign(key, copy, envir = walk$done)
  assign(key, path, envir = walk$open)
  on.exit(rm(list = key, envir = walk$open))

  stored <- .Call(shmr_stored_attributes, env)
  changed <- visit_attributes(walk, env, path, force, hook)
  for (label in names(stored)) {
    attr(copy, label) <- if (label %in% names(changed)) changed[[label]] else stored[[label]]
  }
  copy_bindings(walk, env, copy, path, force, hook)
  if (environmentIsLocked(env)) lockEnvironment(copy)
  copy
}

copy_bindings <- function(walk, env, copy, path, force, hook) {
  labels <- ls(env, all.names = TRUE, sorted = TRUE)
  kinds <- .Call(shmr_binding_kinds, env, labels)
  for (i in seq_along(labels)) {
    label <- labels[i]
    child <- paste0(path, "$", label)
    if (label %in% hook$skip || child %in% walk$skip_paths) {
      if (kinds[i] == "active") {
        makeActiveBinding(label, activeBindingFunction(label, env), copy)
      } else {
        .Call(shmr_copy_binding, env, copy, label)
      }
      skip_part(walk, NULL, child, "skipped by share_hook()")
    } else if (kinds[i] == "unevaluated") {
      .Call(shmr_copy_binding, env, copy, label)
      walk$kept$add(child)
    } else if (kinds[i] == "active") {
      makeActiveBinding(label, visit(walk, activeBindingFunction(label, env), child), copy)
    } else {
      # A promise is evaluated as its first use would; one that fails stays
      # a promise, to fail (or not) when it is used.
      failure <- NULL
      value <- tryCatch(get(label, envir = env, inherits = FALSE),
                        error = function(e) failure <<- e)
      if (is.null(failure)) {
        assign(label, visit(walk, value, child, force || label %in% hook$force), envir = copy)
      } else {
        .Call(shmr_copy_binding, env, copy, label)
        skip_part(walk, NULL, child, paste0("promise not evaluated (", conditionMessage(failure), ")"))
      }
    }
    if (bindingIsLocked(label, env)) lockBinding(label, copy)
  }
}

# An environment reached again while its own walk is still running.
revisit_open_environment <- function(walk, key, path, first_path) {
  if (walk$cycle == "error") {
    stop(sprintf(paste0(
      "share(deep = TRUE): %s refers back to the environment at %s (a cycle); ",
      "use cycle = \"skip\" to keep such references without walking them again"
    ), path, first_path), call. = FALSE)
  }
  skip_part(walk, NULL, path, paste("cycle back to", first_path))
  get(key, envir = walk$done, inherits = FALSE)
}

# Class and generic definitions (a Reference Class object holds its own)
# describe code, not data, and lead into the methods package's tables. An
# S7 object holds its class (attribute S7_class): the class's constructor, a
# closure whose environment is where the class was defined, often a frame
# that holds the constructor itself (a cycle) and data of its own.
is_class_metadata <- function(x) {
  (isS4(x) && (methods::is(x, "classRepresentation") || methods::is(x, "genericFunction"))) ||
    inherits(x, "S7_class")
}

# Environments that serialize() writes as a reference, not by content.
is_stop_environment <- function(env, search_envs) {
  if (identical(env, globalenv()) || identical(env, baseenv()) || identical(env, emptyenv()) ||
      isNamespace(env)) {
    return(TRUE)
  }
  label <- attr(env, "name", exact = TRUE)
  if (is.character(label) && length(label) == 1L && startsWith(label, "package:")) return(TRUE)
  for (search_env in search_envs) if (identical(env, search_env)) return(TRUE)
  FALSE
}

search_environments <- function() lapply(seq_along(search()), as.environment)

apply_hook <- function(walk, x, path) {
  ctx <- list(path = hook_path(walk, path), class = class(x), mode = walk$mode,
              min_bytes = walk$min_bytes, types = shareable_types, deep = TRUE)
  answer <- tryCatch(share_hook(x, ctx), error = function(e) e)
  if (inherits(answer, "error")) {
    unshareable(walk, x, path, paste0("share_hook() failed (", conditionMessage(answer), ")"))
    answer <- list()
  }
  answer <- check_hook_answer(answer, class(x))
  if (!is.null(answer$rewrite)) {
    rewritten <- tryCatch(answer$rewrite(x), error = function(e) e)
    if (inherits(rewritten, "error")) {
      # Like an error in the hook itself: the object is walked as it is.
      unshareable(walk, x, path, paste0("share_hook()'s rewrite failed (",
                                        conditionMessage(rewritten), ")"))
    } else {
      x <- rewritten
      walk$keepalive <- c(walk$keepalive, list(x))
    }
  }
  rewritten <- !is.null(answer$rewrite) && !inherits(rewritten, "error")
  walk$skip_paths <- c(walk$skip_paths, walk_paths(walk, answer$skip_paths))
  walk$force_paths <- c(walk$force_paths, walk_paths(walk, answer$force_share_paths))
  list(x = x, skip = c(answer$skip, answer$skip_slots), force = answer$force,
       rewritten = rewritten)
}

# The vector types deep sharing shares (a hook's ctx$types, as shard's).
shareable_types <- c("logical", "integer", "double", "complex", "raw", "character")

# A hook sees paths rooted at "<root>", as shard's hooks do; shared_info()
# names the root by the expression given to share(). Paths a hook returns
# may use either.
hook_path <- function(walk, path) paste0("<root>", substring(path, nchar(walk$root) + 1L))

walk_paths <- function(walk, paths) {
  if (!length(paths)) return(character())
  rooted <- startsWith(paths, "<root>")
  paths[rooted] <- paste0(walk$root, substring(paths[rooted], nchar("<root>") + 1L))
  paths
}

check_hook_answer <- function(answer, cls) {
  if (is.null(answer)) return(list())
  where <- sprintf("share_hook() for class \"%s\"", cls[1L])
  if (!is.list(answer)) stop(where, " must return a list", call. = FALSE)
  for (field in c("skip", "skip_slots", "skip_paths", "force", "force_share_paths")) {
    if (!is.null(answer[[field]]) && !is.character(answer[[field]])) {
      stop(where, ": `", field, "` must be a character vector", call. = FALSE)
    }
  }
  if (!is.null(answer$rewrite) && !is.function(answer$rewrite)) {
    stop(where, ": `rewrite` must be a function", call. = FALSE)
  }
  answer
}

unshareable <- function(walk, x, path, what) {
  if (walk$mode == "strict") {
    stop(sprintf(paste0(
      "share(deep = TRUE, mode = \"strict\"): %s at %s cannot be shared; ",
      "mode = \"balanced\" keeps such parts as they are"
    ), what, path), call. = FALSE)
  }
  skip_part(walk, x, path, what)
}

skip_part <- function(walk, x, path, reason) {
  walk$skipped_path$add(path)
  walk$skipped_reason$add(reason)
  x
}

# After a failed walk, the regions it created go now rather than at the
# next garbage collection; persistent ones would otherwise stay forever.
discard_views <- function(walk) {
  views <- walk$views$values()
  regions <- walk$regions$values()
  for (i in seq_along(views)) {
    persistent <- isTRUE(shared_info(views[[i]])$persistent)
    try(close.default(views[[i]]), silent = TRUE)
    if (persistent) try(remove_shared(regions[i]), silent = TRUE)
  }
}

walk_report <- function(walk) {
  list(
    deep = TRUE,
    regions = walk$regions$values(),
    n_regions = length(walk$regions$values()),
    shared_bytes = walk$shared_bytes,
    shared = walk$shared$values(),
    n_aliases = length(walk$aliases$values()),
    aliases = walk$aliases$values(),
    kept = walk$kept$values(),
    skipped = data.frame(path = walk$skipped_path$values(),
                         reason = walk$skipped_reason$values(), stringsAsFactors = FALSE)
  )
}

# A vector that grows in place (c() would copy it at every step: quadratic
# for an object with many parts).
accumulator <- function(empty = character()) {
  items <- empty
  list(add = function(value) items[length(items) + 1L] <<- value, values = function() items)
}

address <- function(x) .Call(shmr_address, x)

same_object <- function(a, b) identical(address(a), address(b))

# The region a view reads (shared_name() is NULL for a view whose attributes
# were changed since, which still reads it).
shared_region <- function(view) .Call(shmr_info, view)$name

# Reads a shmr region itself (is_shared() also answers TRUE for the result
# of a deep share).
is_view <- function(x) .Call(shmr_is_shared, x)
