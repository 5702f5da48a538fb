// The sync scheduler in the cluster (docs/scheduler.md "In a cluster", docs/cluster.md §16.6).
// A user's jobs are owned by the primary of channel `sync:<user>`'s partition:
// - Routing: sync_submit / sync_status / sync_cancel naming a user (or sent by a native session,
//   whose user it is) are served by that primary; another node forwards them over the peer wire
//   (kinds 50/51, the fan-out message shapes of fanout_codec.h) and relays the answer. A node
//   that is not (or no longer) the primary by its map answers "not primary" with the primary it
//   knows; the sender retries once against the newer view, as publishes do (C-6). No primary,
//   or no answer within the timeout: 114 "unavailable, retry".
// - Promotion: when this node becomes a partition's primary with the lineage kept (a backup
//   promoted, engine_failover.cc), every `s.<user>` subtree of that partition it holds a copy of
//   (the backup follower follows everything on the primaries it backs up, backup.h) becomes its
//   own CHP subtree (CS-29) and the user's jobs join this node's scheduler (SyncService::Adopt):
//   tasks that were running on the old primary run again (at-least-once), queued tasks stay
//   queued, backoffs keep their end, and the progress events continue on `sync:<user>` (whose
//   line the same promotion continued).
// Engine-thread code.
#include <nlohmann/json.hpp>

#include "backup.h"
#include "broker/channels/chp_state_sink.h"
#include "broker/core/errc.h"
#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "broker/protocol/json_depth.h"
#include "broker/scheduler/scheduler.h"
#include "cluster/partition.h"
#include "cluster_view.h"
#include "fanout.h"
#include "sync_service.h"

namespace chorus::broker::node {

using nlohmann::json;

namespace {

constexpr std::string_view kAsUser = "as_user:";  // a native session's call: AsUser rules

SyncService::Reply SyncError(int status, Errc code, const std::string& message) {
  return {status, json{{"error", {{"code", ToCode(code)}, {"message", message}}}}};
}

template <typename Done>
void Answer(const Done& done, const SyncService::Reply& r) {
  done(r.status, r.body);
}

SyncService::Reply Unavailable(const std::string& why) {
  return SyncError(503, Errc::kUnavailable, "unavailable, retry: " + why);
}

}  // namespace

void Engine::AdoptSyncUsers(uint32_t partition, uint64_t partition_epoch) {
  if (!sync_) return;
  for (const std::string& subtree : backup_->CopiedSubtrees("s.", partition)) {
    const chp::SubtreeReplica* copy = backup_->Copy(subtree);
    const std::optional<std::string> channel = cluster::ChannelOfSubtree(subtree);
    if (copy == nullptr || !channel || !channel->starts_with("sync:")) continue;
    const std::string user = channel->substr(5);
    chp::SubtreeCopy taken = copy->Copy(chp::MonotonicMs());
    std::vector<scheduler::ChpRecord> records;
    records.reserve(taken.entries.size());
    for (const chp::Record& r : taken.entries) records.push_back({r.key, r.value});
    // The copy becomes this node's own subtree, continuing the old primary's line (CS-29), so
    // this node's backups follow it on; when this node already writes `s.<user>` (jobs it ran
    // itself), the adopted jobs are written into it by the next mirror tick instead.
    bool in_server = false;
    if (chp_->store().Find(subtree) == nullptr) {
      const uint64_t term = std::max(partition_epoch, copy->term() + 1);
      auto adopted = chp_->Adopt(subtree, taken, term);
      in_server = static_cast<bool>(adopted);
      if (!adopted) {
        Log().warn("failover: {} cannot adopt its copy: {}", subtree, adopted.error().message());
      }
    }
    const SyncService::Reply r = sync_->Adopt(user, records, NowMs(), in_server);
    if (r.status == 200) {
      ++sync_adoptions_;
      Log().info("failover: sync jobs of {} taken over (partition {}): {}", user, partition,
                 r.body["result"]["jobs"].dump());
    } else {
      ++sync_adoptions_failed_;
      Log().warn("failover: sync jobs of {} not taken over: {}", user, r.body.dump());
    }
  }
}

void Engine::RouteSync(const std::string& method, json params, const std::string& session_user,
                       SyncDone done, int attempt, uint64_t member) {
  const auto local = [&]() {
    return session_user.empty() ? sync_->Call(method, params, NowMs())
                                : sync_->AsUser(method, session_user, params, NowMs());
  };
  const std::string user = SyncService::RoutingUser(params, session_user);
  // A call naming no (valid) user is served here: its errors are the same everywhere.
  if (user.empty() || !scheduler::IsValidUser(user)) return Answer(done, local());
  const std::string channel = "sync:" + user;
  Route route = RouteOf(channel);
  if (member != 0 && !route.local && route.member != member) {
    // Retrying against the member the last answerer named (our map has not moved yet).
    const cluster::Member* m = cluster_->map.FindMember(member);
    route.member = member;
    route.endpoint = m != nullptr ? m->endpoints.api : "";
    route.unreachable = route.endpoint.empty();
  }
  const cluster::Partition* p = cluster_->received && cluster_->map.bootstrapped()
                                    ? cluster_->map.FindPartition(cluster::PartitionOf(
                                          channel, cluster_->map.partition_count()))
                                    : nullptr;
  // Unplaced (bootstrap) on a node alone: served here, as publishes are (RouteOf).
  if (p != nullptr && p->primary == 0 && cluster_->map.members().size() > 1) {
    return Answer(done, Unavailable(channel + " has no primary (partition " +
                                    std::to_string(p->id) + "): no member holds it now"));
  }
  if (route.local) return Answer(done, local());
  if (route.unreachable) {
    return Answer(done, Unavailable("the primary of " + channel + " (member " +
                                    std::to_string(route.member) + ") has no known endpoint"));
  }
  json body =
      session_user.empty() ? params : json{{"session_user", session_user}, {"params", params}};
  const std::string wire_method = session_user.empty() ? method : std::string(kAsUser) + method;
  auto on_parts = [this, method, params = std::move(params), session_user, done, attempt,
                   target = route.member, channel](std::vector<FanoutPart> parts) mutable {
    const FanoutPart* part = parts.empty() ? nullptr : &parts.front();
    if (part == nullptr || !part->answered) {
      return Answer(done, Unavailable("no answer from member " + std::to_string(target) +
                                      ", the primary of " + channel + " by this node's map"));
    }
    if (part->code != 0)
      return Answer(done, SyncError(503, static_cast<Errc>(part->code), part->body));
    json reply = json::parse(part->body, nullptr, /*allow_exceptions=*/false);
    if (reply.is_object() && reply.contains("not_primary")) {
      const uint64_t named = reply.value("not_primary", uint64_t{0});
      if (attempt > 0) {
        return Answer(done, Unavailable(channel + " is moving between members (member " +
                                        std::to_string(target) + " is not its primary)"));
      }
      ++sync_calls_retried_;
      const uint64_t next =
          named != 0 && named != target && named != cluster_->header.member_id ? named : 0;
      return RouteSync(method, std::move(params), session_user, std::move(done), attempt + 1, next);
    }
    if (!reply.is_object() || !reply.contains("status") || !reply["status"].is_number_integer() ||
        !reply.contains("body")) {
      return Answer(done, SyncError(500, Errc::kInternal,
                                    "malformed answer from member " + std::to_string(target)));
    }
    done(reply["status"].get<int>(), reply["body"]);
  };
  ++sync_calls_forwarded_;
  if (!sync_calls_->Start(cluster_->header.member_id, wire_method, body.dump(),
                          {{route.member, route.endpoint}}, std::move(on_parts))) {
    return Answer(done, Unavailable("too many sync calls in flight to other members"));
  }
}

std::optional<std::string> Engine::ServeSyncCall(std::string_view bytes) {
  FanoutRequest req;
  if (!DecodeFanoutRequest(bytes, req, kSyncCallKind)) {
    sync_calls_->CountMalformed();
    return std::nullopt;
  }
  sync_calls_->CountServed();
  FanoutReply reply;
  reply.id = req.id;
  const size_t max_depth = registry_.limits().max_json_depth;
  json params = HasNulByte(req.params) || !JsonDepthAtMost(req.params, max_depth + 1)
                    ? json(json::value_t::discarded)
                    : json::parse(req.params, nullptr, /*allow_exceptions=*/false);
  std::string method = req.method;
  std::string session_user;
  if (method.starts_with(kAsUser) && params.is_object()) {
    method = method.substr(kAsUser.size());
    auto su = params.find("session_user");
    session_user = su != params.end() && su->is_string() ? su->get<std::string>() : "";
    params = params.contains("params") ? json(params["params"]) : json(json::value_t::discarded);
  }
  SyncService::Reply r;
  if (!SyncService::IsSyncMethod(method)) {
    r = SyncError(404, Errc::kMethodNotFound, "method not found");
  } else if (params.is_discarded() || !params.is_object() ||
             (req.method.starts_with(kAsUser) && session_user.empty())) {
    r = SyncError(400, Errc::kBadRequest, "bad request: params must be a JSON object");
  } else if (!sync_) {
    r = SyncError(404, Errc::kNotAvailable,
                  "not available: the sync scheduler is disabled ([scheduler] enabled)");
  } else {
    const std::string user = SyncService::RoutingUser(params, session_user);
    const Route route = user.empty() ? Route{} : RouteOf("sync:" + user);
    if (!route.local || (cluster_->received && cluster_->map.bootstrapped() &&
                         route.member != cluster_->header.member_id)) {
      reply.body = json{{"not_primary", route.member}}.dump();  // C-6: not by this node's map
      return EncodeFanoutReply(reply, kSyncReplyKind);
    }
    r = session_user.empty() ? sync_->Call(method, params, NowMs())
                             : sync_->AsUser(method, session_user, params, NowMs());
  }
  reply.body = json{{"status", r.status}, {"body", std::move(r.body)}}.dump();
  return EncodeFanoutReply(reply, kSyncReplyKind);
}

}  // namespace chorus::broker::node
