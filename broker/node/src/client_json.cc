// WebSocket JSON codec (docs/protocol/websocket.md). Decoding uses the simdjson DOM parser: it
// validates every line completely (structure, UTF-8, escapes, numbers) before we look at it,
// which matters because `data` values are stored and re-sent to other clients. A data value is
// re-emitted minified from the DOM (numbers in simdjson's canonical form).
#include "broker/node/client_json.h"

#include <simdjson.h>

#include <charconv>
#include <limits>

namespace chorus::broker::node::json {
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
    cmd.error = 107;  // not an object
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
    cmd.error = 107;
    return LineKind::kCommand;
  }
  if (method == kNone) {
    if (cmd.id == 0) return LineKind::kPong;  // `{}`, or only unknown fields (W-9)
    cmd.error = 104;
    return LineKind::kCommand;
  }
  if (!DecodeBody(method, body, cmd)) cmd.error = 107;
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

// --- Encoding helpers.

// Appends `s` as a JSON string literal with the short escapes (\n, \t...) where JSON has one:
// the form simdjson's minify writes, so our output is canonical compact JSON. `s` is UTF-8
// (checked where it entered the node) and copied as is otherwise.
void AppendString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// Writes an object's fields: `"key":` (escaped) preceded by a comma after the first field.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }
  void Key(std::string_view key) {
    if (!first_) out_.push_back(',');
    first_ = false;
    AppendString(out_, key);
    out_.push_back(':');
  }
  void Str(std::string_view key, std::string_view v) {
    Key(key);
    AppendString(out_, v);
  }
  void StrIfSet(std::string_view key, std::string_view v) {
    if (!v.empty()) Str(key, v);
  }
  void Uint(std::string_view key, uint64_t v) {
    Key(key);
    AppendUint(out_, v);
  }
  void UintIfSet(std::string_view key, uint64_t v) {
    if (v != 0) Uint(key, v);
  }
  void TrueIfSet(std::string_view key, bool v) {
    if (v) {
      Key(key);
      out_ += "true";
    }
  }
  void RawIfSet(std::string_view key, std::string_view json) {
    if (!json.empty()) {
      Key(key);
      out_.append(json);
    }
  }
  void Close() { out_.push_back('}'); }

 private:
  std::string& out_;
  bool first_ = true;
};

// `{"id":N,"<method>":` ... the caller writes the result object, then CloseReply.
std::string OpenReply(uint32_t id, std::string_view method) {
  std::string out = "{\"id\":";
  AppendUint(out, id);
  out += ",\"";
  out.append(method);
  out += "\":";
  return out;
}

void CloseReply(std::string& out) {
  out.push_back('}');
}

// ClientInfo: {"client","user","conn_info","chan_info"}; client and user always written (the
// SDK reads them without a default), the infos (JSON, checked where they entered the node)
// spliced raw when set. The same shape as native_codec.h's ClientInfoToJson, with our escapes.
void AppendClientInfo(std::string& out, const PresenceEntry& e) {
  ObjectWriter w(out);
  w.Str("client", e.client);
  w.Str("user", e.user);
  w.RawIfSet("conn_info", e.conn_info);
  w.RawIfSet("chan_info", e.chan_info);
  w.Close();
}

void AppendPublication(std::string& out, const Publication& p) {
  ObjectWriter w(out);
  w.RawIfSet("data", p.data);
  if (p.info) w.RawIfSet("info", *p.info);
  w.UintIfSet("offset", p.offset);
  if (!p.tags.empty()) {
    w.Key("tags");
    ObjectWriter tags(out);
    for (const auto& [k, v] : p.tags) tags.Str(k, v);
    tags.Close();
  }
  w.Close();
}

void AppendPublications(ObjectWriter& w, std::string& out, const std::vector<Publication>& pubs) {
  if (pubs.empty()) return;
  w.Key("publications");
  out.push_back('[');
  for (size_t i = 0; i < pubs.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendPublication(out, pubs[i]);
  }
  out.push_back(']');
}

// {"<client>":{client,user,conn_info,chan_info},...}
void AppendPresenceMap(std::string& out, const std::vector<PresenceEntry>& entries) {
  ObjectWriter w(out);
  for (const auto& e : entries) {
    w.Key(e.client);
    AppendClientInfo(out, e);
  }
  w.Close();
}

std::string OpenPush(std::string_view channel, std::string_view type) {
  std::string out = "{\"push\":{";
  if (!channel.empty()) {
    out += "\"channel\":";
    AppendString(out, channel);
    out.push_back(',');
  }
  out.push_back('"');
  out.append(type);
  out += "\":";
  return out;
}

void ClosePush(std::string& out) {
  out += "}}";
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

std::string ClientInfoJson(const PresenceEntry& e) {
  std::string out;
  AppendClientInfo(out, e);
  return out;
}

namespace {

// A subscribe result object: the subscribe reply's body, and each entry of connect `subs`.
void AppendSubscribeResult(std::string& out, const SubscribeResult& r) {
  ObjectWriter w(out);
  w.TrueIfSet("expires", r.expires);
  if (r.expires) w.UintIfSet("ttl", r.ttl_s);
  w.TrueIfSet("recoverable", r.recoverable);
  w.StrIfSet("epoch", r.epoch);
  AppendPublications(w, out, r.publications);
  w.TrueIfSet("recovered", r.recovered);
  w.UintIfSet("offset", r.offset);
  w.TrueIfSet("positioned", r.positioned);
  w.TrueIfSet("was_recovering", r.was_recovering);
  w.Close();
}

}  // namespace

std::string EncodeReply(uint32_t id, const ConnectResult& r) {
  std::string out = OpenReply(id, "connect");
  ObjectWriter w(out);
  w.StrIfSet("client", r.client);
  w.StrIfSet("version", r.version);
  w.TrueIfSet("expires", r.expires);
  if (r.expires) w.UintIfSet("ttl", r.ttl_s);
  w.UintIfSet("ping", r.ping_s);
  w.TrueIfSet("pong", r.pong_s > 0);
  if (!r.subs.empty()) {  // W-25: the server-side subscriptions, as subscribe results
    w.Key("subs");
    ObjectWriter subs(out);
    for (const auto& [channel, sub] : r.subs) {
      subs.Key(channel);
      AppendSubscribeResult(out, sub);
    }
    subs.Close();
  }
  w.Close();
  CloseReply(out);
  return out;
}

std::string EncodeReply(uint32_t id, const SubscribeResult& r) {
  std::string out = OpenReply(id, "subscribe");
  AppendSubscribeResult(out, r);
  CloseReply(out);
  return out;
}

std::string EncodeReply(uint32_t id, const PublishResult& r) {
  std::string out = OpenReply(id, "publish");
  ObjectWriter w(out);
  w.UintIfSet("offset", r.offset);  // Chorus extras; the SDK ignores them
  w.StrIfSet("epoch", r.epoch);
  w.Close();
  CloseReply(out);
  return out;
}

std::string EncodeReply(uint32_t id, const PresenceResult& r) {
  std::string out = OpenReply(id, "presence");
  ObjectWriter w(out);
  w.Key("presence");  // always present: the SDK iterates it without a default
  AppendPresenceMap(out, r.entries);
  w.StrIfSet("next_cursor", r.next_cursor);
  w.Close();
  CloseReply(out);
  return out;
}

std::string EncodeReply(uint32_t id, const PresenceStats& r) {
  std::string out = OpenReply(id, "presence_stats");
  ObjectWriter w(out);
  w.Uint("num_clients", r.num_clients);  // always present: the SDK reads them without a default
  w.Uint("num_users", r.num_users);
  w.Close();
  CloseReply(out);
  return out;
}

std::string EncodeReply(uint32_t id, const HistoryResultOut& r) {
  std::string out = OpenReply(id, "history");
  ObjectWriter w(out);
  AppendPublications(w, out, r.publications);
  w.StrIfSet("epoch", r.epoch);
  w.UintIfSet("offset", r.offset);
  w.Close();
  CloseReply(out);
  return out;
}

std::string EncodeReply(uint32_t id, const RefreshResult& r) {
  std::string out = OpenReply(id, "refresh");
  ObjectWriter w(out);
  w.StrIfSet("client", r.client);
  w.StrIfSet("version", r.version);
  w.TrueIfSet("expires", r.expires);
  if (r.expires) w.UintIfSet("ttl", r.ttl_s);
  w.Close();
  CloseReply(out);
  return out;
}

std::string EncodeReply(uint32_t id, const SubRefreshResult& r) {
  std::string out = OpenReply(id, "sub_refresh");
  ObjectWriter w(out);
  w.TrueIfSet("expires", r.expires);
  if (r.expires) w.UintIfSet("ttl", r.ttl_s);
  w.Close();
  CloseReply(out);
  return out;
}

std::string EncodeUnsubscribeReply(uint32_t id) {
  std::string out = OpenReply(id, "unsubscribe");
  out += "{}";
  CloseReply(out);
  return out;
}

std::string EncodePingReply(uint32_t id) {
  std::string out = OpenReply(id, "ping");
  out += "{}";
  CloseReply(out);
  return out;
}

std::string EncodeRpcReply(uint32_t id, std::string_view data_json) {
  std::string out = OpenReply(id, "rpc");
  ObjectWriter w(out);
  w.RawIfSet("data", data_json);
  w.Close();
  CloseReply(out);
  return out;
}

std::string EncodeError(uint32_t id, uint32_t code, std::string_view message, bool temporary) {
  std::string out = OpenReply(id, "error");
  ObjectWriter w(out);
  w.Uint("code", code);
  w.StrIfSet("message", message);
  w.TrueIfSet("temporary", temporary);
  w.Close();
  CloseReply(out);
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

std::string EncodePresencePageRpcReply(uint32_t id, const PresenceResult& r) {
  std::string out = OpenReply(id, "rpc");
  out += "{\"data\":";
  ObjectWriter w(out);
  w.Key("presence");
  AppendPresenceMap(out, r.entries);
  w.StrIfSet("next_cursor", r.next_cursor);
  w.Close();
  out.push_back('}');
  CloseReply(out);
  return out;
}

std::string EncodePresenceUsersRpcReply(uint32_t id, const std::vector<std::string>& users,
                                        size_t num_users) {
  std::string out = OpenReply(id, "rpc");
  out += "{\"data\":{\"users\":[";
  for (size_t i = 0; i < users.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendString(out, users[i]);
  }
  out += "],\"num_users\":";
  AppendUint(out, num_users);
  out += "}}";
  CloseReply(out);
  return out;
}

std::string EncodePubPush(std::string_view channel, const Publication& p) {
  std::string out = OpenPush(channel, "pub");
  out.reserve(out.size() + p.data.size() + (p.info ? p.info->size() : 0) + 48);
  AppendPublication(out, p);
  ClosePush(out);
  return out;
}

std::string EncodeJoinPush(std::string_view channel, const PresenceEntry& e) {
  std::string out = OpenPush(channel, "join");
  out += "{\"info\":";
  AppendClientInfo(out, e);
  out.push_back('}');
  ClosePush(out);
  return out;
}

std::string EncodeLeavePush(std::string_view channel, const PresenceEntry& e) {
  std::string out = OpenPush(channel, "leave");
  out += "{\"info\":";
  AppendClientInfo(out, e);
  out.push_back('}');
  ClosePush(out);
  return out;
}

std::string EncodeUnsubscribePush(std::string_view channel, uint32_t code,
                                  std::string_view reason) {
  std::string out = OpenPush(channel, "unsubscribe");
  ObjectWriter w(out);
  w.UintIfSet("code", code);
  w.StrIfSet("reason", reason);
  w.Close();
  ClosePush(out);
  return out;
}

std::string EncodeDisconnectPush(uint32_t code, std::string_view reason, bool reconnect) {
  std::string out = OpenPush({}, "disconnect");
  ObjectWriter w(out);
  w.UintIfSet("code", code);
  w.StrIfSet("reason", reason);
  w.TrueIfSet("reconnect", reconnect);
  w.Close();
  ClosePush(out);
  return out;
}

std::string EncodeSubscribePush(std::string_view channel, const SubscribeResult& r) {
  std::string out = OpenPush(channel, "subscribe");
  AppendSubscribeResult(out, r);
  ClosePush(out);
  return out;
}

std::string EncodeMessagePush(std::string_view data_json) {
  std::string out = OpenPush({}, "message");
  ObjectWriter w(out);
  w.RawIfSet("data", data_json);
  w.Close();
  ClosePush(out);
  return out;
}

void AppendToFrame(std::string& frame, std::string_view message) {
  if (!frame.empty()) frame.push_back('\n');
  frame.append(message);
}

}  // namespace chorus::broker::node::json
