// InterestFollower: interest routing (docs/cluster.md §8, C-16). A node with local subscribers
// of a channel whose partition primary is another node follows that channel's CHP subtree on
// the primary's CHP server (one chp::ReplicaAgent per peer, one followed subtree per channel;
// the primary's XPUB filters, so nothing else crosses the network) and stops when the engine
// unfollows it. What the replica applies is decoded from the channel layout of
// chp_state_sink.h (`top`, `h/<slot>`, `p/<client>`) and handed to the engine's callbacks: a
// snapshot (the channel's retained publications and top), a new top, a new publication. Owned by
// the engine thread: the agents are Pollables of the engine's loop; callbacks run there.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "broker/core/history.h"
#include "broker/core/presence.h"
#include "channel_records.h"
#include "chp/agent.h"

namespace chorus::broker::node {

struct InterestCallbacks {
  // A snapshot of the channel on its primary: its top (with the commit position) and its
  // retained publications (a contiguous run ending at top.top.offset, possibly empty).
  std::function<void(const std::string& channel, const CopyTop& top, std::vector<Publication> pubs)>
      on_reset;
  std::function<void(const std::string& channel, const CopyTop& top)> on_top;
  std::function<void(const std::string& channel, Publication pub)> on_publication;
  // A publication kept in no history (`x`, C-12): live changes only, never from a snapshot.
  std::function<void(const std::string& channel, Publication pub)> on_ephemeral;
  // Presence (`p/<client>`, docs/cluster.md C-21): the entries of a snapshot (whether or not
  // the channel keeps history), then each change (`entry` nullptr: the client left).
  std::function<void(const std::string& channel, std::vector<PresenceEntry> entries)>
      on_presence_reset;
  std::function<void(const std::string& channel, const std::string& client,
                     const PresenceEntry* entry)>
      on_presence;
};

class InterestFollower {
 public:
  InterestFollower(zmq::context_t& ctx, InterestCallbacks callbacks,
                   std::chrono::milliseconds heartbeat);
  ~InterestFollower();

  // Follows `channel` on `member`'s CHP server (command endpoint `chp`); a channel followed on
  // another member is unfollowed there first (the primary moved).
  void Follow(const std::string& channel, uint64_t member, const std::string& chp);
  void Unfollow(const std::string& channel);
  // The member a channel is followed on, 0 when not followed.
  uint64_t FollowedOn(const std::string& channel) const;
  const std::map<std::string, uint64_t>& followed() const { return followed_; }
  size_t live() const;  // followed subtrees whose replica is live
  // `channel` is followed and its copy is live (snapshot applied, updates flowing).
  bool Live(const std::string& channel) const;
  // The CHP copy of `channel` (its replica on the member it is followed on), nullptr when not
  // followed. A promoted node adopts it into its own CHP server (Server::Adopt, CS-29).
  const chp::SubtreeReplica* Copy(const std::string& channel) const;

  // The agents, to poll on the engine thread.
  void AppendParts(std::vector<chp::Pollable*>& parts);
  // CHP updates (KVPUB) received from every peer since start.
  uint64_t updates_received() const;

 private:
  class Observer;
  struct Peer {
    std::string endpoint;
    std::unique_ptr<Observer> observer;
    std::unique_ptr<chp::ReplicaAgent> agent;
    size_t channels = 0;
  };
  void DropPeer(uint64_t member);

  zmq::context_t& ctx_;
  InterestCallbacks callbacks_;
  std::chrono::milliseconds heartbeat_;
  std::map<uint64_t, Peer> peers_;
  std::map<std::string, uint64_t> followed_;       // channel -> member
  std::map<std::string, std::string> channel_of_;  // subtree -> channel
  uint64_t updates_of_dropped_ = 0;                // updates counted by agents since dropped
};

}  // namespace chorus::broker::node
