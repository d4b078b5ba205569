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
#' * both continuous: in nats, from a joint density on a 512 x 512 grid
#'   spanning each variable's range widened by its Pareto radius
#'   (`DataVisualizations::ParetoRadius_fast()`). The density is
#'   `ScatterDensity::SmoothedDensitiesXY()` on that grid, smoothed once
#'   more with a Gaussian kernel whose standard deviations are the two
#'   Pareto radii (zero beyond the grid). Cells whose smoothed density is
#'   at most `2 * eps` are left out;
#' * one of each: in nats, from the density of the continuous variable
#'   within each class of the discrete one (`SmoothedDensitiesXY()` with a
#'   discrete `Y`, on a 512-point grid built the same way), as the
#'   weighted divergence of each class's density from their sum. Points
#'   where a class's density is at most `eps` are left out;
#' * `useMPMI = TRUE`: the estimators of the mpmi package (`mpmi::cmi()`,
#'   `mpmi::dmi()`, `mpmi::mmi()`), as a baseline.
#'
#' Every value agrees with memshare 1.1.1's to 1e-8 (checked in shmr's
#' tests against values computed with memshare itself). The estimators
#' were reconstructed from memshare's documentation and by probing its
#' results, not from its code. For many thousands of observations
#' `ParetoRadius_fast()` estimates the radius from a random sample, so the
#' continuous and mixed values then depend on the random seed, as
#' memshare's do.
#'
#' `eps` leaves out the summands whose limit is 0 but whose logarithm is
#' not (for discrete variables, summands below `eps`). With `na.rm = TRUE` only complete pairs are used; with `na.rm =
#' FALSE`, a missing value in a continuous variable or with `useMPMI = TRUE`
#' is an error (memshare's is an error from `seq()`). Fewer than 3
#' observations, or a variable whose standard deviation is below `eps`,
#' give 0.
#'
#' It needs the suggested packages ScatterDensity (>= 0.1.1) and
#' DataVisualizations (>= 1.1.5), or mpmi for `useMPMI = TRUE`: when one is
#' missing it stops with an error naming the package to install (memshare's
#' warns "Please install package ..." and returns `NULL`, which a caller
#' such as `memApply()` would take for a result).
#'
#' @param x,y Numeric vectors of the same length.
#' @param isXDiscrete,isYDiscrete Whether `x` (`y`) holds discrete values
#'   (classes) rather than continuous measurements.
#' @param eps Summands of the mutual information smaller than this are left
#'   out.
#' @param useMPMI Use the mpmi package's estimators.
#' @param na.rm Use complete pairs only.
#' @return The mutual information, a number.
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
  check_flag(isXDiscrete, "isXDiscrete")
  check_flag(isYDiscrete, "isYDiscrete")
  check_flag(useMPMI, "useMPMI")
  check_flag(na.rm, "na.rm")
  if (!is.numeric(eps) || length(eps) != 1L || is.na(eps) || eps < 0) {
    stop("`eps` must be a single number >= 0, not ", describe_value(eps), call. = FALSE)
  }
  for (pkg in if (useMPMI) "mpmi" else c("ScatterDensity", "DataVisualizations")) need_package(pkg)
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
  if (length(x) < 3L || below(stats::sd(x, na.rm = TRUE), eps) || below(stats::sd(y, na.rm = TRUE), eps)) {
    return(0)
  }
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

below <- function(spread, eps) is.na(spread) || spread < eps

# The grid memshare puts under a continuous variable: 512 points over its
# range widened by its Pareto radius on each side.
density_grid <- function(x) {
  radius <- DataVisualizations::ParetoRadius_fast(x)
  list(points = seq(min(x) - radius, max(x) + radius, length.out = 512L), radius = radius)
}

# A 512 x 512 grid convolved with the separable Gaussian kernel centred on
# point 256 of each axis, zero outside the grid (a linear convolution done
# with FFTs on a 1024 x 1024 padding).
gaussian_smoothed <- function(density, gx, gy) {
  bump <- function(g) exp(-(g$points - g$points[256L])^2 / (2 * g$radius^2))
  kernel <- outer(bump(gx), bump(gy))
  padded <- function(m) {
    out <- matrix(0, 1024L, 1024L)
    out[1:512, 1:512] <- m
    out
  }
  product <- stats::fft(padded(density)) * stats::fft(padded(kernel / sum(kernel)))
  convolved <- Re(stats::fft(product, inverse = TRUE)) / 1024^2
  convolved[255L + 1:512, 255L + 1:512]
}

continuous_information <- function(x, y, eps) {
  gx <- density_grid(x)
  gy <- density_grid(y)
  raw <- ScatterDensity::SmoothedDensitiesXY(X = x, Y = y, lambda = 4, Xkernels = gx$points,
                                             Ykernels = gy$points, Compute = "Parallel")
  density <- gaussian_smoothed(raw$GridDensity, gx, gy)
  joint <- density * diff(gx$points[1:2]) * diff(gy$points[1:2])
  independent <- outer(rowSums(joint), colSums(joint))
  kept <- density > 2 * eps
  sum(joint[kept] * log(joint[kept] / independent[kept]))
}

# The continuous `x` against the classes `y`: sum over classes k of
# p(k) * KL(density of x in class k || density of x), where the density of
# x is the sum of the per-class densities ScatterDensity gives.
mixed_information <- function(x, y, eps) {
  gx <- density_grid(x)
  raw <- ScatterDensity::SmoothedDensitiesXY(X = x, Y = y, lambda = 4, Xkernels = gx$points,
                                             isYDiscrete = TRUE, Compute = "Cpp")
  density <- raw$GridDensity
  joint <- density / sum(density)
  class_weight <- colSums(joint)
  within_class <- sweep(joint, 2L, class_weight * diff(gx$points[1:2]), "/")
  overall <- rowSums(density)
  kept <- within_class > eps
  sum(joint[kept] * log((within_class / overall)[kept]))
}

# Stops, naming the package to install, when the suggested package `pkg`
# is not installed.
need_package <- function(pkg) {
  if (!requireNamespace(pkg, quietly = TRUE)) {
    stop(sprintf("mutualinfo() needs the %s package: install it with install.packages(\"%s\")",
                 pkg, pkg), call. = FALSE)
  }
}

mpmi_information <- function(x, y, isXDiscrete, isYDiscrete) {
  if (isXDiscrete && isYDiscrete) {
    return(mpmi::dmi(cbind(x, y))$mi[1L, 2L])
  }
  if (!isXDiscrete && !isYDiscrete) {
    return(mpmi::cmi(cbind(x, y))$mi[1L, 2L])
  }
  if (isXDiscrete) mpmi::mmi(cbind(y), cbind(x))$mi[1L, 1L] else
    mpmi::mmi(cbind(x), cbind(y))$mi[1L, 1L]
}
