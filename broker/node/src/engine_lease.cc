// Commit leases on the engine (docs/cluster.md C-25, §16.8; lease.h). The cluster agent sends
// each lease the controller granted for this node's heartbeats over the view PAIR; a primary
// commits (delivers, answers, advances `c`) only while it holds one that has not expired and
// whose map is at least as new as the granting controller's. Without one, publications to
// history channels wait in the uncommitted queue (bounded, C-10) and are answered 114 after
// the forward timeout unless a lease comes back first. A map with this node as its only member
// needs no lease: nobody else can take its partitions.
#include <chrono>

#include "broker/node/engine.h"
#include "cluster_view.h"
#include "commit.h"

namespace chorus::broker::node {

namespace {
int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool Engine::LeaseRequired() const {
  return cluster_->received && cluster_->map.bootstrapped() && cluster_->map.members().size() > 1;
}

bool Engine::HoldsLease() const {
  return !LeaseRequired() || commit_->lease.Valid(SteadyNs(), cluster_->header.entries);
}

bool Engine::OnLeaseMessage(std::string_view frame) {
  LeaseGrant g;
  if (!DecodeLeaseGrant(frame, g)) return false;
  commit_->lease.Add(g);
  // Publications that waited for a lease (or whose acks came meanwhile) commit now.
  std::vector<std::string> waiting;
  for (const auto& [name, cc] : commit_->channels) waiting.push_back(name);
  for (const std::string& name : waiting) TryCommit(name);
  return true;
}

std::string Engine::LeaseMetricsText() const {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + std::to_string(v) + "\n";
  };
  metric("chorus_cluster_lease_grants_total", "counter",
         "Commit leases received from the controller (C-25).", commit_->lease.grants());
  metric("chorus_cluster_lease_held", "gauge",
         "1 while this node holds a valid commit lease (or needs none), else 0 (C-25).",
         HoldsLease() ? 1 : 0);
  metric("chorus_cluster_lease_waits_total", "counter",
         "Publications that found no valid lease when published and waited for one (C-25).",
         commit_->stats.lease_held);
  return out;
}

}  // namespace chorus::broker::node
