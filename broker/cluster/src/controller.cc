// Controller decisions (docs/cluster.md §6).
#include "cluster/controller.h"

#include <algorithm>

namespace chorus::cluster {
namespace {

bool Contains(const std::vector<MemberId>& v, MemberId m) {
  return std::find(v.begin(), v.end(), m) != v.end();
}

// Collects commands, applying each to a scratch map so the next ones are decided on its result.
class Plan {
 public:
  explicit Plan(const ClusterMap& map) : map_(map) {}
  const ClusterMap& map() const { return map_; }
  bool Propose(const Command& cmd) {
    if (!map_.Apply(cmd).ok()) return false;
    out_.push_back(cmd);
    return true;
  }
  std::vector<Command> Take() { return std::move(out_); }

 private:
  ClusterMap map_;
  std::vector<Command> out_;
};

bool IsState(const ClusterMap& map, MemberId id, MemberState s) {
  const Member* m = map.FindMember(id);
  return m != nullptr && m->state == s;
}

}  // namespace

void Controller::OnElected(int64_t now_ms) {
  elected_ms_ = now_ms;
  seen_.clear();
  reports_.clear();
}

void Controller::OnHeartbeat(const Heartbeat& hb, int64_t now_ms) {
  if (hb.id == 0) return;
  Seen& s = seen_[hb.id];
  if (hb.incarnation < s.incarnation) return;  // a late heartbeat of an older incarnation
  s.incarnation = hb.incarnation;
  s.last_ms = now_ms;
  s.endpoints = hb.endpoints;
  s.leaving = hb.leaving;
}

void Controller::OnReport(const ReplicaReport& report) {
  reports_[report.partition] = report;
}

std::vector<Command> Controller::Decide(const ClusterMap& map, int64_t now_ms) const {
  Plan plan(map);
  if (!map.bootstrapped()) return {};

  // 1. Membership: restarts and deaths (additions after the failover below).
  for (const auto& [id, m] : map.members()) {
    if (m.state == MemberState::kDead) continue;
    auto it = seen_.find(id);
    bool restarted = it != seen_.end() && it->second.incarnation > m.incarnation;
    int64_t last = elected_ms_;
    if (it != seen_.end() && it->second.incarnation == m.incarnation) {
      last = std::max(last, it->second.last_ms);
    }
    if (restarted || now_ms - last >= config_.dead_after_ms) {
      plan.Propose(MarkDead{id, m.incarnation});
    }
  }
  const uint32_t r = map.replication_factor();
  auto target_now = [&plan, r]() {
    const ClusterMap& m = plan.map();
    return Assign(m.CurrentPlacement(), m.EligibleMembers(), r, m.partition_count());
  };

  // 2. Failover: a dead primary gives way to its best in-sync backup (history kept); with none
  //    alive, the partition is placed afresh with a new lineage (new channel epochs).
  std::vector<Placement> target = target_now();
  for (PartitionId p = 0; p < map.partition_count(); ++p) {
    const Partition& part = *plan.map().FindPartition(p);
    if (part.primary == 0 || !IsState(plan.map(), part.primary, MemberState::kDead)) continue;
    // Prefer an alive backup; a leaving one (still serving) rather than losing the history.
    MemberId best = 0;
    bool best_alive = false;
    for (MemberId m : part.in_sync) {
      if (m == part.primary || IsState(plan.map(), m, MemberState::kDead)) continue;
      bool alive = IsState(plan.map(), m, MemberState::kAlive);
      if (best == 0 || (alive && !best_alive) ||
          (alive == best_alive && Score(p, m) > Score(p, best))) {
        best = m;
        best_alive = alive;
      }
    }
    if (best != 0) {
      plan.Propose(PromoteBackup{p, part.version, best});
    } else if (!target[p].replicas.empty()) {
      plan.Propose(AssignPartition{p, part.version, target[p].replicas});
    }
  }

  // Additions and leaves come after the failover: a restarted member is re-added only once its
  // old incarnation is primary of nothing (the map rejects it before).
  for (const auto& [id, s] : seen_) {
    if (now_ms - s.last_ms >= config_.dead_after_ms) continue;
    const Member* m = plan.map().FindMember(id);
    if (s.leaving) {
      if (m != nullptr && m->state == MemberState::kAlive && m->incarnation == s.incarnation) {
        plan.Propose(SetLeaving{id});
      }
    } else if (m == nullptr || (m->state == MemberState::kDead && s.incarnation > m->incarnation)) {
      plan.Propose(AddMember{id, s.incarnation, s.endpoints});
    }
  }

  // 3. In-sync set from the primaries' reports (same primary, same epoch).
  for (const auto& [p, rep] : reports_) {
    const Partition* part = plan.map().FindPartition(p);
    if (part == nullptr || part->primary != rep.primary || part->epoch != rep.epoch) continue;
    std::vector<MemberId> shrunk;
    for (MemberId m : part->in_sync) {
      if (m == part->primary || !Contains(rep.lagging, m)) shrunk.push_back(m);
    }
    if (shrunk.size() != part->in_sync.size()) {
      plan.Propose(SetInSync{p, part->version, shrunk});
      continue;
    }
    // Growing only on the exact version the primary saw (see ReplicaReport).
    if (part->version != rep.version) continue;
    std::vector<MemberId> grown = part->in_sync;
    for (MemberId m : rep.caught_up) {
      if (part->IsReplica(m) && !part->IsInSync(m) && IsState(plan.map(), m, MemberState::kAlive)) {
        grown.push_back(m);
      }
    }
    if (grown.size() != part->in_sync.size()) plan.Propose(SetInSync{p, part->version, grown});
  }

  // 4. Unassigned partitions (a fresh cluster: after initial_placement_delay_ms in office).
  target = target_now();
  bool fresh = true;
  for (const Partition& part : plan.map().partitions()) fresh = fresh && part.primary == 0;
  const bool hold = fresh && now_ms - elected_ms_ < config_.initial_placement_delay_ms;
  for (PartitionId p = 0; !hold && p < map.partition_count(); ++p) {
    const Partition& part = *plan.map().FindPartition(p);
    if (part.primary == 0 && !target[p].replicas.empty()) {
      plan.Propose(AssignPartition{p, part.version, target[p].replicas});
    }
  }

  // 5. Rebalance toward the target, a bounded number of partitions at a time.
  target = target_now();
  uint32_t in_flight = 0;
  for (const Partition& part : plan.map().partitions()) {
    if (part.handoff_to != 0 || part.replicas.size() > part.in_sync.size()) ++in_flight;
  }
  uint32_t budget =
      config_.max_moves_in_flight > in_flight ? config_.max_moves_in_flight - in_flight : 0;
  for (PartitionId p = 0; p < map.partition_count(); ++p) {
    const Partition* part = plan.map().FindPartition(p);
    if (part->primary == 0 || IsState(plan.map(), part->primary, MemberState::kDead)) continue;
    // Dead backups are dropped at once: they hold nothing a commit waits for.
    for (MemberId m : std::vector<MemberId>(part->replicas)) {
      if (m != part->primary && IsState(plan.map(), m, MemberState::kDead)) {
        plan.Propose(RemoveReplica{p, plan.map().FindPartition(p)->version, m});
      }
    }
    part = plan.map().FindPartition(p);
    const Placement& t = target[p];
    if (t.replicas.empty()) continue;
    bool moving = part->handoff_to != 0 || part->replicas.size() > part->in_sync.size();
    std::vector<MemberId> missing;
    for (MemberId m : t.replicas) {
      if (!part->IsReplica(m)) missing.push_back(m);
    }
    if (!missing.empty()) {
      if (part->replicas.size() < r + 1) {
        if (moving || budget > 0) {
          if (plan.Propose(AddReplica{p, part->version, missing.front()}) && !moving) --budget;
        }
        continue;
      }
      // No room: drop one replica the target does not want (not the primary, not a handoff
      // target), as long as at least R in-sync replicas remain (or it was not in sync anyway).
      for (MemberId m : part->replicas) {
        if (Contains(t.replicas, m) || m == part->primary || m == part->handoff_to) continue;
        if (part->IsInSync(m) && part->in_sync.size() <= r) continue;
        plan.Propose(RemoveReplica{p, part->version, m});
        break;
      }
      continue;
    }
    MemberId want = t.primary();
    if (want == part->primary && part->handoff_to != 0) {
      plan.Propose(CancelHandoff{p, part->version});
      part = plan.map().FindPartition(p);
    }
    if (want != part->primary) {
      if (part->handoff_to == 0) {
        if (moving || budget > 0) {
          if (plan.Propose(BeginHandoff{p, part->version, want}) && !moving) --budget;
        }
      } else if (part->handoff_to != want) {
        plan.Propose(CancelHandoff{p, part->version});
      } else if (part->IsInSync(want)) {
        auto rep = reports_.find(p);
        if (rep != reports_.end() && rep->second.handoff_ready &&
            rep->second.primary == part->primary && rep->second.epoch == part->epoch) {
          plan.Propose(CompleteHandoff{p, part->version, want});
        }
      }
      continue;
    }
    // Surplus replicas leave once every target replica is in sync.
    bool all_in_sync = std::all_of(t.replicas.begin(), t.replicas.end(),
                                   [part](MemberId m) { return part->IsInSync(m); });
    if (!all_in_sync) continue;
    for (MemberId m : std::vector<MemberId>(part->replicas)) {
      if (!Contains(t.replicas, m) && m != part->handoff_to) {
        plan.Propose(RemoveReplica{p, plan.map().FindPartition(p)->version, m});
      }
    }
  }

  // 6. Leaving members that hold nothing any more are removed.
  for (const auto& [id, m] : plan.map().members()) {
    if (m.state != MemberState::kLeaving) continue;
    bool holds = std::any_of(plan.map().partitions().begin(), plan.map().partitions().end(),
                             [id = id](const Partition& part) { return part.IsReplica(id); });
    if (!holds) {
      plan.Propose(RemoveMember{id});
      break;  // the members map changed: iterate again on the next tick
    }
  }
  return plan.Take();
}

}  // namespace chorus::cluster
