// Per-client-address connection bounds on the node's ZeroMQ listeners (issue 10, "Should fix";
// docs/operations.md "Security"): native.max_connections_per_address and
// cluster.chp_max_connections_per_address. The attack: one address opens more connections than
// the bound; the next is refused during its ZeroMQ handshake (ZAP), counted in /metrics, and
// admitted once one of the others has gone. Before the bound, every connection was served.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "node_native_support.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

std::string Refused(const std::string& listener) {
  return "chorus_connections_refused_per_address_total{listener=\"" + listener + "\"}";
}

class NodeAddressLimits : public NodeFixture {};

TEST_F(NodeAddressLimits, NativeConnectionsFromOneAddressAreBounded) {
  NodeOptions o;
  o.overrides = {"native.max_connections_per_address=4"};
  StartNode(o);
  std::vector<std::unique_ptr<RawSession>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<RawSession>(ctx_, node_->native()));
    ASSERT_FALSE(ConnectAs(*held.back(), "u" + std::to_string(i)).empty());
  }
  EXPECT_EQ(MetricValue(*node_, Refused("native")), 0);
  RawSession fifth = Session();
  const uint64_t id = fifth.Send("connect", P({{"user", "u4"}}));
  // Refused during the handshake: its command never arrives. (libzmq takes a ZAP refusal for a
  // protocol error: the refused socket does not retry that endpoint on its own.)
  ASSERT_TRUE(EventuallyTrue([&] { return MetricValue(*node_, Refused("native")) == 1; }))
      << "the fifth connection from 127.0.0.1 is refused";
  EXPECT_FALSE(fifth.Reply(id, std::chrono::milliseconds(300)).has_value());
  // One of the four leaves: a new connection from the same address is served again.
  held.front().reset();
  ASSERT_TRUE(EventuallyTrue([&] {
    RawSession next = Session();
    auto r = next.Send("connect", P({{"user", "u5"}}));
    auto reply = next.Reply(r, std::chrono::milliseconds(500));
    return reply && reply->Has("result");
  }));
  // The four held connections were served throughout.
  auto again = held.back()->Call("presence_stats", P({{"channel", "chat:x"}}));
  EXPECT_TRUE(again.has_value());
}

TEST_F(NodeAddressLimits, ZeroTurnsTheNativeBoundOff) {
  NodeOptions o;
  o.overrides = {"native.max_connections_per_address=0",
                 "cluster.chp_max_connections_per_address=0"};
  StartNode(o);
  std::vector<std::unique_ptr<RawSession>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<RawSession>(ctx_, node_->native()));
    ASSERT_FALSE(ConnectAs(*held.back(), "u" + std::to_string(i)).empty());
  }
  EXPECT_EQ(MetricValue(*node_, Refused("native")), -1) << "no guard when every bound is 0";
}

TEST_F(NodeAddressLimits, ChpConnectionsFromOneAddressAreBounded) {
  NodeOptions o;
  o.overrides = {"cluster.chp_max_connections_per_address=2"};
  StartNode(o);
  EXPECT_EQ(MetricValue(*node_, Refused("chp_command")), 0);
  EXPECT_EQ(MetricValue(*node_, Refused("chp_publisher")), 0);
  std::vector<std::unique_ptr<zmq::socket_t>> peers;
  const std::string publisher = node_->banner().substr(node_->banner().find("chp_publisher=") + 14);
  for (int i = 0; i < 3; ++i) {
    peers.push_back(std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer));
    peers.back()->set(zmq::sockopt::linger, 0);
    peers.back()->connect(node_->chp_command());
    peers.push_back(std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::sub));
    peers.back()->set(zmq::sockopt::linger, 0);
    peers.back()->connect(publisher.substr(0, publisher.find(' ')));
  }
  EXPECT_TRUE(EventuallyTrue([&] { return MetricValue(*node_, Refused("chp_command")) >= 1; }));
  EXPECT_TRUE(EventuallyTrue([&] { return MetricValue(*node_, Refused("chp_publisher")) >= 1; }));
}

}  // namespace
}  // namespace chorus::testing
