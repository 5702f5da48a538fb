// The commit path of a partition's primary (docs/cluster.md §5 C-8..C-11, C-14, §16.2). A
// publication to a history channel whose partition has backups in the commit quorum (in_sync
// minus this node, plus the backups it reported caught up, C-11) waits, bounded, until every
// member of the quorum has acknowledged it at the current partition epoch; only then is it
// delivered to the local subscribers, answered to its publisher and announced to the copies
// (the `c` of the channel's `top` record). Without such backups (R=1, a node alone, a channel
// without history: C-12) the path is the one of a node alone: published, delivered, answered.
// Lagging backups (no ack within replica_lag_ms) and caught-up ones are reported to the
// controller through the cluster agent (C-10, C-11); a primary that cannot shrink in_sync (no
// majority, C-14) never commits without them: its publishers get 114 after the forward timeout.
#include <algorithm>

#include "backup.h"
#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "cluster/partition.h"
#include "cluster_view.h"
#include "commit.h"
#include "forwarder.h"

namespace chorus::broker::node {

std::chrono::milliseconds Engine::ReplicaLag() const {
  const ClusterSection& c = options_.config.cluster;
  return std::chrono::milliseconds(c.replica_lag_ms > 0 ? c.replica_lag_ms : c.dead_after_ms / 2);
}

bool Engine::WaitsForQuorum(const cluster::Partition& p) const {
  return p.in_sync.size() > 1 || commit_->growth.count(p.id) != 0;
}

std::vector<uint64_t> Engine::CommitQuorum(const cluster::Partition& p) const {
  const uint64_t self = cluster_->header.member_id;
  std::vector<uint64_t> q;
  for (uint64_t m : p.in_sync) {
    if (m != self) q.push_back(m);
  }
  if (auto g = commit_->growth.find(p.id);
      g != commit_->growth.end() && p.version <= g->second.version) {
    for (uint64_t m : g->second.members) {
      if (std::find(q.begin(), q.end(), m) == q.end() && m != self) q.push_back(m);
    }
  }
  return q;
}

void Engine::PublishLocal(PublishJob job, const PresenceEntry* publisher, PublishDone done,
                          const Route& route) {
  const cluster::Partition* part =
      route.member != 0 ? cluster_->map.FindPartition(route.partition) : nullptr;
  bool replicated = part != nullptr && !job.skip_history &&
                    (WaitsForQuorum(*part) || commit_->channels.count(job.channel) != 0);
  const bool leased = HoldsLease();
  if (replicated || (!leased && part != nullptr && !job.skip_history)) {
    auto resolved = table_.Resolve(job.channel);
    replicated = resolved && resolved->options->HistoryEnabled();  // C-12: no offsets to protect
    // C-25: without a lease even a publication with no backup to wait for waits (for the next
    // lease, or until the forward timeout answers 114).
    if (replicated && !leased) ++commit_->stats.lease_held;
  }
  if (!replicated) {
    auto out = PublishAndDeliver(job.channel, std::move(job.data), std::move(job.info),
                                 std::move(job.tags), publisher, job.skip_history);
    if (!out) return done(out.error());
    // C-12: kept in no history, so to the following nodes at once (engine_ephemeral.cc).
    if (part != nullptr && out->publication.offset == 0 && cluster_->map.members().size() > 1) {
      MirrorEphemeral(job.channel, out->publication);
    }
    return done(PublishResult{out->publication.offset, out->epoch});
  }
  const ClusterSection& c = options_.config.cluster;
  const size_t bytes = job.channel.size() + job.data.size() + (job.info ? job.info->size() : 0);
  if (commit_->count >= c.max_uncommitted || commit_->bytes + bytes > c.max_uncommitted_bytes) {
    ++commit_->stats.refused;
    return done(Errc::kUnavailable);  // C-10: the uncommitted bound
  }
  auto [it, created] = commit_->channels.try_emplace(job.channel);
  ChannelCommit& cc = it->second;
  if (created) {
    cc.partition = route.partition;
    if (const Channel* ch = table_.Find(job.channel); ch != nullptr && ch->history) {
      cc.committed = ch->history->top_offset();
      cc.epoch = ch->history->epoch();
    }
  }
  auto out = table_.Publish(job.channel, std::move(job.data), std::move(job.info),
                            std::move(job.tags), NowMs(), false);
  if (!out || out->publication.offset == 0) {
    if (cc.pending.empty()) commit_->channels.erase(it);
    if (!out) return done(out.error());
    return done(PublishResult{0, out->epoch});
  }
  if (out->epoch != cc.epoch) {  // a new line (the channel was created now): nothing committed
    cc.epoch = out->epoch;
    cc.committed = out->publication.offset - 1;
  }
  UncommittedPublication u;
  u.offset = out->publication.offset;
  u.at = chp::Clock::now();
  u.bytes = bytes;
  u.pub = std::move(out->publication);
  if (publisher != nullptr) u.publisher = *publisher;
  u.done = std::move(done);
  cc.pending.push_back(std::move(u));
  ++commit_->count;
  commit_->bytes += bytes;
  TryCommit(it->first);
}

// `channel` by value: the caller's string may be the key of the entry erased here.
void Engine::TryCommit(std::string channel) {
  auto it = commit_->channels.find(channel);
  if (it == commit_->channels.end()) return;
  ChannelCommit& cc = it->second;
  uint64_t upto = UINT64_MAX;
  if (const cluster::Partition* p = cluster_->map.FindPartition(cc.partition); p != nullptr) {
    // No longer the primary (C-15): nothing is committed here, and the channel's `top` is not
    // written again into the subtree LeaveLine dropped (it would start a new one there, which
    // the new primary, still following this node, could take as its copy and adopt without
    // any publication: its followers then lost the last offsets). OnCommitMap answers them.
    if (p->primary != cluster_->header.member_id) return;
    auto acked = commit_->acked.find(channel);
    for (uint64_t m : CommitQuorum(*p)) {
      uint64_t at = 0;
      if (acked != commit_->acked.end()) {
        auto a = acked->second.find(m);
        if (a != acked->second.end() && a->second.epoch == cc.epoch) at = a->second.offset;
      }
      upto = std::min(upto, at);
    }
  }
  if (!HoldsLease()) return;  // C-25: no commit without a lease; retried at the next one
  std::vector<UncommittedPublication> ready;
  while (!cc.pending.empty() && cc.pending.front().offset <= upto) {
    ready.push_back(std::move(cc.pending.front()));
    cc.pending.pop_front();
  }
  if (ready.empty()) return;
  const auto now = chp::Clock::now();
  const std::string epoch = cc.epoch;
  cc.committed = ready.back().offset;
  for (const UncommittedPublication& u : ready) {
    --commit_->count;
    commit_->bytes -= u.bytes;
    ++commit_->stats.committed;
    commit_->stats.wait_us_sum += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now - u.at).count());
  }
  if (cc.pending.empty()) commit_->channels.erase(it);  // `top` without `c`: all committed
  Channel* ch = table_.Find(channel);
  // The commit position for the copies (C-9): `top` again, with the new `c`.
  if (ch != nullptr && ch->history && ch->history->epoch() == epoch) {
    sink_->OnTop(channel, ch->history->Top());
  }
  for (UncommittedPublication& u : ready) {
    if (ch != nullptr && !ch->subscribers.empty()) {
      const PresenceEntry* who = u.publisher ? &*u.publisher : nullptr;
      Fanout(*ch, [&](const Encoder& e) { return e.PubPush(channel, u.pub, who); });
    }
    if (u.done) u.done(PublishResult{u.offset, epoch});
  }
}

void Engine::FillTopExtras(std::string_view channel, TopExtras& x) const {
  if (!cluster_->received || !cluster_->map.bootstrapped()) return;
  const cluster::Partition* p =
      cluster_->map.FindPartition(cluster::PartitionOf(channel, cluster_->map.partition_count()));
  if (p == nullptr || p->primary != cluster_->header.member_id) return;
  x.partition_epoch = p->epoch;
  if (commit_->channels.empty()) return;
  if (auto it = commit_->channels.find(channel); it != commit_->channels.end()) {
    x.has_committed = true;
    x.committed = it->second.committed;
  }
}

void Engine::OnPeerMessage(std::string_view body) {
  if (PeerMessageKind(body) != kAckKind) return;
  AckMessage m;
  if (!DecodeAck(body, m)) return;
  const auto now = chp::Clock::now();
  commit_->heard[m.sender] = now;
  const uint64_t self = cluster_->header.member_id;
  std::vector<std::string> touched;
  for (AckEntry& a : m.acks) {
    ++commit_->stats.acks_received;
    const cluster::Partition* p =
        cluster_->received ? cluster_->map.FindPartition(a.partition) : nullptr;
    // C-8: counted only at the current partition epoch, for a channel of that partition.
    if (p == nullptr || p->primary != self || a.partition_epoch != p->epoch ||
        cluster::PartitionOf(a.channel, cluster_->map.partition_count()) != a.partition) {
      ++commit_->stats.acks_ignored;
      continue;
    }
    CommitState::Acked& slot = commit_->acked[a.channel][m.sender];
    slot.epoch = std::move(a.epoch);
    slot.offset = a.offset;
    if (commit_->channels.count(a.channel) != 0) touched.push_back(a.channel);
  }
  for (const std::string& channel : touched) TryCommit(channel);
}

void Engine::OnCommitMap() {
  const uint64_t self = cluster_->header.member_id;
  // Acknowledgements of a member found dead belong to its old incarnation: it drops its copies
  // and re-syncs (C-24), so only what it acknowledges afterwards counts (C-11 included).
  for (auto& [channel, members] : commit_->acked) {
    std::erase_if(members, [&](const auto& kv) {
      const cluster::Member* m = cluster_->map.FindMember(kv.first);
      return m == nullptr || m->state == cluster::MemberState::kDead;
    });
  }
  std::erase_if(commit_->heard, [&](const auto& kv) {
    const cluster::Member* m = cluster_->map.FindMember(kv.first);
    return m == nullptr || m->state == cluster::MemberState::kDead;
  });
  for (auto g = commit_->growth.begin(); g != commit_->growth.end();) {
    const cluster::Partition* p = cluster_->map.FindPartition(g->first);
    g = (p == nullptr || p->version > g->second.version) ? commit_->growth.erase(g) : std::next(g);
  }
  std::vector<std::string> channels;
  for (const auto& [name, cc] : commit_->channels) channels.push_back(name);
  for (const std::string& name : channels) {
    auto it = commit_->channels.find(name);
    const cluster::Partition* p = cluster_->map.FindPartition(it->second.partition);
    if (p != nullptr && p->primary == self) {
      TryCommit(name);  // the quorum may have shrunk (C-10)
      continue;
    }
    // No longer the primary: nothing uncommitted is delivered or acknowledged from here.
    ChannelCommit cc = std::move(it->second);
    commit_->channels.erase(it);
    for (UncommittedPublication& u : cc.pending) {
      --commit_->count;
      commit_->bytes -= u.bytes;
      ++commit_->stats.dropped;
      if (u.done) u.done(Errc::kUnavailable);
    }
  }
}

void Engine::CommitTick() {
  const auto now = chp::Clock::now();
  // Publishers whose publication waits longer than the forward timeout get 114 (C-14); the
  // publication stays and is delivered if it commits later.
  for (auto& [name, cc] : commit_->channels) {
    for (UncommittedPublication& u : cc.pending) {
      if (now - u.at < options_.forward_timeout) break;
      if (!u.done) continue;
      ++commit_->stats.timeouts;
      auto done = std::move(u.done);
      u.done = nullptr;
      done(Errc::kUnavailable);
    }
  }
  if (!cluster_->received || !cluster_->map.bootstrapped()) return;
  const auto period = std::chrono::milliseconds(options_.config.cluster.heartbeat_ms);
  if (now >= commit_->next_ack_resend) {
    commit_->next_ack_resend = now + period;
    FlushAcks(/*heartbeat=*/true);
  }
  if (now < commit_->next_report) return;
  commit_->next_report = now + period;
  SendReplicaReports(now);
}

void Engine::SendReplicaReports(chp::Clock::time_point now) {
  const cluster::ClusterMap& map = cluster_->map;
  const uint64_t self = cluster_->header.member_id;
  const auto lag = ReplicaLag();
  std::map<uint32_t, cluster::ReplicaReport> reports;
  auto acked_at = [&](const std::string& channel, uint64_t m, const std::string& epoch) {
    auto a = commit_->acked.find(channel);
    if (a == commit_->acked.end()) return uint64_t{0};
    auto e = a->second.find(m);
    return e != a->second.end() && e->second.epoch == epoch ? e->second.offset : 0;
  };
  // C-10: a member of the quorum without an ack for the oldest publication waiting longer
  // than replica_lag_ms.
  for (const auto& [name, cc] : commit_->channels) {
    if (cc.pending.empty() || now - cc.pending.front().at < lag) continue;
    const cluster::Partition* p = map.FindPartition(cc.partition);
    if (p == nullptr || p->primary != self) continue;
    for (uint64_t m : CommitQuorum(*p)) {
      if (acked_at(name, m, cc.epoch) >= cc.pending.front().offset) continue;
      auto& lagging = reports[p->id].lagging;
      if (std::find(lagging.begin(), lagging.end(), m) == lagging.end()) lagging.push_back(m);
    }
  }
  // C-11: backups outside in_sync that acknowledged the top of every channel of the partition
  // and were heard within replica_lag_ms.
  std::map<uint32_t, std::set<uint64_t>> candidates;
  for (const cluster::Partition& p : map.partitions()) {
    if (p.primary != self) continue;
    for (uint64_t m : p.replicas) {
      if (m == self || p.IsInSync(m) || reports[p.id].lagging.size() != 0) continue;
      auto h = commit_->heard.find(m);
      if (h != commit_->heard.end() && now - h->second < lag) candidates[p.id].insert(m);
    }
  }
  if (!candidates.empty()) {
    table_.ForEach([&](const Channel& ch) {
      if (!ch.history || ch.history->top_offset() == 0) return;
      auto c = candidates.find(cluster::PartitionOf(ch.name, map.partition_count()));
      if (c == candidates.end()) return;
      for (auto m = c->second.begin(); m != c->second.end();) {
        const bool ok = acked_at(ch.name, *m, ch.history->epoch()) >= ch.history->top_offset();
        m = ok ? std::next(m) : c->second.erase(m);
      }
    });
  }
  for (const auto& [part, members] : candidates) {
    if (members.empty()) continue;
    const cluster::Partition* p = map.FindPartition(part);
    auto& r = reports[part];
    r.caught_up.assign(members.begin(), members.end());
    CommitState::Growth& g = commit_->growth[part];
    if (g.version != p->version) g = {p->version, {}};
    g.members.insert(members.begin(), members.end());
  }
  // C-19: a pending handoff whose target is in in_sync (so every commit from now on waits for
  // it) and no member of the quorum lagging (in_sync shrinks first): ready for CompleteHandoff.
  for (uint32_t part : HandoffsReady()) {
    auto r = reports.find(part);
    if (r == reports.end() || r->second.lagging.empty()) reports[part].handoff_ready = true;
  }
  for (auto& [part, r] : reports) {
    if (r.lagging.empty() && r.caught_up.empty() && !r.handoff_ready) continue;
    const cluster::Partition* p = map.FindPartition(part);
    r.partition = part;
    r.primary = self;
    r.epoch = p->epoch;
    r.version = p->version;
    const std::string body = EncodeReport(r);
    if (cluster_view_.send(zmq::buffer(body), zmq::send_flags::dontwait)) ++commit_->stats.reports;
  }
  // Acknowledgements of channels that are gone.
  for (auto a = commit_->acked.begin(); a != commit_->acked.end();) {
    a = table_.Find(a->first) == nullptr ? commit_->acked.erase(a) : std::next(a);
  }
  for (auto c = commit_->copy_committed.begin(); c != commit_->copy_committed.end();) {
    c = table_.Find(c->first) == nullptr ? commit_->copy_committed.erase(c) : std::next(c);
  }
}

std::string Engine::CommitMetricsText() const {
  const CommitStats& s = commit_->stats;
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + std::to_string(v) + "\n";
  };
  metric("chorus_cluster_commit_wait_total", "counter",
         "Publications committed after waiting for their backups' acks (C-8).", s.committed);
  metric("chorus_cluster_commit_wait_us_sum", "counter",
         "Their total time from publish to commit, in microseconds.", s.wait_us_sum);
  metric("chorus_cluster_commit_timeouts_total", "counter",
         "Publishers answered 114 while their publication waited for its commit (C-14).",
         s.timeouts);
  metric("chorus_cluster_commit_refused_total", "counter",
         "Publishes refused with 114: the uncommitted bound was reached (C-10).", s.refused);
  metric("chorus_cluster_commit_dropped_total", "counter",
         "Uncommitted publications dropped: this node stopped being their primary.", s.dropped);
  metric("chorus_cluster_uncommitted_bytes", "gauge",
         "Channel, data and info bytes of the publications waiting for their commit.",
         commit_->bytes);
  metric("chorus_cluster_acks_received_total", "counter",
         "Acknowledgement entries received from backups.", s.acks_received);
  metric("chorus_cluster_acks_ignored_total", "counter",
         "Of them, ignored: another partition epoch, or not this node's partition (C-8).",
         s.acks_ignored);
  metric("chorus_cluster_acks_sent_total", "counter",
         "Acknowledgement messages sent to primaries by this node as a backup.", s.acks_sent);
  metric("chorus_cluster_replica_reports_total", "counter",
         "Lagging / caught-up reports sent to the controller (C-10, C-11).", s.reports);
  metric("chorus_cluster_backup_applied_total", "counter",
         "Publications applied to this node's backup copies.", s.backup_applied);
  metric("chorus_cluster_backup_refused_total", "counter",
         "Records refused by this backup: a primary of an older partition epoch (C-13).",
         s.backup_refused);
  metric("chorus_cluster_backup_resyncs_total", "counter",
         "Backup copies re-synced by snapshot: they could not follow the primary's line.",
         backup_->resyncs());
  metric("chorus_cluster_backup_copies_dropped_total", "counter",
         "Times this node dropped every backup copy: it rejoined with a new incarnation (C-24).",
         s.copies_dropped);
  metric("chorus_cluster_backup_primaries", "gauge", "Primaries this node follows as a backup.",
         backup_->primaries());
  metric("chorus_cluster_backup_updates_received_total", "counter",
         "CHP updates received from the primaries this node backs up.",
         backup_->updates_received());
  metric("chorus_cluster_copy_uncommitted_tops_total", "counter",
         "Copied `top` records with publications above the commit (held back, C-9).",
         s.copy_held_back);
  return out;
}

}  // namespace chorus::broker::node
