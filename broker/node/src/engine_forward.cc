// The data plane's publish path (docs/cluster.md §5): any node accepts a publish and, when the
// applied map names another member as the partition's primary, forwards it there (C-6); the
// primary alone assigns offsets and keeps the channel epoch (C-7) and answers with them. A
// refusal (kNotPrimary, kStaleEpoch: C-13) is retried once against the newer view; no answer
// within the forward timeout gives the publisher 114 "unavailable, retry".
#include <nlohmann/json.hpp>

#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "broker/protocol/json_depth.h"
#include "cluster/partition.h"
#include "cluster_view.h"
#include "forwarder.h"

namespace chorus::broker::node {

Engine::Route Engine::RouteOf(std::string_view channel) const {
  Route r;
  const cluster::ClusterMap& map = cluster_->map;
  if (!cluster_->received || !map.bootstrapped()) return r;  // no map yet: alone, as before
  r.partition = cluster::PartitionOf(channel, map.partition_count());
  const cluster::Partition* p = map.FindPartition(r.partition);
  if (p == nullptr) return r;
  r.epoch = p->epoch;
  r.member = p->primary;
  // Not placed yet (bootstrap): published here, as a node alone does. Placed here: primary.
  if (p->primary == 0 || p->primary == cluster_->header.member_id) return r;
  r.local = false;
  const cluster::Member* m = map.FindMember(p->primary);
  if (m == nullptr || m->endpoints.api.empty()) {
    r.unreachable = true;
  } else {
    r.endpoint = m->endpoints.api;
  }
  return r;
}

void Engine::RoutePublish(PublishJob job, const PresenceEntry* publisher, PublishDone done) {
  if (auto resolved = table_.Resolve(job.channel); !resolved) return done(resolved.error());
  const Route route = RouteOf(job.channel);
  if (route.local) return PublishLocal(std::move(job), publisher, std::move(done), route);
  ForwardPublish(route, std::move(job), std::move(done), 0);
}

void Engine::ForwardPublish(const Route& route, PublishJob job, PublishDone done, int attempt) {
  if (route.unreachable) return done(Errc::kUnavailable);
  ForwardRequest req;
  req.partition = route.partition;
  req.partition_epoch = route.epoch;
  req.sender = cluster_->header.member_id;
  req.channel = job.channel;
  req.data = job.data;
  req.info = job.info;
  req.tags = job.tags;
  req.skip_history = job.skip_history;
  auto on_reply = [this, job = std::move(job), done, attempt,
                   route](const ForwardReply* reply) mutable {
    if (reply == nullptr) return done(Errc::kUnavailable);  // timed out
    switch (reply->status) {
      case ForwardStatus::kOk:
        return done(PublishResult{reply->offset, reply->epoch});
      case ForwardStatus::kError: {
        const auto e = static_cast<Errc>(reply->error);
        return done(IsClientCode(e) ? e : Errc::kInternal);
      }
      case ForwardStatus::kNotPrimary:
      case ForwardStatus::kStaleEpoch:
        break;
    }
    if (attempt > 0) return done(Errc::kUnavailable);  // refused twice: the map is moving
    // Retried once against the newer view: ours when it moved on, else the answerer's.
    Route next = RouteOf(job.channel);
    if (!next.local && next.member == route.member && next.epoch <= route.epoch &&
        reply->primary != 0 && reply->partition_epoch >= route.epoch) {
      const cluster::Member* m = cluster_->map.FindMember(reply->primary);
      if (reply->primary == cluster_->header.member_id || m == nullptr) {
        return done(Errc::kUnavailable);  // our map does not make us primary yet
      }
      next.member = reply->primary;
      next.endpoint = m->endpoints.api;
      next.epoch = reply->partition_epoch;
      next.unreachable = next.endpoint.empty();
    }
    if (next.local) return PublishLocal(std::move(job), nullptr, std::move(done), next);
    ForwardPublish(next, std::move(job), std::move(done), attempt + 1);
  };
  if (!forwarder_->Send(route.member, route.endpoint, std::move(req), std::move(on_reply))) {
    // Bounds reached or the pipe to the primary is full; on_reply was not called.
    Log().debug("forward to member {} refused (in flight {})", route.member,
                forwarder_->in_flight());
    return done(Errc::kUnavailable);
  }
}

void Engine::ServeForward(const ForwardRequest& r,
                          std::function<void(const ForwardReply&)> answer) {
  ForwardReply out;
  out.id = r.id;
  const Route route = RouteOf(r.channel);
  out.primary = route.member;
  out.partition_epoch = route.epoch;
  if (!cluster_->received || !cluster_->map.bootstrapped() || !route.local ||
      route.member != cluster_->header.member_id) {
    out.status = ForwardStatus::kNotPrimary;  // C-6: not (yet) the primary by our map
    return answer(out);
  }
  if (r.partition_epoch < route.epoch) {
    out.status = ForwardStatus::kStaleEpoch;  // C-13
    return answer(out);
  }
  // The sender checked these; they are checked again (every input is validated).
  const Limits& limits = registry_.limits();
  out.status = ForwardStatus::kError;
  if (r.partition != route.partition || r.data.size() > limits.max_publication_bytes ||
      !JsonDepthAtMost(r.data, limits.max_json_depth) ||
      (r.info && !JsonDepthAtMost(*r.info, limits.max_json_depth))) {
    out.error = ToCode(Errc::kBadRequest);
    return answer(out);
  }
  if (auto resolved = table_.Resolve(r.channel); !resolved) {
    const std::error_code ec = resolved.error();
    out.error = ec.category() == BrokerCategory() ? static_cast<uint32_t>(ec.value())
                                                  : ToCode(Errc::kInternal);
    return answer(out);
  }
  PublishJob job{r.channel, r.data, r.info, r.tags, r.skip_history};
  // Answered once committed (C-9), or with the error.
  PublishLocal(
      std::move(job), nullptr,
      [out, answer = std::move(answer)](Result<PublishResult> res) mutable {
        if (!res) {
          const std::error_code ec = res.error();
          out.error = ec.category() == BrokerCategory() ? static_cast<uint32_t>(ec.value())
                                                        : ToCode(Errc::kInternal);
          return answer(out);
        }
        out.status = ForwardStatus::kOk;
        out.offset = res->offset;
        out.epoch = res->epoch;
        answer(out);
      },
      route);
}

}  // namespace chorus::broker::node
