// The server's client updates (docs/protocol/chp.md, "Updates"): KVSET and its KVACK (CS-7 to
// CS-9), conditional writes (CS-32) and the UUID window (CS-10), kept per subtree so that it
// travels with snapshots and KVPUBs and a promoted backup answers a retry once (CS-31).
// Same class and owner thread as server.cc.
#include "chp/codec.h"
#include "chp/keys.h"
#include "chp/server.h"

namespace chorus::chp {

std::optional<uint64_t> Server::Conflict(std::string_view key, uint64_t expected) const {
  auto parts = SplitKey(key);
  if (!parts) return std::nullopt;  // refused later for its key (kBadKey)
  uint64_t seq = 0;
  if (const Subtree* st = store_.Find(parts->subtree)) {
    if (auto it = st->entries.find(std::string(parts->key)); it != st->entries.end()) {
      seq = it->second.seq;
    }
  }
  if (seq == expected) return std::nullopt;
  return seq;
}

void Server::HandleKvSet(const std::vector<std::string>& envelope, KvSet&& m) {
  ++stats_.kvsets;
  // CS-10: a repeated UUID is answered with the first answer and not applied again.
  if (auto it = acks_.find(m.uuid); it != acks_.end()) {
    ++stats_.duplicates;
    Reply(envelope, Encode(it->second));
    return;
  }
  KvAck ack{m.uuid, 0, {}};
  Errc status = Errc::kOk;
  std::optional<uint64_t> conflict;
  if (m.op == Op::kExpire) {
    status = Errc::kMalformed;  // op 2 is the server's own
  } else if (m.value.size() > options_.max_value_bytes) {
    status = Errc::kValueTooLarge;
  } else if (m.op == Op::kSet && !IsMsgpackValue(m.value)) {
    status = Errc::kBadValue;
  } else if (m.expected_seq && (conflict = Conflict(m.key, *m.expected_seq))) {
    // CS-32: refused, nothing applied; the KVACK tells the key's seq and the position now.
    status = Errc::kConflict;
    ack.key_seq = *conflict;
    if (auto parts = SplitKey(m.key)) ack.position = store_.PositionOf(parts->subtree);
    ++stats_.conflicts;
  } else {
    auto seq = ApplyChecked(m.key, m.op, m.value, m.ttl_ms, m.uuid, &ack.position);
    if (!seq) status = static_cast<Errc>(seq.error().value());
  }
  ack.status = static_cast<uint32_t>(status);
  if (status != Errc::kOk) {
    ++stats_.kvset_rejected;
  } else {
    // CS-10: the window holds accepted KVSETs only, so rejected ones cannot evict them.
    const int64_t now_ms = MonotonicMs();
    std::string_view subtree;
    if (!ack.position.epoch.empty()) subtree = SplitKey(m.key)->subtree;
    Remember(ack, subtree, now_ms);
    EvictAcks(now_ms);
  }
  Reply(envelope, Encode(ack));
}

void Server::Remember(const KvAck& ack, std::string_view subtree, int64_t at_ms) {
  if (!acks_.emplace(ack.uuid, ack).second) return;
  ack_order_.push_back(AckSlot{ack.uuid, at_ms, std::string(subtree)});
  if (!subtree.empty()) {
    auto it = windows_.find(subtree);
    if (it == windows_.end()) it = windows_.emplace(std::string(subtree), 0).first;
    it->second.push_back(WindowSlot{ack.uuid, ack.position.seq, at_ms});
  }
  while (ack_order_.size() > options_.dedup_window) {
    ++stats_.dedup_evicted_early;
    PopOldestAck();
  }
}

void Server::PopOldestAck() {
  const AckSlot& slot = ack_order_.front();
  acks_.erase(slot.uuid);
  if (!slot.subtree.empty()) {
    auto it = windows_.find(slot.subtree);
    // The subtree's window is a subsequence of ack_order_, so its oldest is this one (unless
    // the subtree was dropped or adopted since).
    if (it != windows_.end() && !it->second.empty() && it->second.front().uuid == slot.uuid) {
      it->second.pop_front();
      if (it->second.empty()) windows_.erase(it);
    }
  }
  ack_order_.pop_front();
}

void Server::EvictAcks(int64_t now_ms) {
  // CS-10: the window is time-based; the count cap in Remember only bounds memory.
  const int64_t window = options_.dedup_window_ms.count();
  while (!ack_order_.empty() && ack_order_.front().at_ms + window <= now_ms) PopOldestAck();
}

std::vector<WindowEntry> Server::WindowOf(std::string_view subtree, int64_t now_ms) const {
  // CS-31: the newest kMaxWindowPerKthxbai accepted updates of the subtree still in the window.
  std::vector<WindowEntry> out;
  auto it = windows_.find(subtree);
  if (it == windows_.end()) return out;
  const auto& w = it->second;
  const size_t first = w.size() > kMaxWindowPerKthxbai ? w.size() - kMaxWindowPerKthxbai : 0;
  const int64_t window = options_.dedup_window_ms.count();
  for (size_t i = first; i < w.size(); ++i) {
    if (w[i].at_ms + window <= now_ms) continue;
    out.push_back(WindowEntry{w[i].uuid, w[i].seq, static_cast<uint64_t>(now_ms - w[i].at_ms)});
  }
  return out;
}

}  // namespace chorus::chp
