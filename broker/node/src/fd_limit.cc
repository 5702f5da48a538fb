// Descriptor planning and the RLIMIT_NOFILE raise (fd_limit.h).
#include "broker/node/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>

namespace chorus::broker::node {

namespace {
constexpr uint64_t kRaiseCap = 1u << 20;  // no point in more; RLIM_INFINITY is refused by Linux
}  // namespace

DescriptorPlan PlanDescriptors(const HttpSection& http, uint64_t limit) {
  DescriptorPlan plan;
  plan.max_connections = http.max_connections;
  const uint64_t reserved = http.reserved_descriptors;
  if (limit >= reserved && limit - reserved >= http.max_connections) return plan;
  const uint64_t left = limit > reserved ? limit - reserved : 0;
  if (left < kMinHttpConnections) {
    plan.error = "the descriptor limit (ulimit -n) " + std::to_string(limit) +
                 " cannot serve http.reserved_descriptors = " + std::to_string(reserved) +
                 " plus at least " + std::to_string(kMinHttpConnections) +
                 " HTTP connections: raise the limit or lower http.reserved_descriptors";
    return plan;
  }
  plan.max_connections = static_cast<size_t>(left);
  plan.warning = "http.max_connections lowered from " + std::to_string(http.max_connections) +
                 " to " + std::to_string(left) + ": the descriptor limit (ulimit -n) is " +
                 std::to_string(limit) +
                 " and http.reserved_descriptors = " + std::to_string(reserved) +
                 " are kept for native clients, CHP and the node";
  return plan;
}

uint64_t RaiseFileLimit(uint64_t* before) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (before != nullptr) *before = rl.rlim_cur;
  const rlim_t target = std::min<rlim_t>(rl.rlim_max, kRaiseCap);
  if (rl.rlim_cur < target) {
    rlimit raised = rl;
    raised.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl.rlim_cur = target;
  }
  return rl.rlim_cur;
}

}  // namespace chorus::broker::node
