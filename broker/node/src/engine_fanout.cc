// The cluster-wide server API (docs/cluster.md §13, §16.4): `info`, `channels`, `disconnect`,
// `unsubscribe`, `subscribe`, `send` and `refresh` run on this node and, over the peer wire
// (fanout_codec.h, kinds 40/41), on every other member that the applied map does not list as
// dead; each member answers its part (its own sessions and channels) and this node merges them.
// A member that does not answer within the fan-out timeout makes the whole call fail with 114
// (as a Centrifugo survey that times out fails): an action may then have taken effect on the
// members that answered. Engine-thread code.
#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "api_params.h"
#include "broker/core/glob.h"
#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "broker/protocol/json_depth.h"
#include "cluster_view.h"
#include "fanout.h"

namespace chorus::broker::node {

using nlohmann::json;

// Each method is one function run on every member: it checks the params (every member checks
// them again: every input is validated) and acts on, or reports, that member's own sessions.
// `merge` combines the parts of all members (this node's first) into the API's result.
class Engine::ClusterApi {
 public:
  struct Part {
    uint32_t code = 0;    // 0: `value` is the part; else a broker Errc
    std::string message;  // the error's message
    json value;
  };
  using Local = Part (*)(Engine&, const json& params, int64_t now_ms);
  using Merge = json (*)(Engine&, std::vector<json>& parts);
  struct Method {
    Local local;
    Merge merge;
  };

  static const Method* Find(std::string_view name) {
    static const std::unordered_map<std::string_view, Method> kTable = {
        {"info", {&Info, &MergeInfo}},
        {"channels", {&Channels, &MergeChannels}},
        {"disconnect", {&Disconnect, &MergeEmpty}},
        {"unsubscribe", {&Unsubscribe, &MergeEmpty}},
        {"subscribe", {&Subscribe, &MergeEmpty}},
        {"send", {&Send, &MergeEmpty}},
        {"refresh", {&Refresh, &MergeEmpty}},
    };
    auto it = kTable.find(name);
    return it == kTable.end() ? nullptr : &it->second;
  }

  static Part Fail(Errc e, std::string message = "") {
    return {ToCode(e), message.empty() ? make_error_code(e).message() : std::move(message), {}};
  }
  static Part Bad(const std::string& why) { return Fail(Errc::kBadRequest, "bad request: " + why); }
  static Part Fail(const std::error_code& ec) {
    const bool client =
        ec.category() == BrokerCategory() && IsClientCode(static_cast<Errc>(ec.value()));
    return Fail(client ? static_cast<Errc>(ec.value()) : Errc::kInternal);
  }
  static Part Ok(json value) { return {0, "", std::move(value)}; }

  // The answer of a call from its parts: 114 naming the members that did not answer, else the
  // first error (this node's first, then the members' in map order), else the merged result.
  static HttpAnswer Finish(Engine& e, const Method& m, Part local,
                           const std::vector<FanoutPart>& remote) {
    std::string silent;
    for (const FanoutPart& p : remote) {
      if (!p.answered) {
        silent += (silent.empty() ? "" : ", ") + std::to_string(p.member);
      }
    }
    if (!silent.empty()) {
      return Answer(Fail(Errc::kUnavailable,
                         "unavailable, retry: no answer from member(s) " + silent + " within " +
                             std::to_string(e.fanout_->options().timeout.count()) +
                             " ms (the call may have taken effect on the others)"));
    }
    if (local.code != 0) return Answer(std::move(local));
    std::vector<json> parts;
    parts.push_back(std::move(local.value));
    for (const FanoutPart& p : remote) {
      if (p.code != 0) {
        const auto code = static_cast<Errc>(p.code);
        return Answer(IsClientCode(code)
                          ? Fail(code, p.body + " (member " + std::to_string(p.member) + ")")
                          : Fail(Errc::kInternal));
      }
      json v = json::parse(p.body, nullptr, /*allow_exceptions=*/false);
      if (v.is_discarded()) return Answer(Fail(Errc::kInternal));
      parts.push_back(std::move(v));
    }
    return Answer(Ok(m.merge(e, parts)));
  }

  static HttpAnswer Answer(Part p) {
    if (p.code == 0) {
      return {200, "application/json", json{{"result", std::move(p.value)}}.dump()};
    }
    const int status = p.code == ToCode(Errc::kBadRequest) ? 400 : 200;
    return {status, "application/json",
            json{{"error", {{"code", p.code}, {"message", p.message}}}}.dump()};
  }

 private:
  // ---- info: this node's counts (Centrifugo's NodeInfo); merged: `nodes`, one per member.
  static Part Info(Engine& e, const json&, int64_t) {
    std::set<std::string_view> users;
    size_t subs = 0;
    e.sessions_.ForEach([&](const Session& s) {
      users.insert(s.user);
      subs += s.subs.size();
    });
    const auto uptime =
        std::chrono::duration_cast<std::chrono::seconds>(chp::Clock::now() - e.started_).count();
    return Ok({{"uid", e.options_.node_id},
               {"name", e.options_.node_id},
               {"version", "0.1.0"},
               {"num_clients", e.sessions_.size()},
               {"num_users", users.size()},
               {"num_channels", e.table_.size()},
               {"num_subs", subs},
               {"uptime", uptime}});
  }
  static json MergeInfo(Engine& e, std::vector<json>& parts) {
    // Chorus extra: the cluster map's members as this node applied it (docs/broker-node.md).
    return {{"nodes", std::move(parts)}, {"cluster", ClusterJson(*e.cluster_, false)}};
  }

  // ---- channels: this node's channels with subscribers (pattern applied); merged: the union,
  // client counts summed.
  static Part Channels(Engine& e, const json& params, int64_t) {
    std::string pattern;
    ApiParams p(params);
    p.String("pattern", pattern);
    if (!p.ok()) return Bad(p.error());
    json channels = json::object();
    e.table_.ForEach([&](const Channel& ch) {
      if (ch.subscribers.empty()) return;  // Centrifugo lists active channels only
      if (!pattern.empty() && !GlobMatch(pattern, ch.name)) return;
      channels[ch.name] = {{"num_clients", ch.subscribers.size()}};
    });
    return Ok({{"channels", std::move(channels)}});
  }
  static json MergeChannels(Engine&, std::vector<json>& parts) {
    json out = json::object();
    for (json& part : parts) {
      const json* chans =
          part.is_object() && part.contains("channels") ? &part["channels"] : nullptr;
      if (chans == nullptr || !chans->is_object()) continue;
      for (auto it = chans->begin(); it != chans->end(); ++it) {
        const json* count =
            it->is_object() && it->contains("num_clients") ? &(*it)["num_clients"] : nullptr;
        const uint64_t n = count && count->is_number_unsigned() ? count->get<uint64_t>() : 0;
        json& slot = out[it.key()];
        const uint64_t before = slot.is_object() ? slot["num_clients"].get<uint64_t>() : 0;
        slot = {{"num_clients", before + n}};
      }
    }
    return {{"channels", std::move(out)}};
  }

  static json MergeEmpty(Engine&, std::vector<json>&) { return json::object(); }

  // The sessions a targeted call names by `user` and/or `client` (on this node); a reason in
  // `why` when the params are wrong.
  static std::vector<SubscriberId> Targets(Engine& e, const json& params, std::string& why) {
    std::string user, client;
    ApiParams p(params);
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
    e.sessions_.ForEach([&](const Session& s) {
      if (!user.empty() && s.user != user) return;
      if (!client.empty() && s.client != client) return;
      targets.push_back(s.id);
    });
    return targets;
  }
  static std::string ChannelOf(const json& params, std::string& why) {
    std::string channel;
    ApiParams p(params);
    p.String("channel", channel);
    if (!p.ok()) why = p.error();
    if (why.empty() && channel.empty()) why = "channel is required";
    return channel;
  }

  // Chorus extra: an asynchronous message (`message` push) to each session of them.
  static Part Send(Engine& e, const json& params, int64_t) {
    std::string why;
    const std::vector<SubscriberId> targets = Targets(e, params, why);
    if (!why.empty()) return Bad(why);
    ApiParams p(params);
    const json* d = p.Required("data");
    if (!p.ok()) return Bad(p.error());
    const std::string data = d->dump();
    if (data.size() > e.registry_.limits().max_publication_bytes) {
      return Fail(Errc::kLimitExceeded);
    }
    for (SubscriberId id : targets) {
      Session* s = e.FindSession(id);
      if (s != nullptr && s->connected) e.SendTo(*s, EncoderOf(*s).MessagePush(data));
    }
    return Ok(json::object());
  }

  static Part Subscribe(Engine& e, const json& params, int64_t) {
    std::string why;
    const std::vector<SubscriberId> targets = Targets(e, params, why);
    const std::string channel = why.empty() ? ChannelOf(params, why) : "";
    if (!why.empty()) return Bad(why);
    SubscribeRecovery from;
    ApiParams p(params);
    if (const json* j = p.Object("recover_since")) {
      ApiParams q(*j, "recover_since.");
      q.Uint("offset", from.offset);
      q.String("epoch", from.epoch);
      p.Adopt(q);
      from.recover = true;
    }
    if (!p.ok()) return Bad(p.error());
    auto r = e.ServerSubscribe(targets, channel, from);
    return r ? Ok(json::object()) : Fail(r.error());
  }

  static Part Unsubscribe(Engine& e, const json& params, int64_t) {
    std::string why;
    const std::vector<SubscriberId> targets = Targets(e, params, why);
    const std::string channel = why.empty() ? ChannelOf(params, why) : "";
    if (!why.empty()) return Bad(why);
    if (auto resolved = e.table_.Resolve(channel); !resolved) return Fail(resolved.error());
    for (SubscriberId id : targets) {
      if (Session* s = e.FindSession(id)) {
        e.LeaveChannel(*s, channel, true, kUnsubscribeServer.code, kUnsubscribeServer.reason);
      }
    }
    return Ok(json::object());
  }

  // Centrifugo's refresh: `expired: true` closes the sessions with 3005; else `expire_at` (Unix
  // seconds) becomes their expiry: 0 or absent = none, a past time leaves it unchanged.
  static Part Refresh(Engine& e, const json& params, int64_t now_ms) {
    std::string why;
    const std::vector<SubscriberId> targets = Targets(e, params, why);
    if (!why.empty()) return Bad(why);
    ApiParams p(params);
    bool expired = false;
    int64_t expire_at = 0;
    p.Bool("expired", expired);
    p.Int("expire_at", expire_at);
    if (!p.ok()) return Bad(p.error());
    const int64_t now_s = now_ms / 1000;
    for (SubscriberId id : targets) {
      Session* s = e.FindSession(id);
      if (s == nullptr || !s->connected) continue;
      if (expired) {
        e.CloseSession(id, kDisconnectExpired, /*try_push=*/true);
      } else if (expire_at <= 0) {
        s->expires_s = 0;
      } else if (expire_at > now_s) {
        s->expires_s = expire_at;
      }
    }
    return Ok(json::object());
  }

  static Part Disconnect(Engine& e, const json& params, int64_t) {
    std::string why;
    const std::vector<SubscriberId> targets = Targets(e, params, why);
    if (!why.empty()) return Bad(why);
    uint64_t code = kDisconnectForce.code;
    std::string reason(kDisconnectForce.reason);
    ApiParams p(params);
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
    for (SubscriberId id : targets) e.CloseSession(id, code32, reason, reconnect, true);
    return Ok(json::object());
  }
};

Engine::HttpAnswer Engine::FanoutApi(std::string_view method, const json& params,
                                     const HttpLater* later) {
  const ClusterApi::Method* m = ClusterApi::Find(method);
  if (m == nullptr) return ClusterApi::Answer(ClusterApi::Fail(Errc::kMethodNotFound));
  // The other members: every one the map does not list as dead (a leaving member still holds
  // sessions until it has closed them).
  std::vector<FanoutTarget> targets;
  if (cluster_->received) {
    for (const auto& [id, member] : cluster_->map.members()) {
      if (id == cluster_->header.member_id || member.state == cluster::MemberState::kDead) continue;
      targets.push_back({id, member.endpoints.api});
    }
  }
  const std::string text = targets.empty() || later == nullptr ? "" : params.dump();
  // Refused before anything is done anywhere when the bounds are reached.
  if (!targets.empty() && later != nullptr &&
      !fanout_->HasRoom(method.size() + text.size(), targets.size())) {
    return ClusterApi::Answer(ClusterApi::Fail(
        Errc::kUnavailable, "unavailable, retry: too many cluster-wide calls in flight"));
  }
  ClusterApi::Part local = m->local(*this, params, NowMs());
  if (local.code == ToCode(Errc::kBadRequest) || targets.empty() || later == nullptr) {
    // Wrong params are wrong on every member: answered at once (400), nothing sent.
    return ClusterApi::Finish(*this, *m, std::move(local), {});
  }
  const bool started = fanout_->Start(
      cluster_->header.member_id, std::string(method), text, std::move(targets),
      [this, m, method_name = std::string(method), local = std::move(local),
       later = *later](std::vector<FanoutPart> parts) mutable {
        HttpAnswer a;
        try {
          a = ClusterApi::Finish(*this, *m, std::move(local), parts);
        } catch (const std::exception& ex) {  // a member's part of an unexpected shape
          Log().error("fan-out {}: {}", method_name, ex.what());
          a = ClusterApi::Answer(ClusterApi::Fail(Errc::kInternal));
        }
        later(a);
      });
  if (!started) {  // HasRoom said yes a moment ago on this thread: not expected
    return ClusterApi::Answer(ClusterApi::Fail(Errc::kInternal));
  }
  HttpAnswer a;
  a.deferred = true;
  return a;
}

std::optional<std::string> Engine::ServeFanout(std::string_view bytes) {
  FanoutRequest req;
  if (!DecodeFanoutRequest(bytes, req)) {
    fanout_->CountMalformed();
    return std::nullopt;
  }
  fanout_->CountServed();
  FanoutReply reply;
  reply.id = req.id;
  const ClusterApi::Method* m = ClusterApi::Find(req.method);
  const size_t max_depth = registry_.limits().max_json_depth;
  json params = HasNulByte(req.params) || !JsonDepthAtMost(req.params, max_depth + 1)
                    ? json(json::value_t::discarded)
                    : json::parse(req.params, nullptr, /*allow_exceptions=*/false);
  ClusterApi::Part part;
  if (m == nullptr) {
    part = ClusterApi::Fail(Errc::kMethodNotFound);
  } else if (params.is_discarded() || !params.is_object()) {
    part = ClusterApi::Bad("params must be a JSON object");
  } else {
    part = m->local(*this, params, NowMs());
  }
  reply.code = part.code;
  reply.body = part.code != 0 ? std::move(part.message) : part.value.dump();
  if (reply.code == 0 && reply.body.size() > fanout_->options().max_reply_bytes) {
    reply.code = ToCode(Errc::kLimitExceeded);
    reply.body = "this member's part is larger than the fan-out reply bound";
  }
  return EncodeFanoutReply(reply);
}

}  // namespace chorus::broker::node
