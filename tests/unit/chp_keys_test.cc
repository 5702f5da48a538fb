// Unit tests for key and subtree naming (chp/keys.h).
#include "chp/keys.h"

#include <gtest/gtest.h>

#include <string>

#include "chp/types.h"

namespace chorus::chp {
namespace {

using namespace std::string_literals;

TEST(IsValidSubtree, Length) {
  EXPECT_FALSE(IsValidSubtree(""));
  EXPECT_TRUE(IsValidSubtree("a"));
  EXPECT_TRUE(IsValidSubtree(std::string(kMaxSubtreeBytes, 'a')));
  EXPECT_FALSE(IsValidSubtree(std::string(kMaxSubtreeBytes + 1, 'a')));
  EXPECT_EQ(kMaxSubtreeBytes, 255u);
  // The limit is in bytes: 85 three-byte characters fit, 86 do not.
  std::string euros;
  for (int i = 0; i < 85; ++i) euros += "\xe2\x82\xac";
  EXPECT_EQ(euros.size(), 255u);
  EXPECT_TRUE(IsValidSubtree(euros));
  EXPECT_FALSE(IsValidSubtree(euros + "\xe2\x82\xac"));
}

TEST(IsValidSubtree, ReservedAndForbidden) {
  EXPECT_FALSE(IsValidSubtree("/"));
  EXPECT_FALSE(IsValidSubtree("a/b"));
  EXPECT_FALSE(IsValidSubtree("a/"));
  EXPECT_FALSE(IsValidSubtree("$sys"));
  EXPECT_FALSE(IsValidSubtree("$"));
  EXPECT_FALSE(IsValidSubtree(kHugzTopic));
  EXPECT_TRUE(IsValidSubtree("a$"));
  EXPECT_FALSE(IsValidSubtree("*"));
  EXPECT_TRUE(IsValidSubtree("**"));
  EXPECT_TRUE(IsValidSubtree("a*"));
  EXPECT_TRUE(IsValidSubtree("orders.eu-west_1 v2"));
}

TEST(IsValidSubtree, ControlCharacters) {
  for (const std::string& s : {"\0"s, "a\0b"s, "a\x01"s, "\tab"s, "a\nb"s, "a\x1f"s, "a\x7f"s}) {
    EXPECT_FALSE(IsValidSubtree(s)) << static_cast<int>(s.back());
  }
  EXPECT_TRUE(IsValidSubtree("a b"));
  EXPECT_TRUE(IsValidSubtree("~"));
}

TEST(IsValidSubtree, InvalidUtf8) {
  const std::string bad[] = {
      "\xff"s,                  // never valid
      "\xfe"s,                  //
      "\x80"s,                  // lone continuation byte
      "a\xbf"s,                 //
      "\xc3"s,                  // truncated two-byte sequence
      "\xe2\x82"s,              // truncated three-byte sequence
      "\xf0\x9f\x98"s,          // truncated four-byte sequence
      "\xc3\x28"s,              // bad continuation
      "\xc0\x80"s,              // overlong NUL
      "\xc1\xbf"s,              // overlong U+007F
      "\xe0\x80\xaf"s,          // overlong '/'
      "\xe0\x9f\xbf"s,          // overlong U+07FF
      "\xf0\x80\x80\x80"s,      // overlong 4-byte
      "\xf0\x8f\xbf\xbf"s,      // overlong U+FFFF
      "\xed\xa0\x80"s,          // surrogate U+D800
      "\xed\xbf\xbf"s,          // surrogate U+DFFF
      "\xf4\x90\x80\x80"s,      // U+110000
      "\xf5\x80\x80\x80"s,      //
      "\xf8\x88\x80\x80\x80"s,  // 5-byte form
  };
  for (const std::string& s : bad) {
    EXPECT_FALSE(IsValidUtf8(s)) << testing::PrintToString(s);
    EXPECT_FALSE(IsValidSubtree(s)) << testing::PrintToString(s);
    EXPECT_FALSE(IsValidSubtree("ok" + s + "ok")) << testing::PrintToString(s);
  }
}

TEST(IsValidSubtree, ValidMultibyte) {
  const std::string good[] = {
      "\xc3\xa9"s,          // é
      "\xc2\x80"s,          // U+0080, smallest two-byte
      "\xdf\xbf"s,          // U+07FF
      "\xe0\xa0\x80"s,      // U+0800, smallest three-byte
      "\xe2\x82\xac"s,      // €
      "\xed\x9f\xbf"s,      // U+D7FF, just below the surrogates
      "\xee\x80\x80"s,      // U+E000, just above
      "\xef\xbf\xbf"s,      // U+FFFF
      "\xf0\x90\x80\x80"s,  // U+10000, smallest four-byte
      "\xf0\x9f\x98\x80"s,  // 😀
      "\xf4\x8f\xbf\xbf"s,  // U+10FFFF
      "caf\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac"s,
  };
  for (const std::string& s : good) {
    EXPECT_TRUE(IsValidUtf8(s)) << testing::PrintToString(s);
    EXPECT_TRUE(IsValidSubtree(s)) << testing::PrintToString(s);
  }
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("a\0b"s));  // valid UTF-8, but a control character for names
}

TEST(SplitKey, Basic) {
  const std::string full = "orders/eu/123";
  auto parts = SplitKey(full);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->subtree, "orders");
  EXPECT_EQ(parts->key, "eu/123");  // the key part may contain '/'
  // Views into the argument, not copies.
  EXPECT_EQ(parts->subtree.data(), full.data());
  EXPECT_EQ(parts->key.data(), full.data() + 7);

  auto p2 = SplitKey("s//x");
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->subtree, "s");
  EXPECT_EQ(p2->key, "/x");

  auto p3 = SplitKey("s/\xc3\xa9");
  ASSERT_TRUE(p3.ok());
  EXPECT_EQ(p3->key, "\xc3\xa9");
}

TEST(SplitKey, Rejected) {
  for (const std::string& s :
       {""s, "/"s, "nokey"s, "s/"s, "/k"s, "$sys/k"s, "*/k"s, "a\x01/k"s, "s/k\x7f"s, "s/\nk"s,
        "s/k\0"s, "s/\xff"s, "s/\xed\xa0\x80"s, "\xc0\x80/k"s}) {
    auto r = SplitKey(s);
    ASSERT_FALSE(r.ok()) << testing::PrintToString(s);
    EXPECT_EQ(r.error(), Errc::kBadKey) << testing::PrintToString(s);
  }
  // A subtree over the limit, even with a short key.
  EXPECT_FALSE(SplitKey(std::string(256, 's') + "/k").ok());
  EXPECT_TRUE(SplitKey(std::string(255, 's') + "/k").ok());
}

TEST(SplitKey, FullKeyLength) {
  EXPECT_EQ(kMaxKeyBytes, 1024u);
  const std::string max = "s/" + std::string(kMaxKeyBytes - 2, 'k');
  ASSERT_EQ(max.size(), 1024u);
  auto ok = SplitKey(max);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->key.size(), 1022u);
  auto r = SplitKey(max + "k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Errc::kBadKey);
}

TEST(JoinKey, JoinAndPrefix) {
  EXPECT_EQ(JoinKey("a", "b"), "a/b");
  EXPECT_EQ(JoinKey("a", "b/c"), "a/b/c");
  EXPECT_EQ(JoinKey("sub", ""), "sub/");
  EXPECT_EQ(TopicPrefix("sub"), "sub/");
  EXPECT_EQ(TopicPrefix(""), "/");
  // Round trip, and a key's topic starts with its subtree's prefix (for SUB filtering).
  const std::string full = JoinKey("orders", "x/y");
  auto parts = SplitKey(full);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->subtree, "orders");
  EXPECT_EQ(parts->key, "x/y");
  EXPECT_EQ(full.rfind(TopicPrefix("orders"), 0), 0u);
  // "ord/..." must not match the prefix of "orders" and vice versa.
  EXPECT_NE(JoinKey("orders", "k").rfind(TopicPrefix("ord"), 0), 0u);
}

}  // namespace
}  // namespace chorus::chp
