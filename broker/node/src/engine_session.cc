// Client commands, whatever protocol carried them (client_protocol.h): connect, subscribe with
// recovery, publish, presence, history, refresh, rpc. The transports (engine_native.cc,
// engine_ws.cc) decode frames into ClientCommands; replies go out through EncoderOf(session).
// Rule numbers: N-x docs/protocol/native.md, W-x docs/protocol/websocket.md.
#include <cstdio>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "broker/protocol/client_json.h"
#include "broker/protocol/json_depth.h"
#include "chp/keys.h"

namespace chorus::broker::node {
namespace {

constexpr std::string_view kVersion = "0.1.0";
constexpr size_t kReplyOverheadBytes = 64 * 1024;  // framing and offsets around recovered data

uint32_t ClientCode(const std::error_code& ec) {
  if (ec.category() == BrokerCategory() && IsClientCode(static_cast<Errc>(ec.value()))) {
    return static_cast<uint32_t>(ec.value());
  }
  return static_cast<uint32_t>(Errc::kInternal);
}

std::string RandomClientId(std::mt19937_64& rng) {
  // A version 4 UUID in its text form.
  const uint64_t a = rng(), b = rng();
  char out[37];
  snprintf(out, sizeof out, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
           static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0x0fff),
           static_cast<unsigned>(((b >> 48) & 0x3fff) | 0x8000),
           static_cast<unsigned long long>(b & 0xffffffffffffull));
  return out;
}

// JSON from a client (conn_info, publication data): nested at most `max_depth` levels (checked
// first: nothing deeper is ever parsed, stored or re-serialised) and valid, NUL bytes
// included (HasNulByte: nlohmann stops at the first one).
bool IsBoundedJson(const std::string& s, size_t max_depth) {
  return !HasNulByte(s) && JsonDepthAtMost(s, max_depth) && nlohmann::json::accept(s);
}

uint32_t SecondsUntil(int64_t exp_s, int64_t now_s) {
  return exp_s > now_s ? static_cast<uint32_t>(exp_s - now_s) : 0;
}

}  // namespace

void Engine::HandleCommand(Session& s, ClientCommand& cmd) {
  const Encoder& enc = EncoderOf(s);
  auto error = [&](const std::error_code& ec) {
    const uint32_t code = ClientCode(ec);
    SendTo(s, enc.Error(cmd.id, code, make_error_code(static_cast<Errc>(code)).message()));
  };
  if (cmd.error != 0) {
    error(make_error_code(static_cast<Errc>(cmd.error)));
    return;
  }
  const bool is_connect = std::holds_alternative<ConnectRequest>(cmd.request);
  if (!s.connected && !is_connect) {  // N-1 / W-12: connect first
    error(make_error_code(Errc::kUnauthorized));
    return;
  }
  if (s.connected && is_connect) {  // N-3
    error(make_error_code(Errc::kBadRequest));
    return;
  }
  // A result's reply, or its error's.
  auto answer = [&](const auto& r) { r ? SendTo(s, enc.Reply(cmd.id, *r)) : error(r.error()); };
  std::visit(
      [&](auto& req) {
        using T = std::decay_t<decltype(req)>;
        if constexpr (std::is_same_v<T, ConnectRequest>) {
          auto r = OnConnect(s, req);
          if (r) {
            SendTo(s, enc.Reply(cmd.id, *r));
            // The reply before anything of its channels (N-13), then presence joins.
            for (const auto& [channel, _] : r->subs) AfterSubscribe(s, channel);
            return;
          }
          const uint32_t code = ClientCode(r.error());
          if (s.transport->traits().close_on_refused_connect &&
              code != ToCode(Errc::kTokenExpired)) {
            // W-13: a refused connect closes the connection (invalid token, bad request), as
            // Centrifugo does; 109 (token expired) is a reply, so the SDK fetches a new token
            // and reconnects.
            const bool bad = code == ToCode(Errc::kBadRequest);
            return CloseSession(s.id, bad ? kDisconnectBadRequest : kDisconnectInvalidToken,
                                /*try_push=*/true);
          }
          error(r.error());  // native N-2: an error reply
        } else if constexpr (std::is_same_v<T, SubscribeRequest>) {
          // C-17: answered once this node's copy of a channel of another primary is live.
          if (ParkSubscribe(s, cmd, req)) return;
          auto r = OnSubscribe(s, req);
          if (!r) return error(r.error());
          SendTo(s, enc.Reply(cmd.id, *r));  // N-13: the reply before anything of the channel
          AfterSubscribe(s, req.channel);
        } else if constexpr (std::is_same_v<T, UnsubscribeRequest>) {
          auto sub = s.subs.find(req.channel);
          if (sub != s.subs.end() && sub->second.server_side) {
            return error(make_error_code(Errc::kPermissionDenied));  // W-25: the server's
          }
          LeaveChannel(s, req.channel, false, 0, "");
          SendTo(s, enc.UnsubscribeReply(cmd.id));
        } else if constexpr (std::is_same_v<T, PublishRequest>) {
          // Answered now (this node is the primary) or when the primary replies (C-6).
          if (auto r = CheckPublish(s, req); r) {
            StartPublish(s, cmd.id, req);
          } else {
            error(r.error());
          }
        } else if constexpr (std::is_same_v<T, PresenceRequest>) {
          // The primary's presence when this node holds no live copy (C-21): answered later.
          if (AskPresenceFor(s, cmd.id, req.channel, false, req.cursor, req.limit)) return;
          answer(OnPresence(s, req));
        } else if constexpr (std::is_same_v<T, PresenceStatsRequest>) {
          if (AskPresenceFor(s, cmd.id, req.channel, true, "", 0)) return;
          answer(OnPresenceStats(s, req));
        } else if constexpr (std::is_same_v<T, HistoryRequest>) {
          answer(OnHistory(s, req));
        } else if constexpr (std::is_same_v<T, RefreshRequest>) {
          answer(OnRefresh(s, req));
        } else if constexpr (std::is_same_v<T, SubRefreshRequest>) {
          answer(OnSubRefresh(s, req));
        } else if constexpr (std::is_same_v<T, RpcRequest>) {
          if (AskPresenceRpc(s, cmd.id, req)) return;  // C-21: asked of the primary
          SendTo(s, OnRpc(s, cmd.id, req));
        } else if constexpr (std::is_same_v<T, SendRequest>) {
          // Asynchronous message to the server: no handler is configured; nothing to answer.
        } else if constexpr (std::is_same_v<T, PingRequest>) {
          SendTo(s, enc.PingReply(cmd.id));
        } else if constexpr (std::is_same_v<T, DisconnectRequest>) {
          CloseSession(s.id, kDisconnectByClient, /*try_push=*/false);
        }
      },
      cmd.request);
}

Result<ConnectResult> Engine::OnConnect(Session& s, const ConnectRequest& r) {
  const auto& cc = options_.config.client;
  const int64_t now_s = NowMs() / 1000;
  std::vector<std::string> server_channels;
  if (!r.token.empty()) {
    auto claims = VerifyToken(r.token, options_.token_keys, now_s, TokenKind::kConnection);
    if (!claims) return claims.error();  // 101 or 109 (N-2)
    s.user = claims->user;
    s.conn_info = claims->info;
    s.expires_s = claims->exp_s;
    server_channels = std::move(claims->channels);
  } else if (cc.client_insecure) {
    s.insecure = true;
    s.user = r.user;
    s.conn_info = r.info;
  } else {
    return Errc::kUnauthorized;  // N-2
  }
  if (!chp::IsValidUtf8(s.user)) return Errc::kBadRequest;
  if (!s.conn_info.empty() && !IsBoundedJson(s.conn_info, registry_.limits().max_json_depth)) {
    return Errc::kBadRequest;
  }
  s.client = RandomClientId(rng_);
  ConnectResult out;
  if (auto subs = SubscribeServerSide(s, server_channels, r, out); !subs) return subs.error();
  s.connected = true;
  s.last_seen_ms = NowMs();
  ++counters_.connects;
  out.client = s.client;
  out.version = std::string(kVersion);
  out.ping_s = static_cast<uint32_t>(cc.ping_interval_s);
  out.pong_s = static_cast<uint32_t>(cc.pong_timeout_s);
  if (s.expires_s != 0) {
    out.expires = true;
    out.ttl_s = SecondsUntil(s.expires_s, now_s);
  }
  return out;
}

Result<SubscribeResult> Engine::OnSubscribe(Session& s, const SubscribeRequest& r) {
  if (r.channel.empty()) return Errc::kBadRequest;
  auto resolved = table_.Resolve(r.channel);
  if (!resolved) return resolved.error();
  const ChannelOptions& opts = *resolved->options;
  const bool anonymous = s.user.empty();
  // Channel info comes only from the server side (a subscription token; N-20): a client's own
  // `info` is ignored, as Centrifugo has no client-chosen channel info.
  std::string chan_info;
  bool granted = s.insecure;
  if (!r.token.empty()) {
    // A subscription token grants this channel to this user (and carries its info).
    auto claims =
        VerifyToken(r.token, options_.token_keys, NowMs() / 1000, TokenKind::kSubscription);
    if (!claims) return claims.error();
    if (claims->channel != r.channel || claims->user != s.user) return Errc::kPermissionDenied;
    if (!claims->info.empty()) chan_info = claims->info;
    granted = true;
  } else if (!r.channel.empty() && r.channel.front() == kPrivatePrefix && !s.insecure) {
    return Errc::kPermissionDenied;  // private channels need a subscription token
  }
  if (!granted) {
    if (Errc e = CanSubscribe(opts, anonymous); e != Errc::kOk) return e;
  }
  if (s.subs.count(r.channel)) return Errc::kAlreadySubscribed;  // N-11
  if (s.subs.size() >= registry_.limits().max_channels_per_connection) {
    return Errc::kLimitExceeded;
  }
  // Native subscriptions always take join/leave pushes (N-13 spec); WebSocket ones when the
  // client asked for them (W-21), as the SDK's joinLeave option does. Recoverable when the
  // namespace recovers for this subscription: always with force_recovery; with allow_recovery
  // when the client asks (the SDK's `recoverable` option, or a recover attempt; native clients
  // always ask).
  const TransportTraits& traits = s.transport->traits();
  SubscribeMode mode;
  mode.join_leave = traits.always_join_leave || r.join_leave;
  mode.asks_recovery = traits.always_asks_recovery || r.recoverable || r.recover;
  mode.positioned = r.positioned;
  return SubscribeSession(s, r.channel, opts, std::move(chan_info), {r.recover, r.epoch, r.offset},
                          mode, nullptr);
}

bool Engine::ChargeChannelCreation(Session& s, std::string_view channel, bool keeps_state) {
  if (!keeps_state || table_.Find(channel) != nullptr) return true;
  return s.creation_rate.Take(registry_.limits().channel_creations_per_second, NowMs());
}

Result<SubscribeResult> Engine::SubscribeSession(Session& s, const std::string& channel,
                                                 const ChannelOptions& opts, std::string chan_info,
                                                 const SubscribeRecovery& from, SubscribeMode mode,
                                                 size_t* reply_bytes) {
  const bool anonymous = !s.insecure && s.user.empty();
  const bool recover = ShouldRecover(opts, anonymous, from.recover);
  if (!mode.server_side && !ChargeChannelCreation(s, channel, true)) {
    return Errc::kTooManyRequests;
  }
  auto out = table_.Subscribe(channel, s.id, recover, from.epoch, from.offset, NowMs(),
                              options_.max_recovery);
  if (!out) return out.error();
  if (out->recovered) {
    // The reply must fit the connection's queue (client.max_queue_bytes) or the client would
    // be closed as slow on every attempt: a larger catch-up is "not recovered" (reload state).
    // A connect reply carries all its server-side subscriptions: `reply_bytes` sums them.
    size_t bytes = reply_bytes != nullptr ? *reply_bytes : 0;
    for (const auto& p : out->publications) bytes += p.data.size() + (p.info ? p.info->size() : 0);
    if (bytes + kReplyOverheadBytes > options_.config.client.max_queue_bytes) {
      out->recovered = false;
      out->publications.clear();
      table_.CountRecoveryTooLarge();
    } else if (reply_bytes != nullptr) {
      *reply_bytes = bytes;
    }
  }
  s.subs.emplace(channel, Subscription{std::move(chan_info), mode.join_leave, mode.server_side});
  SubscribeResult res;
  res.recoverable =
      out->recoverable && (opts.force_recovery || (opts.allow_recovery && mode.asks_recovery));
  res.positioned = out->recoverable && (res.recoverable || mode.positioned || mode.asks_recovery);
  res.epoch = out->top.epoch;
  res.offset = out->top.offset;
  res.recovered = out->recovered;
  res.was_recovering = out->was_recovering;
  res.publications = std::move(out->publications);
  return res;
}

// W-25 / N-18: the connection token's `channels`, subscribed by the server. The token grants
// them (no namespace permission check, `$` channels included); the namespace's options apply.
// All of them or none: a channel that does not resolve, or more than the connection may hold,
// refuses the connect.
Result<Unit> Engine::SubscribeServerSide(Session& s, const std::vector<std::string>& channels,
                                         const ConnectRequest& r, ConnectResult& out) {
  if (channels.size() > registry_.limits().max_channels_per_connection) {
    return Errc::kLimitExceeded;
  }
  std::vector<const ChannelOptions*> options;
  for (const std::string& ch : channels) {
    auto resolved = table_.Resolve(ch);
    if (!resolved) return resolved.error();
    options.push_back(resolved->options);
  }
  size_t reply_bytes = 0;
  for (size_t i = 0; i < channels.size(); ++i) {
    const std::string& ch = channels[i];
    if (s.subs.count(ch)) continue;  // listed twice
    SubscribeRecovery from;
    for (const auto& [name, rec] : r.subs) {
      if (name == ch) from = rec;
    }
    SubscribeMode mode;
    mode.join_leave = options[i]->join_leave;
    mode.asks_recovery = true;
    mode.server_side = true;
    auto sub = SubscribeSession(s, ch, *options[i], "", from, mode, &reply_bytes);
    if (!sub) {
      for (const auto& [done, _] : out.subs) LeaveChannel(s, done, false, 0, "");
      out.subs.clear();
      return sub.error();
    }
    out.subs.emplace_back(ch, std::move(*sub));
  }
  return Unit{};
}

// Server API `subscribe` (W-25): each connected target session not yet in `channel` gets a
// server-side subscription and a `subscribe` push, then its presence join. A session over
// `limits.max_channels_per_connection` is skipped; the call then answers that error (106) after
// subscribing the others.
Result<Unit> Engine::ServerSubscribe(const std::vector<SubscriberId>& targets,
                                     const std::string& channel, const SubscribeRecovery& from) {
  auto resolved = table_.Resolve(channel);
  if (!resolved) return resolved.error();
  const ChannelOptions& opts = *resolved->options;
  std::error_code failed;
  for (SubscriberId id : targets) {
    Session* s = FindSession(id);
    if (s == nullptr || !s->connected || s->subs.count(channel)) continue;
    if (s->subs.size() >= registry_.limits().max_channels_per_connection) {
      failed = make_error_code(Errc::kLimitExceeded);
      continue;
    }
    SubscribeMode mode;
    mode.join_leave = opts.join_leave;
    mode.asks_recovery = true;
    mode.server_side = true;
    auto sub = SubscribeSession(*s, channel, opts, "", from, mode, nullptr);
    if (!sub) {
      failed = sub.error();
      continue;
    }
    SendTo(*s, EncoderOf(*s).SubscribePush(channel, *sub));
    AfterSubscribe(*s, channel);
  }
  if (failed) return failed;
  return Unit{};
}

void Engine::AfterSubscribe(Session& s, std::string_view channel) {
  UpdateInterest(channel);  // C-16: follow the channel on its primary
  auto sub = s.subs.find(channel);
  Channel* ch = table_.Find(channel);
  if (sub == s.subs.end() || ch == nullptr || !ch->options->presence) return;
  PushPresenceEvents(*ch, PresenceJoin(s, *ch, sub->second.chan_info));  // C-21: on the primary
}

Result<Unit> Engine::CheckPublish(Session& s, const PublishRequest& r) {
  if (r.channel.empty()) return Errc::kBadRequest;
  auto resolved = table_.Resolve(r.channel);
  if (!resolved) return resolved.error();
  if (!s.insecure) {
    if (Errc e = CanPublish(*resolved->options, s.user.empty()); e != Errc::kOk) return e;
  }
  const Limits& limits = registry_.limits();
  if (!s.publish_rate.Take(limits.publications_per_second, NowMs())) {
    return Errc::kTooManyRequests;
  }
  if (r.data.size() > limits.max_publication_bytes) return Errc::kLimitExceeded;
  if (!IsBoundedJson(r.data, limits.max_json_depth)) return Errc::kBadRequest;  // N-12, N-21
  if (!resolved->options->HistoryEnabled() || table_.Find(r.channel) != nullptr) return Unit{};
  if (RouteOf(r.channel).local) {
    if (!ChargeChannelCreation(s, r.channel, true)) return Errc::kTooManyRequests;
    return Unit{};
  }
  // Forwarded to the primary (C-6), which creates the channel: the publisher is charged once
  // per channel it publishes to, not once per publish (this node never holds the channel
  // unless it follows it, so every publish would look like a creation here).
  const uint64_t h = std::hash<std::string_view>{}(r.channel);
  for (uint64_t seen : s.remote_charged) {
    if (seen == h) return Unit{};
  }
  if (!ChargeChannelCreation(s, r.channel, true)) return Errc::kTooManyRequests;
  s.remote_charged[s.remote_charged_next++ % s.remote_charged.size()] = h;
  return Unit{};
}

void Engine::StartPublish(Session& s, uint64_t cmd_id, const PublishRequest& r) {
  std::string chan_info;
  if (auto sub = s.subs.find(r.channel); sub != s.subs.end()) chan_info = sub->second.chan_info;
  const PresenceEntry publisher{s.client, s.user, s.conn_info, chan_info};
  PublishJob job{r.channel, r.data, ClientInfoToJson(publisher), {}, false};
  // The session may be gone when a forwarded publish is answered: it is found again by id.
  RoutePublish(
      std::move(job), &publisher, [this, sid = s.id, cmd_id](const Result<PublishResult>& out) {
        Session* sp = FindSession(sid);
        if (sp == nullptr) return;
        const Encoder& enc = EncoderOf(*sp);
        if (out) {
          SendTo(*sp, enc.Reply(cmd_id, *out));
          return;
        }
        const uint32_t code = ClientCode(out.error());
        SendTo(*sp, enc.Error(cmd_id, code, make_error_code(static_cast<Errc>(code)).message()));
      });
}

Result<PresenceResult> Engine::OnPresence(Session& s, const PresenceRequest& r) {
  if (r.channel.empty()) return Errc::kBadRequest;
  auto resolved = table_.Resolve(r.channel);
  if (!resolved) return resolved.error();
  const ChannelOptions& opts = *resolved->options;
  if (!s.insecure || !opts.presence) {
    if (Errc e = CanPresence(opts, s.user.empty()); e != Errc::kOk) return e;
  }
  const size_t page = std::clamp<size_t>(r.limit == 0 ? opts.presence_page_size : r.limit, 1,
                                         opts.presence_page_size);
  PresenceResult out;
  if (const Channel* ch = table_.Find(r.channel)) {
    PresencePage p = ch->presence.Page(r.cursor, page);
    out.entries = std::move(p.entries);
    out.next_cursor = std::move(p.next_cursor);
  }
  return out;
}

Result<PresenceStats> Engine::OnPresenceStats(Session& s, const PresenceStatsRequest& r) {
  if (r.channel.empty()) return Errc::kBadRequest;
  auto resolved = table_.Resolve(r.channel);
  if (!resolved) return resolved.error();
  const ChannelOptions& opts = *resolved->options;
  if (!s.insecure || !opts.presence) {
    if (Errc e = CanPresence(opts, s.user.empty()); e != Errc::kOk) return e;
  }
  const Channel* ch = table_.Find(r.channel);
  return ch ? ch->presence.Stats() : PresenceStats{};
}

Result<HistoryResultOut> Engine::OnHistory(Session& s, const HistoryRequest& r) {
  if (r.channel.empty()) return Errc::kBadRequest;
  auto resolved = table_.Resolve(r.channel);
  if (!resolved) return resolved.error();
  const ChannelOptions& opts = *resolved->options;
  if (!s.insecure || !opts.HistoryEnabled()) {
    if (Errc e = CanHistory(opts, s.user.empty()); e != Errc::kOk) return e;
  }
  HistoryQuery q;
  q.reverse = r.reverse;
  q.since = r.since;
  const auto max = static_cast<int64_t>(options_.history_max_limit);
  q.limit = r.limit < 0 ? max : std::min(r.limit, max);
  auto h = table_.History(r.channel, q, NowMs());
  if (!h) return h.error();
  return HistoryResultOut{std::move(h->publications), h->top.epoch, h->top.offset};
}

Result<RefreshResult> Engine::OnRefresh(Session& s, const RefreshRequest& r) {
  const int64_t now_s = NowMs() / 1000;
  auto claims = VerifyToken(r.token, options_.token_keys, now_s, TokenKind::kConnection);
  if (!claims) return claims.error();
  if (claims->user != s.user) return Errc::kPermissionDenied;  // a token of another user
  s.expires_s = claims->exp_s;
  if (!claims->info.empty()) s.conn_info = claims->info;
  RefreshResult out{s.client, std::string(kVersion), s.expires_s != 0,
                    SecondsUntil(s.expires_s, now_s)};
  return out;
}

Result<SubRefreshResult> Engine::OnSubRefresh(Session& s, const SubRefreshRequest& r) {
  if (!s.subs.count(r.channel)) return Errc::kBadRequest;
  const int64_t now_s = NowMs() / 1000;
  auto claims = VerifyToken(r.token, options_.token_keys, now_s, TokenKind::kSubscription);
  if (!claims) return claims.error();
  if (claims->channel != r.channel || claims->user != s.user) return Errc::kPermissionDenied;
  return SubRefreshResult{claims->exp_s != 0, SecondsUntil(claims->exp_s, now_s)};
}

std::string Engine::OnRpc(Session& s, uint64_t id, const RpcRequest& r) {
  const Encoder& enc = EncoderOf(s);
  auto error = [&](Errc e) {
    return enc.Error(id, static_cast<uint32_t>(e), make_error_code(e).message());
  };
  if (r.method == json::kRpcPresencePage) {
    auto req = json::DecodePresencePageParams(r.data);
    if (!req) return error(Errc::kBadRequest);
    auto out = OnPresence(s, *req);
    if (!out) return error(static_cast<Errc>(ClientCode(out.error())));
    return enc.PresencePageRpcReply(id, *out);
  }
  if (r.method == json::kRpcPresenceUsers) {
    auto req = json::DecodePresenceUsersParams(r.data);
    if (!req) return error(Errc::kBadRequest);
    auto stats = OnPresenceStats(s, *req);  // the same permission checks as presence
    if (!stats) return error(static_cast<Errc>(ClientCode(stats.error())));
    std::vector<std::string> users;
    if (const Channel* ch = table_.Find(req->channel)) users = ch->presence.Users();
    const size_t n = users.size();
    return enc.PresenceUsersRpcReply(id, users, n);
  }
  return error(Errc::kMethodNotFound);  // W-20: no other rpc is configured
}

}  // namespace chorus::broker::node
