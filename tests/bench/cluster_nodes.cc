#include "cluster_nodes.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

#include "node_cluster_support.h"

namespace chorus::bench {

namespace {

using chorus::testing::Api;
using chorus::testing::NodeOptions;
using chorus::testing::NodeProcess;
using chorus::testing::ResultOf;
using nlohmann::json;

// The bench's namespace: history kept (so the channel has offsets and crosses nodes, C-16),
// clients may publish.
constexpr char kNamespace[] = R"(
[namespaces.bc]
history_size = 1000
history_ttl_ms = 600000
allow_recovery = true
allow_publish_for_client = true
)";

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

BenchCluster::BenchCluster(const ClusterSpec& spec) {
  for (std::vector<std::string> overrides : chorus::testing::ClusterOverrides(3, kPartitions)) {
    std::vector<std::string> kept;
    for (const std::string& o : overrides) {
      if (StartsWith(o, "cluster.replication_factor=")) continue;
      if (!spec.test_timings &&
          (StartsWith(o, "cluster.heartbeat_ms=") || StartsWith(o, "cluster.dead_after_ms="))) {
        continue;
      }
      kept.push_back(o);
    }
    kept.push_back("cluster.replication_factor=" + std::to_string(spec.replication_factor));
    // The one bench publisher goes past the per-connection publish limit (10,000/s): the bench
    // measures the data path, not that limit.
    kept.insert(kept.end(),
                {"client.ping_interval_s=3600", "client.pong_timeout_s=60", "node.log_level=warn",
                 "limits.publications_per_second=0", "cluster.planned_handoff=true"});
    joiner_overrides_.clear();
    for (const std::string& k : kept) {
      if (!StartsWith(k, "cluster.member_id=") && !StartsWith(k, "cluster.endpoint=") &&
          !StartsWith(k, "cluster.seeds=")) {
        joiner_overrides_.push_back(k);
      }
    }
    NodeOptions o;
    o.overrides = kept;
    o.extra_toml = kNamespace;
    nodes_.push_back(std::make_unique<NodeProcess>(o));
    if (!nodes_.back()->ready()) {
      error_ =
          "node " + std::to_string(nodes_.size()) + " did not start: " + nodes_.back()->banner();
      return;
    }
  }
  const bool agreed = chorus::testing::EventuallyTrue(
      [&] {
        json first;
        for (auto& node : nodes_) {
          json c = ResultOf(Api(*node, "cluster", "{}"));
          if (c.is_null() || c["unassigned"] != 0 || c["members"].size() != nodes_.size()) {
            return false;
          }
          for (const json& m : c["members"]) {
            if (m["state"] != "alive") return false;
          }
          if (first.is_null()) first = c;
          if (c["partitions"] != first["partitions"]) return false;
        }
        table_ = first["partitions"];
        return true;
      },
      std::chrono::seconds(60));
  if (!agreed) error_ = "the three nodes did not agree on one placed map within 60 s";
}

BenchCluster::~BenchCluster() = default;

std::string BenchCluster::ChannelWithPrimary(uint64_t member, const std::string& stem) const {
  for (int i = 0; i < 100'000; ++i) {
    const std::string ch = "bc:" + stem + std::to_string(i);
    const uint32_t p = chorus::testing::PartitionOfChannel(ch, kPartitions);
    if (table_[p]["primary"].get<uint64_t>() == member) return ch;
  }
  return {};
}

uint64_t BenchCluster::PrimaryIn(uint64_t member, const std::string& channel) {
  if (!nodes_[member - 1]) return 0;
  json c = ResultOf(Api(*nodes_[member - 1], "cluster", "{}"));
  if (c.is_null()) return 0;
  const json& p = c["partitions"][chorus::testing::PartitionOfChannel(channel, kPartitions)];
  return p.contains("primary") && p["primary"].is_number_unsigned() ? p["primary"].get<uint64_t>()
                                                                    : 0;
}

uint64_t BenchCluster::LeaderIn(uint64_t member) {
  if (!nodes_[member - 1]) return 0;
  json c = ResultOf(Api(*nodes_[member - 1], "cluster", "{}"));
  return !c.is_null() && c["leader_id"].is_number_unsigned() ? c["leader_id"].get<uint64_t>() : 0;
}

std::map<std::string, double> BenchCluster::ClusterCounters() {
  std::map<std::string, double> out;
  for (auto& node : nodes_) {
    if (!node) continue;
    auto r = chorus::testing::HttpRequest(node->http_host(), node->http_port(), "GET", "/metrics");
    std::istringstream in(r.body);
    for (std::string line; std::getline(in, line);) {
      if (!StartsWith(line, "chorus_cluster_")) continue;
      const size_t sp = line.rfind(' ');
      if (sp == std::string::npos) continue;
      const std::string name = line.substr(0, sp);
      if (name.find("_total") == std::string::npos) continue;  // counters only, not gauges
      out[name] += std::strtod(line.c_str() + sp + 1, nullptr);
    }
  }
  return out;
}

double BenchCluster::CpuSeconds(uint64_t member) {
  auto& node = nodes_[member - 1];
  if (!node) return 0;
  std::ifstream in("/proc/" + std::to_string(node->process().pid()) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');  // the command may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::strtod(f.c_str(), nullptr);  // utime, stime
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void BenchCluster::Kill(uint64_t member) {
  auto& node = nodes_[member - 1];
  if (!node) return;
  node->process().Signal(SIGKILL);
  (void)node->process().Wait(std::chrono::seconds(5));
  node.reset();
}

namespace {
// A field of a node's ready banner ("... raft=127.0.0.1:1234 cluster=tcp://...").
std::string BannerField(const std::string& banner, const std::string& key) {
  const size_t at = banner.find(" " + key + "=");
  if (at == std::string::npos) return "";
  const size_t from = at + key.size() + 2;
  return banner.substr(from, banner.find(' ', from) - from);
}
}  // namespace

bool BenchCluster::Join(uint64_t id) {
  std::string seeds;
  for (size_t i = 0; i < 3 && i < nodes_.size(); ++i) {
    if (!nodes_[i]) continue;
    seeds += (seeds.empty() ? "" : ",") + BannerField(nodes_[i]->banner(), "cluster");
  }
  NodeOptions o;
  o.overrides = joiner_overrides_;  // the voters of members 1..3 among them
  o.overrides.insert(o.overrides.end(),
                     {"cluster.member_id=" + std::to_string(id),
                      "cluster.endpoint=tcp://127.0.0.1:0", "cluster.seeds=" + seeds});
  o.extra_toml = kNamespace;
  nodes_.resize(std::max<size_t>(nodes_.size(), id));
  nodes_[id - 1] = std::make_unique<NodeProcess>(o);
  if (!nodes_[id - 1]->ready()) {
    error_ = "joining node " + std::to_string(id) + " did not start: " + nodes_[id - 1]->banner();
    return false;
  }
  return true;
}

json BenchCluster::TableIn(uint64_t member) {
  if (member > nodes_.size() || !nodes_[member - 1]) return nullptr;
  json c = ResultOf(Api(*nodes_[member - 1], "cluster", "{}"));
  return c.is_null() ? json() : c["partitions"];
}

bool BenchCluster::Stop() {
  bool clean = true;
  for (auto& node : nodes_) {
    if (node && !node->Stop()) clean = false;
    node.reset();
  }
  return clean;
}

}  // namespace chorus::bench
