// SyncService: the scheduler's state in CHP (Mirror) and taking jobs over (Adopt);
// docs/scheduler.md "Replication through CHP".
#include "broker/core/errc.h"
#include "sync_service.h"

namespace chorus::broker::node {

namespace sch = scheduler;

void SyncService::Mirror(chp::Server& server) {
  const sch::StateMirror::Changes c = runner_->MirrorChanges(kMirrorPerTick);
  for (const std::string& key : c.erases) {
    ++(server.Erase(key).ok() ? counters_.mirror_erases : counters_.mirror_errors);
  }
  for (const sch::ChpRecord& r : c.sets) {
    ++(server.Set(r.key, r.value).ok() ? counters_.mirror_sets : counters_.mirror_errors);
  }
}

SyncService::Reply SyncService::Adopt(const std::string& user,
                                      const std::vector<sch::ChpRecord>& records, int64_t now_ms,
                                      bool in_server) {
  auto error = [](const std::string& why) {
    return Reply{
        400, nlohmann::json{
                 {"error", {{"code", ToCode(Errc::kBadRequest)}, {"message", "adopt: " + why}}}}};
  };
  auto state = sch::FromChpRecords(user, records);
  if (!state) return error("malformed scheduler records for " + user);
  std::vector<sch::ChpRecord> held;  // as the server holds them: keys with the subtree
  const std::string prefix = sch::UserSubtree(user) + "/";
  for (const sch::ChpRecord& r : in_server ? records : std::vector<sch::ChpRecord>{}) {
    held.push_back({r.key.rfind(prefix, 0) == 0 ? r.key : prefix + r.key, r.value});
  }
  auto jobs = runner_->Adopt(std::move(*state), std::move(held));
  if (!jobs) return error(jobs.error().message());
  for (sch::JobId id : *jobs) {
    auto info = runner_->Status(id);
    if (info && !sch::IsFinal(info->state)) Remember(id, user, now_ms);
  }
  counters_.adopted_jobs += jobs->size();
  return {200, nlohmann::json{{"result", {{"jobs", *jobs}}}}};
}

}  // namespace chorus::broker::node
