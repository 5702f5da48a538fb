// The CHP server's bounds in a real chorusd (issue 10 item 4; docs/operations.md "Security"):
// configurable from the broker config (cluster.chp_*) and visible in /metrics. The attack: a
// CHP peer asks for a large subtree again and again and never reads its replies. Before, the
// replies piled up in the ROUTER pipe (100,000 messages), chorus_queue_depth showed 0 and the
// bounds could not be set from the node's config.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chp/codec.h"
#include "chp/types.h"
#include "node_native_support.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

// A msgpack str of `n` bytes (str 32).
std::string MsgpackStr(size_t n) {
  std::string out = "\xdb";
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(n, 'x');
  return out;
}

chp::Uuid UuidOf(uint8_t i) {
  chp::Uuid u{};
  u[0] = 0x42;
  u[15] = i;
  return u;
}

class NodeChpBounds : public NodeFixture {};

TEST_F(NodeChpBounds, APeerThatNeverReadsIsBoundedInBytesAndShownInMetrics) {
  // Larger than what the pipe (4 x 256 KiB) and the kernel's loopback buffers (a few MiB) can
  // take, so part of what waits for the peer stays in the server's queue.
  constexpr size_t kPeerBound = 16 << 20;
  NodeOptions o;
  o.overrides = {"cluster.chp_max_peer_pending_bytes=" + std::to_string(kPeerBound),
                 "cluster.chp_max_pending_bytes=67108864", "cluster.chp_reply_pipe_hwm=4"};
  StartNode(o);
  EXPECT_EQ(MetricValue(*node_, "chorus_chp_peer_pending_limit_bytes"), int64_t{kPeerBound});
  EXPECT_EQ(MetricValue(*node_, "chorus_chp_pending_limit_bytes"), 67108864);
  // Issue 11: the mirror's largest value derived from [limits] (defaults), and the publisher HWM
  // the byte budget gives for it (CS-35: 4 GiB / (1,114,112 + 1,088)).
  EXPECT_EQ(MetricValue(*node_, "chorus_chp_value_limit_bytes"), 1'114'112);
  EXPECT_EQ(MetricValue(*node_, "chorus_chp_publisher_hwm"), 3'851);
  // A writer fills subtree "flood" with 6 x 512 KiB (anyone reaching the port may: no CHP
  // authentication yet).
  zmq::socket_t writer(ctx_, zmq::socket_type::dealer);
  writer.set(zmq::sockopt::linger, 0);
  writer.set(zmq::sockopt::rcvtimeo, 5000);
  writer.connect(node_->chp_command());
  for (uint8_t i = 0; i < 6; ++i) {
    chp::KvSet set;
    set.uuid = UuidOf(i);
    set.key = "flood/k" + std::to_string(i);
    set.value = MsgpackStr(512 * 1024);
    const std::string body = chp::Encode(set);
    writer.send(zmq::buffer(body), zmq::send_flags::none);
    zmq::message_t ack;
    ASSERT_TRUE(writer.recv(ack)) << "KVACK " << int{i};
  }
  ASSERT_TRUE(
      EventuallyTrue([&] { return MetricValue(*node_, "chorus_chp_store_bytes") > 3'000'000; }));
  // The reader asks for that snapshot 40 times (120 MiB of replies) and reads none.
  zmq::socket_t reader(ctx_, zmq::socket_type::dealer);
  reader.set(zmq::sockopt::linger, 0);
  reader.set(zmq::sockopt::rcvhwm, 1);
  reader.set(zmq::sockopt::rcvbuf, 4096);
  reader.connect(node_->chp_command());
  for (uint64_t i = 1; i <= 40; ++i) {
    chp::Icanhaz ask;
    ask.request_id = i;
    ask.subtree = "flood";
    const std::string body = chp::Encode(ask);
    reader.send(zmq::buffer(body), zmq::send_flags::none);
  }
  ASSERT_TRUE(EventuallyTrue([&] {
    return MetricValue(*node_, "chorus_chp_replies_dropped_total{bound=\"peer\"}") >= 1;
  })) << "the peer's further replies are refused once it holds its bound";
  EXPECT_GT(MetricValue(*node_, "chorus_queue_depth{queue=\"chp_replies_bytes\"}"), 0);
  EXPECT_GT(MetricValue(*node_, "chorus_queue_depth{queue=\"chp_replies_messages\"}"), 0);
  EXPECT_EQ(MetricValue(*node_, "chorus_queue_depth{queue=\"chp_replies_peers\"}"), 1);
  // Its bound plus at most one snapshot (about 3 MiB) waits for it, not 40 snapshots.
  const int64_t peak = MetricValue(*node_, "chorus_chp_peer_replies_peak_bytes");
  EXPECT_LE(peak, int64_t{kPeerBound} + 4 * 1024 * 1024) << peak;
  EXPECT_EQ(MetricValue(*node_, "chorus_chp_replies_dropped_total{bound=\"total\"}"), 0);
}

// Issue 11: chorusd passes the largest value it writes to the CHP server (max_value_bytes), so
// the publisher's HWM is sized from the byte budget for it: derived from limits, or set.
TEST_F(NodeChpBounds, MaxValueBytesFollowsTheConfigAndSizesThePublisherHwm) {
  NodeOptions o;
  o.overrides = {"limits.max_publication_bytes=1048576", "client.max_queue_bytes=2097152"};
  StartNode(o);
  // data 1 MiB + 2 x 2 MiB of client info + 64 KiB; 4 GiB / (5,308,416 + 1,088) = 808.
  EXPECT_EQ(MetricValue(*node_, "chorus_chp_value_limit_bytes"), 5'308'416);
  EXPECT_EQ(MetricValue(*node_, "chorus_chp_publisher_hwm"), 808);
  EXPECT_TRUE(node_->Stop());
  o.overrides = {"cluster.chp_max_value_bytes=131072"};
  StartNode(o);
  EXPECT_EQ(MetricValue(*node_, "chorus_chp_value_limit_bytes"), 131'072);
  EXPECT_EQ(MetricValue(*node_, "chorus_chp_publisher_hwm"), 32'498);
}

}  // namespace
}  // namespace chorus::testing
