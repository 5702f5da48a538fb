// Peer message 80 (docs/cluster.md C-17, §16.9): a node holding a client subscribe for a
// history channel whose primary is another member asks that primary to open the channel, so
// the copy gets the primary's `top` (epoch) even when nothing was published yet. `[80,
// channel]`, answered `[81]`. Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace chorus::broker::node {

inline constexpr uint32_t kOpenChannelKind = 80;
inline constexpr uint32_t kOpenChannelAnswerKind = 81;

std::string EncodeOpenChannel(std::string_view channel);
// False when `bytes` is not `[80, non-empty string]`.
bool DecodeOpenChannel(std::string_view bytes, std::string& channel);
std::string EncodeOpenChannelAnswer();

}  // namespace chorus::broker::node
