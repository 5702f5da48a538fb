// Publications kept in no history across nodes (docs/cluster.md §5 C-12, §16.8): a channel
// without history, or a publish with skip_history, has no offsets to protect. The primary
// writes each such publication as the `x` record of the channel's CHP subtree (chp_state_sink.h,
// a short CHP TTL) without waiting for any backup; the nodes that follow the subtree get it as
// a CHP update, in the subtree's order, and deliver it to their local subscribers: interest
// followers (C-16, which follow any channel with local subscribers) and the partition's backups
// (which follow everything on their primary). The CHP publisher filters by subtree prefix, so a
// node that does not follow the channel receives nothing for it. At most once: a follower that
// re-syncs (snapshot) skips what it missed, as a node alone drops for a slow client.
#include "broker/channels/chp_state_sink.h"
#include "broker/node/engine.h"
#include "cluster/partition.h"
#include "cluster_view.h"
#include "interest.h"

namespace chorus::broker::node {

void Engine::MirrorEphemeral(std::string_view channel, const Publication& pub) {
  sink_->OnEphemeral(channel, pub);
  ++ephemeral_mirrored_;
}

void Engine::DeliverEphemeral(const std::string& channel, const Publication& pub) {
  Channel* ch = table_.Find(channel);
  if (ch == nullptr || ch->subscribers.empty()) return;
  ++remote_delivered_;
  Fanout(*ch, [&](const Encoder& e) { return e.PubPush(channel, pub, nullptr); });
}

void Engine::OnRemoteEphemeral(const std::string& channel, Publication pub) {
  if (RouteOf(channel).local) return;  // this node's own publications were delivered here
  DeliverEphemeral(channel, pub);
}

void Engine::OnBackupEphemeral(uint64_t member, const std::string& channel, Publication pub) {
  if (!cluster_->received || !cluster_->map.bootstrapped()) return;
  const cluster::Partition* p =
      cluster_->map.FindPartition(cluster::PartitionOf(channel, cluster_->map.partition_count()));
  const uint64_t self = cluster_->header.member_id;
  // From the map's primary of a partition this node backs up (an interest follower of the
  // same channel does not exist then: the backup copy serves, engine_interest.cc).
  if (p == nullptr || p->primary != member || member == self || !p->IsReplica(self)) return;
  DeliverEphemeral(channel, pub);
}

}  // namespace chorus::broker::node
