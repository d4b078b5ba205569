#' Control how deep sharing treats objects of a class
#'
#' [share()] with `deep = TRUE` calls `share_hook(x, ctx)` for every object
#' with a class attribute (S3, S4, R6 and Reference Class objects) that it
#' reaches. A package can write a method for its class to say which parts
#' to leave alone, which to share whatever their size, or to replace the
#' object by another one before it is walked. The default method asks for
#' nothing.
#'
#' Parts are named by their path: the root, then `$name` for a list element
#' or an environment's binding, `[[i]]` for an unnamed element, `@name` for
#' an attribute or S4 slot, and `<env>` for a closure's environment. A hook
#' sees the root written `"<root>"` (as shard's hooks do, so
#' `paste0(ctx$path, "@cache")` works unchanged); [shared_info()] writes it
#' as the expression given to `share()` (or `x`). Paths a hook returns may
#' use either.
#'
#' Methods written for shard's generic, `shard_share_hook()`, are used too:
#' the default method of `share_hook()` calls `shard_share_hook()`, whose
#' default asks for nothing.
#'
#' @param x The object reached by the walk.
#' @param ctx A list: `path` (the path of `x`, from `"<root>"`), `class`
#'   (`class(x)`), `mode`, `min_bytes` (as given to [share()]), `types` (the
#'   vector types deep sharing shares: `"logical"`, `"integer"`, `"double"`,
#'   `"complex"`, `"raw"`, `"character"`) and `deep` (`TRUE`).
#' @return A list, empty for the default behaviour, with any of:
#'   * `skip`: names of elements, attributes (slots) or bindings of `x` to
#'     keep exactly as they are, without walking into them;
#'   * `force`: names of parts of `x` whose vectors are shared even when
#'     smaller than `min_bytes`;
#'   * `rewrite`: a function of one argument returning the object to walk
#'     and share in place of `x`;
#'   * `skip_paths`, `force_share_paths`: the same as `skip` and `force`
#'     with whole paths (for example `paste0(ctx$path, "@cache")`);
#'     `skip_slots` is accepted as another name for `skip`.
#'
#'   Skipped parts are listed in `shared_info(result)$skipped`. An error in
#'   a hook, or in its `rewrite` function, stops `share()` when `mode =
#'   "strict"`; with `mode = "balanced"` the object is walked as it is (as
#'   if it had no hook, or without the rewrite) and the error is listed
#'   among the skipped parts. An answer not of the form above (not a list,
#'   a field of the wrong type) is a mistake in the hook's code rather than
#'   in the data: an error in either mode. `NULL` counts as an empty list,
#'   and fields of other names are ignored without a word
#'   (`list(skipp = "cache")` skips nothing): check their spelling.
#' @export
#' @examples
#' share_hook.fitted_cache <- function(x, ctx) {
#'   list(skip = "scratch", force = "weights")
#' }
#' registerS3method("share_hook", "fitted_cache", share_hook.fitted_cache)
#' obj <- structure(
#'   list(weights = runif(10), scratch = runif(1e5), data = runif(1e5)),
#'   class = "fitted_cache"
#' )
#' s <- share(obj, deep = TRUE, min_bytes = 1e5)
#' c(is_shared(s$weights), is_shared(s$scratch), is_shared(s$data))
#' shared_info(s)$skipped
#' close(s)
share_hook <- function(x, ctx) {
  UseMethod("share_hook")
}

#' @rdname share_hook
#' @export
share_hook.default <- function(x, ctx) {
  shard_share_hook(x, ctx)
}

#' @rdname share_hook
#' @export
shard_share_hook <- function(x, ctx) {
  UseMethod("shard_share_hook")
}

#' @rdname share_hook
#' @export
shard_share_hook.default <- function(x, ctx) {
  list()
}
