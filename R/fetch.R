# fetch(): an ordinary deep copy that outlives the regions it was read from.
#
# src/fetch.cpp copies vectors, lists, attributes, slots and pairlists.
# Environments are reference objects: an environment is copied only when a
# shared object can be reached through it (its bindings, its attributes
# and, for the environment of a closure or formula, its enclosing
# environments), as in a deep share's R6 object, a closure over shared
# data, or a model whose formula environment holds shared data.
# Every other environment stays the same object, as in any copy of an R
# value, and the global environment, namespaces and the search path are
# never copied. Closures whose environment is copied enclose the copy.

#' Copy a shared object into ordinary memory
#'
#' @param x An R object, shared or not.
#' @param ... Ignored (accepted for code written for shard).
#' @return An ordinary deep copy of `x` that owns its memory: no ALTREP
#'   vector is left in its vectors, lists, attributes, S4 slots or
#'   pairlists, and it stays usable after the region is closed.
#'   Environments through which a shared object can be reached (an R6 or
#'   Reference Class object from a deep share, the environment of a closure
#'   or of a formula that holds shared data, and the environments enclosing
#'   those) are copied too, with their locks and active bindings, and the
#'   closures in the copy enclose the copied environments. Other
#'   environments are not copied: they are the same objects in the copy,
#'   as they would be in any copy of an R value. Bindings that are not
#'   evaluated yet (promises) in the environments it looks through are
#'   evaluated, as their first use would. A promise whose evaluation fails
#'   stops `fetch()` with an error (class `shmr_promise_error`) that
#'   names the variable and keeps the promise's own error as its `parent`.
#' @export
#' @examples
#' x <- share(c(a = 1, b = 2))
#' y <- fetch(x)
#' is_shared(y)
#' identical(x, y)
#'
#' # A closure over shared data: its copy no longer needs the region.
#' make_total <- function(values) function() sum(values)
#' total <- make_total(share(as.numeric(1:10)))
#' local_total <- fetch(total)
#' close(environment(total)$values)
#' local_total()
fetch <- function(x, ...) {
  first <- .Call(shmr_fetch_first, x)
  replacements <- environment_copies(first[[2L]])
  if (length(replacements$from)) {
    # Copied again with those environments replaced. Only objects that hold
    # such environments pay this; the first copy is dropped before, so it
    # can be collected while the second is made.
    first <- NULL
    copy <- .Call(shmr_fetch, x, replacements$from, replacements$to)
  } else {
    copy <- first[[1L]]
  }
  # A buffer's copy is an ordinary private vector, not a buffer.
  if (inherits(copy, "shmr_buffer")) oldClass(copy) <- NULL
  copy
}

# The environments to copy, found from `references` (the environments and
# closures an object holds outside environments), their empty copies, and
# the closures that are to enclose those copies: list(from, to, keys) (keys:
# the addresses of `from`); fetch_environment() fills the copies.
environment_copies <- function(references) {
  graph <- environment_graph(references)
  needed <- environments_to_copy(graph)
  if (!length(needed)) return(list(from = list(), to = list()))
  copies <- lapply(needed, function(key) new.env(parent = emptyenv()))
  names(copies) <- needed
  closures <- Filter(function(closure) closure$env %in% needed, as.list(graph$closures))
  replacements <- list(
    from = c(unname(lapply(needed, function(key) graph$nodes[[key]]$env)),
             unname(lapply(closures, `[[`, "f"))),
    to = c(unname(copies), unname(lapply(closures, function(closure) {
      f <- closure$f
      environment(f) <- copies[[closure$env]]
      f
    })))
  )
  replacements$keys <- vapply(replacements$from, address, "")
  for (key in needed) fetch_environment(graph$nodes[[key]], copies, replacements)
  replacements
}

# What can be reached from `references` through environments: for each
# environment (by address), whether a binding or attribute holds a shared
# object, and which environments its bindings and attributes lead to; and
# every closure met, with its environment's key. The enclosing environments
# of a closure's environment are where its free variables are found, so
# they are followed too (`scope`); those of an environment that is only
# data (an R6 object's fields, a new.env()) are not part of it.
environment_graph <- function(references) {
  search_envs <- search_environments()
  nodes <- new.env(hash = TRUE, parent = emptyenv())
  closures <- new.env(hash = TRUE, parent = emptyenv())
  queue <- list()
  # The keys of the environments `refs` lead to, each one queued once;
  # `scope`: they enclose code.
  note <- function(refs, scope = FALSE) {
    keys <- character()
    for (ref in refs) {
      env <- if (is.function(ref)) environment(ref) else ref
      if (!is.environment(env) || is_stop_environment(env, search_envs)) next
      key <- address(env)
      if (is.function(ref)) assign(address(ref), list(f = ref, env = key), envir = closures)
      node <- get0(key, envir = nodes, inherits = FALSE)
      if (is.null(node)) {
        node <- list(env = env, view = FALSE, out = character(), scope = FALSE)
        queue[[length(queue) + 1L]] <<- env
      }
      if ((scope || is.function(ref)) && !node$scope) {
        node$scope <- TRUE
        node$out <- union(node$out, note(list(parent.env(env)), scope = TRUE))
      }
      assign(key, node, envir = nodes)
      keys <- c(keys, key)
    }
    unique(keys)
  }
  note(references)
  while (length(queue)) {
    env <- queue[[1L]]
    queue[[1L]] <- NULL
    view <- FALSE
    out <- character()
    for (value in c(bindings_of(env)$values, .Call(shmr_stored_attributes, env))) {
      reach <- .Call(shmr_fetch_reach, value)
      view <- view || reach$view
      out <- union(out, note(reach$references))
    }
    key <- address(env)
    node <- get(key, envir = nodes, inherits = FALSE)
    node$view <- view
    node$out <- union(node$out, out)
    assign(key, node, envir = nodes)
  }
  list(nodes = nodes, closures = closures)
}

# The bindings of `env` as a copy reads them: `labels`, `kinds` ("value",
# "active" or "unevaluated" (a missing argument, `...`)) and `values` (an
# active binding's function; NULL where there is none). A promise is
# evaluated, as its first use would; one whose evaluation fails stops the
# fetch, since a copy cannot hold the promise without evaluating it again
# (R would then warn "restarting interrupted promise evaluation") and
# leaving it out would lose the binding.
bindings_of <- function(env) {
  labels <- ls(env, all.names = TRUE, sorted = TRUE)
  kinds <- .Call(shmr_binding_kinds, env, labels)
  kinds[kinds == "promise"] <- "value"
  values <- vector("list", length(labels))
  for (i in seq_along(labels)) {
    if (kinds[i] == "active") {
      values[i] <- list(activeBindingFunction(labels[i], env))
    } else if (kinds[i] == "value") {
      values[i] <- list(binding_value(labels[i], env))
    }
  }
  list(labels = labels, kinds = kinds, values = values)
}

# The value bound to `label` in `env`; the error of a promise that fails
# names the variable and keeps the original error as its `parent`.
binding_value <- function(label, env) {
  tryCatch(get(label, envir = env, inherits = FALSE), error = function(e) {
    stop(errorCondition(
      sprintf("fetch(): evaluating the promise of `%s` failed: %s", shorten(label),
              conditionMessage(e)),
      class = "shmr_promise_error", parent = e, call = NULL
    ))
  })
}

# The keys of the environments from which a shared object can be reached.
environments_to_copy <- function(graph) {
  keys <- ls(graph$nodes, all.names = TRUE, sorted = TRUE)
  needed <- vapply(keys, function(key) graph$nodes[[key]]$view, logical(1))
  repeat {
    more <- !needed & vapply(keys, function(key) any(needed[graph$nodes[[key]]$out]), logical(1))
    if (!any(more)) break
    needed <- needed | more
  }
  keys[needed]
}

# Fills the copy of `node`'s environment: values that lead to a shared
# object or a copied environment are fetched, the others bound as they are;
# locks, active bindings and attributes are kept; the copy of a closure's
# environment is enclosed by the copy of its enclosing one, if any.
fetch_environment <- function(node, copies, replacements) {
  env <- node$env
  copy <- copies[[address(env)]]
  parent <- parent.env(env)
  copied_parent <- if (node$scope) copies[[address(parent)]]
  parent.env(copy) <- if (is.null(copied_parent)) parent else copied_parent
  # A value that cannot be copied (its region was closed or cannot be had)
  # is bound as it is: the copy reads it no worse than the original does.
  fetched <- function(value) {
    reach <- .Call(shmr_fetch_reach, value)
    touched <- reach$view || any(vapply(reach$references, address, "") %in% replacements$keys)
    if (!touched) return(value)
    tryCatch(.Call(shmr_fetch, value, replacements$from, replacements$to),
             error = function(e) value)
  }
  bindings <- bindings_of(env)
  for (i in seq_along(bindings$labels)) {
    label <- bindings$labels[i]
    switch(bindings$kinds[i],
      active = makeActiveBinding(label, fetched(bindings$values[[i]]), copy),
      value = assign(label, fetched(bindings$values[[i]]), envir = copy),
      .Call(shmr_copy_binding, env, copy, label)
    )
    if (bindingIsLocked(label, env)) lockBinding(label, copy)
  }
  stored <- .Call(shmr_stored_attributes, env)
  for (label in names(stored)) attr(copy, label) <- fetched(stored[[label]])
  if (environmentIsLocked(env)) lockEnvironment(copy)
  invisible(copy)
}
