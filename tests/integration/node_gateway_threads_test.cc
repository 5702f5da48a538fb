// chorusd with several gateway io threads (docs/operations.md, `http.threads`,
// `http.max_connections`; broker/gateway/README.md, "Threads and ownership"): a real chorusd
// child process (node_support.h) whose config sets the keys; WebSocket clients are Beast's
// (gateway_ws_client.h), speaking the Centrifugo JSON protocol (docs/protocol/websocket.md).
// Checked: the configured number of `chorus-http-*` threads (and the automatic one), a
// publication through the HTTP API reaches subscribers spread over both threads (the engine
// sends one fanout per gateway DEALER), the connection bound across threads, invalid values
// refused with the key named. Every wait is a condition with a deadline.
#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gateway_ws_client.h"
#include "node_support.h"

namespace {

using chorus::testing::Api;
using chorus::testing::EventuallyTrue;
using chorus::testing::HttpRequest;
using chorus::testing::NodeOptions;
using chorus::testing::NodeProcess;
using chorus::testing::RunCommand;
using gateway_test::Split;
using gateway_test::WsClient;
using namespace std::chrono_literals;

// Threads of process `pid` whose name starts with "chorus-http-".
size_t HttpThreads(int pid) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  size_t n = 0;
  DIR* dir = opendir(task.c_str());
  if (dir == nullptr) return 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(task + "/" + e->d_name + "/comm");
    std::string name;
    if (std::getline(in, name) && name.rfind("chorus-http-", 0) == 0) ++n;
  }
  closedir(dir);
  return n;
}

// Reads messages (several replies may share one frame, joined by '\n') until one contains
// `needle`; false on timeout or close.
bool ReadUntil(WsClient& c, const std::string& needle, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    auto m = c.Read(left);
    if (!m) return false;
    for (const auto& line : Split(*m, '\n')) {
      if (line.find(needle) != std::string::npos) return true;
    }
  }
}

// A connected WebSocket client subscribed to `channel` (client_insecure: no token).
std::unique_ptr<WsClient> Subscriber(int port, const std::string& channel) {
  auto c = std::make_unique<WsClient>(static_cast<uint16_t>(port));
  if (!c->ok()) return nullptr;
  if (!c->Send(R"({"id":1,"connect":{}})"
               "\n"
               R"({"id":2,"subscribe":{"channel":")" +
               channel + R"("}})")) {
    return nullptr;
  }
  if (!ReadUntil(*c, R"("id":2,"subscribe")")) return nullptr;
  return c;
}

bool HealthAnswered(const NodeProcess& node) {
  return HttpRequest(node.http_host(), node.http_port(), "GET", "/health").status == 200;
}

TEST(NodeGatewayThreads, TwoThreadsServeSubscribersOnBothAndOneConnectionBound) {
  NodeOptions o;
  o.overrides = {"http.threads=2", "http.max_connections=6"};
  NodeProcess node(o);
  ASSERT_TRUE(node.ready()) << node.banner();
  EXPECT_EQ(HttpThreads(node.process().pid()), 2u);

  // Consecutive connections go to alternate threads (the one with the fewest connections).
  std::vector<std::unique_ptr<WsClient>> subs;
  for (int i = 0; i < 4; ++i) {
    subs.push_back(Subscriber(node.http_port(), "fan"));
    ASSERT_TRUE(subs.back()) << "subscriber " << i;
  }
  for (int n = 1; n <= 3; ++n) {
    const auto r =
        Api(node, "publish", R"({"channel":"fan","data":{"n":)" + std::to_string(n) + "}}");
    ASSERT_EQ(r.status, 200) << r.body;
    for (size_t i = 0; i < subs.size(); ++i) {
      EXPECT_TRUE(ReadUntil(*subs[i], R"("data":{"n":)" + std::to_string(n) + "}"))
          << "subscriber " << i << ", publication " << n;
    }
  }

  // 4 WebSockets + 2 more = 6 = http.max_connections, over both threads: HTTP is refused.
  // (The API requests' connections may still be closing: their places come back soon.)
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(EventuallyTrue([&] {
      auto c = Subscriber(node.http_port(), "fan");
      if (!c) return false;
      subs.push_back(std::move(c));
      return true;
    })) << "subscriber "
        << 4 + i;
  }
  ASSERT_EQ(subs.size(), 6u);
  EXPECT_FALSE(HealthAnswered(node));
  auto refused = std::make_unique<WsClient>(static_cast<uint16_t>(node.http_port()));
  EXPECT_FALSE(refused->ok());
  // One leaves: room for one again.
  ASSERT_TRUE(subs.front()->Close(1000));
  EXPECT_TRUE(EventuallyTrue([&] { return HealthAnswered(node); }));
  EXPECT_TRUE(node.Stop());
}

TEST(NodeGatewayThreads, ZeroIsHalfTheHardwareThreadsBetweenOneAndEight) {
  NodeProcess node;  // http.threads = 0 (the default)
  ASSERT_TRUE(node.ready()) << node.banner();
  const unsigned hw = std::thread::hardware_concurrency();
  EXPECT_EQ(HttpThreads(node.process().pid()), std::clamp(hw / 2, 1u, 8u));
  EXPECT_TRUE(HealthAnswered(node));
  EXPECT_TRUE(node.Stop());
}

TEST(NodeGatewayThreads, InvalidValuesAreRefusedNamingTheKey) {
  auto r = RunCommand(CHORUSD_BIN, {"--set", "http.port=0", "--set", "http.threads=65"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("http.threads: must be 0..64 (got 65)"), std::string::npos) << r.err;
  r = RunCommand(CHORUSD_BIN, {"--set", "http.port=0", "--set", "http.max_connections=0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("http.max_connections: must be >= 1 (got 0)"), std::string::npos) << r.err;
}

}  // namespace
