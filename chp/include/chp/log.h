// The CHP library's named logger ("chp"). Applications set its level and sinks through spdlog.
#pragma once

#include <memory>

#include <spdlog/spdlog.h>

namespace chorus::chp {

spdlog::logger& Log();

// Logs the first occurrence of each `kind` at warn level; later ones are only counted by the
// caller (spec §Malformed input: "log once").
class LogOnce {
 public:
  template <typename... Args>
  void Warn(unsigned kind, spdlog::format_string_t<Args...> fmt, Args&&... args) {
    if (kind < 64 && (seen_ & (1ull << kind)) != 0) return;
    if (kind < 64) seen_ |= 1ull << kind;
    Log().warn(fmt, std::forward<Args>(args)...);
  }

 private:
  uint64_t seen_ = 0;
};

}  // namespace chorus::chp
