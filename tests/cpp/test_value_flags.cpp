// Format version 2: the value flags a writer records while copying, the
// dictionary layout of strings, and what a reader makes of version 1 regions.
#include <algorithm>
#include <climits>
#include <cmath>
#include <complex>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "format.h"
#include "older_versions.h"
#include "reader.h"
#include "string_dictionary.h"
#include "test_util.h"
#include "value_scan.h"
#include "writer.h"

using shmr::NodeSpec;
using shmr::NodeView;
using shmr::RegionDescription;
using shmr::RegionReader;
using shmr::format::NodeKind;
using shmr::format::NodeRecord;
using shmr::format::RegionHeader;
using shmr::format::StringEncoding;
using namespace shmr_test;

namespace {

namespace f = shmr::format;
constexpr uint32_t kSortedUp = f::kNodeValuesScanned | f::kNodeNoMissing | f::kNodeIncreasing;
constexpr uint32_t kSortedDown = f::kNodeValuesScanned | f::kNodeNoMissing | f::kNodeDecreasing;
constexpr uint32_t kNoMissing = f::kNodeValuesScanned | f::kNodeNoMissing;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kNA = [] {  // R's NA_real_: a NaN with payload 1954
  uint64_t bits = 0x7FF00000000007A2ULL;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}();

// The flags the writer records for one vector node.
template <typename T>
uint32_t flags_of(NodeKind kind, const std::vector<T>& values) {
  RegionDescription d;
  d.nodes.push_back(vector_node(kind, values.data(), values.size()));
  Buffer region = write_region(d);
  RegionReader reader(region.data(), region.size(), "shmr_test");
  return reader.node(0).flags();
}

uint32_t sort_bits(uint32_t flags) { return flags & (f::kNodeIncreasing | f::kNodeDecreasing); }

}  // namespace

TEST(ValueFlags, DoublesSortedUnsortedAndMissing) {
  EXPECT_EQ(flags_of(NodeKind::Double, std::vector<double>{1, 2, 2, 3.5}), kSortedUp);
  EXPECT_EQ(flags_of(NodeKind::Double, std::vector<double>{3, 2, 2, -1}), kSortedDown);
  EXPECT_EQ(flags_of(NodeKind::Double, std::vector<double>{3, 1, 2}), kNoMissing);
  // -0 and 0 are equal, as R's sort() treats them.
  EXPECT_EQ(flags_of(NodeKind::Double, std::vector<double>{-1, -0.0, 0, 1}), kSortedUp);
  // NaN and NA: never sorted, never "no missing".
  EXPECT_EQ(flags_of(NodeKind::Double, std::vector<double>{1, 2, kNaN}), f::kNodeValuesScanned);
  EXPECT_EQ(flags_of(NodeKind::Double, std::vector<double>{kNA, 1, 2}), f::kNodeValuesScanned);
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(flags_of(NodeKind::Double, std::vector<double>{-inf, 0, inf}), kSortedUp);
}

TEST(ValueFlags, IntegersLogicalsAndEdgeLengths) {
  EXPECT_EQ(flags_of(NodeKind::Integer, std::vector<int32_t>{INT_MIN + 1, 0, INT_MAX}), kSortedUp);
  EXPECT_EQ(flags_of(NodeKind::Integer, std::vector<int32_t>{1, INT_MIN, 3}), f::kNodeValuesScanned);
  EXPECT_EQ(flags_of(NodeKind::Integer, std::vector<int32_t>{5}),
            kNoMissing | f::kNodeIncreasing | f::kNodeDecreasing);
  EXPECT_EQ(flags_of(NodeKind::Integer, std::vector<int32_t>{}),
            kNoMissing | f::kNodeIncreasing | f::kNodeDecreasing);
  // Logicals: NA-freedom only.
  EXPECT_EQ(flags_of(NodeKind::Logical, std::vector<int32_t>{0, 1, 1}), kNoMissing);
  EXPECT_EQ(flags_of(NodeKind::Logical, std::vector<int32_t>{0, INT_MIN}), f::kNodeValuesScanned);
  // Kinds without a summary.
  EXPECT_EQ(flags_of(NodeKind::Raw, std::vector<unsigned char>{1, 2, 3}), 0u);
  EXPECT_EQ(flags_of(NodeKind::Complex, std::vector<std::complex<double>>{{1, 2}, {3, 4}}), 0u);
}

TEST(ValueFlags, LongVectorsAcrossCopyPiecesAndScanBlocks) {
  // 1e6 doubles: four 256 KiB copy pieces and many scan blocks; an inversion
  // or NA placed at each kind of seam must be seen.
  std::vector<double> up(1000000);
  for (size_t i = 0; i < up.size(); ++i) up[i] = static_cast<double>(i) / 7;
  EXPECT_EQ(flags_of(NodeKind::Double, up), kSortedUp);
  for (size_t at : {size_t{1}, size_t{4095}, size_t{4096}, size_t{32767}, size_t{32768},
                    size_t{65536}, up.size() - 1}) {
    std::vector<double> broken = up;
    broken[at] = -1;
    EXPECT_EQ(sort_bits(flags_of(NodeKind::Double, broken)), 0u) << "inversion at " << at;
    broken = up;
    broken[at] = kNA;
    EXPECT_EQ(flags_of(NodeKind::Double, broken), f::kNodeValuesScanned) << "NA at " << at;
  }
  // Once the first block shows no order, later blocks are read for NA only:
  // an NA far past that point is still seen.
  std::vector<double> shuffled = up;
  std::swap(shuffled[0], shuffled[10]);
  EXPECT_EQ(flags_of(NodeKind::Double, shuffled), f::kNodeValuesScanned | f::kNodeNoMissing);
  for (size_t at : {size_t{4096}, size_t{500000}, up.size() - 1}) {
    std::vector<double> broken = shuffled;
    broken[at] = kNA;
    EXPECT_EQ(flags_of(NodeKind::Double, broken), f::kNodeValuesScanned) << "NA at " << at;
  }
  std::vector<int32_t> down(300000);
  for (size_t i = 0; i < down.size(); ++i) down[i] = static_cast<int32_t>(down.size() - i) / 3;
  EXPECT_EQ(flags_of(NodeKind::Integer, down), kSortedDown);
}

// The scan reads several values at a time (value_scan.cpp): an NA, or a
// break in the order, at every position of short vectors (each lane, each
// step of the unrolled loop, the remainder) must be seen as a plain loop
// over the values sees it.
template <typename T>
shmr::ValueSummary plain_summary(const std::vector<T>& v, bool (*missing)(T)) {
  shmr::ValueSummary s;
  s.empty = v.empty();
  for (size_t i = 0; i < v.size(); ++i) {
    if (missing(v[i])) s.no_missing = false;
    if (i > 0 && !(v[i - 1] <= v[i])) s.increasing = false;
    if (i > 0 && !(v[i - 1] >= v[i])) s.decreasing = false;
  }
  return s;
}

template <typename T>
void expect_scan_matches(NodeKind kind, const std::vector<T>& v, bool (*missing)(T)) {
  const shmr::ValueSummary want = plain_summary(v, missing);
  const shmr::ValueSummary got = shmr::summarize_values(kind, v.data(), v.size());
  const std::string where = "length " + std::to_string(v.size());
  EXPECT_EQ(got.no_missing, want.no_missing) << where;
  // Once an NA is seen the scan may stop: order is only vouched for without.
  if (want.no_missing) {
    EXPECT_EQ(got.increasing, want.increasing) << where;
    EXPECT_EQ(got.decreasing, want.decreasing) << where;
  }
}

TEST(ValueFlags, EveryPositionOfShortVectorsIsScanned) {
  bool (*double_missing)(double) = [](double v) { return v != v; };
  bool (*int_missing)(int32_t) = [](int32_t v) { return v == INT_MIN; };
  for (size_t n = 1; n <= 40; ++n) {
    std::vector<double> up(n);
    std::vector<int32_t> iup(n);
    for (size_t i = 0; i < n; ++i) {
      up[i] = static_cast<double>(i) * 1.5;
      iup[i] = static_cast<int32_t>(i) - 5;
    }
    expect_scan_matches(NodeKind::Double, up, double_missing);
    expect_scan_matches(NodeKind::Integer, iup, int_missing);
    for (size_t at = 0; at < n; ++at) {
      for (double bad : {kNA, kNaN, -100.0}) {
        std::vector<double> v = up;
        v[at] = bad;
        expect_scan_matches(NodeKind::Double, v, double_missing);
        std::reverse(v.begin(), v.end());
        expect_scan_matches(NodeKind::Double, v, double_missing);
      }
      for (int32_t bad : {INT_MIN, -100}) {
        std::vector<int32_t> v = iup;
        v[at] = bad;
        expect_scan_matches(NodeKind::Integer, v, int_missing);
        expect_scan_matches(NodeKind::Logical, v, int_missing);
        std::reverse(v.begin(), v.end());
        expect_scan_matches(NodeKind::Integer, v, int_missing);
      }
    }
  }
}

TEST(ValueFlags, SummariesOfRangesMerge) {
  std::vector<double> v{1, 2, 3, 4, 5, 6};
  auto whole = shmr::summarize_values(NodeKind::Double, v.data(), v.size());
  auto merged = shmr::merge_summaries(shmr::summarize_values(NodeKind::Double, v.data(), 3),
                                      shmr::summarize_values(NodeKind::Double, v.data() + 3, 3));
  EXPECT_EQ(shmr::summary_flags(NodeKind::Double, whole), shmr::summary_flags(NodeKind::Double, merged));
  std::vector<double> seam{1, 2, 3, 0, 5, 6};
  merged = shmr::merge_summaries(shmr::summarize_values(NodeKind::Double, seam.data(), 3),
                                 shmr::summarize_values(NodeKind::Double, seam.data() + 3, 3));
  EXPECT_FALSE(merged.increasing);
  EXPECT_FALSE(merged.decreasing);
  EXPECT_TRUE(merged.no_missing);
}

TEST(ValueFlags, StringsRecordMissingOnly) {
  VectorStrings with_na{{{"b", StringEncoding::Native}, {"", StringEncoding::Missing}}};
  VectorStrings without{{{"b", StringEncoding::Native}, {"a", StringEncoding::Utf8}}};
  for (auto* source : {&with_na, &without}) {
    RegionDescription d;
    d.nodes.push_back(string_node(source, 2));
    Buffer region = write_region(d);
    RegionReader reader(region.data(), region.size(), "shmr_test");
    EXPECT_EQ(reader.node(0).flags(), source == &without ? kNoMissing : f::kNodeValuesScanned);
  }
}

TEST(ValueFlags, VersionOneRegionsHaveNoValueFlags) {
  std::vector<double> up{1, 2, 3};
  RegionDescription d;
  d.nodes.push_back(vector_node(NodeKind::Double, up.data(), up.size()));
  Buffer region = write_region(d);
  region.put<uint32_t>(offsetof(RegionHeader, format_version), 1);
  region.put<uint32_t>(offsetof(RegionHeader, header_size), f::kHeaderSizeV1);
  const uint64_t flags_at = node_record_offset(region, 0) + offsetof(NodeRecord, flags);
  region.put<uint32_t>(flags_at, 0xFFFFFFFFu & ~f::kNodeDictionary);
  RegionReader reader(region.data(), region.size(), "shmr_test");
  // Only the pairlist bit existed in version 1.
  EXPECT_EQ(reader.node(0).flags(), f::kNodeFromPairlist);
  EXPECT_EQ(reader.node(0).length(), 3u);
}

namespace {

// A character vector of `n` elements drawn from `distinct` strings (one NA).
VectorStrings repeated(uint64_t n, uint64_t distinct) {
  VectorStrings v;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t k = (i * 7919) % distinct;
    if (k == 0)
      v.items.push_back({"", StringEncoding::Missing});
    else
      v.items.push_back({"value_" + std::to_string(k), k % 2 ? StringEncoding::Native : StringEncoding::Utf8});
  }
  return v;
}

// Writes `source` with the dictionary layout when plan_string_dictionary()
// chooses it; returns the region.
Buffer write_strings(const VectorStrings& source, bool* used_dictionary = nullptr,
                     uint32_t* width = nullptr) {
  auto dictionary = shmr::plan_string_dictionary(source, source.items.size());
  if (used_dictionary) *used_dictionary = dictionary.has_value();
  RegionDescription d;
  std::unique_ptr<shmr::DictionaryEntries> entries;
  if (dictionary) {
    entries = std::make_unique<shmr::DictionaryEntries>(source, *dictionary);
    d.nodes.push_back(string_node(entries.get(), dictionary->entries.size()));
    NodeSpec codes;
    codes.kind = NodeKind::String;
    codes.length = source.items.size();
    codes.dictionary = 0;
    codes.codes = dictionary->codes.data();
    codes.code_width = dictionary->code_width;
    if (width) *width = dictionary->code_width;
    d.nodes.push_back(codes);
    d.root = 1;
  } else {
    d.nodes.push_back(string_node(&source, source.items.size()));
  }
  return write_region(d);
}

void expect_same_strings(const VectorStrings& source, const Buffer& region) {
  RegionReader reader(region.data(), region.size(), "shmr_test");
  NodeView node = reader.node(reader.root());
  ASSERT_EQ(node.length(), source.items.size());
  for (uint64_t i = 0; i < node.length(); ++i) {
    shmr::StringRef got = node.string_at(i);
    const TestString& want = source.items[i];
    ASSERT_EQ(got.encoding, want.encoding) << i;
    if (want.encoding != StringEncoding::Missing) {
      ASSERT_EQ(std::string(got.data, got.size), want.bytes) << i;
    }
  }
}

}  // namespace

TEST(DictionaryStrings, Version2RegionsStillRead) {
  // Packed (all distinct) and dictionary (repeating) vectors, with NA.
  for (uint64_t distinct : {uint64_t{600}, uint64_t{26}}) {
    VectorStrings source = repeated(600, distinct);
    bool used = false;
    Buffer v3 = write_strings(source, &used);
    const std::vector<unsigned char> bytes = shmr_older::as_version2(v3.data(), v3.size());
    Buffer v2(bytes.data(), bytes.size());
    EXPECT_EQ(used, distinct == 26);
    expect_same_strings(source, v2);
    RegionReader reader(v2.data(), v2.size(), "shmr_test");
    EXPECT_EQ(reader.header().format_version, 2u);
    // A version 2 reader checks the encoding array: an unknown byte in it
    // is still corrupt, and only for its element.
    const NodeRecord packed = node_record(v2, 0);
    Buffer bad = v2;
    bad.put<uint8_t>(packed.meta_offset + 1, 9);
    RegionReader bad_reader(bad.data(), bad.size(), "shmr_test");
    EXPECT_CORRUPT(bad_reader.node(0).string_at(1));
    EXPECT_NO_THROW(bad_reader.node(0).string_at(2));
    Buffer outside = v2;
    outside.put<uint64_t>(node_record_offset(outside, 0) + offsetof(NodeRecord, meta_offset), v2.size());
    RegionReader outside_reader(outside.data(), outside.size(), "shmr_test");
    EXPECT_CORRUPT(outside_reader.node(0));
  }
}

TEST(DictionaryStrings, LowCardinalityIsStoredOnceAndReadsBack) {
  for (uint64_t distinct : {uint64_t{2}, uint64_t{26}, uint64_t{300}, uint64_t{5000}}) {
    VectorStrings source = repeated(20000, distinct);
    bool used = false;
    uint32_t width = 0;
    Buffer region = write_strings(source, &used, &width);
    EXPECT_TRUE(used) << distinct;
    EXPECT_EQ(width, distinct <= 256 ? 1u : 2u) << distinct;
    expect_same_strings(source, region);
    RegionReader reader(region.data(), region.size(), "shmr_test");
    NodeView node = reader.node(reader.root());
    EXPECT_TRUE(node.is_dictionary());
    EXPECT_EQ(node.dictionary_size(), distinct);
    // One NA among the values: no "no missing" flag; the dictionary's is the same.
    EXPECT_EQ(node.flags() & (f::kNodeValuesScanned | f::kNodeNoMissing), f::kNodeValuesScanned);
    // Much smaller than the packed layout of the same vector.
    Buffer packed;
    {
      RegionDescription d;
      d.nodes.push_back(string_node(&source, source.items.size()));
      packed = write_region(d);
    }
    EXPECT_LT(region.size() * 2, packed.size()) << distinct;
  }
}

TEST(DictionaryStrings, DistinctOrShortVectorsStayPacked) {
  VectorStrings distinct = repeated(20000, 20000);
  EXPECT_FALSE(shmr::plan_string_dictionary(distinct, distinct.items.size()).has_value());
  VectorStrings tiny = repeated(10, 2);
  EXPECT_FALSE(shmr::plan_string_dictionary(tiny, tiny.items.size()).has_value());
  // A sample that looks repetitive but a vector that is not: the whole pass
  // gives up as soon as half the elements are distinct.
  VectorStrings tricky = repeated(20000, 20000);
  for (uint64_t i = 0; i < 20000; i += 9) tricky.items[i] = {"same", StringEncoding::Native};
  expect_same_strings(tricky, write_strings(tricky));
}

TEST(DictionaryStrings, HostileRecordsAreRefused) {
  VectorStrings source = repeated(1000, 5);
  Buffer region = write_strings(source);
  const uint64_t rec = node_record_offset(region, 1);
  auto corrupted = [&](size_t field, auto value) {
    Buffer copy = region;
    copy.put(rec + field, value);
    return copy;
  };
  auto open_root = [](const Buffer& b) {
    RegionReader reader(b.data(), b.size(), "shmr_test");
    return reader.node(1);
  };
  for (uint32_t width : {0u, 3u, 8u, 0xFFFFFFFFu})
    EXPECT_CORRUPT(open_root(corrupted(offsetof(NodeRecord, code_width), width))) << width;
  // The dictionary must be an earlier, packed String node.
  EXPECT_CORRUPT(open_root(corrupted(offsetof(NodeRecord, index_offset), uint64_t{1})));
  EXPECT_CORRUPT(open_root(corrupted(offsetof(NodeRecord, index_offset), uint64_t{1} << 40)));
  {
    Buffer copy = region;  // the dictionary itself claims the dictionary layout
    copy.put<uint32_t>(node_record_offset(copy, 0) + offsetof(NodeRecord, flags), f::kNodeDictionary);
    EXPECT_CORRUPT(open_root(copy));
  }
  {
    Buffer copy = region;  // the dictionary is not a String node
    copy.put<uint32_t>(node_record_offset(copy, 0) + offsetof(NodeRecord, kind),
                       static_cast<uint32_t>(NodeKind::Integer));
    EXPECT_CORRUPT(open_root(copy));
  }
  // Codes beyond the region, or a length that does not match them.
  EXPECT_CORRUPT(open_root(corrupted(offsetof(NodeRecord, length), uint64_t{1001})));
  EXPECT_CORRUPT(open_root(corrupted(offsetof(NodeRecord, data_offset), uint64_t{region.size()})));
  // A code outside the dictionary is refused when that element is read.
  {
    Buffer copy = region;
    const auto codes = node_record(copy, 1).data_offset;
    copy.data()[codes + 17] = 200;  // 5 entries
    RegionReader reader(copy.data(), copy.size(), "shmr_test");
    NodeView node = reader.node(1);
    EXPECT_CORRUPT(node.string_at(17));
    EXPECT_CORRUPT(node.code(17));
    EXPECT_NO_THROW(node.string_at(16));
  }
  // A version 1 region has no dictionary layout: the flag is not honoured.
  {
    Buffer copy = region;
    copy.put<uint32_t>(offsetof(RegionHeader, format_version), 1);
    copy.put<uint32_t>(offsetof(RegionHeader, header_size), f::kHeaderSizeV1);
    RegionReader reader(copy.data(), copy.size(), "shmr_test");
    EXPECT_CORRUPT({
      NodeView node = reader.node(1);
      for (uint64_t i = 0; i < node.length(); ++i) node.string_at(i);
    });
  }
}

TEST(DictionaryStrings, WriterRefusesBadDescriptions) {
  VectorStrings source = repeated(100, 3);
  std::vector<unsigned char> codes(100, 0);
  RegionDescription d;
  d.nodes.push_back(string_node(&source, 3));
  NodeSpec spec;
  spec.kind = NodeKind::String;
  spec.length = 100;
  spec.dictionary = 0;
  spec.codes = codes.data();
  spec.code_width = 1;
  d.nodes.push_back(spec);
  d.root = 1;
  EXPECT_NO_THROW(write_region(d));
  d.nodes[1].code_width = 3;
  EXPECT_INVALID(write_region(d));
  d.nodes[1].code_width = 1;
  d.nodes[1].dictionary = 1;
  EXPECT_INVALID(write_region(d));
  d.nodes[1].dictionary = 0;
  codes[50] = 3;  // the dictionary has 3 entries
  EXPECT_INVALID(write_region(d));
}
