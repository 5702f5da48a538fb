// ChannelTable: every channel this node serves, with its options, history, presence and local
// subscribers, and the mirror of that state into CHP subtrees (docs/broker-node.md, "Channel
// state in CHP"). Owned by the engine thread; not thread-safe. No sockets: delivery to the
// subscribers it returns is the engine's job, and the CHP writes go through a StateSink.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/core/errc.h"
#include "broker/core/history.h"
#include "broker/core/namespaces.h"
#include "broker/core/presence.h"
#include "chp/types.h"

namespace chorus::broker {

// A local subscriber: a session of the engine (native client) or, later, a gateway connection.
using SubscriberId = uint64_t;

// Where a channel's replicated state goes. The engine's implementation writes CHP keys
// (chp_state_sink.h); tests record the calls.
class StateSink {
 public:
  virtual ~StateSink() = default;
  virtual void OnTop(std::string_view channel, const StreamPosition& top) = 0;
  // A publication appended to a history of `history_size` slots, each kept `ttl_ms`.
  virtual void OnPublication(std::string_view channel, const Publication& pub, size_t history_size,
                             int64_t ttl_ms) = 0;
  virtual void OnHistoryRemoved(std::string_view channel, size_t history_size) = 0;
  virtual void OnPresence(std::string_view channel, const PresenceEntry& entry, bool joined) = 0;
  // The channel's state was dropped (idle): its subtree can go.
  virtual void OnChannelDropped(std::string_view channel, size_t history_size) = 0;
};

struct Channel {
  std::string name;
  const ChannelOptions* options = nullptr;  // owned by the registry
  std::optional<ChannelHistory> history;    // when options->HistoryEnabled()
  ChannelPresence presence;
  std::unordered_set<SubscriberId> subscribers;
  int64_t last_active_ms = 0;
};

struct PublishOutcome {
  Channel* channel = nullptr;
  Publication publication;  // offset 0 when the channel keeps no history
  std::string epoch;        // "" when the channel keeps no history
};

struct TableStats {
  uint64_t publications = 0;
  uint64_t recovered = 0;
  uint64_t not_recovered = 0;
  uint64_t channels_dropped = 0;
  uint64_t channels_refused = 0;  // Open refused: Limits::max_channels reached
};

class ChannelTable {
 public:
  // `idle_drop_ms`: a channel with no subscribers, no presence and no retained publications is
  // dropped after this long without activity (its epoch and offset are then lost, and a later
  // subscriber with an old position gets recovered:false).
  ChannelTable(const NamespaceRegistry& registry, StateSink* sink, int64_t idle_drop_ms,
               uint64_t seed = std::random_device{}());

  // Where state changes go from now on (the engine sets it once its CHP server is bound).
  void set_sink(StateSink* sink) { sink_ = sink; }

  // How far reads (History, and Subscribe's position and recovery) may see into a channel's
  // history: in a cluster, its commit position (docs/cluster.md C-9); ChannelHistory::kAll
  // shows everything. Unset: everything (a node alone commits at once).
  using ReadLimit = std::function<uint64_t(const Channel&)>;
  void set_read_limit(ReadLimit limit) { read_limit_ = std::move(limit); }

  // Resolves and validates a name (102/106/107); does not create.
  Result<ResolvedChannel> Resolve(std::string_view channel) const {
    return registry_.Resolve(channel);
  }
  Channel* Find(std::string_view channel);
  // Finds or creates (validating the name first). A new channel beyond Limits::max_channels is
  // refused with kLimitExceeded (counted in stats().channels_refused).
  Result<Channel*> Open(std::string_view channel, int64_t now_ms);

  // Appends a publication (history on: next offset, capped, mirrored) and returns it with the
  // channel, whose subscribers the caller delivers to. `info` is the publisher's ClientInfo JSON.
  // `skip_history`: delivered but not kept (offset 0), as Centrifugo's API option.
  Result<PublishOutcome> Publish(std::string_view channel, std::string data,
                                 std::optional<std::string> info,
                                 std::map<std::string, std::string> tags, int64_t now_ms,
                                 bool skip_history = false);

  // Adds a subscriber; with `recover`, answers from history (all-or-nothing). The caller has
  // checked permissions.
  struct SubscribeOutcome {
    Channel* channel = nullptr;
    bool recoverable = false;  // history on: the position means something
    StreamPosition top;
    bool was_recovering = false;
    bool recovered = false;
    std::vector<Publication> publications;
  };
  Result<SubscribeOutcome> Subscribe(std::string_view channel, SubscriberId id, bool recover,
                                     std::string_view epoch, uint64_t offset, int64_t now_ms,
                                     size_t max_recovery = 0);
  void Unsubscribe(Channel& ch, SubscriberId id, int64_t now_ms);

  // Presence changes (mirrored). Return the events to push (join_leave / user_presence decide
  // who gets them; the caller checks the options).
  std::vector<PresenceEvent> Join(Channel& ch, PresenceEntry entry, int64_t now_ms);
  std::vector<PresenceEvent> Leave(Channel& ch, std::string_view client, int64_t now_ms);

  // Reads never create a channel and stop at the read limit (set_read_limit): one the node does not
  // hold answers an empty page at position {offset 0, epoch ""} (a `since` with an epoch or an
  // offset > 0 is then unrecoverable, 112).
  Result<HistoryResult> History(std::string_view channel, const HistoryQuery& q, int64_t now_ms);
  Result<Unit> RemoveHistory(std::string_view channel, int64_t now_ms);

  // Periodic work: expires history by TTL and drops idle channels. Returns channels dropped.
  size_t Sweep(int64_t now_ms);

  // A recovery the engine turned down because its reply would be too large.
  void CountRecoveryTooLarge() {
    --stats_.recovered;
    ++stats_.not_recovered;
  }

  size_t size() const { return channels_.size(); }
  const TableStats& stats() const { return stats_; }
  // Every channel, for the `channels` API and metrics (unordered).
  void ForEach(const std::function<void(const Channel&)>& fn) const;
  const NamespaceRegistry& registry() const { return registry_; }

 private:
  std::string NewEpoch();
  void MaybeDrop(Channel& ch, int64_t now_ms);
  bool Idle(const Channel& ch) const;
  uint64_t Visible(const Channel& ch) const {
    return read_limit_ ? read_limit_(ch) : ChannelHistory::kAll;
  }

  const NamespaceRegistry& registry_;
  StateSink* sink_;
  ReadLimit read_limit_;
  int64_t idle_drop_ms_;
  std::mt19937_64 rng_;
  TableStats stats_;
  std::unordered_map<std::string, std::unique_ptr<Channel>, chp::StringHash, std::equal_to<>>
      channels_;
};

// A random epoch: 8 characters of [0-9A-Za-z].
std::string RandomEpoch(std::mt19937_64& rng);

}  // namespace chorus::broker
