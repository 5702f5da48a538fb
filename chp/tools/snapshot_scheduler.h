// chorus-snapshot --scheduler: the sync scheduler's subtrees `s.<user>` as a readable table
// (the record layout is the scheduler's, docs/scheduler.md "Scheduler state in CHP"; this tool
// reads it without depending on broker/scheduler).
#pragma once

#include <functional>
#include <map>
#include <ostream>
#include <string>

#include "chp/replica.h"

namespace chorus::chp {

// Prints every `s.*` subtree of `replicas`: per user its queue, jobs, leases and waiting tasks.
void PrintSchedulerState(const std::map<std::string, SubtreeReplica, std::less<>>& replicas,
                         std::ostream& out);

}  // namespace chorus::chp
