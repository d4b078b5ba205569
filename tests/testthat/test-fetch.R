test_that("fetch() returns an ordinary deep copy with no ALTREP inside", {
  original <- list(
    v = setNames(rnorm(100), paste0("n", 1:100)),
    s = c("a", NA, "b"),
    df = data.frame(a = 1:5, f = factor(letters[1:5]), stringsAsFactors = FALSE),
    nested = list(list(m = matrix(1:6, 2, dimnames = list(c("r1", "r2"), NULL))))
  )
  shared <- share(original)
  expect_true(shmr:::contains_altrep(shared))
  copy <- fetch(shared)
  expect_false(shmr:::contains_altrep(copy))
  expect_identical(copy, original)
  expect_false(is_shared(copy))
  close(shared)
  expect_identical(copy, original)
})

test_that("fetch() of an ordinary object is a copy of it", {
  x <- list(1:3, "a")
  expect_identical(fetch(x), x)
  expect_false(shmr:::contains_altrep(fetch(1:10)))
})

test_that("fetch() copies an S4 object's slots and a pairlist's cells: usable after close()", {
  setClass("shmrFetchSlots", representation(x = "numeric", inner = "list"), where = globalenv())
  on.exit(removeClass("shmrFetchSlots", where = globalenv()), add = TRUE)
  s4 <- new("shmrFetchSlots", x = as.numeric(seq_len(2e4)), inner = list(y = as.numeric(seq_len(2e4)) * 2))
  cells <- pairlist(a = as.numeric(seq_len(1e4)), b = "x", c = pairlist(d = as.numeric(seq_len(1e4)) + 1))
  for (value in list(s4, cells, list(s4 = s4, cells = cells))) {
    shared <- share(value)
    copy <- fetch(shared)
    expect_false(shmr:::contains_altrep(copy))
    close(shared)
    # Before, these still read the closed region ("was closed").
    expect_identical(copy, value)
    expect_identical(unserialize(serialize(copy, NULL)), value)
  }
})
