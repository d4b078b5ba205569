# Code written for memshare: its documented examples (with memshare:: read
# as shmr::), and the defects memshare shows. Each test uses a private shm
# directory: the examples' namespaces are fixed names.

skip_if_no_cluster <- function() {
  skip_on_cran()
  skip_without_callr()
}

test_that("memshare's examples for variables, views and lists give the documented results", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)

  # registerVariables
  n <- 10
  m <- 10
  TargetMat <- matrix(rnorm(n * m), n, m) # target matrix
  x_vec <- rnorm(n) # some other vector
  namespace <- "ns_register"
  registerVariables(namespace, list(TargetMat = TargetMat, x_vec = x_vec))
  shmr::releaseVariables(namespace, c("TargetMat", "x_vec"))

  # releaseVariables
  ns <- "example"
  X <- matrix(rnorm(100), 10, 10)
  registerVariables(ns, list(X = X))
  expect_invisible(released <- releaseVariables(ns, "X"))
  expect_true(released)

  # pageList / viewList
  expect_identical(pageList(), list())
  mat <- matrix(0, 5, 5)
  registerVariables("ns_pageL", list(mat = mat))
  expect_identical(pageList(), list("ns_pageL.mat"))
  releaseVariables("ns_pageL", c("mat"))
  expect_identical(pageList(), list())

  mat <- matrix(0, 5, 5)
  registerVariables("ns_viewL", list(mat = mat))
  expect_identical(viewList(), list())
  matref <- retrieveViews("ns_viewL", c("mat"))
  expect_identical(viewList(), list("ns_viewL.mat"))
  releaseViews("ns_viewL", c("mat"))
  expect_identical(viewList(), list())
  releaseVariables("ns_viewL", c("mat"))

  # retrieveViews / releaseViews
  n <- 1000
  m <- 100
  mat <- matrix(rnorm(n * m), n, m)
  y <- rnorm(n)
  namespace <- "ns_retrview"
  shmr::registerVariables(namespace, list(mat = mat, y = y))
  res <- shmr::retrieveViews(namespace, c("mat", "y"))
  expect_identical(res, list(mat = mat, y = y))
  expect_true(is.matrix(res$mat) && is.numeric(res$y))
  shmr::releaseViews(namespace, c("mat", "y"))
  shmr::releaseVariables(namespace, c("mat", "y"))

  # retrieveMetadata
  namespace <- "ns_meta"
  shmr::registerVariables(namespace, list(mat = mat))
  res <- shmr::retrieveMetadata(namespace, "mat")
  expect_identical(res$type, "matrix")
  expect_identical(res$nrow, 1000)
  expect_identical(res$ncol, 100)
  releaseViews(namespace, c("mat"))
  shmr::releaseVariables(namespace, c("mat"))
  expect_identical(pageList(), list())
  expect_identical(viewList(), list())
  expect_identical(shm_files(), character())
})

test_that("memshare's memApply, memLapply and memshare_gc examples give the documented results", {
  skip_if_no_cluster()
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)

  # memApply
  library(parallel)
  cl <- makeCluster(1)
  on.exit(stopCluster(cl), add = TRUE)
  i <- 1
  A1 <- matrix(as.double(1:10^(i + 1)), 10^i, 10^i)
  res <- memApply(X = A1, MARGIN = 2, FUN = function(x) {
    return(sd(x))
  }, CLUSTER = cl, NAMESPACE = "ns_apply")
  SD_vector <- unlist(res)
  expect_equal(SD_vector, apply(A1, 2, sd))

  # memshare_gc
  cluster <- cl
  mat <- matrix(0, 5, 5)
  registerVariables("ns", list(mat = mat))
  parallel::clusterEvalQ(cluster, {
    view <- shmr::retrieveViews("ns", c("mat"))
  })
  expect_identical(parallel::clusterEvalQ(cluster, shmr::viewList())[[1]], list("ns.mat"))
  memshare_gc("ns", cluster)
  expect_identical(parallel::clusterEvalQ(cluster, shmr::viewList())[[1]], list())
  expect_error(parallel::clusterEvalQ(cluster, sum(view$mat)), "closed")
  expect_identical(pageList(), list())

  # memLapply
  list_length <- 1000
  matrix_dim <- 100
  l <- lapply(
    1:list_length,
    function(i) matrix(rnorm(matrix_dim * matrix_dim),
                       nrow = matrix_dim, ncol = matrix_dim))
  y <- rnorm(matrix_dim)
  namespace <- "ns_lapply"
  res <- shmr::memLapply(l, function(el, y) {
    el
  }, NAMESPACE = namespace, VARS = list(y = y), MAX.CORES = 1)
  expect_identical(res, l)

  # The package example, with cor() in place of mutualinfo(), a statistic
  # shmr does not provide.
  x <- rnorm(100)
  y <- runif(100)
  Data <- cbind(x, x, x)
  namespace <- "ns_package"
  shmr::registerVariables(namespace, list(Data = Data, y = y))
  res2 <- shmr::memApply(
    X = "Data",
    MARGIN = 2,
    FUN = function(x, y) cor(x, y),
    VARS = c("y"),
    MAX.CORES = 1,
    NAMESPACE = namespace
  )
  expect_equal(unlist(res2), rep(cor(x, y), 3))
  shmr::releaseVariables(namespace, c("Data", "y"))
  expect_identical(pageList(), list())
  expect_identical(shm_files(), character())
})

test_that("doubles and lists of anything register with their attributes, retrieved in another process", {
  skip_without_callr()
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  values <- list(
    m = matrix(as.double(1:6), 2, dimnames = list(c("a", "b"), c("x", "y", "z"))),
    v = c(p = 1.5, q = NA),
    nested = list(a = 1L, b = list(c = "d"), f = factor(c("lo", "hi")),
                  df = data.frame(id = 1:2, name = c("a", "b")))
  )
  registerVariables("ns_types", values)
  got <- in_other_process(function(names) {
    views <- retrieveViews("ns_types", names)
    meta <- retrieveMetadata("ns_types", c("m", "v", "nested"))
    copies <- lapply(views, fetch)
    shared <- vapply(views, function(v) is_shared(v) || is_shared(v[[1]]), TRUE)
    listed <- viewList()
    releaseViews("ns_types", names)
    list(copies = copies, shared = shared, meta = meta, listed = listed, after = viewList())
  }, list(names = names(values)))
  expect_identical(got$copies, values)
  expect_true(all(got$shared))
  expect_identical(got$meta$m, list(type = "matrix", nrow = 2, ncol = 3, mode = "double"))
  expect_identical(got$meta$v, list(type = "vector", n = 2, mode = "double"))
  expect_identical(got$meta$nested, list(type = "list", n = 4, mode = "list"))
  expect_identical(got$listed, as.list(paste0("ns_types.", names(values))))
  expect_identical(got$after, list())
  releaseVariables("ns_types", names(values))
  expect_identical(shm_files(), character())
})

test_that("as memshare: other atomic types become doubles with a warning, a data frame is refused", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  int <- matrix(1:6, 2, dimnames = list(c("a", "b"), NULL))
  expect_warning(registerVariables("ns_conv", list(int = int, flags = c(p = TRUE, q = FALSE))),
                 "non-double")
  views <- retrieveViews("ns_conv", c("int", "flags"))
  expect_identical(views$int, matrix(as.double(1:6), 2, dimnames = list(c("a", "b"), NULL)))
  expect_identical(views$flags, c(p = 1, q = 0))
  # Integer arithmetic would overflow; memshare's doubles do not.
  big <- .Machine$integer.max
  expect_warning(registerVariables("ns_conv", list(big = c(big, big))), "non-double")
  expect_identical(sum(retrieveViews("ns_conv", "big")$big), 2 * big)
  expect_error(registerVariables("ns_conv", list(df = data.frame(a = 1:3))),
               "unknown element type of variable 'df': a data frame")
  expect_error(suppressWarnings(registerVariables("ns_conv", list(f = factor("a")))), "factor")
  # A character or complex vector would become NAs or its real parts.
  expect_error(registerVariables("ns_conv", list(s = c("1.5", "x"))),
               "variable 's' is a character vector, which cannot be converted to double")
  expect_error(registerVariables("ns_conv", list(z = 1 + 2i)),
               "variable 'z' is a complex vector, which cannot be converted")
  expect_error(memApply(matrix("a", 2, 2), 1, length, NAMESPACE = "ns_conv_chr", MAX.CORES = 1),
               "variable 'X' is a character vector")
  expect_identical(sort(unlist(pageList())), c("ns_conv.big", "ns_conv.flags", "ns_conv.int"))
  # memApply() converts an integer matrix too, with memshare's warning.
  expect_warning(cols <- memApply(int, 2, function(v) typeof(v), NAMESPACE = "ns_conv_apply",
                                  MAX.CORES = 1), "non-double")
  expect_identical(cols, list("double", "double", "double"))
  releaseViews("ns_conv", c("int", "flags", "big"))
  releaseVariables("ns_conv", c("int", "flags", "big"))
  expect_identical(shm_files(), character())
})

test_that("releaseViews() of a variable this session holds no view of is an error, as memshare's", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  registerVariables("ns_rel", list(a = 1))
  expect_error(releaseViews("ns_rel", "a"), "not previously allocated as a view")
  expect_error(releaseViews("ns_rel", "never_registered"), "'never_registered'")
  invisible(retrieveViews("ns_rel", "a"))
  releaseViews("ns_rel", "a")
  expect_error(releaseViews("ns_rel", "a"), "not previously allocated")
  # retrieveMetadata() lists a view, as memshare's, which releaseViews()
  # then releases (memshare's documented pattern).
  expect_identical(retrieveMetadata("ns_rel", "a")$type, "vector")
  expect_identical(viewList(), list("ns_rel.a"))
  releaseViews("ns_rel", "a")
  expect_identical(viewList(), list())
  releaseVariables("ns_rel", "a")
  expect_identical(shm_files(), character())
})

test_that("registering is all or nothing, with clear errors", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  expect_error(registerVariables("ns_bad", list(a = 1, f = function() 1)),
               "variable 'f' is a function; memshare registers matrices, vectors and lists")
  # The error is about registerVariables()'s variables, not share()'s arguments.
  for (bad in list(NULL, new.env(), quote(x + 1))) {
    err <- tryCatch(registerVariables("ns_bad", list(a = 1, b = bad)), error = conditionMessage)
    expect_match(err, "^registerVariables\\(\\): variable 'b' is ")
    expect_false(grepl("share(", err, fixed = TRUE))
  }
  expect_identical(pageList(), list())
  expect_identical(shm_files(), character())
  # An empty list registers (on R < 4.3 it is no shared object of its own).
  registerVariables("ns_empty", list(e = list()))
  expect_identical(unname(retrieveViews("ns_empty", "e")), list(list()))
  releaseViews("ns_empty", "e")
  releaseVariables("ns_empty", "e")
  expect_identical(shm_files(), character())
  expect_error(registerVariables("ns_bad", list(1, 2)), "unique name")
  expect_error(registerVariables("", list(a = 1)), "namespace")
  expect_error(registerVariables(strrep("n", 100), list(a = 1)), "longer than 100 characters")
  # Long names are cut in the message; they were quoted whole.
  for (err in list(tryCatch(registerVariables(strrep("n", 5000), list(a = 1)), error = conditionMessage),
                   tryCatch(retrieveViews("ns_bad", strrep("v", 5000)), error = conditionMessage))) {
    expect_match(err, "longer than 100 characters")
    expect_lt(nchar(err), 200)
  }
  # A stopped cluster is said to be stopped, not parallel's "invalid
  # connection" of summary.connection().
  stopped <- parallel::makeCluster(1)
  parallel::stopCluster(stopped)
  expect_error(memshare_gc("ns_bad", cluster = stopped),
               "`cluster` was stopped \\(parallel::stopCluster\\(\\)\\)")
  expect_error(memLapply(list(1), identity, CLUSTER = stopped),
               "`CLUSTER` was stopped \\(parallel::stopCluster\\(\\)\\)")
  registerVariables("ns_bad", list(a = 1))
  expect_error(registerVariables("ns_bad", list(b = 2, a = 3)), "'a' is registered")
  expect_identical(pageList(), list("ns_bad.a"))
  expect_error(retrieveViews("ns_bad", "nothing"), "no variable 'nothing' in namespace 'ns_bad'")
  expect_error(releaseVariables("ns_bad", "nothing"), "not registered")
  # Namespaces and names with any characters get distinct regions.
  registerVariables("ns.bad", list(a = 2))
  registerVariables("ns", list(bad.a = 3))
  expect_identical(unlist(retrieveViews("ns_bad", "a")), c(a = 1))
  expect_identical(unlist(retrieveViews("ns.bad", "a")), c(a = 2))
  expect_identical(unlist(retrieveViews("ns", "bad.a")), c(bad.a = 3))
  memshare_gc("ns_bad")
  memshare_gc("ns.bad")
  memshare_gc("ns")
  expect_identical(pageList(), list())
  expect_identical(viewList(), list())
  expect_identical(shm_files(), character())
})

test_that("memshare defects: MARGIN = 1, writes to views, views after release, errors", {
  skip_if_no_cluster()
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  cl <- parallel::makeCluster(2)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  m <- matrix(rnorm(60), 6, dimnames = list(paste0("r", 1:6), NULL))

  # memshare's MARGIN = 1 fails with "subscript out of bounds".
  rows <- memApply(m, 1, function(v, w) sum(v * w), NAMESPACE = "ns_rows", CLUSTER = cl,
                   VARS = list(w = as.double(1:10)))
  expect_equal(unlist(rows), unname(apply(m, 1, function(v) sum(v * 1:10))))
  # memshare's results are unnamed, whatever the dimnames of X.
  expect_null(names(rows))

  # memshare's views crash on writes; here they copy the written page.
  registerVariables("ns_write", list(m = m))
  written <- parallel::clusterEvalQ(cl, {
    v <- shmr::retrieveViews("ns_write", "m")$m
    v[1, 1] <- 99
    u <- shmr::retrieveViews("ns_write", "m")$m
    unname(c(v[1, 1], u[1, 1]))
  })
  expect_identical(written[[1]], c(99, unname(m[1, 1])))
  expect_identical(retrieveViews("ns_write", "m")$m, m)

  # memshare crashes on a view used after releaseViews().
  after <- parallel::clusterEvalQ(cl, {
    shmr::releaseViews("ns_write", "m")
    tryCatch(sum(u), error = conditionMessage)
  })
  expect_match(after[[1]], "closed")
  releaseViews("ns_write", "m")
  releaseVariables("ns_write", "m")

  # memshare prints errors and returns NA; here they stop the call, keep
  # their class, and what the call registered is released.
  fail <- function(el, k) {
    if (el == 3) stop(structure(class = c("my_error", "error", "condition"),
                                list(message = "three is bad", call = NULL)))
    el * k
  }
  expect_error(memLapply(as.list(1:5), fail, NAMESPACE = "ns_err", CLUSTER = cl,
                         VARS = list(k = 2)), "in element 3: three is bad", class = "my_error")
  expect_identical(pageList(), list())
  # The cluster keeps working.
  expect_identical(memLapply(list(a = 1, b = 2), fail, NAMESPACE = "ns_err", CLUSTER = cl,
                             VARS = list(k = 2)), list(2, 4))
  expect_identical(parallel::clusterEvalQ(cl, viewList()), list(list(), list()))
  expect_identical(shm_files(), character())
})

test_that("X and VARS by name, and FUN reaching the namespace it runs in", {
  skip_if_no_cluster()
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  cl <- parallel::makeCluster(1)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  registerVariables("ns_names", list(l = list(a = 1:3, b = 4:6), k = 10))
  expect_identical(memLapply("l", function(el, k) el * k, NAMESPACE = "ns_names", CLUSTER = cl,
                             VARS = "k"),
                   list(1:3 * 10, 4:6 * 10))
  # Without NAMESPACE, the namespace is the name of FUN; VARS given as
  # objects are registered there for the call.
  scale_by <- function(el, k) el * shmr::retrieveViews("scale_by", "k")$k
  expect_identical(memLapply(list(1, 2), scale_by, CLUSTER = cl, VARS = list(k = 3)), list(3, 6))
  expect_identical(pageList(), list("ns_names.l", "ns_names.k"))
  # A variable registered by another process is used by name.
  other <- start_worker()
  on.exit(other$close(), add = TRUE)
  other$run(function() registerVariables("ns_other", list(v = c(5, 6))))
  expect_identical(memLapply(1:2, function(el, v) el * v, NAMESPACE = "ns_other", CLUSTER = cl,
                             VARS = "v"),
                   list(c(5, 6), c(10, 12)))
  other$run(function() releaseVariables("ns_other", "v"))
  expect_error(memLapply(1:2, function(el, v) el, NAMESPACE = "ns_other", CLUSTER = cl,
                         VARS = "v"), "no variable 'v' in namespace 'ns_other'")
  releaseVariables("ns_names", c("l", "k"))
  expect_identical(shm_files(), character())
})

test_that("memApply() warns and uses as.matrix() for a data frame; results are unnamed", {
  skip_if_no_cluster()
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  cl <- parallel::makeCluster(1)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  df <- data.frame(a = c(1, 2, 3), b = c(10, 20, 30), row.names = c("x", "y", "z"))
  expect_warning(cols <- memApply(df, 2, function(v) sum(v), NAMESPACE = "ns_df", CLUSTER = cl),
                 "using as.matrix\\(X\\)")
  expect_identical(cols, list(6, 60))
  expect_warning(rows <- memApply(df, 1, function(v) v[["b"]] / v[["a"]], NAMESPACE = "ns_df",
                                  CLUSTER = cl), "matrix")
  expect_identical(rows, list(10, 10, 10))
  named <- matrix(1:4 + 0, 2, dimnames = list(c("r1", "r2"), c("c1", "c2")))
  expect_identical(memApply(named, 2, sum, NAMESPACE = "ns_df", CLUSTER = cl), list(3, 7))
  expect_identical(memLapply(list(a = 1, b = 2), function(el) el + 1, NAMESPACE = "ns_df",
                             CLUSTER = cl), list(2, 3))
  expect_identical(pageList(), list())
  expect_identical(shm_files(), character())
})

# mutualinfo(): memshare's values were computed with memshare 1.1.1 on R
# 4.5.0 (see each test). Without ScatterDensity, memshare::mutualinfo()
# warns "Please install package ScatterDensity." and returns NULL, which a
# caller (memApply()) takes for a value; shmr's stops and says what to
# install.
test_that("mutualinfo() without its suggested packages stops, naming the package to install", {
  skip_without_callr()
  lib <- tempfile("lib-")
  dir.create(lib)
  on.exit(unlink(lib, recursive = TRUE), add = TRUE)
  # A library with shmr and what it imports, and nothing else.
  for (pkg in c("shmr", "cli")) file.symlink(find.package(pkg), file.path(lib, pkg))
  got <- callr::r(function(lib) {
    .libPaths(c(lib, .Library))
    calls <- list(
      function() shmr::mutualinfo(1:10, 10:1, isXDiscrete = TRUE, isYDiscrete = TRUE),
      function() shmr::mutualinfo(rnorm(10), rnorm(10)),
      function() shmr::mutualinfo(rnorm(10), rep(1:2, 5), isYDiscrete = TRUE),
      function() shmr::mutualinfo(rnorm(10), rnorm(10), useMPMI = TRUE)
    )
    lapply(calls, function(f) {
      warnings <- character()
      value <- withCallingHandlers(tryCatch(f(), error = function(e) e), warning = function(w) {
        warnings <<- c(warnings, conditionMessage(w))
        invokeRestart("muffleWarning")
      })
      list(error = if (inherits(value, "error")) conditionMessage(value),
           call = if (inherits(value, "error")) conditionCall(value), warnings = warnings)
    })
  }, args = list(lib = lib), libpath = lib)
  needs <- function(pkg) sprintf("mutualinfo() needs the %s package: install it with install.packages(\"%s\")",
                                 pkg, pkg)
  for (g in got[1:3]) {
    expect_identical(g$error, needs("ScatterDensity"))
    expect_null(g$call)
    expect_identical(g$warnings, character())
  }
  # mpmi's estimators need mpmi only.
  expect_identical(got[[4]]$error, needs("mpmi"))
})

# Reference values: memshare::mutualinfo() of memshare 1.1.1 on R 4.5.0 with
# ScatterDensity 0.1.1, DataVisualizations 1.4.0 and mpmi from CRAN, on the
# data below (set.seed(42); printed with sprintf("%.17g")).
mutualinfo_data <- function() {
  set.seed(42)
  n <- 600
  cls <- sample(1:3, n, replace = TRUE)
  xc <- rnorm(n) + 2 * cls
  yc <- xc + rnorm(n)
  xd <- sample(1:4, n, replace = TRUE)
  yd <- (xd + sample(0:1, n, replace = TRUE)) %% 4
  list(cls = cls, xc = xc, yc = yc, xd = xd, yd = yd)
}

test_that("mutualinfo() of discrete variables is memshare's, NA and na.rm included", {
  skip_if_not_installed("ScatterDensity")
  skip_if_not_installed("DataVisualizations")
  d <- mutualinfo_data()
  quietly <- function(expr) suppressWarnings(expr) # ScatterDensity's "outside of bins"
  expect_equal(quietly(mutualinfo(d$xd, d$yd, isXDiscrete = TRUE, isYDiscrete = TRUE)),
               1.106262874219009, tolerance = 1e-8)
  expect_warning(expect_warning(mutualinfo(d$xd, d$yd, isXDiscrete = TRUE, isYDiscrete = TRUE),
                                "x counts outside of bins"), "y counts outside of bins")
  # Missing values: left out of the table but counted (na.rm = FALSE), or
  # dropped with their pairs (na.rm = TRUE); memshare's values for the
  # vectors below.
  set.seed(42)
  invisible(rnorm(50))
  k <- c(1, sample(1:2, 50, TRUE))
  kd <- c(NA, sample(1:3, 50, TRUE))
  expect_equal(quietly(mutualinfo(kd, k, TRUE, TRUE)), 0.48575532695719098, tolerance = 1e-8)
  expect_equal(quietly(mutualinfo(kd, k, TRUE, TRUE, na.rm = TRUE)), 0.48004309131007827,
               tolerance = 1e-8)
  expect_identical(mutualinfo(c(1, 2), c(2, 1), TRUE, TRUE), 0)
  expect_identical(mutualinfo(rep(1, 50), d$xd[1:50], TRUE, TRUE), 0)
})

test_that("mutualinfo() of continuous and of mixed variables is memshare's, eps included", {
  skip_if_not_installed("ScatterDensity")
  skip_if_not_installed("DataVisualizations")
  d <- mutualinfo_data()
  expect_equal(mutualinfo(d$xc, d$yc), 0.40307339676107939, tolerance = 1e-8)
  expect_equal(mutualinfo(d$yc, d$xc), 0.40307339676107939, tolerance = 1e-8)
  expect_equal(mutualinfo(d$xc, d$cls, isYDiscrete = TRUE), 0.54013466774405328, tolerance = 1e-8)
  expect_equal(mutualinfo(d$cls, d$xc, isXDiscrete = TRUE), 0.54013466774405328, tolerance = 1e-8)
  # eps leaves out the cells of low density: memshare's values for the same
  # data with eps = 1e-6 and 1e-3.
  expect_equal(mutualinfo(d$xc, d$yc, eps = 1e-6), 0.4031222777605532, tolerance = 1e-8)
  expect_equal(mutualinfo(d$xc, d$yc, eps = 1e-3), 0.41504206167056662, tolerance = 1e-8)
  expect_equal(mutualinfo(d$xc, d$cls, isYDiscrete = TRUE, eps = 1e-6), 0.54013703627969079,
               tolerance = 1e-8)
  expect_equal(mutualinfo(d$xc, d$cls, isYDiscrete = TRUE, eps = 1e-3), 0.54152602847570908,
               tolerance = 1e-8)
  # A variable whose standard deviation is below eps carries no information
  # (sd(xc) is 1.83): memshare gives 0 in every mode.
  expect_identical(mutualinfo(d$xc, d$yc, eps = 1.9), 0)
  expect_identical(mutualinfo(rep(1, 50), rnorm(50)), 0)
  # memshare's main example (memshare: 1.0201059359313873).
  set.seed(3)
  x <- c(rnorm(1000), rnorm(2000) + 8, rnorm(1000) * 2 - 8)
  y <- c(rep(1, 1000), rep(2, 2000), rep(3, 1000))
  expect_equal(mutualinfo(x, y, isXDiscrete = FALSE, isYDiscrete = TRUE), 1.0201059359313873,
               tolerance = 1e-8)
  # Complete pairs only with na.rm = TRUE; a clear error without it.
  expect_equal(mutualinfo(c(NA, d$xc), c(1, d$yc), na.rm = TRUE), 0.40307339676107939,
               tolerance = 1e-8)
  expect_error(mutualinfo(c(NA, d$xc), c(1, d$yc)), "na.rm = TRUE")
})

test_that("mutualinfo(useMPMI = TRUE) is memshare's", {
  skip_if_not_installed("ScatterDensity")
  skip_if_not_installed("DataVisualizations")
  skip_if_not_installed("mpmi")
  d <- mutualinfo_data()
  expect_equal(mutualinfo(d$xc, d$yc, useMPMI = TRUE), 0.69099969195150557, tolerance = 1e-8)
  expect_equal(mutualinfo(d$xd, d$yd, TRUE, TRUE, useMPMI = TRUE), 0.69638116668843786,
               tolerance = 1e-8)
  expect_equal(mutualinfo(d$xc, d$cls, isYDiscrete = TRUE, useMPMI = TRUE),
               0.56044693057769734, tolerance = 1e-8)
  expect_identical(mutualinfo(d$xc, d$yc, useMPMI = TRUE, eps = 1.9), 0)
})

test_that("releasing a variable with a close() method of its own (a connection) leaves it open", {
  con <- file(tempfile(), "w")
  on.exit(close(con))
  namespace <- paste0("conn", Sys.getpid())
  # A connection is an integer vector with a class: registered as a double
  # vector, as memshare does, with its warning.
  expect_warning(registerVariables(namespace, list(a = con)), "converted to double")
  releaseVariables(namespace, "a")
  expect_true(isOpen(con))
})

test_that("a variable another process registered is refused naming the variable, and nothing is left", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  worker <- start_worker()
  on.exit(worker$close(), add = TRUE)
  worker$run(function() registerVariables("ns_taken", list(v = c(1, 2))))
  # memshare says "Variable was already registered!"; the region's name
  # (shmr_memshare.ns_taken.v) is nothing the user made.
  err <- tryCatch(registerVariables("ns_taken", list(a = 3, v = c(3, 4))), error = conditionMessage)
  expect_match(err, "variable 'v' is registered in namespace 'ns_taken' already, by another process")
  expect_identical(pageList(), list())
  expect_identical(unname(retrieveViews("ns_taken", "v")), list(c(1, 2)))
  releaseViews("ns_taken", "v")
  worker$run(function() releaseVariables("ns_taken", "v"))
  registerVariables("ns_taken", list(v = c(3, 4)))
  expect_identical(worker$run(function() retrieveViews("ns_taken", "v")$v), c(3, 4))
  releaseVariables("ns_taken", "v")
  expect_identical(shm_files(), character())
})
