// RegionReader on hostile bytes: every inconsistency must surface as
// shmr::Error(Corrupt), never as a crash or an out-of-bounds access.
//
// Regions under test are copied to the very end of a mapping that is followed
// by an inaccessible guard page, so any read past the end faults at once even
// without AddressSanitizer (build with -DSHMR_SANITIZE=ON for the rest).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <map>
#include <memory>
#include <random>
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
using shmr::format::AttributeEntry;
using shmr::format::NodeKind;
using shmr::format::NodeRecord;
using shmr::format::RegionHeader;
using shmr::format::StringEncoding;
using namespace shmr_test;

namespace {

#define HEADER_FIELD(field) offsetof(RegionHeader, field)

// `size` bytes placed so that the byte after the last one is a PROT_NONE page.
class Guarded {
 public:
  explicit Guarded(const unsigned char* bytes, size_t size) : size_(size) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t data_pages = (size + page - 1) / page + 1;
    mapped_ = (data_pages + 1) * page;
    void* p = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    map_ = static_cast<unsigned char*>(p);
    unsigned char* guard = map_ + data_pages * page;
    ::mprotect(guard, page, PROT_NONE);
    base_ = guard - size;
    if (size > 0) std::memcpy(base_, bytes, size);
  }
  explicit Guarded(const Buffer& buffer) : Guarded(buffer.data(), buffer.size()) {}
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  ~Guarded() { ::munmap(map_, mapped_); }
  const unsigned char* data() const { return base_; }
  size_t size() const { return size_; }

 private:
  unsigned char* map_ = nullptr;
  size_t mapped_ = 0;
  unsigned char* base_ = nullptr;
  size_t size_ = 0;
};

// A small region with one node of every kind.
struct Small {
  std::vector<double> doubles{1.0, 2.0, 3.0};
  VectorStrings strings{{{"ab", StringEncoding::Utf8},
                         {"", StringEncoding::Missing},
                         {"cde", StringEncoding::Latin1}}};
  std::vector<unsigned char> raws{1, 2, 3, 4, 5};
  std::vector<unsigned char> blob{'X', 0, 'Y', 1, 2, 3, 4, 5, 6, 7};
  std::vector<int32_t> ints{7, 8};
  std::vector<double> cplx{1.0, -1.0};
  std::vector<int32_t> lgls{1, 0, 1};
  RegionDescription description;
  Buffer region;

  enum : uint64_t { kDouble, kString, kNull, kRaw, kSerialized, kInteger, kComplex, kLogical, kList };

  Small() {
    auto& n = description.nodes;
    n.push_back(vector_node(NodeKind::Double, doubles.data(), 3));
    n.push_back(string_node(&strings, 3));
    n.push_back(NodeSpec{});
    n.push_back(vector_node(NodeKind::Raw, raws.data(), raws.size()));
    NodeSpec ser;
    ser.kind = NodeKind::Serialized;
    ser.bytes = blob.data();
    ser.byte_count = blob.size();
    n.push_back(ser);
    n.push_back(vector_node(NodeKind::Integer, ints.data(), 2));
    n.push_back(vector_node(NodeKind::Complex, cplx.data(), 1));
    n.push_back(vector_node(NodeKind::Logical, lgls.data(), 3));
    // Eight children: the 64-byte element table is the last thing in the
    // region and ends exactly at its end.
    NodeSpec list = list_node({0, 1, 2, 3, 4, 5, 6, 7});
    list.attributes = {{"foo", 1}, {"bar", 2}};
    n.push_back(list);
    description.root = kList;
    region = write_region(description, 0);
  }

  uint64_t record(uint64_t index) const { return node_record_offset(region, index); }
  NodeRecord rec(uint64_t index) const { return node_record(region, index); }
  uint64_t field(uint64_t index, size_t offset) const { return record(index) + offset; }

  template <typename T>
  Buffer with(uint64_t offset, T value) const {
    Buffer copy = region;
    copy.put<T>(offset, value);
    return copy;
  }
};

#define NODE_FIELD(small, index, member) (small).field(index, offsetof(NodeRecord, member))

std::unique_ptr<RegionReader> open_reader(const Guarded& g) {
  return std::make_unique<RegionReader>(g.data(), g.size(), "shmr_hostile");
}

// Reads every fact a consumer could ask for. Failures are recorded as
// "<corrupt>"; anything that must never happen (another exception kind, an
// answer pointing outside the bytes) is recorded with a "!!" prefix.
using Facts = std::map<std::string, std::string>;

Facts read_facts(const unsigned char* base, uint64_t size) {
  Facts f;
  auto inside = [&](const void* p, uint64_t n) {
    auto* c = static_cast<const unsigned char*>(p);
    if (n == 0) return true;
    return c >= base && c <= base + size && n <= static_cast<uint64_t>(base + size - c);
  };
  auto guard = [&](const std::string& key, auto&& body) {
    try {
      f[key] = body();
    } catch (const shmr::Error& e) {
      f[key] = e.kind() == shmr::ErrorKind::Corrupt ? "<corrupt>"
                                                    : std::string("!!wrong kind: ") + e.what();
    } catch (const std::exception& e) {
      f[key] = std::string("!!other exception: ") + e.what();
    }
  };
  std::unique_ptr<RegionReader> reader;
  guard("reader", [&] {
    reader = std::make_unique<RegionReader>(base, size, "shmr_fuzz");
    return std::string("ok");
  });
  if (!reader) return f;
  f["root"] = std::to_string(reader->root());
  f["count"] = std::to_string(reader->node_count());
  const uint64_t nodes = std::min<uint64_t>(reader->node_count(), 64);
  for (uint64_t i = 0; i < nodes; ++i) {
    const std::string key = "n" + std::to_string(i);
    std::unique_ptr<NodeView> view;
    guard(key, [&] {
      view = std::make_unique<NodeView>(reader->node(i));
      std::string d = std::to_string(static_cast<int>(view->kind())) + "/" +
                      std::to_string(view->length()) + "/" + std::to_string(view->data_size()) +
                      "/" + std::to_string(view->flags()) + "/" +
                      std::to_string(view->attribute_count());
      if (view->kind() != NodeKind::Null) {
        if (!inside(view->data(), view->data_size())) return std::string("!!data outside");
        d += "/" + std::string(static_cast<const char*>(view->data()), view->data_size());
      }
      return d;
    });
    if (!view) continue;
    if (view->kind() == NodeKind::String) {
      for (uint64_t k = 0; k < std::min<uint64_t>(view->length(), 64); ++k)
        guard(key + ".s" + std::to_string(k), [&] {
          shmr::StringRef s = view->string_at(k);
          if (s.encoding == StringEncoding::Missing) return std::string("NA");
          if (!inside(s.data, s.size)) return std::string("!!string outside");
          return std::to_string(static_cast<int>(s.encoding)) + ":" + std::string(s.data, s.size);
        });
    }
    if (view->kind() == NodeKind::List) {
      for (uint64_t k = 0; k < std::min<uint64_t>(view->length(), 64); ++k)
        guard(key + ".c" + std::to_string(k), [&] {
          uint64_t child = view->child(k);
          if (child >= i) return std::string("!!child refers forward");
          return std::to_string(child);
        });
    }
    for (uint32_t a = 0; a < std::min<uint32_t>(view->attribute_count(), 64); ++a) {
      guard(key + ".an" + std::to_string(a), [&] { return view->attribute_name(a); });
      guard(key + ".av" + std::to_string(a), [&] {
        uint64_t value = view->attribute_value(a);
        if (value >= i) return std::string("!!attribute refers forward");
        return std::to_string(value);
      });
    }
  }
  return f;
}

Facts read_facts(const Guarded& g) { return read_facts(g.data(), g.size()); }

void expect_no_violations(const Facts& facts, const std::string& context) {
  for (const auto& [key, value] : facts)
    EXPECT_NE(value.rfind("!!", 0), 0u) << context << ": " << key << " -> " << value;
}

size_t count_corrupt(const Facts& facts) {
  size_t n = 0;
  for (const auto& kv : facts) n += kv.second == "<corrupt>";
  return n;
}

}  // namespace

TEST(ReaderHostile, ValidSmallRegionReadsCleanly) {
  Small s;
  Guarded g(s.region);
  Facts facts = read_facts(g);
  expect_no_violations(facts, "valid");
  EXPECT_EQ(count_corrupt(facts), 0u);
  EXPECT_EQ(facts.at("reader"), "ok");
  EXPECT_EQ(facts.at("n1.s0"), "1:ab");
  EXPECT_EQ(facts.at("n1.s1"), "NA");
  EXPECT_EQ(facts.at("n1.s2"), "2:cde");
  EXPECT_EQ(facts.at("n8.c7"), "7");
  EXPECT_EQ(facts.at("n8.an0"), "foo");
  EXPECT_EQ(facts.at("n8.av1"), "2");
  // The list's element table ends exactly at the region's end.
  NodeRecord list = s.rec(Small::kList);
  EXPECT_EQ(list.data_offset + list.data_size, s.region.size());
}

TEST(ReaderHostile, ShorterThanHeader) {
  Small s;
  for (size_t n = 0; n < sizeof(RegionHeader); ++n) {
    Guarded g(s.region.data(), n);
    EXPECT_CORRUPT(open_reader(g));
  }
  EXPECT_CORRUPT(RegionReader(nullptr, 0, "shmr_null"));
}

TEST(ReaderHostile, GarbageBytes) {
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 200; ++round) {
    Buffer junk(64 * (1 + round % 40));
    for (size_t i = 0; i < junk.size(); ++i) junk.data()[i] = static_cast<unsigned char>(rng());
    Guarded g(junk);
    EXPECT_CORRUPT(open_reader(g));
  }
  Buffer zeros(4096, 0);
  Guarded gz(zeros);
  EXPECT_CORRUPT(open_reader(gz));
}

TEST(ReaderHostile, WrongMagic) {
  Small s;
  for (size_t i = 0; i < 8; ++i) {
    Buffer b = s.region;
    b.data()[i] ^= 0x20;
    Guarded g(b);
    EXPECT_CORRUPT(open_reader(g));
  }
}

TEST(ReaderHostile, WrongVersion) {
  Small s;
  for (uint32_t version : {0u, shmr::format::kVersion + 1, 0x01000000u, UINT32_MAX}) {
    Guarded g(s.with<uint32_t>(HEADER_FIELD(format_version), version));
    EXPECT_CORRUPT(open_reader(g));
  }
}

TEST(ReaderHostile, WrongHeaderSize) {
  Small s;
  for (uint32_t size : {0u, 64u, 127u, 128u, 129u, 192u, 255u, 257u, UINT32_MAX}) {
    Guarded g(s.with<uint32_t>(HEADER_FIELD(header_size), size));
    EXPECT_CORRUPT(open_reader(g));
  }
}

TEST(ReaderHostile, TotalSizeMismatch) {
  Small s;
  const uint64_t size = s.region.size();
  for (uint64_t claimed : {uint64_t{0}, uint64_t{128}, size - 64, size - 1, size + 1, size + 64,
                           UINT64_MAX}) {
    Guarded g(s.with<uint64_t>(HEADER_FIELD(total_size), claimed));
    EXPECT_CORRUPT(open_reader(g));
  }
  // Truncation: the header is intact but the mapping is shorter.
  for (uint64_t n : {size - 64, size - 1, uint64_t{128}, uint64_t{200}}) {
    Guarded g(s.region.data(), n);
    EXPECT_CORRUPT(open_reader(g));
  }
  // A mapping longer than the header says is also refused.
  Buffer longer(size + 64, 0);
  std::memcpy(longer.data(), s.region.data(), size);
  Guarded gl(longer);
  EXPECT_CORRUPT(open_reader(gl));
}

TEST(ReaderHostile, NodeCount) {
  Small s;
  const uint64_t size = s.region.size();
  for (uint64_t count : {uint64_t{0}, size / 64 + 1, size, (UINT64_MAX / 64) + 2, UINT64_MAX,
                         uint64_t{1} << 58}) {
    Guarded g(s.with<uint64_t>(HEADER_FIELD(node_count), count));
    EXPECT_CORRUPT(open_reader(g));
  }
  // More nodes than the table holds, but still fewer than size / 64: the
  // table then runs past the end of the region.
  const uint64_t table = s.region.get<uint64_t>(HEADER_FIELD(node_table_offset));
  Guarded g(s.with<uint64_t>(HEADER_FIELD(node_count), (size - table) / 64 + 1));
  EXPECT_CORRUPT(open_reader(g));
}

TEST(ReaderHostile, NodeTablePastTheEnd) {
  Small s;
  const uint64_t size = s.region.size();
  for (uint64_t offset : {size, size - 64, size - 8, size + 64, UINT64_MAX - 7, UINT64_MAX,
                          uint64_t{1} << 63}) {
    Guarded g(s.with<uint64_t>(HEADER_FIELD(node_table_offset), offset));
    EXPECT_CORRUPT(open_reader(g));
  }
}

TEST(ReaderHostile, NodeTableMisaligned) {
  Small s;
  const uint64_t table = s.region.get<uint64_t>(HEADER_FIELD(node_table_offset));
  for (uint64_t delta : {1, 2, 4, 7}) {
    Guarded g(s.with<uint64_t>(HEADER_FIELD(node_table_offset), table + delta));
    EXPECT_CORRUPT(open_reader(g));
  }
}

TEST(ReaderHostile, RootOutOfRange) {
  Small s;
  for (uint64_t root : {uint64_t{9}, uint64_t{10}, uint64_t{1} << 40, UINT64_MAX}) {
    Guarded g(s.with<uint64_t>(HEADER_FIELD(root_node), root));
    EXPECT_CORRUPT(open_reader(g));
  }
}

TEST(ReaderHostile, NodeKindOutOfRange) {
  Small s;
  for (uint32_t kind : {9u, 10u, 255u, 0x80000000u, UINT32_MAX}) {
    Guarded g(s.with<uint32_t>(NODE_FIELD(s, Small::kDouble, kind), kind));
    auto reader = open_reader(g);
    EXPECT_CORRUPT(reader->node(Small::kDouble));
    // Other nodes are unaffected.
    EXPECT_EQ(reader->node(Small::kRaw).length(), 5u);
  }
}

TEST(ReaderHostile, NodeIndexOutOfRange) {
  Small s;
  Guarded g(s.region);
  auto reader = open_reader(g);
  EXPECT_CORRUPT(reader->node(9));
  EXPECT_CORRUPT(reader->node(UINT64_MAX));
  EXPECT_CORRUPT(reader->node(uint64_t{1} << 61));
}

TEST(ReaderHostile, VectorDataOffsetPastEnd) {
  Small s;
  const uint64_t size = s.region.size();
  for (uint64_t node : {Small::kDouble, Small::kRaw, Small::kInteger, Small::kComplex,
                        Small::kLogical, Small::kSerialized, Small::kList}) {
    const uint64_t just_past = size - s.rec(node).data_size + 1;
    for (uint64_t offset : {size, just_past, size + 64, UINT64_MAX - 7, UINT64_MAX - 63,
                            uint64_t{1} << 63}) {
      Guarded g(s.with<uint64_t>(NODE_FIELD(s, node, data_offset), offset));
      auto reader = open_reader(g);
      EXPECT_CORRUPT(reader->node(node)) << "node " << node << " offset " << offset;
    }
  }
}

TEST(ReaderHostile, DataSizePastEnd) {
  Small s;
  const uint64_t size = s.region.size();
  for (uint64_t node : {Small::kSerialized}) {
    for (uint64_t data_size : {size, UINT64_MAX, UINT64_MAX - 63}) {
      Buffer b = s.with<uint64_t>(NODE_FIELD(s, node, data_size), data_size);
      b.put<uint64_t>(NODE_FIELD(s, node, length), data_size);
      Guarded g(b);
      EXPECT_CORRUPT(open_reader(g)->node(node));
    }
  }
  // String bytes: data_size reaching past the end.
  for (uint64_t data_size : {size, UINT64_MAX, UINT64_MAX - 4}) {
    Guarded g(s.with<uint64_t>(NODE_FIELD(s, Small::kString, data_size), data_size));
    EXPECT_CORRUPT(open_reader(g)->node(Small::kString));
  }
}

TEST(ReaderHostile, LengthDoesNotMatchDataSize) {
  Small s;
  for (uint64_t node : {Small::kDouble, Small::kRaw, Small::kInteger, Small::kComplex,
                        Small::kLogical, Small::kList}) {
    NodeRecord rec = s.rec(node);
    Guarded longer(s.with<uint64_t>(NODE_FIELD(s, node, length), rec.length + 1));
    EXPECT_CORRUPT(open_reader(longer)->node(node)) << node;
    Guarded shorter(s.with<uint64_t>(NODE_FIELD(s, node, data_size), rec.data_size - 1));
    EXPECT_CORRUPT(open_reader(shorter)->node(node)) << node;
  }
  Guarded ser(s.with<uint64_t>(NODE_FIELD(s, Small::kSerialized, length), 11));
  EXPECT_CORRUPT(open_reader(ser)->node(Small::kSerialized));
  Guarded null(s.with<uint64_t>(NODE_FIELD(s, Small::kNull, length), 1));
  EXPECT_CORRUPT(open_reader(null)->node(Small::kNull));
}

TEST(ReaderHostile, HugeLengthWhoseByteCountWraps) {
  Small s;
  // length * width wraps around to exactly the recorded data_size.
  struct Case {
    uint64_t node;
    uint64_t length;
  } cases[] = {
      {Small::kDouble, (uint64_t{1} << 61) + 3},    // 8 * (2^61 + 3) == 24 (mod 2^64)
      {Small::kInteger, (uint64_t{1} << 62) + 2},   // 4 * (2^62 + 2) == 8
      {Small::kLogical, (uint64_t{1} << 62) + 3},   // 4 * (2^62 + 3) == 12
      {Small::kComplex, (uint64_t{1} << 60) + 1},   // 16 * (2^60 + 1) == 16
      {Small::kList, (uint64_t{1} << 61) + 8},      // 8 * (2^61 + 8) == 64
  };
  for (const Case& c : cases) {
    NodeRecord rec = s.rec(c.node);
    uint64_t width = c.node == Small::kComplex ? 16
                     : c.node == Small::kDouble || c.node == Small::kList ? 8 : 4;
    ASSERT_EQ(c.length * width, rec.data_size) << "test case does not wrap";
    Guarded g(s.with<uint64_t>(NODE_FIELD(s, c.node, length), c.length));
    EXPECT_CORRUPT(open_reader(g)->node(c.node)) << "node " << c.node;
  }
  // Strings: length * 8 for the index wraps.
  for (uint64_t length : {(uint64_t{1} << 61) + 3, UINT64_MAX, UINT64_MAX / 9 + 1}) {
    Guarded g(s.with<uint64_t>(NODE_FIELD(s, Small::kString, length), length));
    EXPECT_CORRUPT(open_reader(g)->node(Small::kString));
  }
}

TEST(ReaderHostile, MisalignedOffsets) {
  Small s;
  struct Case {
    uint64_t node;
    size_t field;
    uint64_t delta;
  } cases[] = {
      {Small::kDouble, offsetof(NodeRecord, data_offset), 4},
      {Small::kDouble, offsetof(NodeRecord, data_offset), 1},
      {Small::kComplex, offsetof(NodeRecord, data_offset), 4},
      {Small::kInteger, offsetof(NodeRecord, data_offset), 2},
      {Small::kLogical, offsetof(NodeRecord, data_offset), 1},
      {Small::kList, offsetof(NodeRecord, data_offset), 4},
      {Small::kString, offsetof(NodeRecord, index_offset), 1},
      {Small::kString, offsetof(NodeRecord, index_offset), 4},
      {Small::kList, offsetof(NodeRecord, attr_offset), 4},
      {Small::kList, offsetof(NodeRecord, attr_offset), 1},
  };
  for (const Case& c : cases) {
    uint64_t at = s.field(c.node, c.field);
    // Move the offset back so that the range stays inside the region and only
    // the alignment is wrong.
    uint64_t original = s.region.get<uint64_t>(at);
    Guarded g(s.with<uint64_t>(at, original - 8 + c.delta));
    EXPECT_CORRUPT(open_reader(g)->node(c.node)) << "node " << c.node << " field " << c.field;
  }
}

TEST(ReaderHostile, StringIndexOutsideBytes) {
  Small s;
  NodeRecord rec = s.rec(Small::kString);
  ASSERT_EQ(rec.data_size, 5u);
  // The top byte of an end offset word is the element's encoding (Latin1
  // here), the rest the offset.
  for (uint64_t end : {uint64_t{6}, uint64_t{100}, uint64_t{s.region.size()},
                       shmr::format::kEndOffsetMask}) {
    Guarded g(s.with<uint64_t>(rec.index_offset + 2 * 8,
                               shmr::format::end_word(end, StringEncoding::Latin1)));
    NodeView v = open_reader(g)->node(Small::kString);
    EXPECT_CORRUPT(v.string_at(2)) << end;
    EXPECT_EQ(std::string(v.string_at(0).data, v.string_at(0).size), "ab");
  }
  Guarded g0(s.with<uint64_t>(rec.index_offset,
                              shmr::format::end_word(shmr::format::kEndOffsetMask, StringEncoding::Utf8)));
  EXPECT_CORRUPT(open_reader(g0)->node(Small::kString).string_at(0));
}

TEST(ReaderHostile, StringEndOffsetWordsSplitIntoOffsetAndEncoding) {
  Small s;
  NodeRecord rec = s.rec(Small::kString);
  // Ends {2, 2, 5} with encodings UTF-8, NA, latin1 in their top bytes, and
  // no encoding array.
  EXPECT_EQ(rec.meta_offset, 0u);
  EXPECT_EQ(s.region.get<uint64_t>(rec.index_offset), shmr::format::end_word(2, StringEncoding::Utf8));
  EXPECT_EQ(s.region.get<uint64_t>(rec.index_offset + 8), shmr::format::end_word(2, StringEncoding::Missing));
  EXPECT_EQ(s.region.get<uint64_t>(rec.index_offset + 16), shmr::format::end_word(5, StringEncoding::Latin1));
  // An NA's offset is never used as its own end: the next element starts at
  // it, so a bad one is found there.
  Guarded g(s.with<uint64_t>(rec.index_offset + 8, shmr::format::end_word(4, StringEncoding::Missing)));
  NodeView v = open_reader(g)->node(Small::kString);
  EXPECT_EQ(v.string_at(1).encoding, StringEncoding::Missing);
  shmr::StringRef cut = v.string_at(2);
  EXPECT_EQ(std::string(cut.data, cut.size), "e");
  Guarded past(s.with<uint64_t>(rec.index_offset + 8, shmr::format::end_word(6, StringEncoding::Missing)));
  EXPECT_CORRUPT(open_reader(past)->node(Small::kString).string_at(2));
  // Since version 3 a packed String node has no encoding array.
  Guarded with_array(s.with<uint64_t>(s.field(Small::kString, offsetof(NodeRecord, meta_offset)), 64));
  EXPECT_CORRUPT(open_reader(with_array)->node(Small::kString));
}

TEST(ReaderHostile, StringEndsDecrease) {
  Small s;
  NodeRecord rec = s.rec(Small::kString);
  // Ends are {2, 2, 5}. Element 2 would start at 4 and end at 3.
  Buffer b = s.with<uint64_t>(rec.index_offset + 8, 4);
  b.put<uint64_t>(rec.index_offset + 16, 3);
  Guarded g(b);
  NodeView v = open_reader(g)->node(Small::kString);
  EXPECT_CORRUPT(v.string_at(2));
  // A "start" far beyond the end, as a subtraction would wrap.
  Guarded g2(s.with<uint64_t>(rec.index_offset + 8, UINT64_MAX));
  EXPECT_CORRUPT(open_reader(g2)->node(Small::kString).string_at(2));
}

TEST(ReaderHostile, StringOffsetsOutsideRegion) {
  Small s;
  const uint64_t size = s.region.size();
  for (size_t field : {offsetof(NodeRecord, index_offset), offsetof(NodeRecord, data_offset)}) {
    for (uint64_t offset : {size, size - 1, size + 64, UINT64_MAX - 7, UINT64_MAX}) {
      Guarded g(s.with<uint64_t>(s.field(Small::kString, field), offset));
      EXPECT_CORRUPT(open_reader(g)->node(Small::kString)) << field << " " << offset;
    }
  }
}

TEST(ReaderHostile, BadEncodingByte) {
  Small s;
  NodeRecord rec = s.rec(Small::kString);
  // Element 0's encoding is the top byte of its end offset word
  // (little-endian: the word's last byte).
  const uint64_t encoding_byte = rec.index_offset + 7;
  for (uint8_t byte : {4, 5, 100, 128, 254}) {
    Guarded g(s.with<uint8_t>(encoding_byte, byte));
    NodeView v = open_reader(g)->node(Small::kString);
    EXPECT_CORRUPT(v.string_at(0)) << int(byte);
    EXPECT_EQ(v.string_at(2).encoding, StringEncoding::Latin1);
  }
  // 255 is NA, and 0..3 are the known encodings.
  Guarded na(s.with<uint8_t>(encoding_byte, 255));
  EXPECT_EQ(open_reader(na)->node(Small::kString).string_at(0).encoding, StringEncoding::Missing);
  Guarded bytes(s.with<uint8_t>(encoding_byte, 3));
  EXPECT_EQ(open_reader(bytes)->node(Small::kString).string_at(0).encoding, StringEncoding::Bytes);
}

TEST(ReaderHostile, ListChildCycle) {
  Small s;
  NodeRecord rec = s.rec(Small::kList);
  for (uint64_t child : {uint64_t{Small::kList}, uint64_t{Small::kList} + 1, uint64_t{1} << 40, UINT64_MAX}) {
    Guarded g(s.with<uint64_t>(rec.data_offset + 3 * 8, child));
    NodeView v = open_reader(g)->node(Small::kList);
    EXPECT_CORRUPT(v.child(3)) << child;
    EXPECT_EQ(v.child(2), 2u);
  }
  // A list whose child is itself as the region's root: every node that is
  // read is rejected, so recursion cannot loop.
  Guarded g(s.with<uint64_t>(rec.data_offset, Small::kList));
  EXPECT_CORRUPT(open_reader(g)->node(Small::kList).child(0));
}

TEST(ReaderHostile, ListChildIndexPastLength) {
  // The element table is the region's last 64 bytes: asking for element 8
  // must be refused before anything past the end is read.
  Small s;
  Guarded g(s.region);
  NodeView v = open_reader(g)->node(Small::kList);
  ASSERT_EQ(v.length(), 8u);
  EXPECT_CORRUPT(v.child(8));
  EXPECT_CORRUPT(v.child(9));
  EXPECT_CORRUPT(v.child(UINT64_MAX));
  EXPECT_CORRUPT(v.child(uint64_t{1} << 61));
}

TEST(ReaderHostile, AttributeTableOutsideRegion) {
  Small s;
  const uint64_t size = s.region.size();
  for (uint64_t offset : {size, size - 8, UINT64_MAX - 7, uint64_t{1} << 63}) {
    Guarded g(s.with<uint64_t>(NODE_FIELD(s, Small::kList, attr_offset), offset));
    EXPECT_CORRUPT(open_reader(g)->node(Small::kList));
  }
  for (uint32_t count : {11u, 1000u, UINT32_MAX}) {
    Guarded g(s.with<uint32_t>(NODE_FIELD(s, Small::kList, attr_count), count));
    EXPECT_CORRUPT(open_reader(g)->node(Small::kList)) << count;
  }
  // Attributes on a node that had none, pointing nowhere.
  Buffer b = s.with<uint32_t>(NODE_FIELD(s, Small::kRaw, attr_count), 1);
  b.put<uint64_t>(NODE_FIELD(s, Small::kRaw, attr_offset), size);
  Guarded g(b);
  EXPECT_CORRUPT(open_reader(g)->node(Small::kRaw));
}

TEST(ReaderHostile, AttributeNameOutsideRegion) {
  Small s;
  NodeRecord rec = s.rec(Small::kList);
  const uint64_t entry = rec.attr_offset;  // first attribute
  const uint64_t size = s.region.size();
  auto name_offset = entry + offsetof(AttributeEntry, name_offset);
  auto name_length = entry + offsetof(AttributeEntry, name_length);
  for (uint64_t offset : {size, size - 2, size + 1, UINT64_MAX - 1, UINT64_MAX}) {
    Guarded g(s.with<uint64_t>(name_offset, offset));
    NodeView v = open_reader(g)->node(Small::kList);
    EXPECT_CORRUPT(v.attribute_name(0)) << offset;
    EXPECT_EQ(v.attribute_name(1), "bar");
  }
  for (uint32_t length : {0u, 10001u, static_cast<uint32_t>(size), UINT32_MAX}) {
    Guarded g(s.with<uint32_t>(name_length, length));
    EXPECT_CORRUPT(open_reader(g)->node(Small::kList).attribute_name(0)) << length;
  }
  // In range, at the very end: fine (reads garbage, but inside).
  Buffer b = s.with<uint64_t>(name_offset, size - 3);
  Guarded edge(b);
  EXPECT_EQ(open_reader(edge)->node(Small::kList).attribute_name(0).size(), 3u);
}

TEST(ReaderHostile, AttributeValueForwardReference) {
  Small s;
  NodeRecord rec = s.rec(Small::kList);
  const uint64_t value_at = rec.attr_offset + sizeof(AttributeEntry) +
                            offsetof(AttributeEntry, value_node);  // second attribute
  for (uint64_t value : {uint64_t{Small::kList}, uint64_t{Small::kList} + 1, uint64_t{1} << 50, UINT64_MAX}) {
    Guarded g(s.with<uint64_t>(value_at, value));
    NodeView v = open_reader(g)->node(Small::kList);
    EXPECT_CORRUPT(v.attribute_value(1)) << value;
    EXPECT_EQ(v.attribute_value(0), 1u);
  }
}

TEST(ReaderHostile, NullNodeWithGarbageOffsets) {
  // A NULL has no payload; whatever its offsets say, they are never used.
  Small s;
  Buffer b = s.with<uint64_t>(NODE_FIELD(s, Small::kNull, data_offset), UINT64_MAX - 3);
  b.put<uint64_t>(NODE_FIELD(s, Small::kNull, data_size), UINT64_MAX);
  Guarded g(b);
  Facts facts = read_facts(g);
  expect_no_violations(facts, "null");
  EXPECT_EQ(open_reader(g)->node(Small::kNull).kind(), NodeKind::Null);
}

TEST(ReaderHostile, EveryTruncationLength) {
  Small s;
  const Facts full = read_facts(Guarded(s.region));
  ASSERT_EQ(count_corrupt(full), 0u);
  size_t partially_readable = 0;
  for (size_t n = 0; n < s.region.size(); ++n) {
    SCOPED_TRACE("length " + std::to_string(n));
    {
      // As truncated by a short file: the header's size does not match.
      Guarded g(s.region.data(), n);
      EXPECT_CORRUPT(open_reader(g));
      expect_no_violations(read_facts(g), "truncated");
    }
    if (n < sizeof(RegionHeader)) continue;
    // As if the header had been rewritten to agree with the shorter size:
    // every answer must then be either Corrupt or the same as before.
    Buffer b = s.region.prefix(n);
    b.put<uint64_t>(HEADER_FIELD(total_size), n);
    Guarded g(b);
    Facts facts = read_facts(g);
    expect_no_violations(facts, "patched");
    for (const auto& [key, value] : facts) {
      if (key == "reader" || value == "<corrupt>") continue;
      auto it = full.find(key);
      ASSERT_NE(it, full.end()) << key;
      EXPECT_EQ(value, it->second) << key;
    }
    if (facts.count("n0") && facts.at("n0") != "<corrupt>") ++partially_readable;
  }
  // The fixture is only meaningful if some truncations still read in part.
  EXPECT_GT(partially_readable, 0u);
}

TEST(ReaderHostile, EverySingleByteCorruption) {
  Small s;
  const Facts full = read_facts(Guarded(s.region));
  size_t rejected = 0;
  for (size_t at = 0; at < s.region.size(); ++at) {
    for (int how = 0; how < 5; ++how) {
      Buffer b = s.region;
      unsigned char& byte = b.data()[at];
      switch (how) {
        case 0: byte ^= 0x01; break;
        case 1: byte ^= 0x80; break;
        case 2: byte = 0x00; break;
        case 3: byte = 0xFF; break;
        case 4: byte = static_cast<unsigned char>(byte + 0x40); break;
      }
      Guarded g(b);
      Facts facts = read_facts(g);
      expect_no_violations(facts, "byte " + std::to_string(at) + " how " + std::to_string(how));
      rejected += facts != full && count_corrupt(facts) > 0;
    }
    if (::testing::Test::HasFailure()) break;  // one broken byte is enough to report
  }
  EXPECT_GT(rejected, 0u);
}

TEST(ReaderHostile, RandomRecordsBehindAValidHeader) {
  // A plausible header in front of random node records and payloads, in
  // the oldest version and the current one (whose strings keep their
  // encodings in their end offsets); no replica record.
  std::mt19937_64 rng(777);
  size_t constructed[2] = {0, 0};  // by version: oldest, current
  for (int round = 0; round < 4000; ++round) {
    const uint32_t version = round % 2 ? shmr::format::kVersion : 1;
    const uint64_t header_size = shmr::format::header_size_of(version);
    const uint64_t size = header_size + 64 * (1 + rng() % 30);
    Buffer b(size);
    for (size_t i = 0; i < size; ++i) b.data()[i] = static_cast<unsigned char>(rng());
    if (version > 1) std::memset(b.data() + sizeof(RegionHeader), 0, header_size - sizeof(RegionHeader));
    // Make small values likely so that some checks pass and deeper ones run.
    for (size_t i = header_size; i + 8 <= size; i += 8)
      if (rng() % 2) b.put<uint64_t>(i, rng() % (size + 16));
    for (size_t i = header_size; i + 64 <= size; i += 64)
      if (rng() % 2) b.put<uint32_t>(i, static_cast<uint32_t>(rng() % 10));
    RegionHeader h{};
    std::memcpy(h.magic, shmr::format::kMagic, 8);
    h.format_version = version;
    h.header_size = static_cast<uint32_t>(header_size);
    h.total_size = size;
    h.node_count = 1 + rng() % ((size - header_size) / 64);
    h.node_table_offset = header_size;
    h.root_node = rng() % h.node_count;
    std::memcpy(b.data(), &h, sizeof h);
    Guarded g(b);
    Facts facts = read_facts(g);
    expect_no_violations(facts, "round " + std::to_string(round));
    constructed[round % 2] += facts.at("reader") == "ok";
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(constructed[0], 0u);
  EXPECT_GT(constructed[1], 0u);
}

TEST(ReaderHostile, StringElementWithANulByte) {
  // R strings cannot hold NUL: an element with one is corrupt, found when
  // the element is read (R would otherwise fail making it, without naming
  // the region).
  Small s;
  NodeRecord rec = s.rec(Small::kString);
  Guarded g(s.with<uint8_t>(rec.data_offset + 1, 0));  // "ab" -> "a\0"
  NodeView v = open_reader(g)->node(Small::kString);
  EXPECT_CORRUPT(v.string_at(0));
  EXPECT_EQ(std::string(v.string_at(2).data, v.string_at(2).size), "cde");
}

TEST(ReaderHostile, ElementErrorsNameTheRegion) {
  // Errors found after opening (elements, children, attributes) name the
  // region like the header checks do, even when the reader that made the
  // node is gone.
  Small s;
  NodeRecord rec = s.rec(Small::kList);
  Guarded g(s.with<uint64_t>(rec.data_offset, Small::kList));
  NodeView v = open_reader(g)->node(Small::kList);
  try {
    v.child(0);
    ADD_FAILURE() << "no error";
  } catch (const shmr::Error& e) {
    EXPECT_EQ(e.kind(), shmr::ErrorKind::Corrupt);
    EXPECT_NE(std::string(e.what()).find("shared region 'shmr_hostile' is corrupt: list node"),
              std::string::npos)
        << e.what();
  }
}

namespace {

// Node 0 a stream (Serialized), node 1 a raw vector, node 2 element 5 of
// the stream, node 3 a list of nodes 2 and 1 (format version 4).
struct WithStream {
  std::vector<unsigned char> blob{1, 2, 3};
  RegionDescription description;
  Buffer region;
  WithStream() {
    NodeSpec stream;
    stream.kind = NodeKind::Serialized;
    stream.bytes = blob.data();
    stream.byte_count = blob.size();
    description.nodes.push_back(stream);
    description.nodes.push_back(vector_node(NodeKind::Raw, blob.data(), blob.size()));
    NodeSpec element;
    element.kind = NodeKind::StreamElement;
    element.stream = 0;
    element.length = 5;
    description.nodes.push_back(element);
    description.nodes.push_back(list_node({2, 1}));
    description.root = 3;
    region = write_region(description, 0);
  }
  template <typename T>
  Buffer with(uint64_t index, size_t offset, T value) const {
    Buffer copy = region;
    copy.put<T>(node_record_offset(region, index) + offset, value);
    return copy;
  }
};

}  // namespace

TEST(ReaderHostile, StreamElementNamesAnEarlierSerializedNode) {
  WithStream s;
  {
    Guarded g(s.region);
    auto reader = open_reader(g);
    EXPECT_EQ(reader->header().format_version, 4u);
    NodeView element = reader->node(2);
    EXPECT_EQ(element.kind(), NodeKind::StreamElement);
    EXPECT_EQ(element.stream(), 0u);
    EXPECT_EQ(element.length(), 5u);
    EXPECT_EQ(reader->node(3).child(0), 2u);
  }
  // Its stream must be an earlier Serialized node: not a vector, not
  // itself, not a later node, not one outside the table.
  for (uint64_t stream : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{1} << 40}) {
    Guarded g(s.with<uint64_t>(2, offsetof(NodeRecord, index_offset), stream));
    EXPECT_CORRUPT(open_reader(g)->node(2)) << stream;
  }
  // It holds no data and no attributes of its own.
  Guarded data(s.with<uint64_t>(2, offsetof(NodeRecord, data_size), 8));
  EXPECT_CORRUPT(open_reader(data)->node(2));
  Guarded attributes(s.with<uint32_t>(2, offsetof(NodeRecord, attr_count), 1));
  EXPECT_CORRUPT(open_reader(attributes)->node(2));
  // Versions before 4 have no such kind; a kind past it is unknown.
  Buffer v3 = s.region;
  v3.put<uint32_t>(HEADER_FIELD(format_version), 3);
  Guarded older(v3);
  EXPECT_CORRUPT(open_reader(older)->node(2));
  EXPECT_EQ(open_reader(older)->node(1).kind(), NodeKind::Raw);
  Guarded unknown(s.with<uint32_t>(2, offsetof(NodeRecord, kind), 10));
  EXPECT_CORRUPT(open_reader(unknown)->node(2));
}
