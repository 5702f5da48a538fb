// The gateway's named logger ("gateway"). Applications set its level and sinks through spdlog.
#pragma once

#include <spdlog/spdlog.h>

namespace chorus::broker::gateway {

spdlog::logger& Log();

}  // namespace chorus::broker::gateway
