// The commit path's wire pieces (docs/cluster.md §16.2): the backups' acknowledgement message
// (peer message 10, ack_codec.h) survives a round trip and anything malformed is refused; a
// channel's `top` record as a cluster primary writes it (chp_state_sink.h TopExtras) decodes to
// its commit position and partition epoch, and a `top` without them means "all committed,
// partition epoch 0" (channel_records.h).
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "ack_codec.h"
#include "broker/channels/chp_state_sink.h"
#include "channel_records.h"
#include "chp/server.h"

namespace chorus::broker::node {
namespace {

TEST(BrokerNodeCommitCodec, C8_AckRoundTripsAndRefusesMalformed) {
  AckMessage m;
  m.sender = 3;
  m.acks = {{17, 9, "chat:été", "ep1", 42}, {1, 2, "a", "", 0}};
  const std::string bytes = EncodeAck(m);
  EXPECT_EQ(PeerMessageKind(bytes), 10u);
  AckMessage out;
  ASSERT_TRUE(DecodeAck(bytes, out));
  EXPECT_EQ(out, m);
  AckMessage empty;
  empty.sender = 1;
  ASSERT_TRUE(DecodeAck(EncodeAck(empty), out));
  EXPECT_TRUE(out.acks.empty());
  EXPECT_FALSE(DecodeAck("\x93\x01\x02", out));
  EXPECT_FALSE(DecodeAck("", out));
  AckMessage no_sender = m;
  no_sender.sender = 0;
  EXPECT_FALSE(DecodeAck(EncodeAck(no_sender), out));
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(3);
  pk.pack(10);
  pk.pack(1);
  pk.pack_array(1);
  pk.pack_array(4);  // an entry with a field missing
  pk.pack(1);
  pk.pack(1);
  pk.pack(std::string("c"));
  pk.pack(std::string("e"));
  EXPECT_FALSE(DecodeAck(std::string(buf.data(), buf.size()), out));
  EXPECT_EQ(PeerMessageKind("\xc0"), 0u);
}

TEST(BrokerNodeCommitCodec, C9_C13_TopCarriesCommitAndPartitionEpoch) {
  zmq::context_t ctx;
  auto server = chp::Server::Create(ctx, {});
  ASSERT_TRUE(server.ok());
  ChpStateSink sink(**server, "n1");
  auto top_of = [&](std::string_view channel) {
    const chp::Subtree* st = (*server)->store().Find(ChannelSubtree(channel));
    EXPECT_NE(st, nullptr);
    CopyTop t;
    EXPECT_TRUE(DecodeTop(st->entries.at("top").value, t));
    return t;
  };
  sink.OnTop("plain", StreamPosition{7, "e1"});
  CopyTop t = top_of("plain");
  EXPECT_EQ(t.channel, "plain");
  EXPECT_EQ(t.top.offset, 7u);
  EXPECT_EQ(t.committed, 7u);  // no `c`: everything committed
  EXPECT_EQ(t.partition_epoch, 0u);

  sink.set_top_extras([](std::string_view, TopExtras& x) {
    x.has_committed = true;
    x.committed = 5;
    x.partition_epoch = 3;
  });
  sink.OnTop("chat", StreamPosition{7, "e2"});
  t = top_of("chat");
  EXPECT_EQ(t.top.epoch, "e2");
  EXPECT_EQ(t.committed, 5u);
  EXPECT_EQ(t.partition_epoch, 3u);
}

}  // namespace
}  // namespace chorus::broker::node
