// The encoding of cluster map commands (Raft log entries) and map snapshots (Raft snapshots):
// msgpack arrays, the first element a code (docs/cluster.md §3.2). The only place they are
// (de)serialised. Decoding validates every field's type and never throws.
#pragma once

#include <string>
#include <string_view>

#include "cluster/cluster_map.h"

namespace chorus::cluster {

// Command codes on the wire. Never reuse a code.
enum class CommandCode : uint8_t {
  kBootstrap = 1,
  kAddMember = 2,
  kMarkDead = 3,
  kSetLeaving = 4,
  kRemoveMember = 5,
  kAssignPartition = 6,
  kPromoteBackup = 7,
  kSetInSync = 8,
  kAddReplica = 9,
  kRemoveReplica = 10,
  kBeginHandoff = 11,
  kCompleteHandoff = 12,
  kCancelHandoff = 13,
};

inline constexpr uint8_t kMapSnapshotVersion = 1;

std::string EncodeCommand(const Command& cmd);
// kMalformed for bytes that are not one well-typed command array; kUnknownCommand for a code
// this version does not know (a newer node's entry: applied as a no-op, never a divergence).
Result<Command> DecodeCommand(std::string_view bytes);

std::string EncodeMap(const ClusterMap& map);
Result<ClusterMap> DecodeMap(std::string_view bytes);

}  // namespace chorus::cluster
