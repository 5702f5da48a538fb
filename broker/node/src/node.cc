#include "broker/node/node.h"

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "broker/node/log.h"
#include "cluster_agent.h"

namespace chorus::broker::node {

std::string RandomNodeId() {
  std::mt19937_64 rng(std::random_device{}());
  static constexpr char kChars[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id = "node-";
  for (int i = 0; i < 8; ++i) id.push_back(kChars[rng() % 36]);
  return id;
}

ConfigResult<std::unique_ptr<Node>> Node::Start(NodeConfig config) {
  std::unique_ptr<Node> n(new Node());
  EngineOptions eo;
  eo.node_id = config.node.id.empty() ? RandomNodeId() : config.node.id;
  eo.bridge_endpoint = "inproc://chorus-engine-" + eo.node_id;
  eo.token_keys.hmac_secret = config.client.token_hmac_secret;
  eo.token_keys.audience = config.client.token_audience;
  eo.token_keys.issuer = config.client.token_issuer;
  if (!config.client.token_rsa_public_key_file.empty()) {
    std::ifstream in(config.client.token_rsa_public_key_file);
    if (!in) {
      return ConfigError{"client.token_rsa_public_key_file: cannot read " +
                         config.client.token_rsa_public_key_file};
    }
    std::stringstream ss;
    ss << in.rdbuf();
    eo.token_keys.rsa_public_pem = ss.str();
  }
  eo.config = config;
  const std::string view_endpoint = "inproc://chorus-cluster-" + eo.node_id;
  eo.cluster_view_endpoint = view_endpoint;
  auto engine = EngineThread::Start(n->ctx_, std::move(eo));
  if (!engine) {
    return ConfigError{"engine: cannot bind native.endpoint or the cluster endpoints (see log)"};
  }
  n->engine_ = std::move(*engine);
  const EngineEndpoints& ep = n->engine_->endpoints();

  // The meta group member and heartbeats (cluster_agent.h); the engine follows its maps.
  ClusterAgentOptions co{config.cluster, ep.chp_command, ep.peer, view_endpoint};
  auto agent = ClusterAgent::Start(n->ctx_, std::move(co));
  if (!agent) {
    n->engine_->Stop();
    return ConfigError{agent.error()};
  }
  n->cluster_ = std::move(*agent);

  gateway::HttpOptions ho;
  ho.address = config.http.address;
  ho.port = config.http.port;
  ho.api_key = config.api.key;
  ho.static_dir = config.http.static_dir;
  ho.io_threads = EffectiveHttpThreads(config.http, std::thread::hardware_concurrency());
  ho.max_connections = config.http.max_connections;
  ho.max_connections_per_address = config.http.max_connections_per_address;
  ho.header_timeout = std::chrono::milliseconds(config.http.header_timeout_ms);
  ho.allowed_origins = config.http.allowed_origins;
  ho.metrics_key = config.http.metrics_key;
  ho.engine_endpoint = ep.bridge;
  ho.max_body_bytes = std::max<size_t>(1 << 20, config.limits.max_publication_bytes * 2 + 4096);
  ho.max_ws_queue_bytes = config.client.max_queue_bytes;
  ho.max_ws_message_bytes = std::max<size_t>(64 * 1024, config.limits.max_publication_bytes * 2);
  auto http = gateway::HttpServer::Start(n->ctx_, ho);
  if (!http) {
    n->cluster_->Stop();
    n->engine_->Stop();
    return ConfigError{"http: cannot listen on " + config.http.address + ":" +
                       std::to_string(config.http.port) + ": " + http.error().message()};
  }
  n->http_ = std::move(*http);
  n->addresses_ = {config.node.id.empty() ? "" : config.node.id,
                   config.http.address + ":" + std::to_string(n->http_->port()),
                   ep.native,
                   ep.chp_command,
                   ep.chp_publisher,
                   0,
                   "",
                   ""};
  // The node id the engine chose (random when not configured) is the bridge's suffix.
  n->addresses_.node_id = ep.bridge.substr(std::string("inproc://chorus-engine-").size());
  n->addresses_.member_id = n->cluster_->addresses().member_id;
  n->addresses_.raft = n->cluster_->addresses().raft;
  n->addresses_.cluster_endpoint = n->cluster_->addresses().endpoint;
  return n;
}

std::string Node::Banner() const {
  const auto& a = addresses_;
  return "chorusd ready node=" + a.node_id + " http=" + a.http + " native=" + a.native +
         " chp_command=" + a.chp_command + " chp_publisher=" + a.chp_publisher +
         " member=" + std::to_string(a.member_id) + " raft=" + a.raft +
         " cluster=" + a.cluster_endpoint;
}

void Node::Drain(std::chrono::milliseconds timeout, bool hand_off) {
  if (!cluster_ || !engine_ || timeout.count() <= 0 || cluster_->Alone()) return;
  using Clock = std::chrono::steady_clock;
  if (!hand_off) {
    Log().info("drain: cluster.planned_handoff is off: closing clients, partitions fail over");
  } else {
    const auto start = Clock::now();
    cluster_->BeginLeaving();
    Log().info("drain: handing this node's partitions off (at most {} ms)", timeout.count());
    // The agent thread watches the applied maps; this thread only waits for its verdict.
    while (!cluster_->Removed() && Clock::now() - start < timeout) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    if (cluster_->Removed()) {
      Log().info("drain: removed from the cluster map after {} ms", took);
    } else {
      Log().warn("drain: not removed from the cluster map within {} ms: stopping anyway", took);
    }
  }
  engine_->DisconnectClients();
  const auto closing = Clock::now();
  while (!engine_->ClientsDisconnected() && Clock::now() - closing < std::chrono::seconds(2)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The close frames are queued on the engine's sockets and the gateway's connections: a short
  // grace for them to leave before the sockets close (linger 0).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

void Node::Stop() {
  if (http_) http_->Stop();
  if (cluster_) cluster_->Stop();
  if (engine_) engine_->Stop();
  http_.reset();
  cluster_.reset();
  engine_.reset();
}

Node::~Node() {
  Stop();
}

}  // namespace chorus::broker::node
