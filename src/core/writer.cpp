#include "writer.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "creator.h"
#include "error.h"
#include "value_scan.h"

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
    has_generated_ = has_generated_ || (spec.bytes == nullptr && spec.source != nullptr);

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
        if (rec.data_size > 0 && spec.bytes == nullptr && spec.source == nullptr &&
            !spec.zero_filled)
          throw Error(ErrorKind::InvalidArgument, "vector node without data");
        rec.data_offset = reserve(cursor, rec.data_size);
        break;
      case NodeKind::String: {
        if (spec.dictionary != format::kNoNode) {
          if (spec.dictionary >= i || nodes[spec.dictionary].kind != NodeKind::String ||
              nodes[spec.dictionary].dictionary != format::kNoNode)
            throw Error(ErrorKind::InvalidArgument,
                        "a string dictionary must be an earlier string node in the packed layout");
          if (spec.code_width != 1 && spec.code_width != 2 && spec.code_width != 4)
            throw Error(ErrorKind::InvalidArgument, "string codes must be 1, 2 or 4 bytes wide");
          if (spec.length > 0 && spec.codes == nullptr)
            throw Error(ErrorKind::InvalidArgument, "dictionary string node without codes");
          rec.flags |= format::kNodeDictionary;
          rec.code_width = spec.code_width;
          rec.index_offset = spec.dictionary;
          rec.data_size = checked_mul(spec.length, spec.code_width);
          rec.data_offset = reserve(cursor, rec.data_size);
          // Codes name dictionary entries only: no NA in the dictionary, none here.
          rec.flags |= records_[spec.dictionary].flags &
                       (format::kNodeValuesScanned | format::kNodeNoMissing);
          break;
        }
        if (spec.strings == nullptr && spec.length > 0)
          throw Error(ErrorKind::InvalidArgument, "string node without a source");
        uint64_t bytes = 0;
        bool missing = false;
        const bool may_hold_nul = spec.length > 0 && spec.strings->may_hold_nul();
        for (uint64_t k = 0; k < spec.length; ++k) {
          StringRef s = spec.strings->at(k);
          if (s.encoding == format::StringEncoding::Missing) {
            missing = true;
            continue;
          }
          // The reader refuses NUL bytes (FORMAT.md 2.4).
          if (may_hold_nul && s.size > 0 && std::memchr(s.data, '\0', s.size) != nullptr)
            throw Error(ErrorKind::InvalidArgument, "a string element contains a NUL byte");
          bytes = checked_add(bytes, s.size);
        }
        // An end offset shares its word with the encoding (FORMAT.md 2.4).
        if (bytes > format::kEndOffsetMask)
          throw Error(ErrorKind::InvalidArgument, "a character vector holds more than 2^56 bytes");
        rec.index_offset = reserve(cursor, checked_mul(spec.length, sizeof(uint64_t)));
        rec.data_size = bytes;
        rec.data_offset = reserve(cursor, bytes);
        rec.flags |= format::kNodeValuesScanned | (missing ? 0 : format::kNodeNoMissing);
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
      case NodeKind::StreamElement:
        if (spec.stream >= i || nodes[spec.stream].kind != NodeKind::Serialized)
          throw Error(ErrorKind::InvalidArgument, "a stream element must refer to an earlier serialized node");
        if (!spec.attributes.empty())
          throw Error(ErrorKind::InvalidArgument, "a stream element has no attributes of its own");
        rec.index_offset = spec.stream;
        break;
    }
  }
  total_size_ = checked_align_up(cursor);
}

void RegionWriter::write(void* base, uint64_t size, int64_t creator_pid,
                         uint64_t creator_start_ticks, int64_t created_unix_ms) const {
  if (size != total_size_) throw Error(ErrorKind::InvalidArgument, "region size mismatch");
  MemorySink sink(base, size);
  write(sink, creator_pid, creator_start_ticks, created_unix_ms, description_.flags);
}

namespace {

// A String node's two arrays (end offset words, bytes), written a block of
// elements at a time: the sink gets long runs, not one put per element, and
// the block's arrays stay small. The bytes of a block's short strings are
// gathered into one run first (a put per element costs more than the copy);
// a long string goes to the sink as it is. A node of one block is put in the
// layout's order (ends, bytes), so that the many small string nodes of a
// list reach the sink as one sequential run.
void write_strings(RegionSink& sink, const NodeSpec& spec, const format::NodeRecord& rec) {
  constexpr uint64_t kBlock = 16384;
  constexpr uint64_t kGatheredBelow = 4096;
  std::vector<uint64_t> ends;
  std::vector<const char*> bytes;
  std::vector<char> run;
  uint64_t end = 0;
  for (uint64_t first = 0; first < spec.length; first += kBlock) {
    const uint64_t count = std::min(kBlock, spec.length - first);
    ends.resize(count);
    bytes.resize(count);
    const uint64_t block_start = end;
    for (uint64_t k = 0; k < count; ++k) {
      StringRef s = spec.strings->at(first + k);
      bytes[k] = s.data;
      if (s.encoding != format::StringEncoding::Missing) {
        if (s.size > rec.data_size - end)
          throw Error(ErrorKind::InvalidArgument, "character vector changed while sharing");
        end += s.size;
      }
      ends[k] = format::end_word(end, s.encoding);
    }
    sink.put(rec.index_offset + first * sizeof(uint64_t), ends.data(), count * sizeof(uint64_t));
    // The run holds the bytes from run_start to `at`, relative to the node's data.
    uint64_t run_start = block_start;
    uint64_t at = block_start;
    run.clear();
    for (uint64_t k = 0; k < count; ++k) {
      const uint64_t element_end = ends[k] & format::kEndOffsetMask;
      const uint64_t size = element_end - at;
      if (size >= kGatheredBelow) {
        sink.put(rec.data_offset + run_start, run.data(), run.size());
        run.clear();
        sink.put(rec.data_offset + at, bytes[k], size);
        run_start = element_end;
      } else {
        run.insert(run.end(), bytes[k], bytes[k] + size);
      }
      at = element_end;
    }
    sink.put(rec.data_offset + run_start, run.data(), run.size());
  }
}

// A fixed-width node whose values a VectorSource makes (a compact
// sequence), a block at a time, summarised as they are made.
ValueSummary write_generated(RegionSink& sink, const NodeSpec& spec, const format::NodeRecord& rec) {
  constexpr uint64_t kBlock = uint64_t{1} << 16;  // elements
  const uint64_t width = format::element_size(spec.kind);
  std::vector<unsigned char> block(std::min(kBlock, spec.length) * width);
  ValueSummary summary;
  for (uint64_t first = 0; first < spec.length; first += kBlock) {
    const uint64_t count = std::min(kBlock, spec.length - first);
    spec.source->copy_to(block.data(), first, count);
    if (has_value_summary(spec.kind))
      summary = merge_summaries(summary, summarize_values(spec.kind, block.data(), count));
    sink.put(rec.data_offset + first * width, block.data(), count * width);
  }
  return summary;
}

}  // namespace

void RegionWriter::write(RegionSink& sink, int64_t creator_pid, uint64_t creator_start_ticks,
                         int64_t created_unix_ms, uint64_t header_flags,
                         uint64_t creator_pid_namespace) const {
  const auto& nodes = description_.nodes;
  // Value flags are learnt while copying.
  std::vector<format::NodeRecord> records = records_;

  size_t name_index = 0;
  std::vector<format::AttributeEntry> entries;
  for (uint64_t i = 0; i < nodes.size(); ++i) {
    const NodeSpec& spec = nodes[i];
    format::NodeRecord& rec = records[i];

    if (rec.attr_count > 0) {
      entries.assign(rec.attr_count, format::AttributeEntry{});
      const size_t first_name = name_index;
      for (uint32_t a = 0; a < rec.attr_count; ++a) {
        entries[a].name_offset = attribute_name_offsets_[name_index++];
        entries[a].name_length = static_cast<uint32_t>(spec.attributes[a].first.size());
        entries[a].value_node = spec.attributes[a].second;
      }
      sink.put(rec.attr_offset, entries.data(), entries.size() * sizeof(format::AttributeEntry));
      for (uint32_t a = 0; a < rec.attr_count; ++a) {
        const std::string& name = spec.attributes[a].first;
        sink.put(attribute_name_offsets_[first_name + a], name.data(), name.size());
      }
    }

    switch (spec.kind) {
      case NodeKind::Logical:
      case NodeKind::Integer:
      case NodeKind::Double:
      case NodeKind::Complex:
      case NodeKind::Raw:
      case NodeKind::Serialized:
        // A fresh region reads as zeros, so a zero-filled node needs no write.
        if (spec.zero_filled) break;
        if (spec.bytes == nullptr && spec.source != nullptr) {
          const ValueSummary summary = write_generated(sink, spec, rec);
          if (has_value_summary(spec.kind)) rec.flags |= summary_flags(spec.kind, summary);
          break;
        }
        if (rec.data_size > 0) sink.put_lasting(rec.data_offset, spec.bytes, rec.data_size);
        if (has_value_summary(spec.kind)) {
          // Scanned after the put, from the source: a large payload is being
          // written by the sink's own thread meanwhile, so the scan costs no
          // time of its own. The flags reach the region with the node table.
          ValueSummary summary =
              summarize_values(spec.kind, spec.bytes, rec.data_size / format::element_size(spec.kind));
          rec.flags |= summary_flags(spec.kind, summary);
        }
        break;
      case NodeKind::String:
        if (spec.dictionary != format::kNoNode) {
          const uint64_t entries_count = nodes[spec.dictionary].length;
          for (uint64_t k = 0; k < spec.length; ++k) {
            uint32_t code = 0;
            std::memcpy(reinterpret_cast<unsigned char*>(&code),
                        static_cast<const unsigned char*>(spec.codes) + k * spec.code_width,
                        spec.code_width);  // little-endian (FORMAT.md 2)
            if (code >= entries_count)
              throw Error(ErrorKind::InvalidArgument, "a string code is outside its dictionary");
          }
          if (rec.data_size > 0) sink.put(rec.data_offset, spec.codes, rec.data_size);
          break;
        }
        write_strings(sink, spec, rec);
        break;
      case NodeKind::List:
        sink.put(rec.data_offset, spec.children.data(), spec.length * sizeof(uint64_t));
        break;
      case NodeKind::Null:
      case NodeKind::StreamElement:
        break;
    }
  }
  // An empty replica record: only a process that copies the region from
  // another host fills it. Put explicitly, as a sink's target need not read
  // as zeros (MemorySink). Put before the node table, which follows it: a
  // file sink then writes the two with one call.
  const format::ReplicaRecord no_replica{};
  sink.put(sizeof(format::RegionHeader), &no_replica, sizeof no_replica);
  sink.put(node_table_offset_, records.data(), records.size() * sizeof(format::NodeRecord));
  // Everything else is in place before the header makes the region valid.
  sink.finish();

  format::RegionHeader header{};
  std::memcpy(header.magic, format::kMagic, sizeof header.magic);
  header.format_version = format::kVersion;
  header.header_size = format::kHeaderSizeV2;
  header.total_size = total_size_;
  header.flags = header_flags;
  header.creator_pid = creator_pid;
  header.creator_start_ticks = creator_start_ticks;
  header.created_unix_ms = created_unix_ms;
  header.node_count = nodes.size();
  header.node_table_offset = node_table_offset_;
  header.root_node = description_.root;
  std::strncpy(header.original_class, description_.original_class.c_str(),
               sizeof header.original_class - 1);
  format::set_creator(header, {creator_pid, creator_start_ticks, creator_pid_namespace});
  sink.put(0, &header, sizeof header);
  sink.finish();
}

}  // namespace shmr
