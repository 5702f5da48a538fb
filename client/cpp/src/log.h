// The client library's named logger ("client"). Applications set its level and sinks through
// spdlog (spdlog::get("client")).
#pragma once

#include <spdlog/spdlog.h>

namespace chorus::client::detail {

spdlog::logger& Log();

}  // namespace chorus::client::detail
