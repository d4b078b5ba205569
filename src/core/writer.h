// Turns a list of node specifications into region bytes (FORMAT.md). The
// caller (the R glue) describes its object graph; the writer owns offsets,
// alignment and the byte layout. Nodes must be listed children first: every
// reference points to a node with a smaller index, which keeps the graph
// acyclic by construction.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "format.h"
#include "region_sink.h"

namespace shmr {

struct StringRef {
  const char* data;
  uint64_t size;
  format::StringEncoding encoding;
};

// Elements of a character vector, read twice: once to size, once to copy.
// Implementations must not throw or long-jump.
class StringSource {
 public:
  virtual ~StringSource() = default;
  virtual StringRef at(uint64_t i) const = 0;
  // Something equal for two elements exactly when their strings are equal
  // (R's one CHARSXP per string), or nullptr when the source has none.
  virtual const void* identity(uint64_t) const { return nullptr; }
  // False when no element can hold a NUL byte, which the reader refuses
  // (FORMAT.md 2.4): the writer then skips its own search for one.
  virtual bool may_hold_nul() const { return true; }
};

// Elements of a fixed-width vector that are not in memory (an R compact
// sequence): computed straight into the region, so the vector is never
// expanded outside it. Called once, in the thread that calls write(); may
// throw.
class VectorSource {
 public:
  virtual ~VectorSource() = default;
  // Elements [first, first + count) to `destination`: the writer asks for
  // blocks, so a long generated vector is never expanded whole.
  virtual void copy_to(void* destination, uint64_t first, uint64_t count) const = 0;
};

struct NodeSpec {
  format::NodeKind kind = format::NodeKind::Null;
  uint32_t flags = 0;
  uint64_t length = 0;
  // Fixed-width kinds: length * element_size bytes, from `bytes` or, when
  // that is null, from `source`. Serialized: byte_count bytes.
  const void* bytes = nullptr;
  const VectorSource* source = nullptr;
  // Fixed-width kinds: no source, the payload stays zero (segments).
  bool zero_filled = false;
  uint64_t byte_count = 0;
  const StringSource* strings = nullptr;  // String (packed layout)
  // String in the dictionary layout (FORMAT.md 2.4): the index of the
  // dictionary's node (a String node in the packed layout, listed before
  // this one) and one code per element, code_width (1, 2 or 4) bytes each.
  uint64_t dictionary = format::kNoNode;
  // StreamElement: the index of the stream's node (an earlier Serialized
  // node); `length` is the element's position in the stream's list.
  uint64_t stream = format::kNoNode;
  const void* codes = nullptr;
  uint32_t code_width = 0;
  std::vector<uint64_t> children;         // List
  std::vector<std::pair<std::string, uint64_t>> attributes;
};

struct RegionDescription {
  std::vector<NodeSpec> nodes;
  uint64_t root = 0;
  uint64_t flags = 0;
  std::string original_class;
};

class RegionWriter {
 public:
  // Validates the description and computes the layout; throws
  // InvalidArgument for a malformed description.
  explicit RegionWriter(const RegionDescription& description);

  uint64_t total_size() const noexcept { return total_size_; }
  // True when some payload is left zero rather than written (a segment).
  bool has_zero_filled_nodes() const noexcept { return has_zero_filled_; }
  // True when a node's values are made while writing (a VectorSource): its
  // size is not backed by memory the caller already holds.
  bool has_generated_nodes() const noexcept { return has_generated_; }

  // Fills `size` bytes at `base` (size must equal total_size()), which must
  // read as zeros (a fresh region does): zero-filled nodes are not written,
  // so a huge segment costs nothing until used. The header is written last
  // so a reader never sees a valid magic over partial data. The values of
  // Logical, Integer and Double nodes are summarised while they are copied
  // (node flags, FORMAT.md 2.2; readers of a writable region ignore them).
  void write(void* base, uint64_t size, int64_t creator_pid, uint64_t creator_start_ticks,
             int64_t created_unix_ms) const;
  // The same into `sink`, a fresh file of total_size() bytes, with the
  // header's flags set to `header_flags`. Payloads of fixed-width and
  // serialized nodes are put as lasting data (RegionSink::put_lasting):
  // the description's buffers must not change until this returns.
  // `creator_pid_namespace`: header bytes 120..127 (creator.h; 0 unknown).
  void write(RegionSink& sink, int64_t creator_pid, uint64_t creator_start_ticks,
             int64_t created_unix_ms, uint64_t header_flags,
             uint64_t creator_pid_namespace = 0) const;

 private:
  const RegionDescription& description_;
  std::vector<format::NodeRecord> records_;
  std::vector<uint64_t> attribute_name_offsets_;  // one per attribute, in node order
  uint64_t node_table_offset_ = 0;
  uint64_t total_size_ = 0;
  bool has_zero_filled_ = false;
  bool has_generated_ = false;
};

}  // namespace shmr
