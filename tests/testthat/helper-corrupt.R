# Corrupting real regions: byte helpers for the layout of inst/FORMAT.md, and
# a runner that maps many corrupted copies of one real region in one other
# process (so a crash fails the test instead of killing the test run).

# Little-endian unsigned 64-bit field at byte `offset` (0-based); exact up to
# 2^53, enough for offsets and lengths of test regions.
u64 <- function(bytes, offset) sum(as.numeric(bytes[offset + 1:8]) * 256^(0:7))

put_u64 <- function(bytes, offset, value) {
  bytes[offset + 1:8] <- as.raw(floor(value / 256^(0:7)) %% 256)
  bytes
}

u32 <- function(bytes, offset) sum(as.numeric(bytes[offset + 1:4]) * 256^(0:3))

put_u32 <- function(bytes, offset, value) {
  bytes[offset + 1:4] <- as.raw(floor(value / 256^(0:3)) %% 256)
  bytes
}

# Offset of node record `i` (0-based), and of its fields.
node_at <- function(bytes, i) u64(bytes, 64) + 64 * i
node_kinds <- function(bytes) {
  vapply(seq_len(u64(bytes, 56)) - 1, function(i) u32(bytes, node_at(bytes, i)), numeric(1))
}
# 0-based index of the first node of `kind` (FORMAT.md 2.3), optionally with
# attributes.
find_node <- function(bytes, kind, with_attributes = FALSE) {
  kinds <- node_kinds(bytes)
  for (i in seq_along(kinds) - 1) {
    if (kinds[i + 1] == kind && (!with_attributes || u32(bytes, node_at(bytes, i) + 56) > 0)) {
      return(i)
    }
  }
  stop("no node of kind ", kind)
}
KIND <- c(null = 0, logical = 1, integer = 2, double = 3, complex = 4, raw = 5, string = 6,
          list = 7, serialized = 8)
FIELD <- c(kind = 0, flags = 4, length = 8, data_offset = 16, data_size = 24, index_offset = 32,
           meta_offset = 40, attr_offset = 48, attr_count = 56)
HEADER <- c(magic = 0, version = 8, header_size = 12, total_size = 16, flags = 24, pid = 32,
            ticks = 40, created = 48, node_count = 56, node_table = 64, root = 72, class = 80)

# The object every corruption test shares: every node kind a real share()
# writes, attributes small (copied) and large (views), nesting, sharing.
corruption_sample <- function() {
  long_names <- paste0("element_name_", 1:20)
  list(
    a = c(1.5, 2.5, 3.5),
    b = c("x", "yy", NA, "caf\u00e9"),
    m = matrix(1:6, 2, dimnames = list(c("r1", "r2"), NULL)),
    f = factor(c("u", "v", "u")),
    n = list(z = 1:3, w = TRUE, raw = as.raw(1:4), cplx = 1i),
    named = setNames(as.numeric(1:20), long_names),
    call = quote(f(x, 1))
  )
}

# Replaces the first CHARSXP whose bytes start with `old_prefix` in the
# output of serialize() (XDR: a 4-byte big-endian length, then the bytes) by
# `new_bytes` (raw), or by NA_character_ when `new_bytes` is NULL.
replace_serialized_string <- function(stream, old_prefix, new_bytes) {
  old <- charToRaw(old_prefix)
  starts <- which(stream == old[1])
  at <- starts[vapply(starts, function(i) {
    i + length(old) - 1 <= length(stream) && all(stream[i:(i + length(old) - 1)] == old)
  }, logical(1))][1]
  if (is.na(at)) stop("string not found in the stream")
  len_at <- at - 4
  old_length <- sum(as.numeric(stream[len_at:(len_at + 3)]) * 256^(3:0))
  length_bytes <- if (is.null(new_bytes)) {
    as.raw(c(255, 255, 255, 255))
  } else {
    n <- length(new_bytes)
    as.raw(c(n %/% 256^3, (n %/% 256^2) %% 256, (n %/% 256) %% 256, n %% 256))
  }
  c(stream[seq_len(len_at - 1)], length_bytes, new_bytes,
    stream[seq.int(at + old_length, length.out = length(stream) - (at + old_length) + 1)])
}

# `stream` with the origin of a view's compact state (FORMAT.md 4: a raw
# vector ending in ";origin=<origin>") replaced by the string `new_origin`.
replace_serialized_origin <- function(stream, origin, new_origin) {
  old <- charToRaw(paste0(";origin=", origin))
  starts <- which(stream == old[1])
  at <- starts[vapply(starts, function(i) {
    i + length(old) - 1 <= length(stream) && all(stream[i:(i + length(old) - 1)] == old)
  }, logical(1))][1]
  if (is.na(at)) stop("origin not found in the stream")
  end <- at + length(old)  # the first byte after the state
  # The state starts after its 4-byte length, somewhere before the field.
  for (begin in seq.int(at, max(5, at - 256))) {
    if (sum(as.numeric(stream[(begin - 4):(begin - 1)]) * 256^(3:0)) != end - begin) next
    state <- c(stream[begin:(at - 1)], charToRaw(paste0(";origin=", new_origin)))
    n <- length(state)
    length_bytes <- as.raw(c(n %/% 256^3, (n %/% 256^2) %% 256, (n %/% 256) %% 256, n %% 256))
    return(c(stream[seq_len(begin - 5)], length_bytes, state,
             stream[seq.int(end, length.out = length(stream) - end + 1)]))
  }
  stop("no compact state holds the origin")
}

# Where things are in a region's bytes `b`.
root_index <- function(b) u64(b, HEADER[["root"]])
# The field `field` of the first node of `kind`.
field_at <- function(b, kind, field, with_attributes = FALSE) {
  node_at(b, find_node(b, KIND[[kind]], with_attributes)) + FIELD[[field]]
}
# The first attribute entry of the first node of `kind` that has attributes
# (entry fields: +0 name offset, +8 name length, +16 value node).
attribute_entry <- function(b, kind = "integer") u64(b, field_at(b, kind, "attr_offset", TRUE))

# The helpers above, bundled so they travel to other processes, where
# mutations are evaluated with them.
corruption_tools <- function() {
  names <- c("u64", "put_u64", "u32", "put_u32", "node_at", "node_kinds", "find_node", "KIND",
             "FIELD", "HEADER", "replace_serialized_string", "root_index", "field_at",
             "attribute_entry")
  env <- new.env(parent = globalenv())
  for (n in names) {
    value <- get(n)
    if (is.function(value)) environment(value) <- env
    assign(n, value, envir = env)
  }
  env
}

# Shares corruption_sample() in a private shm directory of another process
# and maps corrupted copies of its region. `mutations` is a named list of
# expressions (quote()) that compute the corrupted bytes from the region's
# bytes `b`, with the helpers above. For each, returns list(ok, message, same): `same` is TRUE when the
# mapped object equals the original. With `via_unserialize`, also
# unserializes a view state naming the first double vector node of the
# corrupted copy (the way a corrupted region reaches a worker), in
# `$unserialized`.
corrupt_and_map <- function(mutations, via_unserialize = FALSE) {
  tools <- corruption_tools()
  sample <- corruption_sample
  environment(sample) <- globalenv()
  in_other_process(function(mutations, sample, via_unserialize, tools) {
    dir <- tempfile("shm")
    dir.create(dir, mode = "0700")
    Sys.setenv(SHMR_SHM_DIR = dir)
    original <- sample()
    x <- share(original, backing = "shm")
    path <- file.path(dir, shared_name(x))
    bytes <- readBin(path, "raw", file.size(path))
    target <- file.path(dir, "shmr_corrupted")
    double_node <- tools$find_node(bytes, tools$KIND[["double"]])
    # The compact state of x$a (FORMAT.md section 4), pointed at the copy.
    state <- charToRaw(paste0("corrupted:", double_node))
    view_stream <- tools$replace_serialized_string(serialize(x$a, NULL),
                                                   sub("^shmr_", "", shared_name(x)), state)
    attempt <- function(expr, expected) {
      tryCatch({
        value <- fetch(expr())
        list(ok = TRUE, message = "", same = identical(value, expected))
      }, error = function(e) list(ok = FALSE, message = conditionMessage(e), same = FALSE))
    }
    lapply(mutations, function(mutate) {
      unlink(target)
      writeBin(eval(mutate, list(b = bytes), tools), target)
      Sys.chmod(target, "0600")
      out <- attempt(function() map_shared("shmr_corrupted"), original)
      if (via_unserialize) {
        out$unserialized <- attempt(function() unserialize(view_stream), original$a)
      }
      out
    })
  }, list(mutations = mutations, sample = sample, via_unserialize = via_unserialize,
          tools = tools))
}

# Every result is an error whose message is shmr's, and matches `pattern`:
# by default, the region is corrupt, or R refused what it holds.
expect_all_rejected <- function(results, pattern = "is corrupt|could not be rebuilt") {
  for (label in names(results)) {
    got <- results[[label]]
    expect_false(got$ok, label = label)
    expect_match(got$message, "^shmr: ", label = label)
    expect_match(got$message, pattern, label = label)
  }
}


# serialize() of a view writes its state as a raw vector (inst/FORMAT.md,
# section 4). The same stream as format version 1 of shmr wrote it: the raw
# state that starts with `compact` (raw: the name without its prefix; any
# fields follow it) replaced by the string `state` (raw bytes; NULL for
# NA_character_). Self-contained: it runs in other processes.
as_legacy_stream <- function(stream, compact, state) {
  xdr_int <- function(n) {  # big-endian, as serialize() writes integers
    if (n < 0) n <- n + 2^32
    as.raw(c(n %/% 256^3, (n %/% 256^2) %% 256, (n %/% 256) %% 256, n %% 256))
  }
  # A raw vector (type 0x18) whose bytes start with `compact`.
  starts <- which(stream == compact[1])
  at <- starts[vapply(starts, function(i) {
    i > 8 && i + length(compact) - 1 <= length(stream) &&
      all(stream[i:(i + length(compact) - 1)] == compact) &&
      all(stream[(i - 8):(i - 5)] == as.raw(c(0, 0, 0, 0x18)))
  }, logical(1))][1]
  if (is.na(at)) stop("raw state not found in the stream")
  size <- sum(as.numeric(stream[(at - 4):(at - 1)]) * 256^(3:0))
  at <- at - 8
  pattern <- stream[at:(at + 8 + size - 1)]
  chars <- if (is.null(state)) {
    c(as.raw(c(0, 0, 0, 9)), xdr_int(-1))
  } else {
    c(as.raw(c(0, 0, 0, 9)), xdr_int(length(state)), state)
  }
  item <- c(as.raw(c(0, 0, 0, 0x10)), xdr_int(1), chars)
  c(stream[seq_len(at - 1)], item, stream[seq.int(at + length(pattern), length(stream))])
}
