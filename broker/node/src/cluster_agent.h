// ClusterAgent: this node's part of the cluster's control plane (docs/cluster.md §3.3, §6).
// It hosts the node's meta group member (cluster::MetaGroup, on a loop thread of its own, with
// the controller running while it leads), sends this node's heartbeat every heartbeat_ms to that
// member and to every seed (another node's cluster.endpoint), hands heartbeats received on its
// own cluster.endpoint to its member (only the leader's controller takes them; a follower
// answers kNotLeader and the heartbeat is dropped: the sender sends it to every seed anyway),
// and sends each newly applied map to the engine thread as a message (C-3: nodes act on applied
// maps only; docs/broker-node.md "Cluster view").
//
// Threads: Start() creates the agent thread, which owns the ROUTER (cluster.endpoint), the
// DEALERs to the seeds and the PAIR to the engine; the MetaGroup's own thread owns the Raft
// state. Nothing else touches them. Stop() (or the destructor) joins both.
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "broker/config/config.h"
#include "cluster/meta_group.h"

namespace chorus::broker::node {

struct ClusterAgentOptions {
  ClusterSection cluster;
  std::string chp_endpoint;   // this node's bound CHP command endpoint (in the map's member)
  std::string peer_endpoint;  // the engine's bound data-plane ROUTER (the member's `api`)
  std::string view_endpoint;  // inproc:// PAIR the engine connects to
};

struct ClusterAddresses {
  uint64_t member_id = 0;
  uint64_t incarnation = 0;  // the start time in ms (docs/cluster.md §3.1)
  std::string raft;          // host:port, the bound Raft address
  std::string endpoint;      // the bound inter-node endpoint
};

// The map message on the view PAIR: two frames, a header and cluster::EncodeMap(map).
// Header: msgpack [member_id, incarnation, leader_id, entries, raft address, endpoint].
struct ClusterViewHeader {
  uint64_t member_id = 0;
  uint64_t incarnation = 0;
  uint64_t leader_id = 0;  // 0 = unknown
  uint64_t entries = 0;    // commands applied by this node's member
  std::string raft;
  std::string endpoint;
};
std::string EncodeViewHeader(const ClusterViewHeader& h);
// A primary's replica report (docs/cluster.md C-10, C-11): the engine sends it to its agent
// over the view PAIR (one frame); the agent hands it to its member and to every seed.
std::string EncodeReport(const cluster::ReplicaReport& r);
bool DecodeReport(std::string_view bytes, cluster::ReplicaReport& out);
bool DecodeViewHeader(std::string_view bytes, ClusterViewHeader& out);

class ClusterAgent {
 public:
  // Binds cluster.endpoint, picks the Raft port when it is 0, starts the MetaGroup (bootstrapping
  // a fresh log from cluster.voters, or this node alone) and the agent thread.
  static ConfigResult<std::unique_ptr<ClusterAgent>> Start(zmq::context_t& ctx,
                                                           ClusterAgentOptions options);
  ~ClusterAgent();
  ClusterAgent(const ClusterAgent&) = delete;
  ClusterAgent& operator=(const ClusterAgent&) = delete;
  const ClusterAddresses& addresses() const { return addresses_; }
  // C-20 (SIGTERM): heartbeats carry `leaving` from now on; the controller moves this member's
  // replicas away and removes it. Removed() turns true once an applied map no longer lists it.
  void BeginLeaving() { leaving_.store(true); }
  bool Removed() const { return removed_.load(); }
  // No other member alive or leaving in the last applied map (or no map yet): nothing to hand
  // off to, so SIGTERM needs no drain.
  bool Alone() const { return others_.load() == 0; }
  void Stop();

 private:
  ClusterAgent(zmq::context_t& ctx, ClusterAgentOptions options);
  void Run();
  // While this node's member leads: adds every non-voter member of the map to the Raft
  // configuration as a standby (C-2, C-18), so a joining node receives the map.
  void MaintainStandbys(const cluster::MetaStatus& st);

  zmq::context_t& ctx_;
  ClusterAgentOptions options_;
  ClusterAddresses addresses_;
  std::string temp_dir_;  // removed at Stop when data_dir was ""
  std::unique_ptr<cluster::MetaGroup> meta_;
  zmq::socket_t router_;  // cluster.endpoint; moved to the agent thread at Start
  zmq::socket_t view_;    // PAIR to the engine
  std::atomic<bool> stop_{false};
  std::atomic<bool> leaving_{false};
  std::atomic<bool> removed_{false};
  std::atomic<int> others_{0};
  // Agent thread only: standbys added (or found present) while leading, and pending additions.
  std::set<uint64_t> standbys_;
  std::map<uint64_t, std::future<cluster::Result<cluster::Unit>>> standby_pending_;
  std::thread thread_;
};

}  // namespace chorus::broker::node
