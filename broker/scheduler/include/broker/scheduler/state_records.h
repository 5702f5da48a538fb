// The scheduler's state as records of the node's CHP server, one subtree per user: `s.<user>`
// (docs/scheduler.md, "Replication through CHP"). A user's subtree holds
//   job/<job>          the job (msgpack array, the ExportState format)        replicated state
//   task/<job>/<task>  an unfinished task (idem)                              replicated state
//   queue              {tier, quantum, ready, running, backoff, held, jobs, slots}   view only
//   lease/<task>       {job, kind, token, slot, attempt, worker}               view only
// `job/` and `task/` are what a new owner restores (FromChpRecords, Scheduler::Adopt); `queue`
// and `lease/` are for people and tools (chorus-snapshot) and are ignored on restore.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "broker/scheduler/scheduler.h"

namespace chorus::broker::scheduler {

// "s." + user (users are [A-Za-z0-9_.@-], valid in subtree names as they are).
std::string UserSubtree(std::string_view user);
// The user of a scheduler subtree ("" when `subtree` is not one).
std::string UserOfSubtree(std::string_view subtree);

struct ChpRecord {
  std::string key;  // "<subtree>/<key>"
  std::string value;
  bool operator==(const ChpRecord&) const = default;
};

// Every record of `s`'s state and view. `worker_of(task)` names the external worker holding a
// lease (0: in-process); may be empty.
std::vector<ChpRecord> ToChpRecords(const Scheduler& s,
                                    const std::function<uint64_t(TaskId)>& worker_of = {});
// The replicated state held in the records of `user`'s subtree (keys with or without the
// subtree prefix; `queue` and `lease/` records are skipped), as Restore / Adopt take it.
// kBadRequest for a key that is not a scheduler key.
Result<std::vector<StateEntry>> FromChpRecords(std::string_view user,
                                               const std::vector<ChpRecord>& records);

// What changed since the last call: records to set and keys to erase, at most `max` of them
// per call (the rest next time). One owner.
class StateMirror {
 public:
  struct Changes {
    std::vector<ChpRecord> sets;
    std::vector<std::string> erases;
    bool more = false;  // changes were left for the next call
  };
  Changes Diff(const std::vector<ChpRecord>& now, size_t max);
  // Takes `records` as already held by the server (e.g. the copy of s.<user> a new owner
  // adopted): the next Diff erases those that are no longer part of the state (the old
  // owner's leases and queue view) and rewrites those that differ.
  void Assume(const std::vector<ChpRecord>& records);
  size_t held() const { return held_.size(); }

 private:
  std::map<std::string, std::string> held_;  // what the CHP server was told
};

}  // namespace chorus::broker::scheduler
