#include "broker/gateway/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace chorus::broker::gateway {

spdlog::logger& Log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto existing = spdlog::get("gateway");
    if (existing) return existing;
    auto l = spdlog::stderr_color_mt("gateway");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return *logger;
}

}  // namespace chorus::broker::gateway
