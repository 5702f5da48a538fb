#include "broker/channels/channel_table.h"

#include <utility>

namespace chorus::broker {

std::string RandomEpoch(std::mt19937_64& rng) {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string out(8, '0');
  uint64_t bits = rng();
  for (char& c : out) {
    c = kAlphabet[bits % 62];
    bits /= 62;
  }
  return out;
}

ChannelTable::ChannelTable(const NamespaceRegistry& registry, StateSink* sink, int64_t idle_drop_ms,
                           uint64_t seed)
    : registry_(registry), sink_(sink), idle_drop_ms_(idle_drop_ms), rng_(seed) {}

std::string ChannelTable::NewEpoch() {
  return RandomEpoch(rng_);
}

Channel* ChannelTable::Find(std::string_view channel) {
  auto it = channels_.find(channel);
  return it == channels_.end() ? nullptr : it->second.get();
}

Result<Channel*> ChannelTable::Open(std::string_view channel, int64_t now_ms) {
  if (Channel* ch = Find(channel)) {
    ch->last_active_ms = now_ms;
    return ch;
  }
  auto resolved = registry_.Resolve(channel);
  if (!resolved) return resolved.error();
  if (channels_.size() >= registry_.limits().max_channels) {
    ++stats_.channels_refused;
    return Errc::kLimitExceeded;
  }
  auto ch = std::make_unique<Channel>();
  ch->name = std::string(channel);
  ch->options = resolved->options;
  ch->last_active_ms = now_ms;
  if (ch->options->HistoryEnabled()) {
    ch->history.emplace(NewEpoch(), ch->options->history_size, ch->options->history_ttl_ms);
    if (sink_) sink_->OnTop(ch->name, ch->history->Top());
  }
  Channel* raw = ch.get();
  channels_.emplace(raw->name, std::move(ch));
  return raw;
}

Result<PublishOutcome> ChannelTable::Publish(std::string_view channel, std::string data,
                                             std::optional<std::string> info,
                                             std::map<std::string, std::string> tags,
                                             int64_t now_ms, bool skip_history) {
  auto opened = Open(channel, now_ms);
  if (!opened) return opened.error();
  Channel* ch = *opened;
  PublishOutcome out;
  out.channel = ch;
  out.publication.data = std::move(data);
  out.publication.info = std::move(info);
  out.publication.tags = std::move(tags);
  out.publication.time_ms = now_ms;
  ++stats_.publications;
  if (ch->history && !skip_history) {
    // Append moves the publication in; keep our copy for delivery (data is usually small; the
    // copy is what delivery would make anyway when encoding).
    const uint64_t offset = ch->history->Append(out.publication, now_ms);
    out.publication.offset = offset;
    out.epoch = ch->history->epoch();
    if (sink_) {
      sink_->OnPublication(ch->name, out.publication, ch->history->capacity(),
                           ch->history->ttl_ms());
      sink_->OnTop(ch->name, ch->history->Top());
    }
  } else {
    MaybeDrop(*ch, now_ms);  // nobody subscribed, nothing kept: forget it again
    out.channel = Find(channel);
  }
  return out;
}

Result<ChannelTable::SubscribeOutcome> ChannelTable::Subscribe(std::string_view channel,
                                                               SubscriberId id, bool recover,
                                                               std::string_view epoch,
                                                               uint64_t offset, int64_t now_ms,
                                                               size_t max_recovery) {
  auto opened = Open(channel, now_ms);
  if (!opened) return opened.error();
  Channel* ch = *opened;
  if (ch->subscribers.count(id)) return Errc::kAlreadySubscribed;
  SubscribeOutcome out;
  out.channel = ch;
  if (ch->history) {
    out.recoverable = true;
    const uint64_t visible = Visible(*ch);
    out.top = ch->history->VisibleTop(visible);
    if (recover) {
      out.was_recovering = true;
      RecoveryResult r = ch->history->Recover(epoch, offset, now_ms, max_recovery, visible);
      out.recovered = r.recovered;
      out.top = r.top;
      out.publications = std::move(r.publications);
      ++(r.recovered ? stats_.recovered : stats_.not_recovered);
    }
  }
  ch->subscribers.insert(id);
  return out;
}

void ChannelTable::Unsubscribe(Channel& ch, SubscriberId id, int64_t now_ms) {
  ch.subscribers.erase(id);
  ch.last_active_ms = now_ms;
  MaybeDrop(ch, now_ms);
}

std::vector<PresenceEvent> ChannelTable::Join(Channel& ch, PresenceEntry entry, int64_t now_ms) {
  ch.last_active_ms = now_ms;
  auto events = ch.presence.Add(std::move(entry));
  if (sink_) {
    for (const auto& e : events) {
      if (e.type == PresenceEventType::kJoin) sink_->OnPresence(ch.name, e.entry, true);
      if (e.type == PresenceEventType::kLeave) sink_->OnPresence(ch.name, e.entry, false);
    }
  }
  return events;
}

std::vector<PresenceEvent> ChannelTable::Leave(Channel& ch, std::string_view client,
                                               int64_t now_ms) {
  ch.last_active_ms = now_ms;
  auto events = ch.presence.Remove(client);
  if (sink_) {
    for (const auto& e : events) {
      if (e.type == PresenceEventType::kLeave) sink_->OnPresence(ch.name, e.entry, false);
    }
  }
  return events;
}

Result<HistoryResult> ChannelTable::History(std::string_view channel, const HistoryQuery& q,
                                            int64_t now_ms) {
  auto resolved = registry_.Resolve(channel);
  if (!resolved) return resolved.error();
  if (!resolved->options->HistoryEnabled()) return Errc::kNotAvailable;
  Channel* ch = Find(channel);
  if (ch == nullptr) {  // not held here: nothing published, and reading creates nothing
    if (q.since && (!q.since->epoch.empty() || q.since->offset > 0)) {
      return Errc::kUnrecoverablePosition;
    }
    return HistoryResult{};
  }
  return ch->history->Get(q, now_ms, Visible(*ch));
}

Result<Unit> ChannelTable::RemoveHistory(std::string_view channel, int64_t now_ms) {
  auto resolved = registry_.Resolve(channel);
  if (!resolved) return resolved.error();
  if (!resolved->options->HistoryEnabled()) return Errc::kNotAvailable;
  Channel* ch = Find(channel);
  if (!ch || !ch->history) return Unit{};  // nothing kept: nothing to remove
  ch->history->Remove();
  if (sink_) sink_->OnHistoryRemoved(ch->name, ch->history->capacity());
  ch->last_active_ms = now_ms;
  return Unit{};
}

bool ChannelTable::Idle(const Channel& ch) const {
  return ch.subscribers.empty() && ch.presence.empty() && (!ch.history || ch.history->size() == 0);
}

void ChannelTable::MaybeDrop(Channel& ch, int64_t now_ms) {
  if (!Idle(ch)) return;
  // Without history there is nothing to remember: drop at once. With history, the position
  // (epoch, top) is kept idle_drop_ms so reconnecting clients still recover.
  if (ch.history && now_ms - ch.last_active_ms < idle_drop_ms_) return;
  if (sink_) sink_->OnChannelDropped(ch.name, ch.history ? ch.history->capacity() : 0);
  ++stats_.channels_dropped;
  channels_.erase(ch.name);
}

size_t ChannelTable::Sweep(int64_t now_ms) {
  std::vector<Channel*> idle;
  for (auto& [name, ch] : channels_) {
    if (ch->history) ch->history->Expire(now_ms);
    if (Idle(*ch)) idle.push_back(ch.get());
  }
  const uint64_t before = stats_.channels_dropped;
  for (Channel* ch : idle) MaybeDrop(*ch, now_ms);
  return stats_.channels_dropped - before;
}

void ChannelTable::ForEach(const std::function<void(const Channel&)>& fn) const {
  for (const auto& [name, ch] : channels_) fn(*ch);
}

}  // namespace chorus::broker
