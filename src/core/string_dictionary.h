// The dictionary layout of a character vector (FORMAT.md 2.4): each distinct
// string stored once, and a small code per element. The writer's caller asks
// for it; it is chosen only when it makes the node smaller.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "writer.h"

namespace shmr {

struct StringDictionary {
  // Element index of the first occurrence of each distinct string.
  std::vector<uint64_t> entries;
  // One code per element, code_width bytes each, little-endian.
  std::vector<unsigned char> codes;
  uint32_t code_width = 0;
};

// A dictionary for the `count` strings of `source`, or nullopt when the
// packed layout is as small. A vector of mostly distinct strings is told
// apart from a sample, before the whole vector is read.
std::optional<StringDictionary> plan_string_dictionary(const StringSource& source, uint64_t count);

// The dictionary's strings, as the source of its own (packed) node.
class DictionaryEntries : public StringSource {
 public:
  DictionaryEntries(const StringSource& source, const StringDictionary& dictionary)
      : source_(source), dictionary_(dictionary) {}
  StringRef at(uint64_t k) const override { return source_.at(dictionary_.entries[k]); }
  bool may_hold_nul() const override { return source_.may_hold_nul(); }

 private:
  const StringSource& source_;
  const StringDictionary& dictionary_;
};

}  // namespace shmr
