#include "reader.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "error.h"

namespace shmr {

using format::NodeKind;

namespace {

bool header_is_plausible(const format::RegionHeader& h) {
  return std::memcmp(h.magic, format::kMagic, sizeof h.magic) == 0;
}

}  // namespace

RegionReader::RegionReader(const void* base, uint64_t mapped_size, const std::string& name,
                           const void* first_bytes, uint64_t first_size)
    : base_(static_cast<const unsigned char*>(base)),
      first_bytes_(static_cast<const unsigned char*>(first_bytes)),
      first_size_(first_bytes == nullptr ? 0 : std::min(first_size, mapped_size)),
      size_(mapped_size),
      name_(std::make_shared<const std::string>(name)) {
  if (size_ < sizeof(format::RegionHeader)) corrupt("it is shorter than a region header");
  std::memcpy(&header_, bytes_at(0, sizeof header_), sizeof header_);
  if (!header_is_plausible(header_)) corrupt("it does not start with the shmr magic bytes");
  if (header_.format_version < format::kOldestReadableVersion ||
      header_.format_version > format::kVersion)
    corrupt("its format version is " + std::to_string(header_.format_version) +
            ", this build of shmr reads versions " +
            std::to_string(format::kOldestReadableVersion) + " to " +
            std::to_string(format::kVersion));
  if (header_.header_size != format::header_size_of(header_.format_version))
    corrupt("its header size is wrong");
  if (size_ < header_.header_size) corrupt("it is shorter than its header");
  if (header_.format_version >= 2) {
    std::memcpy(&replica_, bytes_at(sizeof header_, sizeof replica_), sizeof replica_);
    if (header_.flags & format::kFlagReplica) {
      if (replica_.keeper_pid <= 0) corrupt("its replica record names no keeper");
      if (strnlen(replica_.origin_host, sizeof replica_.origin_host) == 0 ||
          strnlen(replica_.origin_host, sizeof replica_.origin_host) == sizeof replica_.origin_host)
        corrupt("its replica record has no valid origin host");
    }
  } else if (header_.flags & format::kFlagReplica) {
    corrupt("a version 1 region cannot be a replica");
  }
  if (header_.total_size != size_)
    corrupt("it is " + std::to_string(size_) + " bytes but its header says " +
            std::to_string(header_.total_size) +
            (size_ < header_.total_size ? " (truncated?)" : " (extended?)"));
  if (header_.node_count == 0) corrupt("it has no nodes");
  if (header_.node_count > size_ / sizeof(format::NodeRecord)) corrupt("its node count is too large");
  check_range(header_.node_table_offset, header_.node_count * sizeof(format::NodeRecord), 8,
              "node table");
  if (header_.node_table_offset < header_.header_size) corrupt("its node table overlaps its header");
  if (header_.root_node >= header_.node_count) corrupt("its root node is out of range");
}

void throw_corrupt(const std::string& name, const std::string& what) {
  throw Error(ErrorKind::Corrupt, "shared region '" + name + "' is corrupt: " + what);
}

void RegionReader::corrupt(const std::string& what) const { throw_corrupt(*name_, what); }

void RegionReader::check_range(uint64_t offset, uint64_t size, uint64_t alignment,
                               const char* what) const {
  if (offset > size_ || size > size_ - offset)
    corrupt(std::string(what) + " lies outside the region");
  if (alignment > 1 && offset % alignment != 0) corrupt(std::string(what) + " is misaligned");
}

NodeView RegionReader::node(uint64_t index) const {
  if (index >= header_.node_count) corrupt("node " + std::to_string(index) + " does not exist");
  NodeView view;
  view.region_name_ = name_;
  view.base_ = base_;
  view.region_size_ = size_;
  view.index_ = index;
  std::memcpy(&view.record_,
              bytes_at(header_.node_table_offset + index * sizeof(format::NodeRecord),
                       sizeof(format::NodeRecord)),
              sizeof(format::NodeRecord));
  // Flags a version did not define are ignored, not trusted.
  if (header_.format_version < 2) view.record_.flags &= format::kNodeFlagsV1;
  const format::NodeRecord& rec = view.record_;
  if (rec.kind > format::kMaxNodeKind)
    corrupt("node " + std::to_string(index) + " has unknown kind " + std::to_string(rec.kind));
  view.kind_ = static_cast<NodeKind>(rec.kind);
  // Formatted only for an error: this runs once per node decoded.
  const auto where = [index] { return "node " + std::to_string(index); };

  if (rec.attr_count > 0) {
    check_range(rec.attr_offset, uint64_t{rec.attr_count} * sizeof(format::AttributeEntry), 8,
                "attribute table");
  }

  switch (view.kind_) {
    case NodeKind::Null:
      if (rec.length != 0) corrupt(where() + " is NULL with a length");
      break;
    case NodeKind::Logical:
    case NodeKind::Integer:
    case NodeKind::Double:
    case NodeKind::Complex:
    case NodeKind::Raw: {
      uint64_t width = format::element_size(view.kind_);
      if (rec.length > size_ / width || rec.data_size != rec.length * width)
        corrupt(where() + " has a length that does not match its data size");
      check_range(rec.data_offset, rec.data_size, width > 8 ? 8 : width, "vector data");
      break;
    }
    case NodeKind::String:
      if (rec.flags & format::kNodeDictionary) {
        const uint64_t width = rec.code_width;
        if (width != 1 && width != 2 && width != 4) corrupt(where() + " has an invalid code width");
        if (rec.length > size_ / width || rec.data_size != rec.length * width)
          corrupt(where() + " has a length that does not match its codes");
        check_range(rec.data_offset, rec.data_size, width, "string codes");
        if (rec.index_offset >= index) corrupt(where() + " refers to an invalid dictionary node");
        // Checked before it is opened, so a chain of dictionaries never recurses.
        format::NodeRecord entry;
        std::memcpy(&entry, base_ + header_.node_table_offset + rec.index_offset * sizeof entry,
                    sizeof entry);
        if (entry.kind != static_cast<uint32_t>(NodeKind::String) ||
            (entry.flags & format::kNodeDictionary) != 0)
          corrupt(where() + " has a dictionary that is not a packed string node");
        NodeView dictionary = node(rec.index_offset);
        view.strings_ = dictionary.strings_;
        view.codes_ = base_ + rec.data_offset;
      } else {
        // Since version 3 the encodings are in the end offset words.
        const bool encodings_in_ends = header_.format_version >= 3;
        const uint64_t per_element = sizeof(uint64_t) + (encodings_in_ends ? 0 : 1);
        if (rec.length > size_ / per_element) corrupt(where() + " has too many strings");
        check_range(rec.index_offset, rec.length * sizeof(uint64_t), 8, "string index");
        if (encodings_in_ends) {
          if (rec.meta_offset != 0) corrupt(where() + " has an encoding array (version 3 has none)");
        } else {
          check_range(rec.meta_offset, rec.length, 1, "string metadata");
        }
        check_range(rec.data_offset, rec.data_size, 1, "string bytes");
        view.strings_ = {rec.length,         rec.index_offset, rec.meta_offset,
                         rec.data_offset,    rec.data_size,    encodings_in_ends};
      }
      break;
    case NodeKind::List:
      if (rec.length > size_ / sizeof(uint64_t) || rec.data_size != rec.length * sizeof(uint64_t))
        corrupt(where() + " has a length that does not match its element table");
      check_range(rec.data_offset, rec.data_size, 8, "list element table");
      break;
    case NodeKind::Serialized:
      if (rec.length != rec.data_size) corrupt(where() + " has inconsistent serialized size");
      check_range(rec.data_offset, rec.data_size, 1, "serialized data");
      break;
    case NodeKind::StreamElement: {
      if (header_.format_version < 4) corrupt(where() + " is a stream element (version 4 and later)");
      // Its attributes are in the stream, with the object.
      if (rec.data_size != 0 || rec.attr_count != 0)
        corrupt(where() + " is a stream element with data or attributes");
      if (rec.index_offset >= index) corrupt(where() + " refers to an invalid stream node");
      // The stream's record is read without opening it: never a chain.
      format::NodeRecord stream;
      std::memcpy(&stream,
                  bytes_at(header_.node_table_offset + rec.index_offset * sizeof stream, sizeof stream),
                  sizeof stream);
      if (stream.kind != static_cast<uint32_t>(NodeKind::Serialized))
        corrupt(where() + " refers to a stream that is not a serialized node");
      break;
    }
  }
  // A NULL's or a stream element's data_offset is never checked, so it is
  // never used either.
  if (view.kind_ != NodeKind::Null && view.kind_ != NodeKind::StreamElement)
    view.data_ = base_ + rec.data_offset;
  return view;
}

void NodeView::corrupt(const std::string& what) const {
  throw_corrupt(region_name_ ? *region_name_ : std::string("?"), what);
}

uint64_t NodeView::child(uint64_t i) const {
  uint64_t value = 0;
  if (i < record_.length)
    std::memcpy(&value, static_cast<const unsigned char*>(data_) + i * sizeof(uint64_t),
                sizeof value);
  if (i >= record_.length || value >= index_)
    corrupt("list node " + std::to_string(index_) + " refers to an invalid element node");
  return value;
}

StringRef NodeView::string_at(uint64_t i) const {
  if (i >= record_.length) corrupt("string index out of range");
  return packed_string(codes_ == nullptr ? i : code(i));
}

uint64_t NodeView::code(uint64_t i) const {
  if (i >= record_.length || codes_ == nullptr) corrupt("string code index out of range");
  uint32_t code = 0;
  // Little-endian (FORMAT.md 2): the low bytes come first.
  std::memcpy(&code, codes_ + i * record_.code_width, record_.code_width);
  if (code >= strings_.count)
    corrupt("string node " + std::to_string(index_) + " has a code outside its dictionary");
  return code;
}

StringRef NodeView::dictionary_entry(uint64_t k) const {
  if (codes_ == nullptr || k >= strings_.count) corrupt("dictionary entry out of range");
  return packed_string(k);
}

bool NodeView::try_code(uint64_t i, uint64_t& out) const noexcept {
  if (i >= record_.length || codes_ == nullptr) return false;
  uint32_t code = 0;
  // Little-endian (FORMAT.md 2): the low bytes come first.
  switch (record_.code_width) {
    case 1:
      code = codes_[i];
      break;
    case 2: {
      uint16_t c;
      std::memcpy(&c, codes_ + 2 * i, 2);
      code = c;
      break;
    }
    default:
      std::memcpy(&code, codes_ + 4 * i, 4);
  }
  out = code;
  return code < strings_.count;
}

NodeView::ElementProblem NodeView::read_packed_string(uint64_t i, StringRef& out) const noexcept {
  const unsigned char* ends = base_ + strings_.ends_offset;
  uint64_t end = 0;
  std::memcpy(&end, ends + i * sizeof(uint64_t), sizeof end);
  format::StringEncoding encoding;
  if (strings_.encodings_in_ends) {
    encoding = static_cast<format::StringEncoding>(end >> format::kEncodingShift);
    end &= format::kEndOffsetMask;
  } else {
    encoding = static_cast<format::StringEncoding>(base_[strings_.meta_offset + i]);
  }
  if (encoding == format::StringEncoding::Missing) {
    out = {nullptr, 0, encoding};
    return ElementProblem::None;
  }
  if (static_cast<uint8_t>(encoding) > static_cast<uint8_t>(format::StringEncoding::Bytes))
    return ElementProblem::UnknownEncoding;
  uint64_t start = 0;
  if (i > 0) {
    std::memcpy(&start, ends + (i - 1) * sizeof(uint64_t), sizeof start);
    if (strings_.encodings_in_ends) start &= format::kEndOffsetMask;
  }
  if (start > end || end > strings_.bytes_size) return ElementProblem::OutsideBytes;
  const char* bytes = reinterpret_cast<const char*>(base_ + strings_.bytes_offset) + start;
  // R strings never hold a NUL (R would refuse to make the element).
  if (std::memchr(bytes, '\0', end - start) != nullptr) return ElementProblem::NulByte;
  out = {bytes, end - start, encoding};
  return ElementProblem::None;
}

bool NodeView::try_packed_string(uint64_t i, StringRef& out) const noexcept {
  return read_packed_string(i, out) == ElementProblem::None;
}

bool NodeView::try_string_at(uint64_t i, StringRef& out) const noexcept {
  if (i >= record_.length) return false;
  uint64_t k = i;
  if (codes_ != nullptr && !try_code(i, k)) return false;
  return try_packed_string(k, out);
}

bool NodeView::try_dictionary_entry(uint64_t k, StringRef& out) const noexcept {
  return codes_ != nullptr && k < strings_.count && try_packed_string(k, out);
}

StringRef NodeView::packed_string(uint64_t i) const {
  StringRef out{nullptr, 0, format::StringEncoding::Missing};
  switch (read_packed_string(i, out)) {
    case ElementProblem::None:
      return out;
    case ElementProblem::UnknownEncoding:
      corrupt("string node " + std::to_string(index_) + " has an unknown encoding byte");
    case ElementProblem::OutsideBytes:
      corrupt("string node " + std::to_string(index_) + " has an element outside its bytes");
    case ElementProblem::NulByte:
      corrupt("string node " + std::to_string(index_) + " has an element with a NUL byte");
  }
  return out;
}

std::string NodeView::attribute_name(uint32_t i) const {
  if (i >= record_.attr_count) corrupt("attribute index out of range");
  format::AttributeEntry entry;
  std::memcpy(&entry, base_ + record_.attr_offset + uint64_t{i} * sizeof entry, sizeof entry);
  if (entry.name_length == 0 || entry.name_length > format::kMaxAttributeNameLength ||
      entry.name_offset > region_size_ || entry.name_length > region_size_ - entry.name_offset)
    corrupt("node " + std::to_string(index_) + " has an attribute name outside the region");
  return std::string(reinterpret_cast<const char*>(base_ + entry.name_offset), entry.name_length);
}

uint64_t NodeView::attribute_value(uint32_t i) const {
  if (i >= record_.attr_count) corrupt("attribute index out of range");
  format::AttributeEntry entry;
  std::memcpy(&entry, base_ + record_.attr_offset + uint64_t{i} * sizeof entry, sizeof entry);
  if (entry.value_node >= index_)
    corrupt("node " + std::to_string(index_) + " has an attribute that refers to an invalid node");
  return entry.value_node;
}

bool read_region_header(int fd, format::RegionHeader& out) {
  ssize_t got = ::pread(fd, &out, sizeof out, 0);
  return got == static_cast<ssize_t>(sizeof out) && header_is_plausible(out);
}

bool read_replica_record(int fd, const format::RegionHeader& header, format::ReplicaRecord& out) {
  std::memset(&out, 0, sizeof out);
  if (header.format_version < 2 || (header.flags & format::kFlagReplica) == 0) return false;
  ssize_t got = ::pread(fd, &out, sizeof out, sizeof header);
  if (got != static_cast<ssize_t>(sizeof out)) return false;
  out.origin_host[sizeof out.origin_host - 1] = '\0';
  return out.keeper_pid > 0;
}

}  // namespace shmr
