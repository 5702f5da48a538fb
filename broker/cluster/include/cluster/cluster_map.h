// The cluster map: the replicated state machine that the meta group (Raft) agrees on
// (docs/cluster.md §3). Members, the partition table and the commands that change them. Pure
// value types: no I/O, no clock, no threads; owned by the meta group's thread.
//
// Validation is a pure function of (map, command), so every voter that applies the same log
// accepts and rejects the same commands and all maps stay equal. A rejected command changes
// nothing. Partition commands carry `expected_version` (compare-and-set).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "cluster/assignment.h"
#include "cluster/errc.h"
#include "cluster/partition.h"

namespace chorus::cluster {

inline constexpr uint32_t kMaxReplicationFactor = 5;

enum class MemberState : uint8_t { kAlive = 0, kLeaving = 1, kDead = 2 };

struct Endpoints {
  std::string chp;   // CHP command endpoint (replication)
  std::string api;   // inter-node request endpoint (forwarded publishes, fan-out API)
  std::string raft;  // Raft address of a meta voter; empty for a standby
  bool operator==(const Endpoints&) const = default;
};

struct Member {
  MemberId id = 0;
  uint64_t incarnation = 0;  // strictly larger at every process start
  Endpoints endpoints;
  MemberState state = MemberState::kAlive;
  bool operator==(const Member&) const = default;
};

struct Partition {
  PartitionId id = 0;
  MemberId primary = 0;            // 0 = unassigned
  std::vector<MemberId> replicas;  // primary first, then backups (at most R, R+1 while moving)
  std::vector<MemberId> in_sync;   // subset of replicas containing the primary
  uint64_t epoch = 0;              // +1 at every change of primary: the fencing token
  uint64_t version = 0;            // +1 at every change of this partition: compare-and-set
  uint64_t lineage = 0;            // +1 when the history was lost (no in-sync replica survived)
  MemberId handoff_to = 0;         // planned new primary, 0 = none
  bool operator==(const Partition&) const = default;

  bool IsReplica(MemberId m) const;
  bool IsInSync(MemberId m) const;
};

// ---- Commands (docs/cluster.md §3.2) ----
struct Bootstrap {
  uint32_t partition_count = kDefaultPartitionCount;
  uint32_t replication_factor = 2;
  bool operator==(const Bootstrap&) const = default;
};
struct AddMember {
  MemberId id = 0;
  uint64_t incarnation = 0;
  Endpoints endpoints;
  bool operator==(const AddMember&) const = default;
};
struct MarkDead {
  MemberId id = 0;
  uint64_t incarnation = 0;
  bool operator==(const MarkDead&) const = default;
};
struct SetLeaving {
  MemberId id = 0;
  bool operator==(const SetLeaving&) const = default;
};
struct RemoveMember {
  MemberId id = 0;
  bool operator==(const RemoveMember&) const = default;
};
struct AssignPartition {
  PartitionId partition = 0;
  uint64_t expected_version = 0;
  std::vector<MemberId> replicas;  // primary first
  bool operator==(const AssignPartition&) const = default;
};
struct PromoteBackup {
  PartitionId partition = 0;
  uint64_t expected_version = 0;
  MemberId member = 0;
  bool operator==(const PromoteBackup&) const = default;
};
struct SetInSync {
  PartitionId partition = 0;
  uint64_t expected_version = 0;
  std::vector<MemberId> in_sync;
  bool operator==(const SetInSync&) const = default;
};
struct AddReplica {
  PartitionId partition = 0;
  uint64_t expected_version = 0;
  MemberId member = 0;
  bool operator==(const AddReplica&) const = default;
};
struct RemoveReplica {
  PartitionId partition = 0;
  uint64_t expected_version = 0;
  MemberId member = 0;
  bool operator==(const RemoveReplica&) const = default;
};
struct BeginHandoff {
  PartitionId partition = 0;
  uint64_t expected_version = 0;
  MemberId to = 0;
  bool operator==(const BeginHandoff&) const = default;
};
struct CompleteHandoff {
  PartitionId partition = 0;
  uint64_t expected_version = 0;
  MemberId to = 0;
  bool operator==(const CompleteHandoff&) const = default;
};
struct CancelHandoff {
  PartitionId partition = 0;
  uint64_t expected_version = 0;
  bool operator==(const CancelHandoff&) const = default;
};

using Command = std::variant<Bootstrap, AddMember, MarkDead, SetLeaving, RemoveMember,
                             AssignPartition, PromoteBackup, SetInSync, AddReplica, RemoveReplica,
                             BeginHandoff, CompleteHandoff, CancelHandoff>;

// The replicated state machine.
class ClusterMap {
 public:
  // Checks `cmd` against the current map without changing it.
  Result<Unit> Validate(const Command& cmd) const;
  // Validates, then applies. On error the map is unchanged.
  Result<Unit> Apply(const Command& cmd);

  bool bootstrapped() const { return partition_count_ != 0; }
  uint32_t partition_count() const { return partition_count_; }
  uint32_t replication_factor() const { return replication_factor_; }
  const std::map<MemberId, Member>& members() const { return members_; }
  const std::vector<Partition>& partitions() const { return partitions_; }
  const Member* FindMember(MemberId id) const;
  const Partition* FindPartition(PartitionId p) const;
  // Number of commands accepted so far (rejected ones do not count).
  uint64_t applied() const { return applied_; }

  // The members a placement may use (alive, not leaving), in id order.
  std::vector<MemberId> EligibleMembers() const;
  // The current placement of every partition (replicas, primary first).
  std::vector<Placement> CurrentPlacement() const;
  // Structural invariants (primary in replicas and in_sync, in_sync within replicas, distinct
  // replicas that are members...). Returns an empty string when they hold, else a description.
  std::string CheckInvariants() const;

  bool operator==(const ClusterMap&) const = default;

  // Restores a decoded snapshot (map_codec.h); used by the codec only.
  static ClusterMap FromParts(uint32_t partition_count, uint32_t replication_factor,
                              uint64_t applied, std::map<MemberId, Member> members,
                              std::vector<Partition> partitions);

 private:
  uint32_t partition_count_ = 0;
  uint32_t replication_factor_ = 0;
  uint64_t applied_ = 0;
  std::map<MemberId, Member> members_;
  std::vector<Partition> partitions_;
};

const char* ToString(MemberState s);
std::ostream& operator<<(std::ostream& os, const Member& m);
std::ostream& operator<<(std::ostream& os, const Partition& p);
std::ostream& operator<<(std::ostream& os, const Command& c);
std::ostream& operator<<(std::ostream& os, const ClusterMap& m);

}  // namespace chorus::cluster
