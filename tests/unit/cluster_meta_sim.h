// A deterministic simulation of the cluster control plane on libraft's in-memory fixture
// (raft/fixture.h): n meta voters, each also a data node running the controller when it leads,
// a model of the data plane's commit rule (docs/cluster.md C-8..C-15, C-24, C-25), and chaos
// (kills, revivals, restarts, network splits, one-way drops). Invariants are checked after every
// applied entry and every step; the first violation is kept in `violation`.
#pragma once

extern "C" {  // raft.h has no C++ guards
#include <raft.h>
#include <raft/fixture.h>
}

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cluster/controller.h"
#include "cluster/meta_fsm.h"

namespace chorus::cluster::sim {

struct SimConfig {
  unsigned servers = 3;
  uint32_t seed = 1;
  uint32_t partitions = 16;
  uint32_t replication_factor = 2;
  int64_t chaos_ms = 30000;   // simulated time with faults
  int64_t settle_ms = 20000;  // then everything healed and revived
  int64_t tick_ms = 100;      // heartbeats, reports, decisions, one publish per partition
  int64_t dead_after_ms = 3000;
  int64_t lease_ms = 800;
};

struct SimStats {
  uint64_t steps = 0, commits = 0, kills = 0, revivals = 0, restarts = 0, splits = 0;
  uint64_t promotions = 0, new_lineages = 0, handoffs = 0, snapshots_restored = 0;
  uint64_t leaves = 0, exits = 0;   // SIGTERM handoffs started, members drained and exited
  uint64_t minority_proposals = 0;  // proposals made by a leader on the minority side of a split
};

class Sim {
 public:
  explicit Sim(const SimConfig& config);
  ~Sim();
  Sim(const Sim&) = delete;
  Sim& operator=(const Sim&) = delete;

  // Runs chaos then settling; returns false at the first violated invariant.
  bool Run();
  // After Run(): every server alive, one map, every partition served by a live in-sync primary.
  std::string CheckConverged() const;

  std::string violation;
  SimStats stats;

 private:
  struct Pending {  // backups reported caught up at a partition version (C-11)
    uint64_t version = 0;
    std::vector<MemberId> members;
  };
  struct Data {  // a node's copy of a partition: the publications it holds, per lineage
    uint64_t lineage = 0;
    std::vector<uint64_t> pubs;
  };

  raft* Raft(unsigned i) { return raft_fixture_get(&f_, i); }
  const ClusterMap& View(unsigned i) const { return fsms_[i]->map(); }
  bool Alive(unsigned i) const { return alive_[i]; }
  bool Linked(unsigned i, unsigned j) const;  // both alive, messages flow both ways
  void Fail(const std::string& what);

  void Tick(int64_t now);
  void Chaos(int64_t now);
  void HealAll();
  void Revive(unsigned v);
  void CheckStep();
  void OnApplied(unsigned server, const MetaFsm& fsm);
  // Member j's view says it is a serving member (alive, its own incarnation).
  bool SelfAlive(unsigned j) const;
  bool Acks(unsigned primary, unsigned backup, PartitionId p, uint64_t epoch) const;
  void Report(unsigned leader, unsigned j, int64_t now);
  void Commit(unsigned j, int64_t now);
  Data& DataOf(unsigned j, PartitionId p, uint64_t lineage);

  SimConfig config_;
  std::mt19937 rng_;
  raft_fixture f_{};
  std::vector<std::unique_ptr<MetaFsm>> fsms_;
  std::vector<Controller> ctl_;
  std::vector<raft_term> leader_term_;
  std::vector<unsigned> inflight_;
  std::vector<bool> alive_;
  std::vector<uint64_t> incarnation_;
  std::vector<int64_t> lease_until_;
  std::vector<uint64_t> lease_min_entries_;  // the granting controller's entries (C-25)
  std::vector<bool> barrier_inflight_;
  std::vector<bool> leaving_;  // heartbeats say "leaving" (SIGTERM)
  std::vector<bool> exited_;   // left and exited: revived as a new process
  struct BarrierRequest {
    struct raft_barrier barrier;
    Sim* sim = nullptr;
    unsigned server = 0;
    int64_t granted_at = 0;
    uint64_t min_entries = 0;
    std::vector<unsigned> members;
  };
  static void OnBarrier(struct raft_barrier* barrier, int status);
  std::vector<std::vector<bool>> cut_;  // cut_[i][j]: messages i -> j dropped
  std::vector<std::map<PartitionId, Pending>> pending_;
  std::vector<std::map<PartitionId, Data>> data_;
  // Split state.
  bool split_ = false;
  uint64_t split_id_ = 0;
  std::set<unsigned> minority_;
  raft_index commit_at_split_ = 0;  // highest log index anywhere when the split began
  // Invariant state.
  std::map<uint64_t, std::string> reference_;  // entries -> encoded map
  std::vector<std::vector<uint64_t>> last_epoch_;
  std::map<std::pair<PartitionId, uint64_t>, MemberId> primary_of_epoch_;
  std::map<std::pair<PartitionId, uint64_t>, unsigned> committer_;  // (p, epoch) -> server
  std::map<PartitionId, uint64_t> max_commit_epoch_;
  std::map<std::pair<PartitionId, uint64_t>, std::vector<uint64_t>> committed_;  // (p, lineage)
  uint64_t next_pub_ = 0;
  int64_t next_chaos_ = 0;
};

}  // namespace chorus::cluster::sim
