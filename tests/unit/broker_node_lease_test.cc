// Commit leases, the node side (broker/node/src/lease.h; docs/cluster.md C-25, §16.8): the
// grant and lease messages, the heartbeat clock a lease is counted from, and the engine's
// LeaseHolder (valid until expiry, only with a map at least as new as the grant's).
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "lease.h"

namespace chorus::broker::node {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(LeaseTest, C25_ReplyAndGrantRoundTripAndMalformedFramesAreRefused) {
  LeaseReply r{7, 1234, 42, 240, 99};
  LeaseReply back;
  ASSERT_TRUE(DecodeLeaseReply(EncodeLeaseReply(r), back));
  EXPECT_EQ(back.member, 7u);
  EXPECT_EQ(back.incarnation, 1234u);
  EXPECT_EQ(back.seq, 42u);
  EXPECT_EQ(back.duration_ms, 240);
  EXPECT_EQ(back.min_entries, 99u);
  LeaseGrant g{5 * kMs, 3}, gb;
  ASSERT_TRUE(DecodeLeaseGrant(EncodeLeaseGrant(g), gb));
  EXPECT_EQ(gb.expiry_ns, 5 * kMs);
  EXPECT_EQ(gb.min_entries, 3u);
  // A grant is not a reply and the reverse; garbage and bad values are refused.
  EXPECT_FALSE(DecodeLeaseReply(EncodeLeaseGrant(g), back));
  EXPECT_FALSE(DecodeLeaseGrant(EncodeLeaseReply(r), gb));
  EXPECT_FALSE(DecodeLeaseReply("\xc1", back));
  EXPECT_FALSE(DecodeLeaseReply(EncodeLeaseReply({0, 1, 1, 240, 0}), back));  // member 0
  EXPECT_FALSE(DecodeLeaseReply(EncodeLeaseReply({1, 1, 1, 0, 0}), back));    // no duration
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(6);
  pk.pack(std::string("l"));
  pk.pack(std::string("not a number"));
  for (int i = 0; i < 4; ++i) pk.pack(1);
  EXPECT_FALSE(DecodeLeaseReply(std::string_view(buf.data(), buf.size()), back));
}

TEST(LeaseTest, C25_TheLeaseRunsFromWhenTheHeartbeatWasSent) {
  HeartbeatClock c;
  const uint64_t a = c.Sent(100 * kMs);
  const uint64_t b = c.Sent(200 * kMs);
  EXPECT_NE(a, b);
  EXPECT_EQ(c.SentAt(a), 100 * kMs);
  EXPECT_EQ(c.SentAt(b), 200 * kMs);
  EXPECT_FALSE(c.SentAt(0).has_value());  // a heartbeat without seq gets no lease
  for (int i = 0; i < 64; ++i) c.Sent((300 + i) * kMs);
  EXPECT_FALSE(c.SentAt(a).has_value()) << "bounded: old heartbeats are forgotten";
}

TEST(LeaseTest, C25_ValidUntilExpiryAndOnlyWithTheGrantsMap) {
  LeaseHolder h;
  EXPECT_FALSE(h.Valid(0, 100)) << "no lease at start";
  h.Add({1000 * kMs, 10});
  EXPECT_TRUE(h.Valid(999 * kMs, 10));
  EXPECT_FALSE(h.Valid(1000 * kMs, 10)) << "expired";
  EXPECT_FALSE(h.Valid(500 * kMs, 9)) << "the map is older than the controller's";
  // A newer grant with a newer map: until that map arrives the older grant still counts.
  h.Add({1100 * kMs, 20});
  EXPECT_TRUE(h.Valid(999 * kMs, 15));
  EXPECT_FALSE(h.Valid(1050 * kMs, 15)) << "the older one ended; the newer needs entry 20";
  EXPECT_TRUE(h.Valid(1050 * kMs, 20));
  // Grants out of order are kept sorted; a dominated one adds nothing.
  h.Add({1080 * kMs, 12});
  EXPECT_TRUE(h.Valid(1070 * kMs, 12));
  h.Add({900 * kMs, 30});
  EXPECT_TRUE(h.Valid(1090 * kMs, 20));
  EXPECT_EQ(h.grants(), 4u);
}

}  // namespace
}  // namespace chorus::broker::node
