// Interest routing and delivery (docs/cluster.md §8, C-16, C-17): a channel with local subscribers
// whose partition primary is another member is followed on that member's CHP server
// (interest.h); what arrives is applied to the local copy of the channel's history (the
// primary's epoch and offsets, kept with ChannelHistory's replica operations) and each new
// publication is delivered to the local subscribers once, in offset order.
#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "channel_records.h"
#include "cluster_view.h"
#include "forwarder.h"
#include "interest.h"
#include "open_codec.h"

namespace chorus::broker::node {

void Engine::RefreshInterests() {
  table_.ForEach([&](const Channel& ch) {
    if (!ch.subscribers.empty()) interest_dirty_.insert(ch.name);
  });
  for (const auto& [channel, member] : interest_->followed()) interest_dirty_.insert(channel);
  // Backup copies too: a copied line this node became primary of is left (LoseRemoteLine).
  for (const std::string& channel : remote_lines_) interest_dirty_.insert(channel);
}

void Engine::ApplyInterests() {
  MaintainBackups();  // C-24, re-syncs (engine_backup.cc): agents replaced outside any poll
  // A map that changed (commands applied, not barriers) may have moved primaries.
  if (cluster_->received && cluster_->map.applied() != view_entries_) {
    view_entries_ = cluster_->map.applied();
    RefreshInterests();
    RefreshBackups();  // C-16: the primaries this node backs up (engine_backup.cc)
    OnCommitMap();     // C-10: a shrunk quorum commits; a moved primary drops (engine_commit.cc)
  }
  while (!interest_dirty_.empty()) {
    const std::string channel = std::move(interest_dirty_.extract(interest_dirty_.begin()).value());
    const Channel* ch = table_.Find(channel);
    // Every channel with local subscribers: its history and presence are in CHP
    // (chp_state_sink.h, C-21), and so are publications kept in no history (`x`, C-12).
    const bool wanted =
        ch != nullptr && (!ch->subscribers.empty() || parked_channels_.count(channel) != 0);
    const Route route = RouteOf(channel);
    if (!route.local && !route.unreachable && BacksUp(route.partition)) {
      interest_->Unfollow(channel);  // this node's backup copy serves its subscribers
      if (wanted && ch->options->presence) SeedPresenceFromBackup(channel);
      continue;
    }
    if (!wanted || route.local || route.unreachable) {
      interest_->Unfollow(channel);
      presence_synced_.erase(channel);
      // A copy of another primary's presence that nothing updates any more is forgotten.
      if (Channel* c = table_.Find(channel); c != nullptr && !route.local) c->presence = {};
      const bool had_line = remote_lines_.erase(channel) != 0;
      // This node became the primary of a line it only copied (a failover placed the partition
      // here afresh): the copy may lack what the old primary published last, so continuing its
      // epoch could give two histories one epoch. A new line instead; subscribers reconnect and
      // recover (recovered: false).
      if (had_line && route.local && ch != nullptr) LoseRemoteLine(channel);
      continue;
    }
    const cluster::Member* m = cluster_->map.FindMember(route.member);
    if (m == nullptr || m->endpoints.chp.empty()) {
      interest_->Unfollow(channel);
      continue;
    }
    interest_->Follow(channel, route.member, m->endpoints.chp);
  }
}

void Engine::LoseRemoteLine(const std::string& channel) {
  Channel* ch = table_.Find(channel);
  if (ch == nullptr || !ch->history) return;
  Log().info("interest: {} leaves the line copied from its old primary (epoch {})", channel,
             ch->history->epoch());
  (void)ch->history->Restore(StreamPosition{0, RandomEpoch(rng_)}, {});
  for (SubscriberId id : ch->subscribers) CloseLater(id, kDisconnectInsufficientState);
}

// What an interest follower copies goes through the copy path of engine_backup.cc: applied as
// the primary's line, delivered up to the commit position (C-9).
void Engine::OnRemoteReset(const std::string& channel, const CopyTop& top,
                           std::vector<Publication> pubs) {
  Channel* ch = table_.Find(channel);
  if (ch == nullptr || !ch->history || RouteOf(channel).local) return;
  ApplyCopyReset(*ch, top, std::move(pubs));
}

void Engine::OnRemoteTop(const std::string& channel, const CopyTop& top) {
  Channel* ch = table_.Find(channel);
  if (ch == nullptr || !ch->history || RouteOf(channel).local) return;
  ApplyCopyTop(*ch, top);
}

void Engine::OnRemotePublication(const std::string& channel, Publication pub) {
  Channel* ch = table_.Find(channel);
  if (ch == nullptr || !ch->history || RouteOf(channel).local) return;
  ApplyCopyPublication(*ch, std::move(pub));
}

// ---- C-17: recovery anywhere. A client subscribe to a channel followed from another primary
// waits (bounded) until this node's copy is live, then runs as any subscribe against the copy:
// the recovered publications come from the copy's history and the live ones are applied to the
// same copy on this thread afterwards, so the switch has no gap and no duplicate.

namespace {
constexpr size_t kMaxParked = 10'000;                    // subscribes waiting for a copy
constexpr std::chrono::milliseconds kParkTimeout{3000};  // then 114 "unavailable, retry"
}  // namespace

// A copy that is live but does not hold the line a recovering client names may be one
// taken from a new primary before it adopted the channel's line (a failover: this node follows
// the new primary as soon as its map says so, possibly before the new primary's own map does):
// the subscribe waits for the line (bounded by the park's deadline, then answered from what is
// here: recovered false when the line really changed), instead of answering recovered:false
// with a fresh epoch (issue 12 test 8, found with the SDK through a proxy).
bool Engine::CopyReady(const SubscribeRequest& r) {
  if (!CopyLive(r.channel) || remote_lines_.count(r.channel) == 0) return false;
  if (!r.recover || r.epoch.empty()) return true;
  const Channel* ch = table_.Find(r.channel);
  return ch != nullptr && ch->history && ch->history->epoch() == r.epoch;
}

bool Engine::ParkSubscribe(Session& s, const ClientCommand& cmd, const SubscribeRequest& r) {
  if (s.subs.count(r.channel) != 0) return false;  // 105 from the normal path
  auto resolved = table_.Resolve(r.channel);
  if (!resolved || !resolved->options->HistoryEnabled()) return false;
  const Route route = RouteOf(r.channel);
  // Answered at once when the copy is live, holds the primary's line (its `top` arrived) and,
  // for a recovery, the line the client names.
  if (route.local || route.unreachable || CopyReady(r)) return false;
  if (parked_.size() >= kMaxParked) return false;  // answered from what is here (C-17 gap)
  // The local copy must exist to receive the snapshot.
  if (!table_.Open(r.channel, NowMs())) return false;
  parked_.push_back({s.id, cmd, chp::Clock::now() + kParkTimeout});
  ++parked_channels_[r.channel];
  UpdateInterest(r.channel);
  // A channel not created yet on its primary has no `top` to copy: the primary opens it
  // (open_codec.h), so the answer carries the primary's epoch, not one of this node's own.
  if (!route.endpoint.empty()) {
    (void)forwarder_->SendOther(route.member, route.endpoint, EncodeOpenChannel(r.channel));
  }
  return true;
}

void Engine::RunParked() {
  if (parked_.empty()) return;
  const auto now = chp::Clock::now();
  std::vector<ParkedSubscribe> ready;
  auto holds_line = [&](const std::string& channel) {
    return CopyLive(channel) && remote_lines_.count(channel) != 0;
  };
  for (auto it = parked_.begin(); it != parked_.end();) {
    const SubscribeRequest& r = std::get<SubscribeRequest>(it->cmd.request);
    const std::string& channel = r.channel;
    if (now < it->deadline && !CopyReady(r) && !RouteOf(channel).local) {
      ++it;
      continue;
    }
    if (auto pc = parked_channels_.find(channel); pc != parked_channels_.end()) {
      if (--pc->second == 0) parked_channels_.erase(pc);
    }
    UpdateInterest(channel);
    ready.push_back(std::move(*it));
    it = parked_.erase(it);
  }
  for (ParkedSubscribe& p : ready) {
    Session* s = FindSession(p.session);
    if (s == nullptr) continue;
    const std::string& channel = std::get<SubscribeRequest>(p.cmd.request).channel;
    if (!holds_line(channel) && !RouteOf(channel).local) {
      // The copy did not become live in time: a temporary error, never a partial answer.
      const uint32_t code = ToCode(Errc::kUnavailable);
      SendTo(*s,
             EncoderOf(*s).Error(p.cmd.id, code, make_error_code(Errc::kUnavailable).message()));
      continue;
    }
    HandleCommand(*s, p.cmd);  // the normal path, now against the live copy
  }
  RunPendingCloses();
}

}  // namespace chorus::broker::node
