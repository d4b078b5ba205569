// On-disk layout of a shmr region, format version 4. inst/FORMAT.md is the
// specification; these structs are its machine-readable half and must agree
// with it field for field.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmr::format {

inline constexpr char kMagic[8] = {'\x89', 'S', 'H', 'M', 'R', '\r', '\n', '\x1a'};
inline constexpr uint32_t kVersion = 4;
// The oldest version this build reads. Version 1 regions have no value
// flags, no dictionary strings and no replica record (their header is 128
// bytes); a reader sees only kNodeFlagsV1 of their node flags.
inline constexpr uint32_t kOldestReadableVersion = 1;
inline constexpr uint64_t kAlignment = 64;
inline constexpr uint64_t kNoNode = UINT64_MAX;

enum class NodeKind : uint32_t {
  Null = 0,
  Logical = 1,
  Integer = 2,
  Double = 3,
  Complex = 4,
  Raw = 5,
  String = 6,
  List = 7,
  Serialized = 8,
  // Since version 4: object `length` of the list that an earlier Serialized
  // node (the region's stream, node `index_offset`) unserializes to. Every
  // object stored serialized is one of these, so that references between
  // them (one environment in several places) survive as one object, as in
  // one serialize() stream.
  StreamElement = 9,
};
inline constexpr uint32_t kMaxNodeKind = 9;

// Header flags.
inline constexpr uint64_t kFlagReadonly = 1u << 0;
inline constexpr uint64_t kFlagPersistent = 1u << 1;
// The region is a copy of a region on another host (a replica); its replica
// record says of which and which local process keeps it.
inline constexpr uint64_t kFlagReplica = 1u << 2;

// The encoding of a string element: before version 3 one byte per element
// in its own array, since version 3 the top byte of the element's end offset.
enum class StringEncoding : uint8_t {
  Native = 0,
  Utf8 = 1,
  Latin1 = 2,
  Bytes = 3,
  Missing = 255,  // NA_character_
};

// Node flags.
inline constexpr uint32_t kNodeFromPairlist = 1u << 0;
// Since version 2: the writer read every value while copying a read-only
// region's Logical, Integer, Double or String node, and bits 2-4 say what it
// saw. Without this bit they are 0 and mean nothing.
inline constexpr uint32_t kNodeValuesScanned = 1u << 1;
inline constexpr uint32_t kNodeNoMissing = 1u << 2;   // no NA (nor NaN)
inline constexpr uint32_t kNodeIncreasing = 1u << 3;  // non-decreasing; only with kNodeNoMissing
inline constexpr uint32_t kNodeDecreasing = 1u << 4;  // non-increasing; only with kNodeNoMissing
// Since version 2: a String node in the dictionary layout (FORMAT.md 2.4).
inline constexpr uint32_t kNodeDictionary = 1u << 5;
// The node flags a version 1 region can have.
inline constexpr uint32_t kNodeFlagsV1 = kNodeFromPairlist;

struct RegionHeader {
  char magic[8];
  uint32_t format_version;
  uint32_t header_size;
  uint64_t total_size;
  uint64_t flags;
  int64_t creator_pid;
  uint64_t creator_start_ticks;  // field 22 of /proc/<pid>/stat: tells PID reuse apart
  int64_t created_unix_ms;
  uint64_t node_count;
  uint64_t node_table_offset;
  uint64_t root_node;
  char original_class[48];  // NUL-padded, informational only
};
static_assert(sizeof(RegionHeader) == 128, "header is 128 bytes");

// Bytes 128..255 of a header since version 2 (bytes 0..127 are RegionHeader,
// whose last 8 hold the creator's PID namespace: creator.h). Zero in a
// region written by its creator; filled by the process that copies the
// region from another host, after the copied bytes are validated (the rest
// of the header is the origin's, unchanged: its size, creator and creation
// time identify it).
inline constexpr size_t kOriginHostSize = 96;
struct ReplicaRecord {
  int64_t keeper_pid;            // the local process that keeps the copy
  uint64_t keeper_start_ticks;   // as creator_start_ticks
  int64_t copied_unix_ms;        // when the copy was completed
  uint64_t keeper_pid_namespace; // as the creator's (creator.h); 0 when unknown
  char origin_host[kOriginHostSize];  // host identity of the origin, NUL-padded
};
static_assert(sizeof(ReplicaRecord) == 128, "replica record is 128 bytes");

// header_size of each version.
inline constexpr uint32_t kHeaderSizeV1 = sizeof(RegionHeader);
inline constexpr uint32_t kHeaderSizeV2 = sizeof(RegionHeader) + sizeof(ReplicaRecord);
inline constexpr uint32_t header_size_of(uint32_t version) {
  return version == 1 ? kHeaderSizeV1 : version >= 2 && version <= 4 ? kHeaderSizeV2 : 0;
}

struct NodeRecord {
  uint32_t kind;
  uint32_t flags;
  uint64_t length;        // element count
  uint64_t data_offset;   // payload / child table / string bytes / serialized bytes
  uint64_t data_size;     // bytes at data_offset
  uint64_t index_offset;  // String: uint64 end offsets, one per element; since version 3
                          // each with the element's encoding in its top byte
                          // (dictionary layout: the dictionary's node index);
                          // StreamElement: the stream's node index
  uint64_t meta_offset;   // String before version 3: one StringEncoding byte per element;
                          // 0 in the dictionary layout and since version 3
  uint64_t attr_offset;   // AttributeEntry table
  uint32_t attr_count;
  uint32_t code_width;    // String, dictionary layout: bytes per code (1, 2 or 4); else 0
};
static_assert(sizeof(NodeRecord) == 64, "node record is 64 bytes");

// Since version 3, an end offset word of a packed String node: the offset in
// its low 56 bits, the element's StringEncoding in its top byte. An element
// is read from one page of end offsets and its bytes, not a third page of
// encodings.
inline constexpr unsigned kEncodingShift = 56;
inline constexpr uint64_t kEndOffsetMask = (uint64_t{1} << kEncodingShift) - 1;
constexpr uint64_t end_word(uint64_t end, StringEncoding encoding) {
  return end | uint64_t{static_cast<uint8_t>(encoding)} << kEncodingShift;
}

struct AttributeEntry {
  uint64_t name_offset;
  uint32_t name_length;
  uint32_t reserved;
  uint64_t value_node;
};
static_assert(sizeof(AttributeEntry) == 24, "attribute entry is 24 bytes");

// R's own limit on symbol names (MAXIDSIZE): every attribute name R can
// make fits.
inline constexpr uint64_t kMaxAttributeNameLength = 10000;

// Bytes per element of the fixed-width kinds; 0 for the others.
constexpr uint64_t element_size(NodeKind kind) {
  switch (kind) {
    case NodeKind::Logical:
    case NodeKind::Integer:
      return 4;
    case NodeKind::Double:
      return 8;
    case NodeKind::Complex:
      return 16;
    case NodeKind::Raw:
      return 1;
    default:
      return 0;
  }
}

constexpr uint64_t align_up(uint64_t value, uint64_t alignment = kAlignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace shmr::format
