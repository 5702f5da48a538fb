#include "cluster/errc.h"

#include <string>

namespace chorus::cluster {
namespace {

class Category : public std::error_category {
 public:
  const char* name() const noexcept override { return "chorus.cluster"; }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::kOk:
        return "ok";
      case Errc::kMalformed:
        return "malformed command or snapshot";
      case Errc::kUnknownCommand:
        return "unknown command";
      case Errc::kNotBootstrapped:
        return "cluster map not bootstrapped";
      case Errc::kAlreadyBootstrapped:
        return "cluster map already bootstrapped";
      case Errc::kInvalidArgument:
        return "invalid argument";
      case Errc::kUnknownMember:
        return "unknown member";
      case Errc::kUnknownPartition:
        return "unknown partition";
      case Errc::kStaleIncarnation:
        return "stale incarnation";
      case Errc::kStaleVersion:
        return "stale partition version";
      case Errc::kBadState:
        return "member or partition in the wrong state";
      case Errc::kNotInSync:
        return "member not in the in-sync set";
      case Errc::kNotLeader:
        return "not the meta group leader";
      case Errc::kRaft:
        return "raft error";
    }
    return "unknown cluster error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& ClusterCategory() {
  static const Category category;
  return category;
}

}  // namespace chorus::cluster
