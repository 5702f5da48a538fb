#include <ostream>

#include "chp/errc.h"
#include "chp/types.h"

namespace chorus::chp {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "chp"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kOk:
        return "ok";
      case Errc::kMalformed:
        return "malformed frame";
      case Errc::kBadKey:
        return "invalid key or subtree name";
      case Errc::kValueTooLarge:
        return "value too large";
      case Errc::kBadValue:
        return "value is not one msgpack object";
      case Errc::kBadTtl:
        return "ttl out of range";
      case Errc::kFull:
        return "server is full";
      case Errc::kBusy:
        return "busy, retry later";
      case Errc::kTimeout:
        return "timed out";
      case Errc::kUnreachable:
        return "peer unreachable";
      case Errc::kUnknownCommand:
        return "unknown command";
      case Errc::kBadVersion:
        return "unsupported protocol version";
      case Errc::kConflict:
        return "expected sequence does not match";
    }
    return "unknown chp error " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& ChpCategory() {
  static const Category kCategory;
  return kCategory;
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kSet:
      return "set";
    case Op::kDelete:
      return "delete";
    case Op::kExpire:
      return "expire";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, const Position& p) {
  return os << (p.epoch.empty() ? "-" : p.epoch) << ':' << p.seq;
}

std::ostream& operator<<(std::ostream& os, const Record& r) {
  return os << '{' << r.key << ' ' << OpName(r.op) << " seq=" << r.seq << " ttl=" << r.ttl_ms
            << " bytes=" << r.value.size() << '}';
}

}  // namespace chorus::chp
