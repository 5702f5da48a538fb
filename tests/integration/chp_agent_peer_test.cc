// The CHP replica agent as one cluster peer's link (issue 11, "Agent for a cluster"; CR-33):
// peer mode against a real in-process server (ServerThread) that is stopped and started again
// on the same command port. The agent is polled on the test thread; every wait is a condition
// with a deadline.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "chp/agent.h"
#include "chp/server.h"
#include "test_util.h"

namespace chorus::chp {
namespace {

using namespace std::chrono_literals;
using chorus::testing::EventuallyTrue;

std::unique_ptr<ServerThread> StartServer(const std::string& command_endpoint) {
  ServerOptions so;
  so.command_endpoint = command_endpoint;
  so.heartbeat_interval = 100ms;
  auto s = ServerThread::Start(so);
  EXPECT_TRUE(s.ok()) << "server on " << command_endpoint;
  return s.ok() ? std::move(*s) : nullptr;
}

std::string Events(const std::vector<LinkState>& events) {
  std::string out;
  for (const LinkState& e : events) out += std::string(LinkEventName(e.event)) + " ";
  return out;
}

// CR-33: a peer-mode agent reports its link: up when live; down once when the server stops
// (however many reconnection attempts follow); then, when another server answers on the same
// endpoint, server-changed (old id -> new id) and up, once each and in that order. It stays on
// its one endpoint and syncs its subtrees again from the new server.
TEST(ChpAgentPeer, CR33_LinkDownServerChangedUpOnceEachInOrder) {
  auto first = StartServer("tcp://127.0.0.1:0");
  ASSERT_NE(first, nullptr);
  const std::string endpoint = first->command_endpoint();
  const std::string first_id = first->server_id();

  zmq::context_t ctx;
  std::vector<LinkState> events;
  AgentOptions o;
  o.mode = AgentOptions::Mode::kPeer;
  o.endpoints = {endpoint};
  o.silence_timeout = 400ms;
  o.connect_timeout = 200ms;
  o.subscribe_timeout = 100ms;
  o.on_link = [&](const LinkState& s) { events.push_back(s); };
  ReplicaAgent agent(ctx, o);
  ASSERT_TRUE(agent.Follow("s").ok());
  auto pump_until = [&](const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    return EventuallyTrue(
        [&] {
          agent.RunOnce(10ms);
          return pred();
        },
        timeout);
  };
  ASSERT_TRUE(pump_until([&] { return agent.AllLive(); }, 5s));
  ASSERT_EQ(Events(events), "up ");
  EXPECT_EQ(events[0].server_id, first_id);
  EXPECT_EQ(events[0].endpoint, endpoint);

  first.reset();  // stops the server
  ASSERT_TRUE(pump_until([&] { return events.size() >= 2; }, 5s));
  EXPECT_EQ(events[1].event, LinkEvent::kDown);
  EXPECT_EQ(events[1].server_id, first_id);
  // Several reconnection attempts while the server is away: still one down.
  const uint64_t attempts = agent.stats().failovers;
  ASSERT_TRUE(pump_until([&] { return agent.stats().failovers >= attempts + 3; }, 5s));
  EXPECT_EQ(Events(events), "up down ");
  EXPECT_EQ(agent.endpoint(), endpoint) << "peer mode stays on its endpoint";

  auto second = StartServer(endpoint);
  ASSERT_NE(second, nullptr);
  ASSERT_NE(second->server_id(), first_id);
  ASSERT_TRUE(pump_until([&] { return events.size() >= 4 && agent.AllLive(); }, 5s))
      << Events(events);
  // A while longer (a bounded observation window): nothing more is reported.
  ASSERT_FALSE(pump_until([&] { return events.size() > 4; }, 500ms)) << Events(events);
  EXPECT_EQ(Events(events), "up down server-changed up ");
  EXPECT_EQ(events[2].previous_server_id, first_id);
  EXPECT_EQ(events[2].server_id, second->server_id());
  EXPECT_EQ(events[3].server_id, second->server_id());
  EXPECT_EQ(agent.server_id(), second->server_id());
}

// CR-33: the failover mode (the tools') reports its link too; it moves on to the next endpoint.
TEST(ChpAgentPeer, CR33_FailoverModeReportsDownAndUpOnTheNextEndpoint) {
  auto a = StartServer("tcp://127.0.0.1:0");
  auto b = StartServer("tcp://127.0.0.1:0");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  zmq::context_t ctx;
  std::vector<LinkState> events;
  AgentOptions o;
  o.endpoints = {a->command_endpoint(), b->command_endpoint()};
  o.silence_timeout = 400ms;
  o.on_link = [&](const LinkState& s) { events.push_back(s); };
  ReplicaAgent agent(ctx, o);
  ASSERT_TRUE(agent.Follow("s").ok());
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        agent.RunOnce(10ms);
        return agent.AllLive();
      },
      5s));
  a.reset();
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        agent.RunOnce(10ms);
        return events.size() >= 4 && agent.AllLive();
      },
      5s))
      << Events(events);
  EXPECT_EQ(Events(events), "up down server-changed up ");
  EXPECT_EQ(events[3].endpoint, b->command_endpoint());
}

}  // namespace
}  // namespace chorus::chp
