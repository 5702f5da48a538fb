// The node application object (STYLE: thin main, an application that does the wiring): starts
// the engine thread and the HTTP gateway from one NodeConfig, reports where they listen, and
// stops them in order (gateway first, so no request reaches a stopped engine).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "broker/config/config.h"
#include "broker/gateway/http_server.h"
#include "broker/node/engine.h"

namespace chorus::broker::node {

struct NodeAddresses {
  std::string node_id;
  std::string http;  // host:port
  std::string native;
  std::string chp_command;
  std::string chp_publisher;
  uint64_t member_id = 0;        // the cluster map's member id
  std::string raft;              // the meta group's Raft address (host:port)
  std::string cluster_endpoint;  // the inter-node endpoint
};

class ClusterAgent;  // src/cluster_agent.h

class Node {
 public:
  // Starts everything or nothing; the message says what failed ("http: address in use").
  static ConfigResult<std::unique_ptr<Node>> Start(NodeConfig config);
  ~Node();
  const NodeAddresses& addresses() const { return addresses_; }
  // One line for stdout: "chorusd ready node=... http=... native=... chp_command=... ...
  // member=... raft=... cluster=...".
  std::string Banner() const;
  // C-20 (SIGTERM): a member of a cluster with other members drains before it stops: heartbeats
  // carry `leaving`, the controller hands its partitions off and removes it from the map, then its
  // clients are closed with 3001 "shutdown" (reconnect). Returns after at most `timeout` (plus the
  // close) even when the map never removed it (logged). Alone, or with timeout 0: returns at once.
  // hand_off false (cluster.planned_handoff off): nothing can move away, so the clients are
  // closed with 3001 at once and the partitions fail over after the node stops.
  void Drain(std::chrono::milliseconds timeout, bool hand_off = true);
  void Stop();

 private:
  Node() = default;
  zmq::context_t ctx_;
  std::unique_ptr<EngineThread> engine_;
  std::unique_ptr<ClusterAgent> cluster_;
  std::unique_ptr<gateway::HttpServer> http_;
  NodeAddresses addresses_;
};

// A random node id: "node-" and 8 characters of [0-9a-z].
std::string RandomNodeId();

}  // namespace chorus::broker::node
