// ChpStateSink: writes channel state into the node's CHP server, one subtree per channel, so
// replicas (the cluster) and `chorus-snapshot` see it. Layout (docs/broker-node.md):
//   <subtree>/top          {n: channel, e: epoch, o: top offset}
//   <subtree>/h/<slot>     publication with offset o, slot = o % history_size, CHP TTL = history
//   <subtree>/p/<client>   presence entry {u, ci, hi, nd: member id, in: its incarnation}
// Owned by the engine thread (the CHP server's owner).
#pragma once

#include <string>
#include <string_view>

#include "broker/channels/channel_table.h"
#include "chp/server.h"

namespace chorus::broker {

// The CHP subtree of a channel: "c." + the name with '%' and '/' escaped as %25 and %2F; names
// whose subtree would exceed chp::kMaxSubtreeBytes become "c#" + a 64-bit hash in hex (the
// `top` record still names the channel).
std::string ChannelSubtree(std::string_view channel);

class ChpStateSink final : public StateSink {
 public:
  ChpStateSink(chp::Server& server, std::string node_id)
      : server_(server), node_id_(std::move(node_id)) {}

  void OnTop(std::string_view channel, const StreamPosition& top) override;
  void OnPublication(std::string_view channel, const Publication& pub, size_t history_size,
                     int64_t ttl_ms) override;
  void OnHistoryRemoved(std::string_view channel, size_t history_size) override;
  void OnPresence(std::string_view channel, const PresenceEntry& entry, bool joined) override;
  void OnChannelDropped(std::string_view channel, size_t history_size) override;

  uint64_t write_errors() const { return write_errors_; }

 private:
  void Count(bool ok);
  chp::Server& server_;
  std::string node_id_;
  std::string key_;  // reused key buffer
  uint64_t write_errors_ = 0;
};

}  // namespace chorus::broker
