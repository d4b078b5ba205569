# share() of objects without data of their own: NULL, functions,
# environments, formulas, calls, external pointers, and S4 and S7 objects
# that are not vectors.

test_that("a named or persistent share of something without data is an error", {
  # An external pointer was stored serialized: under a name it published
  # nothing (map_shared() gave NULL), and a persistent one stayed for good.
  cases <- list(NULL = NULL, fun = function(x) x + 1, env = new.env(), formula = y ~ x,
                call = quote(f(x)), pointer = new("externalptr"))
  for (label in names(cases)) {
    name <- paste0("nondata_", label, "_", Sys.getpid())
    expect_error(share(cases[[label]], name = name), "holds no data", info = label)
    expect_error(share(cases[[label]], persist = TRUE), "share a list that holds it", info = label)
    expect_false(region_exists(paste0("shmr_", name)), info = label)
    # Nothing was published: the prefixed name is an error, the bare name
    # (which may not be a shmr name at all) NULL, as ?map_shared says.
    expect_error(map_shared(paste0("shmr_", name)), "no shared region", info = label)
    expect_null(map_shared(name), info = label)
    # Without a name it comes back as it is.
    expect_identical(share(cases[[label]]), cases[[label]], info = label)
  }
  # Inside a list it is shared, and maps by name in another process.
  name <- paste0("nondata_list_", Sys.getpid())
  held <- share(list(f = function(x) x + 1, v = as.numeric(1:3)), name = name)
  got <- in_other_process(function(name) map_shared(name)$f(1), list(name = name))
  expect_identical(got, 2)
  close(held)
})

test_that("an S4 object shares its data; a small one comes back as it is", {
  setClass("ShmrTestHolder", representation(values = "numeric", label = "character"),
           where = globalenv())
  on.exit(removeClass("ShmrTestHolder", where = globalenv()), add = TRUE)
  big <- new("ShmrTestHolder", values = as.numeric(seq_len(1e5)), label = "big")
  shared <- share(big, min_bytes = 1000)
  expect_silent(validObject(shared))
  expect_true(is_shared(shared))
  expect_false(is.null(shared_name(shared@values)))
  expect_identical(shared@values, big@values)
  expect_identical(shared@label, "big")
  expect_identical(shared_info(shared)$n_regions, 1L)
  got <- in_other_process(function(x) sum(x@values), list(x = shared))
  expect_identical(got, sum(as.numeric(seq_len(1e5))))
  close(shared)

  small <- new("ShmrTestHolder", values = 1:3 + 0, label = "small")
  same <- share(small, min_bytes = 1000)
  expect_identical(same, small)
  expect_false(is_shared(same))
  expect_error(share(big, name = paste0("s4_", Sys.getpid())), "an S4 object cannot be shared")
})

test_that("an object of type \"object\" without the S4 bit (an S7 object) shares its data as S4 does", {
  # S7 objects are such objects: all their data in attributes, and on
  # R >= 4.4 typeof() calls them "object", not "S4". share() once stored
  # them serialized and returned a private copy, shared in no way (the
  # whole object in every serialize()), and under a name published nothing.
  setClass("ShmrTestHolderS3", representation(values = "numeric", label = "character"),
           where = globalenv())
  on.exit(removeClass("ShmrTestHolderS3", where = globalenv()), add = TRUE)
  big <- structure(asS3(new("ShmrTestHolderS3", values = as.numeric(seq_len(1e5)),
                            label = "big"), complete = FALSE),
                   class = "shmr_s7_like")
  expect_false(isS4(big))
  shared <- share(big, min_bytes = 1000)
  expect_identical(shared, big)
  expect_false(isS4(shared))
  expect_true(is_shared(shared))
  expect_true(is_shared(attr(shared, "values")))
  expect_lt(length(serialize(shared, NULL)), 2000)
  got <- in_other_process(function(x) c(sum(attr(x, "values")), is_shared(attr(x, "values"))),
                          list(x = shared))
  expect_identical(got, c(sum(as.numeric(seq_len(1e5))), 1))
  close(shared)
  expect_error(share(big, name = paste0("s7like_", Sys.getpid())),
               "an object whose data are all in its attributes")
  expect_false(region_exists(paste0("shmr_s7like_", Sys.getpid())))
})

test_that("an S7 object shares its properties and keeps its class as it is", {
  skip_if_not_installed("S7")
  # A class defined in a function: its constructor's environment is that
  # function's frame, which holds the constructor (a cycle for the walk)
  # and anything else the frame holds. The class is code, not data.
  make_class <- function() {
    unrelated <- as.numeric(seq_len(2e5))
    made <- S7::new_class("ShmrTestS7", properties = list(values = S7::class_double))
    made
  }
  holder <- make_class()
  x <- holder(values = as.numeric(seq_len(1e5)))
  for (deep in c(FALSE, TRUE)) {
    shared <- share(x, deep = deep, min_bytes = 1000)
    # S7::prop(): `@` reaches S7 properties only on R >= 4.3.
    expect_true(is_shared(S7::prop(shared, "values")), info = paste("deep =", deep))
    expect_identical(S7::prop(shared, "values"), S7::prop(x, "values"), info = paste("deep =", deep))
    expect_identical(attr(shared, "S7_class"), attr(x, "S7_class"), info = paste("deep =", deep))
    expect_true(S7::S7_inherits(shared, holder), info = paste("deep =", deep))
    expect_identical(shared_info(shared)$n_regions, 1L, info = paste("deep =", deep))
    close(shared)
  }
})

test_that("an S4 object that extends a list or a data frame shares its elements and stays S4", {
  # It was stored serialized: the result was a private copy, sent whole to
  # workers, and under a name or persist = TRUE a region no one could find
  # (map_shared() of the name gave NULL on R >= 4.3; a persistent one stayed
  # in /dev/shm for good).
  setClass("ShmrTestList", contains = "list", representation(tag = "character"),
           where = globalenv())
  setClass("ShmrTestFrame", contains = "data.frame", representation(tag = "character"),
           where = globalenv())
  on.exit({
    removeClass("ShmrTestList", where = globalenv())
    removeClass("ShmrTestFrame", where = globalenv())
  }, add = TRUE)
  values <- as.numeric(seq_len(1e5))
  cases <- list(list = new("ShmrTestList", list(a = values, b = letters), tag = "l"),
                frame = new("ShmrTestFrame", data.frame(a = values), tag = "f"))
  for (label in names(cases)) {
    x <- cases[[label]]
    # This process's regions: other processes on the machine (another R's
    # test suite, say) make and remove theirs meanwhile.
    own_regions <- function() with(shared_regions(), name[creator_pid == Sys.getpid()])
    before <- own_regions()
    shared <- share(x, min_bytes = 1000)
    expect_true(isS4(shared), info = label)
    expect_identical(shared, x, info = label)
    expect_true(is_shared(shared$a), info = label)
    expect_lt(length(serialize(shared, NULL)), 5000)
    got <- in_other_process(function(x) c(isS4(x), sum(x$a), is_shared(x$a)), list(x = shared))
    expect_identical(got, c(1, sum(values), 1), info = label)
    close(shared)
    name <- paste0("s4list_", label, "_", Sys.getpid())
    expect_error(share(x, name = name), "an S4 object cannot be shared", info = label)
    expect_error(share(x, persist = TRUE), "an S4 object cannot be shared", info = label)
    expect_false(region_exists(paste0("shmr_", name)), info = label)
    expect_identical(setdiff(own_regions(), before), character(0), info = label)
  }
})

test_that("an S4 object that is a vector is shared, by name too, and stays S4", {
  setClass("ShmrTestNum", contains = "numeric", representation(unit = "character"),
           where = globalenv())
  on.exit(removeClass("ShmrTestNum", where = globalenv()), add = TRUE)
  x <- new("ShmrTestNum", as.numeric(seq_len(1e5)), unit = "m")
  name <- paste0("s4num_", Sys.getpid())
  for (given in list(NULL, name)) {
    shared <- share(x, name = given)
    expect_true(is_shared(shared))
    expect_true(isS4(shared))
    expect_identical(shared, x)
    expect_identical(shared@unit, "m")
    expect_silent(validObject(shared))
    expect_lt(length(serialize(shared, NULL)), 1000)
    got <- in_other_process(function(x, name) {
      library(methods)
      setClass("ShmrTestNum", contains = "numeric", representation(unit = "character"))
      mapped <- map_shared(name)
      list(sent = c(isS4(x), is_shared(x), sum(x)), unit = x@unit,
           mapped = c(isS4(mapped), sum(mapped)), mapped_unit = mapped@unit)
    }, list(x = shared, name = shared_name(shared)))
    expect_identical(got$sent, c(1, 1, sum(x@.Data)))
    expect_identical(got$unit, "m")
    expect_identical(got$mapped, c(1, sum(x@.Data)))
    expect_identical(got$mapped_unit, "m")
    close(shared)
  }
  deep <- share(list(a = x), deep = TRUE, min_bytes = 1000)
  expect_true(is_shared(deep$a))
  expect_true(isS4(deep$a))
  expect_identical(deep$a, x)
  close(deep)
})
