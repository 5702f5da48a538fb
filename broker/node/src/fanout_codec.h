// The fan-out messages of the cluster-wide server API on the peer endpoint (docs/cluster.md
// §13, §16.4): a node that receives `info`, `channels`, `disconnect`, `unsubscribe`,
// `subscribe`, `send` or `refresh` asks every other member to run the method on its own
// sessions and answer its part. Plain value types; the msgpack encoding is here, used by both
// ends. Message kinds 40-49 are this module's (peer_codec.h lists the ranges).
//   request: [40, id, sender, method, params]   params: the API body, compact JSON text
//   reply:   [41, id, code, body]                code 0: body = the member's part (JSON text);
//                                                else a broker Errc and body = its message
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace chorus::broker::node {

inline constexpr uint32_t kFanoutRequestKind = 40;
inline constexpr uint32_t kFanoutReplyKind = 41;
// The sync scheduler's calls forwarded to the primary of `sync:<user>` (engine_sync.cc): the
// same shapes, method one of sync_submit / sync_status / sync_cancel (or "as_user:" + it).
inline constexpr uint32_t kSyncCallKind = 50;
inline constexpr uint32_t kSyncReplyKind = 51;

struct FanoutRequest {
  uint64_t id = 0;      // the sender's call id (unique per sender process)
  uint64_t sender = 0;  // the sender's member id
  std::string method;   // one of the fanned-out methods
  std::string params;   // the method's params: a JSON object as compact text
  bool operator==(const FanoutRequest&) const = default;
};

struct FanoutReply {
  uint64_t id = 0;
  uint32_t code = 0;  // 0 = ok, else a broker Errc
  std::string body;   // ok: the member's part, JSON text; else the error's message
  bool operator==(const FanoutReply&) const = default;
};

// `kind`: the message kind (the first element); the same shapes serve the sync scheduler's
// forwarded calls, kinds 50/51 (engine_sync.cc).
std::string EncodeFanoutRequest(const FanoutRequest& r, uint32_t kind = kFanoutRequestKind);
std::string EncodeFanoutReply(const FanoutReply& r, uint32_t kind = kFanoutReplyKind);
// False when `bytes` is not a well-formed message of that kind (it is then dropped).
bool DecodeFanoutRequest(std::string_view bytes, FanoutRequest& out,
                         uint32_t kind = kFanoutRequestKind);
bool DecodeFanoutReply(std::string_view bytes, FanoutReply& out, uint32_t kind = kFanoutReplyKind);

}  // namespace chorus::broker::node
