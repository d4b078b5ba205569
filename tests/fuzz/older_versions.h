// Regions in the layout of an older format version, made from one the writer
// wrote: for the reader's tests and the fuzz seed corpus (the writer only
// writes the current version).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "format.h"

namespace shmr_older {

// `region` (version 3) in version 2's packed string layout: the encodings
// move out of the top bytes of the end offset words into an array of their
// own per packed String node, appended after the region's last byte.
inline std::vector<unsigned char> as_version2(const unsigned char* region, size_t size) {
  namespace f = shmr::format;
  f::RegionHeader header;
  std::memcpy(&header, region, sizeof header);
  const auto record_at = [&](uint64_t i) { return header.node_table_offset + i * sizeof(f::NodeRecord); };
  uint64_t extra = 0;
  for (uint64_t i = 0; i < header.node_count; ++i) {
    f::NodeRecord rec;
    std::memcpy(&rec, region + record_at(i), sizeof rec);
    if (rec.kind == static_cast<uint32_t>(f::NodeKind::String) && !(rec.flags & f::kNodeDictionary))
      extra += f::align_up(rec.length);
  }
  std::vector<unsigned char> out(region, region + size);
  out.resize(size + extra, 0);
  uint64_t array_at = size;
  for (uint64_t i = 0; i < header.node_count; ++i) {
    f::NodeRecord rec;
    std::memcpy(&rec, out.data() + record_at(i), sizeof rec);
    if (rec.kind != static_cast<uint32_t>(f::NodeKind::String) || (rec.flags & f::kNodeDictionary)) continue;
    for (uint64_t k = 0; k < rec.length; ++k) {
      unsigned char* word_at = out.data() + rec.index_offset + k * sizeof(uint64_t);
      uint64_t word;
      std::memcpy(&word, word_at, sizeof word);
      out[array_at + k] = static_cast<unsigned char>(word >> f::kEncodingShift);
      word &= f::kEndOffsetMask;
      std::memcpy(word_at, &word, sizeof word);
    }
    rec.meta_offset = array_at;
    std::memcpy(out.data() + record_at(i), &rec, sizeof rec);
    array_at += f::align_up(rec.length);
  }
  header.format_version = 2;
  header.total_size = out.size();
  std::memcpy(out.data(), &header, sizeof header);
  return out;
}

}  // namespace shmr_older
