#' Mutual information of two variables (memshare's mutualinfo())
#'
#' The statistic of memshare's main example (`memApply()` over the columns
#' of a matrix against a class vector), with memshare's arguments and
#' results. Mutual information is at least 0 and symmetric in `x` and `y`:
#' how much knowing one variable tells about the other.
#'
#' The estimator depends on the kinds of the two variables:
#' * both discrete: from their contingency table, in bits, computed as
#'   memshare 1.1.1 computes it (`ScatterDensity::fast_table_num()` with the
#'   sorted distinct values as bin edges, so the largest value of each
#'   variable falls outside the bins, with a warning from ScatterDensity,
#'   and the frequencies are relative to all observations); with `na.rm =
#'   FALSE` missing values are left out of the table but counted in `n`;
#' * both continuous: in nats, from the smoothed two-dimensional density of
#'   `ScatterDensity::SmoothedDensitiesXY()` on a 512 x 512 grid;
#' * one of each: in nats, from the smoothed one-dimensional density of the
#'   continuous variable within each class of the discrete one (Pareto
#'   density estimation, `DataVisualizations::ParetoDensityEstimation()`),
#'   on a common grid;
#' * `useMPMI = TRUE`: the estimators of the mpmi package (`mpmi::cmi()`,
#'   `mpmi::dmi()`, `mpmi::mmi()`), as a baseline.
#'
#' Agreement with memshare 1.1.1: the discrete and the `useMPMI = TRUE`
#' values are memshare's (to 1e-8, checked in shmr's tests); the continuous
#' and mixed values are estimates of the same quantity from the same kind
#' of smoothed densities, but not memshare's exact numbers (on 600 points
#' of a three-class mixture: 0.768 against memshare's 0.403 for two
#' continuous variables, 0.572 against 0.540 for a continuous variable and
#' its classes; mpmi gives 0.691 and 0.560).
#'
#' Summands below `eps` are left out (their limit is 0, their logarithm is
#' not). With `na.rm = TRUE` only complete pairs are used; with `na.rm =
#' FALSE`, a missing value in a continuous variable or with `useMPMI = TRUE`
#' is an error (memshare's is an error from `seq()`). Fewer than 3
#' observations, or a constant variable, give 0.
#'
#' Like memshare's, it needs the suggested packages ScatterDensity (>=
#' 0.1.1) and DataVisualizations (>= 1.1.5), or mpmi for `useMPMI = TRUE`:
#' when one is missing it warns ("Please install package ...") and returns
#' `NULL`.
#'
#' @param x,y Numeric vectors of the same length.
#' @param isXDiscrete,isYDiscrete Whether `x` (`y`) holds discrete values
#'   (classes) rather than continuous measurements.
#' @param eps Summands of the mutual information smaller than this are left
#'   out.
#' @param useMPMI Use the mpmi package's estimators.
#' @param na.rm Use complete pairs only.
#' @return The mutual information, a number; `NULL` (with a warning) when a
#'   package it needs is missing.
#' @seealso [memApply()] and the other functions of [compat-memshare].
#' @export
#' @examples
#' x <- c(rnorm(1000), rnorm(2000) + 8, rnorm(1000) * 2 - 8)
#' y <- c(rep(1, 1000), rep(2, 2000), rep(3, 1000))
#' if (requireNamespace("DataVisualizations", quietly = TRUE) &&
#'     requireNamespace("ScatterDensity", quietly = TRUE)) {
#'   mutualinfo(x, y, isXDiscrete = FALSE, isYDiscrete = TRUE)
#' }
mutualinfo <- function(x, y, isXDiscrete = FALSE, isYDiscrete = FALSE,
                       eps = .Machine$double.eps * 1000, useMPMI = FALSE, na.rm = FALSE) {
  for (pkg in c("ScatterDensity", "DataVisualizations")) {
    if (!requireNamespace(pkg, quietly = TRUE)) {
      warning(sprintf("Please install package %s.", pkg), call. = FALSE)
      return(NULL)
    }
  }
  x <- as.numeric(x)
  y <- as.numeric(y)
  if (length(x) != length(y)) stop("mutualinfo(): `x` and `y` must have the same length", call. = FALSE)
  if (na.rm) {
    complete <- is.finite(x) & is.finite(y)
    x <- x[complete]
    y <- y[complete]
  }
  both_discrete <- isXDiscrete && isYDiscrete && !useMPMI
  if (!both_discrete && (anyNA(x) || anyNA(y))) {
    stop("mutualinfo(): `x` or `y` holds missing values; use na.rm = TRUE", call. = FALSE)
  }
  if (length(x) < 3L || length(unique(x)) < 2L || length(unique(y)) < 2L) return(0)
  if (useMPMI) return(mpmi_information(x, y, isXDiscrete, isYDiscrete))
  if (both_discrete) return(discrete_information(x, y, eps))
  if (!isXDiscrete && !isYDiscrete) return(continuous_information(x, y, eps))
  if (isXDiscrete) mixed_information(y, x, eps) else mixed_information(x, y, eps)
}

# In bits, from ScatterDensity::fast_table_num() with the sorted distinct
# values as bin edges, counts divided by all n observations, as memshare
# 1.1.1 does: k values make k - 1 bins, so the largest value of each
# variable lies outside them (fast_table_num() warns "counts outside of
# bins") and the table is not renormalised. Kept for memshare's values.
discrete_information <- function(x, y, eps) {
  counts <- ScatterDensity::fast_table_num(x, y, sort(unique(x)), sort(unique(y)), redefine = FALSE)
  joint <- counts / length(x)
  independent <- outer(rowSums(joint), colSums(joint))
  terms <- joint * log2(joint / independent)
  sum(terms[joint > 0 & abs(terms) > eps])
}

# In nats: sum p(x,y) log(p(x,y) / (p(x) p(y))) over a joint probability table.
information_of <- function(joint, eps) {
  joint <- joint / sum(joint)
  independent <- outer(rowSums(joint), colSums(joint))
  terms <- joint * log(joint / independent)
  sum(terms[joint > 0 & abs(terms) > eps])
}

continuous_information <- function(x, y, eps) {
  smoothed <- ScatterDensity::SmoothedDensitiesXY(x, y, nbins = 512)
  joint <- smoothed$GridDensity
  joint[!is.finite(joint) | joint < 0] <- 0
  information_of(joint, eps)
}

# The continuous `x` against the classes `y`: the density of x within each
# class, on one grid, weighted by the classes' frequencies.
mixed_information <- function(x, y, eps) {
  grid <- DataVisualizations::ParetoDensityEstimation(x, Silent = TRUE)$kernels
  classes <- sort(unique(y))
  conditional <- vapply(classes, function(k) {
    DataVisualizations::ParetoDensityEstimation(x[y == k], kernels = grid,
                                                Silent = TRUE)$paretoDensity
  }, numeric(length(grid)))
  conditional <- matrix(conditional, nrow = length(grid))
  conditional <- sweep(conditional, 2, pmax(colSums(conditional), .Machine$double.xmin), "/")
  weights <- as.vector(table(factor(y, levels = classes))) / length(y)
  information_of(sweep(conditional, 2, weights, "*"), eps)
}

mpmi_information <- function(x, y, isXDiscrete, isYDiscrete) {
  if (!requireNamespace("mpmi", quietly = TRUE)) {
    warning("Please install package mpmi.", call. = FALSE)
    return(NULL)
  }
  if (isXDiscrete && isYDiscrete) {
    return(mpmi::dmi(cbind(x, y))$mi[1L, 2L])
  }
  if (!isXDiscrete && !isYDiscrete) {
    return(mpmi::cmi(cbind(x, y))$mi[1L, 2L])
  }
  if (isXDiscrete) mpmi::mmi(cbind(y), cbind(x))$mi[1L, 1L] else
    mpmi::mmi(cbind(x), cbind(y))$mi[1L, 1L]
}
