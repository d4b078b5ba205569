# Code written for bettermc's copy2shm() / allocate_from_shm(): its
# documented example, unchanged, and the defects bettermc shows. Each test
# uses a private shm directory: the names are fixed, and what is left
# behind is listed exactly.

test_that("bettermc's documented example gives the documented result", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  if (tolower(Sys.info()[["sysname"]]) != "windows") {
    x <- runif(100)
    obj <- copy2shm(x, "/random")
    if (inherits(obj, "shm_obj")) {
      # copy2shm succeeded
      y <- allocate_from_shm(obj)
      stopifnot(identical(x, y))
    } else {
      # copy2shm failed -> print the error message
      print(obj)
    }
  }
  expect_s3_class(obj, "shm_obj")
  expect_identical(y, x)
  expect_identical(shm_files(), character())
})

test_that("shm_obj describes every supported type, and allocation restores it exactly", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  values <- list(
    logical = c(TRUE, NA, FALSE), integer = c(a = 1L, b = NA), double = c(1.5, NaN, -Inf),
    complex = complex(real = 1:2, imaginary = -1), raw = as.raw(0:255),
    factor = factor(c("lo", "hi", "lo"), levels = c("lo", "hi")),
    date = as.Date("2024-01-01") + 0:2,
    matrix = matrix(1:6, 2, dimnames = list(c("r1", "r2"), c("a", "b", "c"))),
    s3 = structure(c(10, 20), class = "my_measure", unit = "cm"),
    empty = double()
  )
  types <- c(logical = 10L, integer = 13L, double = 14L, complex = 15L, raw = 24L,
             factor = 13L, date = 14L, matrix = 13L, s3 = 14L, empty = 14L)
  for (kind in names(values)) {
    x <- values[[kind]]
    for (copy in c(TRUE, FALSE)) {
      name <- sprintf("/bmc_%s_%s", kind, copy)
      obj <- copy2shm(x, name, copy = copy)
      expect_s3_class(obj, "shm_obj")
      expect_identical(names(obj), c("name", "type", "length", "size", "attributes", "copy"))
      expect_identical(obj$name, name)
      expect_identical(obj$type, types[[kind]], info = kind)
      expect_identical(obj$length, as.numeric(length(x)))
      expect_identical(obj$size, file.size(file.path(Sys.getenv("SHMR_SHM_DIR"),
                                                     paste0("shmr", sub("/", "_", name)))))
      expect_identical(obj$attributes, as.pairlist(attributes(x)), info = kind)
      expect_identical(obj$copy, copy)
      y <- allocate_from_shm(obj)
      expect_identical(y, x, info = paste(kind, copy))
      expect_identical(is_shared(y), !copy, info = paste(kind, copy))
    }
  }
  expect_identical(shm_files(), character())
})

test_that("a vector copied in a child process is allocated in the parent, once", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  obj <- in_other_process(function() copy2shm(c(x = 1, y = 2, z = 3), "/from_child"))
  expect_identical(shm_files(), "shmr_from_child") # the child has exited
  y <- allocate_from_shm(obj)
  expect_identical(y, c(x = 1, y = 2, z = 3))
  expect_identical(shm_files(), character())
  expect_error(allocate_from_shm(obj), "'shm_open' failed for '/from_child'")
  expect_error(allocate_from_shm(unclass(obj)), "returned by copy2shm")
})

test_that("copy = FALSE maps privately: no copy, writes stay in the writer and its children", {
  skip_on_cran()
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  n <- 8e6 # 64 MB
  obj <- in_other_process(function(n) copy2shm(seq(0, 1, length.out = n), "/big", copy = FALSE),
                          list(n = n))
  got <- in_other_process(function(obj) {
    before <- shmr:::process_memory()[["anonymous"]]
    y <- allocate_from_shm(obj)
    total <- sum(y)
    grown <- shmr:::process_memory()[["anonymous"]] - before
    child <- parallel::mcparallel({
      y[1] <- 99
      y[1]
    })
    in_child <- parallel::mccollect(child)[[1]]
    after_child <- y[1]
    y[2] <- 5
    list(total = total, grown = grown, in_child = in_child, after_child = after_child,
         written = y[1:2], sent = unserialize(serialize(y[1:3], NULL)),
         sent_whole = length(serialize(y, NULL)))
  }, list(obj = obj))
  expect_equal(got$total, sum(seq(0, 1, length.out = n)))
  expect_lt(got$grown, 16 * 2^20) # far less than the 64 MB a copy takes
  expect_identical(got$in_child, 99)
  expect_identical(got$after_child, 0)
  expect_identical(got$written, c(0, 5))
  # It serializes by value: its region's name is gone.
  expect_gt(got$sent_whole, 8 * n)
  expect_identical(shm_files(), character())
})

test_that("a vector allocated with copy = FALSE has no name, and share() gives it one another process maps", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  obj <- copy2shm(c(1.5, 2.5, 3.5), "/handed_on")
  y <- allocate_from_shm(obj, copy = FALSE)
  # Its object's name was removed when it was allocated: a name for it
  # would open nothing (or, once the name is taken again, other data).
  expect_null(shared_name(y))
  # So share() writes it to a region of its own instead of handing it back.
  shared <- share(y)
  name <- shared_name(shared)
  expect_false(is.null(name))
  expect_identical(in_other_process(function(name) map_shared(name), list(name = name)),
                   c(1.5, 2.5, 3.5))
  close(shared)
  expect_identical(shm_files(), character())
})

test_that("a failure is an R error and leaves nothing behind", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  expect_error(copy2shm(letters, "/chars"), "not of type character")
  expect_error(copy2shm(list(1), "/list"), "not of type list")
  expect_error(copy2shm(function() 1, "/fun"), "not a function")
  expect_error(copy2shm(data.frame(a = 1), "/df"), "not of type list")
  expect_identical(shm_files(), character())
  for (bad in list("/", "/a/b", "/with space", NA_character_, 1, c("/a", "/b"),
                   paste0("/", strrep("a", 101)))) {
    expect_error(copy2shm(1:3, bad), "shared memory name must be", label = deparse(bad))
  }
  expect_identical(shm_files(), character())

  first <- copy2shm(1:3, "/taken")
  expect_error(copy2shm(4:6, "/taken"), "exists already")
  expect_identical(shm_files(), "shmr_taken")
  expect_identical(allocate_from_shm(first), 1:3) # the first object is intact
  copy2shm(1:3, "/taken")
  replaced <- copy2shm(7:9, "/taken", overwrite = TRUE)
  expect_identical(allocate_from_shm(replaced), 7:9)
  expect_identical(shm_files(), character())
})

test_that("\"/shmr_a\" and \"/a\" are two objects, as in bettermc", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  # Before, both were the region shmr_a: the second copy2shm() failed, and
  # with overwrite = TRUE it destroyed the first object.
  prefixed <- copy2shm(1:3, "/shmr_a")
  plain <- copy2shm(c(9, 9), "/a")
  expect_identical(sort(shm_files()), c("shmr_a", "shmr_shmr_a"))
  expect_identical(allocate_from_shm(prefixed), 1:3)
  expect_identical(shm_files(), "shmr_a")
  expect_identical(allocate_from_shm(plain), c(9, 9))
  for (first in c("/a", "/shmr_a")) {
    second <- setdiff(c("/a", "/shmr_a"), first)
    kept <- copy2shm(1:3, first)
    replaced <- copy2shm(c(9, 9), second, overwrite = TRUE)
    expect_identical(allocate_from_shm(kept), 1:3, info = first)
    expect_identical(allocate_from_shm(replaced), c(9, 9), info = first)
  }
  # With or without the leading "/", one name.
  o <- copy2shm(1:3, "shmr_a")
  expect_error(copy2shm(1:3, "/shmr_a"), "exists already")
  o$name <- "/shmr_a"
  expect_identical(allocate_from_shm(o), 1:3)
  # The longest names, also those that start with "shmr_".
  for (name in c(paste0("/shmr_", strrep("n", 95)), paste0("/", strrep("n", 100)))) {
    o <- copy2shm(1:3, name, copy = FALSE)
    expect_identical(shm_files(), paste0("shmr_", sub("/", "", name)))
    expect_identical(allocate_from_shm(o), 1:3)
  }
  expect_identical(shm_files(), character())
})

test_that("a full /dev/shm is an R error and leaves nothing behind", {
  skip_on_cran()
  skip_if_not(small_tmpfs_available(), "cannot mount a private tmpfs here")
  got <- in_small_shm(c(
    "library(shmr)",
    "res <- tryCatch(copy2shm(rnorm(1e6), '/too_big'), error = conditionMessage)",
    "left <- list.files(Sys.getenv('SHMR_SHM_DIR'), all.files = TRUE, no.. = TRUE)",
    "list(res = res, left = left)"
  ))
  expect_type(got$res, "character")
  expect_match(got$res, "not enough space")
  expect_identical(got$left, character())
})

test_that("long vectors are copied and allocated without a copy", {
  skip_on_cran()
  skip_unless_shm_free(4 * 2^30)
  n <- 2^31 + 5
  x <- raw(n)
  x[n] <- as.raw(7)
  name <- sprintf("/bmc_long_%d", Sys.getpid())
  obj <- copy2shm(x, name)
  rm(x)
  gc()
  expect_identical(obj$length, n)
  y <- allocate_from_shm(obj, copy = FALSE)
  expect_identical(length(y), n)
  expect_identical(y[n], as.raw(7))
  expect_identical(y[n - 1], as.raw(0))
  close(y)
})

test_that("allocate_from_shm() checks the shm_obj against its object, as bettermc does", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  for (copy in c(TRUE, FALSE)) {
    edits <- list(
      list(field = "length", value = 11, error = "'alloc_from_shm' refuses the shm_obj: it says 11"),
      list(field = "type", value = 0, error = "unsupported SEXP type 0"),
      list(field = "type", value = 14L, error = "says type double, but '/bmc_edit' holds a vector of type integer"),
      list(field = "size", value = 1024^2 + 1, error = "wrong size"),
      list(field = "size", value = 100, error = "wrong size")
    )
    for (edit in edits) {
      o <- copy2shm(1:10, "/bmc_edit", copy = copy)
      o[[edit$field]] <- edit$value
      expect_error(allocate_from_shm(o), edit$error, fixed = TRUE, info = edit$field)
      # The name is gone all the same, as in bettermc: the name can be used again.
      expect_identical(shm_files(), character())
    }
    # The attributes of the shm_obj are those the vector gets.
    o <- copy2shm(c(a = 1, b = 2), "/bmc_edit", copy = copy)
    o$attributes <- pairlist(names = c("x", "y"), unit = "cm")
    expect_identical(allocate_from_shm(o), structure(c(x = 1, y = 2), unit = "cm"))
    o <- copy2shm(c(a = 1, b = 2), "/bmc_edit", copy = copy)
    o$attributes <- NULL
    expect_identical(allocate_from_shm(o), c(1, 2))
  }
  expect_identical(shm_files(), character())
})

test_that("copy2shm() and allocate_from_shm() errors name shm_open, as bettermc's", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  o <- copy2shm(1:3, "/bmc_taken")
  expect_error(copy2shm(1:3, "/bmc_taken"), "'shm_open' failed for '/bmc_taken': a shared memory object of that name exists")
  expect_error(copy2shm(1:3, "/a/b"), "copy2shm(): 'shm_open' cannot use '/a/b'", fixed = TRUE)
  # '.' and '..' are made of allowed characters: the message says why they are refused.
  expect_error(copy2shm(1:3, "/.."), "cannot use '/..': .*other than '.' and '..'")
  o$name <- "/bmc_missing_test"
  expect_error(allocate_from_shm(o), "'shm_open' failed for '/bmc_missing_test': no such shared memory object")
  o$name <- "/bmc_taken"
  expect_identical(allocate_from_shm(o), 1:3)
  expect_error(copy2shm(list(1), "/bmc_list"), "unsupported SEXP type for 'x'")
  # A long name is cut in the message; it was quoted whole.
  err <- tryCatch(copy2shm(1:3, paste0("/", strrep("n", 5000))), error = conditionMessage)
  expect_match(err, "copy2shm(): 'shm_open' cannot use '/nnn", fixed = TRUE)
  expect_lt(nchar(err), 300)
  # A hand-made shm_obj without `copy` is a mistake in `obj`; before, the
  # error was about the argument `copy`, which the caller never gave.
  err <- tryCatch(allocate_from_shm(structure(list(name = "/x"), class = "shm_obj")),
                  error = conditionMessage)
  expect_identical(err, "`obj` must be an object returned by copy2shm(): its `copy` is not TRUE or FALSE")
  expect_identical(shm_files(), character())
})

test_that("the bettermc page lists every bettermc function shmr does not provide", {
  rd <- tools::Rd_db("shmr")[["compat-bettermc.Rd"]]
  text <- paste(capture.output(tools::Rd2txt(rd, options = list(underline_titles = FALSE))),
                collapse = " ")
  bettermc_exports <- c("allocate_from_shm", "char_map", "compress_chars", "copy2shm",
                        "crash_dumps", "etry", "map2char", "mclapply", "sem_close", "sem_open",
                        "sem_post", "sem_unlink", "sem_wait", "semv_open", "semv_post",
                        "semv_unlink", "semv_wait", "uncompress_chars")
  missing <- setdiff(bettermc_exports, getNamespaceExports("shmr"))
  for (f in missing) expect_match(text, paste0(f, "()"), fixed = TRUE, info = f)
})

test_that("an object with a close() method of its own (a connection) is left alone", {
  path <- tempfile()
  con <- file(path, "w")
  on.exit(close(con))
  name <- paste0("/shmr_test_conn_", Sys.getpid())
  obj <- copy2shm(con, name)
  expect_true(isOpen(con))
  writeLines("still writable", con)
  flush(con)
  expect_identical(readLines(path), "still writable")
  # A name that starts with "shmr_" is allocated (and so removed) too.
  expect_identical(nrow(shared_regions(paste0("shmr", sub("/", "_", name)))), 1L)
  allocate_from_shm(obj)
  expect_identical(nrow(shared_regions(paste0("shmr", sub("/", "_", name)))), 0L)
})
