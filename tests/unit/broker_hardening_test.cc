// Pure parts of the hardening bounds (issue 10): the JSON depth scan, the per-connection token
// bucket, the channel cap of the table and the descriptor plan. No sockets.
#include <gtest/gtest.h>

#include <string>

#include "broker/channels/channel_table.h"
#include "broker/core/rate_limit.h"
#include "broker/node/fd_limit.h"
#include "broker/protocol/json_depth.h"

namespace chorus::broker {
namespace {

TEST(JsonDepth, CountsArraysAndObjectsNotStrings) {
  EXPECT_TRUE(JsonDepthAtMost("1", 0));
  EXPECT_FALSE(JsonDepthAtMost("[]", 0));
  EXPECT_TRUE(JsonDepthAtMost("[[1],{\"a\":[2]}]", 3));
  EXPECT_FALSE(JsonDepthAtMost("[[1],{\"a\":[2]}]", 2));
  EXPECT_TRUE(JsonDepthAtMost(R"(["[[[[", "\"[[[", "\\"])", 1));
  EXPECT_TRUE(JsonDepthAtMost(R"({"a":"]]]"})", 1));
}

TEST(JsonDepth, StopsAtTheFirstLevelTooDeep) {
  const std::string deep(1'000'000, '[');
  EXPECT_FALSE(JsonDepthAtMost(deep, 64));
  EXPECT_TRUE(JsonDepthAtMost(std::string(64, '[') + std::string(64, ']'), 64));
  EXPECT_FALSE(JsonDepthAtMost(std::string(65, '[') + std::string(65, ']'), 64));
}

TEST(TokenBucket, AllowsOneSecondOfBurstThenTheRate) {
  TokenBucket b;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(b.Take(10, 1000)) << i;
  EXPECT_FALSE(b.Take(10, 1000));
  EXPECT_FALSE(b.Take(10, 1050));
  EXPECT_TRUE(b.Take(10, 1100));  // 100 ms at 10/s: one more
  EXPECT_FALSE(b.Take(10, 1100));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(b.Take(10, 60'000)) << "refilled, capped at 10";
  EXPECT_FALSE(b.Take(10, 60'000));
  EXPECT_TRUE(b.Take(0, 60'000)) << "0 = no limit";
}

TEST(ChannelCap, OpenRefusesBeyondMaxChannelsAndCounts) {
  Limits limits;
  limits.max_channels = 2;
  ChannelOptions history;
  history.history_size = 10;
  history.history_ttl_ms = 60'000;
  NamespaceRegistry registry(history, {}, limits);
  ChannelTable table(registry, nullptr, 1000);
  ASSERT_TRUE(table.Open("a", 0).ok());
  ASSERT_TRUE(table.Open("b", 0).ok());
  auto c = table.Open("c", 0);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), make_error_code(Errc::kLimitExceeded));
  EXPECT_EQ(table.stats().channels_refused, 1u);
  EXPECT_TRUE(table.Open("a", 1).ok()) << "held channels still open";
}

TEST(ChannelCap, HistoryReadOfAnUnheldChannelCreatesNothing) {
  ChannelOptions history;
  history.history_size = 10;
  history.history_ttl_ms = 60'000;
  NamespaceRegistry registry(history, {}, {});
  ChannelTable table(registry, nullptr, 1000);
  HistoryQuery q;
  q.limit = -1;
  auto r = table.History("x", q, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->publications.empty());
  EXPECT_EQ(r->top, (StreamPosition{0, ""}));
  EXPECT_EQ(table.size(), 0u);
  q.since = StreamPosition{1, ""};
  EXPECT_EQ(table.History("x", q, 0).error(), make_error_code(Errc::kUnrecoverablePosition));
}

TEST(DescriptorPlan, KeepsFitsClampsAndRefuses) {
  HttpSection http;  // max_connections 10000, reserved_descriptors 256
  auto fits = node::PlanDescriptors(http, 1u << 20);
  EXPECT_EQ(fits.max_connections, 10'000u);
  EXPECT_TRUE(fits.warning.empty());
  EXPECT_TRUE(fits.error.empty());
  auto clamped = node::PlanDescriptors(http, 1024);
  EXPECT_EQ(clamped.max_connections, 768u);
  EXPECT_FALSE(clamped.warning.empty());
  EXPECT_TRUE(clamped.error.empty());
  auto refused = node::PlanDescriptors(http, 256 + 15);
  EXPECT_FALSE(refused.error.empty());
  EXPECT_TRUE(node::PlanDescriptors(http, 256 + 16).error.empty());
}

}  // namespace
}  // namespace chorus::broker
