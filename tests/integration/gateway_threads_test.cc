// Integration tests of the gateway's shards (broker/gateway/README.md, "Threads and
// ownership"): with HttpOptions::io_threads = 2 and 3, every shard owns its connections and its
// own DEALER to the engine, which the fake engine of gateway_test_support.h tells apart by
// routing id (and answers on, as the real engine does). Checked here: connections spread over
// every shard and all get a fanout; a slow client is closed 3008 while the connections of the
// other shards (and of its own) keep being served; max_connections and max_in_flight are bounds
// for the whole server; HTTP requests are answered from every shard; Stop() with connections
// open on every shard; the threads are named and all joined, also when Start fails. The
// single-shard behaviour is in gateway_{http,ws,static}_test.cc, which run with 1 and 2 io
// threads. Every wait is a condition with a deadline, never a sleep.
#include <gtest/gtest.h>

#include <dirent.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gateway_ws_fixture.h"

namespace {

using namespace gateway_test;

// The names of this process's threads (/proc/self/task/*/comm).
std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return names;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string name;
    if (std::getline(in, name)) names.push_back(name);
  }
  closedir(dir);
  return names;
}

// A joined thread may stay listed for a moment (the kernel wakes the joiner before it removes
// the task), so counts that must go down are waited for.
bool ThreadCountBecomes(size_t n) {
  return EventuallyTrue([&] { return ThreadNames().size() == n; });
}

size_t CountNamed(const std::string& prefix) {
  size_t n = 0;
  for (const auto& name : ThreadNames()) n += name.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

class GatewayThreads : public WsFixture {
 protected:
  size_t shards() const { return io_threads_; }

  // Connections per DEALER (shard) that reported their `open`.
  std::map<std::string, size_t> PerShard(const std::vector<uint64_t>& ids) const {
    std::map<std::string, size_t> per;
    for (uint64_t id : ids) ++per[engine_->gateway_of(id)];
    return per;
  }

  // Opens `n` WebSocket connections one after the other.
  std::vector<std::unique_ptr<WsClient>> ConnectMany(size_t n, std::vector<uint64_t>* ids,
                                                     int rcvbuf = 0) {
    std::vector<std::unique_ptr<WsClient>> clients;
    for (size_t i = 0; i < n; ++i) {
      uint64_t id = 0;
      clients.push_back(Connect(&id, rcvbuf));
      ids->push_back(id);
    }
    return clients;
  }

  static std::string Ids(const std::vector<uint64_t>& ids) {
    std::string out;
    for (uint64_t id : ids) out += EncodeLe64(id);
    return out;
  }
};

TEST_P(GatewayThreads, FanoutReachesConnectionsSpreadOverEveryShard) {
  StartEngine();
  StartServer();
  const size_t kClients = 60;  // a multiple of 2 and 3
  std::vector<uint64_t> ids;
  auto clients = ConnectMany(kClients, &ids);
  // Each connection went to the shard with the fewest: an even spread, one DEALER per shard.
  const auto per = PerShard(ids);
  ASSERT_EQ(per.size(), shards());
  for (const auto& [gateway, n] : per) EXPECT_EQ(n, kClients / shards());
  EXPECT_EQ(std::set<uint64_t>(ids.begin(), ids.end()).size(), kClients);  // ids server-wide

  // Fanouts in a row, split per DEALER by the engine: every client gets all, in order.
  constexpr int kMessages = 20;
  for (int m = 0; m < kMessages; ++m) {
    engine_->SendToGateway(
        {"ws", "fanout", Ids(ids), R"({"push":{"n":)" + std::to_string(m) + "}}"});
  }
  for (size_t i = 0; i < kClients; ++i) {
    std::vector<std::string> got;
    while (got.size() < size_t{kMessages}) {
      auto frame = clients[i]->Read();
      ASSERT_TRUE(frame) << "client " << i << " after " << got.size() << " messages";
      for (auto& part : Split(*frame, '\n')) got.push_back(part);
    }
    for (int m = 0; m < kMessages; ++m) {
      ASSERT_EQ(got[m], R"({"push":{"n":)" + std::to_string(m) + "}}") << "client " << i;
    }
  }
  EXPECT_TRUE(EventuallyTrue(
      [&] { return server_->stats().ws_messages_out == uint64_t{kClients} * kMessages; }));
  EXPECT_EQ(server_->stats().ws_unknown_conn, 0u);
}

TEST_P(GatewayThreads, SlowClientIsClosed3008WhileEveryShardKeepsServing) {
  StartEngine();
  auto o = Options();
  o.max_ws_queue_bytes = 256 * 1024;
  StartServer(o);
  uint64_t slow_id = 0;
  auto slow = Connect(&slow_id, /*rcvbuf=*/4096);
  // Two connections per shard in all: the slow one shares its shard with one fast client.
  std::vector<uint64_t> fast_ids;
  auto fast = ConnectMany(2 * shards() - 1, &fast_ids);
  std::vector<uint64_t> all = fast_ids;
  all.push_back(slow_id);
  const auto per = PerShard(all);
  ASSERT_EQ(per.size(), shards());
  for (const auto& [gateway, n] : per) EXPECT_EQ(n, 2u);

  // Batches of 4 x 16 KiB to everyone; the fast clients read each batch before the next, the
  // slow one reads nothing, so its queue grows until it is over the bound.
  const std::string ids = Ids(all);
  size_t sent = 0;
  std::vector<std::vector<std::string>> got(fast.size());
  while (engine_->ws_events(slow_id, "closed").empty()) {
    ASSERT_LT(sent, 4000u) << "the slow client was never closed";
    for (int i = 0; i < 4; ++i, ++sent) {
      std::string m = std::to_string(sent) + ":";
      m.resize(16 * 1024, 'x');
      engine_->SendToGateway({"ws", "fanout", ids, m});
    }
    for (size_t c = 0; c < fast.size(); ++c) {
      while (got[c].size() < sent) {
        auto m = fast[c]->Read();
        ASSERT_TRUE(m) << "fast client " << c << " after " << got[c].size() << " messages";
        for (auto& part : Split(*m, '\n')) got[c].push_back(part);
      }
    }
  }
  EXPECT_EQ(WaitClosedEvent(slow_id), "3008");
  EXPECT_EQ(server_->stats().ws_slow_closed, 1u);
  // Every fast client, on every shard, got everything in order and goes on receiving.
  engine_->SendToGateway({"ws", "fanout", Ids(fast_ids), "after"});
  for (size_t c = 0; c < fast.size(); ++c) {
    // Messages of the last batch may have been coalesced with "after".
    std::vector<std::string> rest;
    while (rest.empty() || rest.back() != "after") {
      auto m = fast[c]->Read();
      ASSERT_TRUE(m) << "fast client " << c;
      for (auto& part : Split(*m, '\n')) rest.push_back(part);
    }
    got[c].insert(got[c].end(), rest.begin(), rest.end() - 1);
    ASSERT_EQ(got[c].size(), sent) << "fast client " << c;
    for (size_t i = 0; i < sent; ++i) {
      ASSERT_EQ(got[c][i].substr(0, got[c][i].find(':')), std::to_string(i)) << "client " << c;
    }
    EXPECT_TRUE(engine_->ws_events(fast_ids[c], "closed").empty()) << "fast client " << c;
  }
  EXPECT_TRUE(slow->WaitClosed(10s));
  if (slow->reason().code != websocket::close_code::none) {
    EXPECT_EQ(slow->reason().code, 3008);
  }
  EXPECT_TRUE(EventuallyTrue([&] { return server_->stats().ws_bytes_queued == 0; }));
}

TEST_P(GatewayThreads, MaxConnectionsIsOneBoundForAllShards) {
  StartEngine();
  auto o = Options();
  o.max_connections = 2 * shards();
  StartServer(o);
  std::vector<uint64_t> ids;
  auto clients = ConnectMany(2 * shards(), &ids);
  const auto per = PerShard(ids);
  ASSERT_EQ(per.size(), shards());  // the bound is reached with connections on every shard
  {
    RawClient extra(port());
    EXPECT_TRUE(extra.ClosedByPeer());
  }
  EXPECT_FALSE(RoundTrip(port(), Request("GET", "/health")).has_value());
  EXPECT_EQ(server_->stats().connections_rejected, 2u);

  // One leaves: its place is free again (for any shard), and only one.
  ASSERT_TRUE(clients[0]->Close(1000));
  EXPECT_EQ(WaitClosedEvent(ids[0]), "1000");
  std::unique_ptr<WsClient> replacement;
  EXPECT_TRUE(EventuallyTrue([&] {
    auto c = std::make_unique<WsClient>(port());
    if (!c->ok()) return false;
    replacement = std::move(c);
    return true;
  }));
  RawClient extra(port());
  EXPECT_TRUE(extra.ClosedByPeer());
}

TEST_P(GatewayThreads, ApiRequestsAreAnsweredFromEveryShard) {
  StartEngine(HoldSome);
  StartServer();
  const size_t kClients = 6 * shards();
  std::vector<std::unique_ptr<RawClient>> clients;
  for (size_t i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawClient>(port()));
    ASSERT_TRUE(clients.back()->connected());
    ASSERT_TRUE(clients.back()->Send(Api("hold" + std::to_string(i), "n=" + std::to_string(i))));
  }
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->held() == kClients; }, 10s));
  // One DEALER per shard, each with its share; correlation ids need only be unique per DEALER.
  std::map<std::string, size_t> per;
  std::set<std::pair<std::string, std::string>> correlation;
  for (const auto& r : engine_->seen()) {
    ++per[r.routing_id];
    EXPECT_TRUE(correlation.insert({r.routing_id, r.correlation_id}).second);
  }
  ASSERT_EQ(per.size(), shards());
  for (const auto& [gateway, n] : per) EXPECT_EQ(n, kClients / shards());
  // Answered in reverse order of arrival, each reply on its own DEALER.
  engine_->ReleaseHeld(true, [](const EngineRequest& r) {
    return EngineAnswer{"200", "application/json", r.method + ":" + r.body};
  });
  for (size_t i = 0; i < kClients; ++i) {
    auto r = clients[i]->Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hold" + std::to_string(i) + ":n=" + std::to_string(i));
  }
  // The keep-alive connections stay with their shards.
  for (size_t i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i]->Send(Api("again", std::to_string(i))));
    auto r = clients[i]->Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "api|again|" + std::to_string(i));
  }
  EXPECT_EQ(engine_->gateways().size(), shards());
  EXPECT_EQ(server_->stats().engine_replies, 2 * kClients);
  EXPECT_EQ(server_->stats().engine_timeouts, 0u);
}

TEST_P(GatewayThreads, MaxInFlightIsOneBoundForAllShards) {
  StartEngine(HoldSome);
  auto o = Options();
  o.max_in_flight = shards();
  StartServer(o);
  // One held request per shard fills the bound.
  std::vector<std::unique_ptr<RawClient>> holders;
  for (size_t i = 0; i < shards(); ++i) {
    holders.push_back(std::make_unique<RawClient>(port()));
    ASSERT_TRUE(holders.back()->Send(Api("hold" + std::to_string(i), "{}")));
  }
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->held() == shards(); }));
  std::set<std::string> dealers;
  for (const auto& r : engine_->seen()) dealers.insert(r.routing_id);
  ASSERT_EQ(dealers.size(), shards());
  // One more connection per shard (the holders stay open): each request is refused at once.
  std::vector<std::unique_ptr<RawClient>> others;
  for (size_t i = 0; i < shards(); ++i) others.push_back(std::make_unique<RawClient>(port()));
  for (auto& c : others) {
    ASSERT_TRUE(c->Send(Api("more", "{}")));
    auto r = c->Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(r->body, kInternal);
  }
  EXPECT_EQ(server_->stats().engine_busy, shards());
  EXPECT_EQ(engine_->count(), shards());
  engine_->ReleaseHeld(false, [](const EngineRequest&) { return EngineAnswer{"200", "a", "b"}; });
  for (auto& c : holders) {
    auto r = c->Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  for (auto& c : others) {  // the places are free again, on every shard
    ASSERT_TRUE(c->Send(Api("more", "{}")));
    auto r = c->Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
}

TEST_P(GatewayThreads, StopClosesTheConnectionsOfEveryShard) {
  StartEngine(HoldSome);
  StartServer();
  std::vector<uint64_t> ids;
  auto ws = ConnectMany(2 * shards(), &ids);
  auto silent = std::make_unique<WsClient>(port(), 4096);  // never reads
  ASSERT_TRUE(silent->ok());
  ASSERT_NE(WaitOpen(silent->local_port()), 0u);
  ASSERT_EQ(PerShard(ids).size(), shards());
  std::vector<std::unique_ptr<RawClient>> waiting;  // requests held at the engine
  for (size_t i = 0; i < shards(); ++i) {
    waiting.push_back(std::make_unique<RawClient>(port()));
    ASSERT_TRUE(waiting.back()->Send(Api("hold" + std::to_string(i), "{}")));
  }
  RawClient idle(port());
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->held() == shards(); }));

  StopInBackground stopper(*server_);
  for (auto& c : ws) {
    EXPECT_TRUE(c->WaitClosed());
    EXPECT_EQ(c->reason().code, websocket::close_code::going_away);
  }
  stopper.Join();
  for (auto& c : waiting) EXPECT_TRUE(c->ClosedByPeer());
  EXPECT_TRUE(idle.ClosedByPeer());
  EXPECT_TRUE(EventuallyTrue([] { return CountNamed("chorus-http-") == 0; }));  // all joined
  server_->Stop();                                                              // idempotent
  EXPECT_FALSE(RawClient(port()).connected());
}

TEST_P(GatewayThreads, ThreadsAreNamedAndJoinedAlsoWhenStartFails) {
  StartEngine();
  const size_t before = ThreadNames().size();  // the fake engine's and libzmq's threads
  StartServer();
  std::set<std::string> named;
  for (const auto& name : ThreadNames()) {
    if (name.rfind("chorus-http-", 0) == 0) named.insert(name);
  }
  std::set<std::string> expected;
  for (size_t i = 0; i < shards(); ++i) expected.insert("chorus-http-" + std::to_string(i));
  EXPECT_EQ(named, expected);
  EXPECT_EQ(ThreadNames().size(), before + shards());

  // The port is taken: the error comes back as a value and no thread of that server is left.
  auto o = Options();
  o.port = port();
  auto r = gw::HttpServer::Start(ctx_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), std::errc::address_in_use);
  EXPECT_TRUE(ThreadCountBecomes(before + shards()));
  // No engine at that endpoint is no error (libzmq connects later); a bad one is.
  o = Options();
  o.engine_endpoint = "bogus://x";
  EXPECT_FALSE(gw::HttpServer::Start(ctx_, o).ok());
  EXPECT_TRUE(ThreadCountBecomes(before + shards()));

  StopWithin5s(*server_);
  EXPECT_TRUE(ThreadCountBecomes(before));
}

INSTANTIATE_TEST_SUITE_P(IoThreads, GatewayThreads, ::testing::Values(size_t{2}, size_t{3}),
                         IoThreadsName);

}  // namespace
