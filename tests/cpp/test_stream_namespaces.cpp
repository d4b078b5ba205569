// Reading the namespaces an R serialize() stream refers to from its bytes.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "stream_namespaces.h"

namespace {

using shmr::namespaces_in_stream;

// serialize(list(1L, e = asNamespace("stats")), NULL) on R 4.2.2.
const std::vector<uint8_t> kListWithStats = {
    0x58, 0x0a, 0x00, 0x00, 0x00, 0x03, 0x00, 0x04, 0x02, 0x02, 0x00, 0x03, 0x05, 0x00, 0x00,
    0x00, 0x00, 0x05, 0x55, 0x54, 0x46, 0x2d, 0x38, 0x00, 0x00, 0x02, 0x13, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0xf9, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x09, 0x00,
    0x00, 0x00, 0x05, 0x73, 0x74, 0x61, 0x74, 0x73, 0x00, 0x04, 0x00, 0x09, 0x00, 0x00, 0x00,
    0x05, 0x34, 0x2e, 0x32, 0x2e, 0x32, 0x00, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x04, 0x00, 0x09, 0x00, 0x00, 0x00, 0x05, 0x6e, 0x61, 0x6d, 0x65, 0x73, 0x00, 0x00, 0x00,
    0x10, 0x00, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04,
    0x00, 0x09, 0x00, 0x00, 0x00, 0x01, 0x65, 0x00, 0x00, 0x00, 0xfe};

// A version 2 XDR stream built item by item.
class Stream {
 public:
  Stream() {
    bytes_ = {'X', '\n'};
    integer(2);
    integer(0x040202);
    integer(0x020300);
  }
  Stream& integer(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes_.push_back(static_cast<uint8_t>(v >> shift));
    return *this;
  }
  Stream& chars(const std::string& s, uint32_t flags = 0x00040009) {
    integer(flags).integer(static_cast<uint32_t>(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  Stream& name_space(const std::string& name) {
    return integer(249).integer(0).integer(2).chars(name).chars("1.0.0");
  }
  Stream& raw(const std::vector<uint8_t>& payload) {
    integer(24).integer(static_cast<uint32_t>(payload.size()));
    bytes_.insert(bytes_.end(), payload.begin(), payload.end());
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

std::vector<std::string> read_names(const std::vector<uint8_t>& bytes, bool& recognized) {
  return namespaces_in_stream(bytes.data(), bytes.size(), recognized);
}

TEST(StreamNamespaces, FindsTheNamespaceOfRsOwnStream) {
  bool recognized = false;
  EXPECT_EQ(read_names(kListWithStats, recognized), std::vector<std::string>{"stats"});
  EXPECT_TRUE(recognized);
}

TEST(StreamNamespaces, ListsEachNamespaceOnceInOrderOfFirstReference) {
  Stream stream;
  stream.integer(19).integer(4).name_space("zoo").name_space("data.table").name_space("zoo");
  stream.chars("not a namespace");
  bool recognized = false;
  EXPECT_EQ(read_names(stream.bytes(), recognized),
            (std::vector<std::string>{"zoo", "data.table"}));
  EXPECT_TRUE(recognized);
}

TEST(StreamNamespaces, AStreamWithoutNamespacesHasNone) {
  Stream stream;
  stream.integer(19).integer(2).chars("stats").raw({0, 0, 0, 0xf9});
  bool recognized = false;
  EXPECT_TRUE(read_names(stream.bytes(), recognized).empty());
  EXPECT_TRUE(recognized);
}

TEST(StreamNamespaces, OtherEncodingsAreNotRead) {
  for (const std::string& text : {std::string("A\n3\n"), std::string("B\n\3\0\0\0", 6),
                                   std::string("RDX3\nX\n"), std::string("X")}) {
    std::vector<uint8_t> bytes(text.begin(), text.end());
    bool recognized = true;
    EXPECT_TRUE(read_names(bytes, recognized).empty()) << text;
    EXPECT_FALSE(recognized) << text;
  }
}

TEST(StreamNamespaces, BytesShapedLikeAReferenceButNotANameAreSkipped) {
  Stream stream;
  stream.name_space("../etc").name_space("9lives").name_space("");
  stream.integer(249).integer(1).integer(2).chars("stats");           // not a string vector
  stream.integer(249).integer(0).integer(2).chars("stats", 0x00040209); // an attribute bit
  bool recognized = false;
  EXPECT_TRUE(read_names(stream.bytes(), recognized).empty());
  EXPECT_TRUE(recognized);
}

// A raw vector whose bytes happen to spell a reference counts: a reader
// then asks for a namespace the stream never needed, which costs it only
// the stream's cheaper path (by name), never a wrong object.
TEST(StreamNamespaces, AVectorsBytesShapedLikeAReferenceCount) {
  Stream inner;
  inner.name_space("lookalike");
  std::vector<uint8_t> payload(inner.bytes().begin() + 14, inner.bytes().end());
  Stream stream;
  stream.raw(payload);
  bool recognized = false;
  EXPECT_EQ(read_names(stream.bytes(), recognized), std::vector<std::string>{"lookalike"});
}

TEST(StreamNamespaces, EveryTruncationIsReadWithinItsBytes) {
  for (size_t size = 0; size <= kListWithStats.size(); ++size) {
    std::vector<uint8_t> cut(kListWithStats.begin(), kListWithStats.begin() + size);
    bool recognized = false;
    std::vector<std::string> names = read_names(cut, recognized);
    // The name's five bytes end at offset 68.
    EXPECT_EQ(names.size(), size >= 68 ? 1u : 0u) << size;
  }
}

}  // namespace
