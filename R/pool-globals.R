# What FUN needs on a worker, found recursively as the future and globals
# packages do, with base R only. A worker has its own, empty, global
# environment, so whatever FUN reaches there in the caller must travel with
# it: the global variables its code refers to, the functions among them and
# what those refer to in turn, and the local environments of closures
# (copied, never changed) up to the global environment. Large objects among
# them are shared for the call (share_for_call()). Names found on an
# attached package are not sent: the package is attached on the worker.

# FUN rewired onto copies of what it reaches: list(FUN, packages).
function_for_workers <- function(FUN, threshold, created) {
  # No walk for a function that reaches nothing to copy (a package's).
  if (travels_as_is(FUN)) return(list(FUN = FUN, packages = character()))
  walk <- new.env(parent = emptyenv())
  walk$threshold <- threshold
  walk$created <- created
  # The caller's global variables that travel; its parent becomes the
  # worker's global environment when it is unserialized there.
  walk$globals <- new.env(parent = globalenv())
  walk$copies <- list() # list(original, copy, resolved) per local environment
  walk$packages <- character()
  FUN <- relocate_closure(FUN, walk)
  list(FUN = FUN, packages = unique(walk$packages))
}

# Environments that are the same on a worker (namespaces, package
# environments, base) or that are not ours to copy (any with a name).
is_fixed_env <- function(env) {
  is.null(env) || identical(env, emptyenv()) || identical(env, baseenv()) ||
    isNamespace(env) || (!identical(env, globalenv()) && environmentName(env) != "")
}

# Whether `f` goes to a worker unchanged: not a closure, or one whose
# environment is the same there (a package's function).
travels_as_is <- function(f) {
  !is.function(f) || is.primitive(f) || is_fixed_env(environment(f))
}

# A closure, with its environment replaced by the copy that travels, after
# the names its code refers to have been found.
relocate_closure <- function(f, walk) {
  if (travels_as_is(f)) return(f)
  env <- environment(f)
  target <- relocate_env(env, walk)
  for (name in code_globals(f)) resolve_name(name, env, walk)
  environment(f) <- target
  f
}

# The environment a relocated closure gets: the globals' environment for
# the global one, a copy (with its parents relocated) for a local one.
relocate_env <- function(env, walk) {
  if (identical(env, globalenv())) return(walk$globals)
  if (is_fixed_env(env)) return(env)
  k <- copy_index(env, walk)
  if (!is.na(k)) return(walk$copies[[k]]$copy)
  copy <- new.env(parent = emptyenv())
  walk$copies[[length(walk$copies) + 1L]] <- list(original = env, copy = copy,
                                                  resolved = character())
  parent.env(copy) <- relocate_env(parent.env(env), walk)
  for (name in ls(env, all.names = TRUE, sorted = FALSE)) copy_binding(name, env, copy, walk)
  copy
}

copy_index <- function(env, walk) {
  for (k in seq_along(walk$copies)) if (identical(walk$copies[[k]]$original, env)) return(k)
  NA_integer_
}

copy_binding <- function(name, from, to, walk) {
  if (bindingIsActive(name, from)) {
    makeActiveBinding(name, activeBindingFunction(name, from), to)
    return(invisible())
  }
  value <- get(name, envir = from, inherits = FALSE)
  if (isTRUE(.Call(shmr_is_closed_view, value))) return(bind_closed(name, to))
  assign(name, share_for_call(value, walk$threshold, walk$created), envir = to)
}

# A shared object closed in the caller cannot travel, and made the whole
# call fail when it was merely a variable of the frame FUN was made in: on
# the worker, only code that uses it fails, saying why.
bind_closed <- function(name, to) {
  message <- sprintf("`%s` is a shared object that was closed (close()) before the call", name)
  do.call(delayedAssign, list(name, call("stop", message, call. = FALSE), baseenv(), to))
}

# Finds where `name` is bound, seen from `env`, and makes it travel: a
# global variable goes into the globals' environment, a closure found on
# the way is relocated in turn, a package's name records the package.
resolve_name <- function(name, env, walk) {
  while (!is_fixed_env(env)) {
    if (identical(env, globalenv())) {
      if (exists(name, envir = env, inherits = FALSE)) return(add_global(name, walk))
      return(note_package(name, walk))
    }
    if (exists(name, envir = env, inherits = FALSE)) {
      k <- copy_index(env, walk)
      if (is.na(k) || name %in% walk$copies[[k]]$resolved) return(invisible())
      walk$copies[[k]]$resolved <- c(walk$copies[[k]]$resolved, name)
      if (!bindingIsActive(name, env)) {
        value <- get(name, envir = env, inherits = FALSE)
        if (is.function(value)) assign(name, relocate_closure(value, walk), envir = walk$copies[[k]]$copy)
      }
      return(invisible())
    }
    env <- parent.env(env)
  }
  invisible()
}

add_global <- function(name, walk) {
  if (exists(name, envir = walk$globals, inherits = FALSE)) return(invisible())
  if (bindingIsActive(name, globalenv())) {
    makeActiveBinding(name, activeBindingFunction(name, globalenv()), walk$globals)
    return(invisible())
  }
  value <- get(name, envir = globalenv(), inherits = FALSE)
  # Bound before the walk goes on, so that recursion ends.
  assign(name, value, envir = walk$globals)
  value <- if (is.function(value)) relocate_closure(value, walk) else {
    share_for_call(value, walk$threshold, walk$created)
  }
  assign(name, value, envir = walk$globals)
  invisible()
}

# A name found on an attached package (not one attached on every R).
note_package <- function(name, walk) {
  for (entry in search()[-1L]) {
    if (!startsWith(entry, "package:")) next
    if (exists(name, envir = as.environment(entry), inherits = FALSE)) {
      package <- sub("^package:", "", entry)
      if (!(package %in% c("base", "methods", "stats", "utils", "graphics", "grDevices",
                           "datasets"))) {
        walk$packages <- c(walk$packages, package)
      }
      return(invisible())
    }
  }
  invisible()
}

# The names a function's code may look up outside itself: every symbol read
# (or called) that is not one of its arguments or a variable it assigns,
# nested functions included. Names after `$` and `@`, in quote() and after
# `::` are not variables.
code_globals <- function(f) {
  found <- new.env(parent = emptyenv())
  arguments <- formals(f)
  locals <- c(names(arguments), assigned_names(body(f)))
  for (default in arguments) if (!missing(default)) code_walk(default, locals, found)
  code_walk(body(f), locals, found)
  ls(found, all.names = TRUE, sorted = FALSE)
}

code_walk <- function(e, locals, found) {
  if (is.symbol(e)) {
    name <- as.character(e)
    if (nzchar(name) && !(name %in% locals) && !startsWith(name, "..")) {
      assign(name, TRUE, envir = found)
    }
    return(invisible())
  }
  if (is.pairlist(e) || is.expression(e) || (is.list(e) && !is.object(e))) {
    for (part in as.list(e)) if (!missing(part)) code_walk(part, locals, found)
    return(invisible())
  }
  if (!is.call(e)) return(invisible())
  head <- e[[1L]]
  args <- as.list(e)[-1L]
  if (is.symbol(head)) {
    fname <- as.character(head)
    if (fname %in% c("quote", "::", ":::")) return(invisible())
    if (fname == "function") {
      inner <- c(locals, names(e[[2L]]), assigned_names(e[[3L]]))
      for (default in as.list(e[[2L]])) if (!missing(default)) code_walk(default, inner, found)
      code_walk(e[[3L]], inner, found)
      return(invisible())
    }
    if (fname %in% c("$", "@")) {
      code_walk(e[[2L]], locals, found)
      return(invisible())
    }
    if (fname %in% c("<-", "=", "<<-") && length(e) == 3L) {
      walk_assignment_target(e[[2L]], locals, found)
      code_walk(e[[3L]], locals, found)
      return(invisible())
    }
  }
  code_walk(head, locals, found)
  for (part in args) if (!missing(part)) code_walk(part, locals, found)
  invisible()
}

# `x <- v` reads nothing; `names(x)[2] <- v` reads x, and calls `names<-`
# and `[<-`, which may be the user's own.
walk_assignment_target <- function(target, locals, found) {
  if (!is.call(target)) return(invisible())
  head <- target[[1L]]
  if (is.symbol(head)) {
    code_walk(as.symbol(paste0(as.character(head), "<-")), locals, found)
    if (as.character(head) %in% c("$", "@")) {
      walk_target_object(target[[2L]], locals, found)
      return(invisible())
    }
  }
  walk_target_object(target[[2L]], locals, found)
  for (arg in as.list(target)[-(1:2)]) if (!missing(arg)) code_walk(arg, locals, found)
  invisible()
}

walk_target_object <- function(object, locals, found) {
  if (is.call(object)) walk_assignment_target(object, locals, found) else code_walk(object, locals, found)
}

# Variables a block of code creates with `<-`, `=` or `for` (not inside
# the functions it defines): they are the function's own.
assigned_names <- function(e) {
  if (!is.call(e)) return(character())
  head <- e[[1L]]
  if (is.symbol(head)) {
    fname <- as.character(head)
    if (fname %in% c("function", "quote")) return(character())
    if (fname %in% c("<-", "=") && length(e) == 3L) {
      # `x[i] <- v` changes an x that exists already: not a variable of
      # its own (the x read may be a global).
      target <- e[[2L]]
      own <- if (is.symbol(target)) as.character(target) else if (is.character(target)) target
      return(c(own, assigned_names(e[[3L]])))
    }
    if (fname == "for" && is.symbol(e[[2L]])) {
      return(c(as.character(e[[2L]]), assigned_names(e[[3L]]), assigned_names(e[[4L]])))
    }
  }
  own <- character()
  for (part in as.list(e)[-1L]) if (!missing(part)) own <- c(own, assigned_names(part))
  own
}
