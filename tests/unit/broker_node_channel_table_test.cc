// Unit tests for the node's channel table (broker/channels/channel_table.h): offsets and epochs per
// channel, the history cap, when idle channels are dropped, subscribe recovery outcomes and the
// presence events mirrored into the StateSink. No sockets: the sink records its calls.
#include "broker/channels/channel_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace chorus::broker::node {
namespace {

constexpr int64_t kIdleDropMs = 10'000;

// One StateSink call, flattened.
struct SinkCall {
  std::string kind;  // top, pub, removed, presence, dropped
  std::string channel;
  StreamPosition top;
  Publication pub;
  size_t history_size = 0;
  int64_t ttl_ms = 0;
  PresenceEntry entry;
  bool joined = false;
};

class RecordingSink final : public StateSink {
 public:
  void OnTop(std::string_view channel, const StreamPosition& top) override {
    Add("top", channel).top = top;
  }
  void OnPublication(std::string_view channel, const Publication& pub, size_t history_size,
                     int64_t ttl_ms) override {
    SinkCall& c = Add("pub", channel);
    c.pub = pub;
    c.history_size = history_size;
    c.ttl_ms = ttl_ms;
  }
  void OnHistoryRemoved(std::string_view channel, size_t history_size) override {
    Add("removed", channel).history_size = history_size;
  }
  void OnPresence(std::string_view channel, const PresenceEntry& entry, bool joined) override {
    SinkCall& c = Add("presence", channel);
    c.entry = entry;
    c.joined = joined;
  }
  void OnChannelDropped(std::string_view channel, size_t history_size) override {
    Add("dropped", channel).history_size = history_size;
  }

  std::vector<SinkCall> Of(const std::string& kind) const {
    std::vector<SinkCall> out;
    for (const auto& c : calls) {
      if (c.kind == kind) out.push_back(c);
    }
    return out;
  }
  std::vector<SinkCall> calls;

 private:
  SinkCall& Add(const char* kind, std::string_view channel) {
    calls.emplace_back();
    calls.back().kind = kind;
    calls.back().channel = std::string(channel);
    return calls.back();
  }
};

ChannelOptions History(uint32_t size, int64_t ttl_ms) {
  ChannelOptions o;
  o.history_size = size;
  o.history_ttl_ms = ttl_ms;
  o.allow_recovery = true;
  return o;
}

// The namespaces of the integration tests' node (node_support.cc, kTestNamespaces).
NamespaceRegistry MakeRegistry() {
  ChannelOptions chat = History(100, 60'000);
  chat.presence = true;
  chat.join_leave = true;
  chat.user_presence = true;
  ChannelOptions nohist;
  nohist.presence = true;
  return NamespaceRegistry(ChannelOptions{}, {{"chat", chat},
                                              {"short", History(3, 60'000)},
                                              {"ttl", History(100, 500)},
                                              {"nohist", nohist}});
}

class BrokerNodeChannelTable : public ::testing::Test {
 protected:
  uint64_t PublishOk(const std::string& channel, const std::string& data, int64_t now = 0) {
    auto out = table_.Publish(channel, data, std::nullopt, {}, now);
    EXPECT_TRUE(out.ok()) << channel << ": " << out.error().message();
    return out.ok() ? out->publication.offset : 0;
  }
  std::vector<uint64_t> Offsets(const std::vector<Publication>& pubs) {
    std::vector<uint64_t> out;
    for (const auto& p : pubs) out.push_back(p.offset);
    return out;
  }
  std::vector<PresenceEventType> Types(const std::vector<PresenceEvent>& events) {
    std::vector<PresenceEventType> out;
    for (const auto& e : events) out.push_back(e.type);
    return out;
  }

  NamespaceRegistry registry_ = MakeRegistry();
  RecordingSink sink_;
  ChannelTable table_{registry_, &sink_, kIdleDropMs, /*seed=*/42};
};

TEST_F(BrokerNodeChannelTable, PublishTakesConsecutiveOffsetsInOneEpochAndMirrorsThem) {
  auto first = table_.Publish("chat:a", R"({"n":1})", std::nullopt, {{"k", "v"}}, 100);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->publication.offset, 1u);
  EXPECT_EQ(first->publication.time_ms, 100);
  EXPECT_EQ(first->epoch.size(), 8u);
  ASSERT_NE(first->channel, nullptr);
  EXPECT_EQ(first->channel->name, "chat:a");
  const std::string epoch = first->epoch;
  for (uint64_t want = 2; want <= 5; ++want) {
    auto out = table_.Publish("chat:a", "{}", std::nullopt, {}, 100 + want);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->publication.offset, want);
    EXPECT_EQ(out->epoch, epoch);
  }
  // Open mirrors the empty position, then each publication is mirrored with its new top.
  auto tops = sink_.Of("top");
  ASSERT_EQ(tops.size(), 6u);
  EXPECT_EQ(tops[0].top, (StreamPosition{0, epoch}));
  EXPECT_EQ(tops[5].top, (StreamPosition{5, epoch}));
  auto pubs = sink_.Of("pub");
  ASSERT_EQ(pubs.size(), 5u);
  EXPECT_EQ(pubs[0].channel, "chat:a");
  EXPECT_EQ(pubs[0].pub.offset, 1u);
  EXPECT_EQ(pubs[0].pub.data, R"({"n":1})");
  EXPECT_EQ(pubs[0].pub.tags.at("k"), "v");
  EXPECT_EQ(pubs[0].history_size, 100u);
  EXPECT_EQ(pubs[0].ttl_ms, 60'000);
  EXPECT_EQ(table_.stats().publications, 5u);
}

TEST_F(BrokerNodeChannelTable, EachChannelHasItsOwnEpochAndOffsets) {
  EXPECT_EQ(PublishOk("chat:a", "1"), 1u);
  EXPECT_EQ(PublishOk("chat:a", "2"), 2u);
  EXPECT_EQ(PublishOk("chat:b", "1"), 1u);
  const Channel* a = table_.Find("chat:a");
  const Channel* b = table_.Find("chat:b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->history && b->history);
  EXPECT_NE(a->history->epoch(), b->history->epoch());
  EXPECT_EQ(a->history->top_offset(), 2u);
  EXPECT_EQ(b->history->top_offset(), 1u);
  // Epochs are [0-9A-Za-z]{8}.
  for (char c : a->history->epoch()) EXPECT_TRUE(isalnum(static_cast<unsigned char>(c))) << c;
}

TEST_F(BrokerNodeChannelTable, HistoryKeepsOnlyTheLatestHistorySizePublications) {
  for (int i = 1; i <= 5; ++i) PublishOk("short:x", std::to_string(i));
  HistoryQuery all;
  all.limit = -1;
  auto h = table_.History("short:x", all, 1);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(Offsets(h->publications), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(h->publications.front().data, "3");
  EXPECT_EQ(h->top.offset, 5u);
  EXPECT_EQ(sink_.Of("pub").back().history_size, 3u);
}

TEST_F(BrokerNodeChannelTable, ChannelWithoutHistoryIsDroppedAtOnceAfterPublish) {
  auto out = table_.Publish("nohist:x", "{}", std::nullopt, {}, 0);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->publication.offset, 0u);
  EXPECT_EQ(out->epoch, "");
  EXPECT_EQ(out->channel, nullptr);  // nobody listens, nothing kept
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_TRUE(sink_.Of("pub").empty());
  EXPECT_TRUE(sink_.Of("top").empty());
  ASSERT_EQ(sink_.Of("dropped").size(), 1u);
  EXPECT_EQ(sink_.Of("dropped")[0].history_size, 0u);
}

TEST_F(BrokerNodeChannelTable, ChannelWithoutHistoryIsDroppedWhenTheLastSubscriberLeaves) {
  auto sub = table_.Subscribe("nohist:x", 1, false, "", 0, 0);
  ASSERT_TRUE(sub.ok());
  EXPECT_FALSE(sub->recoverable);
  ASSERT_TRUE(table_.Subscribe("nohist:x", 2, false, "", 0, 0).ok());
  Channel* ch = table_.Find("nohist:x");
  ASSERT_NE(ch, nullptr);
  table_.Unsubscribe(*ch, 1, 1);
  ASSERT_EQ(table_.Find("nohist:x"), ch);  // one subscriber left
  table_.Unsubscribe(*ch, 2, 2);
  EXPECT_EQ(table_.Find("nohist:x"), nullptr);
  EXPECT_EQ(table_.stats().channels_dropped, 1u);
}

TEST_F(BrokerNodeChannelTable, IdleHistoryChannelIsDroppedOnlyAfterIdleDropMs) {
  auto sub = table_.Subscribe("chat:idle", 1, false, "", 0, 1'000);
  ASSERT_TRUE(sub.ok());
  const std::string epoch = sub->top.epoch;
  table_.Unsubscribe(*sub->channel, 1, 1'000);
  ASSERT_NE(table_.Find("chat:idle"), nullptr);  // position kept for reconnecting clients
  EXPECT_EQ(table_.Sweep(1'000 + kIdleDropMs - 1), 0u);
  ASSERT_NE(table_.Find("chat:idle"), nullptr);
  EXPECT_TRUE(sink_.Of("dropped").empty());
  EXPECT_EQ(table_.Sweep(1'000 + kIdleDropMs), 1u);
  EXPECT_EQ(table_.Find("chat:idle"), nullptr);
  auto dropped = sink_.Of("dropped");
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].channel, "chat:idle");
  EXPECT_EQ(dropped[0].history_size, 100u);
  // The position is lost: a new epoch, and the old one no longer recovers.
  auto again = table_.Subscribe("chat:idle", 2, true, epoch, 0, 20'000);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->top.epoch, epoch);
  EXPECT_FALSE(again->recovered);
}

TEST_F(BrokerNodeChannelTable, ChannelWithRetainedPublicationsIsKeptUntilTheyExpire) {
  PublishOk("ttl:x", "1", 0);  // kept 500 ms
  EXPECT_EQ(table_.Sweep(400), 0u);
  EXPECT_EQ(table_.Sweep(kIdleDropMs - 1), 0u);  // expired, but idle for less than idle_drop_ms
  ASSERT_NE(table_.Find("ttl:x"), nullptr);
  EXPECT_EQ(table_.Find("ttl:x")->history->size(), 0u);
  EXPECT_EQ(table_.Sweep(kIdleDropMs), 1u);
  EXPECT_EQ(table_.Find("ttl:x"), nullptr);

  PublishOk("chat:kept", "1", 0);  // kept 60 s
  EXPECT_EQ(table_.Sweep(2 * kIdleDropMs), 0u);
  ASSERT_NE(table_.Find("chat:kept"), nullptr);
  EXPECT_EQ(table_.Sweep(60'000), 1u);  // the publication's TTL reached
  EXPECT_EQ(table_.Find("chat:kept"), nullptr);
}

TEST_F(BrokerNodeChannelTable, ActivityPostponesTheIdleDrop) {
  ASSERT_TRUE(table_.Open("chat:busy", 0).ok());
  EXPECT_EQ(table_.Sweep(kIdleDropMs / 2), 0u);
  ASSERT_TRUE(table_.Open("chat:busy", kIdleDropMs / 2).ok());  // touched
  EXPECT_EQ(table_.Sweep(kIdleDropMs), 0u);
  EXPECT_NE(table_.Find("chat:busy"), nullptr);
  EXPECT_EQ(table_.Sweep(kIdleDropMs / 2 + kIdleDropMs), 1u);
}

TEST_F(BrokerNodeChannelTable, SubscribeRecoversEveryPublicationAfterThePosition) {
  for (int i = 1; i <= 4; ++i) PublishOk("chat:r", std::to_string(i));
  const std::string epoch = table_.Find("chat:r")->history->epoch();
  auto r = table_.Subscribe("chat:r", 1, true, epoch, 1, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->recoverable);
  EXPECT_TRUE(r->was_recovering);
  EXPECT_TRUE(r->recovered);
  EXPECT_EQ(Offsets(r->publications), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(r->top, (StreamPosition{4, epoch}));
  EXPECT_EQ(r->channel->subscribers.count(1), 1u);
  EXPECT_EQ(table_.stats().recovered, 1u);

  // At the top: recovered with nothing to add.
  auto top = table_.Subscribe("chat:r", 2, true, epoch, 4, 10);
  ASSERT_TRUE(top.ok());
  EXPECT_TRUE(top->recovered);
  EXPECT_TRUE(top->publications.empty());
}

TEST_F(BrokerNodeChannelTable, SubscribeDoesNotRecoverPartially) {
  for (int i = 1; i <= 5; ++i) PublishOk("short:r", std::to_string(i));  // keeps 3..5
  const std::string epoch = table_.Find("short:r")->history->epoch();
  struct Case {
    std::string epoch;
    uint64_t offset;
    size_t max;
  };
  const std::vector<Case> cases = {
      {epoch, 1, 0},    // offset 2 is gone
      {"other", 4, 0},  // wrong epoch
      {"", 4, 0},       // no epoch never matches
      {epoch, 9, 0},    // a position the stream never had
      {epoch, 2, 2},    // three to recover, at most two allowed
  };
  SubscriberId id = 1;
  for (const auto& c : cases) {
    auto r = table_.Subscribe("short:r", id++, true, c.epoch, c.offset, 10, c.max);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->was_recovering);
    EXPECT_FALSE(r->recovered) << c.epoch << " " << c.offset;
    EXPECT_TRUE(r->publications.empty()) << c.epoch << " " << c.offset;
    EXPECT_EQ(r->top, (StreamPosition{5, epoch}));
  }
  EXPECT_EQ(table_.stats().not_recovered, cases.size());
  EXPECT_EQ(table_.stats().recovered, 0u);
  // Within the limit the same position recovers.
  auto ok = table_.Subscribe("short:r", id++, true, epoch, 2, 10, 3);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->recovered);
  EXPECT_EQ(Offsets(ok->publications), (std::vector<uint64_t>{3, 4, 5}));
}

TEST_F(BrokerNodeChannelTable, SubscribeWithoutRecoverReportsTheTopOnly) {
  PublishOk("chat:n", "1");
  auto r = table_.Subscribe("chat:n", 1, false, "", 0, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->recoverable);
  EXPECT_FALSE(r->was_recovering);
  EXPECT_FALSE(r->recovered);
  EXPECT_TRUE(r->publications.empty());
  EXPECT_EQ(r->top.offset, 1u);
  EXPECT_EQ(table_.stats().recovered + table_.stats().not_recovered, 0u);
}

TEST_F(BrokerNodeChannelTable, SubscribeErrors) {
  ASSERT_TRUE(table_.Subscribe("chat:e", 1, false, "", 0, 0).ok());
  auto twice = table_.Subscribe("chat:e", 1, false, "", 0, 0);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error(), Errc::kAlreadySubscribed);
  auto unknown = table_.Subscribe("nope:x", 1, false, "", 0, 0);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error(), Errc::kUnknownChannel);
  EXPECT_EQ(table_.Find("nope:x"), nullptr);
  auto empty = table_.Publish("", "{}", std::nullopt, {}, 0);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error(), Errc::kBadRequest);
}

TEST_F(BrokerNodeChannelTable, PresenceEventsAreReturnedAndMirrored) {
  Channel* ch = *table_.Open("chat:p", 0);
  const PresenceEntry a1{"c1", "alice", "", ""};
  const PresenceEntry a2{"c2", "alice", "", ""};
  const PresenceEntry b1{"c3", "bob", R"({"x":1})", ""};
  using T = PresenceEventType;
  EXPECT_EQ(Types(table_.Join(*ch, a1, 1)), (std::vector<T>{T::kJoin, T::kUserJoin}));
  EXPECT_EQ(Types(table_.Join(*ch, a2, 1)), (std::vector<T>{T::kJoin}));
  EXPECT_EQ(Types(table_.Join(*ch, b1, 1)), (std::vector<T>{T::kJoin, T::kUserJoin}));
  EXPECT_EQ(ch->presence.Stats(), (PresenceStats{3, 2}));
  auto mirrored = sink_.Of("presence");
  ASSERT_EQ(mirrored.size(), 3u);  // one record per connection, not per user
  EXPECT_EQ(mirrored[2].entry, b1);
  EXPECT_TRUE(mirrored[2].joined);
  EXPECT_EQ(mirrored[2].channel, "chat:p");

  EXPECT_EQ(Types(table_.Leave(*ch, "c1", 2)), (std::vector<T>{T::kLeave}));
  auto leave = table_.Leave(*ch, "c2", 2);
  EXPECT_EQ(Types(leave), (std::vector<T>{T::kLeave, T::kUserLeave}));
  EXPECT_EQ(leave.back().entry, a2);
  EXPECT_TRUE(table_.Leave(*ch, "unknown", 2).empty());
  mirrored = sink_.Of("presence");
  ASSERT_EQ(mirrored.size(), 5u);
  EXPECT_EQ(mirrored[3].entry.client, "c1");
  EXPECT_FALSE(mirrored[3].joined);
  EXPECT_EQ(mirrored[4].entry.client, "c2");
  EXPECT_FALSE(mirrored[4].joined);
}

TEST_F(BrokerNodeChannelTable, KnownClientChangingUserIsMirroredAsLeaveThenJoin) {
  Channel* ch = *table_.Open("chat:p", 0);
  table_.Join(*ch, {"c1", "alice", "", ""}, 1);
  sink_.calls.clear();
  table_.Join(*ch, {"c1", "bob", "", ""}, 2);
  auto mirrored = sink_.Of("presence");
  ASSERT_EQ(mirrored.size(), 2u);
  EXPECT_FALSE(mirrored[0].joined);
  EXPECT_EQ(mirrored[0].entry.user, "alice");
  EXPECT_TRUE(mirrored[1].joined);
  EXPECT_EQ(mirrored[1].entry.user, "bob");
}

TEST_F(BrokerNodeChannelTable, PresenceKeepsAChannelWithoutHistory) {
  Channel* ch = *table_.Open("nohist:p", 0);
  table_.Join(*ch, {"c1", "u", "", ""}, 0);
  EXPECT_EQ(table_.Sweep(10 * kIdleDropMs), 0u);
  ASSERT_EQ(table_.Find("nohist:p"), ch);
  table_.Leave(*ch, "c1", 1);
  EXPECT_EQ(table_.Sweep(1), 1u);  // no history: nothing to remember
  EXPECT_EQ(table_.Find("nohist:p"), nullptr);
}

TEST_F(BrokerNodeChannelTable, HistoryErrorsAndRemoveKeepsThePosition) {
  HistoryQuery q;
  q.limit = -1;
  auto none = table_.History("nohist:x", q, 0);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error(), Errc::kNotAvailable);
  auto unknown = table_.History("nope:x", q, 0);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error(), Errc::kUnknownChannel);
  auto remove_none = table_.RemoveHistory("nohist:x", 0);
  ASSERT_FALSE(remove_none.ok());
  EXPECT_EQ(remove_none.error(), Errc::kNotAvailable);

  PublishOk("chat:h", "1");
  PublishOk("chat:h", "2");
  const std::string epoch = table_.Find("chat:h")->history->epoch();
  HistoryQuery wrong;
  wrong.limit = -1;
  wrong.since = StreamPosition{1, "other"};
  auto bad = table_.History("chat:h", wrong, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), Errc::kUnrecoverablePosition);

  ASSERT_TRUE(table_.RemoveHistory("chat:h", 2).ok());
  auto removed = sink_.Of("removed");
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].history_size, 100u);
  auto h = table_.History("chat:h", q, 3);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->publications.empty());
  EXPECT_EQ(h->top, (StreamPosition{2, epoch}));
  EXPECT_EQ(PublishOk("chat:h", "3", 4), 3u);  // offsets continue
  // Removing the history of a channel the node does not keep is a no-op.
  EXPECT_TRUE(table_.RemoveHistory("chat:never", 5).ok());
  EXPECT_EQ(table_.Find("chat:never"), nullptr);
}

TEST_F(BrokerNodeChannelTable, SameSeedGivesTheSameEpochs) {
  RecordingSink other_sink;
  ChannelTable other(registry_, &other_sink, kIdleDropMs, /*seed=*/42);
  ASSERT_TRUE(other.Open("chat:a", 0).ok());
  ASSERT_TRUE(table_.Open("chat:a", 0).ok());
  EXPECT_EQ(other.Find("chat:a")->history->epoch(), table_.Find("chat:a")->history->epoch());
  ChannelTable third(registry_, nullptr, kIdleDropMs, /*seed=*/7);  // no sink is fine
  ASSERT_TRUE(third.Open("chat:a", 0).ok());
  EXPECT_NE(third.Find("chat:a")->history->epoch(), table_.Find("chat:a")->history->epoch());
}

TEST_F(BrokerNodeChannelTable, ForEachVisitsEveryChannel) {
  PublishOk("chat:a", "1");
  PublishOk("short:b", "1");
  std::vector<std::string> names;
  table_.ForEach([&](const Channel& ch) { names.push_back(ch.name); });
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"chat:a", "short:b"}));
  EXPECT_EQ(table_.size(), 2u);
}

// docs/cluster.md C-9 for reads: History and Subscribe (position and recovery) stop at the read
// limit the engine sets (the commit position); without one, everything is shown.
TEST_F(BrokerNodeChannelTable, ReadsStopAtTheReadLimit) {
  for (int i = 0; i < 5; ++i) PublishOk("chat:limit", "{}");
  table_.set_read_limit([](const Channel& ch) {
    return ch.name == "chat:limit" ? uint64_t{3} : ChannelHistory::kAll;
  });
  HistoryQuery all;
  all.limit = -1;
  auto h = table_.History("chat:limit", all, 0);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->top.offset, 3u);
  EXPECT_EQ(Offsets(h->publications), (std::vector<uint64_t>{1, 2, 3}));
  const std::string epoch = h->top.epoch;
  auto plain = table_.Subscribe("chat:limit", 1, false, "", 0, 0);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->top, (StreamPosition{3, epoch}));
  auto rec = table_.Subscribe("chat:limit", 2, true, epoch, 1, 0);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->recovered);
  EXPECT_EQ(rec->top, (StreamPosition{3, epoch}));
  EXPECT_EQ(Offsets(rec->publications), (std::vector<uint64_t>{2, 3}));
  table_.set_read_limit(nullptr);
  h = table_.History("chat:limit", all, 0);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->top.offset, 5u);
}

}  // namespace
}  // namespace chorus::broker::node
