#include "broker/core/errc.h"

#include <string>

namespace chorus::broker {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "broker"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kOk:
        return "ok";
      case Errc::kInternal:
        return "internal server error";
      case Errc::kUnauthorized:
        return "unauthorized";
      case Errc::kUnknownChannel:
        return "unknown channel";
      case Errc::kPermissionDenied:
        return "permission denied";
      case Errc::kMethodNotFound:
        return "method not found";
      case Errc::kAlreadySubscribed:
        return "already subscribed";
      case Errc::kLimitExceeded:
        return "limit exceeded";
      case Errc::kBadRequest:
        return "bad request";
      case Errc::kNotAvailable:
        return "not available";
      case Errc::kTokenExpired:
        return "token expired";
      case Errc::kExpired:
        return "expired";
      case Errc::kTooManyRequests:
        return "too many requests";
      case Errc::kUnrecoverablePosition:
        return "unrecoverable position";
      case Errc::kConflict:
        return "conflict";
      case Errc::kUnavailable:
        return "unavailable, retry";
      case Errc::kReplicaGap:
        return "replicated publication skips offsets";
      case Errc::kReplicaStale:
        return "replicated publication is not newer than the replica";
      case Errc::kBadSnapshot:
        return "history snapshot is not contiguous";
    }
    return "unknown broker error " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& BrokerCategory() {
  static const Category kCategory;
  return kCategory;
}

}  // namespace chorus::broker
