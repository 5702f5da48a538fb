// The node's named logger ("chorusd"); chorusd sets its level from node.log_level.
#pragma once

#include <spdlog/spdlog.h>

namespace chorus::broker::node {

spdlog::logger& Log();

}  // namespace chorus::broker::node
