#include "chp/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace chorus::chp {

spdlog::logger& Log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto existing = spdlog::get("chp");
    if (existing) return existing;
    auto l = spdlog::stderr_color_mt("chp");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return *logger;
}

}  // namespace chorus::chp
