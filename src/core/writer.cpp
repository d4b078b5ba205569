#include "writer.h"

#include <cstring>
#include <limits>

#include "error.h"

namespace shmr {

using format::NodeKind;

namespace {

uint64_t checked_add(uint64_t a, uint64_t b) {
  if (a > std::numeric_limits<uint64_t>::max() - b)
    throw Error(ErrorKind::InvalidArgument, "object is too large to share");
  return a + b;
}

uint64_t checked_mul(uint64_t a, uint64_t b) {
  if (b != 0 && a > std::numeric_limits<uint64_t>::max() / b)
    throw Error(ErrorKind::InvalidArgument, "object is too large to share");
  return a * b;
}

// format::align_up, refusing sizes where rounding up would wrap around.
uint64_t checked_align_up(uint64_t value) {
  return checked_add(value, format::kAlignment - 1) / format::kAlignment * format::kAlignment;
}

// Reserves `bytes` at the next aligned offset and returns that offset.
uint64_t reserve(uint64_t& cursor, uint64_t bytes) {
  uint64_t at = checked_align_up(cursor);
  cursor = checked_add(at, bytes);
  return at;
}

}  // namespace

RegionWriter::RegionWriter(const RegionDescription& description) : description_(description) {
  const auto& nodes = description.nodes;
  if (nodes.empty() || description.root >= nodes.size())
    throw Error(ErrorKind::InvalidArgument, "region description has no root node");

  uint64_t cursor = format::kHeaderSizeV2;
  node_table_offset_ = reserve(cursor, checked_mul(nodes.size(), sizeof(format::NodeRecord)));
  records_.resize(nodes.size());

  for (uint64_t i = 0; i < nodes.size(); ++i) {
    const NodeSpec& spec = nodes[i];
    format::NodeRecord& rec = records_[i];
    std::memset(&rec, 0, sizeof rec);
    rec.kind = static_cast<uint32_t>(spec.kind);
    rec.flags = spec.flags;
    rec.length = spec.length;
    has_zero_filled_ = has_zero_filled_ || spec.zero_filled;

    for (const auto& attribute : spec.attributes) {
      if (attribute.second >= i)
        throw Error(ErrorKind::InvalidArgument, "attribute refers forward in the node list");
      if (attribute.first.empty() || attribute.first.size() > format::kMaxAttributeNameLength)
        throw Error(ErrorKind::InvalidArgument, "attribute name length out of range");
    }
    if (!spec.attributes.empty()) {
      rec.attr_count = static_cast<uint32_t>(spec.attributes.size());
      rec.attr_offset = reserve(cursor, checked_mul(spec.attributes.size(),
                                                    sizeof(format::AttributeEntry)));
      for (const auto& attribute : spec.attributes)
        attribute_name_offsets_.push_back(reserve(cursor, attribute.first.size()));
    }

    switch (spec.kind) {
      case NodeKind::Null:
        if (spec.length != 0) throw Error(ErrorKind::InvalidArgument, "NULL node with a length");
        break;
      case NodeKind::Logical:
      case NodeKind::Integer:
      case NodeKind::Double:
      case NodeKind::Complex:
      case NodeKind::Raw:
        rec.data_size = checked_mul(spec.length, format::element_size(spec.kind));
        if (rec.data_size > 0 && spec.bytes == nullptr && !spec.zero_filled)
          throw Error(ErrorKind::InvalidArgument, "vector node without data");
        rec.data_offset = reserve(cursor, rec.data_size);
        break;
      case NodeKind::String: {
        if (spec.strings == nullptr && spec.length > 0)
          throw Error(ErrorKind::InvalidArgument, "string node without a source");
        uint64_t bytes = 0;
        for (uint64_t k = 0; k < spec.length; ++k) {
          StringRef s = spec.strings->at(k);
          if (s.encoding == format::StringEncoding::Missing) continue;
          // The reader refuses NUL bytes (FORMAT.md 2.4); R never makes them.
          if (s.size > 0 && std::memchr(s.data, '\0', s.size) != nullptr)
            throw Error(ErrorKind::InvalidArgument, "a string element contains a NUL byte");
          bytes = checked_add(bytes, s.size);
        }
        rec.index_offset = reserve(cursor, checked_mul(spec.length, sizeof(uint64_t)));
        rec.meta_offset = reserve(cursor, spec.length);
        rec.data_size = bytes;
        rec.data_offset = reserve(cursor, bytes);
        break;
      }
      case NodeKind::List:
        if (spec.children.size() != spec.length)
          throw Error(ErrorKind::InvalidArgument, "list node length does not match its children");
        for (uint64_t child : spec.children)
          if (child >= i)
            throw Error(ErrorKind::InvalidArgument, "list element refers forward in the node list");
        rec.data_size = checked_mul(spec.length, sizeof(uint64_t));
        rec.data_offset = reserve(cursor, rec.data_size);
        break;
      case NodeKind::Serialized:
        rec.length = spec.byte_count;
        rec.data_size = spec.byte_count;
        if (rec.data_size > 0 && spec.bytes == nullptr)
          throw Error(ErrorKind::InvalidArgument, "serialized node without data");
        rec.data_offset = reserve(cursor, rec.data_size);
        break;
    }
  }
  total_size_ = checked_align_up(cursor);
}

void RegionWriter::write(void* base, uint64_t size, int64_t creator_pid,
                         uint64_t creator_start_ticks, int64_t created_unix_ms) const {
  if (size != total_size_) throw Error(ErrorKind::InvalidArgument, "region size mismatch");
  auto* bytes = static_cast<unsigned char*>(base);
  const auto& nodes = description_.nodes;

  size_t name_index = 0;
  for (uint64_t i = 0; i < nodes.size(); ++i) {
    const NodeSpec& spec = nodes[i];
    const format::NodeRecord& rec = records_[i];

    for (uint32_t a = 0; a < rec.attr_count; ++a) {
      const auto& attribute = spec.attributes[a];
      format::AttributeEntry entry{};
      entry.name_offset = attribute_name_offsets_[name_index++];
      entry.name_length = static_cast<uint32_t>(attribute.first.size());
      entry.value_node = attribute.second;
      std::memcpy(bytes + entry.name_offset, attribute.first.data(), attribute.first.size());
      std::memcpy(bytes + rec.attr_offset + a * sizeof entry, &entry, sizeof entry);
    }

    switch (spec.kind) {
      case NodeKind::Logical:
      case NodeKind::Integer:
      case NodeKind::Double:
      case NodeKind::Complex:
      case NodeKind::Raw:
      case NodeKind::Serialized:
        // A fresh region reads as zeros, so a zero-filled node needs no write.
        if (rec.data_size > 0 && !spec.zero_filled)
          std::memcpy(bytes + rec.data_offset, spec.bytes, rec.data_size);
        break;
      case NodeKind::String: {
        auto* ends = reinterpret_cast<uint64_t*>(bytes + rec.index_offset);
        auto* meta = bytes + rec.meta_offset;
        uint64_t end = 0;
        for (uint64_t k = 0; k < spec.length; ++k) {
          StringRef s = spec.strings->at(k);
          meta[k] = static_cast<uint8_t>(s.encoding);
          if (s.encoding != format::StringEncoding::Missing) {
            if (end + s.size > rec.data_size)
              throw Error(ErrorKind::InvalidArgument, "character vector changed while sharing");
            std::memcpy(bytes + rec.data_offset + end, s.data, s.size);
            end += s.size;
          }
          ends[k] = end;
        }
        break;
      }
      case NodeKind::List: {
        auto* table = reinterpret_cast<uint64_t*>(bytes + rec.data_offset);
        for (uint64_t k = 0; k < spec.length; ++k) table[k] = spec.children[k];
        break;
      }
      case NodeKind::Null:
        break;
    }
  }
  std::memcpy(bytes + node_table_offset_, records_.data(),
              records_.size() * sizeof(format::NodeRecord));
  // An empty replica record: only a process that copies the region from
  // another host fills it.
  std::memset(bytes + sizeof(format::RegionHeader), 0, sizeof(format::ReplicaRecord));

  format::RegionHeader header{};
  std::memcpy(header.magic, format::kMagic, sizeof header.magic);
  header.format_version = format::kVersion;
  header.header_size = format::kHeaderSizeV2;
  header.total_size = total_size_;
  header.flags = description_.flags;
  header.creator_pid = creator_pid;
  header.creator_start_ticks = creator_start_ticks;
  header.created_unix_ms = created_unix_ms;
  header.node_count = nodes.size();
  header.node_table_offset = node_table_offset_;
  header.root_node = description_.root;
  std::strncpy(header.original_class, description_.original_class.c_str(),
               sizeof header.original_class - 1);
  std::memcpy(bytes, &header, sizeof header);
}

}  // namespace shmr
