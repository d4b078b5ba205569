#' Mutual information of two variables (memshare's mutualinfo())
#'
#' The statistic of memshare's main example (`memApply()` over the columns
#' of a matrix against a class vector), with memshare's arguments and
#' results. Mutual information is at least 0 and symmetric in `x` and `y`:
#' how much knowing one variable tells about the other.
#'
#' The estimator depends on the kinds of the two variables:
#' * both discrete: the plug-in estimate from their contingency table;
#' * both continuous: from the smoothed two-dimensional density of
#'   `ScatterDensity::SmoothedDensitiesXY()` on a 512 x 512 grid;
#' * one of each: from the smoothed one-dimensional density of the
#'   continuous variable within each class of the discrete one (Pareto
#'   density estimation, `DataVisualizations::ParetoDensityEstimation()`),
#'   on a common grid;
#' * `useMPMI = TRUE`: the estimators of the mpmi package (`mpmi::cmi()`,
#'   `mpmi::dmi()`, `mpmi::mmi()`), as a baseline.
#'
#' Summands below `eps` are left out (their limit is 0, their logarithm is
#' not). With `na.rm = TRUE` only complete pairs are used.
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
  } else if (anyNA(x) || anyNA(y)) {
    return(NA_real_)
  }
  if (length(x) < 3L || length(unique(x)) < 2L || length(unique(y)) < 2L) return(0)
  if (useMPMI) return(mpmi_information(x, y, isXDiscrete, isYDiscrete))
  if (isXDiscrete && isYDiscrete) return(discrete_information(x, y, eps))
  if (!isXDiscrete && !isYDiscrete) return(continuous_information(x, y, eps))
  if (isXDiscrete) mixed_information(y, x, eps) else mixed_information(x, y, eps)
}

# Plug-in estimate from the joint relative frequencies.
discrete_information <- function(x, y, eps) {
  joint <- table(x, y) / length(x)
  information_of(unclass(joint), eps)
}

# sum p(x,y) log(p(x,y) / (p(x) p(y))) over a joint probability table.
information_of <- function(joint, eps) {
  joint <- joint / sum(joint)
  independent <- outer(rowSums(joint), colSums(joint))
  terms <- joint * log(joint / independent)
  sum(terms[joint > 0 & abs(terms) > eps])
}

continuous_information <- function(x, y, eps) {
  smoothed <- ScatterDensity::SmoothedDensitiesXY(x, y, nbins = 512)
  joint <- smoothed$hist_F_2D
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
