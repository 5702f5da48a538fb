// The glue between libraft and the cluster map (docs/cluster.md §3.3): a raft_fsm whose entries
// are encoded cluster map commands, and Propose() to append one on the leader. Used by MetaGroup
// (libuv I/O) and, unchanged, by the deterministic tests on libraft's in-memory fixture.
//
// Threads: a MetaFsm and the raft instance it is attached to are owned by one thread (the one
// running the raft I/O loop or stepping the fixture); nothing here is thread-safe.
#pragma once

#include <cstdint>
#include <functional>

#include "cluster/cluster_map.h"

struct raft;
struct raft_fsm;
struct raft_buffer;

namespace chorus::cluster {

class MetaFsm {
 public:
  MetaFsm();
  ~MetaFsm();
  MetaFsm(const MetaFsm&) = delete;
  MetaFsm& operator=(const MetaFsm&) = delete;

  // The libraft FSM to pass to raft_init / raft_fixture_grow. Lives as long as this object.
  raft_fsm* fsm() { return fsm_; }

  const ClusterMap& map() const { return map_; }
  // Command entries applied so far, accepted or rejected (snapshots carry it): two FSMs that
  // applied the same number of entries hold equal maps (state machine safety).
  uint64_t entries() const { return entries_; }

  // Called on the owner thread after every applied entry and after a snapshot restore.
  using Observer = std::function<void(const MetaFsm&)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }

 private:
  static int ApplyCb(raft_fsm* fsm, const ::raft_buffer* buf, void** result);
  static int SnapshotCb(raft_fsm* fsm, ::raft_buffer* bufs[], unsigned* n_bufs);
  static int RestoreCb(raft_fsm* fsm, ::raft_buffer* buf);

  raft_fsm* fsm_;
  ClusterMap map_;
  uint64_t entries_ = 0;
  Observer observer_;
};

// The outcome of a proposal: Unit when the command was committed and accepted by the map; the
// map's Errc when committed but rejected (a no-op on every voter); kNotLeader when leadership was
// lost before it committed (it may or may not have been applied: decide again on the map);
// kRaft for any other libraft error.
using ProposeCallback = std::function<void(Result<Unit>)>;

// Appends `cmd` to the log of `r`, which must be the leader. Returns an error at once (and never
// calls `cb`) when the entry could not be submitted; otherwise `cb` is called exactly once on the
// owner thread.
Result<Unit> Propose(raft* r, const Command& cmd, ProposeCallback cb);

}  // namespace chorus::cluster
