# What shared_info(), is_shared() and close() know about deep shares made
# in this process. The result of a deep share is an ordinary list or
# environment holding shared views, so it is recognised by its address,
# confirmed by a fingerprint of its parts (an address can be reused once
# the object is garbage collected).

deep_shares <- new.env(hash = TRUE, parent = emptyenv())

remember_deep_share <- function(result, report) {
  key <- address(result)
  assign(key, list(fingerprint = deep_fingerprint(result), report = report), envir = deep_shares)
  # An environment (or a Reference Class object's) tells when it is gone.
  env <- if (typeof(result) == "environment") result else attr(result, ".xData", exact = TRUE)
  if (typeof(env) == "environment") {
    reg.finalizer(env, forgetter(key), onexit = FALSE)
  }
  invisible(result)
}

# A finalizer that holds only the key, not the object it watches.
forgetter <- function(key) {
  force(key)
  function(e) forget_deep_share(key)
}

forget_deep_share <- function(key) {
  if (exists(key, envir = deep_shares, inherits = FALSE)) rm(list = key, envir = deep_shares)
}

# The report of the deep share `x`, or NULL when `x` is not one.
deep_share_report <- function(x) {
  entry <- get0(address(x), envir = deep_shares, inherits = FALSE)
  if (is.null(entry) || !identical(entry$fingerprint, deep_fingerprint(x))) return(NULL)
  entry$report
}

deep_fingerprint <- function(x) {
  # Environments are forgotten by their finalizer, and their bindings may
  # change (a Reference Class object installs methods on first use).
  if (is.environment(x)) return(address(x))
  if (is.list(x)) {
    return(vapply(seq_len(min(length(unclass(x)), 64L)),
                  function(i) address(.subset2(x, i)), ""))
  }
  if (is_view(x)) return(shared_name(x))
  address(x)
}

# Closes every region of the deep share `x` in this process: NULL when `x`
# is none, else the files its regions left (see close_shared()).
close_deep_share <- function(x) {
  report <- deep_share_report(x)
  if (is.null(report)) return(NULL)
  left <- unlist(lapply(shared_views_in(x), function(view) .Call(shmr_close, view)))
  forget_deep_share(address(x))
  left[!is.na(left) & nzchar(left)]
}

# The shared vectors reachable from `x`, each region once.
shared_views_in <- function(x) {
  found <- new.env(hash = TRUE, parent = emptyenv())
  seen <- new.env(hash = TRUE, parent = emptyenv())
  search_envs <- search_environments()
  collect <- function(x) {
    if (typeof(x) == "environment") {
      key <- address(x)
      if (exists(key, envir = seen, inherits = FALSE) || is_stop_environment(x, search_envs)) {
        return()
      }
      assign(key, TRUE, envir = seen)
      labels <- ls(x, all.names = TRUE, sorted = FALSE)
      kinds <- .Call(shmr_binding_kinds, x, labels)
      for (label in labels[kinds == "value"]) collect(get(label, envir = x, inherits = FALSE))
    } else if (is.function(x)) {
      collect(environment(x))
    } else if (is_view(x)) {
      region <- shared_region(x)
      if (!exists(region, envir = found, inherits = FALSE)) assign(region, x, envir = found)
      return()
    } else if (is.list(x)) {
      for (element in unclass(x)) collect(element)
    }
    for (value in .Call(shmr_stored_attributes, x)) collect(value)
  }
  collect(x)
  as.list(found)
}
