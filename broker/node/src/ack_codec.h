// The backups' acknowledgements to their primaries (docs/cluster.md C-8, §16.2), a peer message
// on the primary's data-plane ROUTER (peer_codec.h numbering: this is type 10):
//   [10, sender, [[partition, partition_epoch, channel, channel_epoch, offset], ...]]
// Each entry says: the sender applied `channel` up to `offset` of `channel_epoch`, following
// the partition at `partition_epoch` (its own map's). Sent after every poll that applied
// something, and every heartbeat for every channel copied from that primary (a lost message is
// repaired, and an idle caught-up backup is seen, C-11). Plain value types and msgpack.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "peer_codec.h"  // PeerMessageKind

namespace chorus::broker::node {

inline constexpr uint32_t kAckKind = 10;

struct AckEntry {
  uint32_t partition = 0;
  uint64_t partition_epoch = 0;
  std::string channel;
  std::string epoch;
  uint64_t offset = 0;
  bool operator==(const AckEntry&) const = default;
};

struct AckMessage {
  uint64_t sender = 0;
  std::vector<AckEntry> acks;
  bool operator==(const AckMessage&) const = default;
};

std::string EncodeAck(const AckMessage& m);
bool DecodeAck(std::string_view bytes, AckMessage& out);

}  // namespace chorus::broker::node
