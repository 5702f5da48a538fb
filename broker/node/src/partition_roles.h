// PartitionRoles: what each newly applied cluster map changed in this node's role for each
// partition (docs/cluster.md §16 "Failover (as built)"). The engine keeps one and feeds it every
// map it acts on; it answers which partitions this node became primary of by promotion (the
// lineage kept: PromoteBackup or CompleteHandoff, so the channels' lines continue here), which
// it became primary of afresh (a new lineage, or a partition first placed), and which it lost
// (C-15: another member is primary now). Pure; owned by the engine thread.
#pragma once

#include <cstdint>
#include <vector>

#include "cluster/cluster_map.h"

namespace chorus::broker::node {

struct RoleChange {
  enum class Kind {
    kPromoted,  // primary now, was another member's at the same lineage: continue the lines
    kFresh,     // primary now at a new lineage (or first placed): new lines
    kLost,      // was primary, another member (or none) is now
  };
  uint32_t partition = 0;
  Kind kind = Kind::kFresh;
  uint64_t epoch = 0;  // the partition epoch of the new map
  bool operator==(const RoleChange&) const = default;
};

class PartitionRoles {
 public:
  // The changes for member `self` between the map given last and `map`, in partition order.
  // The first map only sets the baseline: nothing is reported for it (a process that just
  // started holds no line; a restarted member is never primary in the map that re-adds it).
  std::vector<RoleChange> Update(const cluster::ClusterMap& map, uint64_t self);

 private:
  struct Seen {
    uint64_t primary = 0;
    uint64_t lineage = 0;
  };
  bool have_ = false;
  std::vector<Seen> seen_;
};

}  // namespace chorus::broker::node
