// Round trips through RegionWriter and RegionReader for every node kind.
#include <climits>
#include <cmath>
#include <complex>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "format.h"
#include "reader.h"
#include "test_util.h"
#include "writer.h"

using shmr::NodeSpec;
using shmr::NodeView;
using shmr::RegionDescription;
using shmr::RegionReader;
using shmr::RegionWriter;
using shmr::StringRef;
using shmr::format::NodeKind;
using shmr::format::NodeRecord;
using shmr::format::RegionHeader;
using shmr::format::StringEncoding;
using namespace shmr_test;

namespace {

std::string view_string(const StringRef& s) { return std::string(s.data, s.size); }

template <typename T>
std::vector<T> view_values(const NodeView& node) {
  std::vector<T> out(node.length());
  if (!out.empty()) std::memcpy(out.data(), node.data(), node.data_size());
  return out;
}

// Every kind of node in one region, with attributes.
struct AllKinds {
  std::vector<int32_t> logicals{1, 0, INT_MIN};
  std::vector<int32_t> integers{1, -2, INT_MAX, INT_MIN + 1, INT_MIN};
  std::vector<double> doubles{1.5, -0.0, std::numeric_limits<double>::infinity(),
                              std::numeric_limits<double>::quiet_NaN(), 1e-300};
  std::vector<std::complex<double>> complexes{{1.0, -2.0}, {0.0, 3.25}};
  std::vector<unsigned char> raws{0, 255, 7, 128};
  std::vector<unsigned char> blob;
  VectorStrings strings{{
      {"a", StringEncoding::Native},
      {"", StringEncoding::Missing},
      {"", StringEncoding::Native},
      {"h\xc3\xa9llo \xe2\x82\xac", StringEncoding::Utf8},
      {"caf\xe9", StringEncoding::Latin1},
      {std::string("\x01\x02\xff\x80", 4), StringEncoding::Bytes},
      {"", StringEncoding::Utf8},
      {"last", StringEncoding::Native},
  }};
  VectorStrings names{{{"lgl", StringEncoding::Native},
                       {"int", StringEncoding::Native},
                       {"dbl", StringEncoding::Native},
                       {"cpl", StringEncoding::Native},
                       {"raw", StringEncoding::Native},
                       {"chr", StringEncoding::Native},
                       {"", StringEncoding::Missing},
                       {"blob", StringEncoding::Native},
                       {"null", StringEncoding::Native},
                       {"empty", StringEncoding::Native}}};
  VectorStrings class_name{{{"my_class", StringEncoding::Utf8}}};
  std::vector<int32_t> dim{2, 2};
  RegionDescription description;

  AllKinds() {
    for (int i = 0; i < 1000; ++i) blob.push_back(static_cast<unsigned char>(i * 7 + 3));
    auto& n = description.nodes;
    n.push_back(NodeSpec{});                                                    // 0 NULL
    n.push_back(vector_node(NodeKind::Logical, logicals.data(), logicals.size()));  // 1
    n.push_back(vector_node(NodeKind::Integer, integers.data(), integers.size()));  // 2
    n.push_back(vector_node(NodeKind::Double, doubles.data(), doubles.size()));     // 3
    n.push_back(vector_node(NodeKind::Complex, complexes.data(), complexes.size()));  // 4
    n.push_back(vector_node(NodeKind::Raw, raws.data(), raws.size()));                // 5
    n.push_back(string_node(&strings, strings.items.size()));                         // 6
    NodeSpec serialized;                                                               // 7
    serialized.kind = NodeKind::Serialized;
    serialized.bytes = blob.data();
    serialized.byte_count = blob.size();
    n.push_back(serialized);
    n.push_back(vector_node(NodeKind::Integer, nullptr, 0));  // 8: integer(0)
    n.push_back(string_node(&names, names.items.size()));    // 9: names
    n.push_back(string_node(&class_name, 1));                 // 10: class
    n.push_back(vector_node(NodeKind::Integer, dim.data(), dim.size()));  // 11: dim
    // 12: a matrix with a dim attribute
    NodeSpec matrix = vector_node(NodeKind::Double, doubles.data(), 4);
    matrix.attributes = {{"dim", 11}};
    n.push_back(matrix);
    // 13: the root list
    NodeSpec root = list_node({1, 2, 3, 4, 5, 6, 12, 7, 0, 8});
    root.flags = shmr::format::kNodeFromPairlist;
    root.attributes = {{"names", 9}, {"class", 10}, {"a.very.long.attribute_name", 0}};
    n.push_back(root);
    description.root = 13;
    description.flags = shmr::format::kFlagReadonly;
    description.original_class = "my_class";
  }
};

}  // namespace

TEST(WriterReader, HeaderFields) {
  AllKinds all;
  RegionWriter writer(all.description);
  Buffer region = write_region(all.description);
  RegionReader reader(region.data(), region.size(), "shmr_test");
  const RegionHeader& h = reader.header();
  EXPECT_EQ(std::memcmp(h.magic, shmr::format::kMagic, 8), 0);
  EXPECT_EQ(h.format_version, shmr::format::kVersion);
  EXPECT_EQ(h.header_size, 256u);
  EXPECT_EQ(h.total_size, writer.total_size());
  EXPECT_EQ(h.total_size, region.size());
  EXPECT_EQ(h.total_size % 64, 0u);
  EXPECT_EQ(h.flags, shmr::format::kFlagReadonly);
  EXPECT_EQ(h.creator_pid, kTestPid);
  EXPECT_EQ(h.creator_start_ticks, kTestTicks);
  EXPECT_EQ(h.created_unix_ms, kTestMillis);
  EXPECT_EQ(h.node_count, 14u);
  EXPECT_EQ(reader.node_count(), 14u);
  EXPECT_EQ(h.root_node, 13u);
  EXPECT_EQ(reader.root(), 13u);
  EXPECT_EQ(h.node_table_offset % 64, 0u);
  EXPECT_GE(h.node_table_offset, sizeof(RegionHeader));
  EXPECT_STREQ(h.original_class, "my_class");
  // The header is the first 128 bytes, bit for bit; then the replica
  // record, all zero in a region written by its creator.
  EXPECT_EQ(std::memcmp(&h, region.data(), sizeof h), 0);
  EXPECT_FALSE(reader.is_replica());
  for (size_t i = sizeof h; i < 256; ++i) EXPECT_EQ(region.data()[i], 0) << "byte " << i;
}

TEST(WriterReader, EveryOffsetIsAligned) {
  AllKinds all;
  Buffer region = write_region(all.description);
  RegionReader reader(region.data(), region.size(), "shmr_test");
  const RegionHeader& h = reader.header();
  for (uint64_t i = 0; i < h.node_count; ++i) {
    NodeRecord rec = node_record(region, i);
    SCOPED_TRACE("node " + std::to_string(i));
    if (rec.kind != static_cast<uint32_t>(NodeKind::Null)) {
      EXPECT_EQ(rec.data_offset % 64, 0u);
      EXPECT_LE(rec.data_offset + rec.data_size, region.size());
      EXPECT_GE(rec.data_offset, h.node_table_offset + h.node_count * sizeof(NodeRecord));
      NodeView node = reader.node(i);
      EXPECT_EQ(static_cast<const unsigned char*>(node.data()) - region.data(),
                static_cast<ptrdiff_t>(rec.data_offset));
      EXPECT_EQ(reinterpret_cast<uintptr_t>(node.data()) % 64, 0u);
    }
    if (rec.kind == static_cast<uint32_t>(NodeKind::String)) {
      EXPECT_EQ(rec.index_offset % 64, 0u);
      EXPECT_EQ(rec.meta_offset, 0u);  // no encoding array since version 3
    }
    if (rec.attr_count > 0) {
      EXPECT_EQ(rec.attr_offset % 64, 0u);
      for (uint32_t a = 0; a < rec.attr_count; ++a) {
        auto entry = region.get<shmr::format::AttributeEntry>(rec.attr_offset +
                                                              a * sizeof(shmr::format::AttributeEntry));
        EXPECT_EQ(entry.name_offset % 64, 0u);
        EXPECT_EQ(entry.reserved, 0u);
      }
    }
    EXPECT_EQ(rec.code_width, 0u);  // no dictionary strings here
  }
}

TEST(WriterReader, FixedWidthVectors) {
  AllKinds all;
  Buffer region = write_region(all.description);
  RegionReader reader(region.data(), region.size(), "shmr_test");

  NodeView null = reader.node(0);
  EXPECT_EQ(null.kind(), NodeKind::Null);
  EXPECT_EQ(null.length(), 0u);
  EXPECT_EQ(null.attribute_count(), 0u);

  NodeView lgl = reader.node(1);
  EXPECT_EQ(lgl.kind(), NodeKind::Logical);
  EXPECT_EQ(lgl.length(), 3u);
  EXPECT_EQ(lgl.data_size(), 12u);
  EXPECT_EQ(view_values<int32_t>(lgl), all.logicals);

  NodeView integer = reader.node(2);
  EXPECT_EQ(integer.kind(), NodeKind::Integer);
  EXPECT_EQ(integer.length(), all.integers.size());
  EXPECT_EQ(view_values<int32_t>(integer), all.integers);

  NodeView dbl = reader.node(3);
  EXPECT_EQ(dbl.kind(), NodeKind::Double);
  EXPECT_EQ(dbl.length(), all.doubles.size());
  EXPECT_EQ(dbl.data_size(), all.doubles.size() * 8);
  // Bitwise: NaN payloads and the sign of zero must survive.
  EXPECT_EQ(std::memcmp(dbl.data(), all.doubles.data(), dbl.data_size()), 0);

  NodeView cpl = reader.node(4);
  EXPECT_EQ(cpl.kind(), NodeKind::Complex);
  EXPECT_EQ(cpl.length(), 2u);
  EXPECT_EQ(cpl.data_size(), 32u);
  EXPECT_EQ(view_values<std::complex<double>>(cpl), all.complexes);

  NodeView raw = reader.node(5);
  EXPECT_EQ(raw.kind(), NodeKind::Raw);
  EXPECT_EQ(raw.length(), 4u);
  EXPECT_EQ(view_values<unsigned char>(raw), all.raws);

  NodeView empty = reader.node(8);
  EXPECT_EQ(empty.kind(), NodeKind::Integer);
  EXPECT_EQ(empty.length(), 0u);
  EXPECT_EQ(empty.data_size(), 0u);
}

TEST(WriterReader, Strings) {
  AllKinds all;
  Buffer region = write_region(all.description);
  RegionReader reader(region.data(), region.size(), "shmr_test");
  NodeView chr = reader.node(6);
  EXPECT_EQ(chr.kind(), NodeKind::String);
  ASSERT_EQ(chr.length(), all.strings.items.size());
  uint64_t total = 0;
  for (uint64_t i = 0; i < chr.length(); ++i) {
    SCOPED_TRACE("element " + std::to_string(i));
    const TestString& expected = all.strings.items[i];
    StringRef got = chr.string_at(i);
    EXPECT_EQ(got.encoding, expected.encoding);
    if (expected.encoding == StringEncoding::Missing) {
      EXPECT_EQ(got.data, nullptr);
      EXPECT_EQ(got.size, 0u);
    } else {
      EXPECT_EQ(view_string(got), expected.bytes);
      total += expected.bytes.size();
    }
  }
  EXPECT_EQ(chr.data_size(), total);
  EXPECT_EQ(view_string(chr.string_at(5)), std::string("\x01\x02\xff\x80", 4));

  NodeView names = reader.node(9);
  EXPECT_EQ(names.length(), 10u);
  EXPECT_EQ(view_string(names.string_at(0)), "lgl");
  EXPECT_EQ(names.string_at(6).encoding, StringEncoding::Missing);
  EXPECT_EQ(view_string(names.string_at(9)), "empty");
}

// The writer gathers a block's short strings into one run and puts long
// ones as they are: every element must land at its own offsets whatever the
// mix of sizes, across blocks (16,384 elements each), with missing values
// and empty strings between.
TEST(WriterReader, StringsOfEverySizeAroundTheGatherLimit) {
  const std::vector<uint64_t> sizes = {0, 1, 4095, 4096, 4097, 70000, 3, 12, 9999, 2};
  VectorStrings strings;
  for (uint64_t i = 0; i < 40000; ++i) {
    if (i % 97 == 5) {
      strings.items.push_back({"", StringEncoding::Missing});
      continue;
    }
    // Long strings only now and then, so that the region stays small.
    uint64_t size = sizes[i % sizes.size()];
    if (size >= 4095 && i % 300 >= sizes.size()) size = 7;
    std::string bytes(size, 'a');
    for (uint64_t k = 0; k < size; ++k) bytes[k] = static_cast<char>('a' + (i * 31 + k) % 26);
    strings.items.push_back({bytes, i % 2 ? StringEncoding::Utf8 : StringEncoding::Native});
  }
  RegionDescription d;
  d.nodes.push_back(string_node(&strings, strings.items.size()));
  Buffer region = write_region(d);
  RegionReader reader(region.data(), region.size(), "shmr_test");
  NodeView chr = reader.node(0);
  ASSERT_EQ(chr.length(), strings.items.size());
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < chr.length(); ++i) {
    const TestString& expected = strings.items[i];
    StringRef got = chr.string_at(i);
    const bool same = got.encoding == expected.encoding &&
                      (expected.encoding == StringEncoding::Missing || view_string(got) == expected.bytes);
    if (!same && wrong++ == 0) ADD_FAILURE() << "first wrong element: " << i;
  }
  EXPECT_EQ(wrong, 0u);
}

TEST(WriterReader, SerializedBlob) {
  AllKinds all;
  Buffer region = write_region(all.description);
  RegionReader reader(region.data(), region.size(), "shmr_test");
  NodeView blob = reader.node(7);
  EXPECT_EQ(blob.kind(), NodeKind::Serialized);
  EXPECT_EQ(blob.length(), all.blob.size());
  EXPECT_EQ(blob.data_size(), all.blob.size());
  EXPECT_EQ(view_values<unsigned char>(blob), all.blob);
}

TEST(WriterReader, ListChildrenAndAttributes) {
  AllKinds all;
  Buffer region = write_region(all.description);
  RegionReader reader(region.data(), region.size(), "shmr_test");
  NodeView root = reader.node(reader.root());
  EXPECT_EQ(root.kind(), NodeKind::List);
  EXPECT_EQ(root.index(), 13u);
  EXPECT_EQ(root.flags(), shmr::format::kNodeFromPairlist);
  ASSERT_EQ(root.length(), 10u);
  EXPECT_EQ(root.data_size(), 80u);
  std::vector<uint64_t> children;
  for (uint64_t i = 0; i < root.length(); ++i) children.push_back(root.child(i));
  EXPECT_EQ(children, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 12, 7, 0, 8}));

  ASSERT_EQ(root.attribute_count(), 3u);
  EXPECT_EQ(root.attribute_name(0), "names");
  EXPECT_EQ(root.attribute_value(0), 9u);
  EXPECT_EQ(root.attribute_name(1), "class");
  EXPECT_EQ(root.attribute_value(1), 10u);
  EXPECT_EQ(root.attribute_name(2), "a.very.long.attribute_name");
  EXPECT_EQ(root.attribute_value(2), 0u);
  EXPECT_EQ(view_string(reader.node(10).string_at(0)), "my_class");
  EXPECT_EQ(reader.node(10).string_at(0).encoding, StringEncoding::Utf8);

  NodeView matrix = reader.node(12);
  EXPECT_EQ(matrix.kind(), NodeKind::Double);
  EXPECT_EQ(matrix.length(), 4u);
  ASSERT_EQ(matrix.attribute_count(), 1u);
  EXPECT_EQ(matrix.attribute_name(0), "dim");
  NodeView dim = reader.node(matrix.attribute_value(0));
  EXPECT_EQ(view_values<int32_t>(dim), all.dim);

  // Nodes without attributes report none; index() is the asked-for index.
  for (uint64_t i = 0; i < 12; ++i) {
    EXPECT_EQ(reader.node(i).attribute_count(), 0u) << i;
    EXPECT_EQ(reader.node(i).index(), i);
    EXPECT_EQ(reader.node(i).flags() & shmr::format::kNodeFromPairlist, 0u);
  }
}

TEST(WriterReader, AccessorsRejectOutOfRangeIndices) {
  AllKinds all;
  Buffer region = write_region(all.description);
  RegionReader reader(region.data(), region.size(), "shmr_test");
  EXPECT_CORRUPT(reader.node(14));
  EXPECT_CORRUPT(reader.node(UINT64_MAX));
  NodeView root = reader.node(13);
  EXPECT_CORRUPT(root.child(10));
  EXPECT_CORRUPT(root.child(UINT64_MAX));
  EXPECT_CORRUPT(root.attribute_name(3));
  EXPECT_CORRUPT(root.attribute_value(3));
  EXPECT_CORRUPT(root.attribute_name(UINT32_MAX));
  EXPECT_CORRUPT(reader.node(6).string_at(8));
  EXPECT_CORRUPT(reader.node(6).string_at(UINT64_MAX));
  EXPECT_CORRUPT(reader.node(0).attribute_name(0));
}

TEST(WriterReader, OutputDoesNotDependOnBufferContents) {
  AllKinds all;
  Buffer zeros = write_region(all.description, 0x00);
  Buffer ones = write_region(all.description, 0xFF);
  ASSERT_EQ(zeros.size(), ones.size());
  // Every byte that carries meaning is written; padding may differ, so
  // compare what the reader sees.
  RegionReader a(zeros.data(), zeros.size(), "a");
  RegionReader b(ones.data(), ones.size(), "b");
  EXPECT_EQ(std::memcmp(&a.header(), &b.header(), sizeof(RegionHeader)), 0);
  for (uint64_t i = 0; i < a.node_count(); ++i) {
    NodeRecord ra = node_record(zeros, i), rb = node_record(ones, i);
    EXPECT_EQ(std::memcmp(&ra, &rb, sizeof ra), 0) << i;
    NodeView na = a.node(i), nb = b.node(i);
    if (na.data_size() > 0) {
      EXPECT_EQ(std::memcmp(na.data(), nb.data(), na.data_size()), 0) << i;
    }
  }
  // The header's unused tail of original_class is zero, not buffer garbage.
  for (size_t k = std::strlen(b.header().original_class); k < 48; ++k)
    EXPECT_EQ(b.header().original_class[k], '\0');
}

TEST(WriterReader, MinimalRegions) {
  RegionDescription only_null;
  only_null.nodes.push_back(NodeSpec{});
  RegionWriter writer(only_null);
  EXPECT_EQ(writer.total_size(), 320u);  // header (with the replica record) + one record
  Buffer region = write_region(only_null);
  RegionReader reader(region.data(), region.size(), "shmr_min");
  EXPECT_EQ(reader.node_count(), 1u);
  EXPECT_EQ(reader.node(0).kind(), NodeKind::Null);
  EXPECT_STREQ(reader.header().original_class, "");

  // An empty character vector needs no string source.
  RegionDescription empty_chr;
  empty_chr.nodes.push_back(string_node(nullptr, 0));
  Buffer r2 = write_region(empty_chr);
  RegionReader reader2(r2.data(), r2.size(), "shmr_min");
  EXPECT_EQ(reader2.node(0).kind(), NodeKind::String);
  EXPECT_EQ(reader2.node(0).length(), 0u);
  EXPECT_CORRUPT(reader2.node(0).string_at(0));

  // A list of one empty list.
  RegionDescription lists;
  lists.nodes.push_back(list_node({}));
  lists.nodes.push_back(list_node({0}));
  lists.root = 1;
  Buffer r3 = write_region(lists);
  RegionReader reader3(r3.data(), r3.size(), "shmr_min");
  EXPECT_EQ(reader3.node(1).child(0), 0u);
  EXPECT_EQ(reader3.node(0).length(), 0u);
}

TEST(WriterReader, RootNeedNotBeLast) {
  std::vector<double> x{1, 2, 3};
  RegionDescription d;
  d.nodes.push_back(vector_node(NodeKind::Double, x.data(), 3));
  d.nodes.push_back(NodeSpec{});
  d.root = 0;
  Buffer region = write_region(d);
  RegionReader reader(region.data(), region.size(), "r");
  EXPECT_EQ(reader.root(), 0u);
  EXPECT_EQ(view_values<double>(reader.node(0)), x);
}

TEST(WriterReader, OriginalClassIsTruncatedAndTerminated) {
  RegionDescription d;
  d.nodes.push_back(NodeSpec{});
  d.original_class = std::string(100, 'c');
  Buffer region = write_region(d);
  RegionReader reader(region.data(), region.size(), "r");
  // 39 characters: the last 8 of the field hold the creator's PID
  // namespace (creator.h).
  EXPECT_EQ(std::string(reader.header().original_class), std::string(39, 'c'));
  EXPECT_EQ(reader.header().original_class[39], '\0');
}

TEST(WriterReader, TotalSizeIsAMultipleOf64ForManyShapes) {
  // Vary sizes so that every payload ends at a different offset mod 64.
  std::vector<unsigned char> bytes(300, 0x5A);
  for (uint64_t n = 0; n < 130; ++n) {
    VectorStrings s;
    for (uint64_t k = 0; k < n % 7; ++k)
      s.items.push_back({std::string(n + k, 'z'), StringEncoding::Utf8});
    RegionDescription d;
    d.nodes.push_back(vector_node(NodeKind::Raw, bytes.data(), n));
    d.nodes.push_back(vector_node(NodeKind::Integer, bytes.data(), n / 4));
    d.nodes.push_back(string_node(&s, s.items.size()));
    NodeSpec ser;
    ser.kind = NodeKind::Serialized;
    ser.bytes = bytes.data();
    ser.byte_count = n * 2;
    ser.attributes = {{std::string(n + 1, 'a'), 0}, {"b", 2}};
    d.nodes.push_back(ser);
    d.nodes.push_back(list_node({0, 1, 2, 3}));
    d.root = 4;
    RegionWriter writer(d);
    EXPECT_EQ(writer.total_size() % 64, 0u) << n;
    Buffer region = write_region(d);
    RegionReader reader(region.data(), region.size(), "r");
    for (uint64_t i = 0; i < 5; ++i) {
      NodeRecord rec = node_record(region, i);
      EXPECT_EQ(rec.data_offset % 64, 0u);
    }
    EXPECT_EQ(reader.node(0).length(), n);
    EXPECT_EQ(std::memcmp(reader.node(0).data(), bytes.data(), n), 0);
    EXPECT_EQ(reader.node(3).length(), n * 2);
    EXPECT_EQ(reader.node(3).attribute_name(0), std::string(n + 1, 'a'));
    EXPECT_EQ(reader.node(3).attribute_value(1), 2u);
    for (uint64_t k = 0; k < s.items.size(); ++k)
      EXPECT_EQ(view_string(reader.node(2).string_at(k)), s.items[k].bytes);
  }
}
