// Handoff time for cluster_bench (docs/cluster.md §9 C-18, C-19, §16.11): a 4th node joins a
// running cluster of three and takes a channel's partition over by handoff while a publisher
// on member 1 publishes every 5 ms through the server API.
#pragma once

#include <cstdint>

#include "cluster_nodes.h"

namespace chorus::bench {

struct Handoff {
  // From the 4th node's start, and from the first map (as member 1 reads it every 20 ms) with
  // the handoff begun (`handoff_to` = 4), to the first successful publication sent after member
  // 1's map made member 4 primary (committed on the new primary). -1 when it never happened.
  double from_join_ms = -1;
  double from_begin_ms = -1;
  uint64_t errors = 0;  // publications answered with an error during the run
  bool ok = false;
};

// One cluster of `spec` plus the joiner; 60 s at most.
Handoff RunHandoff(const ClusterSpec& spec);

}  // namespace chorus::bench
