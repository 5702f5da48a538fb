#include "ws_bridge.h"

#include <charconv>

#include "engine_client.h"  // EncodeCorrelationId / DecodeCorrelationId: the same 8-byte LE id

namespace chorus::broker::gateway::detail {
namespace {

uint64_t ReadLe64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string CutUtf8(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

}  // namespace

bool SendableCloseCode(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

std::vector<zmq::message_t> EncodeWsEvent(std::string_view event, uint64_t conn_id,
                                          std::string_view payload) {
  const std::string id = EncodeCorrelationId(conn_id);
  std::vector<zmq::message_t> parts;
  parts.reserve(4);
  parts.emplace_back(kWsTag.data(), kWsTag.size());
  parts.emplace_back(event.data(), event.size());
  parts.emplace_back(id.data(), id.size());
  parts.emplace_back(payload.data(), payload.size());
  return parts;
}

bool IsWsMessage(const std::vector<zmq::message_t>& parts) {
  return !parts.empty() && parts[0].to_string_view() == kWsTag;
}

std::optional<WsCommand> DecodeWsCommand(const std::vector<zmq::message_t>& parts) {
  if (parts.size() < 4 || !IsWsMessage(parts)) return std::nullopt;
  const std::string_view command = parts[1].to_string_view();
  WsCommand c;
  if (command == "send" || command == "fanout") {
    if (parts.size() != 4) return std::nullopt;
    const auto& ids = parts[2];
    if (command == "send") {
      c.kind = WsCommand::Kind::kSend;
      uint64_t id = 0;
      if (!DecodeCorrelationId(ids, &id)) return std::nullopt;
      c.conn_ids.push_back(id);
    } else {
      c.kind = WsCommand::Kind::kFanout;
      if (ids.size() == 0 || ids.size() % 8 != 0) return std::nullopt;
      const auto* p = static_cast<const unsigned char*>(ids.data());
      c.conn_ids.reserve(ids.size() / 8);
      for (size_t off = 0; off < ids.size(); off += 8) c.conn_ids.push_back(ReadLe64(p + off));
    }
    c.payload = std::make_shared<const std::string>(parts[3].to_string());
    return c;
  }
  if (command == "close") {
    if (parts.size() != 5) return std::nullopt;
    c.kind = WsCommand::Kind::kClose;
    uint64_t id = 0;
    if (!DecodeCorrelationId(parts[2], &id)) return std::nullopt;
    c.conn_ids.push_back(id);
    const std::string_view text = parts[3].to_string_view();
    int code = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), code);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
    if (!SendableCloseCode(code)) return std::nullopt;
    c.code = static_cast<uint16_t>(code);
    c.reason = CutUtf8(parts[4].to_string_view(), kMaxCloseReason);
    return c;
  }
  return std::nullopt;
}

}  // namespace chorus::broker::gateway::detail
