// The gateway's hardening bounds (issue 10, "Should fix"; broker/gateway/README.md "Bounds"),
// against the fake engine, with raw HTTP bytes: the WebSocket Origin check
// (HttpOptions::allowed_origins), the /metrics credential (metrics_key), the per-address
// connection bound (max_connections_per_address) and the request-head deadline
// (header_timeout) that ends a head that trickles (slowloris).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gateway_test_support.h"

namespace gateway_test {
namespace {

using namespace std::chrono_literals;

std::string UpgradeRequest(const std::string& host, const std::string& origin) {
  std::string r = "GET /connection/websocket HTTP/1.1\r\nHost: " + host +
                  "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  if (!origin.empty()) r += "Origin: " + origin + "\r\n";
  return r + "\r\n";
}

class GatewayHardening : public GatewayFixture {
 protected:
  // The status of an upgrade with this Host and Origin ("" = no Origin header).
  int UpgradeStatus(const std::string& host, const std::string& origin) {
    RawClient c(port());
    if (!c.connected() || !c.Send(UpgradeRequest(host, origin))) return 0;
    auto r = c.Read();
    return r ? r->status : 0;
  }
};

TEST_F(GatewayHardening, OriginDefaultIsSameOriginOnly) {
  StartEngine();
  StartServer();
  const std::string host = "127.0.0.1:" + std::to_string(port());
  EXPECT_EQ(UpgradeStatus(host, ""), 101) << "no Origin: not a browser";
  EXPECT_EQ(UpgradeStatus(host, "http://" + host), 101);
  EXPECT_EQ(UpgradeStatus("Chat.Example.com", "https://chat.example.COM"), 101);
  EXPECT_EQ(UpgradeStatus(host, "http://evil.example"), 403);
  EXPECT_EQ(UpgradeStatus(host, "http://127.0.0.1:1"), 403) << "another port is another origin";
  EXPECT_EQ(UpgradeStatus(host, "null"), 403);
  // Only the three allowed upgrades became WebSocket connections.
  EXPECT_TRUE(EventuallyTrue([&] { return engine_->ws_events(0, "open").size() == 3; }));
  EXPECT_EQ(server_->stats().ws_open, 3u);
}

TEST_F(GatewayHardening, OriginPatternsAreChecked) {
  StartEngine();
  gw::HttpOptions o = Options();
  o.allowed_origins = {"https://*.example.com", "http://localhost:3000"};
  StartServer(o);
  const std::string host = "127.0.0.1:" + std::to_string(port());
  EXPECT_EQ(UpgradeStatus(host, "https://app.example.com"), 101);
  EXPECT_EQ(UpgradeStatus(host, "HTTP://LOCALHOST:3000"), 101);
  EXPECT_EQ(UpgradeStatus(host, "https://example.org"), 403);
  EXPECT_EQ(UpgradeStatus(host, "http://app.example.com"), 403);
  EXPECT_EQ(UpgradeStatus(host, "http://" + host), 403) << "a list replaces the same-origin rule";
  EXPECT_EQ(UpgradeStatus(host, ""), 101);
}

TEST_F(GatewayHardening, AllOriginsWithStar) {
  StartEngine();
  gw::HttpOptions o = Options();
  o.allowed_origins = {"*"};
  StartServer(o);
  EXPECT_EQ(UpgradeStatus("a", "http://anything.example:9"), 101);
}

TEST_F(GatewayHardening, MetricsKeyRequiresBearer) {
  StartEngine();
  gw::HttpOptions o = Options();
  o.metrics_key = "scrape-secret";
  StartServer(o);
  for (const std::vector<std::string>& headers :
       std::vector<std::vector<std::string>>{{},
                                             {"Authorization: Bearer wrong"},
                                             {"Authorization: Bearer scrape-secretx"},
                                             {"Authorization: apikey scrape-secret"},
                                             {std::string("X-API-Key: ") + kKey}}) {
    auto r = RoundTrip(port(), Request("GET", "/metrics", headers));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << (headers.empty() ? "none" : headers[0]);
  }
  EXPECT_EQ(engine_->count(), 0u) << "refused scrapes never reach the engine";
  auto ok = RoundTrip(port(), Request("GET", "/metrics", {"Authorization: bearer scrape-secret"}));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "up 1\n");
  auto health = RoundTrip(port(), Request("GET", "/health"));
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << "/health stays open";
}

TEST_F(GatewayHardening, MetricsOpenWithoutKey) {
  StartEngine();
  StartServer();
  auto r = RoundTrip(port(), Request("GET", "/metrics"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(GatewayHardening, PerAddressBoundClosesTheExtraConnection) {
  StartEngine();
  gw::HttpOptions o = Options();
  o.max_connections_per_address = 3;
  StartServer(o);
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(std::make_unique<RawClient>(port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  EXPECT_TRUE(EventuallyTrue([&] { return server_->stats().connections_accepted == 3; }));
  RawClient extra(port());
  ASSERT_TRUE(extra.connected());  // the kernel accepts; the gateway closes it at once
  EXPECT_TRUE(extra.ClosedByPeer());
  EXPECT_EQ(server_->stats().connections_rejected, 1u);
  // One of the three goes: the address has room again.
  idle.pop_back();
  EXPECT_TRUE(EventuallyTrue([&] {
    auto r = RoundTrip(port(), Request("GET", "/health"));
    return r && r->status == 200;
  }));
  EXPECT_TRUE(idle[0]->Send(Request("GET", "/health")));
  auto r = idle[0]->Read();
  ASSERT_TRUE(r) << "the connections within the bound are served";
  EXPECT_EQ(r->status, 200);
}

TEST_F(GatewayHardening, TricklingHeadIsDroppedAtTheHeaderDeadline) {
  StartEngine();
  gw::HttpOptions o = Options();
  o.header_timeout = 300ms;
  StartServer(o);  // idle_timeout stays 60 s
  RawClient c(port());
  ASSERT_TRUE(c.Send("GET /health HTTP/1.1\r\nHost: x\r\n"));
  const auto start = std::chrono::steady_clock::now();
  // A byte of header every 50 ms: the connection is never idle, yet its head never completes.
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    if (!c.Send("X")) break;
    closed = c.ClosedByPeer(50ms);
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed);
  EXPECT_LT(took, 3s) << "closed by header_timeout, not idle_timeout";
  EXPECT_EQ(engine_->count(), 0u);
}

TEST_F(GatewayHardening, KeptAliveConnectionWaitsIdleTimeoutForItsNextRequest) {
  StartEngine();
  gw::HttpOptions o = Options();
  o.header_timeout = 200ms;
  StartServer(o);
  RawClient c(port());
  ASSERT_TRUE(c.Send(Request("GET", "/health")));
  auto first = c.Read();
  ASSERT_TRUE(first);
  // Longer than header_timeout between requests: the wait for the next request's first byte
  // is bounded by idle_timeout (60 s), not by the head deadline. (Time passing is the point.)
  std::this_thread::sleep_for(600ms);
  ASSERT_TRUE(c.Send(Request("GET", "/health")));
  auto second = c.Read();
  ASSERT_TRUE(second) << "the kept-alive connection was dropped";
  EXPECT_EQ(second->status, 200);
}

}  // namespace
}  // namespace gateway_test
