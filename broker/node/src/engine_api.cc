// The HTTP server API (Centrifugo-compatible, `POST /api/<method>`), /health and /metrics, as
// the engine answers them through the gateway bridge (broker/gateway/README.md, "Bridge").
// The gateway has checked the API key; the body is the request's JSON.
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "api_params.h"
#include "broker/core/glob.h"
#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "broker/protocol/json_depth.h"
#include "cluster_view.h"
#include "presence_codec.h"
#include "sync_service.h"

namespace chorus::broker::node {
namespace {

using nlohmann::json;

json ErrorJson(Errc e) {
  return {
      {"error", {{"code", static_cast<uint32_t>(e)}, {"message", make_error_code(e).message()}}}};
}

json ErrorJson(const std::error_code& ec) {
  const bool client =
      ec.category() == BrokerCategory() && IsClientCode(static_cast<Errc>(ec.value()));
  return ErrorJson(client ? static_cast<Errc>(ec.value()) : Errc::kInternal);
}

// Publication data is kept as compact JSON text; the API returns it as a JSON value. Text
// nested deeper than any config allows (kMaxJsonDepth; e.g. replicated from elsewhere) is
// returned as a string: the reply's dump() recurses once per level.
json DataJson(const std::string& text) {
  if (!JsonDepthAtMost(text, kMaxJsonDepth)) return json(text);
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json(text) : j;
}

json ClientInfoJson(const PresenceEntry& e) {
  json j = {{"client", e.client}, {"user", e.user}};
  if (!e.conn_info.empty()) j["conn_info"] = DataJson(e.conn_info);
  if (!e.chan_info.empty()) j["chan_info"] = DataJson(e.chan_info);
  if (e.node != 0) j["node"] = e.node;  // Chorus extra: the member holding it (C-21)
  return j;
}

json PublicationJson(const Publication& p) {
  json j = {{"data", DataJson(p.data)}};
  if (p.offset != 0) j["offset"] = p.offset;
  if (p.info) j["info"] = DataJson(*p.info);
  if (!p.tags.empty()) j["tags"] = p.tags;
  return j;
}

// `{offset, epoch}` (history `since`, subscribe `recover_since`), when present.
std::optional<StreamPosition> ReadPosition(ApiParams& p, const char* key) {
  const json* j = p.Object(key);
  if (j == nullptr) return std::nullopt;
  ApiParams q(*j, std::string(key) + ".");
  StreamPosition pos;
  q.Uint("offset", pos.offset);
  q.String("epoch", pos.epoch);
  p.Adopt(q);
  return pos;
}

}  // namespace

void Engine::AnswerBridge(const zmq::message_t& routing_id, const bridge::HttpRequest& request) {
  ++counters_.api_requests;
  HttpAnswer a;
  const std::string rid = routing_id.to_string();
  const uint64_t request_id = request.id;
  const HttpLater later = [this, rid, request_id](const HttpAnswer& x) {
    SendBridgeReply(rid, request_id, x);
  };
  try {
    if (request.kind == bridge::kKindApi) {
      a = HandleApi(request.method, request.body, &later);
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
  if (!a.deferred) SendBridgeReply(rid, request_id, a);
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
    // Set for a top-level request: a handler may answer later (a forwarded publish, C-6).
    const HttpLater* later = nullptr;
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
        {"refresh", &Refresh},
        {"batch", &Batch},
        // The sync scheduler (sync_service.h, docs/scheduler.md "Running in chorusd").
        {"sync_submit", &SyncSubmit},
        {"sync_status", &SyncStatus},
        {"sync_cancel", &SyncCancel},
        {"cluster", &Cluster},  // Chorus extra: the cluster map (engine_cluster.cc)
    };
    auto it = kTable.find(method);
    return it == kTable.end() ? nullptr : &it->second;
  }

  static json BadJson(const std::string& why) {
    json j = ErrorJson(Errc::kBadRequest);
    j["error"]["message"] = "bad request: " + why;
    return j;
  }
  static HttpAnswer Bad(const std::string& why) {
    return HttpAnswer{400, "application/json", BadJson(why).dump()};
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

  // The reply of a publish: `{"result":{offset, epoch}}` (both absent without history).
  static json PublishJson(const Result<PublishResult>& out) {
    if (!out) return ErrorJson(out.error());
    json r = json::object();
    if (!out->epoch.empty()) {
      r["offset"] = out->offset;
      r["epoch"] = out->epoch;
    }
    return {{"result", r}};
  }

  // Publishes now when this node is the channel's primary; a channel whose primary is another
  // node cannot be answered synchronously (inside a batch): 114, not forwarded (not built).
  static json PublishOne(Engine& e, const std::string& ch, const json& data, bool skip_history,
                         std::map<std::string, std::string> tags) {
    std::string text = data.dump();
    if (text.size() > e.registry_.limits().max_publication_bytes) {
      return ErrorJson(Errc::kLimitExceeded);
    }
    if (!e.RouteOf(ch).local) {
      json j = ErrorJson(Errc::kUnavailable);
      j["error"]["message"] =
          "unavailable, retry: another node is this channel's primary and publishes inside a "
          "batch are not forwarded yet";
      return j;
    }
    auto out = e.PublishAndDeliver(ch, std::move(text), std::nullopt, std::move(tags), nullptr,
                                   skip_history);
    if (!out) return ErrorJson(out.error());
    return PublishJson(PublishResult{out->publication.offset, out->epoch});
  }

  static HttpAnswer Publish(Call& c) {
    ApiParams p(c.params);
    bool skip_history = false;
    std::map<std::string, std::string> tags;
    const json* data = p.Required("data");
    p.Bool("skip_history", skip_history);
    p.StringMap("tags", tags);
    if (c.channel.empty()) p.Fail("channel", "is required");
    if (!p.ok()) return Bad(p.error());
    if (c.later == nullptr) {  // inside a batch
      json r = PublishOne(c.engine, c.channel, *data, skip_history, tags);
      return HttpAnswer{200, "application/json", r.dump()};
    }
    std::string text = data->dump();
    if (text.size() > c.engine.registry_.limits().max_publication_bytes) {
      return Err(Errc::kLimitExceeded);
    }
    // C-6: here or on the channel's primary; the answer is sent when the primary has replied.
    PublishJob job{c.channel, std::move(text), std::nullopt, std::move(tags), skip_history};
    c.engine.RoutePublish(std::move(job), nullptr,
                          [later = *c.later](const Result<PublishResult>& out) {
                            later({200, "application/json", PublishJson(out).dump()});
                          });
    HttpAnswer a;
    a.deferred = true;
    return a;
  }

  static HttpAnswer Broadcast(Call& c) {
    ApiParams p(c.params);
    std::vector<std::string> channels;
    bool skip_history = false;
    std::map<std::string, std::string> tags;
    if (p.Required("channels") != nullptr) p.StringList("channels", channels);
    const json* data = p.Required("data");
    p.Bool("skip_history", skip_history);
    p.StringMap("tags", tags);
    if (!p.ok()) return Bad(p.error());
    if (c.later == nullptr) {  // inside a batch: channels of other primaries get 114
      json responses = json::array();
      for (const std::string& ch : channels) {
        responses.push_back(PublishOne(c.engine, ch, *data, skip_history, tags));
      }
      return Ok({{"responses", responses}});
    }
    // Each channel published here or forwarded to its primary (C-6); answered when all have
    // their response, in the order of `channels`.
    struct Gather {
      json responses;
      size_t remaining = 0;
      HttpLater later;
    };
    auto g = std::make_shared<Gather>();
    g->responses = json::array();
    g->remaining = channels.size() + 1;  // + 1: held until every publish is started
    g->later = *c.later;
    const auto finish = [g] {
      if (--g->remaining == 0) {
        g->later({200, "application/json",
                  json{{"result", {{"responses", std::move(g->responses)}}}}.dump()});
      }
    };
    const std::string text = data->dump();
    for (size_t i = 0; i < channels.size(); ++i) g->responses.push_back(nullptr);
    for (size_t i = 0; i < channels.size(); ++i) {
      if (text.size() > c.engine.registry_.limits().max_publication_bytes) {
        g->responses[i] = ErrorJson(Errc::kLimitExceeded);
        finish();
        continue;
      }
      PublishJob job{channels[i], text, std::nullopt, tags, skip_history};
      c.engine.RoutePublish(std::move(job), nullptr,
                            [g, i, finish](const Result<PublishResult>& out) {
                              g->responses[i] = PublishJson(out);
                              finish();
                            });
    }
    finish();
    HttpAnswer a;
    a.deferred = true;
    return a;
  }

  // Presence and presence_stats share the checks: a channel of a namespace with presence.
  static HttpAnswer PresenceOf(Call& c, bool stats_only) {
    if (c.channel.empty()) return Bad("channel is required");
    auto resolved = c.engine.table_.Resolve(c.channel);
    if (!resolved) return Err(resolved.error());
    const ChannelOptions& opts = *resolved->options;
    if (!opts.presence) return Err(Errc::kNotAvailable);
    std::string cursor;
    uint64_t limit = opts.presence_page_size;
    if (!stats_only) {
      ApiParams p(c.params);
      p.String("cursor", cursor);
      p.Uint("limit", limit);
      if (!p.ok()) return Bad(p.error());
      limit = std::clamp<uint64_t>(limit, 1, opts.presence_page_size);
    }
    // C-21: the primary's presence, from this node's table when it is the primary or follows
    // a live copy, else asked of the primary (a top-level request only; in a batch: local).
    if (c.later != nullptr && !c.engine.PresenceHere(c.channel)) {
      const auto mode = stats_only ? PresenceQueryMode::kStats : PresenceQueryMode::kPage;
      const bool asked = c.engine.AskPresence(
          c.channel, static_cast<uint32_t>(mode), cursor, static_cast<uint32_t>(limit),
          [later = *c.later, stats_only](const PresenceAnswer* a) {
            if (a == nullptr) return later(Err(Errc::kUnavailable));
            PresencePage page{a->entries, a->next_cursor};
            later(PresenceJson(stats_only, {a->num_clients, a->num_users}, page));
          });
      if (!asked) return Err(Errc::kUnavailable);
      HttpAnswer a;
      a.deferred = true;
      return a;
    }
    const Channel* ch = c.engine.table_.Find(c.channel);
    PresencePage page;
    if (ch && !stats_only) page = ch->presence.Page(cursor, limit);
    return PresenceJson(stats_only, ch ? ch->presence.Stats() : PresenceStats{}, page);
  }
  static HttpAnswer PresenceJson(bool stats_only, const PresenceStats& st,
                                 const PresencePage& page) {
    if (stats_only) return Ok({{"num_clients", st.num_clients}, {"num_users", st.num_users}});
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
    ApiParams p(c.params);
    p.Int("limit", q.limit);
    p.Bool("reverse", q.reverse);
    q.since = ReadPosition(p, "since");
    if (!p.ok()) return Bad(p.error());
    const auto max = static_cast<int64_t>(c.engine.options_.history_max_limit);
    q.limit = q.limit < 0 ? max : std::min(q.limit, max);
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
    ApiParams p(c.params);
    p.String("pattern", pattern);
    if (!p.ok()) return Bad(p.error());
    json channels = json::object();
    c.engine.table_.ForEach([&](const Channel& ch) {
      if (ch.subscribers.empty()) return;  // Centrifugo lists active channels only
      if (!pattern.empty() && !GlobMatch(pattern, ch.name)) return;
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
    // Chorus extra: the cluster map's members as this node applied it (docs/api.md).
    return Ok({{"nodes", json::array({node})}, {"cluster", ClusterJson(*e.cluster_, false)}});
  }

  // Chorus extra: `info`'s cluster member plus the partition table.
  static HttpAnswer Cluster(Call& c) { return Ok(ClusterJson(*c.engine.cluster_, true)); }

  // The sessions a targeted call (disconnect, unsubscribe, subscribe, send) names by `user`
  // and/or `client`; a reason in `why` when the params are wrong.
  static std::vector<SubscriberId> Targets(Call& c, std::string& why) {
    std::string user, client;
    ApiParams p(c.params);
    p.String("user", user);
    p.String("client", client);
    if (!p.ok()) {
      why = p.error();
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
    ApiParams p(c.params);
    const json* d = p.Required("data");
    if (!p.ok()) return Bad(p.error());
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
    ApiParams p(c.params);
    if (auto pos = ReadPosition(p, "recover_since")) from = {true, pos->epoch, pos->offset};
    if (!p.ok()) return Bad(p.error());
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

  // Centrifugo's refresh: `expired: true` closes the user's sessions (or `client`'s) with 3005;
  // else `expire_at` (Unix seconds) becomes their expiry: 0 or absent = none, a past time
  // leaves it unchanged (as Centrifugo).
  static HttpAnswer Refresh(Call& c) {
    std::string why;
    const std::vector<SubscriberId> targets = Targets(c, why);
    if (!why.empty()) return Bad(why);
    ApiParams p(c.params);
    bool expired = false;
    int64_t expire_at = 0;
    p.Bool("expired", expired);
    p.Int("expire_at", expire_at);
    if (!p.ok()) return Bad(p.error());
    const int64_t now_s = c.now_ms / 1000;
    for (SubscriberId id : targets) {
      Session* s = c.engine.FindSession(id);
      if (s == nullptr || !s->connected) continue;
      if (expired) {
        c.engine.CloseSession(id, kDisconnectExpired, /*try_push=*/true);
      } else if (expire_at <= 0) {
        s->expires_s = 0;
      } else if (expire_at > now_s) {
        s->expires_s = expire_at;
      }
    }
    return Ok(json::object());
  }

  // Centrifugo's batch: `{"commands":[...]}`, each `{"method":"publish","params":{...}}` or
  // `{"publish":{...}}`, run in order; `{"replies":[...]}`, one per command: `{"<method>":
  // result}` or `{"error":{code,message}}`. At most kMaxBatchCommands; no batch in a batch.
  static constexpr size_t kMaxBatchCommands = 1000;

  static HttpAnswer Batch(Call& c) {
    ApiParams p(c.params);
    const json* commands = p.Required("commands");
    if (commands != nullptr && !commands->is_array()) p.Fail("commands", "must be an array");
    if (p.ok() && commands->size() > kMaxBatchCommands) {
      p.Fail("commands", "must have at most " + std::to_string(kMaxBatchCommands) + " entries");
    }
    if (!p.ok()) return Bad(p.error());
    json replies = json::array();
    for (const json& command : *commands) replies.push_back(BatchOne(c, command));
    return HttpAnswer{200, "application/json", json{{"replies", std::move(replies)}}.dump()};
  }

  static json BatchOne(Call& c, const json& command) {
    std::string method;
    json params = json::object();
    if (command.is_object() && command.contains("method")) {
      ApiParams p(command);
      p.String("method", method);
      if (const json* q = p.Object("params")) params = *q;
      if (!p.ok()) return BadJson(p.error());
    } else if (command.is_object() && command.size() == 1 && command.begin()->is_object()) {
      method = command.begin().key();
      params = command.begin().value();
    } else {
      return BadJson("a command is {\"method\":..., \"params\":{...}} or {\"<method>\":{...}}");
    }
    const Handler* handler = method == "batch" ? nullptr : Find(method);
    if (handler == nullptr) return ErrorJson(Errc::kMethodNotFound);
    Call sub{c.engine, params, {}, c.now_ms};
    ApiParams p(params);
    p.String("channel", sub.channel);
    if (!p.ok()) return BadJson(p.error());
    json reply = json::parse((*handler)(sub).body, nullptr, /*allow_exceptions=*/false);
    if (!reply.is_object()) return ErrorJson(Errc::kInternal);
    if (auto r = reply.find("result"); r != reply.end()) return {{method, *r}};
    return reply;  // {"error": ...}
  }

  static HttpAnswer Disconnect(Call& c) {
    std::string why;
    const std::vector<SubscriberId> targets = Targets(c, why);
    if (!why.empty()) return Bad(why);
    uint64_t code = kDisconnectForce.code;
    std::string reason(kDisconnectForce.reason);
    ApiParams p(c.params);
    if (const json* d = p.Object("disconnect")) {
      ApiParams q(*d, "disconnect.");
      q.Uint("code", code);
      q.String("reason", reason);
      if (q.ok() && (code < kMinDisconnectCode || code > kMaxDisconnectCode)) {
        q.Fail("code", "must be " + std::to_string(kMinDisconnectCode) + ".." +
                           std::to_string(kMaxDisconnectCode));
      }
      if (!q.ok()) return Bad(q.error());
    }
    if (!p.ok()) return Bad(p.error());
    const auto code32 = static_cast<uint32_t>(code);  // checked above
    const bool reconnect = DisconnectReconnects(code32);
    for (SubscriberId id : targets) c.engine.CloseSession(id, code32, reason, reconnect, true);
    return Ok(json::object());
  }
};

Engine::HttpAnswer Engine::HandleApi(std::string_view method, std::string_view body,
                                     const HttpLater* later) {
  // Checked before parsing: nothing deeper ever reaches a DOM that is dumped (the body object
  // is one level above its values).
  const size_t max_depth = registry_.limits().max_json_depth;
  if (!JsonDepthAtMost(body, max_depth + 1)) {
    return Api::Bad("JSON nested deeper than limits.max_json_depth = " + std::to_string(max_depth));
  }
  // A NUL byte would end nlohmann's input early: `{...}\0junk` is not valid JSON.
  json params = body.empty()       ? json::object()
                : HasNulByte(body) ? json(json::value_t::discarded)
                                   : json::parse(body, nullptr, false);
  if (params.is_discarded()) return Api::Bad("body is not valid JSON");
  if (!params.is_object()) return Api::Bad("body must be a JSON object");
  Api::Call call{*this, params, {}, NowMs(), later};
  ApiParams p(params);
  p.String("channel", call.channel);
  if (!p.ok()) return Api::Bad(p.error());
  const Api::Handler* handler = Api::Find(method);
  if (handler == nullptr) {
    return HttpAnswer{404, "application/json", ErrorJson(Errc::kMethodNotFound).dump()};
  }
  return (*handler)(call);
}

}  // namespace chorus::broker::node
