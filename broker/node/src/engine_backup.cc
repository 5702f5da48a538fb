// Backups and copies (docs/cluster.md C-8, C-9, C-13, C-16, §16.2). A backup follows the
// subtrees of the partitions it backs up on their primaries (backup.h), keeps a full copy of
// each channel in its ChannelTable (history, top, epoch: the primary's), applies a publication
// only once the `top` record that follows it confirms it at a partition epoch not older than
// its own map's (C-13: else nothing is applied or acknowledged), and acknowledges what it
// applied to the primary (ack_codec.h). Every copy of a channel (a backup's, or an interested
// node's, C-16) delivers to its local subscribers only up to the commit position the primary
// writes in `top` (C-9).
#include <algorithm>

#include "backup.h"
#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "cluster/partition.h"
#include "cluster_view.h"
#include "commit.h"
#include "forwarder.h"
#include "interest.h"

namespace chorus::broker::node {
namespace {
constexpr size_t kMaxHeld = 4096;            // publications held per channel for their top
constexpr size_t kMaxUndelivered = 100'000;  // copied publications waiting for their commit
constexpr uint64_t kAckResendBeats = 10;     // every ack resent once in that many heartbeats
}  // namespace

bool Engine::BacksUp(uint32_t partition) const {
  if (!cluster_->received || !cluster_->map.bootstrapped()) return false;
  const cluster::Partition* p = cluster_->map.FindPartition(partition);
  const uint64_t self = cluster_->header.member_id;
  return p != nullptr && p->primary != 0 && p->primary != self && p->IsReplica(self);
}

bool Engine::CopyLive(const std::string& channel) const {
  if (interest_->Live(channel)) return true;
  const Route route = RouteOf(channel);
  return !route.local && BacksUp(route.partition) && backup_->Live(route.member);
}

void Engine::RefreshBackups() {
  std::map<uint64_t, BackupFollower::Target> targets;
  const cluster::ClusterMap& map = cluster_->map;
  const uint64_t self = cluster_->header.member_id;
  if (cluster_->received && map.bootstrapped()) {
    for (const cluster::Partition& p : map.partitions()) {
      if (p.primary == 0 || p.primary == self || !p.IsReplica(self)) continue;
      const cluster::Member* m = map.FindMember(p.primary);
      if (m == nullptr || m->endpoints.chp.empty()) continue;
      BackupFollower::Target& t = targets[p.primary];
      t.chp = m->endpoints.chp;
      t.partitions.insert(p.id);
    }
  }
  for (auto it = commit_->acks_out.begin(); it != commit_->acks_out.end();) {
    it = targets.count(it->first) != 0 ? std::next(it) : commit_->acks_out.erase(it);
  }
  for (auto it = commit_->acks_dirty.begin(); it != commit_->acks_dirty.end();) {
    it = targets.count(it->first) != 0 ? std::next(it) : commit_->acks_dirty.erase(it);
  }
  commit_->acks_resend_all = true;  // a new primary or partition epoch needs every position
  backup_->SetTargets(std::move(targets), map.bootstrapped() ? map.partition_count() : 0);
}

Engine::BackupCheck Engine::CheckBackup(uint64_t member, const std::string& channel,
                                        uint64_t partition_epoch, AckEntry& ack) {
  if (!cluster_->received || !cluster_->map.bootstrapped() || channel.empty()) {
    return BackupCheck::kNotMine;
  }
  const uint32_t part = cluster::PartitionOf(channel, cluster_->map.partition_count());
  const cluster::Partition* p = cluster_->map.FindPartition(part);
  const uint64_t self = cluster_->header.member_id;
  if (p == nullptr || p->primary != member || member == self || !p->IsReplica(self)) {
    return BackupCheck::kNotMine;
  }
  if (partition_epoch < p->epoch) {  // C-13: a primary of an older partition epoch
    ++commit_->stats.backup_refused;
    return BackupCheck::kRefused;
  }
  ack.partition = part;
  ack.partition_epoch = p->epoch;
  ack.channel = channel;
  return BackupCheck::kAccepted;
}

Channel* Engine::CopyChannel(const std::string& channel) {
  Channel* ch = table_.Find(channel);
  if (ch == nullptr) {
    auto opened = table_.Open(channel, NowMs());
    if (!opened) return nullptr;
    ch = *opened;
  }
  return ch->history ? ch : nullptr;  // this node's namespaces keep no history for it
}

void Engine::AckCopy(uint64_t member, AckEntry ack, const Channel& ch) {
  ack.epoch = ch.history->epoch();
  ack.offset = ch.history->top_offset();
  AckEntry& slot = commit_->acks_out[member][ack.channel];
  if (slot == ack) return;
  commit_->acks_dirty[member].insert(ack.channel);
  slot = std::move(ack);
}

void Engine::OnBackupReset(uint64_t member, const CopyTop& top, std::vector<Publication> pubs) {
  AckEntry ack;
  if (CheckBackup(member, top.channel, top.partition_epoch, ack) != BackupCheck::kAccepted) return;
  commit_->held.erase(top.channel);
  Channel* ch = CopyChannel(top.channel);
  if (ch == nullptr) return;
  commit_->stats.backup_applied += pubs.size();
  ApplyCopyReset(*ch, top, std::move(pubs));
  AckCopy(member, std::move(ack), *ch);
}

void Engine::OnBackupPublication(uint64_t member, const std::string& channel, Publication pub) {
  (void)member;  // checked when the channel's `top` confirms it
  std::vector<Publication>& held = commit_->held[channel];
  if (held.size() < kMaxHeld) held.push_back(std::move(pub));
}

void Engine::OnBackupTop(uint64_t member, const CopyTop& top) {
  std::vector<Publication> held;
  if (auto h = commit_->held.find(top.channel); h != commit_->held.end()) {
    held = std::move(h->second);
    commit_->held.erase(h);
  }
  AckEntry ack;
  if (CheckBackup(member, top.channel, top.partition_epoch, ack) != BackupCheck::kAccepted) return;
  if (backup_->ResyncPending(member)) return;  // the snapshot on its way replaces the copy
  Channel* ch = CopyChannel(top.channel);
  if (ch == nullptr) return;
  const bool same_line = ch->history->epoch() == top.top.epoch;
  if (same_line) {
    for (Publication& p : held) {
      if (p.offset > top.top.offset) break;
      if (p.offset <= ch->history->top_offset()) continue;   // applied already
      if (p.offset != ch->history->top_offset() + 1) break;  // a gap: below
      ++commit_->stats.backup_applied;
      ApplyCopyPublication(*ch, std::move(p));
    }
  }
  // A backup acknowledges only a position it holds contiguously on the primary's line (C-8). A
  // copy that cannot reach this `top` by what arrived (publications missed: a refused or
  // overflowed hold, a line whose start it never saw) or that is ahead of it (another
  // primary's publications) is never moved by a jump: it is re-synced by snapshot, and
  // acknowledges nothing meanwhile.
  if (same_line ? ch->history->top_offset() != top.top.offset : top.top.offset != 0) {
    Log().warn("backup: copy of {} at {}:{} cannot follow {}'s top {}:{}; re-syncing", top.channel,
               ch->history->epoch(), ch->history->top_offset(), member, top.top.epoch,
               top.top.offset);
    backup_->RequestResync(member);
    return;
  }
  ApplyCopyTop(*ch, top);
  AckCopy(member, std::move(ack), *ch);
}

void Engine::MaintainBackups() {
  const uint64_t incarnation = cluster_->received ? cluster_->header.incarnation : 0;
  if (incarnation != 0 && commit_->incarnation != 0 && incarnation != commit_->incarnation) {
    DropBackupCopies();
  }
  if (incarnation != 0) commit_->incarnation = incarnation;
  backup_->ApplyResyncs();
}

void Engine::DropBackupCopies() {
  // C-24: this node was found dead and rejoins under a new incarnation. Whatever its copies
  // acknowledged belongs to the old incarnation: every backup copy is dropped (agents, CHP
  // copies, held and acknowledged positions) and followed again from a fresh snapshot, which
  // replaces each channel's history here (ApplyCopyReset). A copied channel that no local
  // subscriber reads is emptied now (a new epoch), so no stale line is kept.
  Log().warn("backup: new incarnation {}: dropping every backup copy and re-syncing",
             cluster_->header.incarnation);
  backup_->DropAll();
  commit_->acks_out.clear();
  commit_->acks_dirty.clear();
  commit_->held.clear();
  ++commit_->stats.copies_dropped;
  for (const std::string& channel : remote_lines_) {
    Channel* ch = table_.Find(channel);
    if (ch == nullptr || !ch->history || !ch->subscribers.empty() ||
        parked_channels_.count(channel) != 0) {
      continue;
    }
    commit_->undelivered.erase(channel);
    (void)ch->history->Restore(StreamPosition{0, RandomEpoch(rng_)}, {});
  }
  RefreshBackups();
}

void Engine::FlushAcks(bool heartbeat) {
  if (commit_->acks_dirty.empty() && !heartbeat) return;
  const uint64_t self = cluster_->header.member_id;
  // Every kAckResendBeats-th heartbeat, and the first after a map change, carries every
  // channel's latest ack (a message lost to a full pipe or a new primary's epoch); the others
  // carry only the changes not sent yet, so a heartbeat costs O(changes), not O(channels).
  bool all = false;
  if (heartbeat) {
    all = commit_->acks_resend_all || ++commit_->ack_beats % kAckResendBeats == 0;
    commit_->acks_resend_all = false;
  }
  // True when sent, or when there is nobody to send it to (forgotten).
  auto send = [&](uint64_t member) {
    const cluster::Member* m = cluster_->map.FindMember(member);
    if (m == nullptr || m->endpoints.api.empty()) return true;
    AckMessage msg;
    msg.sender = self;
    auto out = commit_->acks_out.find(member);
    auto dirty = commit_->acks_dirty.find(member);
    if (out != commit_->acks_out.end() && all) {
      for (const auto& [channel, a] : out->second) msg.acks.push_back(a);
    } else if (out != commit_->acks_out.end() && dirty != commit_->acks_dirty.end()) {
      for (const std::string& channel : dirty->second) {
        if (auto a = out->second.find(channel); a != out->second.end())
          msg.acks.push_back(a->second);
      }
    }
    if (!forwarder_->SendMessage(member, m->endpoints.api, EncodeAck(msg))) return false;
    ++commit_->stats.acks_sent;
    return true;
  };
  if (heartbeat) {
    // Also an empty message to each primary followed live: it sees this backup alive and
    // caught up (C-11).
    for (const auto& [member, target] : cluster_->map.members()) {
      (void)target;
      if (backup_->Follows(member) && backup_->Live(member) && send(member)) {
        commit_->acks_dirty.erase(member);
      }
    }
  }
  for (auto it = commit_->acks_dirty.begin(); it != commit_->acks_dirty.end();) {
    it = send(it->first) ? commit_->acks_dirty.erase(it) : std::next(it);
  }
}

// ---- Copies: applied as the primary's line, delivered up to the commit position (C-9).

void Engine::ApplyCopyReset(Channel& ch, const CopyTop& t, std::vector<Publication> pubs) {
  const StreamPosition before = ch.history->Top();
  std::deque<Publication>* queue = nullptr;
  if (before.epoch == t.top.epoch) {
    // What was not delivered here yet was not committed when it came: the snapshot's version
    // of those offsets replaces it. After a failover the old primary's uncommitted suffix (a
    // primary cut off by a split appends publications it never commits) is not the new
    // primary's line, though the epoch and offsets are the same (§16.8).
    uint64_t from = before.offset + 1;
    if (auto old = commit_->undelivered.find(ch.name); old != commit_->undelivered.end()) {
      if (!old->second.empty()) from = std::min(from, old->second.front().offset);
      commit_->undelivered.erase(old);
    }
    for (const Publication& p : pubs) {
      if (p.offset < from) continue;
      if (queue == nullptr) queue = &commit_->undelivered[ch.name];
      queue->push_back(p);
    }
  } else {
    commit_->undelivered.erase(ch.name);
  }
  // Subscribers of an earlier copied line would see offsets go back: they reconnect instead.
  // So would those of the same line that got further here than the primary now is (the old
  // primary's last publications, lost in a failover, or never committed: C-15).
  if (remote_lines_.count(ch.name) != 0 &&
      (before.epoch != t.top.epoch || before.offset > t.top.offset)) {
    for (SubscriberId id : ch.subscribers) CloseLater(id, kDisconnectInsufficientState);
  }
  MarkRemoteLine(ch.name);
  if (!ch.history->Restore(t.top, std::move(pubs))) {
    (void)ch.history->Restore(t.top, {});  // not contiguous: keep the position only
  }
  DeliverCopy(ch, t.committed);
}

void Engine::ApplyCopyTop(Channel& ch, const CopyTop& t) {
  // A new line on the primary (the channel was dropped and created again there).
  if (ch.history->epoch() != t.top.epoch) {
    commit_->undelivered.erase(ch.name);
    if (remote_lines_.count(ch.name) != 0) {
      for (SubscriberId id : ch.subscribers) CloseLater(id, kDisconnectInsufficientState);
    }
    (void)ch.history->Restore(t.top, {});
  }
  MarkRemoteLine(ch.name);
  if (t.committed < t.top.offset) ++commit_->stats.copy_held_back;
  DeliverCopy(ch, t.committed);
}

void Engine::ApplyCopyPublication(Channel& ch, Publication pub) {
  auto applied = ch.history->ApplyReplicated(pub);
  if (!applied) {
    if (applied.error() != make_error_code(Errc::kReplicaGap)) return;  // stale: delivered
    ++remote_gaps_;
    Log().warn("copy: {} jumped from offset {} to {}", ch.name, ch.history->Top().offset,
               pub.offset);
    (void)ch.history->Restore(StreamPosition{pub.offset, ch.history->epoch()}, {pub});
  }
  // Above the commit until a `top` says otherwise: reads stop before it (C-9).
  commit_->copy_committed.try_emplace(ch.name,
                                      CommitState::Acked{ch.history->epoch(), pub.offset - 1});
  std::deque<Publication>& queue = commit_->undelivered[ch.name];
  if (queue.size() >= kMaxUndelivered) {
    queue.pop_front();  // never delivered: the subscribers see a gap (counted)
    ++remote_gaps_;
  }
  queue.push_back(std::move(pub));
}

void Engine::DeliverCopy(Channel& ch, uint64_t committed) {
  if (committed < ch.history->top_offset()) {
    commit_->copy_committed[ch.name] = CommitState::Acked{ch.history->epoch(), committed};
  } else {
    commit_->copy_committed.erase(ch.name);
  }
  auto it = commit_->undelivered.find(ch.name);
  if (it == commit_->undelivered.end()) return;
  std::deque<Publication>& queue = it->second;
  while (!queue.empty() && queue.front().offset <= committed) {
    const Publication& p = queue.front();
    ++remote_delivered_;
    Fanout(ch, [&](const Encoder& e) { return e.PubPush(ch.name, p, nullptr); });
    queue.pop_front();
  }
  if (queue.empty()) commit_->undelivered.erase(it);
}

// What reads (history, a subscribe's position and recovery) may show of a channel: up to its
// commit position, on the primary (its uncommitted queue) and on copies (the `c` of the last
// `top`). Nobody reads a publication a failover can take back (C-9).
uint64_t Engine::ReadLimit(const Channel& ch) const {
  if (!ch.history) return ChannelHistory::kAll;
  if (auto it = commit_->channels.find(ch.name);
      it != commit_->channels.end() && it->second.epoch == ch.history->epoch()) {
    return it->second.committed;
  }
  if (auto it = commit_->copy_committed.find(ch.name);
      it != commit_->copy_committed.end() && it->second.epoch == ch.history->epoch()) {
    return it->second.offset;
  }
  return ChannelHistory::kAll;
}

}  // namespace chorus::broker::node
