#include <set>
#include <string>

#include <gtest/gtest.h>

#include "decimal.h"
#include "names.h"

using shmr::names::format_path;
using shmr::names::generate;
using shmr::names::is_valid_region_name;
using shmr::names::parse_path;
using shmr::names::PathStep;

TEST(Names, GenerateGivesValidPrefixedNames) {
  for (int i = 0; i < 200; ++i) {
    std::string name = generate();
    EXPECT_EQ(name.rfind("shmr_", 0), 0u) << name;
    EXPECT_EQ(name.size(), 5u + 22u) << name;
    EXPECT_TRUE(is_valid_region_name(name)) << name;
    for (char c : name.substr(5))
      EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
          << "unexpected character in " << name;
  }
}

TEST(Names, GenerateGivesDistinctNames) {
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) EXPECT_TRUE(seen.insert(generate()).second);
}

TEST(Names, GenerateUsesTheWholeAlphabet) {
  // 2000 names x 22 characters: every one of the 62 characters should occur.
  std::set<char> chars;
  for (int i = 0; i < 2000; ++i)
    for (char c : generate().substr(5)) chars.insert(c);
  EXPECT_EQ(chars.size(), 62u);
}

TEST(Names, ValidNamesAreAccepted) {
  EXPECT_TRUE(is_valid_region_name("shmr_a"));
  EXPECT_TRUE(is_valid_region_name("shmr_A.b-c_9"));
  EXPECT_TRUE(is_valid_region_name("shmr_my_cache"));
  EXPECT_TRUE(is_valid_region_name(std::string("shmr_") + std::string(195, 'x')));  // exactly 200
}

TEST(Names, InvalidNamesAreRejected) {
  EXPECT_FALSE(is_valid_region_name(""));
  EXPECT_FALSE(is_valid_region_name("shmr_"));
  EXPECT_FALSE(is_valid_region_name("shmr"));
  EXPECT_FALSE(is_valid_region_name("shmr_a/b"));
  EXPECT_FALSE(is_valid_region_name("shmr_/"));
  EXPECT_FALSE(is_valid_region_name("shmr_../x"));
  EXPECT_FALSE(is_valid_region_name("../shmr_x"));
  EXPECT_FALSE(is_valid_region_name(".."));
  EXPECT_FALSE(is_valid_region_name("."));
  EXPECT_FALSE(is_valid_region_name("/dev/shm/shmr_x"));
  EXPECT_FALSE(is_valid_region_name(std::string("shmr_a\0b", 8)));
  EXPECT_FALSE(is_valid_region_name(std::string("shmr_ab\0", 8)));
  EXPECT_FALSE(is_valid_region_name(std::string("shmr_") + std::string(196, 'x')));  // 201
  EXPECT_FALSE(is_valid_region_name(std::string("shmr_") + std::string(10000, 'x')));
  EXPECT_FALSE(is_valid_region_name("shmr_caf\xc3\xa9"));  // UTF-8 e-acute
  EXPECT_FALSE(is_valid_region_name("shmr_caf\xe9"));      // latin1 e-acute
  EXPECT_FALSE(is_valid_region_name("shmr_\x80"));
  EXPECT_FALSE(is_valid_region_name("SHMR_abc"));
  EXPECT_FALSE(is_valid_region_name("shm_abc"));
  EXPECT_FALSE(is_valid_region_name("xshmr_abc"));
  EXPECT_FALSE(is_valid_region_name(" shmr_abc"));
  EXPECT_FALSE(is_valid_region_name("shmr_a b"));
  EXPECT_FALSE(is_valid_region_name("shmr_a\n"));
  EXPECT_FALSE(is_valid_region_name("shmr_a[1]"));
  EXPECT_FALSE(is_valid_region_name("shmr_a@names"));
  EXPECT_FALSE(is_valid_region_name(".shmr_tmp_123_shmr_a"));
}

TEST(Names, ParsePlainRegion) {
  auto path = parse_path("shmr_a");
  ASSERT_TRUE(path.has_value());
  EXPECT_EQ(path->region, "shmr_a");
  EXPECT_TRUE(path->steps.empty());
}

TEST(Names, ParseElements) {
  auto path = parse_path("shmr_a[2,3]");
  ASSERT_TRUE(path.has_value());
  EXPECT_EQ(path->region, "shmr_a");
  ASSERT_EQ(path->steps.size(), 2u);
  EXPECT_EQ(path->steps[0].kind, PathStep::Kind::Element);
  EXPECT_EQ(path->steps[0].position, 2u);
  EXPECT_EQ(path->steps[1].kind, PathStep::Kind::Element);
  EXPECT_EQ(path->steps[1].position, 3u);
}

TEST(Names, ParseElementThenAttribute) {
  auto path = parse_path("shmr_a[2]@names");
  ASSERT_TRUE(path.has_value());
  EXPECT_EQ(path->region, "shmr_a");
  ASSERT_EQ(path->steps.size(), 2u);
  EXPECT_EQ(path->steps[0].kind, PathStep::Kind::Element);
  EXPECT_EQ(path->steps[0].position, 2u);
  EXPECT_EQ(path->steps[1].kind, PathStep::Kind::Attribute);
  EXPECT_EQ(path->steps[1].attribute, "names");
}

TEST(Names, ParseLongerPaths) {
  auto path = parse_path("shmr_x.y-z[10]@dim.names[1,999999999999999999]@a_b");
  ASSERT_TRUE(path.has_value());
  EXPECT_EQ(path->region, "shmr_x.y-z");
  ASSERT_EQ(path->steps.size(), 5u);
  EXPECT_EQ(path->steps[0].position, 10u);
  EXPECT_EQ(path->steps[1].attribute, "dim.names");
  EXPECT_EQ(path->steps[2].position, 1u);
  EXPECT_EQ(path->steps[3].position, 999999999999999999u);
  EXPECT_EQ(path->steps[4].attribute, "a_b");
}

TEST(Names, ParseRejectsMalformedPaths) {
  const char* bad[] = {
      "",
      "shmr_",
      "shmr_a[0]",
      "shmr_a[1,0]",
      "shmr_a[",
      "shmr_a[1",
      "shmr_a[1,",
      "shmr_a[1,]",
      "shmr_a[]",
      "shmr_a[,1]",
      "shmr_a[-1]",
      "shmr_a[+1]",
      "shmr_a[ 1]",
      "shmr_a[1 ]",
      "shmr_a[1]]",
      "shmr_a]",
      "shmr_a[a]",
      "shmr_a[1.5]",
      "shmr_a[0x10]",
      "shmr_a[1000000000000000000]",  // 19 digits
      "shmr_a[99999999999999999999999]",
      "shmr_a/../x",
      "shmr_a/b",
      "x[1]",
      "x",
      "[1]",
      "@names",
      "shmr_a@",
      "shmr_a@@names",
      "shmr_a@na/mes",
      "shmr_a@names[",
      "shmr_a@names[0]",
      "shmr_a junk",
      "shmr_a[1] ",
      "shmr_a[1]x",
      "shmr_a[1]@names!",
      "shmr_a\n",
  };
  for (const char* text : bad) EXPECT_FALSE(parse_path(text).has_value()) << "'" << text << "'";
  EXPECT_FALSE(parse_path(std::string("shmr_a\0[1]", 10)).has_value());
  EXPECT_FALSE(parse_path(std::string("shmr_a[1]\0", 10)).has_value());
  EXPECT_FALSE(parse_path(std::string("shmr_") + std::string(196, 'x')).has_value());
  EXPECT_FALSE(parse_path("shmr_a" + std::string(5000, '@')).has_value());
  EXPECT_FALSE(parse_path("shmr_a[1]" + std::string(5000, 'x')).has_value());
}

TEST(Names, FormatInvertsParse) {
  const char* good[] = {
      "shmr_a",
      "shmr_a[2,3]",
      "shmr_a[2]@names",
      "shmr_a@names",
      "shmr_a@names[1]",
      "shmr_a[1]@x[2,3]@y",
      "shmr_a[1]@x@y",
      "shmr_a[999999999999999999]",
      "shmr_ABC.def-ghi_0[4,5,6]@dim",
  };
  for (const char* text : good) {
    auto path = parse_path(text);
    ASSERT_TRUE(path.has_value()) << text;
    EXPECT_EQ(format_path(*path), text);
  }
  // A generated name too.
  std::string name = generate() + "[7]@class";
  auto path = parse_path(name);
  ASSERT_TRUE(path.has_value());
  EXPECT_EQ(format_path(*path), name);
}

TEST(Names, AdjacentBracketsNormalise) {
  // "[2][3]" means the same as "[2,3]"; formatting gives the canonical form.
  auto path = parse_path("shmr_a[2][3]");
  ASSERT_TRUE(path.has_value());
  ASSERT_EQ(path->steps.size(), 2u);
  EXPECT_EQ(format_path(*path), "shmr_a[2,3]");
}

TEST(Names, FormatBuiltPath) {
  shmr::names::ObjectPath path;
  path.region = "shmr_q";
  path.steps.push_back({PathStep::Kind::Attribute, 0, "levels"});
  path.steps.push_back({PathStep::Kind::Element, 3, {}});
  path.steps.push_back({PathStep::Kind::Element, 4, {}});
  EXPECT_EQ(format_path(path), "shmr_q@levels[3,4]");
}

TEST(ViewState, RoundTrip) {
  using shmr::names::format_view_state;
  using shmr::names::parse_view_state;
  EXPECT_EQ(format_view_state({"shmr_abc", 12}), "shmr_abc:12");
  auto parsed = parse_view_state("shmr_abc:12");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->region, "shmr_abc");
  EXPECT_EQ(parsed->node, 12u);
  parsed = parse_view_state("shmr_a:9999999999999999999");  // 19 digits
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->node, 9999999999999999999u);
  EXPECT_EQ(parse_view_state("shmr_a:0")->node, 0u);
}

TEST(ViewState, HostileStatesAreRejected) {
  // States arrive through unserialize(): anyone may have edited the bytes.
  const std::string hostile[] = {
      "",
      ":",
      ":0",
      "shmr_a",
      "shmr_a:",
      "shmr_a:-1",
      "shmr_a:+1",
      "shmr_a: 1",
      "shmr_a:1 ",
      "shmr_a:0x10",
      "shmr_a:1e3",
      "shmr_a:99999999999999999999",  // 20 digits
      "shmr_a:18446744073709551616",
      "/etc/passwd:0",
      "../../etc/passwd:0",
      "shmr_../../etc/passwd:0",
      "shmr_a/b:0",
      "/dev/shm/shmr_a:0",
      "shmr_:0",
      "sem.shmr_a:0",
      "pulse-shm-12345:0",
      "shmr_a[1]:0",
      "shmr_a@names:0",
      ".shmr_tmp_1_shmr_a:0",
      "shmr_caf\xc3\xa9:0",
      std::string("shmr_a\0b:0", 10),
      std::string("shmr_a:1\0", 9),
      std::string("shmr_") + std::string(196, 'x') + ":0",
      std::string("shmr_") + std::string(100000, 'x') + ":0",
  };
  for (const std::string& text : hostile)
    EXPECT_FALSE(shmr::names::parse_view_state(text).has_value()) << text.substr(0, 60);
}

TEST(ViewState, TheLastColonSeparatesTheNode) {
  // Region names never contain ':', so "a:b:1" has the invalid region "a:b".
  EXPECT_FALSE(shmr::names::parse_view_state("shmr_a:b:1").has_value());
}

TEST(CompactViewState, RoundTripWithoutPrefixOrNodeZero) {
  using shmr::names::format_compact_view_state;
  using shmr::names::parse_compact_view_state;
  EXPECT_EQ(format_compact_view_state({"shmr_abc", 0}), "abc");
  EXPECT_EQ(format_compact_view_state({"shmr_abc", 12}), "abc:12");
  for (uint64_t node : {uint64_t{0}, uint64_t{1}, uint64_t{12}, uint64_t{9999999999999999999u}}) {
    auto parsed = parse_compact_view_state(format_compact_view_state({"shmr_x.y-z_1", node}));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->view.region, "shmr_x.y-z_1");
    EXPECT_EQ(parsed->view.node, node);
    EXPECT_EQ(parsed->fields, "");
  }
  // Fields a later version adds are handed back, for the reader to judge.
  auto parsed = parse_compact_view_state("abc:3;origin=tcp://h:1;x=y");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->view.node, 3u);
  EXPECT_EQ(parsed->fields, "origin=tcp://h:1;x=y");
}

TEST(CompactViewState, HostileStatesAreRejected) {
  const std::string hostile[] = {
      "", ":", ":0", "abc:", "abc:-1", "abc: 1", "abc:1 ", "abc:0x1", "abc:99999999999999999999",
      "../etc:0", "a/b", "/dev/shm/shmr_a", "a[1]", "a@names", "caf\xc3\xa9",
      "abc;", "abc:1;", ";x=1", std::string("ab\0c", 4), std::string(196, 'x'),
      std::string(100000, 'x'),
  };
  for (const std::string& text : hostile)
    EXPECT_FALSE(shmr::names::parse_compact_view_state(text).has_value()) << text.substr(0, 60);
}

TEST(CompactViewState, FieldsAreKeyValuePairs) {
  using shmr::names::parse_compact_fields;
  auto one = parse_compact_fields("origin=tcp://127.0.0.1:5555 abc - h:0:1 256 7 8 r");
  ASSERT_TRUE(one.has_value());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].first, "origin");
  EXPECT_EQ((*one)[0].second, "tcp://127.0.0.1:5555 abc - h:0:1 256 7 8 r");
  auto two = parse_compact_fields("origin=;later_key=a=b");
  ASSERT_TRUE(two.has_value());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].second, "");
  EXPECT_EQ((*two)[1].first, "later_key");
  EXPECT_EQ((*two)[1].second, "a=b");
  for (const char* bad : {"", "origin", "=x", "Origin=x", "or-igin=x", "origin=x;",
                           "origin=x;;y=1", "origin=x;origin=y", "a=1;b"})
    EXPECT_FALSE(parse_compact_fields(bad).has_value()) << bad;
}

TEST(CompactViewState, OnlyAReusableNameRecordsWhichRegionItWas) {
  using shmr::names::format_compact_view_state;
  const shmr::names::RegionMade made{4321, 1796300000123, 77};
  const std::string generated = shmr::names::generate();
  EXPECT_TRUE(shmr::names::has_generated_form(generated));
  EXPECT_EQ(format_compact_view_state({generated, 3}, made), generated.substr(5) + ":3");
  for (const char* chosen : {"shmr_my_data", "shmr_a", "shmr_0123456789012345678901x",
                             "shmr_012345678901234567890", "shmr_01234567890123456789.1"}) {
    EXPECT_FALSE(shmr::names::has_generated_form(chosen)) << chosen;
    auto parsed = shmr::names::parse_compact_view_state(format_compact_view_state({chosen, 3}, made));
    ASSERT_TRUE(parsed.has_value()) << chosen;
    EXPECT_EQ(parsed->fields, "made=4321.1796300000123.77");
  }
}

TEST(CompactViewState, MadeFieldRoundTripsAndRejectsHostileValues) {
  using shmr::names::format_made;
  using shmr::names::parse_made;
  for (const shmr::names::RegionMade& made :
       {shmr::names::RegionMade{1, 0, 0}, shmr::names::RegionMade{4194304, 1796300000123, 9},
        shmr::names::RegionMade{999999999999999999, 999999999999999999, 9999999999999999999u}}) {
    auto parsed = parse_made(format_made(made));
    ASSERT_TRUE(parsed.has_value()) << format_made(made);
    EXPECT_EQ(parsed->creator_pid, made.creator_pid);
    EXPECT_EQ(parsed->created_unix_ms, made.created_unix_ms);
    EXPECT_EQ(parsed->inode, made.inode);
  }
  for (const char* bad : {"", "1", "1.2", "1.2.", ".1.2", "1..2", "1.2.3.4", "-1.2.3", "1.2.+3",
                          "1.2.3 ", "1.2.0x3", "1000000000000000000.2.3", "1.2.99999999999999999999"})
    EXPECT_FALSE(parse_made(bad).has_value()) << bad;
}

TEST(Decimal, ReadsDigitsUpToTheLimit) {
  EXPECT_EQ(shmr::parse_decimal("0"), 0u);
  EXPECT_EQ(shmr::parse_decimal("007"), 7u);
  EXPECT_EQ(shmr::parse_decimal("18446744073709551615", 20), std::nullopt);  // 20 digits
  EXPECT_EQ(shmr::parse_decimal("9999999999999999999"), 9999999999999999999ull);
  EXPECT_EQ(shmr::parse_decimal("999999999999999999", shmr::kMaxSignedDigits),
            999999999999999999ull);
  EXPECT_EQ(shmr::parse_decimal("1000000000000000000", shmr::kMaxSignedDigits), std::nullopt);
  EXPECT_EQ(shmr::parse_decimal("12345", 4), std::nullopt);
}

TEST(Decimal, RefusesAnythingButDigits) {
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1a", "0x10", "1.5", "１"}) {
    EXPECT_EQ(shmr::parse_decimal(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(shmr::parse_decimal(std::string_view("12\0" "3", 4)), std::nullopt);
}
