#include "log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace chorus::client::detail {

spdlog::logger& Log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto existing = spdlog::get("client");
    if (existing) return existing;
    auto l = spdlog::stderr_color_mt("client");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return *logger;
}

}  // namespace chorus::client::detail
