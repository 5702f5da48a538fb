// FanoutClient: the asking side of the cluster-wide server API (docs/cluster.md §13, §16.4).
// One call sends the same request to several members (one DEALER per member, connected to
// its peer ROUTER, the member's `api` endpoint in the map) and gathers one part per member.
// Calls in flight are bounded in count and in bytes (the request times its members, plus the
// replies held until the call ends); each call has a deadline, after which its callback gets
// the parts it has and the members that did not answer marked so. Owned by the engine thread:
// one of the Pollables of the engine's loop; callbacks run there, never from inside Start.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "chp/loop.h"
#include "fanout_codec.h"

namespace chorus::broker::node {

struct FanoutOptions {
  size_t max_calls = 256;                    // calls awaiting their members' answers
  size_t max_in_flight_bytes = 64ull << 20;  // request bytes x members + replies held
  size_t max_reply_bytes = 16ull << 20;      // one member's part; larger: that part is 106
  // No answer from a member by then: the call ends without it (the API answers 114). Below the
  // gateway's engine timeout (5 s, then 503).
  std::chrono::milliseconds timeout{2000};
  // The message kinds of requests and replies (fanout_codec.h): 40/41 for the cluster-wide
  // API, 50/51 for the sync scheduler's forwarded calls.
  uint32_t request_kind = kFanoutRequestKind;
  uint32_t reply_kind = kFanoutReplyKind;
};

struct FanoutStats {
  uint64_t calls = 0;      // calls started
  uint64_t requests = 0;   // requests sent (one per member of a call)
  uint64_t replies = 0;    // replies matched to a call's member
  uint64_t timeouts = 0;   // members of a call that did not answer in time
  uint64_t refused = 0;    // calls not started: bounds reached
  uint64_t not_sent = 0;   // requests not sent: no endpoint, or the pipe to the member full
  uint64_t malformed = 0;  // frames dropped as undecodable (replies here, requests served)
  uint64_t served = 0;     // requests from other members answered by this node
};

struct FanoutTarget {
  uint64_t member = 0;
  std::string endpoint;  // its peer ROUTER (`api` in the map)
};

// One member's part of a call.
struct FanoutPart {
  uint64_t member = 0;
  bool answered = false;  // false: no answer before the deadline, or the request not sent
  uint32_t code = 0;      // answered: 0 = ok, else a broker Errc
  std::string body;       // ok: the member's part (JSON text); else the error's message
};

class FanoutClient final : public chp::Pollable {
 public:
  // The parts in the order of the call's targets.
  using Done = std::function<void(std::vector<FanoutPart>)>;

  FanoutClient(zmq::context_t& ctx, FanoutOptions options);

  // Sends [40, id, sender, method, params] to every target; `done` runs once, from the loop
  // (HandleEvents), when every target answered or at the deadline. False, with `done` not
  // called, when the bounds are reached.
  bool Start(uint64_t sender, const std::string& method, const std::string& params,
             std::vector<FanoutTarget> targets, Done done);
  // True when a call of `request_bytes` (method + params) to `targets` members fits the bounds.
  bool HasRoom(size_t request_bytes, size_t targets) const;
  size_t in_flight() const { return calls_.size(); }
  size_t in_flight_bytes() const { return bytes_; }
  const FanoutOptions& options() const { return options_; }
  const FanoutStats& stats() const { return stats_; }
  // The serving side (the engine's ServeFanout) counts here too.
  void CountServed() { ++stats_.served; }
  void CountMalformed() { ++stats_.malformed; }

  size_t AddPollItems(std::vector<zmq::pollitem_t>& items) override;
  void HandleEvents(const zmq::pollitem_t* items, chp::Clock::time_point now) override;
  chp::Clock::time_point NextDeadline() const override;

 private:
  struct Peer {
    std::string endpoint;
    zmq::socket_t dealer;
  };
  struct Call {
    chp::Clock::time_point deadline;
    size_t bytes = 0;  // counted in bytes_
    size_t remaining = 0;
    std::vector<FanoutPart> parts;
    Done done;
  };
  Peer* PeerFor(uint64_t member, const std::string& endpoint);
  void ReadPeer(uint64_t member, Peer& peer, std::vector<std::pair<Done, Call>>& ended);
  void End(std::map<uint64_t, Call>::iterator it, std::vector<std::pair<Done, Call>>& ended);

  zmq::context_t& ctx_;
  FanoutOptions options_;
  std::map<uint64_t, Peer> peers_;  // by member id
  std::map<uint64_t, Call> calls_;  // by call id: ids grow, so also by deadline
  std::vector<uint64_t> ready_;     // calls whose every part is known, ended at the next poll
  size_t bytes_ = 0;
  uint64_t next_id_ = 1;
  FanoutStats stats_;
};

}  // namespace chorus::broker::node
