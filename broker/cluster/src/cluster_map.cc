// Validation and application of cluster map commands (docs/cluster.md §3.2).
#include "cluster/cluster_map.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace chorus::cluster {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

bool Contains(const std::vector<MemberId>& v, MemberId m) {
  return std::find(v.begin(), v.end(), m) != v.end();
}

void Erase(std::vector<MemberId>& v, MemberId m) {
  v.erase(std::remove(v.begin(), v.end(), m), v.end());
}

bool Distinct(const std::vector<MemberId>& v) {
  return std::set<MemberId>(v.begin(), v.end()).size() == v.size();
}

// Moves m to the front of v (m must be in v).
void ToFront(std::vector<MemberId>& v, MemberId m) {
  auto it = std::find(v.begin(), v.end(), m);
  if (it != v.end()) std::rotate(v.begin(), it, it + 1);
}

Result<Unit> Ok() {
  return Unit{};
}

}  // namespace

bool Partition::IsReplica(MemberId m) const {
  return Contains(replicas, m);
}
bool Partition::IsInSync(MemberId m) const {
  return Contains(in_sync, m);
}

const Member* ClusterMap::FindMember(MemberId id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

const Partition* ClusterMap::FindPartition(PartitionId p) const {
  return p < partitions_.size() ? &partitions_[p] : nullptr;
}

std::vector<MemberId> ClusterMap::EligibleMembers() const {
  std::vector<MemberId> out;
  for (const auto& [id, m] : members_) {
    if (m.state == MemberState::kAlive) out.push_back(id);
  }
  return out;
}

std::vector<Placement> ClusterMap::CurrentPlacement() const {
  std::vector<Placement> out;
  out.reserve(partitions_.size());
  for (const Partition& p : partitions_) out.push_back(Placement{p.replicas});
  return out;
}

ClusterMap ClusterMap::FromParts(uint32_t partition_count, uint32_t replication_factor,
                                 uint64_t applied, std::map<MemberId, Member> members,
                                 std::vector<Partition> partitions) {
  ClusterMap m;
  m.partition_count_ = partition_count;
  m.replication_factor_ = replication_factor;
  m.applied_ = applied;
  m.members_ = std::move(members);
  m.partitions_ = std::move(partitions);
  return m;
}

Result<Unit> ClusterMap::Validate(const Command& cmd) const {
  auto alive = [this](MemberId m) {
    const Member* mem = FindMember(m);
    return mem != nullptr && mem->state == MemberState::kAlive;
  };
  auto live = [this](MemberId m) {  // alive or leaving: still serving
    const Member* mem = FindMember(m);
    return mem != nullptr && mem->state != MemberState::kDead;
  };
  // Common checks of partition commands: bootstrapped, known partition, expected version.
  auto partition = [this](PartitionId id, uint64_t expected) -> Result<const Partition*> {
    if (!bootstrapped()) return Errc::kNotBootstrapped;
    const Partition* p = FindPartition(id);
    if (p == nullptr) return Errc::kUnknownPartition;
    if (p->version != expected) return Errc::kStaleVersion;
    return p;
  };
  return std::visit(
      Overloaded{
          [&](const Bootstrap& c) -> Result<Unit> {
            if (bootstrapped()) return Errc::kAlreadyBootstrapped;
            if (c.partition_count == 0 || c.partition_count > kMaxPartitionCount ||
                c.replication_factor == 0 || c.replication_factor > kMaxReplicationFactor) {
              return Errc::kInvalidArgument;
            }
            return Ok();
          },
          [&](const AddMember& c) -> Result<Unit> {
            if (c.id == 0 || c.incarnation == 0) return Errc::kInvalidArgument;
            const Member* m = FindMember(c.id);
            if (m == nullptr) return Ok();
            // A restart (larger incarnation) is accepted only once the old incarnation is dead
            // (the controller marks it dead first), so its stale copies leave every in_sync.
            if (c.incarnation < m->incarnation) return Errc::kStaleIncarnation;
            if (c.incarnation == m->incarnation) {
              if (m->state == MemberState::kDead) return Errc::kStaleIncarnation;
              return c.endpoints == m->endpoints ? Ok() : Result<Unit>(Errc::kInvalidArgument);
            }
            if (m->state != MemberState::kDead) return Errc::kBadState;
            // The old incarnation must have lost every primaryship first (promotion or a new
            // lineage): the restarted process holds none of that data.
            for (const Partition& p : partitions_) {
              if (p.primary == c.id) return Errc::kBadState;
            }
            return Ok();
          },
          [&](const MarkDead& c) -> Result<Unit> {
            const Member* m = FindMember(c.id);
            if (m == nullptr) return Errc::kUnknownMember;
            if (m->incarnation != c.incarnation) return Errc::kStaleIncarnation;
            if (m->state == MemberState::kDead) return Errc::kBadState;
            return Ok();
          },
          [&](const SetLeaving& c) -> Result<Unit> {
            const Member* m = FindMember(c.id);
            if (m == nullptr) return Errc::kUnknownMember;
            if (m->state != MemberState::kAlive) return Errc::kBadState;
            return Ok();
          },
          [&](const RemoveMember& c) -> Result<Unit> {
            const Member* m = FindMember(c.id);
            if (m == nullptr) return Errc::kUnknownMember;
            if (m->state == MemberState::kAlive) return Errc::kBadState;
            for (const Partition& p : partitions_) {
              if (p.IsReplica(c.id)) return Errc::kBadState;
            }
            return Ok();
          },
          [&](const AssignPartition& c) -> Result<Unit> {
            auto p = partition(c.partition, c.expected_version);
            if (!p.ok()) return p.error();
            if (c.replicas.empty() || c.replicas.size() > replication_factor_ ||
                !Distinct(c.replicas)) {
              return Errc::kInvalidArgument;
            }
            for (MemberId m : c.replicas) {
              if (!alive(m)) return Errc::kBadState;
            }
            // Only when no in-sync replica is still serving: otherwise promote (keeps history).
            for (MemberId m : (*p)->in_sync) {
              if (live(m)) return Errc::kBadState;
            }
            return Ok();
          },
          [&](const PromoteBackup& c) -> Result<Unit> {
            auto p = partition(c.partition, c.expected_version);
            if (!p.ok()) return p.error();
            if ((*p)->primary == 0 || c.member == (*p)->primary) return Errc::kBadState;
            if (live((*p)->primary)) return Errc::kBadState;  // planned moves use a handoff
            if (!(*p)->IsInSync(c.member)) return Errc::kNotInSync;
            // A leaving member still serves: it may take over (and hand off later) when it is the
            // only in-sync copy left.
            if (!live(c.member)) return Errc::kBadState;
            return Ok();
          },
          [&](const SetInSync& c) -> Result<Unit> {
            auto p = partition(c.partition, c.expected_version);
            if (!p.ok()) return p.error();
            if ((*p)->primary == 0 || !Distinct(c.in_sync) || !Contains(c.in_sync, (*p)->primary)) {
              return Errc::kInvalidArgument;
            }
            for (MemberId m : c.in_sync) {
              if (!(*p)->IsReplica(m)) return Errc::kInvalidArgument;
              if (!live(m)) return Errc::kBadState;
            }
            return Ok();
          },
          [&](const AddReplica& c) -> Result<Unit> {
            auto p = partition(c.partition, c.expected_version);
            if (!p.ok()) return p.error();
            if ((*p)->primary == 0) return Errc::kBadState;
            if (!alive(c.member) || (*p)->IsReplica(c.member)) return Errc::kBadState;
            if ((*p)->replicas.size() >= replication_factor_ + 1) return Errc::kBadState;
            return Ok();
          },
          [&](const RemoveReplica& c) -> Result<Unit> {
            auto p = partition(c.partition, c.expected_version);
            if (!p.ok()) return p.error();
            if (!(*p)->IsReplica(c.member)) return Errc::kInvalidArgument;
            if (c.member == (*p)->primary || c.member == (*p)->handoff_to) {
              return Errc::kBadState;
            }
            return Ok();
          },
          [&](const BeginHandoff& c) -> Result<Unit> {
            auto p = partition(c.partition, c.expected_version);
            if (!p.ok()) return p.error();
            if ((*p)->handoff_to != 0 || (*p)->primary == 0) return Errc::kBadState;
            if (c.to == (*p)->primary || !(*p)->IsReplica(c.to) || !alive(c.to)) {
              return Errc::kBadState;
            }
            return Ok();
          },
          [&](const CompleteHandoff& c) -> Result<Unit> {
            auto p = partition(c.partition, c.expected_version);
            if (!p.ok()) return p.error();
            if (c.to == 0 || c.to != (*p)->handoff_to || !alive(c.to)) return Errc::kBadState;
            if (!(*p)->IsInSync(c.to)) return Errc::kNotInSync;
            return Ok();
          },
          [&](const CancelHandoff& c) -> Result<Unit> {
            auto p = partition(c.partition, c.expected_version);
            if (!p.ok()) return p.error();
            if ((*p)->handoff_to == 0) return Errc::kBadState;
            return Ok();
          },
      },
      cmd);
}

Result<Unit> ClusterMap::Apply(const Command& cmd) {
  auto checked = Validate(cmd);
  if (!checked.ok()) return checked;
  auto touch = [this](PartitionId id) -> Partition& {
    Partition& p = partitions_[id];
    ++p.version;
    return p;
  };
  std::visit(Overloaded{
                 [&](const Bootstrap& c) {
                   partition_count_ = c.partition_count;
                   replication_factor_ = c.replication_factor;
                   partitions_.resize(c.partition_count);
                   for (PartitionId i = 0; i < c.partition_count; ++i) partitions_[i].id = i;
                 },
                 [&](const AddMember& c) {
                   auto it = members_.find(c.id);
                   if (it != members_.end() && it->second.incarnation == c.incarnation)
                     return;  // retry
                   Member& m = members_[c.id];
                   m.id = c.id;
                   m.incarnation = c.incarnation;
                   m.endpoints = c.endpoints;
                   m.state = MemberState::kAlive;
                 },
                 [&](const MarkDead& c) {
                   members_[c.id].state = MemberState::kDead;
                   for (Partition& p : partitions_) {
                     bool changed = false;
                     if (p.primary != c.id && p.IsInSync(c.id)) {
                       Erase(p.in_sync, c.id);
                       changed = true;
                     }
                     if (p.handoff_to == c.id) {
                       p.handoff_to = 0;
                       changed = true;
                     }
                     if (changed) ++p.version;
                   }
                 },
                 [&](const SetLeaving& c) { members_[c.id].state = MemberState::kLeaving; },
                 [&](const RemoveMember& c) { members_.erase(c.id); },
                 [&](const AssignPartition& c) {
                   Partition& p = touch(c.partition);
                   p.replicas = c.replicas;
                   p.primary = c.replicas.front();
                   p.in_sync = {p.primary};
                   ++p.epoch;
                   ++p.lineage;
                   p.handoff_to = 0;
                 },
                 [&](const PromoteBackup& c) {
                   Partition& p = touch(c.partition);
                   MemberId old = p.primary;
                   Erase(p.in_sync, old);
                   Erase(p.replicas, old);
                   p.primary = c.member;
                   ToFront(p.replicas, c.member);
                   ToFront(p.in_sync, c.member);
                   ++p.epoch;
                   p.handoff_to = 0;
                 },
                 [&](const SetInSync& c) {
                   Partition& p = touch(c.partition);
                   p.in_sync = c.in_sync;
                   ToFront(p.in_sync, p.primary);
                 },
                 [&](const AddReplica& c) { touch(c.partition).replicas.push_back(c.member); },
                 [&](const RemoveReplica& c) {
                   Partition& p = touch(c.partition);
                   Erase(p.replicas, c.member);
                   Erase(p.in_sync, c.member);
                 },
                 [&](const BeginHandoff& c) { touch(c.partition).handoff_to = c.to; },
                 [&](const CompleteHandoff& c) {
                   Partition& p = touch(c.partition);
                   p.primary = c.to;
                   ToFront(p.replicas, c.to);
                   ToFront(p.in_sync, c.to);
                   ++p.epoch;
                   p.handoff_to = 0;
                 },
                 [&](const CancelHandoff& c) { touch(c.partition).handoff_to = 0; },
             },
             cmd);
  ++applied_;
  return Unit{};
}

std::string ClusterMap::CheckInvariants() const {
  std::ostringstream err;
  if (partitions_.size() != partition_count_) err << "partition table size; ";
  for (const Partition& p : partitions_) {
    if (!Distinct(p.replicas)) err << "p" << p.id << " duplicate replicas; ";
    if (p.replicas.size() > replication_factor_ + 1) err << "p" << p.id << " too many replicas; ";
    for (MemberId m : p.replicas) {
      if (FindMember(m) == nullptr) err << "p" << p.id << " replica " << m << " not a member; ";
    }
    for (MemberId m : p.in_sync) {
      if (!p.IsReplica(m)) err << "p" << p.id << " in_sync " << m << " not a replica; ";
    }
    if (p.primary != 0) {
      if (p.replicas.empty() || p.replicas.front() != p.primary) {
        err << "p" << p.id << " primary not first replica; ";
      }
      if (!p.IsInSync(p.primary)) err << "p" << p.id << " primary not in sync; ";
    } else if (!p.replicas.empty() || !p.in_sync.empty()) {
      err << "p" << p.id << " replicas without primary; ";
    }
    if (p.handoff_to != 0 && !p.IsReplica(p.handoff_to)) {
      err << "p" << p.id << " handoff target not a replica; ";
    }
  }
  return err.str();
}

}  // namespace chorus::cluster
