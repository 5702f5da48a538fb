// /metrics as the engine answers it through the gateway bridge: Prometheus text of the engine's
// own counters and gauges (docs/broker-node.md, "Observability"), plus the scheduler's when it
// runs. Owned by the engine thread, like everything it reads.
#include <string>

#include "address_guard.h"
#include "broker/node/engine.h"
#include "commit.h"
#include "fanout.h"
#include "forwarder.h"
#include "interest.h"
#include "presence_link.h"
#include "sync_service.h"

namespace chorus::broker::node {

Engine::HttpAnswer Engine::Metrics() const {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value,
                    const char* labels = "") {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += labels;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
  };
  size_t subs = 0;
  sessions_.ForEach([&](const Session& s) { subs += s.subs.size(); });
  const auto& ts = table_.stats();
  const auto& cs = chp_->stats();
  metric("chorus_connections", "gauge", "Client sessions connected.", sessions_.size());
  metric("chorus_subscriptions", "gauge", "Subscriptions of connected sessions.", subs);
  metric("chorus_channels", "gauge", "Channels with state on this node.", table_.size());
  metric("chorus_channels_limit", "gauge", "Channels this node may hold (limits.max_channels).",
         registry_.limits().max_channels);
  metric("chorus_channels_refused_total", "counter",
         "New channels refused because limits.max_channels was reached.", ts.channels_refused);
  metric("chorus_publications_total", "counter", "Publications accepted.", ts.publications);
  metric("chorus_deliveries_total", "counter", "Messages handed to subscriber connections.",
         counters_.deliveries);
  out += "# HELP chorus_drops_total Messages not delivered, by reason.\n";
  out += "# TYPE chorus_drops_total counter\n";
  out += "chorus_drops_total{reason=\"slow\"} " + std::to_string(counters_.drops_slow) + "\n";
  out += "chorus_drops_total{reason=\"gone\"} " + std::to_string(counters_.drops_gone) + "\n";
  out += "# HELP chorus_recovery_total Subscriptions that asked to recover, by outcome.\n";
  out += "# TYPE chorus_recovery_total counter\n";
  out += "chorus_recovery_total{outcome=\"recovered\"} " + std::to_string(ts.recovered) + "\n";
  out +=
      "chorus_recovery_total{outcome=\"not_recovered\"} " + std::to_string(ts.not_recovered) + "\n";
  out += "# HELP chorus_disconnects_total Sessions closed, by close code.\n";
  out += "# TYPE chorus_disconnects_total counter\n";
  for (const auto& [code, n] : counters_.disconnects) {
    out += "chorus_disconnects_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) +
           "\n";
  }
  metric("chorus_connects_total", "counter", "Sessions opened.", counters_.connects);
  metric("chorus_native_commands_total", "counter", "Native protocol commands received.",
         counters_.commands);
  metric("chorus_native_malformed_total", "counter", "Native frames dropped as malformed.",
         counters_.malformed);
  metric("chorus_api_requests_total", "counter", "Bridge requests (API, health, metrics).",
         counters_.api_requests);
  metric("chorus_chp_changes_total", "counter", "Sequenced changes of the CHP state mirror.",
         cs.changes);
  metric("chorus_chp_write_errors_total", "counter", "CHP mirror writes refused.",
         sink_->write_errors());
  out += "# HELP chorus_queue_depth Bytes or entries waiting in bounded queues.\n";
  out += "# TYPE chorus_queue_depth gauge\n";
  out +=
      "chorus_queue_depth{queue=\"chp_replies_bytes\"} " + std::to_string(cs.pending_bytes) + "\n";
  out += "chorus_queue_depth{queue=\"chp_replies_messages\"} " +
         std::to_string(chp_->pending_messages()) + "\n";
  out +=
      "chorus_queue_depth{queue=\"chp_replies_peers\"} " + std::to_string(cs.pending_peers) + "\n";
  out += "chorus_queue_depth{queue=\"closed_sessions\"} " +
         std::to_string(sessions_.closed_size()) + "\n";
  out += "chorus_queue_depth{queue=\"uncommitted\"} " + std::to_string(commit_->count) + "\n";
  out += "chorus_queue_depth{queue=\"forward_in_flight\"} " +
         std::to_string(forwarder_->in_flight()) + "\n";
  out += "chorus_queue_depth{queue=\"presence_out_bytes\"} " +
         std::to_string(presence_->queued_bytes()) + "\n";
  out += "chorus_queue_depth{queue=\"fanout_in_flight\"} " + std::to_string(fanout_->in_flight()) +
         "\n";
  out += "chorus_queue_depth{queue=\"fanout_in_flight_bytes\"} " +
         std::to_string(fanout_->in_flight_bytes()) + "\n";
  // The CHP server's reply bounds (cluster.chp_*; docs/operations.md "Security").
  const auto& co = options_.config.cluster;
  metric("chorus_chp_replies_peak_bytes", "gauge",
         "Most reply bytes queued behind full pipes at once, all CHP peers.", cs.pending_peak);
  metric("chorus_chp_peer_replies_peak_bytes", "gauge",
         "Most reply bytes one CHP peer had queued at once.", cs.peer_pending_peak);
  metric("chorus_chp_peer_pending_limit_bytes", "gauge",
         "cluster.chp_max_peer_pending_bytes: a peer over it gets no further reply.",
         co.chp_max_peer_pending_bytes);
  metric("chorus_chp_pending_limit_bytes", "gauge",
         "cluster.chp_max_pending_bytes: queued reply bytes of all CHP peers.",
         co.chp_max_pending_bytes);
  out +=
      "# HELP chorus_chp_replies_dropped_total CHP replies dropped, by the bound that dropped "
      "them (peer: a peer's own bound, the reply refused; total: all peers' bound, the peer's "
      "queue discarded).\n";
  out += "# TYPE chorus_chp_replies_dropped_total counter\n";
  out += "chorus_chp_replies_dropped_total{bound=\"peer\"} " +
         std::to_string(cs.dropped_over_peer) + "\n";
  out += "chorus_chp_replies_dropped_total{bound=\"total\"} " +
         std::to_string(cs.dropped_over_total) + "\n";
  metric("chorus_chp_store_bytes", "gauge", "Key and value bytes in the CHP mirror.",
         chp_->store().bytes());
  metric("chorus_chp_store_limit_bytes", "gauge", "cluster.chp_max_store_bytes.",
         co.chp_max_store_bytes);
  metric("chorus_chp_value_limit_bytes", "gauge",
         "The CHP mirror's largest value (cluster.chp_max_value_bytes, or derived from [limits]).",
         EffectiveChpMaxValueBytes(options_.config));
  metric("chorus_chp_publisher_hwm", "gauge",
         "The CHP publisher's SNDHWM per subscriber, in messages (CS-35).", chp_->publisher_hwm());
  if (guard_) {
    out +=
        "# HELP chorus_connections_refused_per_address_total Connections refused during the "
        "handshake: their address held the listener's per-address bound.\n";
    out += "# TYPE chorus_connections_refused_per_address_total counter\n";
    for (const auto& [listener, n] : guard_->refused()) {
      out += "chorus_connections_refused_per_address_total{listener=\"" + listener + "\"} " +
             std::to_string(n) + "\n";
    }
  }
  // The data plane (docs/cluster.md §5, C-6).
  const ForwarderStats& fs = forwarder_->stats();
  metric("chorus_cluster_pub_forwarded_total", "counter",
         "Publishes this node forwarded to their partition's primary.", fs.forwarded);
  metric("chorus_cluster_pub_served_total", "counter",
         "Forwarded publishes this node received from other nodes and answered.", fs.served);
  metric("chorus_cluster_forward_timeouts_total", "counter",
         "Forwarded publishes given up without a reply (the publisher got 114).", fs.timeouts);
  metric("chorus_cluster_forward_refused_total", "counter",
         "Publishes not forwarded: in-flight bounds reached or the peer pipe full (114).",
         fs.refused);
  metric("chorus_cluster_updates_received_total", "counter",
         "CHP updates received from other primaries for channels followed here (C-16).",
         interest_->updates_received());
  metric("chorus_cluster_followed_channels", "gauge",
         "Channels followed on another node's CHP server for local subscribers (C-16).",
         interest_->followed().size());
  metric("chorus_cluster_followed_live", "gauge",
         "Followed channels whose copy is live (snapshot applied, updates flowing).",
         interest_->live());
  metric("chorus_cluster_remote_delivered_total", "counter",
         "Publications of other primaries delivered to local subscribers.", remote_delivered_);
  metric("chorus_cluster_ephemeral_mirrored_total", "counter",
         "Publications kept in no history written for the nodes following them (C-12).",
         ephemeral_mirrored_);
  metric("chorus_cluster_remote_gaps_total", "counter",
         "Publications of other primaries applied after a jump in offsets.", remote_gaps_);
  metric("chorus_cluster_lines_continued_total", "counter",
         "Copied channel lines continued here after a promotion (epoch kept).", lines_continued_);
  metric("chorus_cluster_lines_lost_total", "counter",
         "Copied channel lines not continued when this node became primary (new epoch).",
         lines_lost_);
  metric("chorus_cluster_lines_left_total", "counter",
         "Channel lines this node gave up when another member became primary (C-15).", lines_left_);
  out += CommitMetricsText();
  out += LeaseMetricsText();
  // Cluster-wide presence (docs/cluster.md §10, C-21..C-23).
  const PresenceLinkStats& ps = presence_->stats();
  metric("chorus_cluster_presence_sent_total", "counter",
         "Joins and leaves of local clients sent to their channel's primary (C-21).",
         ps.updates_sent);
  metric("chorus_cluster_presence_dropped_total", "counter",
         "Presence updates not sent: the per-member queue bound was reached.", ps.updates_dropped);
  metric("chorus_cluster_presence_applied_total", "counter",
         "Presence updates from other nodes applied here as the primary.", ps.updates_applied);
  metric("chorus_cluster_presence_refused_total", "counter",
         "Presence updates refused: not primary, stale epoch, sender dead or restarted.",
         ps.updates_refused);
  metric("chorus_cluster_presence_queries_total", "counter",
         "Presence reads asked of another node's primary (no live copy here).", ps.queries_sent);
  metric("chorus_cluster_presence_served_total", "counter",
         "Presence reads answered for other nodes.", ps.queries_served);
  metric("chorus_cluster_presence_query_timeouts_total", "counter",
         "Presence reads asked of a primary that did not answer in time (114).", ps.query_timeouts);
  metric("chorus_cluster_presence_dead_dropped_total", "counter",
         "Entries of dead or restarted members removed by this primary (C-22).",
         ps.dead_entries_dropped);
  metric("chorus_cluster_presence_reasserted_total", "counter",
         "Local entries re-asserted after a primary change (C-23).", ps.reasserted);
  metric("chorus_cluster_presence_unheld_dropped_total", "counter",
         "Entries removed by this primary because their node no longer holds them (C-23).",
         ps.unheld_dropped);
  // The cluster-wide server API (docs/cluster.md §13, §16.4).
  const FanoutStats& fan = fanout_->stats();
  metric("chorus_cluster_fanout_calls_total", "counter",
         "Cluster-wide API calls this node sent to the other members.", fan.calls);
  metric("chorus_cluster_fanout_requests_total", "counter",
         "Fan-out requests sent (one per member of a call).", fan.requests);
  metric("chorus_cluster_fanout_timeouts_total", "counter",
         "Members that did not answer a fan-out in time (the call got 114).", fan.timeouts);
  metric("chorus_cluster_fanout_refused_total", "counter",
         "Cluster-wide calls refused: in-flight bounds reached (114).", fan.refused);
  metric("chorus_cluster_fanout_served_total", "counter",
         "Fan-out requests from other members answered by this node.", fan.served);
  metric("chorus_cluster_fanout_malformed_total", "counter",
         "Fan-out frames dropped as undecodable.", fan.malformed);
  if (sync_) {
    out += sync_->MetricsText();
    metric("chorus_scheduler_calls_forwarded_total", "counter",
           "sync_* calls forwarded to the primary of sync:<user>.", sync_calls_forwarded_);
    metric("chorus_scheduler_calls_retried_total", "counter",
           "Forwarded sync_* calls answered not primary and retried.", sync_calls_retried_);
    metric("chorus_scheduler_calls_served_total", "counter",
           "sync_* calls from other members served here.", sync_calls_->stats().served);
    metric("chorus_scheduler_adoptions_total", "counter",
           "Users whose s.<user> copy was taken over at a promotion.", sync_adoptions_);
    metric("chorus_scheduler_adoptions_failed_total", "counter",
           "Users whose s.<user> copy could not be taken over.", sync_adoptions_failed_);
  }
  return {200, "text/plain; version=0.0.4", out};
}

}  // namespace chorus::broker::node
