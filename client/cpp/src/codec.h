// Msgpack encoding of commands and decoding of replies and pushes (docs/protocol/native.md,
// "Frames", "Methods", "Push bodies"). The only file that knows msgpack. Decoders ignore unknown
// keys, treat a missing key as its default, and refuse a key of the wrong type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "chorus/client/errc.h"
#include "chorus/client/types.h"

namespace chorus::client::detail {

// --- Commands: `{id, method, params}`.
std::string EncodeConnect(uint64_t id, std::string_view token, std::string_view user,
                          std::string_view info);
std::string EncodeSubscribe(uint64_t id, std::string_view channel, bool recover,
                            std::string_view epoch, uint64_t offset, std::string_view info);
std::string EncodeUnsubscribe(uint64_t id, std::string_view channel);
std::string EncodePublish(uint64_t id, std::string_view channel, std::string_view data);
std::string EncodePresence(uint64_t id, std::string_view channel, std::string_view cursor,
                           uint32_t limit);
std::string EncodePresenceStats(uint64_t id, std::string_view channel);
std::string EncodeHistory(uint64_t id, std::string_view channel, const HistoryOptions& options);
std::string EncodeSyncSubmit(uint64_t id, const SyncSubmitOptions& options);
// sync_status {job} (job != 0) or {} (the session user's jobs).
std::string EncodeSyncStatus(uint64_t id, uint64_t job);
std::string EncodeSyncCancel(uint64_t id, uint64_t job);
std::string EncodePing(uint64_t id);
std::string EncodeDisconnect(uint64_t id);

// --- Frames from the node: a reply (`id`) or a push (`push`). The objects point into `handle`.
struct ServerFrame {
  msgpack::object_handle handle;
  bool is_push = false;
  // Reply.
  uint64_t id = 0;
  std::optional<Error> error;
  const msgpack::object* result = nullptr;  // nullptr when absent (treated as an empty map)
  // Push.
  std::string push;
  std::string channel;
  const msgpack::object* data = nullptr;  // nullptr when absent
};

// Errc::kMalformed when `bytes` is not one msgpack map with a usable `id` or `push`.
Result<ServerFrame> DecodeFrame(std::string_view bytes);

Result<ConnectResult> DecodeConnectResult(const msgpack::object* o);
Result<SubscribeResult> DecodeSubscribeResult(const msgpack::object* o);
Result<PublishResult> DecodePublishResult(const msgpack::object* o);
Result<PresenceResult> DecodePresenceResult(const msgpack::object* o);
Result<PresenceStatsResult> DecodePresenceStatsResult(const msgpack::object* o);
Result<HistoryResult> DecodeHistoryResult(const msgpack::object* o);
Result<uint64_t> DecodeSyncSubmitResult(const msgpack::object* o);            // {job}
Result<SyncJob> DecodeSyncStatusResult(const msgpack::object* o);             // {job: J}
Result<std::vector<SyncJob>> DecodeSyncJobsResult(const msgpack::object* o);  // {jobs: [J]}
Result<Unit> DecodeEmptyResult(const msgpack::object* o);

// Push bodies.
Result<Publication> DecodePublication(const msgpack::object* o);
Result<ClientInfo> DecodeJoinLeave(const msgpack::object* o);  // `{info: {...}}`
Result<DisconnectInfo> DecodeDisconnect(const msgpack::object* o);
// `unsubscribe` push: code and reason in a DisconnectInfo (reconnect unused).
Result<DisconnectInfo> DecodeUnsubscribe(const msgpack::object* o);

}  // namespace chorus::client::detail
