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
#include <string>
#include <string_view>

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

 private:
  void Count(bool ok);
  chp::Server& server_;
  std::string node_id_;
  std::string key_;  // reused key buffer
  uint64_t write_errors_ = 0;
  TopExtrasFn top_extras_;
};

}  // namespace chorus::broker
