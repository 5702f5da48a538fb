// File descriptors at startup (docs/operations.md, "Security"): raise the soft RLIMIT_NOFILE
// toward the hard limit, then fit http.max_connections under it with http.reserved_descriptors
// kept for everything else (native clients, CHP peers, ZeroMQ's and the gateway's own
// descriptors). Planning is pure (PlanDescriptors); RaiseFileLimit does the system calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "broker/config/config.h"

namespace chorus::broker::node {

// What the node does about its descriptor limit.
struct DescriptorPlan {
  size_t max_connections = 0;  // the http.max_connections to run with
  std::string warning;         // "" or why max_connections was lowered
  std::string error;           // "" or why the node must not start
};

// The least number of HTTP connections worth starting with: below it the limit is refused.
inline constexpr size_t kMinHttpConnections = 16;

// `limit`: the soft descriptor limit the node runs under. max_connections + reserved must fit:
// when it does not, max_connections is lowered to limit - reserved (with a warning); when
// that leaves fewer than kMinHttpConnections, the plan is an error.
DescriptorPlan PlanDescriptors(const HttpSection& http, uint64_t limit);

// Raises the soft RLIMIT_NOFILE to the hard limit (capped at 1,048,576) when it is lower.
// Returns the soft limit in force afterwards; `before` gets the one found.
uint64_t RaiseFileLimit(uint64_t* before = nullptr);

}  // namespace chorus::broker::node
