// The node side of a planned primary move (docs/cluster.md C-18, C-19, §16.11): the primary
// reports `handoff_ready` for a partition whose handoff target is in `in_sync`, so the controller
// can propose CompleteHandoff. The switch itself is the ordinary applied-map path: the old
// primary gives the line up (C-15, engine_failover.cc: CHP Drop of its subtrees, forwarded
// requests answered kNotPrimary from then on) and the target continues it (promotion with the
// lineage kept: same channel epochs, next offsets).
#include <algorithm>

#include "broker/node/engine.h"
#include "cluster_view.h"

namespace chorus::broker::node {

std::vector<uint32_t> Engine::HandoffsReady() const {
  std::vector<uint32_t> out;
  // Off unless cluster.planned_handoff: the controller then never completes a planned move.
  if (!cluster_->received || !options_.config.cluster.planned_handoff) return out;
  const uint64_t self = cluster_->header.member_id;
  for (const cluster::Partition& p : cluster_->map.partitions()) {
    if (p.primary != self || p.handoff_to == 0 || p.handoff_to == self) continue;
    // In in_sync: every publication committed from now on was acknowledged by the target, and
    // everything committed before was too (it entered in_sync caught up, C-11). So whatever
    // this node committed at this epoch is on the target when the switch applies.
    if (p.IsInSync(p.handoff_to)) out.push_back(p.id);
  }
  return out;
}

}  // namespace chorus::broker::node
