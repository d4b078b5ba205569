// Writes the seed corpus of the fuzz targets: valid regions made by the
// engine's own writer (every node kind, strings in every encoding, nested
// and shared lists, attributes, a data frame, a segment, serialized nodes),
// locators, and names. `make fuzz-corpus` runs it into tests/fuzz/corpus/,
// which is committed; `make fuzz` starts from there.
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "format.h"
#include "locator.h"
#include "names.h"
#include "older_versions.h"
#include "writer.h"

using shmr::NodeSpec;
using shmr::RegionDescription;
using shmr::format::NodeKind;
using shmr::format::StringEncoding;

namespace {

std::string out_dir;

void write_file(const std::string& sub, const std::string& name, const void* bytes, size_t size) {
  const std::string dir = out_dir + "/" + sub;
  ::mkdir(out_dir.c_str(), 0755);
  ::mkdir(dir.c_str(), 0755);
  const std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes, 1, size, f) != size || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::exit(1);
  }
}

struct Strings : shmr::StringSource {
  std::vector<std::pair<std::string, StringEncoding>> items;
  shmr::StringRef at(uint64_t i) const override {
    return {items[i].first.data(), items[i].first.size(), items[i].second};
  }
};

NodeSpec vector(NodeKind kind, const void* bytes, uint64_t length) {
  NodeSpec spec;
  spec.kind = kind;
  spec.length = length;
  spec.bytes = bytes;
  spec.byte_count = length * shmr::format::element_size(kind);
  return spec;
}

NodeSpec strings(const Strings& source) {
  NodeSpec spec;
  spec.kind = NodeKind::String;
  spec.length = source.items.size();
  spec.strings = &source;
  return spec;
}

NodeSpec list(std::vector<uint64_t> children) {
  NodeSpec spec;
  spec.kind = NodeKind::List;
  spec.length = children.size();
  spec.children = std::move(children);
  return spec;
}

// Writes a region the way create_region() does (flags included).
void region(const std::string& name, RegionDescription description, bool writable = false,
            bool persistent = false, uint32_t version = shmr::format::kVersion) {
  if (description.original_class.empty()) description.original_class = "list";
  shmr::RegionWriter writer(description);
  std::vector<unsigned char> bytes(writer.total_size(), 0);
  writer.write(bytes.data(), bytes.size(), 4242, 987654321, 1700000000123);
  auto* header = reinterpret_cast<shmr::format::RegionHeader*>(bytes.data());
  header->flags = writable ? header->flags & ~shmr::format::kFlagReadonly
                           : header->flags | shmr::format::kFlagReadonly;
  if (persistent) header->flags |= shmr::format::kFlagPersistent;
  if (version < 3) bytes = shmr_older::as_version2(bytes.data(), bytes.size());
  header = reinterpret_cast<shmr::format::RegionHeader*>(bytes.data());
  if (version == 1) {
    // As format version 1 wrote it: no value flags, a 128-byte header (the
    // bytes of the replica record left as zero padding before the node
    // table, which version 1 allows).
    header->format_version = 1;
    header->header_size = shmr::format::kHeaderSizeV1;
    for (uint64_t i = 0; i < header->node_count; ++i) {
      auto* rec = reinterpret_cast<shmr::format::NodeRecord*>(
          bytes.data() + header->node_table_offset + i * sizeof(shmr::format::NodeRecord));
      rec->flags &= shmr::format::kNodeFlagsV1;
    }
  }
  write_file("region", name, bytes.data(), bytes.size());
}

void regions() {
  const std::vector<int32_t> ints{1, -2, INT32_MIN, 2147483647};
  const std::vector<int32_t> lgls{1, 0, INT32_MIN};
  const std::vector<double> dbls{0.5, -1e300, 3.25, 0.0};
  const std::vector<double> cplx{1.0, -1.0, 0.0, 2.5};
  const std::vector<unsigned char> raws{0, 1, 2, 0xff, 0x80};
  std::vector<double> longer(600);
  for (size_t i = 0; i < longer.size(); ++i) longer[i] = static_cast<double>(i) / 7;

  struct Single {
    const char* name;
    NodeKind kind;
    const void* bytes;
    uint64_t length;
  } singles[] = {
      {"integer", NodeKind::Integer, ints.data(), ints.size()},
      {"logical", NodeKind::Logical, lgls.data(), lgls.size()},
      {"double", NodeKind::Double, dbls.data(), dbls.size()},
      {"complex", NodeKind::Complex, cplx.data(), cplx.size() / 2},
      {"raw", NodeKind::Raw, raws.data(), raws.size()},
      {"double-600", NodeKind::Double, longer.data(), longer.size()},
      {"double-empty", NodeKind::Double, nullptr, 0},
      {"integer-empty", NodeKind::Integer, nullptr, 0},
  };
  for (const Single& s : singles) {
    RegionDescription d;
    d.nodes.push_back(vector(s.kind, s.bytes, s.length));
    region(std::string("vector-") + s.name, d);
  }
  {
    RegionDescription d;
    d.nodes.push_back(vector(NodeKind::Double, longer.data(), longer.size()));
    region("vector-double-600-version-1", d, false, false, 1);
  }

  {
    RegionDescription d;
    d.nodes.push_back(NodeSpec{});  // NULL
    region("null", d);
  }

  Strings text;
  text.items = {{"a", StringEncoding::Utf8},        {"", StringEncoding::Native},
                {"", StringEncoding::Missing},      {"caf\xc3\xa9", StringEncoding::Utf8},
                {"caf\xe9", StringEncoding::Latin1}, {"b\xffy", StringEncoding::Bytes},
                {"plain ascii", StringEncoding::Native}};
  {
    RegionDescription d;
    d.nodes.push_back(strings(text));
    d.original_class = "character";
    region("strings-encodings", d);
    region("strings-encodings-version-2", d, false, false, 2);
  }
  // The dictionary layout (format version 2): 64 elements drawn from the
  // entries of `text`, codes one byte wide.
  {
    std::vector<unsigned char> codes(64);
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<unsigned char>(i * 5 % 7);
    RegionDescription d;
    d.nodes.push_back(strings(text));
    NodeSpec coded;
    coded.kind = NodeKind::String;
    coded.length = codes.size();
    coded.dictionary = 0;
    coded.codes = codes.data();
    coded.code_width = 1;
    d.nodes.push_back(coded);
    d.root = 1;
    d.original_class = "character";
    region("strings-dictionary", d);
    region("strings-dictionary-version-2", d, false, false, 2);
  }
  Strings empty_strings;
  {
    RegionDescription d;
    d.nodes.push_back(strings(empty_strings));
    region("strings-empty", d);
  }

  // A named double vector with a class: c(a = , b = , ...), attributes.
  Strings names4;
  names4.items = {{"a", StringEncoding::Utf8}, {"b", StringEncoding::Utf8},
                  {"c", StringEncoding::Utf8}, {"", StringEncoding::Missing}};
  Strings cls;
  cls.items = {{"my_class", StringEncoding::Native}, {"numeric", StringEncoding::Native}};
  {
    RegionDescription d;
    d.nodes.push_back(strings(names4));
    d.nodes.push_back(strings(cls));
    NodeSpec v = vector(NodeKind::Double, dbls.data(), dbls.size());
    v.attributes = {{"names", 0}, {"class", 1}};
    d.nodes.push_back(v);
    d.root = 2;
    d.original_class = "my_class";
    region("attributes-names-class", d);
  }

  // A 2 x 2 integer matrix with dimnames.
  const std::vector<int32_t> dim{2, 2};
  Strings rows, cols;
  rows.items = {{"r1", StringEncoding::Utf8}, {"r2", StringEncoding::Utf8}};
  cols.items = {{"c1", StringEncoding::Utf8}, {"c2", StringEncoding::Utf8}};
  {
    RegionDescription d;
    d.nodes.push_back(vector(NodeKind::Integer, dim.data(), 2));   // 0 dim
    d.nodes.push_back(strings(rows));                              // 1
    d.nodes.push_back(strings(cols));                              // 2
    d.nodes.push_back(list({1, 2}));                               // 3 dimnames
    NodeSpec m = vector(NodeKind::Integer, ints.data(), 4);
    m.attributes = {{"dim", 0}, {"dimnames", 3}};
    d.nodes.push_back(m);
    d.root = 4;
    d.original_class = "matrix";
    region("matrix-dimnames", d);
  }

  // A data frame: list(id = 1:4, label = letters, f = factor) with compact
  // row names, names and class.
  Strings df_names, df_class, letters4, levels;
  df_names.items = {{"id", StringEncoding::Utf8}, {"label", StringEncoding::Utf8},
                    {"f", StringEncoding::Utf8}};
  df_class.items = {{"data.frame", StringEncoding::Native}};
  letters4.items = {{"w", StringEncoding::Utf8}, {"x", StringEncoding::Utf8},
                    {"y", StringEncoding::Utf8}, {"z", StringEncoding::Utf8}};
  levels.items = {{"lo", StringEncoding::Utf8}, {"hi", StringEncoding::Utf8}};
  Strings factor_class;
  factor_class.items = {{"factor", StringEncoding::Native}};
  const std::vector<int32_t> codes{1, 2, 2, 1};
  const std::vector<int32_t> compact_rows{INT32_MIN, -4};
  {
    RegionDescription d;
    d.nodes.push_back(vector(NodeKind::Integer, ints.data(), 4));          // 0 id
    d.nodes.push_back(strings(letters4));                                  // 1 label
    d.nodes.push_back(strings(levels));                                    // 2
    d.nodes.push_back(strings(factor_class));                              // 3
    NodeSpec f = vector(NodeKind::Integer, codes.data(), 4);               // 4 factor
    f.attributes = {{"levels", 2}, {"class", 3}};
    d.nodes.push_back(f);
    d.nodes.push_back(strings(df_names));                                  // 5
    d.nodes.push_back(strings(df_class));                                  // 6
    d.nodes.push_back(vector(NodeKind::Integer, compact_rows.data(), 2));  // 7 row.names
    NodeSpec df = list({0, 1, 4});
    df.attributes = {{"names", 5}, {"class", 6}, {"row.names", 7}};
    d.nodes.push_back(df);                                                 // 8
    d.root = 8;
    d.original_class = "data.frame";
    region("data-frame", d);
  }

  // Nested lists, one vector referenced from three places (stored once), a
  // pairlist, and a NULL element.
  {
    RegionDescription d;
    d.nodes.push_back(vector(NodeKind::Double, dbls.data(), dbls.size()));  // 0 shared
    d.nodes.push_back(NodeSpec{});                                          // 1 NULL
    d.nodes.push_back(list({0, 1}));                                        // 2
    NodeSpec pairlist = list({0});
    pairlist.flags = shmr::format::kNodeFromPairlist;
    d.nodes.push_back(pairlist);                                            // 3
    d.nodes.push_back(list({2, 3}));                                        // 4
    d.nodes.push_back(list({4, 0, 2}));                                     // 5
    d.root = 5;
    region("lists-nested-shared", d);
  }

  // Serialized nodes (what R's serialize() writes for a function or an
  // environment; here the header of version-3 XDR output and some bytes).
  const std::string serialized = std::string("X\n\0\0\0\3\0\4\2\2\0\3\5\0\0\0\0\5UTF-8\0\0\0\xfe", 28);
  {
    RegionDescription d;
    NodeSpec s;
    s.kind = NodeKind::Serialized;
    s.length = serialized.size();
    s.byte_count = serialized.size();
    s.bytes = serialized.data();
    d.nodes.push_back(s);
    d.nodes.push_back(vector(NodeKind::Raw, raws.data(), raws.size()));
    d.nodes.push_back(list({0, 1}));
    d.root = 2;
    region("serialized-in-list", d);
  }

  // A segment: one zero-filled raw node, writable; and persistent regions.
  {
    RegionDescription d;
    NodeSpec raw;
    raw.kind = NodeKind::Raw;
    raw.length = 4096;
    raw.zero_filled = true;
    d.nodes.push_back(raw);
    d.original_class = "raw";
    region("segment", d, true);
  }
  {
    RegionDescription d;
    d.nodes.push_back(vector(NodeKind::Double, dbls.data(), dbls.size()));
    region("persistent-writable", d, true, true);
  }
}

void locators() {
  const std::string name = "shmr_AbCdEfGhIjKlMnOpQrStUv";
  struct Case {
    const char* file;
    std::string path;
    uint64_t flags;
  } cases[] = {
      {"tmp", "/tmp/RtmpXyZ/shmr/" + name, shmr::format::kFlagReadonly},
      {"persistent", "/root/.cache/R/shmr/shmr_my_data",
       shmr::format::kFlagReadonly | shmr::format::kFlagPersistent},
      {"writable", "/data/shmr_w", 0},
      {"root-dir", "/shmr_x", shmr::format::kFlagReadonly},
  };
  for (const Case& c : cases) {
    auto bytes = shmr::encode_locator({c.path, {12345, 678910}, c.flags});
    write_file("locator", c.file, bytes.data(), bytes.size());
  }
}

void texts() {
  const char* items[] = {
      "shmr_AbCdEfGhIjKlMnOpQrStUv",
      "shmr_my_data[2,3]",
      "shmr_x[1]@names",
      "shmr_x@dim[2]@dimnames[1]",
      "shmr_a.b-c_d[10,20,30]",
      "shmr_AbCdEfGhIjKlMnOpQrStUv:12",
      "shmr_my_data:0",
      "my_data",
      "shmr_../x",
      "/dev/shm/shmr_x:1",
  };
  int i = 0;
  for (const char* text : items)
    write_file("names", "seed-" + std::to_string(i++), text, std::strlen(text));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus directory>\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  regions();
  locators();
  texts();
  return 0;
}
