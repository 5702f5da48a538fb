// Unit tests for the CHP wire codec (chp/codec.h): round trips, forward compatibility and the
// rejection of malformed bodies.
#include "chp/codec.h"

#include <gtest/gtest.h>

#include <msgpack.hpp>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace chorus::chp {
namespace {

using namespace std::string_literals;

// Builds raw msgpack bodies for the malformed-input tests.
class Body {
 public:
  Body& Array(uint32_t n) {
    return Do([&] { p_.pack_array(n); });
  }
  Body& Uint(uint64_t v) {
    return Do([&] { p_.pack_uint64(v); });
  }
  Body& Int(int64_t v) {
    return Do([&] { p_.pack_int64(v); });
  }
  Body& Nil() {
    return Do([&] { p_.pack_nil(); });
  }
  Body& Str(const std::string& s) {
    return Do([&] {
      p_.pack_str(static_cast<uint32_t>(s.size()));
      p_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    });
  }
  Body& Bin(const std::string& s) {
    return Do([&] {
      p_.pack_bin(static_cast<uint32_t>(s.size()));
      p_.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
    });
  }
  Body& Map(uint32_t n) {
    return Do([&] { p_.pack_map(n); });
  }
  std::string str() const { return std::string(buf_.data(), buf_.size()); }

 private:
  Body& Do(const std::function<void()>& f) {
    f();
    return *this;
  }
  msgpack::sbuffer buf_;
  msgpack::packer<msgpack::sbuffer> p_{buf_};
};

const std::string kBinary = "\0\x01\xff\0zz\0"s;

Uuid TestUuid() {
  Uuid u{};
  for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<uint8_t>(i * 17);
  u[3] = 0;  // a NUL byte inside
  return u;
}

template <typename T, typename V>
T Get(const Result<V>& r) {
  EXPECT_TRUE(r.ok()) << r.error().message();
  if (!r.ok()) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*r));
  if (!std::holds_alternative<T>(*r)) return T{};
  return std::get<T>(*r);
}

template <typename V>
std::error_code Err(const Result<V>& r) {
  EXPECT_FALSE(r.ok());
  return r.error();
}

// ---------------------------------------------------------------- round trips

TEST(CodecRoundTrip, Hello) {
  Hello m{7, 0xFFFFFFFFFFFFFFFFull};
  EXPECT_EQ(Get<Hello>(DecodeCommand(Encode(m))), m);
  Hello dflt;
  EXPECT_EQ(Get<Hello>(DecodeCommand(Encode(dflt))), dflt);
  EXPECT_EQ(dflt.version, kProtocolVersion);
}

TEST(CodecRoundTrip, Icanhaz) {
  Icanhaz m{42, "orders", {"deadbeef00112233", 123456789}};
  EXPECT_EQ(Get<Icanhaz>(DecodeCommand(Encode(m))), m);
  Icanhaz all{1, kAllSubtrees, {}};
  EXPECT_EQ(Get<Icanhaz>(DecodeCommand(Encode(all))), all);
}

TEST(CodecRoundTrip, KvSet) {
  KvSet m{TestUuid(), "sub/a/b/c", Op::kSet, kBinary, kMaxTtlMs};
  EXPECT_EQ(Get<KvSet>(DecodeCommand(Encode(m))), m);
  KvSet del{TestUuid(), "sub/k", Op::kDelete, "", 0};
  EXPECT_EQ(Get<KvSet>(DecodeCommand(Encode(del))), del);
}

// CR-29 / CS-27: APPLIED carries a replica name and positions.
TEST(CodecRoundTrip, Applied) {
  const Applied m{"backup-1", {{"s", {"e1", 7}}, {"t", {"", 0}}}};
  EXPECT_EQ(Get<Applied>(DecodeCommand(Encode(m))), m);
  const Applied empty{"r", {}};
  EXPECT_EQ(Get<Applied>(DecodeCommand(Encode(empty))), empty);
  // A position that is not [str, str, u64] makes the frame malformed.
  EXPECT_EQ(Err(DecodeCommand(
                Body().Array(3).Uint(13).Str("r").Array(1).Array(2).Str("s").Str("e").str())),
            Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Array(3).Uint(13).Str("r").Uint(1).str())), Errc::kMalformed);
}

TEST(CodecRoundTrip, HelloOk) {
  HelloOk m{9, 3, "server-1", "tcp://127.0.0.1:5557"};
  EXPECT_EQ(Get<HelloOk>(DecodeReply(Encode(m))), m);
}

TEST(CodecRoundTrip, KvSync) {
  KvSync m{11, "sub", {}};
  m.records.push_back({"k1", Op::kSet, "\x93\x01\x02\x03", 0, 1});
  m.records.push_back({"empty", Op::kSet, "", 0, 2});
  m.records.push_back({"bin/with/slash", Op::kSet, kBinary, 1500, 3});
  m.records.push_back({"gone", Op::kDelete, "", 0, 4});
  m.records.push_back({"expired", Op::kExpire, "", 0, std::numeric_limits<uint64_t>::max()});
  const KvSync got = Get<KvSync>(DecodeReply(Encode(m)));
  EXPECT_EQ(got, m);
  ASSERT_EQ(got.records.size(), 5u);
  EXPECT_EQ(got.records[2].value.size(), 7u);

  KvSync none{12, "sub", {}};
  EXPECT_EQ(Get<KvSync>(DecodeReply(Encode(none))), none);
}

TEST(CodecRoundTrip, KvSyncManyRecords) {
  KvSync m{1, "sub", {}};
  for (uint64_t i = 0; i < 1000; ++i) {
    m.records.push_back({"key" + std::to_string(i), Op::kSet, std::string(i % 50, 'x'), i, i + 1});
  }
  EXPECT_EQ(Get<KvSync>(DecodeReply(Encode(m))), m);
}

TEST(CodecRoundTrip, KthxbaiBothModes) {
  Kthxbai snap{5, "sub", {"e1", 77}, 12, SyncMode::kSnapshot};
  EXPECT_EQ(Get<Kthxbai>(DecodeReply(Encode(snap))), snap);
  Kthxbai res{6, "sub", {"e1", 78}, 1, SyncMode::kResume};
  EXPECT_EQ(Get<Kthxbai>(DecodeReply(Encode(res))), res);
  Kthxbai unborn{7, "new", {"", 0}, 0, SyncMode::kSnapshot};
  EXPECT_EQ(Get<Kthxbai>(DecodeReply(Encode(unborn))), unborn);
}

TEST(CodecRoundTrip, DoneAckError) {
  Done d{3, 17};
  EXPECT_EQ(Get<Done>(DecodeReply(Encode(d))), d);
  KvAck a{TestUuid(), static_cast<uint32_t>(Errc::kFull), {"ep", 99}};
  EXPECT_EQ(Get<KvAck>(DecodeReply(Encode(a))), a);
  Error e{4, static_cast<uint32_t>(Errc::kBadVersion), "version 9 not supported"};
  EXPECT_EQ(Get<Error>(DecodeReply(Encode(e))), e);
}

TEST(CodecRoundTrip, KvPub) {
  KvPub m{"sub", "e1", {"a/b", Op::kSet, kBinary, 250, 42}};
  EXPECT_EQ(Topic(m), "sub/a/b");
  EXPECT_EQ(Get<KvPub>(DecodePub(Topic(m), Encode(m))), m);
  KvPub del{"sub", "e1", {"k", Op::kDelete, "", 0, 43}};
  EXPECT_EQ(Get<KvPub>(DecodePub(Topic(del), Encode(del))), del);
  KvPub exp{"sub", "e1", {"k", Op::kExpire, "", 0, 44}};
  EXPECT_EQ(Get<KvPub>(DecodePub(Topic(exp), Encode(exp))), exp);
}

// The agent's hot path decodes into one reused KvPub: same result as DecodePub each time, also
// when a message without UUID or term follows one with them; other frames are left to DecodePub.
TEST(CodecRoundTrip, KvPubIntoAReusedMessage) {
  KvPub with{"sub", "e1", {"a/b", Op::kSet, kBinary, 250, 42}, 7};
  with.record.uuid.fill(0x5a);
  const KvPub without{"other", "e2", {"k", Op::kDelete, "", 0, 43}};
  KvPub out;
  for (const KvPub& m : {with, without, with, without}) {
    ASSERT_TRUE(DecodeKvPubInto(Topic(m), Encode(m), out));
    EXPECT_EQ(out, m);
    EXPECT_EQ(out, Get<KvPub>(DecodePub(Topic(m), Encode(m))));
  }
  EXPECT_FALSE(DecodeKvPubInto("bad topic", Encode(with), out));
  EXPECT_FALSE(DecodeKvPubInto("sub/", Encode(PositionMsg{"sub", {"e1", 9}}), out));
}

// The agent decodes the sweep's POSITIONs (CS-26) into one reused message, like KVPUBs: same
// result as DecodePub, with and without the term elements; other frames are left to DecodePub.
TEST(CodecRoundTrip, PositionIntoAReusedMessage) {
  const PositionMsg with{"sub", {"e1", 900}, 7, 12};
  const PositionMsg unborn{"other", {}};
  PositionMsg out;
  for (const PositionMsg& m : {with, unborn, with}) {
    ASSERT_TRUE(DecodePositionInto(Topic(m), Encode(m), out));
    EXPECT_EQ(out, m);
    EXPECT_EQ(out, Get<PositionMsg>(DecodePub(Topic(m), Encode(m))));
  }
  EXPECT_FALSE(DecodePositionInto("sub", Encode(with), out));    // no trailing '/'
  EXPECT_FALSE(DecodePositionInto("$bad/", Encode(with), out));  // not a subtree (CK-1)
  EXPECT_FALSE(DecodePositionInto("sub/", Encode(Hugz{1, "s", 0, 0}), out));
  const KvPub pub{"sub", "e1", {"k", Op::kSet, kBinary, 0, 1}};
  EXPECT_FALSE(DecodePositionInto("sub/", Encode(pub), out));
}

TEST(CodecRoundTrip, PositionAndHugz) {
  PositionMsg p{"sub", {"e1", 9}};
  EXPECT_EQ(Topic(p), "sub/");
  EXPECT_EQ(Get<PositionMsg>(DecodePub(Topic(p), Encode(p))), p);
  PositionMsg unborn{"x", {}};
  EXPECT_EQ(Get<PositionMsg>(DecodePub(Topic(unborn), Encode(unborn))), unborn);
  Hugz h{1, "srv", 1700000000000ull, 5};
  EXPECT_EQ(Get<Hugz>(DecodePub(kHugzTopic, Encode(h))), h);
}

TEST(CodecRoundTrip, BodyStartsWithCommandCode) {
  // Every body is an array whose first element is the command code (spec, "Frames").
  const std::string hello = Encode(Hello{});
  ASSERT_GE(hello.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(hello[0]), 0x93);  // fixarray of 3
  EXPECT_EQ(static_cast<uint8_t>(hello[1]), static_cast<uint8_t>(Command::kHello));
  const std::string hugz = Encode(Hugz{});
  EXPECT_EQ(static_cast<uint8_t>(hugz[1]), static_cast<uint8_t>(Command::kHugz));
}

// ---------------------------------------------------------------- forward compatibility

TEST(CodecCompat, TrailingElementsAccepted) {
  const std::string hello = Body().Array(5).Uint(1).Uint(2).Uint(99).Str("future").Nil().str();
  EXPECT_EQ(Get<Hello>(DecodeCommand(hello)), (Hello{2, 99}));

  const std::string kth =
      Body().Array(8).Uint(5).Uint(3).Str("sub").Str("ep").Uint(10).Uint(2).Uint(1).Map(0).str();
  EXPECT_EQ(Get<Kthxbai>(DecodeReply(kth)), (Kthxbai{3, "sub", {"ep", 10}, 2, SyncMode::kResume}));

  // A record with an extra field inside KVSYNC.
  const std::string sync = Body()
                               .Array(4)
                               .Uint(4)
                               .Uint(8)
                               .Str("sub")
                               .Array(1)
                               .Array(6)
                               .Str("k")
                               .Uint(0)
                               .Bin("v")
                               .Uint(0)
                               .Uint(3)
                               .Str("extra")
                               .str();
  const KvSync got = Get<KvSync>(DecodeReply(sync));
  ASSERT_EQ(got.records.size(), 1u);
  EXPECT_EQ(got.records[0], (Record{"k", Op::kSet, "v", 0, 3}));

  const std::string pub =
      Body().Array(7).Uint(10).Str("e").Uint(5).Uint(0).Bin("v").Uint(0).Uint(1).str();
  EXPECT_EQ(Get<KvPub>(DecodePub("s/k", pub)), (KvPub{"s", "e", {"k", Op::kSet, "v", 0, 5}}));
}

// ---------------------------------------------------------------- malformed input

TEST(CodecErrors, EmptyAndNonArray) {
  EXPECT_EQ(Err(DecodeCommand("")), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeReply("")), Errc::kMalformed);
  EXPECT_EQ(Err(DecodePub("s/k", "")), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Uint(1).str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Str("hello").str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Map(1).Uint(1).Uint(1).str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Array(0).str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeReply(Body().Nil().str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodePub(kHugzTopic, Body().Array(0).str())), Errc::kMalformed);
}

TEST(CodecErrors, CommandCodeNotAnInteger) {
  EXPECT_EQ(Err(DecodeCommand(Body().Array(3).Str("1").Uint(1).Uint(1).str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Array(3).Int(-1).Uint(1).Uint(1).str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Array(3).Uint(256 + 1).Uint(1).Uint(1).str())),
            Errc::kMalformed);
}

TEST(CodecErrors, UnknownCommand) {
  for (uint64_t code : {0ull, 14ull, 200ull, 255ull}) {
    const std::string b = Body().Array(3).Uint(code).Uint(1).Uint(1).str();
    EXPECT_EQ(Err(DecodeCommand(b)), Errc::kUnknownCommand) << code;
    EXPECT_EQ(Err(DecodeReply(b)), Errc::kUnknownCommand) << code;
    EXPECT_EQ(Err(DecodePub("s/k", b)), Errc::kUnknownCommand) << code;
  }
  // A valid message on the wrong socket is an unknown command there.
  EXPECT_EQ(Err(DecodeCommand(Encode(Done{1, 2}))), Errc::kUnknownCommand);
  EXPECT_EQ(Err(DecodeReply(Encode(Hello{}))), Errc::kUnknownCommand);
  EXPECT_EQ(Err(DecodePub(kHugzTopic, Encode(Hello{}))), Errc::kUnknownCommand);
  EXPECT_EQ(Err(DecodeCommand(Encode(Hugz{}))), Errc::kUnknownCommand);
}

TEST(CodecErrors, TruncatedBodies) {
  EXPECT_EQ(Err(DecodeCommand(Body().Array(2).Uint(1).Uint(1).str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Array(1).Uint(3).str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Array(4).Uint(3).Uint(1).Str("s").Str("e").str())),
            Errc::kMalformed);
  EXPECT_EQ(Err(DecodeReply(Body().Array(3).Uint(4).Uint(1).Str("s").str())), Errc::kMalformed);
  EXPECT_EQ(
      Err(DecodeReply(Body().Array(6).Uint(5).Uint(1).Str("s").Str("e").Uint(1).Uint(0).str())),
      Errc::kMalformed);
  EXPECT_EQ(Err(DecodeReply(Body().Array(2).Uint(6).Uint(1).str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodePub("s/", Body().Array(2).Uint(11).Str("e").str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodePub(kHugzTopic, Body().Array(4).Uint(12).Uint(1).Str("s").Uint(1).str())),
            Errc::kMalformed);
  // A record with only four fields.
  const std::string sync = Body()
                               .Array(4)
                               .Uint(4)
                               .Uint(8)
                               .Str("sub")
                               .Array(1)
                               .Array(4)
                               .Str("k")
                               .Uint(0)
                               .Bin("v")
                               .Uint(0)
                               .str();
  EXPECT_EQ(Err(DecodeReply(sync)), Errc::kMalformed);
}

TEST(CodecErrors, WrongTypes) {
  // Hello version as a string; request id negative; version over uint32.
  EXPECT_EQ(Err(DecodeCommand(Body().Array(3).Uint(1).Str("1").Uint(1).str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Array(3).Uint(1).Uint(1).Int(-5).str())), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(Body().Array(3).Uint(1).Uint(1ull << 32).Uint(1).str())),
            Errc::kMalformed);
  // Icanhaz subtree as bin instead of str.
  EXPECT_EQ(Err(DecodeCommand(Body().Array(5).Uint(3).Uint(1).Bin("sub").Str("").Uint(0).str())),
            Errc::kMalformed);
  // KvSet value as str instead of bin; key as bin.
  const std::string u(16, 'u');
  EXPECT_EQ(
      Err(DecodeCommand(Body().Array(6).Uint(7).Bin(u).Str("s/k").Uint(0).Str("v").Uint(0).str())),
      Errc::kMalformed);
  EXPECT_EQ(
      Err(DecodeCommand(Body().Array(6).Uint(7).Bin(u).Bin("s/k").Uint(0).Bin("v").Uint(0).str())),
      Errc::kMalformed);
  // KvSync records not an array; a record not an array.
  EXPECT_EQ(Err(DecodeReply(Body().Array(4).Uint(4).Uint(1).Str("s").Map(0).str())),
            Errc::kMalformed);
  EXPECT_EQ(Err(DecodeReply(Body().Array(4).Uint(4).Uint(1).Str("s").Array(1).Str("k").str())),
            Errc::kMalformed);
  // Kthxbai mode over uint8 / status over uint32.
  EXPECT_EQ(Err(DecodeReply(
                Body().Array(7).Uint(5).Uint(1).Str("s").Str("e").Uint(1).Uint(0).Uint(256).str())),
            Errc::kMalformed);
  EXPECT_EQ(
      Err(DecodeReply(Body().Array(5).Uint(8).Bin(u).Uint(1ull << 32).Str("e").Uint(1).str())),
      Errc::kMalformed);
  // Hugz server id as an integer.
  EXPECT_EQ(
      Err(DecodePub(kHugzTopic, Body().Array(5).Uint(12).Uint(1).Uint(1).Uint(1).Uint(1).str())),
      Errc::kMalformed);
}

TEST(CodecErrors, OpOutOfRange) {
  const std::string u(16, 'u');
  EXPECT_EQ(
      Err(DecodeCommand(Body().Array(6).Uint(7).Bin(u).Str("s/k").Uint(3).Bin("v").Uint(0).str())),
      Errc::kMalformed);
  EXPECT_EQ(Err(DecodePub("s/k",
                          Body().Array(6).Uint(10).Str("e").Uint(1).Uint(3).Bin("").Uint(0).str())),
            Errc::kMalformed);
  const std::string sync = Body()
                               .Array(4)
                               .Uint(4)
                               .Uint(8)
                               .Str("sub")
                               .Array(1)
                               .Array(5)
                               .Str("k")
                               .Uint(7)
                               .Bin("v")
                               .Uint(0)
                               .Uint(1)
                               .str();
  EXPECT_EQ(Err(DecodeReply(sync)), Errc::kMalformed);
  // Op 2 (expire) is a valid wire value.
  EXPECT_TRUE(
      DecodePub("s/k", Body().Array(6).Uint(10).Str("e").Uint(1).Uint(2).Bin("").Uint(0).str())
          .ok());
}

TEST(CodecErrors, ModeOutOfRange) {
  const std::string b =
      Body().Array(7).Uint(5).Uint(1).Str("s").Str("e").Uint(1).Uint(0).Uint(2).str();
  EXPECT_EQ(Err(DecodeReply(b)), Errc::kMalformed);
}

TEST(CodecErrors, UuidWrongLength) {
  for (size_t n : {0u, 15u, 17u}) {
    const std::string u(n, 'u');
    EXPECT_EQ(Err(DecodeCommand(
                  Body().Array(6).Uint(7).Bin(u).Str("s/k").Uint(0).Bin("v").Uint(0).str())),
              Errc::kMalformed)
        << n;
    EXPECT_EQ(Err(DecodeReply(Body().Array(5).Uint(8).Bin(u).Uint(0).Str("e").Uint(1).str())),
              Errc::kMalformed)
        << n;
  }
  // Right length but str instead of bin.
  EXPECT_EQ(Err(DecodeCommand(Body()
                                  .Array(6)
                                  .Uint(7)
                                  .Str(std::string(16, 'u'))
                                  .Str("s/k")
                                  .Uint(0)
                                  .Bin("v")
                                  .Uint(0)
                                  .str())),
            Errc::kMalformed);
}

TEST(CodecErrors, KvPubInvalidTopic) {
  const std::string body = Encode(KvPub{"s", "e", {"k", Op::kSet, "v", 0, 1}});
  ASSERT_TRUE(DecodePub("s/k", body).ok());
  for (const std::string& topic :
       {""s, "s"s, "/k"s, "s/"s, "$sys/k"s, "*/k"s, "s/k\n"s, "s\x01/k"s, "s/\xff"s, "s\0/k"s,
        "s/" + std::string(kMaxKeyBytes - 1, 'k')}) {
    EXPECT_EQ(Err(DecodePub(topic, body)), Errc::kMalformed) << topic;
  }
}

TEST(CodecErrors, PositionTopic) {
  const std::string body = Encode(PositionMsg{"s", {"e", 1}});
  ASSERT_TRUE(DecodePub("s/", body).ok());
  for (const std::string& topic : {""s, "/"s, "s"s, "s/k"s, "a/b/"s, "$s/"s, "*/"s, "\xff/"s}) {
    EXPECT_EQ(Err(DecodePub(topic, body)), Errc::kMalformed) << topic;
  }
}

TEST(CodecErrors, HugzTopic) {
  const std::string body = Encode(Hugz{1, "srv", 1, 0});
  ASSERT_TRUE(DecodePub(kHugzTopic, body).ok());
  for (const std::string& topic : {""s, "$HUGZ/"s, "$hugz"s, "s/"s, "$HUGZX"s}) {
    EXPECT_EQ(Err(DecodePub(topic, body)), Errc::kMalformed) << topic;
  }
}

TEST(CodecErrors, TrailingBytesRejected) {
  const std::string hello = Encode(Hello{});
  EXPECT_EQ(Err(DecodeCommand(hello + hello)), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand(hello + "\xc0"s)), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeReply(Encode(Done{}) + "\0"s)), Errc::kMalformed);
}

// ---------------------------------------------------------------- prefixes and mutations

struct Sample {
  std::string name;
  std::string body;
  std::function<bool(std::string_view)> decode;  // true when decoding succeeded
};

std::vector<Sample> Samples() {
  auto cmd = [](std::string_view b) { return DecodeCommand(b).ok(); };
  auto rep = [](std::string_view b) { return DecodeReply(b).ok(); };
  KvSync sync{11, "sub", {{"k1", Op::kSet, kBinary, 10, 1}, {"k2", Op::kDelete, "", 0, 2}}};
  const KvPub pub{"sub", "e1", {"a/b", Op::kSet, kBinary, 250, 42}};
  const PositionMsg pos{"sub", {"e1", 9}};
  return {
      {"hello", Encode(Hello{1, 2}), cmd},
      {"icanhaz", Encode(Icanhaz{3, "sub", {"ep", 4}}), cmd},
      {"kvset", Encode(KvSet{TestUuid(), "s/k", Op::kSet, kBinary, 5}), cmd},
      {"hellook", Encode(HelloOk{1, 1, "id", "tcp://x:1"}), rep},
      {"kvsync", Encode(sync), rep},
      {"kthxbai", Encode(Kthxbai{1, "s", {"e", 2}, 3, SyncMode::kResume}), rep},
      {"done", Encode(Done{1, 2}), rep},
      {"kvack", Encode(KvAck{TestUuid(), 0, {"e", 1}}), rep},
      {"error", Encode(Error{1, 2, "boom"}), rep},
      {"kvpub", Encode(pub), [t = Topic(pub)](std::string_view b) { return DecodePub(t, b).ok(); }},
      {"position", Encode(pos),
       [t = Topic(pos)](std::string_view b) { return DecodePub(t, b).ok(); }},
      {"hugz", Encode(Hugz{1, "srv", 2, 3}),
       [](std::string_view b) { return DecodePub(kHugzTopic, b).ok(); }},
  };
}

TEST(CodecFuzzish, EveryStrictPrefixFails) {
  for (const Sample& s : Samples()) {
    ASSERT_TRUE(s.decode(s.body)) << s.name;
    for (size_t n = 0; n < s.body.size(); ++n) {
      // A copy so that reading past the prefix is caught by sanitizers.
      const std::string prefix = s.body.substr(0, n);
      EXPECT_FALSE(s.decode(prefix)) << s.name << " prefix " << n;
    }
  }
}

TEST(CodecFuzzish, SingleByteMutationsNeverCrash) {
  for (const Sample& s : Samples()) {
    for (size_t i = 0; i < s.body.size(); ++i) {
      for (int v : {0x00, 0x7f, 0x80, 0xc1, 0xdc, 0xdd, 0xff}) {
        std::string m = s.body;
        m[i] = static_cast<char>(v);
        (void)s.decode(m);
        (void)IsMsgpackValue(m);
      }
    }
  }
}

TEST(CodecFuzzish, HugeDeclaredLengthsRejected) {
  // An array header claiming 2^32-1 elements, and a bin header claiming 4 GiB.
  EXPECT_EQ(Err(DecodeCommand("\xdd\xff\xff\xff\xff\x01"s)), Errc::kMalformed);
  EXPECT_EQ(Err(DecodeCommand("\x93\x07\xc6\xff\xff\xff\xff"s)), Errc::kMalformed);
}

// ---------------------------------------------------------------- IsMsgpackValue

TEST(IsMsgpackValue, AcceptsExactlyOneObject) {
  EXPECT_TRUE(IsMsgpackValue("\x01"s));
  EXPECT_TRUE(IsMsgpackValue("\xc0"s));  // nil
  EXPECT_TRUE(
      IsMsgpackValue("\xa3"
                     "abc"s));
  EXPECT_TRUE(
      IsMsgpackValue(Body().Map(2).Str("a").Uint(1).Str("b").Array(2).Nil().Bin(kBinary).str()));
  EXPECT_TRUE(IsMsgpackValue(Encode(KvSync{1, "s", {{"k", Op::kSet, "v", 0, 1}}})));
}

TEST(IsMsgpackValue, RejectsEverythingElse) {
  EXPECT_FALSE(IsMsgpackValue(""));
  EXPECT_FALSE(IsMsgpackValue("\x01\x02"s));  // two objects
  EXPECT_FALSE(IsMsgpackValue("\xc0\xc0"s));
  EXPECT_FALSE(IsMsgpackValue(Encode(Hello{}) + Encode(Hello{})));
  EXPECT_FALSE(IsMsgpackValue("\xc1"s));  // never-used byte
  EXPECT_FALSE(
      IsMsgpackValue("\xa5"
                     "ab"s));                        // truncated str
  EXPECT_FALSE(IsMsgpackValue("\x92\x01"s));         // truncated array
  EXPECT_FALSE(IsMsgpackValue("{\"json\": true}"));  // text is not one msgpack object
}

// Decoder limits of spec §12 (CW-8), shared by bodies and values (CV-1).
TEST(IsMsgpackValue, DecoderLimits) {
  auto map_of = [](uint32_t n) {
    Body b;
    b.Map(n);
    for (uint32_t i = 0; i < n; ++i) b.Uint(i).Nil();
    return b.str();
  };
  EXPECT_TRUE(IsMsgpackValue(map_of(1024)));
  EXPECT_FALSE(IsMsgpackValue(map_of(1025)));
  auto nested = [](int depth) { return std::string(depth, '\x91') + "\x01"; };
  EXPECT_TRUE(IsMsgpackValue(nested(16)));
  EXPECT_FALSE(IsMsgpackValue(nested(17)));
  auto array_of = [](uint32_t n) {
    std::string s = Body().Array(n).str();
    s.append(n, '\x01');
    return s;
  };
  EXPECT_TRUE(IsMsgpackValue(array_of(1u << 20)));
  EXPECT_FALSE(IsMsgpackValue(array_of((1u << 20) + 1)));
}

TEST(CodecErrors, FrameSizeLimit) {
  // A HELLO padded with a trailing bin element to exactly the frame limit, then one byte more.
  auto padded = [](size_t total) {
    const size_t overhead =
        Body().Array(4).Uint(1).Uint(1).Uint(1).Bin(std::string(70000, 'x')).str().size() - 70000;
    return Body().Array(4).Uint(1).Uint(1).Uint(1).Bin(std::string(total - overhead, 'x')).str();
  };
  const std::string max = padded(kMaxFrameBytes);
  ASSERT_EQ(max.size(), kMaxFrameBytes);
  EXPECT_TRUE(DecodeCommand(max).ok());
  const std::string over = padded(kMaxFrameBytes + 1);
  ASSERT_EQ(over.size(), kMaxFrameBytes + 1);
  EXPECT_EQ(Err(DecodeCommand(over)), Errc::kMalformed);
}

}  // namespace
}  // namespace chorus::chp
