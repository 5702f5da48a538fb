// WebSocket JSON codec, the decoding direction (client -> node; docs/protocol/websocket.md;
// encoding is client_json_encode.cc). Decoding uses the simdjson DOM parser: it
// validates every line completely (structure, UTF-8, escapes, numbers) before we look at it,
// which matters because `data` values are stored and re-sent to other clients. A data value is
// re-emitted minified from the DOM (numbers in simdjson's canonical form).
#include "broker/protocol/client_json.h"

#include <simdjson.h>

#include <charconv>
#include <limits>

namespace chorus::broker::json {
namespace {

namespace dom = simdjson::dom;

// Envelope levels above a data value: the command object and the method object.
constexpr size_t kEnvelopeDepth = 2;

dom::parser& Parser() {
  thread_local dom::parser parser = [] {
    dom::parser p;
    // simdjson refuses a document nested max_depth deep: +1 so that a data value of exactly
    // kMaxDataDepth levels passes and one more does not (JsonDecode.DataNestingIsBounded).
    // On failure (out of memory) every parse fails later: frames are refused, never misread.
    const auto err = p.allocate(4096, kEnvelopeDepth + kMaxDataDepth + 1);
    static_cast<void>(err);
    return p;
  }();
  return parser;
}

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

// Field readers. Each returns false when the value has the wrong type (the command is then
// answered with 107); a JSON null leaves `out` at its default (proto3 JSON: null = absent).
bool ReadString(dom::element v, std::string& out) {
  if (v.is_null()) return true;
  std::string_view s;
  if (v.get(s) != simdjson::SUCCESS) return false;
  out.assign(s);  // simdjson validated the UTF-8 and the escapes (no lone surrogates)
  return true;
}

bool ReadBool(dom::element v, bool& out) {
  if (v.is_null()) return true;
  return v.get(out) == simdjson::SUCCESS;
}

// Integers: a JSON integer, or a decimal string (proto3 JSON writes 64-bit integers as strings).
template <typename T>
bool ReadInt(dom::element v, T& out) {
  switch (v.type()) {
    case dom::element_type::NULL_VALUE:
      return true;
    case dom::element_type::INT64: {
      const int64_t x = v.get_int64().value_unsafe();
      if (x < static_cast<int64_t>(std::numeric_limits<T>::min())) return false;
      if (x > 0 && static_cast<uint64_t>(x) > std::numeric_limits<T>::max()) return false;
      out = static_cast<T>(x);
      return true;
    }
    case dom::element_type::UINT64: {
      const uint64_t x = v.get_uint64().value_unsafe();
      if (x > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
      out = static_cast<T>(x);
      return true;
    }
    case dom::element_type::STRING: {
      const std::string_view s = v.get_string().value_unsafe();
      T x{};
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
      if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return false;
      out = x;
      return true;
    }
    default:
      return false;
  }
}

// A data value: any JSON value, minified. null and absent both give "".
void ReadData(dom::element v, std::string& out) {
  if (v.is_null()) return;
  out = simdjson::minify(v);
}

// Applies `f(key, value)` to every field of the method object; false when it is not an object
// or `f` refused a field. null stands for an empty object.
template <typename F>
bool ForEachField(dom::element body, F&& f) {
  if (body.is_null()) return true;
  dom::object obj;
  if (body.get(obj) != simdjson::SUCCESS) return false;
  for (auto [key, value] : obj) {
    if (!f(key, value)) return false;
  }
  return true;
}

// The method fields of a Command, in client.proto order: the first non-null one wins (W-8).
enum Method : int {
  kConnect,
  kSubscribe,
  kUnsubscribe,
  kPublish,
  kPresence,
  kPresenceStats,
  kHistory,
  kPing,
  kSend,
  kRpc,
  kRefresh,
  kSubRefresh,
  kNone,
};

Method MethodOf(std::string_view key) {
  static constexpr std::string_view kNames[] = {
      "connect", "subscribe", "unsubscribe", "publish", "presence", "presence_stats",
      "history", "ping",      "send",        "rpc",     "refresh",  "sub_refresh"};
  for (int i = 0; i < kNone; ++i) {
    if (kNames[i] == key) return static_cast<Method>(i);
  }
  return kNone;
}

bool DecodeSince(dom::element v, std::optional<StreamPosition>& out) {
  if (v.is_null()) return true;
  StreamPosition pos;
  const bool ok = v.is_object() && ForEachField(v, [&](std::string_view k, dom::element x) {
                    if (k == "offset") return ReadInt(x, pos.offset);
                    if (k == "epoch") return ReadString(x, pos.epoch);
                    return true;
                  });
  if (ok) out = std::move(pos);
  return ok;
}

// connect `subs`: channel -> {recover, epoch, offset} (the SDK sends its recoverable
// server-side subscriptions). More entries than a connection may hold: 107.
constexpr size_t kMaxConnectSubs = 1024;

bool DecodeConnectSubs(dom::element v,
                       std::vector<std::pair<std::string, SubscribeRecovery>>& out) {
  return ForEachField(v, [&](std::string_view channel, dom::element x) {
    if (out.size() >= kMaxConnectSubs || !(x.is_object() || x.is_null())) return false;
    SubscribeRecovery rec;
    const bool ok = ForEachField(x, [&](std::string_view k, dom::element f) {
      if (k == "recover") return ReadBool(f, rec.recover);
      if (k == "epoch") return ReadString(f, rec.epoch);
      if (k == "offset") return ReadInt(f, rec.offset);
      return true;
    });
    out.emplace_back(std::string(channel), std::move(rec));
    return ok;
  });
}

// Decodes the method object into cmd.request; false = 107.
bool DecodeBody(Method m, dom::element body, ClientCommand& cmd) {
  switch (m) {
    case kConnect: {
      ConnectRequest r;
      // `data` and `headers` are not used by Chorus (no connect proxy): ignored.
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        if (k == "token") return ReadString(v, r.token);
        if (k == "subs") return DecodeConnectSubs(v, r.subs);
        if (k == "name") return ReadString(v, r.name);
        if (k == "version") return ReadString(v, r.version);
        return true;
      });
      cmd.request = std::move(r);
      return ok;
    }
    case kSubscribe: {
      SubscribeRequest r;
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        if (k == "channel") return ReadString(v, r.channel);
        if (k == "token") return ReadString(v, r.token);
        if (k == "recover") return ReadBool(v, r.recover);
        if (k == "epoch") return ReadString(v, r.epoch);
        if (k == "offset") return ReadInt(v, r.offset);
        if (k == "positioned") return ReadBool(v, r.positioned);
        if (k == "recoverable") return ReadBool(v, r.recoverable);
        if (k == "join_leave") return ReadBool(v, r.join_leave);
        return true;  // data, delta, flag, tf...: not supported, ignored
      });
      cmd.request = std::move(r);
      return ok;
    }
    case kUnsubscribe: {
      UnsubscribeRequest r;
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        return k == "channel" ? ReadString(v, r.channel) : true;
      });
      cmd.request = std::move(r);
      return ok;
    }
    case kPublish: {
      PublishRequest r;
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        if (k == "channel") return ReadString(v, r.channel);
        if (k == "data") ReadData(v, r.data);
        return true;
      });
      const bool has_data = !r.data.empty();
      cmd.request = std::move(r);
      return ok && has_data;  // W-16: a publication needs data
    }
    case kPresence: {
      PresenceRequest r;
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        if (k == "channel") return ReadString(v, r.channel);
        if (k == "cursor") return ReadString(v, r.cursor);
        if (k == "limit") return ReadInt(v, r.limit);
        return true;
      });
      cmd.request = std::move(r);
      return ok;
    }
    case kPresenceStats: {
      PresenceStatsRequest r;
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        return k == "channel" ? ReadString(v, r.channel) : true;
      });
      cmd.request = std::move(r);
      return ok;
    }
    case kHistory: {
      HistoryRequest r;
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        if (k == "channel") return ReadString(v, r.channel);
        if (k == "limit") return ReadInt(v, r.limit);
        if (k == "since") return DecodeSince(v, r.since);
        if (k == "reverse") return ReadBool(v, r.reverse);
        return true;
      });
      cmd.request = std::move(r);
      return ok;
    }
    case kPing: {
      cmd.request = PingRequest{};
      return ForEachField(body, [](std::string_view, dom::element) { return true; });
    }
    case kSend: {
      SendRequest r;
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        if (k == "data") ReadData(v, r.data);
        return true;
      });
      cmd.request = std::move(r);
      return ok;
    }
    case kRpc: {
      RpcRequest r;
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        if (k == "method") return ReadString(v, r.method);
        if (k == "data") ReadData(v, r.data);
        return true;
      });
      cmd.request = std::move(r);
      return ok;
    }
    case kRefresh: {
      RefreshRequest r;
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        return k == "token" ? ReadString(v, r.token) : true;
      });
      cmd.request = std::move(r);
      return ok;
    }
    case kSubRefresh: {
      SubRefreshRequest r;
      const bool ok = ForEachField(body, [&](std::string_view k, dom::element v) {
        if (k == "channel") return ReadString(v, r.channel);
        if (k == "token") return ReadString(v, r.token);
        return true;
      });
      cmd.request = std::move(r);
      return ok;
    }
    case kNone:
      break;
  }
  return false;
}

enum class LineKind { kCommand, kPong };

// One parsed line (an element of the parser's current document) into `cmd`.
LineKind DecodeCommand(dom::element root, ClientCommand& cmd) {
  dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) {
    cmd.error = ToCode(Errc::kBadRequest);  // not an object
    return LineKind::kCommand;
  }
  bool bad_id = false;
  Method method = kNone;
  dom::element body;
  for (auto [key, value] : obj) {
    if (key == "id") {
      uint32_t id = 0;
      if (ReadInt(value, id)) {
        cmd.id = id;
      } else {
        bad_id = true;
      }
      continue;
    }
    const Method m = MethodOf(key);
    if (m < method && !value.is_null()) {
      method = m;
      body = value;
    }
  }
  if (bad_id) {
    cmd.id = 0;
    cmd.error = ToCode(Errc::kBadRequest);
    return LineKind::kCommand;
  }
  if (method == kNone) {
    if (cmd.id == 0) return LineKind::kPong;  // `{}`, or only unknown fields (W-9)
    cmd.error = ToCode(Errc::kMethodNotFound);
    return LineKind::kCommand;
  }
  if (!DecodeBody(method, body, cmd)) cmd.error = ToCode(Errc::kBadRequest);
  return LineKind::kCommand;
}

const char* MalformedReason(simdjson::error_code e) {
  switch (e) {
    case simdjson::DEPTH_ERROR:
      return "nesting too deep";
    case simdjson::UTF8_ERROR:
      return "invalid UTF-8";
    case simdjson::STRING_ERROR:
      return "bad string escape";
    case simdjson::NUMBER_ERROR:
      return "number out of range";
    default:
      return "not JSON";
  }
}

std::optional<dom::element> ParseParams(std::string_view data_json) {
  if (data_json.empty()) return std::nullopt;
  dom::element root;
  if (Parser().parse(data_json.data(), data_json.size(), true).get(root) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  if (!root.is_object()) return std::nullopt;
  return root;
}

}  // namespace

DecodedFrame DecodeFrame(std::string_view text, size_t max_commands) {
  DecodedFrame out;
  auto refuse = [&](std::string_view reason) {
    out.commands.clear();
    out.pongs = 0;
    out.malformed = true;
    out.reason = reason;
    return std::move(out);
  };
  dom::parser& parser = Parser();
  size_t lines = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (IsBlank(line)) continue;
    if (++lines > max_commands) return refuse("too many commands");
    dom::element root;
    if (const auto err = parser.parse(line.data(), line.size(), true).get(root)) {
      return refuse(MalformedReason(err));
    }
    ClientCommand cmd;
    if (DecodeCommand(root, cmd) == LineKind::kPong) {
      ++out.pongs;
    } else {
      out.commands.push_back(std::move(cmd));
    }
  }
  return out;
}

std::optional<PresenceRequest> DecodePresencePageParams(std::string_view data_json) {
  const auto root = ParseParams(data_json);
  if (!root) return std::nullopt;
  PresenceRequest r;
  bool has_channel = false;
  const bool ok = ForEachField(*root, [&](std::string_view k, dom::element v) {
    if (k == "channel") {
      has_channel = v.is_string();
      return ReadString(v, r.channel);
    }
    if (k == "cursor") return ReadString(v, r.cursor);
    if (k == "limit") return ReadInt(v, r.limit);
    return true;
  });
  if (!ok || !has_channel) return std::nullopt;
  return r;
}

std::optional<PresenceStatsRequest> DecodePresenceUsersParams(std::string_view data_json) {
  const auto root = ParseParams(data_json);
  if (!root) return std::nullopt;
  PresenceStatsRequest r;
  bool has_channel = false;
  const bool ok = ForEachField(*root, [&](std::string_view k, dom::element v) {
    if (k == "channel") {
      has_channel = v.is_string();
      return ReadString(v, r.channel);
    }
    return true;
  });
  if (!ok || !has_channel) return std::nullopt;
  return r;
}

}  // namespace chorus::broker::json
