// Sub-object paths: resolving "[i,j]@attr" steps and finding a node's path.
#include <gtest/gtest.h>

#include "object_paths.h"
#include "reader.h"
#include "test_util.h"

using shmr::format::NodeKind;
using namespace shmr_test;

namespace {

// root = list(a = c(1, 2), b = list(c(3)))
//   node 0: "a","b" names   node 1: c(1,2)   node 2: c(3)
//   node 3: list(node 2)     node 4: root list(node 1, node 3) with names
struct PathRegion {
  double ab[2] = {1, 2};
  double c[1] = {3};
  std::vector<TestString> names{{"a", shmr::format::StringEncoding::Native},
                                {"b", shmr::format::StringEncoding::Native}};
  VectorStrings source{names};
  shmr::RegionDescription description;
  Buffer bytes;

  PathRegion() {
    description.nodes.push_back(string_node(&source, 2));
    description.nodes.push_back(vector_node(NodeKind::Double, ab, 2));
    description.nodes.push_back(vector_node(NodeKind::Double, c, 1));
    description.nodes.push_back(list_node({2}));
    auto root = list_node({1, 3});
    root.attributes.emplace_back("names", 0);
    description.nodes.push_back(root);
    description.root = 4;
    bytes = write_region(description);
  }
  shmr::RegionReader reader() const { return shmr::RegionReader(bytes.data(), bytes.size(), "test"); }
};

std::vector<shmr::names::PathStep> steps(const std::string& suffix) {
  return shmr::names::parse_path("shmr_x" + suffix).value().steps;
}

}  // namespace

TEST(ObjectPaths, ResolvesElementsAndAttributes) {
  PathRegion region;
  auto reader = region.reader();
  EXPECT_EQ(shmr::resolve_object_path(reader, {}), 4u);
  EXPECT_EQ(shmr::resolve_object_path(reader, steps("[1]")), 1u);
  EXPECT_EQ(shmr::resolve_object_path(reader, steps("[2,1]")), 2u);
  EXPECT_EQ(shmr::resolve_object_path(reader, steps("@names")), 0u);
}

TEST(ObjectPaths, MissingStepsAreNotFound) {
  PathRegion region;
  auto reader = region.reader();
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::resolve_object_path(reader, steps("[3]")));
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::resolve_object_path(reader, steps("[1,1]")));
  EXPECT_SHMR_ERROR(shmr::ErrorKind::NotFound, shmr::resolve_object_path(reader, steps("@dim")));
}

TEST(ObjectPaths, FindsShortestPathPreferringElements) {
  PathRegion region;
  auto reader = region.reader();
  auto format = [&](uint64_t node) {
    auto found = shmr::find_object_path(reader, node);
    if (!found) return std::string("<none>");
    return shmr::names::format_path({"shmr_x", *found});
  };
  EXPECT_EQ(format(4), "shmr_x");
  EXPECT_EQ(format(1), "shmr_x[1]");
  EXPECT_EQ(format(2), "shmr_x[2,1]");
  EXPECT_EQ(format(0), "shmr_x@names");
  for (uint64_t node = 0; node < 5; ++node)
    EXPECT_EQ(shmr::resolve_object_path(reader, steps(format(node).substr(6))), node);
}
