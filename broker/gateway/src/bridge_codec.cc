// The engine bridge codec (bridge_codec.h, docs/protocol/bridge.md).
#include "broker/gateway/bridge_codec.h"

#include <charconv>

namespace chorus::broker::bridge {
namespace {

// RFC 6455 §7.4.2: 3000-3999 registered (Centrifugo's disconnects), 4000-4999 private use.
constexpr int kFirstRegisteredCloseCode = 3000;
constexpr int kLastPrivateCloseCode = 4999;

uint64_t ReadLe64(const unsigned char* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < kIdBytes; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string CutUtf8(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

// Decimal text without sign or spaces, the whole of `text`.
bool ParseDecimal(std::string_view text, int* out) {
  int v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) return false;
  *out = v;
  return true;
}

Frames Make(std::initializer_list<std::string_view> frames) {
  Frames parts;
  parts.reserve(frames.size());
  for (std::string_view f : frames) parts.emplace_back(f.data(), f.size());
  return parts;
}

}  // namespace

std::string EncodeId(uint64_t id) {
  std::string out;
  AppendId(out, id);
  return out;
}

void AppendId(std::string& ids, uint64_t id) {
  for (size_t i = 0; i < kIdBytes; ++i) ids.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
}

bool DecodeId(std::string_view frame, uint64_t* id) {
  if (frame.size() != kIdBytes) return false;
  *id = ReadLe64(reinterpret_cast<const unsigned char*>(frame.data()));
  return true;
}

bool DecodeId(const zmq::message_t& frame, uint64_t* id) {
  return DecodeId(frame.to_string_view(), id);
}

std::vector<uint64_t> DecodeIds(std::string_view ids) {
  std::vector<uint64_t> out;
  if (ids.empty() || ids.size() % kIdBytes != 0) return out;
  const auto* p = reinterpret_cast<const unsigned char*>(ids.data());
  out.reserve(ids.size() / kIdBytes);
  for (size_t off = 0; off < ids.size(); off += kIdBytes) out.push_back(ReadLe64(p + off));
  return out;
}

Frames EncodeHttpRequest(uint64_t id, std::string_view kind, std::string_view method,
                         std::string_view body) {
  const std::string id_frame = EncodeId(id);
  return Make({id_frame, kind, method, body});
}

Frames EncodeHttpReply(uint64_t id, int status, std::string_view content_type,
                       std::string_view body) {
  const std::string id_frame = EncodeId(id);
  const std::string status_text = std::to_string(status);
  return Make({id_frame, status_text, content_type, body});
}

bool ParseReplyStatus(std::string_view text, int* status) {
  int v = 0;
  if (text.size() != 3 || !ParseDecimal(text, &v)) return false;
  if (v < 200 || v > 599) return false;
  *status = v;
  return true;
}

std::optional<HttpReply> DecodeHttpReply(const Frames& parts) {
  HttpReply r;
  if (parts.size() != 4 || !DecodeId(parts[0], &r.id)) return std::nullopt;
  if (!ParseReplyStatus(parts[1].to_string_view(), &r.status)) return std::nullopt;
  r.content_type = parts[2].to_string();
  r.body = parts[3].to_string();
  return r;
}

Frames EncodeWsEvent(std::string_view event, uint64_t conn_id, std::string_view payload) {
  const std::string id = EncodeId(conn_id);
  return Make({kWsTag, event, id, payload});
}

bool IsWsMessage(const Frames& parts) {
  return !parts.empty() && parts[0].to_string_view() == kWsTag;
}

std::optional<GatewayMessage> DecodeGatewayMessage(const Frames& parts) {
  if (parts.size() != 4) return std::nullopt;
  if (IsWsMessage(parts)) {
    WsEvent e;
    if (!DecodeId(parts[2], &e.conn_id)) return std::nullopt;
    const std::string_view event = parts[1].to_string_view();
    e.payload = parts[3].to_string_view();
    if (event == kEventOpen) {
      e.kind = WsEvent::Kind::kOpen;
    } else if (event == kEventFrame) {
      e.kind = WsEvent::Kind::kFrame;
    } else if (event == kEventClosed) {
      e.kind = WsEvent::Kind::kClosed;
      int code = 0;
      if (ParseDecimal(e.payload, &code) && code >= 1000 && code <= 4999) {
        e.close_code = static_cast<uint32_t>(code);
      }
    } else {
      return std::nullopt;
    }
    return e;
  }
  HttpRequest r;
  if (!DecodeId(parts[0], &r.id)) return std::nullopt;
  r.kind = parts[1].to_string_view();
  r.method = parts[2].to_string_view();
  r.body = parts[3].to_string_view();
  return r;
}

Frames EncodeWsSend(uint64_t conn_id, std::string_view bytes) {
  const std::string id = EncodeId(conn_id);
  return Make({kWsTag, kCommandSend, id, bytes});
}

Frames EncodeWsFanout(std::string_view ids, std::string_view bytes) {
  return Make({kWsTag, kCommandFanout, ids, bytes});
}

Frames EncodeWsClose(uint64_t conn_id, uint32_t code, std::string_view reason) {
  const std::string id = EncodeId(conn_id);
  const std::string code_text = std::to_string(code);
  return Make({kWsTag, kCommandClose, id, code_text, reason});
}

bool SendableCloseCode(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= kFirstRegisteredCloseCode && code <= kLastPrivateCloseCode);
}

std::optional<WsCommand> DecodeWsCommand(const Frames& parts) {
  if (parts.size() < 4 || !IsWsMessage(parts)) return std::nullopt;
  const std::string_view command = parts[1].to_string_view();
  WsCommand c;
  if (command == kCommandSend || command == kCommandFanout) {
    if (parts.size() != 4) return std::nullopt;
    if (command == kCommandSend) {
      c.kind = WsCommand::Kind::kSend;
      uint64_t id = 0;
      if (!DecodeId(parts[2], &id)) return std::nullopt;
      c.conn_ids.push_back(id);
    } else {
      c.kind = WsCommand::Kind::kFanout;
      c.conn_ids = DecodeIds(parts[2].to_string_view());
      if (c.conn_ids.empty()) return std::nullopt;
    }
    c.payload = std::make_shared<const std::string>(parts[3].to_string());
    return c;
  }
  if (command == kCommandClose) {
    if (parts.size() != 5) return std::nullopt;
    c.kind = WsCommand::Kind::kClose;
    uint64_t id = 0;
    if (!DecodeId(parts[2], &id)) return std::nullopt;
    c.conn_ids.push_back(id);
    int code = 0;
    if (!ParseDecimal(parts[3].to_string_view(), &code)) return std::nullopt;
    if (!SendableCloseCode(code)) return std::nullopt;
    c.code = static_cast<uint16_t>(code);
    c.reason = CutUtf8(parts[4].to_string_view(), kMaxCloseReason);
    return c;
  }
  return std::nullopt;
}

}  // namespace chorus::broker::bridge
