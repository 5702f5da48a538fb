// The native client protocol on the engine's ROUTER (docs/protocol/native.md). Rule numbers
// (N-x) refer to that document.
#include <nlohmann/json.hpp>

#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "chp/keys.h"

namespace chorus::broker::node {
namespace {

constexpr std::string_view kVersion = "0.1.0";
constexpr size_t kReadBatchNative = 1024;  // commands per poll, so the bridge never starves

uint32_t Code(const std::error_code& ec) {
  if (ec.category() == BrokerCategory() && IsClientCode(static_cast<Errc>(ec.value()))) {
    return static_cast<uint32_t>(ec.value());
  }
  return static_cast<uint32_t>(Errc::kInternal);
}

std::string ErrorReply(uint64_t id, Errc e) {
  const auto ec = make_error_code(e);
  return EncodeError(id, Code(ec), ec.message());
}

std::string ErrorReply(uint64_t id, const std::error_code& ec) {
  const uint32_t code = Code(ec);
  return EncodeError(id, code, make_error_code(static_cast<Errc>(code)).message());
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

}  // namespace

void Engine::ReadNative() {
  for (size_t i = 0; i < kReadBatchNative; ++i) {
    zmq::message_t rid, body;
    if (!native_.recv(rid, zmq::recv_flags::dontwait)) return;
    if (!rid.more()) continue;  // cannot happen on a ROUTER; defensive
    (void)native_.recv(body, zmq::recv_flags::none);
    while (body.more()) {  // N-6: one frame per command; drop the extra frames
      zmq::message_t extra;
      (void)native_.recv(extra, zmq::recv_flags::none);
      body.rebuild(0);
      ++counters_.malformed;
      if (!extra.more()) break;
    }
    HandleNative(rid.to_string(), body.to_string_view());
  }
}

void Engine::HandleNative(const std::string& routing_id, std::string_view frame) {
  ++counters_.commands;
  NativeCommand cmd;
  if (!DecodeCommand(frame, cmd)) {
    ++counters_.malformed;
    if (cmd.id != 0) Reply(routing_id, ErrorReply(cmd.id, Errc::kBadRequest));
    return;
  }
  Params p(cmd.params);
  auto it = by_routing_.find(routing_id);
  if (it == by_routing_.end()) {
    if (cmd.method == "connect") {
      HandleConnect(routing_id, cmd, p);
      return;
    }
    auto closed = closed_.find(routing_id);
    if (closed != closed_.end()) {  // N-1: tell a closed session why
      Reply(routing_id, EncodeDisconnectPush(closed->second.code, closed->second.reason,
                                             closed->second.reconnect));
      return;
    }
    Reply(routing_id, ErrorReply(cmd.id, Errc::kUnauthorized));
    return;
  }
  Session& s = sessions_.at(it->second);
  s.last_seen_ms = NowMs();
  HandleSessionCommand(s, cmd, p);
}

void Engine::HandleConnect(const std::string& routing_id, NativeCommand& cmd, Params& p) {
  const auto& client_cfg = options_.config.client;
  Session s;
  s.routing_id = routing_id;
  const auto token = p.Str("token");
  const auto user = p.Str("user");
  const auto info = p.Str("info");
  if (p.bad()) {
    Reply(routing_id, ErrorReply(cmd.id, Errc::kBadRequest));
    return;
  }
  if (token && !token->empty()) {
    auto claims = VerifyToken(*token, options_.token_keys, NowMs() / 1000);
    if (!claims) {
      Reply(routing_id, ErrorReply(cmd.id, claims.error()));
      return;
    }
    s.user = claims->user;
    s.conn_info = claims->info;
  } else if (client_cfg.client_insecure) {
    s.insecure = true;
    s.user = std::string(user.value_or(""));
    s.conn_info = std::string(info.value_or(""));
  } else {
    Reply(routing_id, ErrorReply(cmd.id, Errc::kUnauthorized));  // N-2
    return;
  }
  if (!chp::IsValidUtf8(s.user) || (!s.conn_info.empty() && !nlohmann::json::accept(s.conn_info))) {
    Reply(routing_id, ErrorReply(cmd.id, Errc::kBadRequest));
    return;
  }
  s.id = next_session_id_++;
  s.client = RandomClientId(rng_);
  s.last_seen_ms = NowMs();
  closed_.erase(routing_id);
  ++counters_.connects;
  const std::string client = s.client;
  const SubscriberId id = s.id;
  by_routing_[routing_id] = id;
  sessions_.emplace(id, std::move(s));
  Reply(routing_id, EncodeResult(cmd.id, 4, [&](Packer& pk) {
          PackStr(pk, "client");
          PackStr(pk, client);
          PackStr(pk, "version");
          PackStr(pk, kVersion);
          PackStr(pk, "ping");
          pk.pack_uint64(static_cast<uint64_t>(client_cfg.ping_interval_s));
          PackStr(pk, "pong");
          pk.pack_uint64(static_cast<uint64_t>(client_cfg.pong_timeout_s));
        }));
}

void Engine::HandleSessionCommand(Session& s, NativeCommand& cmd, Params& p) {
  const std::string& m = cmd.method;
  std::string reply;
  if (m == "subscribe") {
    reply = DoSubscribe(s, cmd.id, p);
  } else if (m == "publish") {
    reply = DoPublish(s, cmd.id, p);
  } else if (m == "unsubscribe") {
    const auto channel = p.Str("channel");
    if (p.bad() || !channel) {
      reply = ErrorReply(cmd.id, Errc::kBadRequest);
    } else {
      LeaveChannel(s, *channel, false, 0, "");
      reply = EncodeEmptyResult(cmd.id);
    }
  } else if (m == "presence") {
    reply = DoPresence(s, cmd.id, p);
  } else if (m == "presence_stats") {
    reply = DoPresenceStats(s, cmd.id, p);
  } else if (m == "history") {
    reply = DoHistory(s, cmd.id, p);
  } else if (m == "ping") {
    reply = EncodeEmptyResult(cmd.id);
  } else if (m == "disconnect") {
    CloseSession(s.id, 3000, "connection closed", /*reconnect=*/false, /*try_push=*/false);
    return;  // N-5: no reply; `s` is gone
  } else if (m == "connect") {
    reply = ErrorReply(cmd.id, Errc::kBadRequest);  // N-3
  } else {
    reply = ErrorReply(cmd.id, Errc::kMethodNotFound);  // N-7
  }
  if (!reply.empty()) Reply(s.routing_id, reply);  // DoSubscribe replies itself
}

std::string Engine::DoSubscribe(Session& s, uint64_t id, Params& p) {
  const auto channel = p.Str("channel");
  const bool recover = p.Bool("recover").value_or(false);
  const auto epoch = p.Str("epoch").value_or("");
  const uint64_t offset = p.Uint("offset").value_or(0);
  const auto chan_info = p.Str("info").value_or("");
  if (p.bad() || !channel) return ErrorReply(id, Errc::kBadRequest);
  if (!chan_info.empty() && !nlohmann::json::accept(chan_info)) {
    return ErrorReply(id, Errc::kBadRequest);
  }
  auto resolved = table_.Resolve(*channel);
  if (!resolved) return ErrorReply(id, resolved.error());
  const ChannelOptions& opts = *resolved->options;
  const bool anonymous = s.user.empty();
  if (!s.insecure) {
    if (Errc e = CanSubscribe(opts, anonymous); e != Errc::kOk) return ErrorReply(id, e);
  }
  if (s.subs.count(*channel)) return ErrorReply(id, Errc::kAlreadySubscribed);  // N-11
  if (s.subs.size() >= registry_.limits().max_channels_per_connection) {
    return ErrorReply(id, Errc::kLimitExceeded);
  }
  const bool should_recover = ShouldRecover(opts, s.insecure ? false : anonymous, recover);
  auto out = table_.Subscribe(*channel, s.id, should_recover, epoch, offset, NowMs(),
                              options_.max_recovery);
  if (!out) return ErrorReply(id, out.error());
  s.subs.emplace(std::string(*channel), std::string(chan_info));
  std::string reply = EncodeResult(id, 6, [&](Packer& pk) {
    PackStr(pk, "recoverable");
    pk.pack(out->recoverable);
    PackStr(pk, "epoch");
    PackStr(pk, out->top.epoch);
    PackStr(pk, "offset");
    pk.pack_uint64(out->top.offset);
    PackStr(pk, "recovered");
    pk.pack(out->recovered);
    PackStr(pk, "was_recovering");
    pk.pack(out->was_recovering);
    PackStr(pk, "publications");
    pk.pack_array(static_cast<uint32_t>(out->publications.size()));
    for (const auto& pub : out->publications) PackPublication(pk, pub);
  });
  // The reply goes first (N-13: nothing of the channel before it), then the join.
  Reply(s.routing_id, reply);
  if (opts.presence) {
    Channel& ch = *out->channel;
    auto events = table_.Join(ch, {s.client, s.user, s.conn_info, std::string(chan_info)}, NowMs());
    PushPresenceEvents(ch, events);
  }
  return {};
}

std::string Engine::DoPublish(Session& s, uint64_t id, Params& p) {
  const auto channel = p.Str("channel");
  const auto data = p.Str("data");
  if (p.bad() || !channel || !data) return ErrorReply(id, Errc::kBadRequest);
  auto resolved = table_.Resolve(*channel);
  if (!resolved) return ErrorReply(id, resolved.error());
  if (!s.insecure) {
    if (Errc e = CanPublish(*resolved->options, s.user.empty()); e != Errc::kOk) {
      return ErrorReply(id, e);
    }
  }
  if (data->size() > registry_.limits().max_publication_bytes) {
    return ErrorReply(id, Errc::kLimitExceeded);  // N-12
  }
  if (!nlohmann::json::accept(*data)) return ErrorReply(id, Errc::kBadRequest);
  std::string chan_info;
  if (auto sub = s.subs.find(*channel); sub != s.subs.end()) chan_info = sub->second;
  const PresenceEntry publisher{s.client, s.user, s.conn_info, chan_info};
  auto out =
      PublishAndDeliver(*channel, std::string(*data), ClientInfoToJson(publisher), {}, &publisher);
  if (!out) return ErrorReply(id, out.error());
  return EncodeResult(id, 2, [&](Packer& pk) {
    PackStr(pk, "offset");
    pk.pack_uint64(out->publication.offset);
    PackStr(pk, "epoch");
    PackStr(pk, out->epoch);
  });
}

std::string Engine::DoPresence(Session& s, uint64_t id, Params& p) {
  const auto channel = p.Str("channel");
  const auto cursor = p.Str("cursor").value_or("");
  const auto limit = p.Uint("limit");
  if (p.bad() || !channel) return ErrorReply(id, Errc::kBadRequest);
  auto resolved = table_.Resolve(*channel);
  if (!resolved) return ErrorReply(id, resolved.error());
  const ChannelOptions& opts = *resolved->options;
  if (!s.insecure || !opts.presence) {
    if (Errc e = CanPresence(opts, s.user.empty()); e != Errc::kOk) return ErrorReply(id, e);
  }
  const size_t page =
      std::clamp<size_t>(limit.value_or(opts.presence_page_size), 1, opts.presence_page_size);
  PresencePage result;
  if (const Channel* ch = table_.Find(*channel)) result = ch->presence.Page(cursor, page);
  return EncodeResult(id, 2, [&](Packer& pk) {
    PackStr(pk, "presence");
    pk.pack_map(static_cast<uint32_t>(result.entries.size()));
    for (const auto& e : result.entries) {
      PackStr(pk, e.client);
      PackClientInfo(pk, e);
    }
    PackStr(pk, "next_cursor");
    PackStr(pk, result.next_cursor);
  });
}

std::string Engine::DoPresenceStats(Session& s, uint64_t id, Params& p) {
  const auto channel = p.Str("channel");
  if (p.bad() || !channel) return ErrorReply(id, Errc::kBadRequest);
  auto resolved = table_.Resolve(*channel);
  if (!resolved) return ErrorReply(id, resolved.error());
  const ChannelOptions& opts = *resolved->options;
  if (!s.insecure || !opts.presence) {
    if (Errc e = CanPresence(opts, s.user.empty()); e != Errc::kOk) return ErrorReply(id, e);
  }
  PresenceStats st;
  if (const Channel* ch = table_.Find(*channel)) st = ch->presence.Stats();
  return EncodeResult(id, 2, [&](Packer& pk) {
    PackStr(pk, "num_clients");
    pk.pack_uint64(st.num_clients);
    PackStr(pk, "num_users");
    pk.pack_uint64(st.num_users);
  });
}

std::string Engine::DoHistory(Session& s, uint64_t id, Params& p) {
  const auto channel = p.Str("channel");
  const int64_t limit = p.Int("limit").value_or(0);
  const bool reverse = p.Bool("reverse").value_or(false);
  const msgpack::object* since = p.Map("since");
  if (p.bad() || !channel) return ErrorReply(id, Errc::kBadRequest);
  HistoryQuery q;
  q.reverse = reverse;
  q.limit = limit < 0 ? static_cast<int64_t>(options_.history_max_limit)
                      : std::min<int64_t>(limit, static_cast<int64_t>(options_.history_max_limit));
  if (since != nullptr) {
    Params sp(since);
    StreamPosition pos;
    pos.offset = sp.Uint("offset").value_or(0);
    pos.epoch = std::string(sp.Str("epoch").value_or(""));
    if (sp.bad()) return ErrorReply(id, Errc::kBadRequest);
    q.since = pos;
  }
  auto resolved = table_.Resolve(*channel);
  if (!resolved) return ErrorReply(id, resolved.error());
  const ChannelOptions& opts = *resolved->options;
  if (!s.insecure || !opts.HistoryEnabled()) {
    if (Errc e = CanHistory(opts, s.user.empty()); e != Errc::kOk) return ErrorReply(id, e);
  }
  auto r = table_.History(*channel, q, NowMs());
  if (!r) return ErrorReply(id, r.error());
  return EncodeResult(id, 3, [&](Packer& pk) {
    PackStr(pk, "publications");
    pk.pack_array(static_cast<uint32_t>(r->publications.size()));
    for (const auto& pub : r->publications) PackPublication(pk, pub);
    PackStr(pk, "epoch");
    PackStr(pk, r->top.epoch);
    PackStr(pk, "offset");
    pk.pack_uint64(r->top.offset);
  });
}

}  // namespace chorus::broker::node
