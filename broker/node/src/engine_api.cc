// The HTTP server API (Centrifugo-compatible, `POST /api/<method>`), /health and /metrics, as
// the engine answers them through the gateway bridge (broker/gateway/README.md, "Bridge").
// The gateway has checked the API key; the body is the request's JSON.
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "sync_service.h"

namespace chorus::broker::node {
namespace {

using nlohmann::json;

constexpr size_t kBridgeBatch = 256;

json ErrorJson(Errc e) {
  return {
      {"error", {{"code", static_cast<uint32_t>(e)}, {"message", make_error_code(e).message()}}}};
}

json ErrorJson(const std::error_code& ec) {
  const bool client =
      ec.category() == BrokerCategory() && IsClientCode(static_cast<Errc>(ec.value()));
  return ErrorJson(client ? static_cast<Errc>(ec.value()) : Errc::kInternal);
}

// Publication data is kept as compact JSON text; the API returns it as a JSON value.
json DataJson(const std::string& text) {
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json(text) : j;
}

json ClientInfoJson(const PresenceEntry& e) {
  json j = {{"client", e.client}, {"user", e.user}};
  if (!e.conn_info.empty()) j["conn_info"] = DataJson(e.conn_info);
  if (!e.chan_info.empty()) j["chan_info"] = DataJson(e.chan_info);
  return j;
}

json PublicationJson(const Publication& p) {
  json j = {{"data", DataJson(p.data)}};
  if (p.offset != 0) j["offset"] = p.offset;
  if (p.info) j["info"] = DataJson(*p.info);
  if (!p.tags.empty()) j["tags"] = p.tags;
  return j;
}

// Glob match with '*' (any run) and '?' (one byte), as Centrifugo's channels pattern.
bool Glob(std::string_view pat, std::string_view s) {
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pat.size() && (pat[p] == '?' || pat[p] == s[i])) {
      ++p;
      ++i;
    } else if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

// Reads an optional string field; false when present with another type.
bool OptString(const json& params, const char* key, std::string& out) {
  auto it = params.find(key);
  if (it == params.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

// `{offset, epoch}` (history `since`, subscribe `recover_since`): "" or why it is malformed.
std::string ReadPosition(const json& j, const std::string& what, StreamPosition& pos) {
  if (!j.is_object()) return what + " must be an object";
  if (auto o = j.find("offset"); o != j.end() && !o->is_null()) {
    if (!o->is_number_unsigned()) return what + ".offset must be a non-negative integer";
    pos.offset = o->get<uint64_t>();
  }
  if (!OptString(j, "epoch", pos.epoch)) return what + ".epoch must be a string";
  return "";
}

}  // namespace

void Engine::ReadBridge() {
  for (size_t i = 0; i < kBridgeBatch; ++i) {
    bridge::Frames frames;
    zmq::message_t part;
    if (!bridge_.recv(part, zmq::recv_flags::dontwait)) return;
    zmq::message_t routing_id = std::move(part);
    while (true) {
      const bool more = frames.empty() ? routing_id.more() : frames.back().more();
      if (!more) break;
      zmq::message_t next;
      (void)bridge_.recv(next, zmq::recv_flags::none);
      frames.push_back(std::move(next));
    }
    std::optional<bridge::GatewayMessage> msg = bridge::DecodeGatewayMessage(frames);
    if (!msg) {
      Log().warn("bridge: dropped a message of {} frames", frames.size());
      continue;
    }
    if (const auto* ws = std::get_if<bridge::WsEvent>(&*msg)) {
      HandleWsEvent(routing_id.to_string(), *ws);
      continue;
    }
    AnswerBridge(routing_id, std::get<bridge::HttpRequest>(*msg));
  }
  RunPendingCloses();
}

void Engine::AnswerBridge(const zmq::message_t& routing_id, const bridge::HttpRequest& request) {
  ++counters_.api_requests;
  HttpAnswer a;
  try {
    if (request.kind == bridge::kKindApi) {
      a = HandleApi(request.method, request.body);
    } else if (request.kind == bridge::kKindHealth) {
      a = Health();
    } else if (request.kind == bridge::kKindMetrics) {
      a = Metrics();
    } else {
      a = {404, "application/json", ErrorJson(Errc::kMethodNotFound).dump()};
    }
  } catch (const std::exception& e) {
    Log().error("bridge {}: {}", request.kind, e.what());
    a = {500, "application/json", ErrorJson(Errc::kInternal).dump()};
  }
  bridge::Frames reply = bridge::EncodeHttpReply(request.id, a.status, a.content_type, a.body);
  try {
    bridge_.send(zmq::buffer(routing_id.data(), routing_id.size()), zmq::send_flags::sndmore);
    for (size_t k = 0; k < reply.size(); ++k) {
      bridge_.send(reply[k],
                   k + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    Log().warn("bridge: reply lost: {}", e.what());  // the gateway went away
  }
}

Engine::HttpAnswer Engine::Health() const {
  return {200, "application/json", R"({"status":"ok"})"};
}

// The server API: one handler per method, found in a table (Centrifugo-compatible methods plus
// Chorus's `send`). Each handler gets the parsed body and the engine; the gateway has checked
// the API key.
class Engine::Api {
 public:
  struct Call {
    Engine& engine;
    json& params;
    std::string channel;  // "" when absent
    int64_t now_ms = 0;
  };
  using Handler = HttpAnswer (*)(Call&);

  static const Handler* Find(std::string_view method) {
    static const std::unordered_map<std::string_view, Handler> kTable = {
        {"publish", &Publish},
        {"broadcast", &Broadcast},
        {"presence", &Presence},
        {"presence_stats", &PresenceStatsOf},
        {"history", &History},
        {"history_remove", &HistoryRemove},
        {"channels", &Channels},
        {"info", &Info},
        {"disconnect", &Disconnect},
        {"unsubscribe", &Unsubscribe},
        {"subscribe", &Subscribe},
        {"send", &Send},
        // The sync scheduler (sync_service.h, docs/scheduler.md "Running in chorusd").
        {"sync_submit", &SyncSubmit},
        {"sync_status", &SyncStatus},
        {"sync_cancel", &SyncCancel},
    };
    auto it = kTable.find(method);
    return it == kTable.end() ? nullptr : &it->second;
  }

  static HttpAnswer Bad(std::string why) {
    json j = ErrorJson(Errc::kBadRequest);
    j["error"]["message"] = "bad request: " + why;
    return HttpAnswer{400, "application/json", j.dump()};
  }
  static HttpAnswer Ok(json result) {
    return HttpAnswer{200, "application/json", json{{"result", std::move(result)}}.dump()};
  }
  template <typename E>
  static HttpAnswer Err(const E& e) {
    return HttpAnswer{200, "application/json", ErrorJson(e).dump()};
  }

 private:
  // ---- The sync scheduler: its service checks the params and answers.
  static HttpAnswer SyncAnswer(const SyncService::Reply& r) {
    return HttpAnswer{r.status, "application/json", r.body.dump()};
  }
  static HttpAnswer SyncDisabled() {
    json j = ErrorJson(Errc::kNotAvailable);
    j["error"]["message"] = "not available: the sync scheduler is disabled ([scheduler] enabled)";
    return HttpAnswer{404, "application/json", j.dump()};
  }
  static HttpAnswer SyncSubmit(Call& c) {
    if (!c.engine.sync_) return SyncDisabled();
    return SyncAnswer(c.engine.sync_->Submit(c.params, c.now_ms));
  }
  static HttpAnswer SyncStatus(Call& c) {
    if (!c.engine.sync_) return SyncDisabled();
    return SyncAnswer(c.engine.sync_->Status(c.params));
  }
  static HttpAnswer SyncCancel(Call& c) {
    if (!c.engine.sync_) return SyncDisabled();
    return SyncAnswer(c.engine.sync_->Cancel(c.params));
  }

  static json PublishOne(Engine& e, const std::string& ch, const json& data, bool skip_history,
                         std::map<std::string, std::string> tags) {
    std::string text = data.dump();
    if (text.size() > e.registry_.limits().max_publication_bytes) {
      return ErrorJson(Errc::kLimitExceeded);
    }
    auto out = e.PublishAndDeliver(ch, std::move(text), std::nullopt, std::move(tags), nullptr,
                                   skip_history);
    if (!out) return ErrorJson(out.error());
    json r = json::object();
    if (!out->epoch.empty()) {
      r["offset"] = out->publication.offset;
      r["epoch"] = out->epoch;
    }
    return {{"result", r}};
  }

  static bool ReadTags(const json& params, std::map<std::string, std::string>& tags) {
    auto it = params.find("tags");
    if (it == params.end() || it->is_null()) return true;
    if (!it->is_object()) return false;
    for (auto& [k, v] : it->items()) {
      if (!v.is_string()) return false;
      tags[k] = v.get<std::string>();
    }
    return true;
  }

  static HttpAnswer Publish(Call& c) {
    if (c.channel.empty()) return Bad("channel is required");
    if (!c.params.contains("data")) return Bad("data is required");
    std::map<std::string, std::string> tags;
    if (!ReadTags(c.params, tags)) return Bad("tags must be an object of strings");
    json r = PublishOne(c.engine, c.channel, c.params["data"],
                        c.params.value("skip_history", false), tags);
    return HttpAnswer{200, "application/json", r.dump()};
  }

  static HttpAnswer Broadcast(Call& c) {
    auto it = c.params.find("channels");
    if (it == c.params.end() || !it->is_array()) return Bad("channels must be an array");
    if (!c.params.contains("data")) return Bad("data is required");
    std::map<std::string, std::string> tags;
    if (!ReadTags(c.params, tags)) return Bad("tags must be an object of strings");
    for (const auto& ch : *it) {
      if (!ch.is_string()) return Bad("channels must be strings");
    }
    json responses = json::array();
    for (const auto& ch : *it) {
      responses.push_back(
          PublishOne(c.engine, ch.get<std::string>(), c.params["data"], false, tags));
    }
    return Ok({{"responses", responses}});
  }

  // Presence and presence_stats share the checks: a channel of a namespace with presence.
  static HttpAnswer PresenceOf(Call& c, bool stats_only) {
    if (c.channel.empty()) return Bad("channel is required");
    auto resolved = c.engine.table_.Resolve(c.channel);
    if (!resolved) return Err(resolved.error());
    const ChannelOptions& opts = *resolved->options;
    if (!opts.presence) return Err(Errc::kNotAvailable);
    const Channel* ch = c.engine.table_.Find(c.channel);
    if (stats_only) {
      const PresenceStats st = ch ? ch->presence.Stats() : PresenceStats{};
      return Ok({{"num_clients", st.num_clients}, {"num_users", st.num_users}});
    }
    std::string cursor;
    if (!OptString(c.params, "cursor", cursor)) return Bad("cursor must be a string");
    size_t limit = opts.presence_page_size;
    if (auto l = c.params.find("limit"); l != c.params.end() && !l->is_null()) {
      if (!l->is_number_unsigned()) return Bad("limit must be a positive integer");
      limit = std::clamp<size_t>(l->get<size_t>(), 1, opts.presence_page_size);
    }
    PresencePage page;
    if (ch) page = ch->presence.Page(cursor, limit);
    json presence = json::object();
    for (const auto& e : page.entries) presence[e.client] = ClientInfoJson(e);
    json r = {{"presence", presence}};
    if (!page.next_cursor.empty()) r["next_cursor"] = page.next_cursor;  // paged (Chorus extra)
    return Ok(r);
  }
  static HttpAnswer Presence(Call& c) { return PresenceOf(c, false); }
  static HttpAnswer PresenceStatsOf(Call& c) { return PresenceOf(c, true); }

  static HttpAnswer History(Call& c) {
    if (c.channel.empty()) return Bad("channel is required");
    HistoryQuery q;
    if (auto l = c.params.find("limit"); l != c.params.end() && !l->is_null()) {
      if (!l->is_number_integer()) return Bad("limit must be an integer");
      q.limit = l->get<int64_t>();
    }
    const auto max = static_cast<int64_t>(c.engine.options_.history_max_limit);
    q.limit = q.limit < 0 ? max : std::min(q.limit, max);
    if (auto r = c.params.find("reverse"); r != c.params.end() && !r->is_null()) {
      if (!r->is_boolean()) return Bad("reverse must be a boolean");
      q.reverse = r->get<bool>();
    }
    if (auto s = c.params.find("since"); s != c.params.end() && !s->is_null()) {
      StreamPosition pos;
      if (std::string why = ReadPosition(*s, "since", pos); !why.empty()) return Bad(why);
      q.since = pos;
    }
    auto r = c.engine.table_.History(c.channel, q, c.now_ms);
    if (!r) return Err(r.error());
    json pubs = json::array();
    for (const auto& p : r->publications) pubs.push_back(PublicationJson(p));
    return Ok({{"publications", pubs}, {"epoch", r->top.epoch}, {"offset", r->top.offset}});
  }

  static HttpAnswer HistoryRemove(Call& c) {
    if (c.channel.empty()) return Bad("channel is required");
    auto r = c.engine.table_.RemoveHistory(c.channel, c.now_ms);
    if (!r) return Err(r.error());
    return Ok(json::object());
  }

  static HttpAnswer Channels(Call& c) {
    std::string pattern;
    if (!OptString(c.params, "pattern", pattern)) return Bad("pattern must be a string");
    json channels = json::object();
    c.engine.table_.ForEach([&](const Channel& ch) {
      if (ch.subscribers.empty()) return;  // Centrifugo lists active channels only
      if (!pattern.empty() && !Glob(pattern, ch.name)) return;
      channels[ch.name] = {{"num_clients", ch.subscribers.size()}};
    });
    return Ok({{"channels", channels}});
  }

  static HttpAnswer Info(Call& c) {
    Engine& e = c.engine;
    std::set<std::string_view> users;
    size_t subs = 0;
    e.sessions_.ForEach([&](const Session& s) {
      users.insert(s.user);
      subs += s.subs.size();
    });
    const auto uptime =
        std::chrono::duration_cast<std::chrono::seconds>(chp::Clock::now() - e.started_).count();
    json node = {{"uid", e.options_.node_id}, {"name", e.options_.node_id},
                 {"version", "0.1.0"},        {"num_clients", e.sessions_.size()},
                 {"num_users", users.size()}, {"num_channels", e.table_.size()},
                 {"num_subs", subs},          {"uptime", uptime}};
    return Ok({{"nodes", json::array({node})}});
  }

  // The sessions a targeted call (disconnect, unsubscribe, subscribe, send) names by `user`
  // and/or `client`; a reason in `why` when the params are wrong.
  static std::vector<SubscriberId> Targets(Call& c, std::string& why) {
    std::string user, client;
    if (!OptString(c.params, "user", user) || !OptString(c.params, "client", client)) {
      why = "user and client must be strings";
      return {};
    }
    if (user.empty() && client.empty()) {
      why = "user or client is required";
      return {};
    }
    std::vector<SubscriberId> targets;
    c.engine.sessions_.ForEach([&](const Session& s) {
      if (!user.empty() && s.user != user) return;
      if (!client.empty() && s.client != client) return;
      targets.push_back(s.id);
    });
    return targets;
  }

  static HttpAnswer Send(Call& c) {  // Chorus extra: an asynchronous message to each session
    std::string why;
    const std::vector<SubscriberId> targets = Targets(c, why);
    if (!why.empty()) return Bad(why);
    auto d = c.params.find("data");
    if (d == c.params.end() || d->is_null()) return Bad("data is required");
    const std::string data = d->dump();
    if (data.size() > c.engine.registry_.limits().max_publication_bytes) {
      return Err(Errc::kLimitExceeded);
    }
    for (SubscriberId id : targets) {
      Session* s = c.engine.FindSession(id);
      if (s != nullptr && s->connected) c.engine.SendTo(*s, EncoderOf(*s).MessagePush(data));
    }
    return Ok(json::object());
  }

  static HttpAnswer Subscribe(Call& c) {
    std::string why;
    const std::vector<SubscriberId> targets = Targets(c, why);
    if (!why.empty()) return Bad(why);
    if (c.channel.empty()) return Bad("channel is required");
    SubscribeRecovery from;
    if (auto rs = c.params.find("recover_since"); rs != c.params.end() && !rs->is_null()) {
      StreamPosition pos;
      if (std::string bad = ReadPosition(*rs, "recover_since", pos); !bad.empty()) {
        return Bad(bad);
      }
      from = {true, pos.epoch, pos.offset};
    }
    auto r = c.engine.ServerSubscribe(targets, c.channel, from);
    return r ? Ok(json::object()) : Err(r.error());
  }

  static HttpAnswer Unsubscribe(Call& c) {
    std::string why;
    const std::vector<SubscriberId> targets = Targets(c, why);
    if (!why.empty()) return Bad(why);
    if (c.channel.empty()) return Bad("channel is required");
    if (auto resolved = c.engine.table_.Resolve(c.channel); !resolved) {
      return Err(resolved.error());
    }
    for (SubscriberId id : targets) {
      if (Session* s = c.engine.FindSession(id)) {
        c.engine.LeaveChannel(*s, c.channel, true, kUnsubscribeServer.code,
                              kUnsubscribeServer.reason);
      }
    }
    return Ok(json::object());
  }

  static HttpAnswer Disconnect(Call& c) {
    std::string why;
    const std::vector<SubscriberId> targets = Targets(c, why);
    if (!why.empty()) return Bad(why);
    uint32_t code = kDisconnectForce.code;
    std::string reason(kDisconnectForce.reason);
    if (auto d = c.params.find("disconnect"); d != c.params.end() && !d->is_null()) {
      if (!d->is_object()) return Bad("disconnect must be an object");
      if (auto k = d->find("code"); k != d->end()) {
        if (!k->is_number_unsigned() || k->get<uint64_t>() < kMinDisconnectCode ||
            k->get<uint64_t>() > kMaxDisconnectCode) {
          return Bad("disconnect.code must be " + std::to_string(kMinDisconnectCode) + ".." +
                     std::to_string(kMaxDisconnectCode));
        }
        code = k->get<uint32_t>();
      }
      if (!OptString(*d, "reason", reason)) return Bad("disconnect.reason must be a string");
    }
    const bool reconnect = DisconnectReconnects(code);
    for (SubscriberId id : targets) c.engine.CloseSession(id, code, reason, reconnect, true);
    return Ok(json::object());
  }
};

Engine::HttpAnswer Engine::HandleApi(std::string_view method, std::string_view body) {
  json params = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (params.is_discarded()) return Api::Bad("body is not valid JSON");
  if (!params.is_object()) return Api::Bad("body must be a JSON object");
  Api::Call call{*this, params, {}, NowMs()};
  if (!OptString(params, "channel", call.channel)) return Api::Bad("channel must be a string");
  const Api::Handler* handler = Api::Find(method);
  if (handler == nullptr) {
    return HttpAnswer{404, "application/json", ErrorJson(Errc::kMethodNotFound).dump()};
  }
  return (*handler)(call);
}

Engine::HttpAnswer Engine::Metrics() const {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value,
                    const char* labels = "") {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += labels;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
  };
  size_t subs = 0;
  sessions_.ForEach([&](const Session& s) { subs += s.subs.size(); });
  const auto& ts = table_.stats();
  const auto& cs = chp_->stats();
  metric("chorus_connections", "gauge", "Client sessions connected.", sessions_.size());
  metric("chorus_subscriptions", "gauge", "Subscriptions of connected sessions.", subs);
  metric("chorus_channels", "gauge", "Channels with state on this node.", table_.size());
  metric("chorus_publications_total", "counter", "Publications accepted.", ts.publications);
  metric("chorus_deliveries_total", "counter", "Messages handed to subscriber connections.",
         counters_.deliveries);
  out += "# HELP chorus_drops_total Messages not delivered, by reason.\n";
  out += "# TYPE chorus_drops_total counter\n";
  out += "chorus_drops_total{reason=\"slow\"} " + std::to_string(counters_.drops_slow) + "\n";
  out += "chorus_drops_total{reason=\"gone\"} " + std::to_string(counters_.drops_gone) + "\n";
  out += "# HELP chorus_recovery_total Subscriptions that asked to recover, by outcome.\n";
  out += "# TYPE chorus_recovery_total counter\n";
  out += "chorus_recovery_total{outcome=\"recovered\"} " + std::to_string(ts.recovered) + "\n";
  out +=
      "chorus_recovery_total{outcome=\"not_recovered\"} " + std::to_string(ts.not_recovered) + "\n";
  out += "# HELP chorus_disconnects_total Sessions closed, by close code.\n";
  out += "# TYPE chorus_disconnects_total counter\n";
  for (const auto& [code, n] : counters_.disconnects) {
    out += "chorus_disconnects_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) +
           "\n";
  }
  metric("chorus_connects_total", "counter", "Sessions opened.", counters_.connects);
  metric("chorus_native_commands_total", "counter", "Native protocol commands received.",
         counters_.commands);
  metric("chorus_native_malformed_total", "counter", "Native frames dropped as malformed.",
         counters_.malformed);
  metric("chorus_api_requests_total", "counter", "Bridge requests (API, health, metrics).",
         counters_.api_requests);
  metric("chorus_chp_changes_total", "counter", "Sequenced changes of the CHP state mirror.",
         cs.changes);
  metric("chorus_chp_write_errors_total", "counter", "CHP mirror writes refused.",
         sink_->write_errors());
  out += "# HELP chorus_queue_depth Bytes or entries waiting in bounded queues.\n";
  out += "# TYPE chorus_queue_depth gauge\n";
  out +=
      "chorus_queue_depth{queue=\"chp_replies_bytes\"} " + std::to_string(cs.pending_bytes) + "\n";
  out += "chorus_queue_depth{queue=\"closed_sessions\"} " +
         std::to_string(sessions_.closed_size()) + "\n";
  if (sync_) out += sync_->MetricsText();
  return {200, "text/plain; version=0.0.4", out};
}

}  // namespace chorus::broker::node
