// GlobMatch (broker/core/glob.h): the server API's `channels` pattern and the shape of the
// gateway's Origin patterns.
#include "broker/core/glob.h"

#include <gtest/gtest.h>

#include <string>

namespace chorus::broker {
namespace {

TEST(BrokerGlob, LiteralPatternsMatchExactly) {
  EXPECT_TRUE(GlobMatch("chat:a", "chat:a"));
  EXPECT_FALSE(GlobMatch("chat:a", "chat:ab"));
  EXPECT_FALSE(GlobMatch("chat:ab", "chat:a"));
  EXPECT_TRUE(GlobMatch("", ""));
  EXPECT_FALSE(GlobMatch("", "a"));
  EXPECT_FALSE(GlobMatch("a", ""));
}

TEST(BrokerGlob, StarMatchesAnyRunIncludingNone) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*", "anything at all"));
  EXPECT_TRUE(GlobMatch("chat:*", "chat:"));
  EXPECT_TRUE(GlobMatch("chat:*", "chat:room"));
  EXPECT_FALSE(GlobMatch("chat:*", "news:room"));
  EXPECT_TRUE(GlobMatch("*:room", "chat:room"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_TRUE(GlobMatch("a*b*c", "abc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  EXPECT_TRUE(GlobMatch("**", "x"));
  // Backtracking: the first 'b' is not the one that lets the rest match.
  EXPECT_TRUE(GlobMatch("*bc", "abbc"));
  EXPECT_TRUE(GlobMatch("a*ab", "aaab"));
}

TEST(BrokerGlob, QuestionMarkIsOneByteUnlessTurnedOff) {
  EXPECT_TRUE(GlobMatch("chat:?", "chat:a"));
  EXPECT_FALSE(GlobMatch("chat:?", "chat:"));
  EXPECT_FALSE(GlobMatch("chat:?", "chat:ab"));
  EXPECT_TRUE(GlobMatch("?*", "a"));
  EXPECT_FALSE(GlobMatch("?*", ""));
  const GlobOptions literal{.question_mark = false};
  EXPECT_FALSE(GlobMatch("a?c", "abc", literal));
  EXPECT_TRUE(GlobMatch("a?c", "a?c", literal));
}

TEST(BrokerGlob, CaseIsSignificantUnlessIgnored) {
  EXPECT_FALSE(GlobMatch("Chat:*", "chat:a"));
  const GlobOptions origins{.question_mark = false, .ignore_ascii_case = true};
  EXPECT_TRUE(GlobMatch("https://*.Example.com", "https://app.example.COM", origins));
  EXPECT_FALSE(GlobMatch("https://*.example.com", "https://example.com", origins));
  EXPECT_FALSE(GlobMatch("https://*.example.com", "https://evil.com/.example.com.x", origins));
  // Only ASCII letters fold: other bytes compare as they are.
  EXPECT_FALSE(GlobMatch("\xc3\x89", "\xc3\xa9", origins));
}

TEST(BrokerGlob, WorstCaseStaysLinearTimesPattern) {
  // Many stars against a long text that almost matches: no exponential backtracking.
  const std::string text(100'000, 'a');
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*a*b", text));
  EXPECT_TRUE(GlobMatch("*a*a*a*a*a*a*a*a*", text));
}

static_assert(GlobMatch("chat:*", "chat:x"), "usable in constant expressions");

}  // namespace
}  // namespace chorus::broker
