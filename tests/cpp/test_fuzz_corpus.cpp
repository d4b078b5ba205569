// Replays the fuzz targets' committed inputs (tests/fuzz/corpus: seeds made
// by make_seed_corpus; tests/fuzz/regressions: inputs that once found a bug)
// through the same checks libFuzzer runs, so every `make test` (and the
// sanitizer build) repeats them without clang.
#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fuzz_checks.h"
#include "reader.h"

namespace {

const std::string kFuzzDir = SHMR_FUZZ_DIR;

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != ".." && name[0] != '.') out.push_back(dir + "/" + name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

using Check = std::string (*)(const uint8_t*, size_t);

void replay(const std::string& target, Check check, size_t min_seeds) {
  auto seeds = files_in(kFuzzDir + "/corpus/" + target);
  EXPECT_GE(seeds.size(), min_seeds) << "seed corpus of " << target << " missing";
  auto inputs = seeds;
  auto regressions = files_in(kFuzzDir + "/regressions/" + target);
  inputs.insert(inputs.end(), regressions.begin(), regressions.end());
  for (const std::string& path : inputs) {
    std::string bytes = bytes_of(path);
    EXPECT_EQ(check(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), "") << path;
  }
}

}  // namespace

TEST(FuzzCorpus, Regions) { replay("region", shmr_fuzz::check_region, 15); }
TEST(FuzzCorpus, Locators) { replay("locator", shmr_fuzz::check_locator, 4); }
TEST(FuzzCorpus, Names) { replay("names", shmr_fuzz::check_names, 8); }

TEST(FuzzCorpus, RegionSeedsAreValidRegions) {
  // Seeds are only useful while the reader accepts them: a format change
  // must regenerate them (make fuzz-corpus).
  for (const std::string& path : files_in(kFuzzDir + "/corpus/region")) {
    std::string bytes = bytes_of(path);
    std::vector<uint64_t> aligned((bytes.size() + 7) / 8);
    std::memcpy(aligned.data(), bytes.data(), bytes.size());
    try {
      shmr::RegionReader reader(aligned.data(), bytes.size(), path);
      for (uint64_t i = 0; i < reader.node_count(); ++i) reader.node(i);
    } catch (const std::exception& e) {
      ADD_FAILURE() << path << ": " << e.what();
    }
  }
}
