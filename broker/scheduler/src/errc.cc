#include "broker/scheduler/errc.h"

#include <string>

namespace chorus::broker::scheduler {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "scheduler"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kOk:
        return "ok";
      case Errc::kBadRequest:
        return "bad request";
      case Errc::kUnknownTier:
        return "unknown tier";
      case Errc::kUnknownJob:
        return "unknown job";
      case Errc::kUnknownTask:
        return "unknown task";
      case Errc::kStaleLease:
        return "stale lease token";
      case Errc::kJobFinished:
        return "job already finished";
      case Errc::kLimitExceeded:
        return "limit exceeded";
      case Errc::kSourceMissing:
        return "source missing or unreadable";
      case Errc::kCatalogError:
        return "catalog cannot be opened or written";
      case Errc::kCancelled:
        return "lease revoked";
      case Errc::kShuttingDown:
        return "scheduler shutting down";
    }
    return "unknown scheduler error " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& SchedulerCategory() {
  static const Category kCategory;
  return kCategory;
}

}  // namespace chorus::broker::scheduler
