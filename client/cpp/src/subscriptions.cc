// Subscriptions, pushes and exactly-once delivery (docs/protocol/native.md, "Delivery and
// recovery", N-13 .. N-15).
//
// Each subscription tracks the last delivered (epoch, offset). A publication whose offset is not
// above it is a duplicate and dropped; offset 0 (a channel without history) is never filtered.
// Pushes that arrive while the subscribe is in flight are held (bounded) and delivered after the
// reply's recovered publications, through the same filter.
#include <utility>

#include "client_core.h"
#include "log.h"

namespace chorus::client::detail {

Result<Unit> ClientCore::Subscribe(std::string channel, SubscribeOptions options,
                                   SubscriptionHandlers handlers) {
  if (channel.empty()) return Error(Errc::kBadRequest, "empty channel");
  if (subs_.contains(channel)) return Error(Errc::kAlreadySubscribed, "already subscribed");
  if (subs_.size() >= options_.max_subscriptions) {
    return Error(Errc::kLimitExceeded, "max_subscriptions reached");
  }
  Subscription s;
  s.id = next_sub_id_++;
  s.channel = channel;
  s.handlers = std::make_shared<SubscriptionHandlers>(std::move(handlers));
  if (options.since) {
    s.want_recover = true;
    s.has_position = true;
    s.epoch = options.since->epoch;
    s.offset = options.since->offset;
  }
  s.options = std::move(options);
  auto [it, inserted] = subs_.emplace(std::move(channel), std::move(s));
  if (state_ == ClientState::kConnected) SendSubscribe(it->second, Clock::now());
  return Unit{};
}

Result<Unit> ClientCore::Unsubscribe(std::string_view channel, Callback<Unit> cb) {
  auto it = subs_.find(channel);
  if (it == subs_.end()) return Error(Errc::kBadRequest, "not subscribed");
  const bool on_node = state_ == ClientState::kConnected && it->second.state != SubState::kPending;
  auto handlers = it->second.handlers;
  const std::string name = it->first;
  subs_.erase(it);
  if (handlers->on_unsubscribed) {
    Post([handlers] { handlers->on_unsubscribed(0, "unsubscribed by the client"); });
  }
  if (on_node) {
    auto sent = StartRequest([&](uint64_t id) { return EncodeUnsubscribe(id, name); },
                             [cb = std::move(cb)](Result<const ServerFrame*> r) {
                               if (!cb) return;
                               if (!r) return cb(r.error());
                               if ((*r)->error) return cb(*(*r)->error);
                               cb(Unit{});
                             });
    if (!sent) return sent.error();
  } else if (cb) {
    Post([cb = std::move(cb)] { cb(Unit{}); });  // nothing to undo on the node
  }
  return Unit{};
}

ClientCore::Subscription* ClientCore::FindSub(std::string_view channel, uint64_t id) {
  auto it = subs_.find(channel);
  return it == subs_.end() || it->second.id != id ? nullptr : &it->second;
}

void ClientCore::DropSub(std::string_view channel, uint64_t id, uint32_t code, std::string reason) {
  Subscription* s = FindSub(channel, id);
  if (s == nullptr) return;
  auto handlers = s->handlers;
  subs_.erase(subs_.find(channel));
  if (handlers->on_unsubscribed) handlers->on_unsubscribed(code, reason);
}

bool ClientCore::IsSubscribed(std::string_view channel) const {
  auto it = subs_.find(channel);
  return it != subs_.end() && it->second.state == SubState::kSubscribed;
}

std::optional<StreamPosition> ClientCore::Position(std::string_view channel) const {
  auto it = subs_.find(channel);
  if (it == subs_.end() || !it->second.has_position) return std::nullopt;
  return StreamPosition{it->second.offset, it->second.epoch};
}

void ClientCore::SendSubscribe(Subscription& s, Clock::time_point now) {
  const uint64_t id = next_id_++;
  const bool recover = s.want_recover && s.has_position;
  std::string body = EncodeSubscribe(id, s.channel, recover, recover ? s.epoch : "",
                                     recover ? s.offset : 0, s.options.info);
  if (!Send(body)) {
    EndSession({static_cast<uint32_t>(Errc::kSendFailed), "subscribe not sent", true}, now);
    return;
  }
  s.state = SubState::kSubscribing;
  s.request_id = id;
  s.buffered.clear();
  Pending p;
  p.deadline = now + options_.request_timeout;
  p.sent = true;
  p.user = false;
  p.done = [this, channel = s.channel, sub_id = s.id](Result<const ServerFrame*> r) {
    OnSubscribeReply(channel, sub_id, std::move(r), Clock::now());
  };
  timeouts_.emplace_back(p.deadline, id);
  pending_.emplace(id, std::move(p));
}

void ClientCore::OnSubscribeReply(const std::string& channel, uint64_t sub_id,
                                  Result<const ServerFrame*> r, Clock::time_point now) {
  Subscription* s = FindSub(channel, sub_id);
  if (!r) {
    // A subscribe that times out leaves the channel in an unknown state on the node: start a
    // new session (which resubscribes). kConnectionLost: EndSession already reset the state.
    if (r.error().Is(Errc::kTimeout) && s != nullptr && state_ == ClientState::kConnected) {
      EndSession(
          {static_cast<uint32_t>(Errc::kTimeout), "subscribe to " + channel + " timed out", true},
          now);
    }
    return;
  }
  if (s == nullptr || s->state != SubState::kSubscribing || s->request_id != (*r)->id) return;
  const ServerFrame& f = **r;
  Result<SubscribeResult> res =
      f.error ? Result<SubscribeResult>(*f.error) : DecodeSubscribeResult(f.result);
  if (!res) {
    if (res.error().Is(Errc::kUnauthorized)) return;  // HandleReply starts a new session
    if (res.error().Is(Errc::kMalformed)) ++stats_.malformed;
    Log().info("subscribe to {} refused: {} {}", channel, res.error().code, res.error().message);
    auto handlers = s->handlers;
    subs_.erase(subs_.find(channel));
    if (handlers->on_error) handlers->on_error(res.error());
    return;
  }
  ApplySubscribed(*s, std::move(*res));
}

void ClientCore::ApplySubscribed(Subscription& s, SubscribeResult res) {
  std::vector<Publication> recovered = std::move(res.publications);
  res.publications.clear();
  const bool keep_position = res.recovered && s.has_position;
  if (!keep_position) {
    // Not recovered (or a first subscribe): delivery continues after the stream top.
    s.offset = res.offset;
  }
  s.epoch = res.epoch;
  s.has_position = true;
  s.state = SubState::kSubscribed;
  s.want_recover = s.options.recover && res.recoverable;
  std::vector<Publication> buffered = std::move(s.buffered);
  s.buffered.clear();

  const std::string channel = s.channel;
  const uint64_t id = s.id;
  auto handlers = s.handlers;
  if (handlers->on_subscribed) handlers->on_subscribed(res);
  // N-13: the reply's publications first, then what was pushed meanwhile.
  for (const Publication& p : recovered) {
    Subscription* cur = FindSub(channel, id);
    if (cur == nullptr || cur->state != SubState::kSubscribed) return;
    Deliver(*cur, p);
  }
  if (keep_position) {
    Subscription* cur = FindSub(channel, id);
    if (cur == nullptr || cur->state != SubState::kSubscribed) return;
    if (res.offset > cur->offset) cur->offset = res.offset;
  }
  for (const Publication& p : buffered) {
    Subscription* cur = FindSub(channel, id);
    if (cur == nullptr || cur->state != SubState::kSubscribed) return;
    Deliver(*cur, p);
  }
}

void ClientCore::OnPublication(Subscription& s, Publication pub) {
  if (s.state == SubState::kSubscribed) return Deliver(s, pub);
  if (s.state != SubState::kSubscribing) return;
  if (s.buffered.size() >= options_.max_buffered) {
    ++stats_.buffer_drops;
    Log().warn("channel {}: {} publications pushed before the subscribe reply; dropping", s.channel,
               s.buffered.size());
    return;
  }
  s.buffered.push_back(std::move(pub));
}

void ClientCore::Deliver(Subscription& s, const Publication& pub) {
  if (pub.offset != 0) {
    if (s.has_position && pub.offset <= s.offset) {
      ++stats_.duplicates;
      return;
    }
    if (s.has_position && pub.offset > s.offset + 1 && s.offset != 0) {
      Log().debug("channel {}: gap {} -> {}", s.channel, s.offset, pub.offset);
    }
    s.offset = pub.offset;
    s.has_position = true;
  }
  ++stats_.publications;
  auto handlers = s.handlers;
  if (handlers->on_publication) handlers->on_publication(pub);
}

void ClientCore::HandlePush(ServerFrame& frame, Clock::time_point now) {
  if (frame.push == "disconnect") {
    auto d = DecodeDisconnect(frame.data);
    if (!d) return Malformed(d.error());
    return EndSession(*d, now);
  }
  auto it = subs_.find(frame.channel);
  if (it == subs_.end()) return;  // e.g. a publication racing our unsubscribe
  Subscription& s = it->second;
  if (frame.push == "pub") {
    auto p = DecodePublication(frame.data);
    if (!p) return Malformed(p.error());
    return OnPublication(s, std::move(*p));
  }
  if (frame.push == "unsubscribe") {
    auto u = DecodeUnsubscribe(frame.data);
    if (!u) return Malformed(u.error());
    return DropSub(s.channel, s.id, u->code, u->reason);
  }
  std::function<void(const ClientInfo&)> SubscriptionHandlers::*member = nullptr;
  if (frame.push == "join") member = &SubscriptionHandlers::on_join;
  if (frame.push == "leave") member = &SubscriptionHandlers::on_leave;
  if (frame.push == "user_join") member = &SubscriptionHandlers::on_user_join;
  if (frame.push == "user_leave") member = &SubscriptionHandlers::on_user_leave;
  if (member == nullptr) return;  // unknown push kinds are ignored (forward compatibility)
  auto info = DecodeJoinLeave(frame.data);
  if (!info) return Malformed(info.error());
  if (s.state != SubState::kSubscribed) return;
  auto handlers = s.handlers;
  if ((*handlers).*member) ((*handlers).*member)(*info);
}

}  // namespace chorus::client::detail
