// Cluster-wide presence (docs/cluster.md §10, C-21..C-23). A channel's presence belongs to its
// partition primary: every entry carries the member holding the connection and its
// incarnation. A node that is not the primary sends its clients' joins and leaves to the
// primary (presence_link.h, in order over one pipe per peer) and learns the channel's presence
// back through the followed copy of the channel's subtree (`p/<client>` keys, interest.h), from
// which it pushes join/leave to its own subscribers, once per change. After each map: the
// primaries drop the entries of dead or restarted members with one leave each (C-22), and every
// node re-asserts its local entries where the primary changed (C-23; idempotent).
#include <map>
#include <set>

#include "backup.h"
#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "broker/protocol/client_json.h"
#include "channel_records.h"
#include "cluster/partition.h"
#include "cluster_view.h"
#include "forwarder.h"
#include "interest.h"
#include "presence_codec.h"
#include "presence_link.h"

namespace chorus::broker::node {
namespace {

// Whether an entry's member is gone for good (C-22): removed from the map, a later incarnation
// applied (a restart), or marked dead at the entry's incarnation.
bool MemberGone(const cluster::ClusterMap& map, uint64_t node, uint64_t incarnation) {
  const cluster::Member* m = map.FindMember(node);
  if (m == nullptr) return true;
  if (incarnation < m->incarnation) return true;
  return incarnation == m->incarnation && m->state == cluster::MemberState::kDead;
}

std::vector<PresenceEntry> AllEntries(const ChannelPresence& p) {
  return p.Page("", SIZE_MAX).entries;
}

}  // namespace

PresenceEntry Engine::LocalEntry(const Session& s, const std::string& chan_info) const {
  PresenceEntry e{s.client, s.user, s.conn_info, chan_info};
  if (cluster_->received) {
    e.node = cluster_->header.member_id;
    e.incarnation = cluster_->header.incarnation;
  }
  return e;
}

std::vector<PresenceEvent> Engine::PresenceJoin(Session& s, Channel& ch,
                                                const std::string& chan_info) {
  const Route route = RouteOf(ch.name);
  if (route.local) return table_.Join(ch, LocalEntry(s, chan_info), NowMs());
  if (route.unreachable) return {};  // re-asserted once the map names a reachable primary
  PresenceUpdate u;
  u.sender = cluster_->header.member_id;
  u.incarnation = cluster_->header.incarnation;
  u.partition = route.partition;
  u.partition_epoch = route.epoch;
  u.channel = ch.name;
  u.join = true;
  u.entry = LocalEntry(s, chan_info);
  presence_->Send(route.member, route.endpoint, u);
  return {};
}

std::vector<PresenceEvent> Engine::PresenceLeave(Session& s, Channel& ch) {
  const Route route = RouteOf(ch.name);
  if (route.local) return table_.Leave(ch, s.client, NowMs());
  if (route.unreachable) return {};
  PresenceUpdate u;
  u.sender = cluster_->header.member_id;
  u.incarnation = cluster_->header.incarnation;
  u.partition = route.partition;
  u.partition_epoch = route.epoch;
  u.channel = ch.name;
  u.join = false;
  u.entry.client = s.client;
  presence_->Send(route.member, route.endpoint, u);
  return {};
}

bool Engine::ServePeerMessage(std::string_view body, std::string* reply) {
  switch (PeerMessageKind(body)) {
    case kPresenceUpdateKind:
    case kPresenceSyncKind: {
      PresenceUpdate u;
      if (!DecodePresenceUpdate(body, u)) return false;
      ServePresenceUpdate(u);
      return true;
    }
    case kPresenceQueryKind: {
      PresenceQuery q;
      if (!DecodePresenceQuery(body, q)) return false;
      *reply = EncodePresenceAnswer(ServePresenceQuery(q));
      ++presence_->stats().queries_served;
      return true;
    }
    default:
      return false;
  }
}

void Engine::OnPeerAnswer(std::string_view body) {
  PresenceAnswer a;
  if (PeerMessageKind(body) == kPresenceAnswerKind && DecodePresenceAnswer(body, a)) {
    presence_->OnAnswer(a);
  }
}

void Engine::ServePresenceUpdate(const PresenceUpdate& u) {
  PresenceLinkStats& stats = presence_->stats();
  if (u.sync) {
    const cluster::Partition* p =
        cluster_->received ? cluster_->map.FindPartition(u.partition) : nullptr;
    if (p == nullptr || u.partition_epoch < p->epoch ||
        MemberGone(cluster_->map, u.sender, u.incarnation)) {
      ++stats.updates_refused;
    } else if (p->primary != cluster_->header.member_id) {
      if (u.partition_epoch > p->epoch) {
        presence_->Hold(u);  // served again after this node's next map
      } else {
        ++stats.updates_refused;
      }
    } else {
      DropUnheldPresence(u.sender, u.partition, {u.held.begin(), u.held.end()});
      ++stats.updates_applied;
    }
    return;
  }
  auto resolved = table_.Resolve(u.channel);
  if (!resolved || !resolved->options->presence || !cluster_->received) {
    ++stats.updates_refused;
    return;
  }
  const Route route = RouteOf(u.channel);
  const cluster::ClusterMap& map = cluster_->map;
  // C-13 for presence: an update decided on an older map is dropped (its sender re-asserts
  // when its map catches up, C-23); one from a newer map than ours waits for ours.
  if (route.partition != u.partition || u.partition_epoch < route.epoch ||
      MemberGone(map, u.sender, u.incarnation)) {
    ++stats.updates_refused;
    return;
  }
  if (!route.local) {
    if (u.partition_epoch > route.epoch) {
      presence_->Hold(u);
    } else {
      ++stats.updates_refused;
    }
    return;
  }
  const int64_t now = NowMs();
  if (u.join) {
    auto ch = table_.Open(u.channel, now);
    if (!ch) {
      ++stats.updates_refused;
      return;
    }
    PushPresenceEvents(**ch, table_.Join(**ch, u.entry, now));
  } else if (Channel* ch = table_.Find(u.channel)) {
    const PresenceEntry* e = ch->presence.Find(u.entry.client);
    if (e != nullptr && e->node != u.sender && e->node != 0) {
      ++stats.updates_refused;  // not that member's client
      return;
    }
    PushPresenceEvents(*ch, table_.Leave(*ch, u.entry.client, now));
  }
  ++stats.updates_applied;
}

void Engine::DropUnheldPresence(uint64_t member, uint32_t partition,
                                const std::set<std::pair<std::string, std::string>>& held) {
  const uint32_t count = cluster_->map.partition_count();
  std::vector<std::pair<std::string, std::string>> gone;
  table_.ForEach([&](const Channel& ch) {
    if (!ch.options->presence || cluster::PartitionOf(ch.name, count) != partition) return;
    for (const PresenceEntry& e : AllEntries(ch.presence)) {
      if (e.node == member && held.count({ch.name, e.client}) == 0) {
        gone.emplace_back(ch.name, e.client);
      }
    }
  });
  const int64_t now = NowMs();
  for (const auto& [channel, client] : gone) {
    Channel* ch = table_.Find(channel);
    if (ch == nullptr) continue;
    ++presence_->stats().unheld_dropped;
    PushPresenceEvents(*ch, table_.Leave(*ch, client, now));
  }
}

PresenceAnswer Engine::ServePresenceQuery(const PresenceQuery& q) {
  PresenceAnswer a;
  a.id = q.id;
  auto resolved = table_.Resolve(q.channel);
  if (!resolved || !resolved->options->presence) {
    a.status = PresenceAnswerStatus::kError;
    a.error =
        static_cast<uint32_t>(resolved ? Errc::kNotAvailable : Errc(resolved.error().value()));
    return a;
  }
  if (!RouteOf(q.channel).local) {
    a.status = PresenceAnswerStatus::kNotPrimary;
    return a;
  }
  const Channel* ch = table_.Find(q.channel);
  if (ch == nullptr) return a;
  const PresenceStats st = ch->presence.Stats();
  a.num_clients = st.num_clients;
  a.num_users = st.num_users;
  if (q.mode == PresenceQueryMode::kPage) {
    PresencePage page = ch->presence.Page(q.cursor, std::max<uint32_t>(q.limit, 1));
    a.entries = std::move(page.entries);
    a.next_cursor = std::move(page.next_cursor);
  } else if (q.mode == PresenceQueryMode::kUsers) {
    a.users = ch->presence.Users();
  }
  return a;
}

void Engine::OnPresenceMap() {
  if (!cluster_->received || !cluster_->map.bootstrapped()) return;
  const cluster::ClusterMap& map = cluster_->map;
  if (map.applied() == presence_entries_) return;
  presence_entries_ = map.applied();
  const uint64_t self = cluster_->header.member_id;
  const size_t n = map.partitions().size();
  if (presence_primaries_.size() != n) presence_primaries_.assign(n, 0);
  // `synced`: a primary change after the first map, where a leave may have gone to a primary
  // that died before applying it: the holders list what they hold (kind 34).
  std::vector<char> changed(n, 0), gained(n, 0), lost(n, 0), synced(n, 0);
  for (size_t p = 0; p < n; ++p) {
    const uint64_t now = map.partitions()[p].primary;
    if (now == presence_primaries_[p]) continue;
    changed[p] = 1;
    synced[p] = presence_primaries_[p] != 0 && now != 0;
    gained[p] = now == self;
    lost[p] = presence_primaries_[p] == self;
    presence_primaries_[p] = now;
  }
  std::vector<std::string> names;
  table_.ForEach([&](const Channel& ch) {
    if (ch.options->presence) names.push_back(ch.name);
  });
  const int64_t now_ms = NowMs();
  for (const std::string& name : names) {
    Channel* ch = table_.Find(name);
    const uint32_t part = cluster::PartitionOf(name, map.partition_count());
    if (ch == nullptr || part >= n) continue;
    // No longer the primary and no local subscriber to follow the new one for: nothing would
    // keep this presence up to date (and a later return as primary must not adopt it).
    if (lost[part] && ch->subscribers.empty()) ch->presence = {};
    if (gained[part]) {
      // This node's copy becomes the channel's presence: its CHP keys are made to match it
      // (keys left from an earlier time as primary go), so nodes that follow it see the same.
      const std::string subtree = ChannelSubtree(name);
      std::vector<std::string> stale;
      if (const chp::Subtree* st = chp_->store().Find(subtree)) {
        for (const auto& [key, entry] : st->entries) {
          if (key.starts_with("p/") && ch->presence.Find(key.substr(2)) == nullptr) {
            stale.push_back(subtree + "/" + key);
          }
        }
      }
      for (const std::string& key : stale) (void)chp_->Erase(key);
      for (const PresenceEntry& e : AllEntries(ch->presence)) sink_->OnPresence(name, e, true);
    }
    if (!RouteOf(name).local) continue;
    // C-22: the primary drops the entries of members that are gone, one leave each.
    for (const PresenceEntry& e : AllEntries(ch->presence)) {
      if (e.node == 0 || e.node == self || !MemberGone(map, e.node, e.incarnation)) continue;
      ++presence_->stats().dead_entries_dropped;
      PushPresenceEvents(*ch, table_.Leave(*ch, e.client, now_ms));
    }
  }
  // Updates that arrived before this node's map made it primary.
  for (const PresenceUpdate& u : presence_->TakeHeld()) ServePresenceUpdate(u);
  // C-23: local entries re-asserted where the primary changed (idempotent on the primary).
  std::vector<std::pair<SubscriberId, std::string>> local;
  std::map<uint32_t, std::set<std::pair<std::string, std::string>>> held;  // by partition
  sessions_.ForEach([&](const Session& s) {
    for (const auto& [channel, sub] : s.subs) {
      const uint32_t part = cluster::PartitionOf(channel, map.partition_count());
      if (part < n && changed[part]) local.emplace_back(s.id, channel);
      if (part < n && synced[part]) held[part].emplace(channel, s.client);
    }
  });
  for (const auto& [id, channel] : local) {
    Session* s = FindSession(id);
    Channel* ch = table_.Find(channel);
    if (s == nullptr || ch == nullptr || !ch->options->presence) continue;
    auto sub = s->subs.find(channel);
    if (sub == s->subs.end()) continue;
    ++presence_->stats().reasserted;
    PushPresenceEvents(*ch, PresenceJoin(*s, *ch, sub->second.chan_info));
  }
  // Then, after those joins on the same pipe, what this node holds in each such partition: the
  // primary drops this node's other entries there (a leave lost with the old primary). A node
  // that became primary does it on its own table.
  for (size_t p = 0; p < n; ++p) {
    if (!synced[p]) continue;
    const uint64_t primary = map.partitions()[p].primary;
    if (primary == self) {
      DropUnheldPresence(self, static_cast<uint32_t>(p), held[static_cast<uint32_t>(p)]);
      continue;
    }
    const cluster::Member* m = map.FindMember(primary);
    if (m == nullptr || m->endpoints.api.empty()) continue;  // re-synced at the next change
    PresenceUpdate u;
    u.sync = true;
    u.sender = self;
    u.incarnation = cluster_->header.incarnation;
    u.partition = static_cast<uint32_t>(p);
    u.partition_epoch = map.partitions()[p].epoch;
    const auto& mine = held[static_cast<uint32_t>(p)];
    u.held.assign(mine.begin(), mine.end());
    presence_->Send(primary, m->endpoints.api, u);
  }
}

void Engine::OnRemotePresenceReset(const std::string& channel, std::vector<PresenceEntry> entries) {
  Channel* ch = table_.Find(channel);
  if (ch == nullptr || !ch->options->presence || RouteOf(channel).local) return;
  // An empty snapshot of a copy this node already synced: during a failover, the new
  // primary's subtree before it adopted the line (absent, or created empty under another
  // subtree epoch). Taking it would push a leave and then a join again for every entry; the
  // adoption brings a real snapshot, diffed as usual. A followed channel has this node's own
  // clients in the primary's presence, so a real snapshot of it is not empty (only while its
  // joins are in flight, and they arrive as changes). A copy never synced takes it.
  if (presence_synced_.count(channel) != 0 && entries.empty()) return;
  // The first snapshot of a newly followed channel: what other nodes' clients had joined
  // before is not news to this node's subscribers (Centrifugo pushes joins that happen after
  // a subscribe); this node's own clients' joins are (they were sent to the primary).
  const bool first = presence_synced_.insert(channel).second;
  const uint64_t self = cluster_->header.member_id;
  std::set<std::string, std::less<>> keep;
  for (const PresenceEntry& e : entries) keep.insert(e.client);
  std::vector<PresenceEvent> events;
  for (const PresenceEntry& e : AllEntries(ch->presence)) {
    if (keep.count(e.client) == 0) {
      for (PresenceEvent& ev : ch->presence.Remove(e.client)) events.push_back(std::move(ev));
    }
  }
  for (PresenceEntry& e : entries) {
    const bool news = !first || e.node == self;
    for (PresenceEvent& ev : ch->presence.Add(std::move(e))) {
      if (news) events.push_back(std::move(ev));
    }
  }
  PushPresenceEvents(*ch, events);
}

void Engine::OnRemotePresence(const std::string& channel, const std::string& client,
                              const PresenceEntry* entry) {
  Channel* ch = table_.Find(channel);
  if (ch == nullptr || !ch->options->presence || RouteOf(channel).local) return;
  PushPresenceEvents(*ch,
                     entry != nullptr ? ch->presence.Add(*entry) : ch->presence.Remove(client));
}

// A channel of a partition this node backs up is not followed for its subscribers: its
// presence comes from the backup copy, which holds what other nodes' clients joined before this
// node's first subscriber (the copy's later changes arrive through OnRemotePresence).
void Engine::SeedPresenceFromBackup(const std::string& channel) {
  if (presence_synced_.count(channel) != 0) return;
  const std::string subtree = ChannelSubtree(channel);
  const chp::SubtreeReplica* copy = backup_->Copy(subtree);
  if (copy == nullptr) return;  // not synced yet: its snapshot will bring the entries
  OnRemotePresenceReset(channel, DecodeChannelSnapshot(subtree, copy->entries()).presence);
}

bool Engine::PresenceHere(const std::string& channel) const {
  const Route route = RouteOf(channel);
  return route.local || route.unreachable || CopyLive(channel);
}

bool Engine::AskPresence(const std::string& channel, uint32_t mode, std::string cursor,
                         uint32_t limit, PresenceAnswered done) {
  const Route route = RouteOf(channel);
  if (route.local || route.unreachable) return false;
  PresenceQuery q;
  q.sender = cluster_->header.member_id;
  q.channel = channel;
  q.mode = static_cast<PresenceQueryMode>(mode);
  q.cursor = std::move(cursor);
  q.limit = limit;
  return presence_->Ask(
      route.member, route.endpoint, std::move(q),
      [done = std::move(done)](const PresenceAnswer* a) {
        done(a != nullptr && a->status == PresenceAnswerStatus::kOk ? a : nullptr);
      });
}

bool Engine::AskPresenceFor(Session& s, uint64_t cmd_id, const std::string& channel, bool stats,
                            const std::string& cursor, uint32_t limit) {
  if (channel.empty() || PresenceHere(channel)) return false;
  auto resolved = table_.Resolve(channel);
  if (!resolved) return false;
  const ChannelOptions& opts = *resolved->options;
  if ((!s.insecure || !opts.presence) && CanPresence(opts, s.user.empty()) != Errc::kOk) {
    return false;  // the normal path answers the error
  }
  const uint32_t page = static_cast<uint32_t>(
      std::clamp<size_t>(limit == 0 ? opts.presence_page_size : limit, 1, opts.presence_page_size));
  const auto mode =
      static_cast<uint32_t>(stats ? PresenceQueryMode::kStats : PresenceQueryMode::kPage);
  return AskPresence(
      channel, mode, cursor, page, [this, sid = s.id, cmd_id, stats](const PresenceAnswer* a) {
        Session* sp = FindSession(sid);
        if (sp == nullptr) return;
        const Encoder& enc = EncoderOf(*sp);
        if (a == nullptr) {
          const uint32_t code = ToCode(Errc::kUnavailable);
          SendTo(*sp, enc.Error(cmd_id, code, make_error_code(Errc::kUnavailable).message()));
        } else if (stats) {
          SendTo(*sp, enc.Reply(cmd_id, PresenceStats{a->num_clients, a->num_users}));
        } else {
          SendTo(*sp, enc.Reply(cmd_id, PresenceResult{a->entries, a->next_cursor}));
        }
      });
}

bool Engine::AskPresenceRpc(Session& s, uint64_t cmd_id, const RpcRequest& r) {
  const bool page = r.method == json::kRpcPresencePage;
  if (!page && r.method != json::kRpcPresenceUsers) return false;
  std::string channel, cursor;
  uint32_t limit = 0;
  if (page) {
    auto req = json::DecodePresencePageParams(r.data);
    if (!req) return false;  // the normal path answers the error
    channel = req->channel;
    cursor = req->cursor;
    limit = req->limit;
  } else {
    auto req = json::DecodePresenceUsersParams(r.data);
    if (!req) return false;
    channel = req->channel;
  }
  if (channel.empty() || PresenceHere(channel)) return false;
  auto resolved = table_.Resolve(channel);
  if (!resolved) return false;
  const ChannelOptions& opts = *resolved->options;
  if ((!s.insecure || !opts.presence) && CanPresence(opts, s.user.empty()) != Errc::kOk) {
    return false;
  }
  limit = static_cast<uint32_t>(
      std::clamp<size_t>(limit == 0 ? opts.presence_page_size : limit, 1, opts.presence_page_size));
  const auto mode = page ? PresenceQueryMode::kPage : PresenceQueryMode::kUsers;
  return AskPresence(
      channel, static_cast<uint32_t>(mode), cursor, limit,
      [this, sid = s.id, cmd_id, page](const PresenceAnswer* a) {
        Session* sp = FindSession(sid);
        if (sp == nullptr) return;
        const Encoder& enc = EncoderOf(*sp);
        if (a == nullptr) {
          const uint32_t code = ToCode(Errc::kUnavailable);
          SendTo(*sp, enc.Error(cmd_id, code, make_error_code(Errc::kUnavailable).message()));
        } else if (page) {
          SendTo(*sp, enc.PresencePageRpcReply(cmd_id, PresenceResult{a->entries, a->next_cursor}));
        } else {
          SendTo(*sp, enc.PresenceUsersRpcReply(cmd_id, a->users, a->users.size()));
        }
      });
}

}  // namespace chorus::broker::node
