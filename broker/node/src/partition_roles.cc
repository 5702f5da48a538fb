#include "partition_roles.h"

namespace chorus::broker::node {

std::vector<RoleChange> PartitionRoles::Update(const cluster::ClusterMap& map, uint64_t self) {
  std::vector<RoleChange> out;
  if (!map.bootstrapped()) return out;
  std::vector<Seen> now;
  now.reserve(map.partitions().size());
  for (const cluster::Partition& p : map.partitions()) now.push_back({p.primary, p.lineage});
  if (have_ && seen_.size() == now.size()) {
    for (const cluster::Partition& p : map.partitions()) {
      const Seen& before = seen_[p.id];
      const bool was = before.primary == self;
      const bool is = p.primary == self;
      if (is && !was) {
        // Promotion keeps the lineage and needs a previous primary; anything else is a new line.
        const bool kept = before.primary != 0 && before.lineage == p.lineage;
        out.push_back(
            {p.id, kept ? RoleChange::Kind::kPromoted : RoleChange::Kind::kFresh, p.epoch});
      } else if (was && !is) {
        out.push_back({p.id, RoleChange::Kind::kLost, p.epoch});
      }
    }
  }
  seen_ = std::move(now);
  have_ = true;
  return out;
}

}  // namespace chorus::broker::node
