// libFuzzer target: drives one SubtreeReplica with a sequence of events read from the input and
// checks its invariants after every event.
//
// Input: events, each introduced by one byte b; kind = b % 10, p = b / 10 (a parameter).
//   0 OnSubscribed      1 MakeRequest      2 OnRequestFailed      3 OnResubscribe
//   4 KVPUB     5 POSITION     6 KVSYNC     7 KTHXBAI: built from p and the next few bytes (epochs
//     from a small set, sequences near the replica's own, keys from a small set), then encoded
//     and decoded through the codec (which must give the message back) and applied;
//   8 a raw publication body, 9 a raw reply body: [length: 2 bytes LE][bytes], decoded by the
//     codec and applied when it is a message for the replica's subtree.
//
// Invariants:
//   - the observer's calls alone rebuild the replica: its entries and position equal the shadow's;
//   - OnChange comes in sequence (seq = previous + 1 within an epoch; 1 for an unborn subtree);
//   - within one epoch the position's seq never decreases except through a reset (snapshot);
//   - stats count what the observer saw (applied = OnChange calls, snapshots = OnReset calls) and
//     never decrease; live() matches state().
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "chp/codec.h"
#include "chp/keys.h"
#include "chp/replica.h"

namespace {

using namespace chorus::chp;

constexpr char kSubtree[] = "fz";
constexpr size_t kMaxQueue = 8;  // small, so queue overflows happen
constexpr size_t kMaxEvents = 4096;
const char* const kEpochs[] = {"", "e1", "e2", "0123456789abcdef"};
const char* const kKeys[] = {"a", "b", "c", "d/e", "f", "g", "h", "i"};

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "chp_replica_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  uint8_t Byte() { return p_ == end_ ? 0 : *p_++; }
  std::string_view Bytes(size_t n) {
    n = std::min(n, static_cast<size_t>(end_ - p_));
    const std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// The replica as its observer sees it.
class Shadow : public ReplicaObserver {
 public:
  void OnReset(std::string_view subtree, const Position& position,
               const EntryMap& entries) override {
    Check(subtree == kSubtree, "OnReset for another subtree");
    position_ = position;
    entries_ = entries;
    ++resets;
  }
  void OnChange(std::string_view subtree, std::string_view epoch, const Record& r) override {
    Check(subtree == kSubtree, "OnChange for another subtree");
    if (position_.epoch.empty()) {
      Check(r.seq == 1, "the first change of an unborn subtree is not seq 1");
    } else {
      Check(epoch == position_.epoch, "OnChange in another epoch than the position's");
      Check(r.seq == position_.seq + 1, "OnChange out of sequence");
    }
    position_ = Position{std::string(epoch), r.seq};
    if (r.op == Op::kSet) {
      entries_[r.key] = ReplicaEntry{r.value, r.seq};
    } else {
      entries_.erase(r.key);
    }
    ++changes;
  }
  const Position& position() const { return position_; }
  const EntryMap& entries() const { return entries_; }
  uint64_t resets = 0;
  uint64_t changes = 0;

 private:
  Position position_;
  EntryMap entries_;
};

class Driver {
 public:
  Driver() : replica_(kSubtree, kMaxQueue) {}

  void Run(Input& in) {
    for (size_t n = 0; n < kMaxEvents && !in.empty(); ++n) {
      const Position before = replica_.position();
      const ReplicaStats stats_before = replica_.stats();
      const uint64_t resets_before = shadow_.resets;
      Step(in);
      CheckInvariants(before, stats_before, resets_before);
    }
  }

 private:
  void Step(Input& in) {
    const uint8_t b = in.Byte();
    const unsigned p = b / 10;
    switch (b % 10) {
      case 0:
        replica_.OnSubscribed();
        break;
      case 1:
        // Mostly a fresh id; sometimes an old one again.
        (void)replica_.MakeRequest((p & 1) != 0 ? next_id_ : ++next_id_);
        staged_ = 0;
        break;
      case 2:
        replica_.OnRequestFailed();
        break;
      case 3:
        replica_.OnResubscribe();
        break;
      case 4: {
        KvPub m{kSubtree, Epoch(p), MakeRecord(in)};
        Apply(ThroughCodec(m));
        break;
      }
      case 5: {
        PositionMsg m{kSubtree, Position{Epoch(p), NearSeq(in)}};
        Apply(ThroughCodec(m));
        break;
      }
      case 6: {
        KvSync m{RequestId(p), kSubtree, {}};  // p: request id selector
        const size_t n = in.Byte() % 8;
        for (size_t i = 0; i < n; ++i) m.records.push_back(MakeRecord(in));
        ApplyReply(ThroughCodec(m));
        break;
      }
      case 7: {
        // p: epoch = p % 4, resume = (p / 4) % 2, request id selector = p / 8.
        Kthxbai m;
        m.request_id = RequestId(p / 8);
        m.subtree = kSubtree;
        m.position = Position{Epoch(p), NearSeq(in)};
        const uint8_t c = in.Byte();
        m.count = (c & 0x80) != 0 ? staged_ : c % 16;  // what was sent, or anything
        m.mode = ((p / 4) % 2) != 0 ? SyncMode::kResume : SyncMode::kSnapshot;
        ApplyReply(ThroughCodec(m));
        break;
      }
      case 8: {
        const std::string topic = (p % 3) == 0   ? TopicPrefix(kSubtree)
                                  : (p % 3) == 1 ? JoinKey(kSubtree, kKeys[p % 8])
                                                 : std::string(kHugzTopic);
        auto decoded = DecodePub(topic, Frame(in));
        if (decoded.ok()) Apply(std::move(*decoded));
        break;
      }
      case 9: {
        auto decoded = DecodeReply(Frame(in));
        if (decoded.ok()) ApplyReply(std::move(*decoded));
        break;
      }
    }
  }

  static std::string Epoch(unsigned p) { return kEpochs[p % 4]; }

  // A sequence near the replica's own: -64 .. +63 around it, never below 0.
  uint64_t NearSeq(Input& in) {
    const int delta = static_cast<int>(in.Byte() % 128) - 64;
    const uint64_t seq = replica_.position().seq;
    if (delta < 0 && static_cast<uint64_t>(-delta) > seq) return 0;
    return seq + static_cast<uint64_t>(static_cast<int64_t>(delta));
  }

  // Mostly the replica's current request; selector 3 gives one it does not know.
  uint64_t RequestId(unsigned selector) {
    return selector % 4 == 3 ? replica_.request_id() + 1 : replica_.request_id();
  }

  Record MakeRecord(Input& in) {
    const uint8_t k = in.Byte();
    Record r;
    r.key = kKeys[k % 8];
    r.op = static_cast<Op>((k >> 3) % 3);
    if (r.op == Op::kSet) r.value = std::string(1, static_cast<char>(k & 0x7f));  // a fixint
    r.ttl_ms = (k & 0x40) != 0 ? 1000 : 0;
    r.seq = NearSeq(in);
    return r;
  }

  static std::string_view Frame(Input& in) {
    const size_t len = in.Byte() | (static_cast<size_t>(in.Byte()) << 8);
    return in.Bytes(len);
  }

  // Encodes and decodes a message, which must come back unchanged.
  template <typename M>
  static PubMessage ThroughCodec(const M& m) {
    auto decoded = DecodePub(Topic(m), Encode(m));
    Check(decoded.ok(), "an encoded publication does not decode");
    Check(*decoded == PubMessage{m}, "a publication changed through the codec");
    return std::move(*decoded);
  }
  static ReplyMessage ThroughCodec(const KvSync& m) { return ThroughReplyCodec(m); }
  static ReplyMessage ThroughCodec(const Kthxbai& m) { return ThroughReplyCodec(m); }
  template <typename M>
  static ReplyMessage ThroughReplyCodec(const M& m) {
    auto decoded = DecodeReply(Encode(m));
    Check(decoded.ok(), "an encoded reply does not decode");
    Check(*decoded == ReplyMessage{m}, "a reply changed through the codec");
    return std::move(*decoded);
  }

  // As the agent routes publications: by subtree.
  void Apply(PubMessage&& m) {
    if (auto* pub = std::get_if<KvPub>(&m)) {
      if (pub->subtree == kSubtree) replica_.OnUpdate(pub->epoch, std::move(pub->record), &shadow_);
    } else if (auto* pos = std::get_if<PositionMsg>(&m)) {
      if (pos->subtree == kSubtree) replica_.OnPosition(pos->position);
    }
  }

  void ApplyReply(ReplyMessage&& m) {
    if (auto* sync = std::get_if<KvSync>(&m)) {
      if (sync->subtree != kSubtree) return;
      if (replica_.state() == SubtreeReplica::State::kSyncing &&
          sync->request_id == replica_.request_id()) {
        staged_ += sync->records.size();
      }
      replica_.OnSyncRecords(sync->request_id, std::move(sync->records));
    } else if (auto* end = std::get_if<Kthxbai>(&m)) {
      if (end->subtree != kSubtree) return;
      replica_.OnSyncEnd(*end, &shadow_);
      if (replica_.state() != SubtreeReplica::State::kSyncing) staged_ = 0;
    }
  }

  void CheckInvariants(const Position& before, const ReplicaStats& s0, uint64_t resets_before) {
    const Position& now = replica_.position();
    Check(now == shadow_.position(), "position differs from what the observer was told");
    Check(replica_.entries() == shadow_.entries(),
          "entries differ from what the observer was told");
    if (!before.epoch.empty() && now.epoch == before.epoch && now.seq < before.seq) {
      Check(shadow_.resets > resets_before, "seq went back within an epoch without a reset");
    }
    const ReplicaStats& s = replica_.stats();
    Check(s.applied == shadow_.changes, "stats.applied differs from the OnChange calls");
    Check(s.snapshots == shadow_.resets, "stats.snapshots differs from the OnReset calls");
    Check(s.resumes >= s0.resumes && s.gaps >= s0.gaps && s.epoch_changes >= s0.epoch_changes &&
              s.behind >= s0.behind && s.rejected >= s0.rejected && s.stale >= s0.stale &&
              s.overflows >= s0.overflows && s.failed_requests >= s0.failed_requests,
          "a stats counter decreased");
    Check(replica_.live() == (replica_.state() == SubtreeReplica::State::kLive),
          "live() disagrees with state()");
    Check(replica_.subtree() == kSubtree, "the subtree name changed");
  }

  SubtreeReplica replica_;
  Shadow shadow_;
  uint64_t next_id_ = 0;
  uint64_t staged_ = 0;  // records sent for the current request (the usual KTHXBAI count)
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  Driver driver;
  driver.Run(in);
  return 0;
}
