// Back-pressure (docs/protocol/native.md N-16, with N-1, N-13 and N-15): a subscriber that
// never reads is closed with 3008 once its ZeroMQ pipe (native.send_hwm) is full, while a
// subscriber that reads keeps receiving everything in order and the node's memory stays
// bounded; the slow client then reconnects and catches up from its last offset.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "node_native_support.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kPubs = 20'000;
constexpr size_t kDataBytes = 1024;
constexpr uint64_t kWindow = 32;  // in flight: replies fit even with ZeroMQ's lazy HWM accounting

// History large enough to keep the whole flood, so the slow client can catch up from any
// offset (max_recovery is 1000 in chorusd; beyond it, history paging is the way back).
const char* const kFloodNamespace = R"(
[namespaces.flood]
presence = true
join_leave = true
history_size = 30000
history_ttl_ms = 600000
allow_recovery = true
allow_publish_for_client = true
)";

// The value of one sample line of a Prometheus text page ("" when absent).
std::string Metric(const std::string& page, const std::string& series) {
  const size_t at = page.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  const size_t start = at + series.size() + 2;
  return page.substr(start, page.find('\n', start) - start);
}

TEST(NodeNativeSlow, N16_SlowSubscriberIsClosedOthersKeepReceiving) {
  NodeOptions o;
  o.extra_toml = kFloodNamespace;
  // The flood is the point here: no per-connection publish rate (N-19) between it and the node.
  o.overrides = {"native.send_hwm=100", "limits.publications_per_second=0"};
  NodeProcess node(o);
  ASSERT_TRUE(node.ready()) << node.banner();
  zmq::context_t ctx;
  RawSession pub(ctx, node.native()), fast(ctx, node.native());
  // The slow one: a 10-message receive queue and a small kernel buffer, and it never reads
  // during the flood.
  RawSession slow(ctx, node.native(), /*rcvhwm=*/10);
  slow.socket().disconnect(node.native());  // options apply to connections made after them
  slow.socket().set(zmq::sockopt::rcvbuf, 8192);
  slow.socket().connect(node.native());
  ASSERT_FALSE(ConnectAs(pub, "pub").empty());
  ASSERT_FALSE(ConnectAs(fast, "fast").empty());
  const std::string slow_client = ConnectAs(slow, "slow");
  ASSERT_TRUE(fast.Call("subscribe", P({{"channel", "flood:x"}}))->Has("result"));
  auto sub = slow.Call("subscribe", P({{"channel", "flood:x"}}));
  ASSERT_TRUE(sub && sub->Has("result")) << ErrorCode(sub);
  const std::string epoch = sub->Str("result.epoch");
  ASSERT_TRUE(EventuallyTrue([&] {  // the slow one's join: both are in
    auto j = fast.Push("join", "flood:x", 100ms);
    return j && j->Str("data.info.client") == slow_client;
  }));
  const size_t rss_before = RssBytes(node.process().pid());
  ASSERT_GT(rss_before, 0u);

  // The fast reader reads everything on a thread of its own (it owns `fast` from here on).
  std::atomic<uint64_t> fast_next{1};
  std::atomic<bool> fast_out_of_order{false}, fast_disconnected{false}, slow_left{false};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    auto idle_since = std::chrono::steady_clock::now();
    while (fast_next.load() <= kPubs && !stop) {
      auto f = fast.Next(100ms);
      if (!f) {
        if (std::chrono::steady_clock::now() - idle_since > 20s) return;
        continue;
      }
      idle_since = std::chrono::steady_clock::now();
      const std::string type = f->Str("push");
      if (type == "pub") {
        if (f->Uint("data.offset") != fast_next.load()) {
          fast_out_of_order = true;
          return;
        }
        ++fast_next;
      } else if (type == "leave" && f->Str("data.info.client") == slow_client) {
        slow_left = true;
      } else if (type == "disconnect") {
        fast_disconnected = true;
        return;
      }
    }
  });

  struct Joiner {  // the reader stops and is joined on every way out of this test
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, reader};

  // Publish the flood as fast as the node answers, kWindow commands in flight.
  const std::string params =
      P({{"channel", "flood:x"}, {"data", "\"" + std::string(kDataBytes - 2, 'x') + "\""}});
  uint64_t sent = 0, acked = 0;
  size_t rss_max = rss_before;
  while (acked < kPubs) {
    while (sent < kPubs && sent - acked < kWindow) {
      pub.Send("publish", params);
      ++sent;
    }
    auto f = pub.Next(10s);
    ASSERT_TRUE(f) << "no reply after " << acked << " publications";
    ASSERT_FALSE(f->IsPush()) << "the publisher got a " << f->Str("push") << " push, code "
                              << f->Uint("data.code") << ", after " << acked << " replies";
    ASSERT_TRUE(f->Has("result")) << "publish refused: " << ErrorCode(f);
    ++acked;
    if (acked % 1000 == 0) rss_max = std::max(rss_max, RssBytes(node.process().pid()));
  }
  EventuallyTrue([&] { return fast_next.load() > kPubs || fast_out_of_order || fast_disconnected; },
                 30s);
  stop = true;
  reader.join();
  rss_max = std::max(rss_max, RssBytes(node.process().pid()));

  // The reader got every publication, in order, and was never closed.
  EXPECT_FALSE(fast_out_of_order) << "at offset " << fast_next.load();
  EXPECT_FALSE(fast_disconnected);
  EXPECT_EQ(fast_next.load(), kPubs + 1);
  EXPECT_TRUE(slow_left || fast.Push("leave", "flood:x", 5s)) << "presence leave of the slow one";
  auto stats = fast.Call("presence_stats", P({{"channel", "flood:x"}}));
  EXPECT_EQ(stats->Uint("result.num_clients"), 1u);

  // Memory: the slow session holds at most send_hwm (100) messages in its pipe, so the growth
  // is the retained history (20,000 x ~1 KB, kept by the channel table and by its CHP mirror,
  // ~50 MB) plus allocator slack. 200 MB is far below what buffering the flood per session
  // would take if back-pressure were missing (node + kernel would hold the whole backlog).
  EXPECT_LT(rss_max - rss_before, size_t{200} << 20)
      << "before " << (rss_before >> 20) << " MB, peak " << (rss_max >> 20) << " MB";

  // Exactly one session was closed as slow (the fast one and the publisher were not).
  auto metrics = HttpRequest(node.http_host(), node.http_port(), "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(Metric(metrics.body, "chorus_disconnects_total{code=\"3008\"}"), "1") << metrics.body;

  // The slow client drains what reached it: a contiguous run 1..last (N-13: no hole before the
  // close), then on its next command it is told why it was closed (N-1).
  std::vector<uint64_t> got;
  while (auto f = slow.Next(500ms)) {
    if (f->Str("push") == "pub") got.push_back(f->Uint("data.offset"));
    if (f->Str("push") == "disconnect") slow.pushes().push_back(std::move(*f));
  }
  ASSERT_FALSE(got.empty());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], i + 1) << "hole at index " << i;
  const uint64_t last = got.back();
  EXPECT_LT(last, kPubs) << "the slow client got everything: it was not slow";
  slow.Send("ping");
  auto bye = slow.Push("disconnect");
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->Uint("data.code"), 3008u);
  EXPECT_TRUE(bye->Bool("data.reconnect"));

  // It reconnects (a new DEALER) and recovers from `last`: by recovery when the gap is within
  // chorusd's recovery limit (1000), else recovered:false and history paging since `last`.
  RawSession again(ctx, node.native());
  ASSERT_FALSE(ConnectAs(again, "slow").empty());
  auto r = again.Call(
      "subscribe",
      P({{"channel", "flood:x"}, {"recover", true}, {"epoch", epoch}, {"offset", last}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  EXPECT_EQ(r->Uint("result.offset"), kPubs);
  EXPECT_EQ(r->Str("result.epoch"), epoch);
  std::vector<uint64_t> caught = OffsetsOf(*r, "result.publications");
  if (kPubs - last <= 1000) {
    EXPECT_TRUE(r->Bool("result.recovered"));
  } else {
    EXPECT_FALSE(r->Bool("result.recovered"));
    EXPECT_TRUE(caught.empty());
    uint64_t from = last;
    while (from < kPubs) {
      const std::string params = Pack()
                                     .Map(3)
                                     .Str("channel")
                                     .Str("flood:x")
                                     .Str("limit")
                                     .U(1000)
                                     .Str("since")
                                     .Map(2)
                                     .Str("offset")
                                     .U(from)
                                     .Str("epoch")
                                     .Str(epoch)
                                     .str();
      auto h = again.Call("history", params);
      ASSERT_TRUE(h && h->Has("result")) << ErrorCode(h);
      const auto page = OffsetsOf(*h, "result.publications");
      ASSERT_FALSE(page.empty());
      caught.insert(caught.end(), page.begin(), page.end());
      from = page.back();
    }
  }
  ASSERT_EQ(caught.size(), kPubs - last);
  for (size_t i = 0; i < caught.size(); ++i) ASSERT_EQ(caught[i], last + 1 + i);
  // And it is live again.
  ASSERT_TRUE(pub.Call("publish", P({{"channel", "flood:x"}, {"data", "1"}}))->Has("result"));
  auto live = again.Push("pub", "flood:x");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->Uint("data.offset"), kPubs + 1);
  EXPECT_TRUE(node.Stop()) << "chorusd did not exit cleanly";
}

}  // namespace
}  // namespace chorus::testing
