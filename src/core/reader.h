// Read access to a mapped region. Every byte is untrusted: the header is
// checked on construction, each node when it is first asked for, and each
// string element when it is read, always against the mapped size.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "format.h"
#include "writer.h"

namespace shmr {

class RegionReader;

// Throws Corrupt: "shared region '<name>' is corrupt: <what>".
[[noreturn]] void throw_corrupt(const std::string& name, const std::string& what);

// One node of a region. It reads the mapping its RegionReader reads, so it
// is usable while that mapping is.
class NodeView {
 public:
  format::NodeKind kind() const noexcept { return kind_; }
  // The node flags this format version defines (others read as 0).
  uint32_t flags() const noexcept { return record_.flags; }
  uint64_t index() const noexcept { return index_; }
  uint64_t length() const noexcept { return record_.length; }
  const void* data() const noexcept { return data_; }
  uint64_t data_size() const noexcept { return record_.data_size; }

  // List: the node index of element `i` (< index()).
  uint64_t child(uint64_t i) const;
  // StreamElement: the index of its stream, a Serialized node (< index());
  // length() is the element's position in the list the stream holds.
  uint64_t stream() const noexcept { return record_.index_offset; }
  // String: element `i`; encoding Missing for NA. Never holds a NUL byte.
  StringRef string_at(uint64_t i) const;

  // String in the dictionary layout (FORMAT.md 2.4): element i is entry
  // code(i) of a dictionary of dictionary_size() strings.
  bool is_dictionary() const noexcept { return codes_ != nullptr; }
  uint64_t dictionary_size() const noexcept { return strings_.count; }
  // Throws Corrupt for a code outside the dictionary.
  uint64_t code(uint64_t i) const;
  StringRef dictionary_entry(uint64_t k) const;

  // The same checks without exceptions, for per-element paths: false when
  // the element is invalid (the throwing versions then say why).
  bool try_string_at(uint64_t i, StringRef& out) const noexcept;
  bool try_code(uint64_t i, uint64_t& out) const noexcept;
  bool try_dictionary_entry(uint64_t k, StringRef& out) const noexcept;

  uint32_t attribute_count() const noexcept { return record_.attr_count; }
  std::string attribute_name(uint32_t i) const;
  uint64_t attribute_value(uint32_t i) const;

 private:
  friend class RegionReader;
  [[noreturn]] void corrupt(const std::string& what) const;
  enum class ElementProblem { None, UnknownEncoding, OutsideBytes, NulByte };
  // Packed string `k`, checked (FORMAT.md 2.4); `out` is set only when
  // there is no problem. packed_string() throws what try_packed_string()
  // reports as false.
  ElementProblem read_packed_string(uint64_t k, StringRef& out) const noexcept;
  StringRef packed_string(uint64_t k) const;
  bool try_packed_string(uint64_t k, StringRef& out) const noexcept;

  // The packed strings a String node reads: its own, or its dictionary's.
  struct PackedStrings {
    uint64_t count = 0;
    uint64_t ends_offset = 0;
    uint64_t meta_offset = 0;  // before version 3 only
    uint64_t bytes_offset = 0;
    uint64_t bytes_size = 0;
    bool encodings_in_ends = false;  // version 3 and later
  };

  std::shared_ptr<const std::string> region_name_;  // for error messages
  const unsigned char* base_ = nullptr;
  uint64_t region_size_ = 0;
  format::NodeKind kind_ = format::NodeKind::Null;
  uint64_t index_ = 0;
  format::NodeRecord record_{};
  const void* data_ = nullptr;
  PackedStrings strings_{};
  const unsigned char* codes_ = nullptr;  // dictionary layout only
};

class RegionReader {
 public:
  // Throws Corrupt (with `name` in the message) when the header is invalid.
  // `first_bytes`, when given, is a copy of the region's first `first_size`
  // bytes: the header and the node records are read there when they lie
  // within it, so that opening a region and decoding a small object touch
  // none of the mapped pages (a mapping's first page fault costs more than
  // the rest of opening it). The copy must outlive the reader.
  RegionReader(const void* base, uint64_t mapped_size, const std::string& name,
               const void* first_bytes = nullptr, uint64_t first_size = 0);

  const format::RegionHeader& header() const noexcept { return header_; }
  // All zero unless the header's kFlagReplica is set (version 2).
  const format::ReplicaRecord& replica() const noexcept { return replica_; }
  bool is_replica() const noexcept { return (header_.flags & format::kFlagReplica) != 0; }
  uint64_t node_count() const noexcept { return header_.node_count; }
  uint64_t root() const noexcept { return header_.root_node; }

  // Throws Corrupt when the node record is inconsistent with the region.
  NodeView node(uint64_t index) const;

 private:
  [[noreturn]] void corrupt(const std::string& what) const;
  void check_range(uint64_t offset, uint64_t size, uint64_t alignment, const char* what) const;
  // The bytes at [offset, offset + size), which lie in the region: from the
  // copy of its first bytes when they lie there, else from the mapping.
  const unsigned char* bytes_at(uint64_t offset, uint64_t size) const noexcept {
    return offset + size <= first_size_ ? first_bytes_ + offset : base_ + offset;
  }

  const unsigned char* base_;
  const unsigned char* first_bytes_ = nullptr;
  uint64_t first_size_ = 0;
  uint64_t size_;
  std::shared_ptr<const std::string> name_;
  format::RegionHeader header_;
  format::ReplicaRecord replica_{};
};

// Reads and checks only the header of a region file (for listings), without
// mapping it. Returns false when the file is too short or not a region.
bool read_region_header(int fd, format::RegionHeader& out);

// Reads the replica record of a region whose header is `header`; false (and
// `out` zeroed) when the region is not a replica or the record is unusable.
bool read_replica_record(int fd, const format::RegionHeader& header, format::ReplicaRecord& out);

}  // namespace shmr
