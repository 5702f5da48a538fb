// Raw-wire tests of what the CHP server offers a cluster (docs/protocol/chp.md, issue 11): the
// UUID window travelling with snapshots and KVPUBs to a promoted backup (CS-31), conditional
// writes (CS-32) and terms on the publisher (CS-33). The servers are chp::Server objects polled
// by the test thread (so Server::Adopt can be called between polls, as a promoted backup's owner
// does); the peers are raw DEALER and SUB sockets speaking the wire format packed and read by
// chp_wire_support (not our codec). Every wait is a condition with a deadline.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "chp/agent.h"
#include "chp/loop.h"
#include "chp/server.h"
#include "chp_wire_support.h"

namespace chp_wire_test {
namespace {

using chorus::chp::Server;
using chorus::chp::ServerOptions;
namespace chp = chorus::chp;

constexpr uint64_t kConflict = 12;
const std::string kEpoch = "e1e1e1e1e1e1e1e1";

class ChpServerCluster : public ::testing::Test {
 protected:
  std::unique_ptr<Server> Make(ServerOptions o = {}) {
    o.store.new_epoch = [] { return kEpoch; };
    auto s = Server::Create(ctx_, std::move(o));
    EXPECT_TRUE(s.ok()) << s.error().message();
    return s.ok() ? std::move(*s) : nullptr;
  }
  zmq::socket_t Peer(Server& s) {
    zmq::socket_t d(ctx_, zmq::socket_type::dealer);
    d.set(zmq::sockopt::linger, 0);
    d.connect(s.command_endpoint());
    return d;
  }
  // Polls every server until `pred` holds (deadline 20 s).
  bool Until(const std::function<bool()>& pred) {
    const auto end = Clock::now() + 20s;
    while (Clock::now() < end) {
      for (Server* s : servers_) s->RunOnce(2ms);
      if (pred()) return true;
    }
    return false;
  }
  std::optional<Body> NextReply(zmq::socket_t& d) {
    std::optional<Body> got;
    EXPECT_TRUE(Until([&] { return (got = TryRecvReply(d, 0ms)).has_value(); }));
    return got;
  }
  // Sends a KVSET body and returns its KVACK body.
  Body Ack(zmq::socket_t& d, const std::string& body) {
    SendBody(d, body);
    std::optional<Body> b = NextReply(d);
    if (!b) WireFail("no KVACK");
    b->Expect(kKvAck, 5);
    return std::move(*b);
  }
  // A subscriber on `s` that has seen the welcome POSITION of `subtree` (CS-13).
  zmq::socket_t Subscriber(Server& s, const std::string& subtree, std::optional<PubMsg>* welcome) {
    zmq::socket_t sub(ctx_, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.connect(s.publisher_endpoint());
    sub.set(zmq::sockopt::subscribe, subtree + "/");
    EXPECT_TRUE(Until([&] {
      auto m = TryRecvPub(sub, 0ms);
      if (m && m->code() == kPosition) *welcome = std::move(m);
      return welcome->has_value();
    }));
    return sub;
  }
  // The next KVPUB on `sub`, polling the servers meanwhile.
  std::optional<PubMsg> NextKvPub(zmq::socket_t& sub) {
    std::optional<PubMsg> got;
    EXPECT_TRUE(Until([&] {
      while (auto m = TryRecvPub(sub, 0ms)) {
        if (m->code() == kKvPub) {
          got = std::move(m);
          return true;
        }
      }
      return false;
    }));
    return got;
  }
  // A record as read from a KVSYNC, with its element 5 (the UUID, CS-31) when present.
  struct RawRec {
    Rec rec;
    std::optional<std::string> uuid;
  };
  // Sends an ICANHAZ and reads one subtree's reply up to its KTHXBAI.
  std::pair<std::vector<RawRec>, std::optional<Body>> Sync(zmq::socket_t& d,
                                                           const std::string& body) {
    SendBody(d, body);
    std::vector<RawRec> recs;
    std::optional<Body> end;
    EXPECT_TRUE(Until([&] {
      while (auto b = TryRecvReply(d, 0ms)) {
        if (b->code() == kKvSync) {
          const msgpack::object& list = b->At(3);
          for (uint32_t i = 0; i < list.via.array.size; ++i) {
            const msgpack::object& r = list.via.array.ptr[i];
            RawRec rr{AsRecord(r), std::nullopt};
            if (r.via.array.size > 5) rr.uuid = AsB(Item(r, 5, "record"), "record uuid");
            recs.push_back(std::move(rr));
          }
        } else if (b->code() == kKthxbai) {
          end = std::move(b);
        }
      }
      return end.has_value();
    }));
    return {std::move(recs), std::move(end)};
  }

  zmq::context_t ctx_;
  std::vector<Server*> servers_;
};

size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Distinct 16-byte UUIDs (CW-7).
std::string Uid(uint64_t n) {
  std::string u(16, '\x5a');
  std::memcpy(u.data(), &n, sizeof n);
  return u;
}

chp::Uuid ToUuid(const std::string& bytes) {
  chp::Uuid u{};
  std::memcpy(u.data(), bytes.data(), std::min(bytes.size(), u.size()));
  return u;
}

// CS-31: a KVSET applied on the primary, the primary's state taken by a backup (a snapshot with
// its window, a KVPUB with its UUID) and adopted by another server (a promoted backup): the same
// KVSETs retried to the promoted server are answered with their first answers and not applied
// twice, even the oldest, whose retry would overwrite a newer value. An entry adopted older than
// the window is not remembered (the check can fail).
TEST_F(ChpServerCluster, CS31_PromotedBackupAppliesARetriedKvSetOnce) {
  auto primary = Make();
  ServerOptions bo;
  bo.dedup_window_ms = 10s;
  auto backup = Make(bo);
  ASSERT_TRUE(primary && backup);
  servers_ = {primary.get(), backup.get()};
  zmq::socket_t client = Peer(*primary);
  const std::string u1 = Uid(1), u2 = Uid(2), u3 = Uid(3), u4 = Uid(4), u5 = Uid(5);
  EXPECT_EQ(Ack(client, KvSet(u1, "s/x", kOpSet, MpInt(1))).U(4), 1u);
  EXPECT_EQ(Ack(client, KvSet(u2, "s/y", kOpSet, MpInt(2))).U(4), 2u);

  // The backup's snapshot: KTHXBAI element 9 holds the window [uuid, seq, age_ms], oldest first.
  zmq::socket_t link = Peer(*primary);
  std::optional<PubMsg> welcome;
  zmq::socket_t sub = Subscriber(*primary, "s", &welcome);
  auto [snap, end] = Sync(link, Icanhaz(1, "s"));
  ASSERT_TRUE(end.has_value());
  ASSERT_GE(end->size(), 10u) << "a snapshot KTHXBAI carries the window (CS-31)";
  const msgpack::object& win = end->At(9);
  ASSERT_EQ(win.type, msgpack::type::ARRAY);
  ASSERT_EQ(win.via.array.size, 2u);
  std::vector<chp::WindowEntry> window;
  for (uint32_t i = 0; i < win.via.array.size; ++i) {
    const msgpack::object& w = win.via.array.ptr[i];
    window.push_back({ToUuid(AsB(Item(w, 0, "window"), "uuid")), AsU(Item(w, 1, "window"), "seq"),
                      AsU(Item(w, 2, "window"), "age")});
  }
  EXPECT_EQ(window[0].uuid, ToUuid(u1));
  EXPECT_EQ(window[0].seq, 1u);
  EXPECT_EQ(window[1].uuid, ToUuid(u2));
  EXPECT_EQ(window[1].seq, 2u);
  EXPECT_LT(window[0].age_ms, 10'000u);
  std::vector<chp::Record> copy;
  for (const RawRec& h : snap) {
    EXPECT_FALSE(h.uuid.has_value()) << "snapshot records are entries, without a UUID";
    copy.push_back({h.rec.key, chp::Op::kSet, h.rec.value, h.rec.ttl, h.rec.seq});
  }
  ASSERT_EQ(copy.size(), 2u);

  // A later change: its KVPUB carries the UUID (element 6) and the term (element 7).
  EXPECT_EQ(Ack(client, KvSet(u3, "s/x", kOpSet, MpInt(3))).U(4), 3u);
  std::optional<PubMsg> pub = NextKvPub(sub);
  ASSERT_TRUE(pub.has_value());
  ASSERT_GE(pub->body.size(), 8u);
  EXPECT_EQ(pub->body.B(6), u3);
  EXPECT_EQ(pub->body.U(7), 0u);
  // And so does its record in a resume reply (record element 5).
  auto [resumed, rend] = Sync(link, Icanhaz(2, "s", kEpoch, 2));
  ASSERT_TRUE(rend.has_value());
  EXPECT_EQ(AsKthxbai(*rend).mode, kModeResume);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].uuid, u3);
  for (auto& r : copy) {
    if (r.key == "x") r = {"x", chp::Op::kSet, MpInt(3), 0, 3};
  }
  window.push_back({ToUuid(u3), 3, 0});
  // Adopted with an entry older than the window: not remembered.
  window.push_back({ToUuid(u5), 1, 20'000});

  // Promotion: the backup's server adopts the copy at (E, 3) under term 1.
  auto adopted = backup->Adopt("s", {kEpoch, 3}, 0, 1, copy, window);
  ASSERT_TRUE(adopted.ok()) << adopted.error().message();
  zmq::socket_t retry = Peer(*backup);
  // u1 again: would set x back to 1 over the newer 3 if applied twice.
  const Body a1 = Ack(retry, KvSet(u1, "s/x", kOpSet, MpInt(1)));
  EXPECT_EQ(a1.U(2), kOk);
  EXPECT_EQ(a1.S(3), kEpoch);
  EXPECT_EQ(a1.U(4), 1u) << "the first answer, from the adopted window";
  EXPECT_EQ(Ack(retry, KvSet(u3, "s/x", kOpSet, MpInt(3))).U(4), 3u);
  EXPECT_EQ(backup->stats().duplicates, 2u);
  EXPECT_EQ(backup->stats().changes, 0u);
  const chp::Subtree* st = backup->store().Find("s");
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->seq, 3u);
  EXPECT_EQ(st->entries.at("x").value, MpInt(3));
  // A new update is applied; the one adopted past its window is new too.
  EXPECT_EQ(Ack(retry, KvSet(u4, "s/z", kOpSet, MpInt(4))).U(4), 4u);
  EXPECT_EQ(Ack(retry, KvSet(u5, "s/w", kOpSet, MpInt(5))).U(4), 5u);
  // The promoted server's own snapshot passes the window on (a second failover).
  zmq::socket_t link2 = Peer(*backup);
  auto [snap2, end2] = Sync(link2, Icanhaz(3, "s"));
  ASSERT_TRUE(end2.has_value());
  ASSERT_GE(end2->size(), 10u);
  EXPECT_EQ(end2->At(9).via.array.size, 5u) << "u1, u2, u3 adopted; u4, u5 accepted here";
}

// CR-35 with CS-31, the path of a failover with a real replica: a backup's SubtreeReplica keeps
// the window of its snapshot and the UUIDs of the KVPUBs it applies; its Copy (position, term,
// entries, window) goes to Server::Adopt on the promoted server, which answers the retried KVSETs
// from that window and does not apply them again (the older one would overwrite a newer value).
TEST_F(ChpServerCluster, CR35_ReplicaCopyCarriesTheUuidWindowToAdopt) {
  auto primary = Make();
  auto promoted = Make();
  ASSERT_TRUE(primary && promoted);
  servers_ = {primary.get(), promoted.get()};
  zmq::socket_t client = Peer(*primary);
  const std::string u1 = Uid(21), u2 = Uid(22), u3 = Uid(23);
  EXPECT_EQ(Ack(client, KvSet(u1, "s/x", kOpSet, MpInt(1))).U(4), 1u);  // in the snapshot
  chp::AgentOptions ao;
  ao.endpoints = {primary->command_endpoint()};
  chp::ReplicaAgent backup(ctx_, ao);
  ASSERT_TRUE(backup.Follow("s").ok());
  ASSERT_TRUE(Until([&] {
    backup.RunOnce(1ms);
    return backup.AllLive();
  }));
  EXPECT_EQ(Ack(client, KvSet(u2, "s/x", kOpSet, MpInt(2))).U(4), 2u);  // a KVPUB
  ASSERT_TRUE(Until([&] {
    backup.RunOnce(1ms);
    return backup.Find("s")->position().seq == 2;
  }));
  const chp::SubtreeCopy copy = backup.Find("s")->Copy(chp::MonotonicMs());
  ASSERT_EQ(copy.window.size(), 2u);
  EXPECT_EQ(copy.window[0].uuid, ToUuid(u1));
  EXPECT_EQ(copy.window[1].uuid, ToUuid(u2));

  auto adopted = promoted->Adopt("s", copy, copy.term + 1);
  ASSERT_TRUE(adopted.ok()) << adopted.error().message();
  EXPECT_EQ(*adopted, (chp::Position{kEpoch, 2}));
  zmq::socket_t retry = Peer(*promoted);
  const Body a1 = Ack(retry, KvSet(u1, "s/x", kOpSet, MpInt(1)));
  EXPECT_EQ(a1.U(2), kOk);
  EXPECT_EQ(a1.U(4), 1u) << "the first answer, from the window the replica kept";
  EXPECT_EQ(Ack(retry, KvSet(u2, "s/x", kOpSet, MpInt(2))).U(4), 2u);
  EXPECT_EQ(promoted->stats().duplicates, 2u);
  EXPECT_EQ(promoted->stats().changes, 0u);
  EXPECT_EQ(promoted->store().Find("s")->entries.at("x").value, MpInt(2));
  EXPECT_EQ(Ack(retry, KvSet(u3, "s/y", kOpSet, MpInt(3))).U(4), 3u) << "a new one applies";
}

// CS-32: a conditional KVSET (element 6, the key's expected seq; 0: absent) is applied only when
// the key's seq matches, and is otherwise refused with kConflict, the key's seq and the position,
// without a sequence. Per key: writes to other keys do not make it fail.
TEST_F(ChpServerCluster, CS32_ConditionalKvSetIsRefusedWhenTheKeySeqDiffers) {
  auto server = Make();
  ASSERT_TRUE(server);
  servers_ = {server.get()};
  zmq::socket_t d = Peer(*server);
  uint64_t n = 10;
  auto cond = [&](std::string_view key, uint64_t op, std::string_view value, uint64_t expected) {
    return Ack(
        d,
        Pack().Array(7).U(kKvSet).Bin(Uid(++n)).Str(key).U(op).Bin(value).U(0).U(expected).str());
  };
  // Create-if-absent.
  EXPECT_EQ(cond("c/x", kOpSet, MpInt(1), 0).U(2), kOk);
  const Body refused = cond("c/x", kOpSet, MpInt(2), 0);
  EXPECT_EQ(refused.U(2), kConflict);
  ASSERT_GE(refused.size(), 6u) << "a kConflict KVACK carries the key's seq (element 5)";
  EXPECT_EQ(refused.U(5), 1u);
  EXPECT_EQ(refused.S(3), kEpoch);
  EXPECT_EQ(refused.U(4), 1u) << "the current position; no sequence taken";
  // Compare-and-set on the key's seq.
  EXPECT_EQ(cond("c/x", kOpSet, MpInt(2), 7).U(2), kConflict);
  const std::string uuid = Uid(999);
  const std::string cas =
      Pack().Array(7).U(kKvSet).Bin(uuid).Str("c/x").U(kOpSet).Bin(MpInt(2)).U(0).U(1).str();
  const Body ok = Ack(d, cas);
  EXPECT_EQ(ok.U(2), kOk);
  EXPECT_EQ(ok.U(4), 2u);
  // Its retry is answered from the window (CS-10), not refused as a conflict with itself.
  const Body again = Ack(d, cas);
  EXPECT_EQ(again.U(2), kOk);
  EXPECT_EQ(again.U(4), 2u);
  // Another key of the subtree moves the subtree's seq, not x's.
  EXPECT_EQ(Ack(d, KvSet(Uid(++n), "c/other", kOpSet, MpInt(0))).U(4), 3u);
  EXPECT_EQ(cond("c/x", kOpSet, MpInt(3), 2).U(4), 4u);
  // A conditional delete, then the key is absent (seq 0).
  EXPECT_EQ(cond("c/x", kOpDelete, "", 3).U(2), kConflict);
  EXPECT_EQ(cond("c/x", kOpDelete, "", 4).U(4), 5u);
  EXPECT_EQ(cond("c/x", kOpSet, MpInt(4), 4).U(5), 0u) << "absent: the key's seq is 0";
  EXPECT_EQ(cond("c/x", kOpSet, MpInt(4), 0).U(4), 6u);
  // Element 6 nil: unconditional (CW-3).
  EXPECT_EQ(Ack(d, Pack()
                       .Array(7)
                       .U(kKvSet)
                       .Bin(Uid(++n))
                       .Str("c/x")
                       .U(kOpSet)
                       .Bin(MpInt(5))
                       .U(0)
                       .Nil()
                       .str())
                .U(4),
            7u);
  // The checks of CS-8 come first: a bad value is kBadValue even when the seq is wrong.
  EXPECT_EQ(cond("c/x", kOpSet, "\xc1", 99).U(2), kBadValue);
  EXPECT_EQ(server->stats().conflicts, 4u);
  EXPECT_EQ(server->store().PositionOf("c").seq, 7u);
}

// CS-33: KVPUB and POSITION carry the subtree's term (and POSITION its term_start), so a live
// replica sees a promotion. A subtree created here is term 0 from seq 1; an adopted one carries
// its new term, and a replica off its line that asks with its old term gets a snapshot (CS-30).
TEST_F(ChpServerCluster, CS33_KvPubAndPositionCarryTheTerm) {
  auto server = Make();
  ASSERT_TRUE(server);
  servers_ = {server.get()};
  zmq::socket_t d = Peer(*server);
  std::optional<PubMsg> welcome_n;
  zmq::socket_t sub_n = Subscriber(*server, "n", &welcome_n);
  ASSERT_GE(welcome_n->body.size(), 5u);
  EXPECT_EQ(welcome_n->body.U(3), 0u) << "unborn: term 0";
  EXPECT_EQ(welcome_n->body.U(4), 0u);
  EXPECT_EQ(Ack(d, KvSet(Uid(1), "n/k", kOpSet, MpInt(1))).U(4), 1u);
  std::optional<PubMsg> p = NextKvPub(sub_n);
  ASSERT_TRUE(p && p->body.size() >= 8u);
  EXPECT_EQ(p->body.U(7), 0u);

  std::vector<chp::Record> copy = {{"a", chp::Op::kSet, MpInt(1), 0, 2}};
  ASSERT_TRUE(server->Adopt("s", {kEpoch, 4}, 2, 7, copy).ok());
  std::optional<PubMsg> welcome;
  zmq::socket_t sub = Subscriber(*server, "s", &welcome);
  ASSERT_GE(welcome->body.size(), 5u);
  EXPECT_EQ(welcome->body.U(2), 4u);
  EXPECT_EQ(welcome->body.U(3), 7u) << "POSITION element 3: the term";
  EXPECT_EQ(welcome->body.U(4), 5u) << "POSITION element 4: the seq the term began at";
  ASSERT_TRUE(server->Set("s/b", MpInt(2)).ok());
  p = NextKvPub(sub);
  ASSERT_TRUE(p && p->body.size() >= 8u);
  EXPECT_EQ(p->body.U(2), 5u);
  EXPECT_EQ(p->body.At(6).type, msgpack::type::NIL) << "a local write has no UUID";
  EXPECT_EQ(p->body.U(7), 7u) << "KVPUB element 7: the term";
  // A replica of term 2 that applied the old primary's seq 5 (lost) sees (E, 5, term 7): same
  // seq, other term. Asking with its term tells it apart: snapshot. One at seq 4: resume.
  auto [recs, end] = Sync(d, Pack().Array(6).U(kIcanhaz).U(1).Str("s").Str(kEpoch).U(5).U(2).str());
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(AsKthxbai(*end).mode, kModeSnapshot);
  auto [recs2, end2] =
      Sync(d, Pack().Array(6).U(kIcanhaz).U(2).Str("s").Str(kEpoch).U(4).U(2).str());
  ASSERT_TRUE(end2.has_value());
  EXPECT_EQ(AsKthxbai(*end2).mode, kModeResume);
  EXPECT_EQ(recs2.size(), 1u);
}

// CS-34: a `*` reply is streamed: while its peer does not read, the server queues at most
// stream_chunk_bytes plus one subtree's snapshot for it, not the whole reply (6.4 MiB here). A
// subtree dropped before its turn gets no KTHXBAI, DONE counts those sent, and a later request
// of the same peer is answered between two subtrees, before the DONE.
TEST_F(ChpServerCluster, CS34_StarReplyIsStreamedWithinTheChunkBound) {
  ServerOptions o;
  o.stream_chunk_bytes = 64 * 1024;
  auto server = Make(o);
  ASSERT_TRUE(server);
  servers_ = {server.get()};
  constexpr int kSubtrees = 200;
  for (int i = 0; i < kSubtrees; ++i) {
    for (int j = 0; j < 4; ++j) {
      const std::string key = "t" + std::to_string(i) + "/k" + std::to_string(j);
      ASSERT_TRUE(server->Set(key, ValueOfSize(8192)).ok());
    }
  }
  zmq::socket_t d(ctx_, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.set(zmq::sockopt::rcvhwm, 1);
  d.set(zmq::sockopt::rcvbuf, 4096);
  d.connect(server->command_endpoint());
  SendBody(d, Icanhaz(1, "*"));
  // Not reading: the stream stalls once the peer's queue is past the chunk bound.
  ASSERT_TRUE(Until([&] { return server->stats().pending_bytes > o.stream_chunk_bytes; }));
  for (int i = 0; i < 50; ++i) server->RunOnce(1ms);  // it stays stalled while nothing is read
  EXPECT_EQ(server->active_streams(), 1u);
  const size_t one_subtree = 4 * (8192 + 64) + 1024;
  EXPECT_LE(server->stats().peer_pending_peak, o.stream_chunk_bytes + one_subtree + 64 * 1024)
      << "queued at most the chunk bound plus one subtree's reply";
  // Half of the subtrees dropped now: those not yet sent get no KTHXBAI.
  for (int i = kSubtrees / 2; i < kSubtrees; ++i) server->Drop("t" + std::to_string(i));
  SendBody(d, Hello(1, 77));
  std::map<std::string, uint64_t> counts;
  std::optional<uint64_t> done;
  size_t frames = 0, hello_at = 0, done_at = 0;
  ASSERT_TRUE(Until([&] {
    while (auto b = TryRecvReply(d, 0ms)) {
      ++frames;
      if (b->code() == kKthxbai) {
        const KthxbaiMsg k = AsKthxbai(*b);
        EXPECT_EQ(k.rid, 1u);
        counts[k.subtree] = k.count;
      } else if (b->code() == kHelloOk) {
        hello_at = frames;
      } else if (b->code() == kDone) {
        done = AsDone(*b).subtrees;
        done_at = frames;
      }
    }
    return done.has_value();
  }));
  EXPECT_EQ(*done, counts.size());
  for (int i = 0; i < kSubtrees / 2; ++i) {
    EXPECT_EQ(counts["t" + std::to_string(i)], 4u) << i;
  }
  EXPECT_LT(counts.size(), static_cast<size_t>(kSubtrees)) << "dropped subtrees were skipped";
  EXPECT_GT(hello_at, 0u);
  EXPECT_LT(hello_at, done_at) << "answered between two subtrees of the stream";
  EXPECT_EQ(server->active_streams(), 0u);
}

// CS-35: the XPUB SNDHWM comes from a byte budget over the largest message, so a subscriber that
// does not read pins at most publisher_max_bytes in the server: 128 MiB published to it grow the
// process by far less; with the byte bound off (and no count bound) the same grows it by most.
TEST_F(ChpServerCluster, CS35_PublisherPipeIsBoundedInBytes) {
  {
    auto defaults = Make();
    ASSERT_TRUE(defaults);
    EXPECT_EQ(defaults->publisher_hwm(), 4091) << "4 GiB / (1 MiB + 1,088)";
  }
  auto run = [&](size_t max_bytes) -> size_t {
    ServerOptions o;
    o.max_value_bytes = 64 * 1024;
    o.publisher_max_bytes = max_bytes;
    o.publisher_hwm = 1'000'000;
    auto server = Make(o);
    if (!server) return 0;
    servers_ = {server.get()};
    if (max_bytes != 0) {
      EXPECT_EQ(server->publisher_hwm(), static_cast<int>(max_bytes / (64 * 1024 + 1088)));
    }
    zmq::socket_t sub(ctx_, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvhwm, 1);
    sub.set(zmq::sockopt::rcvbuf, 4096);
    sub.connect(server->publisher_endpoint());
    sub.set(zmq::sockopt::subscribe, "p/");
    std::optional<PubMsg> welcome;
    EXPECT_TRUE(Until([&] { return (welcome = TryRecvPub(sub, 0ms)).has_value(); }));
    const size_t before = ResidentBytes();
    const std::string value = ValueOfSize(64 * 1024 - 16);
    for (int i = 0; i < 2048; ++i) {  // 128 MiB to one key: the store holds one value
      EXPECT_TRUE(server->Set("p/k", value).ok());
      if (i % 64 == 0) server->RunOnce(0ms);
    }
    for (int i = 0; i < 20; ++i) server->RunOnce(1ms);
    const size_t after = ResidentBytes();
    servers_.clear();
    return after > before ? after - before : 0;
  };
  const size_t bounded = run(size_t{4} << 20);
  EXPECT_LT(bounded, size_t{40} << 20) << "4 MiB budget: " << bounded << " bytes grown";
  const size_t unbounded = run(0);
  EXPECT_GT(unbounded, size_t{64} << 20) << "without the bound the pipe holds most of 128 MiB";
}

}  // namespace
}  // namespace chp_wire_test
