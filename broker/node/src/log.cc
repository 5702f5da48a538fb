#include "broker/node/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace chorus::broker::node {

spdlog::logger& Log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto existing = spdlog::get("chorusd");
    if (existing) return existing;
    auto l = spdlog::stderr_color_mt("chorusd");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return *logger;
}

}  // namespace chorus::broker::node
