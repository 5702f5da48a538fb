// Forwarder: the engine's data-plane link to other nodes (docs/cluster.md §5, C-6). It owns the
// peer ROUTER (this node's inter-node request endpoint, advertised as `api` in the cluster map)
// where forwarded publishes arrive, and one DEALER per other member it forwards to. Requests
// in flight are bounded in count and in bytes; each has a deadline, after which its callback
// is told it timed out (the request is not re-sent: only a definite refusal is retried, by the
// engine, so a publish is never applied twice). Owned by the engine thread: it is one of the
// Pollables of the engine's loop; callbacks run there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "chp/loop.h"
#include "peer_codec.h"

namespace chorus::broker::node {

struct ForwarderOptions {
  size_t max_in_flight = 10'000;             // forwarded requests awaiting a reply
  size_t max_in_flight_bytes = 64ull << 20;  // their channel + data + info bytes
  // No reply: the publisher gets 114. Below the gateway's engine timeout (5 s, then 503).
  std::chrono::milliseconds timeout{3000};
};

struct ForwarderStats {
  uint64_t forwarded = 0;  // requests sent to a primary
  uint64_t replies = 0;    // replies matched to a request
  uint64_t timeouts = 0;   // requests given up after the timeout
  uint64_t refused = 0;    // requests not sent: bounds reached or the socket refused
  uint64_t served = 0;     // requests received from other nodes and answered
  uint64_t malformed = 0;  // frames dropped as undecodable
};

class Forwarder final : public chp::Pollable {
 public:
  // `reply` is nullptr when the request timed out.
  using Done = std::function<void(const ForwardReply* reply)>;
  // Answers a request received from another node (the engine publishes it when primary): calls
  // `answer` once, now or later (after the commit, docs/cluster.md C-9), on the engine thread.
  using Answer = std::function<void(const ForwardReply&)>;
  using Serve = std::function<void(const ForwardRequest&, Answer answer)>;
  // Any other peer message received on the ROUTER (its first element is not 1; ack_codec.h).
  using OnMessage = std::function<void(std::string_view body)>;

  // Answers a peer message of another kind (peer_codec.h): the reply's bytes, or nullopt to
  // drop it as malformed.
  using ServeOther = std::function<std::optional<std::string>(std::string_view bytes)>;

  Forwarder(zmq::context_t& ctx, ForwarderOptions options, Serve serve,
            OnMessage on_message = nullptr);
  // Serves the peer messages of kinds `first`..`last` arriving on the peer ROUTER with `serve`
  // (other modules' requests share this endpoint: the member's `api` in the map).
  void AddService(uint32_t first, uint32_t last, ServeOther serve);
  // Binds the peer ROUTER; returns the bound endpoint ("" on failure, with `why`).
  std::string Bind(const std::string& endpoint, std::string* why);

  // Sends `req` (its id is assigned here) to the member at `endpoint`. False, with `done` not
  // called, when the bounds are reached or the request could not be queued.
  bool Send(uint64_t member, const std::string& endpoint, ForwardRequest req, Done done);
  // Sends a one-way message (no reply) to the member at `endpoint`; false when it could not be
  // queued (the pipe is full: the caller sends a newer one later).
  bool SendMessage(uint64_t member, const std::string& endpoint, const std::string& body);
  // Other peer messages (kinds other than 1/2, e.g. presence_codec.h): `request` gets what
  // arrives on the ROUTER and returns a reply body to send back ("" = none; false = malformed);
  // `reply` gets what arrives on a DEALER. Set once by the engine.
  using OtherRequest = std::function<bool(std::string_view body, std::string* reply)>;
  using OtherReply = std::function<void(std::string_view body)>;
  void SetOtherHandlers(OtherRequest request, OtherReply reply) {
    other_request_ = std::move(request);
    other_reply_ = std::move(reply);
  }
  // Sends `body` to `member` over the DEALER forwarded requests use (in order with them);
  // false when the member cannot be reached or its pipe is full (nothing is queued here).
  bool SendOther(uint64_t member, const std::string& endpoint, std::string_view body);
  size_t in_flight() const { return pending_.size(); }
  size_t in_flight_bytes() const { return pending_bytes_; }
  const ForwarderStats& stats() const { return stats_; }

  size_t AddPollItems(std::vector<zmq::pollitem_t>& items) override;
  void HandleEvents(const zmq::pollitem_t* items, chp::Clock::time_point now) override;
  chp::Clock::time_point NextDeadline() const override;

 private:
  struct Peer {
    std::string endpoint;
    zmq::socket_t dealer;
  };
  struct Pending {
    chp::Clock::time_point deadline;
    size_t bytes = 0;
    Done done;
  };
  Peer* PeerFor(uint64_t member, const std::string& endpoint);
  void ReadRouter();
  void SendBack(const zmq::message_t& routing_id, const std::string& body);
  void ReadPeer(Peer& peer, std::vector<std::pair<Done, ForwardReply>>& answered);
  void Expire(chp::Clock::time_point now);

  zmq::context_t& ctx_;
  ForwarderOptions options_;
  Serve serve_;
  OnMessage on_message_;
  OtherRequest other_request_;
  OtherReply other_reply_;
  struct Service {
    uint32_t first = 0;
    uint32_t last = 0;
    ServeOther serve;
  };
  std::vector<Service> services_;
  zmq::socket_t router_;
  std::map<uint64_t, Peer> peers_;       // by member id
  std::map<uint64_t, Pending> pending_;  // by request id: ids grow, so also by deadline
  size_t pending_bytes_ = 0;
  uint64_t next_id_ = 1;
  ForwarderStats stats_;
};

}  // namespace chorus::broker::node
