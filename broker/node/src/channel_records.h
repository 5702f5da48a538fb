// The records of a channel's CHP subtree as the node reads them back from another node's CHP
// server (the layout is chp_state_sink.h's): `top` and `h/<slot>`. Used by the interest
// follower (C-16) and the backup follower (C-8, C-13). Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/history.h"
#include "broker/core/presence.h"
#include "chp/replica.h"
#include "chp/types.h"

namespace chorus::broker::node {

// `top`: {n: channel, e: epoch, o: offset, c: committed offset, p: partition epoch}. `c` and
// `p` are written by a primary of a placed partition (docs/cluster.md §16.2): `c` only while
// publications wait for their commit (absent: everything up to `o` is committed), `p` the
// partition epoch the primary wrote under (absent: 0).
struct CopyTop {
  std::string channel;
  StreamPosition top;
  uint64_t committed = 0;
  uint64_t partition_epoch = 0;
};

// The key within its subtree ("top", "h/3"), whether the record carries it whole or not.
std::string_view RelativeKey(std::string_view subtree, std::string_view key);
bool DecodeTop(std::string_view bytes, CopyTop& out);
// `h/<slot>`: {o: offset, t: time_ms, d: data, i: info|nil, g: tags}.
bool DecodePublication(std::string_view bytes, Publication& out);
// `x`: {n: channel, t: time_ms, d: data, i: info|nil, g: tags}: a publication kept in no
// history (C-12); `out.offset` is 0.
bool DecodeEphemeral(std::string_view bytes, std::string& channel, Publication& out);
// `p/<client>`: {u: user, ci: conn info, hi: chan info, nd: member, in: incarnation}
// (docs/cluster.md C-21).
bool DecodePresence(std::string_view client, std::string_view bytes, PresenceEntry& out);

// A channel subtree's snapshot decoded: its `top` (when it has one: channels without history
// have none), the contiguous run of publications ending at top.top.offset (older slots may hold
// an earlier line's leftovers, dropped), and its presence entries. Undecodable records are
// skipped.
struct ChannelSnapshot {
  bool has_top = false;
  CopyTop top;
  std::vector<Publication> run;
  std::vector<PresenceEntry> presence;
};
ChannelSnapshot DecodeChannelSnapshot(std::string_view subtree, const chp::EntryMap& entries);
ChannelSnapshot DecodeChannelSnapshot(std::string_view subtree,
                                      const std::vector<chp::Record>& records);

}  // namespace chorus::broker::node
