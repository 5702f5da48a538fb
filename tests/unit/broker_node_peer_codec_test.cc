// The data plane's forward messages (broker/node/src/peer_codec.h, docs/cluster.md §5): every
// field survives a round trip, and anything malformed is refused rather than half-decoded.
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "peer_codec.h"

namespace chorus::broker::node {
namespace {

ForwardRequest SampleRequest() {
  ForwardRequest r;
  r.id = 42;
  r.partition = 17;
  r.partition_epoch = 9;
  r.sender = 3;
  r.channel = "chat:été";
  r.data = R"({"n":1})";
  r.info = R"({"client":"c","user":"u"})";
  r.tags = {{"a", "1"}, {"b", ""}};
  r.skip_history = true;
  return r;
}

TEST(PeerCodec, RequestRoundTrip) {
  const ForwardRequest r = SampleRequest();
  ForwardRequest out;
  ASSERT_TRUE(DecodeForwardRequest(EncodeForwardRequest(r), out));
  EXPECT_EQ(out, r);
  ForwardRequest bare;
  bare.channel = "x";
  ASSERT_TRUE(DecodeForwardRequest(EncodeForwardRequest(bare), out));
  EXPECT_EQ(out, bare);
  EXPECT_FALSE(out.info.has_value());
}

TEST(PeerCodec, ReplyRoundTrip) {
  for (ForwardStatus st : {ForwardStatus::kOk, ForwardStatus::kNotPrimary,
                           ForwardStatus::kStaleEpoch, ForwardStatus::kError}) {
    ForwardReply r{7, st, 111, 1234, "AbCdEf12", 2, 5};
    ForwardReply out;
    ASSERT_TRUE(DecodeForwardReply(EncodeForwardReply(r), out));
    EXPECT_EQ(out, r);
  }
}

TEST(PeerCodec, MalformedIsRefused) {
  ForwardRequest req;
  ForwardReply rep;
  const std::string request = EncodeForwardRequest(SampleRequest());
  const std::string reply = EncodeForwardReply(ForwardReply{});
  EXPECT_FALSE(DecodeForwardRequest("", req));
  EXPECT_FALSE(DecodeForwardRequest("\xc1", req));
  EXPECT_FALSE(DecodeForwardRequest(reply, req));  // a reply is not a request
  EXPECT_FALSE(DecodeForwardReply(request, rep));  // nor the other way round
  for (size_t n = 1; n < request.size(); ++n) {    // every truncation
    EXPECT_FALSE(DecodeForwardRequest(request.substr(0, n), req)) << n;
  }
  // A status beyond the known ones, and a wrong field type.
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(8);
  pk.pack(2u);
  pk.pack(1u);
  pk.pack(9u);  // status
  pk.pack(0u);
  pk.pack(0u);
  pk.pack(std::string("e"));
  pk.pack(0u);
  pk.pack(0u);
  EXPECT_FALSE(DecodeForwardReply(std::string(buf.data(), buf.size()), rep));
  msgpack::sbuffer buf2;
  msgpack::packer<msgpack::sbuffer> pk2(buf2);
  pk2.pack_array(10);
  pk2.pack(1u);
  pk2.pack(std::string("not an id"));
  for (int i = 0; i < 8; ++i) pk2.pack(0u);
  EXPECT_FALSE(DecodeForwardRequest(std::string(buf2.data(), buf2.size()), req));
}

}  // namespace
}  // namespace chorus::broker::node
