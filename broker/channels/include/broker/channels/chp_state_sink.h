// ChpStateSink: writes channel state into the node's CHP server, one subtree per channel, so
// replicas (the cluster) and `chorus-snapshot` see it. Layout (docs/broker-node.md):
//   <subtree>/top          {n: channel, e: epoch, o: top offset[, c: committed][, p: partition
//                           epoch]} (c, p: a cluster primary's, see TopExtras)
//   <subtree>/h/<slot>     publication with offset o, slot = o % history_size, CHP TTL = history
//   <subtree>/p/<client>   presence entry {u, ci, hi, nd: member id, in: its incarnation}
// Owned by the engine thread (the CHP server's owner).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "broker/channels/channel_table.h"
#include "chp/server.h"

namespace chorus::broker {

// The CHP subtree of a channel: "c." + the name with '%' and '/' escaped as %25 and %2F; names
// whose subtree would exceed chp::kMaxSubtreeBytes become "c#" + a 64-bit hash in hex (the
// `top` record still names the channel).
std::string ChannelSubtree(std::string_view channel);

// What a cluster primary adds to a channel's `top` record (docs/cluster.md §16.2, C-9, C-13):
// the commit position while publications wait for their commit, and the partition epoch it
// writes under. Asked for on every `top` written when set.
struct TopExtras {
  bool has_committed = false;
  uint64_t committed = 0;
  uint64_t partition_epoch = 0;  // 0: not written
};

class ChpStateSink final : public StateSink {
 public:
  using TopExtrasFn = std::function<void(std::string_view channel, TopExtras& out)>;

  ChpStateSink(chp::Server& server, std::string node_id)
      : server_(server), node_id_(std::move(node_id)) {}

  void OnTop(std::string_view channel, const StreamPosition& top) override;
  void OnPublication(std::string_view channel, const Publication& pub, size_t history_size,
                     int64_t ttl_ms) override;
  void OnHistoryRemoved(std::string_view channel, size_t history_size) override;
  void OnPresence(std::string_view channel, const PresenceEntry& entry, bool joined) override;
  void OnChannelDropped(std::string_view channel, size_t history_size) override;

  uint64_t write_errors() const { return write_errors_; }
  void set_top_extras(TopExtrasFn fn) { top_extras_ = std::move(fn); }

  // Deferred `top` records (docs/cluster.md §16.7): OnTop only marks the channel, and FlushTops
  // writes one `top` per marked channel, so N publications to a channel in one engine poll cost
  // N `h/<slot>` updates and one `top` instead of N of each. Off by default (every OnTop
  // written at once, as the unit tests and tools expect).
  void set_defer_tops(bool on) { defer_tops_ = on; }
  // Writes the `top` of every marked channel with `current(channel)`, the position it has now
  // (nullopt: nothing is written: the channel is gone, or its line is another node's).
  using CurrentTopFn = std::function<std::optional<StreamPosition>(std::string_view channel)>;
  void FlushTops(const CurrentTopFn& current);
  size_t pending_tops() const { return pending_tops_.size(); }

 private:
  void Count(bool ok);
  void WriteTop(std::string_view channel, const StreamPosition& top);
  chp::Server& server_;
  std::string node_id_;
  std::string key_;  // reused key buffer
  uint64_t write_errors_ = 0;
  TopExtrasFn top_extras_;
  bool defer_tops_ = false;
  std::unordered_set<std::string> pending_tops_;  // channels touched since the last FlushTops
};

}  // namespace chorus::broker
