# A corrupted or truncated region gives a clear R error, never a crash or an
# object that reads outside the region. The corrupted copies are made of a
# real region in a private directory (SHMR_SHM_DIR) of another process, so
# nothing here touches real regions (helper-corrupt.R). Mutations are
# expressions computing new bytes from the region's bytes `b`.

test_that("flipped header fields are rejected, or harmless", {
  rejected <- corrupt_and_map(list(
    magic = quote({ b[2] <- as.raw(0); b }),
    version = quote(put_u32(b, HEADER[["version"]], 99)),
    version_zero = quote(put_u32(b, HEADER[["version"]], 0)),
    header_size = quote(put_u32(b, HEADER[["header_size"]], 64)),
    total_size_bigger = quote(put_u64(b, HEADER[["total_size"]], length(b) + 64)),
    total_size_huge = quote(put_u64(b, HEADER[["total_size"]], 2^62)),
    node_count_zero = quote(put_u64(b, HEADER[["node_count"]], 0)),
    node_count_huge = quote(put_u64(b, HEADER[["node_count"]], 1e12)),
    node_count_past_end = quote(put_u64(b, HEADER[["node_count"]], length(b) / 64 - 1)),
    node_table_past_end = quote(put_u64(b, HEADER[["node_table"]], length(b))),
    node_table_huge = quote(put_u64(b, HEADER[["node_table"]], 2^60)),
    node_table_misaligned = quote(put_u64(b, HEADER[["node_table"]], u64(b, HEADER[["node_table"]]) + 1)),
    root_out_of_range = quote(put_u64(b, HEADER[["root"]], u64(b, HEADER[["node_count"]]))),
    root_huge = quote(put_u64(b, HEADER[["root"]], 2^52))
  ), via_unserialize = TRUE)
  expect_all_rejected(rejected)
  expect_match(rejected$magic$message, "magic")
  expect_match(rejected$version$message, "format version is 99")
  expect_match(rejected$header_size$message, "header size")
  expect_match(rejected$total_size_bigger$message, "truncated")
  expect_match(rejected$node_count_zero$message, "no nodes")
  expect_match(rejected$node_count_huge$message, "node count")
  expect_match(rejected$node_table_past_end$message, "node table lies outside")
  expect_match(rejected$node_table_misaligned$message, "node table is misaligned")
  expect_match(rejected$root_out_of_range$message, "root node")
  # A worker unserializing a view of the region gets the same clear error.
  for (label in names(rejected)) {
    expect_false(rejected[[label]]$unserialized$ok, label = label)
    expect_match(rejected[[label]]$unserialized$message, "^shmr: .*corrupt", label = label)
  }

  # Informational fields (creator, time, class) and the flags only change
  # how the region is listed and mapped, never what it holds.
  harmless <- corrupt_and_map(list(
    pid = quote(put_u64(b, HEADER[["pid"]], 2^40)),
    ticks = quote(put_u64(b, HEADER[["ticks"]], 12345)),
    created = quote(put_u64(b, HEADER[["created"]], 2^52)),
    class_garbage = quote({ b[HEADER[["class"]] + 1:48] <- as.raw(0xff); b }),
    flags_writable = quote({ b[HEADER[["flags"]] + 1] <- as.raw(0); b }),
    # Every flag but "replica" (bit 2), which says a replica record follows.
    flags_all = quote({ b[HEADER[["flags"]] + 1:8] <- as.raw(0xff); b[HEADER[["flags"]] + 1] <- as.raw(0xfb); b })
  ))
  for (label in names(harmless)) {
    expect_true(harmless[[label]]$ok, label = label)
    expect_true(harmless[[label]]$same, label = label)
  }
})

test_that("a replica flag without a replica record is rejected", {
  got <- corrupt_and_map(list(
    replica_flag = quote({ b[HEADER[["flags"]] + 1] <- as.raw(as.integer(b[HEADER[["flags"]] + 1]) + 4L); b })
  ))
  expect_all_rejected(got, "replica record")
})

test_that("truncated and extended files are rejected", {
  got <- corrupt_and_map(list(
    empty = quote(raw(0)),
    one_byte = quote(b[1]),
    half_header = quote(b[1:64]),
    header_minus_one = quote(b[1:127]),
    header_only = quote(b[1:128]),
    half = quote(b[seq_len(length(b) %/% 2)]),
    minus_64 = quote(b[seq_len(length(b) - 64)]),
    minus_1 = quote(b[seq_len(length(b) - 1)]),
    plus_64 = quote(c(b, raw(64)))
  ), via_unserialize = TRUE)
  expect_all_rejected(got)
  expect_match(got$empty$message, "shorter than a region header")
  expect_match(got$header_minus_one$message, "shorter than a region header")
  expect_match(got$minus_64$message, "truncated")
  # A file longer than its header says is not called truncated.
  expect_match(got$plus_64$message, "extended")
  expect_no_match(got$plus_64$message, "truncated")
  for (label in names(got)) {
    expect_match(got[[label]]$unserialized$message, "^shmr: .*corrupt", label = label)
  }
})

test_that("offsets past the end of the region are rejected", {
  past <- function(kind, field, with_attributes = FALSE, value = quote(length(b) + 4096)) {
    bquote(put_u64(b, field_at(b, .(kind), .(field), .(with_attributes)), .(value)))
  }
  got <- corrupt_and_map(list(
    double_data = past("double", "data_offset"),
    double_data_at_start = past("double", "data_offset", value = 0),
    integer_data = past("integer", "data_offset"),
    logical_data = past("logical", "data_offset"),
    raw_data = past("raw", "data_offset"),
    complex_data = past("complex", "data_offset"),
    string_index = past("string", "index_offset"),
    string_meta = past("string", "meta_offset"),
    string_bytes = past("string", "data_offset"),
    list_elements = past("list", "data_offset"),
    serialized_data = past("serialized", "data_offset"),
    attribute_table = past("integer", "attr_offset", TRUE),
    attribute_table_huge = past("integer", "attr_offset", TRUE, 2^60),
    attribute_name = quote(put_u64(b, attribute_entry(b), length(b) - 2)),
    attribute_name_huge = quote(put_u64(b, attribute_entry(b), 2^62))
  ))
  # Pointing the double vector's data at the header is in bounds and aligned:
  # the region is structurally valid, only its values change.
  expect_true(got$double_data_at_start$ok)
  expect_false(got$double_data_at_start$same)
  got$double_data_at_start <- NULL
  expect_all_rejected(got)
  expect_match(got$double_data$message, "vector data lies outside")
  expect_match(got$string_index$message, "string index lies outside")
  # Since format version 3 the encodings are in the end offsets: any
  # encoding array is refused.
  expect_match(got$string_meta$message, "has an encoding array")
  expect_match(got$string_bytes$message, "string bytes lies outside")
  expect_match(got$list_elements$message, "list element table lies outside")
  expect_match(got$serialized_data$message, "serialized data lies outside")
  expect_match(got$attribute_table$message, "attribute table lies outside")
  expect_match(got$attribute_name$message, "attribute name outside the region")
})

test_that("huge lengths and counts are rejected", {
  set_field <- function(kind, field, value, with_attributes = FALSE, put = quote(put_u64)) {
    bquote(.(put)(b, field_at(b, .(kind), .(field), .(with_attributes)), .(value)))
  }
  grow <- function(kind, by) {
    bquote(put_u64(b, field_at(b, .(kind), "length"), u64(b, field_at(b, .(kind), "length")) + .(by)))
  }
  got <- corrupt_and_map(list(
    double_length = set_field("double", "length", 2^62),
    double_length_plus_one = grow("double", 1),
    double_size = set_field("double", "data_size", 2^61),
    integer_length = set_field("integer", "length", 2^53),
    complex_length = set_field("complex", "length", 2^60),
    string_count = set_field("string", "length", 2^60),
    string_count_plus_100 = grow("string", 100),
    string_bytes_size = set_field("string", "data_size", 2^62),
    list_length = set_field("list", "length", 2^61),
    list_length_plus_one = grow("list", 1),
    serialized_length = set_field("serialized", "length", 2^50),
    attribute_count = set_field("integer", "attr_count", 2^32 - 1, TRUE, quote(put_u32)),
    attribute_name_length = quote(put_u32(b, attribute_entry(b) + 8, 2^32 - 1)),
    attribute_name_empty = quote(put_u32(b, attribute_entry(b) + 8, 0)),
    null_with_length = quote({
      at <- field_at(b, "double", "kind")
      put_u64(put_u32(b, at, KIND[["null"]]), at + FIELD[["length"]], 5)
    }),
    unknown_kind = set_field("double", "kind", 77, put = quote(put_u32))
  ), via_unserialize = TRUE)
  expect_all_rejected(got)
  expect_match(got$double_length$message, "length that does not match")
  expect_match(got$string_count$message, "too many strings")
  expect_match(got$list_length$message, "does not match its element table")
  expect_match(got$serialized_length$message, "inconsistent serialized size")
  expect_match(got$attribute_name_length$message, "attribute name outside")
  expect_match(got$null_with_length$message, "NULL with a length")
  expect_match(got$unknown_kind$message, "unknown kind 77")
  # Through unserialize(), the changed double vector node is rejected too.
  for (label in c("double_length", "double_size", "double_length_plus_one", "unknown_kind",
                  "null_with_length")) {
    expect_match(got[[label]]$unserialized$message, "^shmr: .*corrupt", label = label)
  }
})

test_that("bad string offsets and encodings are an error when the element is read", {
  got <- corrupt_and_map(list(
    end_past_bytes = quote(put_u64(b, u64(b, field_at(b, "string", "index_offset")), 1e9)),
    end_huge = quote(put_u64(b, u64(b, field_at(b, "string", "index_offset")), 2^63)),
    ends_decreasing = quote(put_u64(b, u64(b, field_at(b, "string", "index_offset")) + 8, 0)),
    # The top byte of the first element's end offset word is its encoding.
    bad_encoding = quote({
      b[u64(b, field_at(b, "string", "index_offset")) + 8] <- as.raw(7)
      b
    }),
    embedded_nul = quote({
      b[u64(b, field_at(b, "string", "data_offset")) + 1] <- as.raw(0)
      b
    })
  ))
  expect_all_rejected(got)
  expect_match(got$end_past_bytes$message, "outside its bytes")
  expect_match(got$ends_decreasing$message, "outside its bytes")
  expect_match(got$bad_encoding$message, "unknown encoding byte")
  expect_match(got$embedded_nul$message, "element with a NUL byte")
})

test_that("cyclic and forward references are rejected", {
  root_elements <- quote(u64(b, node_at(b, root_index(b)) + FIELD[["data_offset"]]))
  got <- corrupt_and_map(list(
    list_refers_to_itself = bquote(put_u64(b, .(root_elements), root_index(b))),
    list_refers_forward = quote({
      inner <- find_node(b, KIND[["list"]])
      put_u64(b, u64(b, node_at(b, inner) + FIELD[["data_offset"]]), inner + 1)
    }),
    list_refers_past_the_table = bquote(put_u64(b, .(root_elements) + 8, 2^40)),
    attribute_refers_to_itself = quote(
      put_u64(b, attribute_entry(b) + 16, find_node(b, KIND[["integer"]], TRUE))
    ),
    attribute_refers_to_the_root = quote(put_u64(b, attribute_entry(b) + 16, root_index(b))),
    root_attribute_cycle = quote({
      # The root list's names point back at the root list itself.
      table <- u64(b, node_at(b, root_index(b)) + FIELD[["attr_offset"]])
      put_u64(b, table + 16, root_index(b))
    })
  ))
  expect_all_rejected(got)
  expect_match(got$list_refers_to_itself$message, "invalid element node")
  expect_match(got$list_refers_forward$message, "invalid element node")
  expect_match(got$attribute_refers_to_itself$message, "refers to an invalid node")
  expect_match(got$root_attribute_cycle$message, "refers to an invalid node")
})

test_that("garbage of every size is rejected", {
  garbage <- function(n, seed) {
    bquote({
      set.seed(.(seed))
      as.raw(sample(0:255, .(n), TRUE))
    })
  }
  got <- corrupt_and_map(list(
    same_size = garbage(quote(length(b)), 1), small = garbage(200, 2), page = garbage(4096, 3),
    magic_then_garbage = quote({
      set.seed(4)
      c(b[1:16], as.raw(sample(0:255, length(b) - 16, TRUE)))
    }),
    header_then_garbage = quote({
      set.seed(5)
      c(b[1:128], as.raw(sample(0:255, length(b) - 128, TRUE)))
    })
  ))
  expect_all_rejected(got, ".")
})

test_that("every byte of the header and node table flipped: clear error or a usable object", {
  # Each byte of the header and the node table (in the long variant, of the
  # whole region) is replaced by its complement in turn. Each copy is either
  # refused with an error or maps to an object R can use (data bytes carry
  # no checksum, so values may differ). Not the bytes of serialized nodes:
  # R's unserialize() trusts its input, and a damaged language object can
  # crash R (README, "What does not hold").
  got <- in_other_process(function(tools, sample, long) {
    dir <- tempfile("shm")
    dir.create(dir, mode = "0700")
    Sys.setenv(SHMR_SHM_DIR = dir)
    x <- share(sample(), backing = "shm")
    path <- file.path(dir, shared_name(x))
    bytes <- readBin(path, "raw", file.size(path))
    target <- file.path(dir, "shmr_flipped")
    structure_end <- tools$u64(bytes, 64) + 64 * tools$u64(bytes, 56)
    end <- if (long) length(bytes) else structure_end
    serialized <- unlist(lapply(which(tools$node_kinds(bytes) == tools$KIND[["serialized"]]) - 1,
                                function(i) {
      record <- tools$node_at(bytes, i)
      tools$u64(bytes, record + tools$FIELD[["data_offset"]]) +
        seq_len(tools$u64(bytes, record + tools$FIELD[["data_size"]]))
    }))
    positions <- setdiff(seq_len(end), serialized)
    messages <- character()
    accepted <- 0
    structure_errors <- 0
    for (pos in positions) {
      b <- bytes
      b[pos] <- xor(b[pos], as.raw(0xff))
      unlink(target)
      writeBin(b, target)
      use_failed <- FALSE
      result <- tryCatch({
        y <- map_shared("shmr_flipped")
        # Use it as a worker would: copy, serialize, print. R's own
        # functions may refuse the values a flip made (an invalid string
        # in a class attribute), and on R >= 4.3 a list decodes its
        # elements when first read, so a flip in an element's node is
        # caught here: an error, never a crash.
        used <- try(silent = TRUE, {
          invisible(fetch(y))
          invisible(serialize(y, NULL))
          invisible(utils::capture.output(utils::str(y)))
        })
        use_failed <- inherits(used, "try-error")
        ""
      }, error = function(e) conditionMessage(e))
      if (nzchar(result)) messages <- c(messages, result)
      if (!nzchar(result) && !use_failed) accepted <- accepted + 1
      if ((nzchar(result) || use_failed) && pos <= structure_end)
        structure_errors <- structure_errors + 1
    }
    list(messages = messages, accepted = accepted, structure_errors = structure_errors,
         structure_bytes = structure_end)
  }, list(tools = corruption_tools(), sample = local({
    s <- corruption_sample
    environment(s) <- globalenv()
    s
  }), long = long_tests()))
  # Most flips of the header and node table are caught.
  expect_gt(got$structure_errors, got$structure_bytes / 4)
  expect_gt(got$accepted, 0)
  # Every error of map_shared() is shmr's: from the reader, or R refusing
  # what a flip made of an attribute, reported with the region's name.
  expect_true(all(grepl("^shmr: ", got$messages)),
              info = paste(unique(got$messages[!grepl("^shmr: ", got$messages)]), collapse = "\n"))
})
