// Failover, node side (docs/cluster.md §6 step 2, C-15; §16 "Failover (as built)"). Each applied
// map is compared with the last one acted on (partition_roles.h):
// - Promoted (this node is primary now, the lineage kept: PromoteBackup, CompleteHandoff): every
//   channel of the partition whose copy this node holds (followed from the old primary by
//   interest, C-16) continues its line here. The copy becomes this node's own CHP subtree with
//   chp::Server::Adopt (CS-29: the old primary's subtree epoch and seq, a new term), and the
//   channel's history, restored from the same copy, keeps its channel epoch and top offset, so
//   the next publication gets top + 1. Replicas of the old line (other nodes following the
//   channel) find it on this node with the same channel epoch and lose nothing. Channels with no
//   copy here start when first published, as before.
// - Fresh (new lineage): copied lines are not continued (engine_interest.cc, LoseRemoteLine).
// - Lost (C-15): this node stops being the partition's primary at the map that says so (routing
//   reads the map: publishes are forwarded from then on, forwarded requests answered
//   kNotPrimary); what it held as primary is dropped from its CHP server, and the channel is
//   from then on a copy of the new primary's line (followed while it has local subscribers).
// Runs where the map is read (ReadClusterView), before any request of the same poll is served.
#include "backup.h"
#include "broker/channels/chp_state_sink.h"
#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "cluster/partition.h"
#include "cluster_view.h"
#include "commit.h"
#include "interest.h"
#include "partition_roles.h"

namespace chorus::broker::node {
namespace {

// The key within its subtree ("top", "h/3").
std::string_view KeyIn(std::string_view subtree, std::string_view key) {
  if (key.size() > subtree.size() && key.substr(0, subtree.size()) == subtree &&
      key[subtree.size()] == '/') {
    return key.substr(subtree.size() + 1);
  }
  return key;
}

}  // namespace

void Engine::ApplyPartitionRoles() {
  if (!cluster_->received) return;
  const std::vector<RoleChange> changes = roles_->Update(cluster_->map, cluster_->header.member_id);
  if (changes.empty()) return;
  std::map<uint32_t, const RoleChange*> by_partition;
  for (const RoleChange& c : changes) {
    if (c.kind != RoleChange::Kind::kFresh) by_partition[c.partition] = &c;
  }
  if (by_partition.empty()) return;
  std::vector<std::pair<std::string, const RoleChange*>> affected;
  const uint32_t count = cluster_->map.partition_count();
  table_.ForEach([&](const Channel& ch) {
    if (!ch.history) return;  // nothing of it is in CHP (C-12)
    auto it = by_partition.find(cluster::PartitionOf(ch.name, count));
    if (it != by_partition.end()) affected.emplace_back(ch.name, it->second);
  });
  for (const auto& [channel, change] : affected) {
    if (change->kind == RoleChange::Kind::kPromoted) {
      ContinueCopiedLine(channel, change->epoch);
    } else {
      LeaveLine(channel);
    }
    UpdateInterest(channel);  // followed or unfollowed before the next poll
  }
  // The sync scheduler's users of each promoted partition (engine_sync.cc), once their
  // `sync:<user>` lines continue here.
  for (const auto& [partition, change] : by_partition) {
    if (change->kind == RoleChange::Kind::kPromoted) AdoptSyncUsers(partition, change->epoch);
  }
}

void Engine::MarkRemoteLine(const std::string& channel) {
  remote_lines_.insert(channel);
  // The local mirror's `top` (written when the channel was opened here) names another line:
  // removed, so this node's CHP server never shows the channel under an epoch it does not own.
  const std::string subtree = ChannelSubtree(channel);
  const chp::Subtree* st = chp_->store().Find(subtree);
  if (st != nullptr && st->entries.count("top") != 0) (void)chp_->Erase(subtree + "/top");
}

void Engine::ContinueCopiedLine(const std::string& channel, uint64_t partition_epoch) {
  Channel* ch = table_.Find(channel);
  if (ch == nullptr || !ch->history || remote_lines_.count(channel) == 0) return;
  const std::string subtree = ChannelSubtree(channel);
  // The copy this node kept as a backup (C-16), else the one it followed for its subscribers.
  const chp::SubtreeReplica* copy = backup_->Copy(subtree);
  if (copy == nullptr) copy = interest_->Copy(channel);
  bool kept = false;
  if (copy != nullptr && !copy->position().epoch.empty()) {
    // Only the history travels: the old primary's presence is its own (§10), this node's
    // local presence is written again below.
    // The UUID window of applied client updates travels too (CS-31, CR-35).
    chp::SubtreeCopy taken = copy->Copy(chp::MonotonicMs());
    std::erase_if(taken.entries, [&](const chp::Record& r) {
      const std::string_view k = KeyIn(subtree, r.key);
      return k != "top" && !k.starts_with("h/");
    });
    (void)chp_->Drop(subtree);  // this node's own mirror of the channel, if any
    const uint64_t term = std::max(partition_epoch, copy->term() + 1);
    auto adopted = chp_->Adopt(subtree, taken, term);
    if (adopted) {
      kept = true;
      Log().info("failover: {} continues line {} at offset {} (CHP {}:{}, term {})", channel,
                 ch->history->epoch(), ch->history->top_offset(), copy->position().epoch,
                 copy->position().seq, term);
    } else {
      Log().warn("failover: {} cannot adopt its copy: {}", channel, adopted.error().message());
    }
  }
  if (copy == nullptr) {
    Log().warn("failover: {} has no synced copy here to continue (member {})", channel,
               cluster_->header.member_id);
  }
  remote_lines_.erase(channel);
  if (!kept) {
    ++lines_lost_;
    LoseRemoteLine(channel);
    return;
  }
  ++lines_continued_;
  // The adopted `top` was written by the old primary under the old partition epoch: written
  // again under this node's, or every backup of this node would refuse the channel (C-13) and
  // never acknowledge it, so none could join in_sync until the channel is published again.
  sink_->OnTop(channel, ch->history->Top());
  // Copied publications still waiting for the old primary's commit position are this line's
  // history now: delivered to the local subscribers at once (docs/cluster.md §16.3).
  DeliverCopy(*ch, ch->history->top_offset());
  // This node's own subscribers' presence, mirrored again into the adopted subtree.
  std::string cursor;
  do {
    PresencePage page = ch->presence.Page(cursor, 1000);
    for (const PresenceEntry& e : page.entries) sink_->OnPresence(channel, e, true);
    cursor = page.next_cursor;
  } while (!cursor.empty());
}

void Engine::LeaveLine(const std::string& channel) {
  Channel* ch = table_.Find(channel);
  if (ch == nullptr || !ch->history || remote_lines_.count(channel) != 0) return;
  ++lines_left_;
  // C-15: the new primary's line is the channel's line now; what this node held as primary
  // (possibly publications the new primary never got) is dropped, replicas of it here learn
  // the subtree is gone (CS-28).
  Log().info("failover: {} is no longer primary here (epoch {}, offset {})", channel,
             ch->history->epoch(), ch->history->top_offset());
  (void)chp_->Drop(ChannelSubtree(channel));
  remote_lines_.insert(channel);
  // Publications still waiting for their commit here were never delivered nor acknowledged:
  // the history goes back to the last committed offset, so the new primary's line (which may
  // hold other publications at those offsets) is followed from there (C-15).
  if (auto cc = commit_->channels.find(channel);
      cc != commit_->channels.end() && !cc->second.pending.empty()) {
    const uint64_t committed = cc->second.pending.front().offset - 1;
    const StreamPosition top{committed, ch->history->epoch()};
    std::vector<Publication> kept;
    HistoryQuery all;
    all.limit = -1;
    if (auto got = ch->history->Get(all, NowMs())) {
      for (Publication& p : got->publications) {
        if (p.offset <= committed) kept.push_back(std::move(p));
      }
    }
    if (!ch->history->Restore(top, std::move(kept))) (void)ch->history->Restore(top, {});
  }
  // Without local subscribers nothing follows the new line: the position kept here would be a
  // stale copy, so a new (empty) epoch replaces it; a later subscribe follows the primary.
  if (ch->subscribers.empty() && parked_channels_.count(channel) == 0) {
    (void)ch->history->Restore(StreamPosition{0, RandomEpoch(rng_)}, {});
  }
}

}  // namespace chorus::broker::node
