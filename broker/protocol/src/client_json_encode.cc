// WebSocket JSON codec, the encoding direction (node -> client; docs/protocol/websocket.md;
// decoding is client_json_decode.cc): replies and pushes as compact JSON, written directly
// (json_writer.h) rather than through a DOM, since every push is built once per event.
#include <string>

#include "broker/protocol/client_json.h"
#include "json_writer.h"

namespace chorus::broker::json {
namespace {

using detail::AppendString;
using detail::AppendUint;
using detail::ObjectWriter;

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

}  // namespace

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

}  // namespace chorus::broker::json
