// The engine's cluster view: the map messages from the ClusterAgent and their JSON for the
// server API (`info`'s `cluster` member and the `cluster` method; docs/api.md).
#include <map>

#include <zmq_addon.hpp>

#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "cluster/map_codec.h"
#include "cluster_view.h"

namespace chorus::broker::node {

using nlohmann::json;

bool DecodeClusterView(std::string_view header, std::string_view map, ClusterView& out) {
  ClusterViewHeader h;
  if (!DecodeViewHeader(header, h)) return false;
  auto m = cluster::DecodeMap(map);
  if (!m) return false;
  out.received = true;
  out.header = std::move(h);
  out.map = std::move(*m);
  return true;
}

json ClusterJson(const ClusterView& view, bool partitions) {
  const ClusterViewHeader& h = view.header;
  const cluster::ClusterMap& m = view.map;
  std::map<cluster::MemberId, std::pair<uint64_t, uint64_t>> counts;  // primaries, backups
  uint64_t unassigned = 0;
  for (const cluster::Partition& p : m.partitions()) {
    if (p.primary == 0) ++unassigned;
    for (cluster::MemberId r : p.replicas) {
      if (r == p.primary) {
        ++counts[r].first;
      } else {
        ++counts[r].second;
      }
    }
  }
  json members = json::array();
  for (const auto& [id, mem] : m.members()) {
    members.push_back(
        {{"id", id},
         {"incarnation", mem.incarnation},
         {"state", cluster::ToString(mem.state)},
         {"endpoints",
          {{"chp", mem.endpoints.chp}, {"api", mem.endpoints.api}, {"raft", mem.endpoints.raft}}},
         {"primaries", counts[id].first},
         {"backups", counts[id].second}});
  }
  json out = {{"received", view.received},
              {"member_id", h.member_id},
              {"incarnation", h.incarnation},
              {"leader_id", h.leader_id},
              {"entries", h.entries},
              {"raft", h.raft},
              {"endpoint", h.endpoint},
              {"partition_count", m.partition_count()},
              {"replication_factor", m.replication_factor()},
              {"unassigned", m.bootstrapped() ? unassigned : 0},
              {"primaries", counts[h.member_id].first},
              {"backups", counts[h.member_id].second},
              {"members", members}};
  if (partitions) {
    json table = json::array();
    for (const cluster::Partition& p : m.partitions()) {
      table.push_back({{"id", p.id},
                       {"primary", p.primary},
                       {"replicas", p.replicas},
                       {"in_sync", p.in_sync},
                       {"epoch", p.epoch},
                       {"version", p.version},
                       {"lineage", p.lineage},
                       {"handoff_to", p.handoff_to}});
    }
    out["partitions"] = table;
  }
  return out;
}

void Engine::ReadClusterView() {
  for (int i = 0; i < 64; ++i) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(cluster_view_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
      break;
    }
    if (parts.size() == 1 && OnLeaseMessage(parts[0].to_string_view())) continue;  // C-25
    if (parts.size() != 2 ||
        !DecodeClusterView(parts[0].to_string_view(), parts[1].to_string_view(), *cluster_)) {
      Log().warn("cluster view: malformed map message dropped");
    }
    OnPresenceMap();  // C-22, C-23 (engine_presence.cc)
  }
  ApplyPartitionRoles();  // failover (engine_failover.cc), before this poll serves any request
}

}  // namespace chorus::broker::node
