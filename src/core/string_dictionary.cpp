#include "string_dictionary.h"

#include <cstring>

#include "format.h"

namespace shmr {
namespace {

// Below this many elements the layouts differ by a few bytes.
constexpr uint64_t kMinimumLength = 32;
// A sample this large tells vectors of up to about 150,000 distinct strings
// (birthday collisions) from vectors of distinct strings, which keep the
// packed layout without being read twice.
constexpr uint64_t kSampleSize = 16384;

uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

uint64_t content_hash(const StringRef& s) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ (s.size * 0x100000001b3ULL) ^ static_cast<uint64_t>(s.encoding);
  uint64_t i = 0;
  for (; i + 8 <= s.size; i += 8) {
    uint64_t word;
    std::memcpy(&word, s.data + i, 8);
    h = mix(h ^ word);
  }
  uint64_t tail = 0;
  if (i < s.size) std::memcpy(&tail, s.data + i, s.size - i);
  return mix(h ^ tail);
}

bool same_string(const StringRef& a, const StringRef& b) {
  return a.encoding == b.encoding && a.size == b.size &&
         (a.size == 0 || std::memcmp(a.data, b.data, a.size) == 0);
}

// Distinct strings seen so far, by identity (the source's own, such as R's
// one CHARSXP per string) or else by content. Open addressing.
class DistinctStrings {
 public:
  DistinctStrings(const StringSource& source, bool by_identity)
      : source_(source), by_identity_(by_identity) {
    slots_.assign(1024, Slot{});
  }

  // The entry number of element i's string, adding it when new.
  uint32_t code_of(uint64_t i) {
    StringRef s{};
    uint64_t key;
    if (by_identity_) {
      key = reinterpret_cast<uintptr_t>(source_.identity(i));
    } else {
      s = source_.at(i);
      key = content_hash(s);
    }
    const uint64_t mask = slots_.size() - 1;
    for (uint64_t at = mix(key) & mask;; at = (at + 1) & mask) {
      Slot& slot = slots_[at];
      if (slot.entry == kEmpty) {
        slot.key = key;
        slot.entry = static_cast<uint32_t>(entries_.size());
        entries_.push_back(i);
        if (entries_.size() * 2 > slots_.size()) grow();
        return static_cast<uint32_t>(entries_.size() - 1);
      }
      if (slot.key == key &&
          (by_identity_ || same_string(source_.at(entries_[slot.entry]), s)))
        return slot.entry;
    }
  }

  uint64_t size() const { return entries_.size(); }
  std::vector<uint64_t> take_entries() { return std::move(entries_); }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  struct Slot {
    uint64_t key = 0;
    uint32_t entry = kEmpty;
  };

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    const uint64_t mask = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.entry == kEmpty) continue;
      uint64_t at = mix(slot.key) & mask;
      while (slots_[at].entry != kEmpty) at = (at + 1) & mask;
      slots_[at] = slot;
    }
  }

  const StringSource& source_;
  bool by_identity_;
  std::vector<Slot> slots_;
  std::vector<uint64_t> entries_;
};

uint64_t packed_size(uint64_t count, uint64_t bytes) {
  return format::align_up(8 * count) + format::align_up(count) + format::align_up(bytes);
}

}  // namespace

std::optional<StringDictionary> plan_string_dictionary(const StringSource& source, uint64_t count) {
  if (count < kMinimumLength) return std::nullopt;
  const bool by_identity = source.identity(0) != nullptr;

  // Mostly distinct strings (the sample says so) keep the packed layout.
  const uint64_t sample = count < kSampleSize ? count : kSampleSize;
  {
    DistinctStrings seen(source, by_identity);
    for (uint64_t k = 0; k < sample; ++k) seen.code_of(k * (count / sample));
    if (seen.size() * 20 > sample * 19) return std::nullopt;
  }

  // With more than 80% distinct strings the saving is small: stop reading.
  DistinctStrings seen(source, by_identity);
  std::vector<uint32_t> codes(count);
  uint64_t bytes = 0;
  for (uint64_t i = 0; i < count; ++i) {
    codes[i] = seen.code_of(i);
    if (seen.size() * 5 > count * 4) return std::nullopt;
    bytes += source.at(i).size;
  }

  StringDictionary dictionary;
  dictionary.entries = seen.take_entries();
  const uint64_t distinct = dictionary.entries.size();
  uint64_t distinct_bytes = 0;
  for (uint64_t entry : dictionary.entries) distinct_bytes += source.at(entry).size;
  dictionary.code_width = distinct <= 0x100 ? 1 : distinct <= 0x10000 ? 2 : 4;
  const uint64_t dictionary_size = format::align_up(count * dictionary.code_width) +
                                   packed_size(distinct, distinct_bytes) +
                                   sizeof(format::NodeRecord);
  if (dictionary_size >= packed_size(count, bytes)) return std::nullopt;

  dictionary.codes.resize(count * dictionary.code_width);
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t code = codes[i];
    unsigned char* out = dictionary.codes.data() + i * dictionary.code_width;
    for (uint32_t b = 0; b < dictionary.code_width; ++b) out[b] = static_cast<unsigned char>(code >> (8 * b));
  }
  return dictionary;
}

}  // namespace shmr
