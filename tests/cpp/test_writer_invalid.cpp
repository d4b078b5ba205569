// RegionWriter rejects malformed descriptions with InvalidArgument.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "format.h"
#include "test_util.h"
#include "writer.h"

using shmr::NodeSpec;
using shmr::RegionDescription;
using shmr::RegionWriter;
using shmr::format::NodeKind;
using shmr::format::StringEncoding;
using namespace shmr_test;

namespace {

RegionDescription nulls(size_t n) {
  RegionDescription d;
  d.nodes.resize(n);
  d.root = n - 1;
  return d;
}

}  // namespace

TEST(WriterInvalid, NoRoot) {
  RegionDescription empty;
  EXPECT_INVALID(RegionWriter{empty});
  RegionDescription d = nulls(2);
  d.root = 2;
  EXPECT_INVALID(RegionWriter{d});
  d.root = UINT64_MAX;
  EXPECT_INVALID(RegionWriter{d});
  d.root = 1;
  EXPECT_NO_THROW(RegionWriter{d});
}

TEST(WriterInvalid, ListChildForwardReference) {
  RegionDescription d = nulls(2);
  d.nodes.push_back(list_node({0, 2}));  // refers to itself
  d.root = 2;
  EXPECT_INVALID(RegionWriter{d});
  d.nodes[2] = list_node({3});  // refers past itself
  d.nodes.push_back(NodeSpec{});
  EXPECT_INVALID(RegionWriter{d});
  d.nodes[2] = list_node({UINT64_MAX});
  EXPECT_INVALID(RegionWriter{d});
  d.nodes[2] = list_node({1, 0, 1});
  EXPECT_NO_THROW(RegionWriter{d});
  // The first node can have no children at all.
  RegionDescription first;
  first.nodes.push_back(list_node({0}));
  EXPECT_INVALID(RegionWriter{first});
}

TEST(WriterInvalid, AttributeForwardReference) {
  RegionDescription d = nulls(3);
  d.nodes[1].attributes = {{"x", 1}};
  EXPECT_INVALID(RegionWriter{d});
  d.nodes[1].attributes = {{"x", 2}};
  EXPECT_INVALID(RegionWriter{d});
  d.nodes[1].attributes = {{"x", 0}, {"y", UINT64_MAX}};
  EXPECT_INVALID(RegionWriter{d});
  d.nodes[1].attributes = {{"x", 0}};
  EXPECT_NO_THROW(RegionWriter{d});
  // Node 0 cannot carry an attribute: there is nothing before it.
  RegionDescription first = nulls(1);
  first.nodes[0].attributes = {{"x", 0}};
  EXPECT_INVALID(RegionWriter{first});
}

TEST(WriterInvalid, AttributeNameLength) {
  // Every attribute name R can make (R's MAXIDSIZE is 10,000 bytes) fits.
  EXPECT_EQ(shmr::format::kMaxAttributeNameLength, 10000u);
  RegionDescription d = nulls(2);
  d.nodes[1].attributes = {{"", 0}};
  EXPECT_INVALID(RegionWriter{d});
  d.nodes[1].attributes = {{std::string(shmr::format::kMaxAttributeNameLength + 1, 'n'), 0}};
  EXPECT_INVALID(RegionWriter{d});
  d.nodes[1].attributes = {{std::string(shmr::format::kMaxAttributeNameLength, 'n'), 0}};
  EXPECT_NO_THROW(RegionWriter{d});
}

TEST(WriterInvalid, ListLengthMismatch) {
  RegionDescription d = nulls(2);
  NodeSpec list = list_node({0, 1});
  list.length = 3;
  d.nodes.push_back(list);
  d.root = 2;
  EXPECT_INVALID(RegionWriter{d});
  d.nodes[2].length = 1;
  EXPECT_INVALID(RegionWriter{d});
  d.nodes[2].length = 2;
  EXPECT_NO_THROW(RegionWriter{d});
}

TEST(WriterInvalid, NullWithLength) {
  RegionDescription d = nulls(1);
  d.nodes[0].length = 1;
  EXPECT_INVALID(RegionWriter{d});
}

TEST(WriterInvalid, MissingPayloads) {
  for (NodeKind kind : {NodeKind::Logical, NodeKind::Integer, NodeKind::Double, NodeKind::Complex,
                        NodeKind::Raw}) {
    RegionDescription d;
    d.nodes.push_back(vector_node(kind, nullptr, 2));
    EXPECT_INVALID(RegionWriter{d});
  }
  RegionDescription chr;
  chr.nodes.push_back(string_node(nullptr, 1));
  EXPECT_INVALID(RegionWriter{chr});

  RegionDescription ser;
  NodeSpec spec;
  spec.kind = NodeKind::Serialized;
  spec.byte_count = 10;
  ser.nodes.push_back(spec);
  EXPECT_INVALID(RegionWriter{ser});
}

TEST(WriterInvalid, SizeOverflow) {
  static const double dummy[1] = {0};
  const uint64_t huge[] = {UINT64_MAX, UINT64_MAX / 8 + 1, (1ull << 61) + 3};
  for (uint64_t length : huge) {
    RegionDescription d;
    d.nodes.push_back(vector_node(NodeKind::Double, dummy, 1));
    d.nodes[0].length = length;
    EXPECT_INVALID(RegionWriter{d}) ;
  }
  RegionDescription c;
  c.nodes.push_back(vector_node(NodeKind::Complex, dummy, 1));
  c.nodes[0].length = (1ull << 60) + 1;
  EXPECT_INVALID(RegionWriter{c});

  // Payloads whose sizes do not overflow on their own but whose sum does.
  RegionDescription sum;
  NodeSpec big;
  big.kind = NodeKind::Serialized;
  big.bytes = dummy;
  big.byte_count = UINT64_MAX - 100;
  sum.nodes.push_back(big);
  EXPECT_INVALID(RegionWriter{sum});
}

TEST(WriterInvalid, LayoutNeverWrapsAround) {
  // Payload sizes near 2^64: the layout must either be refused or be at
  // least as large as the payload; rounding up to the alignment must not
  // wrap the total size (or a later offset) around to a small number.
  static const unsigned char dummy[1] = {0};
  for (uint64_t k = 0; k <= 400; ++k) {
    for (int position = 0; position < 2; ++position) {
      RegionDescription d;
      NodeSpec big;
      big.kind = NodeKind::Serialized;
      big.bytes = dummy;
      big.byte_count = UINT64_MAX - k;
      if (position == 1) d.nodes.push_back(NodeSpec{});
      d.nodes.push_back(big);
      d.nodes.push_back(vector_node(NodeKind::Raw, dummy, 1));
      d.root = d.nodes.size() - 1;
      try {
        RegionWriter writer(d);
        EXPECT_GE(writer.total_size(), big.byte_count) << "k = " << k;
        EXPECT_EQ(writer.total_size() % 64, 0u);
      } catch (const shmr::Error& e) {
        EXPECT_EQ(e.kind(), shmr::ErrorKind::InvalidArgument) << e.what();
      }
    }
  }
}

TEST(WriterInvalid, WriteSizeMismatch) {
  RegionDescription d = nulls(1);
  RegionWriter writer(d);
  Buffer big(writer.total_size() + 64);
  EXPECT_INVALID(writer.write(big.data(), big.size(), 1, 1, 1));
  EXPECT_INVALID(writer.write(big.data(), writer.total_size() - 64, 1, 1, 1));
  // Nothing was written.
  for (size_t i = 0; i < big.size(); ++i) ASSERT_EQ(big.data()[i], 0) << i;
}

namespace {

// A character vector that grows between the sizing pass and the copy pass.
class GrowingStrings : public shmr::StringSource {
 public:
  shmr::StringRef at(uint64_t) const override {
    ++calls_;
    text_ = std::string(calls_ * 10, 'g');
    return {text_.data(), text_.size(), StringEncoding::Utf8};
  }

 private:
  mutable uint64_t calls_ = 0;
  mutable std::string text_;
};

}  // namespace

TEST(WriterInvalid, StringsChangingWhileSharing) {
  GrowingStrings source;
  RegionDescription d;
  d.nodes.push_back(string_node(&source, 1));
  RegionWriter writer(d);
  Buffer region(writer.total_size());
  EXPECT_INVALID(writer.write(region.data(), region.size(), 1, 1, 1));
  // The header is written last, so the failed region carries no magic.
  EXPECT_NE(std::memcmp(region.data(), shmr::format::kMagic, 8), 0);
}

TEST(WriterInvalid, StringWithANulByte) {
  // The reader refuses elements holding NUL (R strings never do); the
  // writer refuses to make them.
  for (StringEncoding encoding : {StringEncoding::Bytes, StringEncoding::Utf8}) {
    VectorStrings source({{"ok", StringEncoding::Utf8}, {std::string("a\0b", 3), encoding}});
    RegionDescription d;
    d.nodes.push_back(string_node(&source, 2));
    EXPECT_INVALID(RegionWriter{d});
  }
  VectorStrings fine({{std::string(""), StringEncoding::Native}, {"", StringEncoding::Missing}});
  RegionDescription d;
  d.nodes.push_back(string_node(&fine, 2));
  EXPECT_NO_THROW(RegionWriter{d});
}

TEST(WriterInvalid, StreamElementNeedsAnEarlierSerializedNode) {
  static const unsigned char blob[] = {1, 2};
  NodeSpec stream;
  stream.kind = NodeKind::Serialized;
  stream.bytes = blob;
  stream.byte_count = sizeof blob;
  NodeSpec element;
  element.kind = NodeKind::StreamElement;
  // Its stream missing, a vector, itself, or later.
  for (uint64_t at : {shmr::format::kNoNode, uint64_t{0}, uint64_t{1}, uint64_t{2}}) {
    RegionDescription d;
    d.nodes.push_back(vector_node(NodeKind::Raw, blob, sizeof blob));
    element.stream = at;
    d.nodes.push_back(element);
    d.nodes.push_back(stream);
    d.root = 1;
    EXPECT_INVALID(RegionWriter{d}) << at;
  }
  // Attributes belong in the stream, with the object.
  RegionDescription d;
  d.nodes.push_back(stream);
  d.nodes.push_back(vector_node(NodeKind::Raw, blob, sizeof blob));
  element.stream = 0;
  element.attributes = {{"a", 1}};
  d.nodes.push_back(element);
  d.root = 2;
  EXPECT_INVALID(RegionWriter{d});
  d.nodes.back().attributes.clear();
  EXPECT_NO_THROW(RegionWriter{d});
}
