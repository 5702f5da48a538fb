// The node-to-node data-plane messages on the peer endpoint (docs/cluster.md §5, C-6, C-7,
// C-13): a publish forwarded by any node to its channel's partition primary, and the primary's
// answer. Plain value types; the msgpack encoding is here and used by both ends.
//   request: [1, id, partition, partition_epoch, sender, channel, data, info|nil, tags, skip]
//   reply:   [2, id, status, error, offset, epoch, primary, partition_epoch]
// Every peer message is a msgpack array whose first element is its kind: 1-2 here, 40-49 the
// cluster-wide server API's fan-out (fanout_codec.h); the peer ROUTER dispatches on it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace chorus::broker::node {

struct ForwardRequest {
  uint64_t id = 0;               // the sender's request id (unique per sender process)
  uint32_t partition = 0;        // C-5 partition of `channel`
  uint64_t partition_epoch = 0;  // the partition epoch the sender's map holds (C-13)
  uint64_t sender = 0;           // the sender's member id
  std::string channel;
  std::string data;  // compact JSON text, checked by the sender
  std::optional<std::string> info;
  std::map<std::string, std::string> tags;
  bool skip_history = false;
  bool operator==(const ForwardRequest&) const = default;
};

enum class ForwardStatus : uint32_t {
  kOk = 0,
  kNotPrimary = 1,  // C-6: the receiver's map names another primary (`primary`, 0 = none)
  kStaleEpoch = 2,  // C-13: the request's partition epoch is older than the receiver's
  kError = 3,       // the publish failed on the primary: `error` is a broker Errc
};

struct ForwardReply {
  uint64_t id = 0;
  ForwardStatus status = ForwardStatus::kOk;
  uint32_t error = 0;  // broker Errc when status == kError
  uint64_t offset = 0;
  std::string epoch;             // the channel epoch ("" when the channel keeps no history)
  uint64_t primary = 0;          // the receiver's map: the partition's primary
  uint64_t partition_epoch = 0;  // the receiver's map: the partition's epoch
  bool operator==(const ForwardReply&) const = default;
};

std::string EncodeForwardRequest(const ForwardRequest& r);
std::string EncodeForwardReply(const ForwardReply& r);
// False when `bytes` is not a well-formed message of that kind (it is then dropped).
bool DecodeForwardRequest(std::string_view bytes, ForwardRequest& out);
bool DecodeForwardReply(std::string_view bytes, ForwardReply& out);
// The kind of a peer message: its first element, 0 when `bytes` is not a msgpack array
// starting with an unsigned integer below 256. Kinds: 1/2 forward request/reply (here),
// 10-19 the commit path (ack_codec.h), 30-39 presence (presence_codec.h), 40-49 the
// server API fan-out (fanout.h).
uint32_t PeerMessageKind(std::string_view bytes);

}  // namespace chorus::broker::node
