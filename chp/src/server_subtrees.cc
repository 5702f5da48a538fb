// The server's per-subtree bookkeeping beyond the map itself (docs/protocol/chp.md): applied
// positions reported by replicas (CS-27), dropping a subtree (CS-28) and adopting one from a
// promoted backup's copy under a new term (CS-29). Same class and owner thread as server.cc.
#include "chp/keys.h"
#include "chp/server.h"

namespace chorus::chp {

void Server::HandleApplied(Applied&& m) {
  // CS-27: no reply; latest wins; bad names and subtrees ignored and counted.
  if (m.replica.empty() || m.replica.size() > kMaxReplicaNameBytes) {
    ++stats_.applied_ignored;
    return;
  }
  for (AppliedEntry& e : m.positions) {
    if (!IsValidSubtree(e.subtree)) {
      ++stats_.applied_ignored;
      continue;
    }
    auto& by_replica = applied_[e.subtree];
    auto it = by_replica.find(m.replica);
    if (it == by_replica.end()) {
      if (applied_pairs_ >= options_.max_applied) {
        ++stats_.applied_ignored;
        if (by_replica.empty()) applied_.erase(e.subtree);
        continue;
      }
      it = by_replica.emplace(m.replica, Position{}).first;
      ++applied_pairs_;
    }
    it->second = std::move(e.position);
    ++stats_.applied;
    if (applied_observer_) applied_observer_(m.replica, e.subtree, it->second);
  }
}

std::optional<Position> Server::AppliedPosition(std::string_view replica,
                                                std::string_view subtree) const {
  auto it = applied_.find(std::string(subtree));
  if (it == applied_.end()) return std::nullopt;
  auto r = it->second.find(std::string(replica));
  if (r == it->second.end()) return std::nullopt;
  return r->second;
}

void Server::ForgetReplica(std::string_view replica) {
  for (auto it = applied_.begin(); it != applied_.end();) {
    applied_pairs_ -= it->second.erase(std::string(replica));
    it = it->second.empty() ? applied_.erase(it) : std::next(it);
  }
}

Result<Position> Server::Adopt(std::string_view subtree, const Position& at, uint64_t prev_term,
                               uint64_t term, const std::vector<Record>& entries,
                               const std::vector<WindowEntry>& window) {
  if (!IsValidSubtree(subtree)) return Errc::kBadKey;
  const int64_t now = MonotonicMs();
  auto st = store_.Adopt(subtree, at, prev_term, term, entries, now);
  if (!st) return st.error();
  removed_.erase(std::string(subtree));
  // CS-31: the updates of the backup's window are remembered as answered (status 0, the seq
  // they got on the old primary), for what is left of their time in the window.
  windows_.erase(std::string(subtree));
  const int64_t span = options_.dedup_window_ms.count();
  for (const WindowEntry& w : window) {
    if (w.age_ms >= static_cast<uint64_t>(span) || w.seq > at.seq) continue;
    Remember(KvAck{w.uuid, 0, {at.epoch, w.seq}}, subtree, now - static_cast<int64_t>(w.age_ms));
  }
  PublishPosition(subtree);
  return (*st)->position();
}

bool Server::Drop(std::string_view subtree) {
  if (!store_.Drop(subtree)) return false;
  ++stats_.dropped_subtrees;
  const std::string name(subtree);
  if (auto it = applied_.find(name); it != applied_.end()) {
    applied_pairs_ -= it->second.size();
    applied_.erase(it);
  }
  windows_.erase(name);
  PublishPosition(subtree);  // unborn now (CS-6)
  if (options_.removal_announcements > 0) removed_[name] = options_.removal_announcements;
  return true;
}

}  // namespace chorus::chp
