// Several real chorusd forming one cluster (docs/cluster.md §3.3): ports picked before start
// (the voters list names every voter's Raft address), every node a voter and a seed of the
// others, short timings; helpers to wait for one agreed map and to read /metrics. Used by the
// data-plane tests (node_cluster_data_test, node_cluster_data_fault_test).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "node_support.h"

namespace chorus::testing {

// A TCP port that was free a moment ago, below the kernel's ephemeral range (32768-60999 by
// default): the nodes' own port-0 listeners (HTTP, native, CHP) and every outgoing connection
// take ephemeral ports, and one of them took a port chosen there before its node started
// ("cannot start the meta group ... raft error", 1 run in 8 under load). Random in 20000-32767,
// checked with a bind.
inline int PickPort() {
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(20000, 32767);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = pick(rng);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (free) return port;
  }
  return 0;
}

// C-5, computed here independently of the node's code: FNV-1a 64 of the channel name modulo
// the partition count.
inline uint32_t PartitionOfChannel(const std::string& channel, uint32_t partitions) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : channel) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return static_cast<uint32_t>(h % partitions);
}

// The `result` of a server API answer, null on any failure.
inline nlohmann::json ResultOf(const HttpResult& r) {
  if (r.status != 200) return nullptr;
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.contains("result")) return nullptr;
  return j["result"];
}

// A counter or gauge without labels from /metrics (-1 when absent).
inline double Metric(const NodeProcess& node, const std::string& name) {
  return static_cast<double>(MetricValue(node, name));
}

// Cluster-wide presence (docs/cluster.md §10): the server API `presence` of `channel` on
// `node` as client id -> the member holding it (the `node` field, 0 when absent); nullopt when
// the call failed.
inline std::optional<std::map<std::string, uint64_t>> PresenceOn(const NodeProcess& node,
                                                                 const std::string& channel) {
  nlohmann::json r = ResultOf(Api(node, "presence", nlohmann::json{{"channel", channel}}.dump()));
  if (r.is_null() || !r.contains("presence")) return std::nullopt;
  std::map<std::string, uint64_t> out;
  for (const auto& [client, info] : r["presence"].items()) out[client] = info.value("node", 0);
  return out;
}

// The presence pushes (join, leave, user_join, user_leave) a raw session received, in order.
struct PresencePushSeen {
  std::string type, channel, client, user;
};
class PresencePushLog {
 public:
  // Takes every push the session holds or receives until `quiet` passes without one.
  void Collect(RawSession& s, std::chrono::milliseconds quiet = std::chrono::milliseconds(50)) {
    for (Frame& f : s.pushes()) Add(f);
    s.pushes().clear();
    while (auto f = s.Next(quiet)) Add(*f);
  }
  size_t Count(const std::string& type, const std::string& client) const {
    size_t n = 0;
    for (const auto& p : seen_) n += p.type == type && p.client == client;
    return n;
  }
  const std::vector<PresencePushSeen>& seen() const { return seen_; }

 private:
  void Add(const Frame& f) {
    if (!f.IsPush()) return;
    const std::string type = f.Str("push");
    if (type != "join" && type != "leave" && type != "user_join" && type != "user_leave") return;
    seen_.push_back({type, f.Str("channel"), f.Str("data.info.client"), f.Str("data.info.user")});
  }
  std::vector<PresencePushSeen> seen_;
};

// The overrides that make `n` chorusd one cluster on loopback (member ids 1..n, a voter each,
// every other node as a seed, short timings: heartbeat 100 ms, dead after 600 ms, R = 2). The
// Raft and cluster ports are chosen here, before any node starts; `raft_ports` gets the Raft ones.
inline std::vector<std::vector<std::string>> ClusterOverrides(
    int n, uint32_t partitions, std::vector<int>* raft_ports = nullptr) {
  std::vector<int> raft, api;
  for (int i = 0; i < n; ++i) {
    raft.push_back(PickPort());
    api.push_back(PickPort());
  }
  std::string voters;
  for (int i = 0; i < n; ++i) {
    voters += (i ? "," : "") + std::to_string(i + 1) + "@127.0.0.1:" + std::to_string(raft[i]);
  }
  std::vector<std::vector<std::string>> out;
  for (int i = 0; i < n; ++i) {
    std::string seeds;
    for (int j = 0; j < n; ++j) {
      if (j != i)
        seeds += (seeds.empty() ? "" : ",") + ("tcp://127.0.0.1:" + std::to_string(api[j]));
    }
    out.push_back(
        {"http.port=0", "cluster.member_id=" + std::to_string(i + 1), "cluster.voters=" + voters,
         "cluster.endpoint=tcp://127.0.0.1:" + std::to_string(api[i]), "cluster.seeds=" + seeds,
         "cluster.heartbeat_ms=100", "cluster.dead_after_ms=600",
         "cluster.partitions=" + std::to_string(partitions), "cluster.replication_factor=2"});
  }
  if (raft_ports != nullptr) *raft_ports = raft;
  return out;
}

class ClusterFixture : public ::testing::Test {
 protected:
  static constexpr uint32_t kPartitions = 64;

  // Starts `n` nodes (member ids 1..n) and waits until every one applies the same fully placed
  // map with every member alive; `table_` is then its partition table.
  // `extra`: more overrides for every node (later ones win, e.g. other timings).
  void StartCluster(int n, const std::vector<std::string>& extra = {}) {
    for (int attempt = 1;; ++attempt) {
      bool started = true;
      for (const std::vector<std::string>& overrides : ClusterOverrides(n, kPartitions)) {
        NodeOptions o;
        o.overrides = overrides;
        o.overrides.insert(o.overrides.end(), extra.begin(), extra.end());
        nodes_.push_back(std::make_unique<NodeProcess>(o));
        if (!nodes_.back()->ready()) {
          started = false;
          break;
        }
      }
      if (started) break;
      // PickPort cannot reserve a port: another test running in parallel may bind a Raft or
      // cluster port between the pick and the node's bind. The cluster starts again on new ports.
      ASSERT_LT(attempt, 3) << "node " << nodes_.size() << " did not start (3 attempts)";
      nodes_.clear();
    }
    ASSERT_TRUE(EventuallyTrue(
        [&] {
          nlohmann::json first;
          for (auto& node : nodes_) {
            nlohmann::json c = ResultOf(Api(*node, "cluster", "{}"));
            if (c.is_null() || c["unassigned"] != 0 || c["members"].size() != nodes_.size()) {
              return false;
            }
            for (const nlohmann::json& m : c["members"]) {
              if (m["state"] != "alive") return false;
            }
            if (first.is_null()) first = c;
            if (c["partitions"] != first["partitions"]) return false;
          }
          table_ = first["partitions"];
          return true;
        },
        std::chrono::seconds(20)));
  }

  uint64_t PrimaryOf(const std::string& channel) const {
    return table_[PartitionOfChannel(channel, kPartitions)]["primary"].get<uint64_t>();
  }
  // A `chat:` channel whose primary is `member`.
  std::string ChannelWithPrimary(uint64_t member, const std::string& stem) const {
    for (int i = 0;; ++i) {
      const std::string ch = "chat:" + stem + std::to_string(i);
      if (PrimaryOf(ch) == member) return ch;
    }
  }
  // A `chat:` channel whose partition has `primary` and `backup` as its replicas (R = 2).
  std::string ChannelWithReplicas(uint64_t primary, uint64_t backup,
                                  const std::string& stem) const {
    for (int i = 0;; ++i) {
      const std::string ch = "chat:" + stem + std::to_string(i);
      const nlohmann::json& p = table_[PartitionOfChannel(ch, kPartitions)];
      if (p["primary"] != primary) continue;
      for (const nlohmann::json& r : p["replicas"]) {
        if (r == backup) return ch;
      }
    }
  }
  NodeProcess& Node(uint64_t member) { return *nodes_[member - 1]; }
  // The partition of `channel` in `node`'s applied map (null when unreadable).
  nlohmann::json PartitionOn(NodeProcess& node, const std::string& channel) {
    nlohmann::json c = ResultOf(Api(node, "cluster", "{}"));
    if (c.is_null()) return nullptr;
    return c["partitions"][PartitionOfChannel(channel, kPartitions)];
  }
  static bool InSync(const nlohmann::json& partition, uint64_t member) {
    if (partition.is_null()) return false;
    for (const nlohmann::json& m : partition["in_sync"]) {
      if (m == member) return true;
    }
    return false;
  }

  zmq::context_t ctx_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  nlohmann::json table_;
};

}  // namespace chorus::testing
