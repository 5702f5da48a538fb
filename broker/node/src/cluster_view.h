// The engine thread's copy of the cluster map (docs/cluster.md §3; C-3: only maps applied by
// this node's meta group member). Owned by the engine thread; replaced as a whole whenever the
// ClusterAgent sends a newer one over the inproc PAIR (cluster_agent.h).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "cluster/cluster_map.h"
#include "cluster_agent.h"

namespace chorus::broker::node {

struct ClusterView {
  bool received = false;  // no map yet: the agent has not sent one
  ClusterViewHeader header;
  cluster::ClusterMap map;
};

// Decodes a two-frame map message; false (the view unchanged) when malformed.
bool DecodeClusterView(std::string_view header, std::string_view map, ClusterView& out);

// The `cluster` member of the server API's `info` (a Chorus extra): this member, the leader,
// the map's sizes and every member (id, incarnation, state, endpoints, primary and backup
// partition counts). With `partitions`, also the partition table (the `cluster` method).
nlohmann::json ClusterJson(const ClusterView& view, bool partitions);

}  // namespace chorus::broker::node
