// The HTTP server API (Centrifugo-compatible, `POST /api/<method>`), /health and /metrics, as
// the engine answers them through the gateway bridge (broker/gateway/README.md, "Bridge").
// The gateway has checked the API key; the body is the request's JSON.
#include <memory>
#include <optional>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "api_params.h"
#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "broker/protocol/json_depth.h"
#include "cluster_view.h"
#include "presence_codec.h"
#include "sync_service.h"

namespace chorus::broker::node {
namespace {

using nlohmann::json;

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
    // How a handler answers later (a forwarded publish, C-6; a fan-out, §13): the top-level
    // request's, or a batch command's. Never null.
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
        // Cluster-wide: run here and on every other member (engine_fanout.cc).
        {"channels", [](Call& c) { return c.engine.FanoutApi("channels", c.params, c.later); }},
        {"info", [](Call& c) { return c.engine.FanoutApi("info", c.params, c.later); }},
        {"disconnect", [](Call& c) { return c.engine.FanoutApi("disconnect", c.params, c.later); }},
        {"unsubscribe",
         [](Call& c) { return c.engine.FanoutApi("unsubscribe", c.params, c.later); }},
        {"subscribe", [](Call& c) { return c.engine.FanoutApi("subscribe", c.params, c.later); }},
        {"send", [](Call& c) { return c.engine.FanoutApi("send", c.params, c.later); }},
        {"refresh", [](Call& c) { return c.engine.FanoutApi("refresh", c.params, c.later); }},
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
  // Served by the primary of `sync:<user>` (engine_sync.cc): answered when it has.
  static HttpAnswer SyncCall(Call& c, const char* method) {
    if (!c.engine.sync_) return SyncDisabled();
    c.engine.RouteSync(method, c.params, "", [later = *c.later](int status, const json& body) {
      later(HttpAnswer{status, "application/json", body.dump()});
    });
    HttpAnswer a;
    a.deferred = true;
    return a;
  }
  static HttpAnswer SyncSubmit(Call& c) { return SyncCall(c, "sync_submit"); }
  static HttpAnswer SyncStatus(Call& c) { return SyncCall(c, "sync_status"); }
  static HttpAnswer SyncCancel(Call& c) { return SyncCall(c, "sync_cancel"); }

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

  static HttpAnswer Publish(Call& c) {
    ApiParams p(c.params);
    bool skip_history = false;
    std::map<std::string, std::string> tags;
    const json* data = p.Required("data");
    p.Bool("skip_history", skip_history);
    p.StringMap("tags", tags);
    if (c.channel.empty()) p.Fail("channel", "is required");
    if (!p.ok()) return Bad(p.error());
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

  // Chorus extra: `info`'s cluster member plus the partition table.
  static HttpAnswer Cluster(Call& c) { return Ok(ClusterJson(*c.engine.cluster_, true)); }

  // Centrifugo's batch: `{"commands":[...], "parallel": bool}`, each command
  // `{"method":"publish","params":{...}}` or `{"publish":{...}}`; `{"replies":[...]}`, one per
  // command in the commands' order: `{"<method>": result}` or `{"error":{code,message}}`. Each
  // command is handled as the same call alone would be (a publish forwarded to its channel's
  // primary, a cluster-wide method fanned out). Without `parallel` a command starts once the
  // one before it is answered; with it, all start at once and complete in any order. At most
  // kMaxBatchCommands; no batch in a batch. A sequential batch starts no command after
  // EngineOptions::batch_start_budget: those get 114, so the batch is answered before the
  // gateway's engine timeout.
  static constexpr size_t kMaxBatchCommands = 1000;

  struct BatchRun {
    explicit BatchRun(Engine& e) : engine(e) {}
    Engine& engine;
    json commands;
    std::vector<json> replies;
    HttpLater answer;      // the batch's own
    size_t next = 0;       // sequential: the command to start
    size_t remaining = 0;  // parallel: commands not answered yet (+1 while starting)
    bool in_loop = false;  // sequential: Advance is on the stack
    bool waiting = false;  // sequential: the started command is not answered yet
    chp::Clock::time_point start_by;
  };
  using BatchReply = std::function<void(json)>;

  static HttpAnswer Batch(Call& c) {
    ApiParams p(c.params);
    const json* commands = p.Required("commands");
    bool parallel = false;
    p.Bool("parallel", parallel);
    if (commands != nullptr && !commands->is_array()) p.Fail("commands", "must be an array");
    if (p.ok() && commands->size() > kMaxBatchCommands) {
      p.Fail("commands", "must have at most " + std::to_string(kMaxBatchCommands) + " entries");
    }
    if (!p.ok()) return Bad(p.error());
    if (c.later == nullptr) return Err(Errc::kMethodNotFound);  // never nested (BatchOne)
    auto run = std::make_shared<BatchRun>(c.engine);
    run->commands = std::move(c.params["commands"]);
    run->replies.resize(run->commands.size());
    run->answer = *c.later;
    run->start_by = chp::Clock::now() + c.engine.options_.batch_start_budget;
    if (parallel) {
      run->remaining = run->commands.size() + 1;  // + 1: held until every command is started
      for (size_t i = 0; i < run->commands.size(); ++i) {
        BatchOne(c.engine, run->commands[i], [run, i](json r) {
          run->replies[i] = std::move(r);
          if (--run->remaining == 0) FinishBatch(*run);
        });
      }
      if (--run->remaining == 0) FinishBatch(*run);
    } else {
      Advance(run);
    }
    HttpAnswer a;
    a.deferred = true;
    return a;
  }

  // Sequential: starts commands in order until one is left waiting for its answer, whose
  // callback continues from the next one.
  static void Advance(const std::shared_ptr<BatchRun>& run) {
    run->in_loop = true;
    while (run->next < run->commands.size()) {
      const size_t i = run->next;
      if (chp::Clock::now() > run->start_by) {
        json e = ErrorJson(Errc::kUnavailable);
        e["error"]["message"] = "unavailable, retry: not started within the batch's time budget";
        run->replies[i] = std::move(e);
        ++run->next;
        continue;
      }
      run->waiting = true;
      BatchOne(run->engine, run->commands[i], [run, i](json r) {
        run->replies[i] = std::move(r);
        run->waiting = false;
        if (!run->in_loop) {  // answered later: continue from here
          ++run->next;
          Advance(run);
        }
      });
      if (run->waiting) {
        run->in_loop = false;
        return;
      }
      ++run->next;
    }
    run->in_loop = false;
    FinishBatch(*run);
  }

  static void FinishBatch(BatchRun& run) {
    json replies = json::array();
    for (json& r : run.replies) replies.push_back(std::move(r));
    run.answer({200, "application/json", json{{"replies", std::move(replies)}}.dump()});
  }

  // Runs one command; `reply` gets its reply once, now or when it is answered.
  static void BatchOne(Engine& engine, const json& command, const BatchReply& reply) {
    std::string method;
    json params = json::object();
    if (command.is_object() && command.contains("method")) {
      ApiParams p(command);
      p.String("method", method);
      if (const json* q = p.Object("params")) params = *q;
      if (!p.ok()) return reply(BadJson(p.error()));
    } else if (command.is_object() && command.size() == 1 && command.begin()->is_object()) {
      method = command.begin().key();
      params = command.begin().value();
    } else {
      return reply(
          BadJson("a command is {\"method\":..., \"params\":{...}} or {\"<method>\":{...}}"));
    }
    const Handler* handler = method == "batch" ? nullptr : Find(method);
    if (handler == nullptr) return reply(ErrorJson(Errc::kMethodNotFound));
    const HttpLater later = [reply, method](const HttpAnswer& a) { reply(ReplyOf(method, a)); };
    Call sub{engine, params, {}, engine.NowMs(), &later};
    ApiParams p(params);
    p.String("channel", sub.channel);
    if (!p.ok()) return reply(BadJson(p.error()));
    HttpAnswer a = (*handler)(sub);
    if (!a.deferred) reply(ReplyOf(method, a));
  }

  // A command's reply in a batch from the answer it would get alone.
  static json ReplyOf(const std::string& method, const HttpAnswer& a) {
    json reply = json::parse(a.body, nullptr, /*allow_exceptions=*/false);
    if (!reply.is_object()) return ErrorJson(Errc::kInternal);
    if (auto r = reply.find("result"); r != reply.end()) return {{method, *r}};
    return reply;  // {"error": ...}
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
