// Raw-wire tests of chorus-chp-server: keys (CK-n), values (CV-n) and frames (CW-n).
// Shared helpers and the ChpWire fixture: chp_wire_support.h (which also explains how waits and
// "no reply" are checked). The chp headers are deliberately not used.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "chp_wire_support.h"

namespace chp_wire_test {
namespace {

// =============================================================================================
// §4 Keys

TEST_F(ChpWire, CK1_SubtreeNamesAreChecked) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "");
  const std::vector<std::string> bad = {
      "/k",                          // empty subtree
      std::string(256, 's') + "/k",  // 256 bytes
      std::string("a\x01") + "b/k",  // control characters
      std::string("a\x1f") + "b/k",
      std::string("a\x7f") + "b/k",
      "$sys/k",  // reserved for control topics
      "$HUGZ/k",
      "*/k",                            // reserved for ICANHAZ
      std::string("\xC0\xAF") + "x/k",  // overlong form
      "\xED\xA0\x80/k",                 // surrogate
      "\xF4\x90\x80\x80/k",             // above U+10FFFF
      "\xE2\x82/k",                     // truncated sequence
      "\x80x/k",                        // stray continuation byte
      "nokey",                          // no '/'
  };
  for (const std::string& key : bad) {
    SCOPED_TRACE(testing::PrintToString(key));
    EXPECT_EQ(Set(d, key, MpInt(1)).status, kBadKey);
  }
  const std::vector<std::string> good = {
      std::string(255, 's') + "/k",  // 255 bytes
      "\xC3\xBCn\xC3\xAF/k",         // UTF-8
      "\xF0\x9F\x98\x80/k",          // 4-byte UTF-8
      "a$/k",                        // '$' not first
      "a*/k",
      "a b/k",
  };
  for (const std::string& key : good) {
    SCOPED_TRACE(testing::PrintToString(key));
    const KvAckMsg ack = Set(d, key, MpInt(2));
    EXPECT_EQ(ack.status, kOk);
    EXPECT_EQ(ack.seq, 1u);
  }
  // Only the valid keys were published, in order, and only they created subtrees.
  for (const std::string& key : good) EXPECT_EQ(NextKvPub(sub).topic, key);
  SendBody(d, Icanhaz(1, "*"));
  size_t subtrees = 0;
  while (true) {
    Body b = RecvReply(d);
    if (b.code() == kDone) {
      EXPECT_EQ(AsDone(b).subtrees, good.size());
      break;
    }
    if (b.code() == kKthxbai) ++subtrees;
  }
  EXPECT_EQ(subtrees, good.size());
}

TEST_F(ChpWire, CK2_KeyPartRules) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "a/");
  for (const std::string& key :
       {std::string("a/"), std::string("a/x\ty"), std::string("a/\x7f"), std::string("a/x\x01y"),
        std::string("a/\xC0\xAF"), std::string("a/\xED\xA0\x80"), std::string("a/\xFF")}) {
    SCOPED_TRACE(testing::PrintToString(key));
    EXPECT_EQ(Set(d, key, MpInt(1)).status, kBadKey);
  }
  // '/' in the key part: "a/b/c" is key "b/c" in subtree "a".
  const KvAckMsg ack = Set(d, "a/b/c", MpInt(3));
  EXPECT_EQ(ack.status, kOk);
  EXPECT_EQ(ack.seq, 1u);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.topic, "a/b/c");
  EXPECT_EQ(pub.seq, 1u);
  EXPECT_EQ(Set(d, "a/\xC3\xA9t\xC3\xA9", MpInt(4)).status, kOk);
  const SyncReply snap = Snapshot(d, 1, "a");
  ASSERT_EQ(snap.end.count, 2u);
  EXPECT_EQ(snap.by_key().count("b/c"), 1u);
  EXPECT_EQ(snap.by_key().count("\xC3\xA9t\xC3\xA9"), 1u);
}

TEST_F(ChpWire, CK3_FullKeyAtMost1024BytesComparedByteForByte) {
  StartServer();
  auto d = Dealer();
  const std::string k1024 = "k/" + std::string(1022, 'x');
  EXPECT_EQ(Set(d, k1024, MpInt(1)).status, kOk);
  EXPECT_EQ(Set(d, k1024 + "x", MpInt(1)).status, kBadKey);
  const std::string k255 = std::string(255, 's') + "/" + std::string(768, 'y');
  ASSERT_EQ(k255.size(), 1024u);
  EXPECT_EQ(Set(d, k255, MpInt(1)).status, kOk);
  // No Unicode normalisation: NFC and NFD spellings of "café" are two keys.
  EXPECT_EQ(Set(d, "n/caf\xC3\xA9", MpInt(1)).seq, 1u);
  EXPECT_EQ(Set(d, "n/cafe\xCC\x81", MpInt(2)).seq, 2u);
  const SyncReply snap = Snapshot(d, 1, "n");
  EXPECT_EQ(snap.end.count, 2u);
  EXPECT_EQ(snap.by_key().at("caf\xC3\xA9").value, MpInt(1));
  EXPECT_EQ(snap.by_key().at("cafe\xCC\x81").value, MpInt(2));
}

TEST_F(ChpWire, CK4_TopicIsTheFullKeyAndSubtreePrefixIsExact) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "a/");
  auto sub_ab = Sub();
  Subscribe(sub_ab, "ab/");
  ASSERT_EQ(Set(d, "ab/x", MpInt(1)).status, kOk);
  ASSERT_EQ(Set(d, "a/y", MpInt(2)).status, kOk);
  ASSERT_EQ(Set(d, "abc/z", MpInt(3)).status, kOk);
  ASSERT_EQ(Set(d, "a/z/w", MpInt(4)).status, kOk);
  // "a/" hears subtree a only; "ab/" hears subtree ab only.
  EXPECT_EQ(NextKvPub(sub).topic, "a/y");
  EXPECT_EQ(NextKvPub(sub).topic, "a/z/w");
  EXPECT_EQ(NextKvPub(sub_ab).topic, "ab/x");
  ASSERT_EQ(Set(d, "ab/end", MpInt(5)).status, kOk);
  EXPECT_EQ(NextKvPub(sub_ab).topic, "ab/end");
  // Subscribing to "a/" welcomes with POSITION on topic "a/".
  auto late = Sub();
  const PubMsg welcome = Subscribe(late, "a/");
  EXPECT_EQ(welcome.topic, "a/");
}

// =============================================================================================
// §5 Values

TEST_F(ChpWire, CV1_SetValueMustBeExactlyOneMsgpackObject) {
  StartServer();
  auto d = Dealer();
  const std::vector<std::string> bad = {
      "",                                             // empty is not a value
      "\xc1",                                         // never-used byte
      "\x92\x01",                                     // array of 2 with 1 element
      std::string("\x01\x02", 2),                     // two objects
      std::string("\xd9\x05") + "ab",                 // str8 longer than the bytes
      Nested(17),                                     // deeper than 16 (CW-8)
      MapOf(1025),                                    // more than 1,024 pairs
      Pack().Ext(1, std::string(65'537, 'e')).str(),  // ext over 65,536 bytes
  };
  // (An ext of exactly 65,536 data bytes is 65,537 with its type byte; msgpack-cxx counts the type
  // byte and the spec does not say, so only sizes valid or invalid either way are checked.)
  for (const std::string& v : bad) {
    SCOPED_TRACE("value of " + std::to_string(v.size()) + " bytes");
    EXPECT_EQ(Set(d, "v/k", v).status, kBadValue);
  }
  const std::vector<std::string> good = {"\x01",
                                         "\xc0",
                                         MpStr("x"),
                                         Nested(16),
                                         MapOf(1024),
                                         Pack().Ext(1, std::string(65'535, 'e')).str(),
                                         std::string("\x00", 1)};
  uint64_t seq = 0;
  for (const std::string& v : good) {
    SCOPED_TRACE("value of " + std::to_string(v.size()) + " bytes");
    const KvAckMsg ack = Set(d, "v/k", v);
    EXPECT_EQ(ack.status, kOk);
    EXPECT_EQ(ack.seq, ++seq);
  }
}

TEST_F(ChpWire, CV2_ValueOverMaxValueBytesIsRejected) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "v/");
  EXPECT_EQ(Set(d, "v/big", ValueOfSize(kMaxValueBytes + 1)).status, kValueTooLarge);
  const KvAckMsg ok = Set(d, "v/big", ValueOfSize(kMaxValueBytes));
  EXPECT_EQ(ok.status, kOk);
  EXPECT_EQ(ok.seq, 1u);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.seq, 1u);
  EXPECT_EQ(pub.value, ValueOfSize(kMaxValueBytes));
}

TEST_F(ChpWire, CV3_ValueBytesAreStoredAndForwardedUnchanged) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "v/");
  // Non-shortest encodings a re-encoding server would change.
  const std::vector<std::string> values = {
      Pack().U64(1).str(),                       // uint64 for 1
      Pack().I64(-1).str(),                      // int64 for -1
      std::string("\xd9\x02hi", 4),              // str8 for a fixstr
      std::string("\xc5\x00\x03", 3) + "abc",    // bin16 for a bin8
      std::string("\xde\x00\x01\xa1k\xa1v", 7),  // map16 for a fixmap
      Pack().Double(1.0).str(),
  };
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(Set(d, "v/k" + std::to_string(i), values[i]).status, kOk);
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const KvPubMsg pub = NextKvPub(sub);
    EXPECT_EQ(pub.value, values[i]) << "KVPUB " << i;
  }
  const auto snap = Snapshot(d, 1, "v").by_key();
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(snap.at("k" + std::to_string(i)).value, values[i]) << "snapshot " << i;
  }
  const KvAckMsg last = Set(d, "v/k0", values[1]);
  const SyncReply resume = Snapshot(d, 2, "v", last.epoch, last.seq - 1);
  ASSERT_EQ(resume.end.mode, kModeResume);
  ASSERT_EQ(resume.records().size(), 1u);
  EXPECT_EQ(resume.records()[0].value, values[1]);
}

// =============================================================================================
// §6 Frames

TEST_F(ChpWire, CW1_BodiesThatAreNotOneArrayWithACodeAreDropped) {
  StartServer();
  auto d = Dealer();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"empty frame", ""},
      {"trailing bytes", Hello(1, 7) + std::string(1, '\0')},
      {"integer", "\x01"},
      {"map", Pack().Map(1).U(1).U(1).str()},
      {"str", MpStr("hello")},
      {"empty array", "\x90"},
      {"code as str", Pack().Array(3).Str("1").U(1).U(7).str()},
      {"negative code", Pack().Array(3).I(-1).U(1).U(7).str()},
      {"code 256", Pack().Array(3).U(256).U(1).U(7).str()},
      {"code 257 (1 mod 256)", Pack().Array(3).U(257).U(1).U(7).str()},
      {"code nil", Pack().Array(3).Nil().U(1).U(7).str()},
      {"code float", Pack().Array(3).Double(1.0).U(1).U(7).str()},
      {"never-used byte", "\xc1"},
      {"truncated array", "\x93\x01\x01"},
  };
  for (const auto& [what, body] : bad) {
    SCOPED_TRACE(what);
    SendBody(d, body);
    ExpectNoReply(d, what);
  }
}

TEST_F(ChpWire, CW2_AnyIntegerEncodingIsAcceptedAndTypesAreChecked) {
  StartServer();
  auto d = Dealer();
  // Long encodings of small values are fine.
  const HelloOkMsg ok = AsHelloOk(Call(d, Pack().Array(3).Raw("\xcc\x01").I64(1).U64(77).str()));
  EXPECT_EQ(ok.rid, 77u);
  const KthxbaiMsg k =
      AsKthxbai(Call(d, Pack().Array(5).U64(kIcanhaz).I64(5).Str("a").Str("").U64(0).str()));
  EXPECT_EQ(k.rid, 5u);
  const std::string uuid = NewUuid();
  const KvAckMsg ack = AsKvAck(
      Call(d, Pack().Array(6).I64(kKvSet).Bin(uuid).Str("a/k").I64(0).Bin(MpInt(1)).U64(0).str()));
  EXPECT_EQ(ack.uuid, uuid);
  EXPECT_EQ(ack.status, kOk);

  // Negative values, values too wide for the field and type mismatches are malformed.
  const std::string u = NewUuid();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"negative version", Pack().Array(3).U(kHello).I(-1).U(7).str()},
      {"negative request_id", Pack().Array(3).U(kHello).U(1).I(-7).str()},
      {"version over u32", Pack().Array(3).U(kHello).U(1ull << 32).U(7).str()},
      {"version as float", Pack().Array(3).U(kHello).Double(1.0).U(7).str()},
      {"request_id as str", Pack().Array(3).U(kHello).U(1).Str("7").str()},
      {"request_id nil", Pack().Array(3).U(kHello).U(1).Nil().str()},
      {"ICANHAZ subtree as bin", Pack().Array(5).U(kIcanhaz).U(7).Bin("a").Str("").U(0).str()},
      {"ICANHAZ epoch as bin", Pack().Array(5).U(kIcanhaz).U(7).Str("a").Bin("").U(0).str()},
      {"ICANHAZ negative seq", Pack().Array(5).U(kIcanhaz).U(7).Str("a").Str("").I(-1).str()},
      {"KVSET key as bin", Pack().Array(6).U(kKvSet).Bin(u).Bin("a/k").U(0).Bin("\x01").U(0).str()},
      {"KVSET value as str",
       Pack().Array(6).U(kKvSet).Bin(u).Str("a/k").U(0).Str("\x01").U(0).str()},
      {"KVSET op as str",
       Pack().Array(6).U(kKvSet).Bin(u).Str("a/k").Str("0").Bin("\x01").U(0).str()},
      {"KVSET op over u8",
       Pack().Array(6).U(kKvSet).Bin(u).Str("a/k").U(256).Bin("\x01").U(0).str()},
      {"KVSET negative ttl",
       Pack().Array(6).U(kKvSet).Bin(u).Str("a/k").U(0).Bin("\x01").I(-1).str()},
  };
  for (const auto& [what, body] : bad) {
    SCOPED_TRACE(what);
    SendBody(d, body);
    ExpectNoReply(d, what);
  }
  // None of the malformed KVSETs was applied.
  EXPECT_EQ(Set(d, "a/k", MpInt(2)).seq, 2u);
}

TEST_F(ChpWire, CW3_TrailingElementsAreIgnoredMissingOnesAreMalformed) {
  StartServer();
  auto d = Dealer();
  const Body hello =
      Call(d, Pack().Array(6).U(kHello).U(1).U(9).Str("x").Array(2).U(1).U(2).Map(0).str());
  EXPECT_EQ(AsHelloOk(hello).rid, 9u);
  const Body kth = Call(d, Pack().Array(6).U(kIcanhaz).U(10).Str("a").Str("").U(0).Nil().str());
  EXPECT_EQ(AsKthxbai(kth).rid, 10u);
  const std::string uuid = NewUuid();
  const KvAckMsg ack = AsKvAck(Call(
      d, Pack().Array(7).U(kKvSet).Bin(uuid).Str("a/k").U(0).Bin(MpInt(1)).U(0).Str("x").str()));
  EXPECT_EQ(ack.status, kOk);
  EXPECT_EQ(ack.seq, 1u);

  const std::vector<std::pair<std::string, std::string>> short_frames = {
      {"HELLO without request_id", Pack().Array(2).U(kHello).U(1).str()},
      {"bare HELLO", Pack().Array(1).U(kHello).str()},
      {"ICANHAZ without seq", Pack().Array(4).U(kIcanhaz).U(11).Str("a").Str("").str()},
      {"KVSET without ttl",
       Pack().Array(5).U(kKvSet).Bin(NewUuid()).Str("a/k").U(0).Bin(MpInt(2)).str()},
      {"bare KVSET", Pack().Array(1).U(kKvSet).str()},
  };
  for (const auto& [what, body] : short_frames) {
    SCOPED_TRACE(what);
    SendBody(d, body);
    ExpectNoReply(d, what);
  }
  EXPECT_EQ(Set(d, "a/k", MpInt(3)).seq, 2u) << "the short KVSET was not applied";
}

TEST_F(ChpWire, CW4_UnknownAndWrongDirectionCodesAreDroppedWithoutReply) {
  StartServer();
  auto d = Dealer();
  const std::string u = NewUuid();
  std::vector<std::pair<std::string, std::string>> frames;
  for (uint64_t code : {0, 14, 99, 200, 255}) {
    frames.push_back({"code " + std::to_string(code), Pack().Array(3).U(code).U(1).U(7).str()});
  }
  // Codes the server sends, arriving on its command socket.
  frames.push_back(
      {"HELLO_OK", Pack().Array(5).U(kHelloOk).U(7).U(1).Str("id").Str("tcp://x:1").str()});
  const std::string record = Pack().Array(5).Str("k").U(0).Bin(MpInt(1)).U(0).U(1).str();
  frames.push_back({"KVSYNC", Pack().Array(4).U(kKvSync).U(7).Str("a").Array(1).Raw(record).str()});
  frames.push_back(
      {"KTHXBAI", Pack().Array(7).U(kKthxbai).U(7).Str("a").Str("").U(0).U(0).U(0).str()});
  frames.push_back({"DONE", Pack().Array(3).U(kDone).U(7).U(0).str()});
  frames.push_back({"KVACK", Pack().Array(5).U(kKvAck).Bin(u).U(0).Str("").U(0).str()});
  frames.push_back({"ERROR", Pack().Array(4).U(kError).U(7).U(2).Str("x").str()});
  frames.push_back(
      {"KVPUB",
       Pack().Array(6).U(kKvPub).Str("0123456789abcdef").U(1).U(0).Bin(MpInt(1)).U(0).str()});
  frames.push_back({"POSITION", Pack().Array(3).U(kPosition).Str("").U(0).str()});
  frames.push_back({"HUGZ", Pack().Array(5).U(kHugz).U(1).Str("id").U(0).U(0).str()});
  for (const auto& [what, body] : frames) {
    SCOPED_TRACE(what);
    SendBody(d, body);
    ExpectNoReply(d, what);
  }
  // Nothing was applied: the server holds no subtree.
  EXPECT_EQ(AsDone(Call(d, Icanhaz(1, "*"))).subtrees, 0u);
}

TEST_F(ChpWire, CW5_RepliesAreOneFrameAndEnvelopeFramesComeBack) {
  StartServer();
  auto d = Dealer();
  // The DEALER sees the body alone (RecvReply checks one frame).
  EXPECT_EQ(AsHelloOk(Call(d, Hello(1, 1))).rid, 1u);
  // A REQ-style empty delimiter comes back unchanged.
  SendFrames(d, {"", Hello(1, 2)});
  auto frames = RecvFrames(d, kReplyTimeout);
  ASSERT_TRUE(frames);
  ASSERT_EQ(frames->size(), 2u);
  EXPECT_EQ((*frames)[0].size(), 0u);
  EXPECT_EQ(AsHelloOk(Body((*frames)[1].to_string())).rid, 2u);
  // Every frame before the last is envelope.
  SendFrames(d, {"hop-a", "hop-b", Hello(1, 3)});
  frames = RecvFrames(d, kReplyTimeout);
  ASSERT_TRUE(frames);
  ASSERT_EQ(frames->size(), 3u);
  EXPECT_EQ((*frames)[0].to_string(), "hop-a");
  EXPECT_EQ((*frames)[1].to_string(), "hop-b");
  EXPECT_EQ(AsHelloOk(Body((*frames)[2].to_string())).rid, 3u);
  // A multi-frame reply (snapshot) keeps the envelope on every frame.
  ASSERT_EQ(Set(d, "a/k", MpInt(1)).status, kOk);
  SendFrames(d, {"", Icanhaz(4, "a")});
  for (uint64_t code : {kKvSync, kKthxbai}) {
    frames = RecvFrames(d, kReplyTimeout);
    ASSERT_TRUE(frames);
    ASSERT_EQ(frames->size(), 2u);
    EXPECT_EQ((*frames)[0].size(), 0u);
    EXPECT_EQ(Body((*frames)[1].to_string()).code(), code);
  }
}

TEST_F(ChpWire, CW6_PublisherMessagesAreTopicAndBody) {
  StartServer({"--heartbeat-ms", "100"});
  auto d = Dealer();
  auto sub = Sub();
  // TryRecvPub checks two frames and the topic of each message (CW-6).
  const HugzMsg hugz = AsHugz(Subscribe(sub, ""));
  EXPECT_EQ(hugz.version, 1u);
  ASSERT_EQ(Set(d, "a/x/y", MpInt(1)).status, kOk);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.topic, "a/x/y");
  const PositionMsg pos = AsPosition(WaitPub(sub, IsPosition("a")));
  EXPECT_EQ(pos.subtree, "a");
  EXPECT_EQ(pos.seq, 1u);
  size_t seen = 0;
  const auto deadline = Clock::now() + 1s;
  while (Clock::now() < deadline) {
    if (TryRecvPub(sub, 50ms)) ++seen;
  }
  EXPECT_GT(seen, 0u) << "heartbeat traffic";
}

TEST_F(ChpWire, CW7_UuidIs16BytesOpAtMost2) {
  StartServer();
  auto d = Dealer();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"15-byte UUID", KvSet(std::string(15, 'u'), "a/k", kOpSet, MpInt(1))},
      {"17-byte UUID", KvSet(std::string(17, 'u'), "a/k", kOpSet, MpInt(1))},
      {"empty UUID", KvSet("", "a/k", kOpSet, MpInt(1))},
      {"UUID as str", Pack()
                          .Array(6)
                          .U(kKvSet)
                          .Str(std::string(16, 'u'))
                          .Str("a/k")
                          .U(0)
                          .Bin(MpInt(1))
                          .U(0)
                          .str()},
      {"op 3", KvSet(NewUuid(), "a/k", 3, MpInt(1))},
      {"op 255", KvSet(NewUuid(), "a/k", 255, MpInt(1))},
  };
  for (const auto& [what, body] : bad) {
    SCOPED_TRACE(what);
    SendBody(d, body);
    ExpectNoReply(d, what);
  }
  // op 2 is well-formed but reserved to the server: KVACK kMalformed (CS-8).
  EXPECT_EQ(Write(d, "a/k", kOpExpire, "").status, kMalformed);
  EXPECT_EQ(Set(d, "a/k", MpInt(1)).seq, 1u);
}

TEST_F(ChpWire, CW8_OversizedBodiesAndDecoderLimitsAreMalformed) {
  StartServer();
  auto d = Dealer();
  // Body size limit: exactly 16,778,240 bytes decodes (and its value is too large, CV-2);
  // one byte more is malformed.
  const std::string uuid = NewUuid();
  const std::string at_limit = KvSet(uuid, "a/k", kOpSet, ValueOfSize(kMaxBodyBytes - 31));
  ASSERT_EQ(at_limit.size(), kMaxBodyBytes);
  const KvAckMsg ack = AsKvAck(Call(d, at_limit));
  EXPECT_EQ(ack.uuid, uuid);
  EXPECT_EQ(ack.status, kValueTooLarge);
  const std::string over = KvSet(NewUuid(), "a/k", kOpSet, ValueOfSize(kMaxBodyBytes - 30));
  ASSERT_EQ(over.size(), kMaxBodyBytes + 1);
  SendBody(d, over);
  ExpectNoReply(d, "a body over 16,778,240 bytes");

  // Decoding limits on bodies: the body array itself is one level of depth.
  auto hello_with = [](uint64_t rid, const std::string& extra) {
    return Pack().Array(4).U(kHello).U(1).U(rid).Raw(extra).str();
  };
  EXPECT_EQ(AsHelloOk(Call(d, hello_with(1, Nested(15)))).rid, 1u) << "depth 16";
  SendBody(d, hello_with(2, Nested(16)));
  ExpectNoReply(d, "a body of depth 17");
  EXPECT_EQ(AsHelloOk(Call(d, hello_with(3, MapOf(1024)))).rid, 3u);
  SendBody(d, hello_with(4, MapOf(1025)));
  ExpectNoReply(d, "a map of 1,025 pairs");
  {
    Pack big;
    big.Array(1 << 20);
    for (int i = 0; i < (1 << 20); ++i) big.Nil();
    EXPECT_EQ(AsHelloOk(Call(d, hello_with(5, big.str()))).rid, 5u) << "array of 1,048,576";
    Pack bigger;
    bigger.Array((1 << 20) + 1);
    for (int i = 0; i < (1 << 20) + 1; ++i) bigger.Nil();
    SendBody(d, hello_with(6, bigger.str()));
    ExpectNoReply(d, "an array of 1,048,577 elements");
  }
  EXPECT_EQ(AsHelloOk(Call(d, hello_with(7, Pack().Ext(3, std::string(65'535, 'e')).str()))).rid,
            7u);
  SendBody(d, hello_with(8, Pack().Ext(3, std::string(65'537, 'e')).str()));
  ExpectNoReply(d, "an ext of 65,537 bytes");
  // (Values breaking the limits get kBadValue: V1_*.)
}

TEST_F(ChpWire, CW9_MalformedFramesAreDroppedAndOtherPeersKeepBeingServed) {
  StartServer();
  auto bad = Dealer();
  auto good = Dealer();
  auto sub = Sub();
  Subscribe(sub, "g/");
  const std::string kvset = KvSet(NewUuid(), "g/bad", kOpSet, MpInt(1));
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"garbage bytes", {std::string("\xde\xad\xbe\xef\x00\xff", 6)}},
      {"empty frame", {""}},
      {"msgpack non-array", {MpStr("not an array")}},
      {"unknown command 99", {Pack().Array(3).U(99).U(1).U(2).str()}},
      {"truncated KVSET", {kvset.substr(0, kvset.size() - 3)}},
      {"3-frame message of garbage", {"\xff\xff", "\x00", "\xc1"}},
      {"3-frame message ending in a truncated KVSET", {"x", "y", kvset.substr(0, 10)}},
  };
  uint64_t seq = 0;
  for (const auto& [what, frames] : cases) {
    SCOPED_TRACE(what);
    SendFrames(bad, frames);
    // Another peer is served: commands and the publisher work.
    EXPECT_EQ(AsHelloOk(Call(good, Hello(1, 1))).rid, 1u);
    const KvAckMsg ack = Set(good, "g/ok", MpInt(static_cast<int64_t>(seq)));
    EXPECT_EQ(ack.seq, ++seq);
    const KvPubMsg pub = NextKvPub(sub);
    EXPECT_EQ(pub.topic, "g/ok") << "nothing from the malformed frame was applied";
    EXPECT_EQ(pub.seq, seq);
    // The sender itself is not disconnected and got no reply.
    ExpectNoReply(bad, what);
  }
}

TEST_F(ChpWire, CW10_WellFormedInvalidContentIsAnswered) {
  StartServer();
  auto d = Dealer();
  EXPECT_EQ(Set(d, "no-slash", MpInt(1)).status, kBadKey);
  const ErrorMsg e = AsError(Call(d, Icanhaz(3, "$bad")));
  EXPECT_EQ(e.rid, 3u);
  EXPECT_EQ(e.code, kBadKey);
}

TEST_F(ChpWire, CW11_ServerSpeaksOnlyTheVersionAskedFor) {
  StartServer();
  auto d = Dealer();
  EXPECT_EQ(AsHelloOk(Call(d, Hello(1, 1))).version, 1u);
  const Body b = Call(d, Hello(2, 2));
  EXPECT_EQ(b.code(), kError) << "a v2 HELLO must not be answered with HELLO_OK";
  EXPECT_EQ(AsError(b).code, kBadVersion);
  auto sub = Sub();
  EXPECT_EQ(AsHugz(Subscribe(sub, "$HUGZ")).version, 1u);
}

}  // namespace
}  // namespace chp_wire_test
