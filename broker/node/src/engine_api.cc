// The HTTP server API (Centrifugo-compatible, `POST /api/<method>`), /health and /metrics, as
// the engine answers them through the gateway bridge (broker/gateway/README.md, "Bridge").
// The gateway has checked the API key; the body is the request's JSON.
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "broker/node/engine.h"
#include "broker/node/log.h"

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
    std::vector<zmq::message_t> frames;
    zmq::message_t part;
    if (!bridge_.recv(part, zmq::recv_flags::dontwait)) return;
    frames.push_back(std::move(part));
    while (frames.back().more()) {
      zmq::message_t next;
      (void)bridge_.recv(next, zmq::recv_flags::none);
      frames.push_back(std::move(next));
    }
    // WebSocket events: [routing id] ["ws"] [event] [conn id, 8 bytes] [payload].
    if (frames.size() == 5 && frames[1].to_string_view() == "ws" && frames[3].size() == 8) {
      uint64_t conn_id = 0;
      std::memcpy(&conn_id, frames[3].data(), sizeof conn_id);
      HandleWsEvent(frames[0].to_string(), frames[2].to_string_view(), conn_id,
                    frames[4].to_string_view());
      continue;
    }
    // HTTP: [routing id] [correlation id] [kind] [method] [body]
    if (frames.size() != 5) {
      Log().warn("bridge: dropped a request of {} frames", frames.size());
      continue;
    }
    ++counters_.api_requests;
    const std::string kind = frames[2].to_string();
    HttpAnswer a;
    try {
      if (kind == "api") {
        a = HandleApi(frames[3].to_string_view(), frames[4].to_string_view());
      } else if (kind == "health") {
        a = Health();
      } else if (kind == "metrics") {
        a = Metrics();
      } else {
        a = {404, "application/json", R"({"error":{"code":104,"message":"method not found"}})"};
      }
    } catch (const std::exception& e) {
      Log().error("bridge {}: {}", kind, e.what());
      a = {500, "application/json", ErrorJson(Errc::kInternal).dump()};
    }
    const std::string status = std::to_string(a.status);
    try {
      bridge_.send(frames[0], zmq::send_flags::sndmore);
      bridge_.send(frames[1], zmq::send_flags::sndmore);
      bridge_.send(zmq::buffer(status), zmq::send_flags::sndmore);
      bridge_.send(zmq::buffer(a.content_type), zmq::send_flags::sndmore);
      bridge_.send(zmq::buffer(a.body), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      Log().warn("bridge: reply lost: {}", e.what());  // the gateway went away
    }
  }
  RunPendingCloses();
}

Engine::HttpAnswer Engine::Health() const {
  return {200, "application/json", R"({"status":"ok"})"};
}

Engine::HttpAnswer Engine::HandleApi(std::string_view method, std::string_view body) {
  auto bad = [](std::string why) {
    json j = ErrorJson(Errc::kBadRequest);
    j["error"]["message"] = "bad request: " + why;
    return HttpAnswer{400, "application/json", j.dump()};
  };
  auto ok = [](json result) {
    return HttpAnswer{200, "application/json", json{{"result", std::move(result)}}.dump()};
  };
  auto err = [](const auto& e) { return HttpAnswer{200, "application/json", ErrorJson(e).dump()}; };

  json params = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (params.is_discarded()) return bad("body is not valid JSON");
  if (!params.is_object()) return bad("body must be a JSON object");
  const int64_t now = NowMs();

  std::string channel;
  if (!OptString(params, "channel", channel)) return bad("channel must be a string");

  auto publish_one = [&](const std::string& ch, const json& data, bool skip_history,
                         std::map<std::string, std::string> tags) -> json {
    std::string text = data.dump();
    if (text.size() > registry_.limits().max_publication_bytes) {
      return ErrorJson(Errc::kLimitExceeded);
    }
    auto out = PublishAndDeliver(ch, std::move(text), std::nullopt, std::move(tags), nullptr,
                                 skip_history);
    if (!out) return ErrorJson(out.error());
    json r = json::object();
    if (!out->epoch.empty()) {
      r["offset"] = out->publication.offset;
      r["epoch"] = out->epoch;
    }
    return {{"result", r}};
  };
  auto read_tags = [&](std::map<std::string, std::string>& tags) -> bool {
    auto it = params.find("tags");
    if (it == params.end() || it->is_null()) return true;
    if (!it->is_object()) return false;
    for (auto& [k, v] : it->items()) {
      if (!v.is_string()) return false;
      tags[k] = v.get<std::string>();
    }
    return true;
  };

  if (method == "publish") {
    if (channel.empty()) return bad("channel is required");
    if (!params.contains("data")) return bad("data is required");
    std::map<std::string, std::string> tags;
    if (!read_tags(tags)) return bad("tags must be an object of strings");
    json r = publish_one(channel, params["data"], params.value("skip_history", false), tags);
    return HttpAnswer{200, "application/json", r.dump()};
  }
  if (method == "broadcast") {
    auto it = params.find("channels");
    if (it == params.end() || !it->is_array()) return bad("channels must be an array");
    if (!params.contains("data")) return bad("data is required");
    std::map<std::string, std::string> tags;
    if (!read_tags(tags)) return bad("tags must be an object of strings");
    json responses = json::array();
    for (const auto& ch : *it) {
      if (!ch.is_string()) return bad("channels must be strings");
    }
    for (const auto& ch : *it) {
      responses.push_back(publish_one(ch.get<std::string>(), params["data"], false, tags));
    }
    return ok({{"responses", responses}});
  }
  if (method == "presence" || method == "presence_stats") {
    if (channel.empty()) return bad("channel is required");
    auto resolved = table_.Resolve(channel);
    if (!resolved) return err(resolved.error());
    const ChannelOptions& opts = *resolved->options;
    if (!opts.presence) return err(Errc::kNotAvailable);
    const Channel* ch = table_.Find(channel);
    if (method == "presence_stats") {
      const PresenceStats st = ch ? ch->presence.Stats() : PresenceStats{};
      return ok({{"num_clients", st.num_clients}, {"num_users", st.num_users}});
    }
    std::string cursor;
    if (!OptString(params, "cursor", cursor)) return bad("cursor must be a string");
    size_t limit = opts.presence_page_size;
    if (auto l = params.find("limit"); l != params.end() && !l->is_null()) {
      if (!l->is_number_unsigned()) return bad("limit must be a positive integer");
      limit = std::clamp<size_t>(l->get<size_t>(), 1, opts.presence_page_size);
    }
    PresencePage page;
    if (ch) page = ch->presence.Page(cursor, limit);
    json presence = json::object();
    for (const auto& e : page.entries) presence[e.client] = ClientInfoJson(e);
    json r = {{"presence", presence}};
    if (!page.next_cursor.empty()) r["next_cursor"] = page.next_cursor;  // paged (Chorus extra)
    return ok(r);
  }
  if (method == "history") {
    if (channel.empty()) return bad("channel is required");
    HistoryQuery q;
    if (auto l = params.find("limit"); l != params.end() && !l->is_null()) {
      if (!l->is_number_integer()) return bad("limit must be an integer");
      q.limit = l->get<int64_t>();
    }
    const auto max = static_cast<int64_t>(options_.history_max_limit);
    q.limit = q.limit < 0 ? max : std::min(q.limit, max);
    if (auto r = params.find("reverse"); r != params.end() && !r->is_null()) {
      if (!r->is_boolean()) return bad("reverse must be a boolean");
      q.reverse = r->get<bool>();
    }
    if (auto s = params.find("since"); s != params.end() && !s->is_null()) {
      StreamPosition pos;
      if (std::string why = ReadPosition(*s, "since", pos); !why.empty()) return bad(why);
      q.since = pos;
    }
    auto r = table_.History(channel, q, now);
    if (!r) return err(r.error());
    json pubs = json::array();
    for (const auto& p : r->publications) pubs.push_back(PublicationJson(p));
    return ok({{"publications", pubs}, {"epoch", r->top.epoch}, {"offset", r->top.offset}});
  }
  if (method == "history_remove") {
    if (channel.empty()) return bad("channel is required");
    auto r = table_.RemoveHistory(channel, now);
    if (!r) return err(r.error());
    return ok(json::object());
  }
  if (method == "channels") {
    std::string pattern;
    if (!OptString(params, "pattern", pattern)) return bad("pattern must be a string");
    json channels = json::object();
    table_.ForEach([&](const Channel& ch) {
      if (ch.subscribers.empty()) return;  // Centrifugo lists active channels only
      if (!pattern.empty() && !Glob(pattern, ch.name)) return;
      channels[ch.name] = {{"num_clients", ch.subscribers.size()}};
    });
    return ok({{"channels", channels}});
  }
  if (method == "info") {
    std::set<std::string_view> users;
    size_t subs = 0;
    for (const auto& [id, s] : sessions_) {
      users.insert(s.user);
      subs += s.subs.size();
    }
    const auto uptime =
        std::chrono::duration_cast<std::chrono::seconds>(chp::Clock::now() - started_).count();
    json node = {{"uid", options_.node_id},   {"name", options_.node_id},
                 {"version", "0.1.0"},        {"num_clients", sessions_.size()},
                 {"num_users", users.size()}, {"num_channels", table_.size()},
                 {"num_subs", subs},          {"uptime", uptime}};
    return ok({{"nodes", json::array({node})}});
  }
  if (method == "disconnect" || method == "unsubscribe" || method == "subscribe" ||
      method == "send") {
    std::string user, client;
    if (!OptString(params, "user", user) || !OptString(params, "client", client)) {
      return bad("user and client must be strings");
    }
    if (user.empty() && client.empty()) return bad("user or client is required");
    std::vector<SubscriberId> targets;
    for (const auto& [id, s] : sessions_) {
      if (!user.empty() && s.user != user) continue;
      if (!client.empty() && s.client != client) continue;
      targets.push_back(id);
    }
    if (method == "send") {  // Chorus extra: an asynchronous message to each session
      auto d = params.find("data");
      if (d == params.end() || d->is_null()) return bad("data is required");
      const std::string data = d->dump();
      if (data.size() > registry_.limits().max_publication_bytes) return err(Errc::kLimitExceeded);
      for (SubscriberId id : targets) {
        Session* s = FindSession(id);
        if (s != nullptr && s->connected) SendTo(*s, EncoderOf(*s).MessagePush(data));
      }
      return ok(json::object());
    }
    if (method == "subscribe") {
      if (channel.empty()) return bad("channel is required");
      SubscribeRecovery from;
      if (auto rs = params.find("recover_since"); rs != params.end() && !rs->is_null()) {
        StreamPosition pos;
        if (std::string why = ReadPosition(*rs, "recover_since", pos); !why.empty()) {
          return bad(why);
        }
        from = {true, pos.epoch, pos.offset};
      }
      auto r = ServerSubscribe(targets, channel, from);
      return r ? ok(json::object()) : err(r.error());
    }
    if (method == "unsubscribe") {
      if (channel.empty()) return bad("channel is required");
      if (auto resolved = table_.Resolve(channel); !resolved) return err(resolved.error());
      for (SubscriberId id : targets) {
        if (Session* s = FindSession(id))
          LeaveChannel(*s, channel, true, 2000, "server unsubscribe");
      }
      return ok(json::object());
    }
    uint32_t code = 3503;
    std::string reason = "force disconnect";
    if (auto d = params.find("disconnect"); d != params.end() && !d->is_null()) {
      if (!d->is_object()) return bad("disconnect must be an object");
      if (auto c = d->find("code"); c != d->end()) {
        if (!c->is_number_unsigned() || c->get<uint64_t>() < 3000 || c->get<uint64_t>() > 4999) {
          return bad("disconnect.code must be 3000..4999");
        }
        code = c->get<uint32_t>();
      }
      if (!OptString(*d, "reason", reason)) return bad("disconnect.reason must be a string");
    }
    // Centrifugo: codes 3500..3999 (and 4500..4999) tell the client not to reconnect.
    const bool reconnect = !((code >= 3500 && code < 4000) || code >= 4500);
    for (SubscriberId id : targets) CloseSession(id, code, reason, reconnect, true);
    return ok(json::object());
  }
  json j = ErrorJson(Errc::kMethodNotFound);
  return HttpAnswer{404, "application/json", j.dump()};
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
  for (const auto& [id, s] : sessions_) subs += s.subs.size();
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
  out += "chorus_queue_depth{queue=\"closed_sessions\"} " + std::to_string(closed_.size()) + "\n";
  return {200, "text/plain; version=0.0.4", out};
}

}  // namespace chorus::broker::node
