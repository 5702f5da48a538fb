#include "chorus/client/types.h"

namespace chorus::client {

std::ostream& operator<<(std::ostream& os, const ClientInfo& v) {
  return os << "{client=" << v.client << " user=" << v.user << " conn_info=" << v.conn_info
            << " chan_info=" << v.chan_info << "}";
}

std::ostream& operator<<(std::ostream& os, const StreamPosition& v) {
  return os << "{offset=" << v.offset << " epoch=" << v.epoch << "}";
}

std::ostream& operator<<(std::ostream& os, const Publication& v) {
  os << "{offset=" << v.offset << " data=" << v.data;
  if (v.info) os << " info=" << *v.info;
  for (const auto& [k, t] : v.tags) os << " tag:" << k << "=" << t;
  return os << "}";
}

std::ostream& operator<<(std::ostream& os, const ConnectResult& v) {
  return os << "{client=" << v.client << " version=" << v.version << " ping=" << v.ping
            << " pong=" << v.pong << "}";
}

std::ostream& operator<<(std::ostream& os, const SubscribeResult& v) {
  return os << "{recoverable=" << v.recoverable << " epoch=" << v.epoch << " offset=" << v.offset
            << " recovered=" << v.recovered << " was_recovering=" << v.was_recovering
            << " publications=" << v.publications.size() << "}";
}

std::ostream& operator<<(std::ostream& os, const PublishResult& v) {
  return os << "{offset=" << v.offset << " epoch=" << v.epoch << "}";
}

std::ostream& operator<<(std::ostream& os, const DisconnectInfo& v) {
  return os << "{code=" << v.code << " reason=" << v.reason << " reconnect=" << v.reconnect << "}";
}

std::ostream& operator<<(std::ostream& os, const SyncJob& v) {
  return os << "{id=" << v.id << " user=" << v.user << " state=" << v.state << " phase=" << v.phase
            << " done=" << v.done << " failed=" << v.failed << " total=" << v.total
            << " errors=" << v.errors.size() << "}";
}

}  // namespace chorus::client
