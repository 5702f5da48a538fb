// The presence peer messages (broker/node/src/presence_codec.h, docs/cluster.md §10, C-21):
// every field survives a round trip, the kind is read from the first element, and anything
// malformed is refused rather than half-decoded.
#include <gtest/gtest.h>

#include "peer_codec.h"
#include "presence_codec.h"

namespace chorus::broker::node {
namespace {

TEST(PresenceCodec, C21_UpdateRoundTripCarriesNodeAndIncarnation) {
  PresenceUpdate u;
  u.sender = 3;
  u.incarnation = 1'700'000'000'123;
  u.partition = 17;
  u.partition_epoch = 9;
  u.channel = "chat:été";
  u.join = true;
  u.entry = {"c1", "alice", R"({"n":1})", R"({"seat":2})", 3, 1'700'000'000'123};
  const std::string bytes = EncodePresenceUpdate(u);
  EXPECT_EQ(PeerMessageKind(bytes), kPresenceUpdateKind);
  PresenceUpdate out;
  ASSERT_TRUE(DecodePresenceUpdate(bytes, out));
  EXPECT_EQ(out, u);
  EXPECT_EQ(out.entry.node, 3u);  // the entry's node and incarnation are the sender's
  u.join = false;
  ASSERT_TRUE(DecodePresenceUpdate(EncodePresenceUpdate(u), out));
  EXPECT_FALSE(out.join);
}

// Kind 34 (C-23): what a node holds in a partition after a primary change.
TEST(PresenceCodec, C23_SyncRoundTripListsWhatTheSenderHolds) {
  PresenceUpdate u;
  u.sync = true;
  u.sender = 2;
  u.incarnation = 5;
  u.partition = 40;
  u.partition_epoch = 3;
  u.held = {{"chat:a", "c1"}, {"chat:a", "c2"}, {"chat:b", "c1"}};
  const std::string bytes = EncodePresenceUpdate(u);
  EXPECT_EQ(PeerMessageKind(bytes), kPresenceSyncKind);
  PresenceUpdate out;
  ASSERT_TRUE(DecodePresenceUpdate(bytes, out));
  EXPECT_EQ(out, u);
  u.held.clear();  // holds nothing there any more: a valid sync
  ASSERT_TRUE(DecodePresenceUpdate(EncodePresenceUpdate(u), out));
  EXPECT_TRUE(out.sync);
  EXPECT_TRUE(out.held.empty());
  u.held = {{"chat:a", ""}};  // an empty client id
  EXPECT_FALSE(DecodePresenceUpdate(EncodePresenceUpdate(u), out));
  u.held.clear();
  u.sender = 0;
  EXPECT_FALSE(DecodePresenceUpdate(EncodePresenceUpdate(u), out));
}

TEST(PresenceCodec, QueryAndAnswerRoundTrip) {
  PresenceQuery q{7, 2, "chat:a", PresenceQueryMode::kPage, "c1", 50};
  PresenceQuery qo;
  ASSERT_TRUE(DecodePresenceQuery(EncodePresenceQuery(q), qo));
  EXPECT_EQ(qo, q);
  PresenceAnswer a;
  a.id = 7;
  a.entries = {{"c2", "bob", "", "", 2, 11}, {"c3", "", "{}", "[1]", 3, 12}};
  a.next_cursor = "c3";
  a.num_clients = 2;
  a.num_users = 2;
  a.users = {"", "bob"};
  PresenceAnswer ao;
  const std::string bytes = EncodePresenceAnswer(a);
  EXPECT_EQ(PeerMessageKind(bytes), kPresenceAnswerKind);
  ASSERT_TRUE(DecodePresenceAnswer(bytes, ao));
  EXPECT_EQ(ao, a);
  a.status = PresenceAnswerStatus::kNotPrimary;
  a.entries.clear();
  ASSERT_TRUE(DecodePresenceAnswer(EncodePresenceAnswer(a), ao));
  EXPECT_EQ(ao, a);
}

TEST(PresenceCodec, MalformedIsRefused) {
  PresenceUpdate u;
  EXPECT_FALSE(DecodePresenceUpdate("", u));
  EXPECT_FALSE(DecodePresenceUpdate("\x93\x1e\x01\x02", u));  // too short
  PresenceUpdate empty_client;
  empty_client.sender = 1;
  empty_client.channel = "a";
  EXPECT_FALSE(DecodePresenceUpdate(EncodePresenceUpdate(empty_client), u));
  PresenceUpdate no_sender;
  no_sender.channel = "a";
  no_sender.entry.client = "c";
  EXPECT_FALSE(DecodePresenceUpdate(EncodePresenceUpdate(no_sender), u));
  // Another kind is not taken for this one, and the forward messages stay distinct.
  PresenceQuery q;
  EXPECT_FALSE(DecodePresenceQuery(EncodePresenceAnswer(PresenceAnswer{}), q));
  ForwardRequest fr;
  fr.channel = "a";
  EXPECT_EQ(PeerMessageKind(EncodeForwardRequest(fr)), 1u);
  EXPECT_FALSE(DecodePresenceUpdate(EncodeForwardRequest(fr), u));
  EXPECT_EQ(PeerMessageKind("not msgpack"), 0u);
  PresenceQuery bad_mode{1, 1, "a", static_cast<PresenceQueryMode>(9), "", 1};
  EXPECT_FALSE(DecodePresenceQuery(EncodePresenceQuery(bad_mode), q));
}

}  // namespace
}  // namespace chorus::broker::node
