// Writes seed inputs for the CHP fuzz targets: valid encoded frames of every message type for
// chp_frame_fuzz, and event sequences (see chp_replica_fuzz.cc) for chp_replica_fuzz.
//   chp_fuzz_seeds OUT_DIR   ->  OUT_DIR/chp_frame_fuzz/*.bin, OUT_DIR/chp_replica_fuzz/*.bin
// The checked-in corpus (tests/fuzz/corpus/) was produced by this program.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "chp/codec.h"

namespace {

using namespace chorus::chp;
namespace fs = std::filesystem;

bool Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  std::ofstream f(dir / (name + ".bin"), std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

// chp_frame_fuzz splits its input as [topic length][topic][body] for DecodePub.
std::string PubInput(const std::string& topic, const std::string& body) {
  return std::string(1, static_cast<char>(topic.size())) + topic + body;
}

const Uuid kUuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
const std::string kValue =
    "\x93\x01\xa3"
    "abc\xc3";  // msgpack [1, "abc", true]

bool FrameSeeds(const fs::path& dir) {
  bool ok = true;
  ok &= Write(dir, "hello", Encode(Hello{kProtocolVersion, 1}));
  ok &= Write(dir, "icanhaz_snapshot", Encode(Icanhaz{2, "orders", {}}));
  ok &= Write(dir, "icanhaz_resume", Encode(Icanhaz{3, "orders", {"00112233aabbccdd", 41}}));
  ok &= Write(dir, "icanhaz_all", Encode(Icanhaz{4, kAllSubtrees, {}}));
  ok &= Write(dir, "kvset", Encode(KvSet{kUuid, "orders/o-1", Op::kSet, kValue, 0}));
  ok &= Write(dir, "kvset_ttl", Encode(KvSet{kUuid, "orders/o/2", Op::kSet, kValue, 60000}));
  ok &= Write(dir, "kvset_delete", Encode(KvSet{kUuid, "orders/o-1", Op::kDelete, "", 0}));
  // CR-30 (ICANHAZ with a term) and CR-29 / CS-27 (APPLIED).
  ok &= Write(dir, "icanhaz_term", Encode(Icanhaz{6, "orders", {"00112233aabbccdd", 41}, 7}));
  ok &= Write(dir, "applied",
              Encode(Applied{"backup-1", {{"orders", {"00112233aabbccdd", 41}}, {"x", {"", 0}}}}));
  ok &=
      Write(dir, "hello_ok", Encode(HelloOk{1, kProtocolVersion, "srv-1", "tcp://127.0.0.1:5556"}));
  ok &= Write(dir, "kvsync",
              Encode(KvSync{2,
                            "orders",
                            {Record{"o-1", Op::kSet, kValue, 0, 7},
                             Record{"o-2", Op::kSet, std::string(300, '\xc0'), 5000, 9}}}));
  ok &= Write(dir, "kthxbai_snapshot",
              Encode(Kthxbai{2, "orders", {"00112233aabbccdd", 9}, 2, SyncMode::kSnapshot}));
  ok &= Write(dir, "kthxbai_resume",
              Encode(Kthxbai{3, "orders", {"00112233aabbccdd", 42}, 1, SyncMode::kResume}));
  ok &= Write(dir, "kthxbai_term",
              Encode(Kthxbai{3, "orders", {"00112233aabbccdd", 42}, 1, SyncMode::kResume, 7, 40}));
  ok &= Write(dir, "done", Encode(Done{4, 3}));
  ok &= Write(dir, "kvack", Encode(KvAck{kUuid, 0, {"00112233aabbccdd", 10}}));
  ok &= Write(dir, "error", Encode(Error{5, 2, "invalid subtree"}));
  const KvPub pub{"orders", "00112233aabbccdd", Record{"o-1", Op::kSet, kValue, 0, 10}};
  ok &= Write(dir, "kvpub", PubInput(Topic(pub), Encode(pub)));
  const KvPub del{"orders", "00112233aabbccdd", Record{"o/2", Op::kDelete, "", 0, 11}};
  ok &= Write(dir, "kvpub_delete", PubInput(Topic(del), Encode(del)));
  const KvPub big{"orders", "00112233aabbccdd",
                  Record{"o-3", Op::kSet, std::string(70000, '\x01'), 1000, 1ull << 40}};
  ok &= Write(dir, "kvpub_big", PubInput(Topic(big), Encode(big)));
  const PositionMsg pos{"orders", {"00112233aabbccdd", 11}};
  ok &= Write(dir, "position", PubInput(Topic(pos), Encode(pos)));
  ok &= Write(dir, "hugz",
              PubInput(kHugzTopic, Encode(Hugz{kProtocolVersion, "srv-1", 1700000000000, 3})));
  // Issue 11: conditional KVSET and kConflict (CS-32), the UUID window in KTHXBAI and the UUID in
  // resume records and KVPUB (CS-31), terms on KVPUB and POSITION (CS-33).
  KvSet cond{kUuid, "orders/o-1", Op::kSet, kValue, 0};
  cond.expected_seq = 41;
  ok &= Write(dir, "kvset_conditional", Encode(cond));
  cond.expected_seq = 0;
  ok &= Write(dir, "kvset_if_absent", Encode(cond));
  KvAck conflict{kUuid, 12, {"00112233aabbccdd", 50}};
  conflict.key_seq = 41;
  ok &= Write(dir, "kvack_conflict", Encode(conflict));
  Kthxbai window{2, "orders", {"00112233aabbccdd", 9}, 2, SyncMode::kSnapshot, 3, 5};
  window.window = {WindowEntry{kUuid, 8, 120}, WindowEntry{{}, 9, 0}};
  ok &= Write(dir, "kthxbai_window", Encode(window));
  Record resumed{"o-1", Op::kSet, kValue, 0, 10};
  resumed.uuid = kUuid;
  ok &= Write(dir, "kvsync_resume_uuid", Encode(KvSync{3, "orders", {resumed}}));
  KvPub tagged{"orders", "00112233aabbccdd", resumed};
  tagged.term = 7;
  ok &= Write(dir, "kvpub_uuid_term", PubInput(Topic(tagged), Encode(tagged)));
  PositionMsg termed{"orders", {"00112233aabbccdd", 11}};
  termed.term = 7;
  termed.term_start = 9;
  ok &= Write(dir, "position_term", PubInput(Topic(termed), Encode(termed)));
  ok &= Write(dir, "value_map",
              "\x82\xa1"
              "a\x01\xa1"
              "b\xc4\x02xy");
  return ok;
}

// Event bytes for chp_replica_fuzz: kind = b % 10, parameter p = b / 10.
std::string Ev(unsigned kind, unsigned p = 0) {
  return std::string(1, static_cast<char>(kind + 10 * p));
}
std::string B(uint8_t b) {
  return std::string(1, static_cast<char>(b));
}
constexpr uint8_t kSeqPlus(int d) {
  return static_cast<uint8_t>(64 + d);
}  // NearSeq: byte % 128 - 64

bool ReplicaSeeds(const fs::path& dir) {
  bool ok = true;
  // Subscribe, request, snapshot of two records (epoch e1, seq 2), live updates 3 and 4.
  const std::string snapshot = Ev(0) + Ev(1) + Ev(6) + B(2) + B(0) + B(kSeqPlus(1)) + B(1) +
                               B(kSeqPlus(2)) + Ev(7, 1) + B(kSeqPlus(2)) + B(0x80);
  const std::string live = Ev(4, 1) + B(2) + B(kSeqPlus(1)) + Ev(4, 1) + B(3) + B(kSeqPlus(1));
  ok &= Write(dir, "snapshot_then_live", snapshot + live);
  // A gap, then a resume of the missing records.
  ok &= Write(dir, "gap_then_resume",
              snapshot + Ev(4, 1) + B(2) + B(kSeqPlus(2)) + Ev(1) + Ev(6) + B(2) + B(0) +
                  B(kSeqPlus(1)) + B(1) + B(kSeqPlus(2)) + Ev(7, 5) + B(kSeqPlus(2)) + B(0x80));
  // Updates queued while syncing, a position ahead, an epoch change, a resubscribe.
  ok &= Write(dir, "queue_position_epoch",
              Ev(0) + Ev(1) + Ev(4, 1) + B(1) + B(kSeqPlus(1)) + Ev(4, 1) + B(2) + B(kSeqPlus(2)) +
                  Ev(7, 1) + B(kSeqPlus(0)) + B(0x80) + Ev(5, 1) + B(kSeqPlus(5)) + Ev(5, 2) +
                  B(kSeqPlus(0)) + Ev(3) + Ev(0) + Ev(2));
  // An unborn subtree: empty snapshot, then the first change.
  ok &=
      Write(dir, "unborn",
            Ev(0) + Ev(1) + Ev(7, 0) + B(kSeqPlus(0)) + B(0x80) + Ev(4, 1) + B(0) + B(kSeqPlus(1)));
  // Raw frames: a KVPUB body and a KVSYNC body.
  const KvPub pub{"fz", "e1", Record{"a", Op::kSet, "\x01", 0, 1}};
  const std::string pub_body = Encode(pub);
  const std::string sync_body = Encode(KvSync{1, "fz", {Record{"a", Op::kSet, "\x01", 0, 1}}});
  auto frame = [](const std::string& b) {
    return B(static_cast<uint8_t>(b.size() & 0xff)) + B(static_cast<uint8_t>(b.size() >> 8)) + b;
  };
  ok &= Write(dir, "raw_frames",
              Ev(0) + Ev(1) + Ev(9) + frame(sync_body) + Ev(8, 1) + frame(pub_body));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out(argv[1]);
  const fs::path frames = out / "chp_frame_fuzz";
  const fs::path replica = out / "chp_replica_fuzz";
  std::error_code ec;
  fs::create_directories(frames, ec);
  fs::create_directories(replica, ec);
  if (!FrameSeeds(frames) || !ReplicaSeeds(replica)) {
    std::fprintf(stderr, "%s: cannot write seeds under %s\n", argv[0], argv[1]);
    return 1;
  }
  return 0;
}
