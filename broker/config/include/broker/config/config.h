// Configuration of the broker node `chorusd`: one typed value (NodeConfig), parsed from TOML and
// validated in config.cc, then passed by constructor to the components that need a part of it.
// The TOML layout mirrors the structs: `[node]`, `[http]`, `[api]`, `[native]`, `[cluster]`,
// `[client]`, `[scheduler]`, `[channel]`, `[limits]`, `[namespaces.<name>]`. Every key, with its
// default, is in deploy/chorus.example.toml; the rules are in docs/operations.md ("Broker
// configuration").
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "broker/core/errc.h"
#include "broker/core/namespaces.h"

namespace chorus::broker {

enum class LogLevel : uint8_t { kTrace, kDebug, kInfo, kWarn, kError };

// "trace", "debug", "info", "warn", "error" (the spelling used in the TOML file).
std::string_view ToString(LogLevel level);

// [node]
struct NodeSection {
  std::string id;  // "" = chorusd picks a random id at startup; else ^[-a-zA-Z0-9_.]{1,64}$
  LogLevel log_level = LogLevel::kInfo;
  bool operator==(const NodeSection&) const = default;
};

// [http]: the WebSocket gateway, the server API, /health and /metrics share this listener.
struct HttpSection {
  std::string address = "127.0.0.1";
  uint16_t port = 8000;  // 0 = pick a free port (the bound port is logged)
  // Files served on GET/HEAD of paths outside /api, /health, /metrics, /connection/websocket
  // (`/` is its index.html). "" = no static files; else an existing directory (a relative path
  // is relative to chorusd's working directory).
  std::string static_dir;
  // io threads of the gateway, each owning its share of the connections: 1..64, or 0 = auto
  // (clamp(hardware_concurrency / 2, 1, 8); EffectiveHttpThreads).
  uint32_t threads = 0;
  // Open HTTP and WebSocket connections, all threads together; one more is accepted and closed
  // at once. >= 1.
  size_t max_connections = 10'000;
  // Descriptors kept out of the HTTP listener's reach for native clients, CHP peers and the
  // node's own sockets. At start chorusd raises the soft descriptor limit to the hard one and
  // lowers max_connections (with a warning) so that max_connections + reserved_descriptors
  // fit; it refuses to start when fewer than 16 connections would be left. >= 16.
  size_t reserved_descriptors = 256;
  // Hardening (issue 10; docs/operations.md "Security"). Open connections from one client IP
  // address; 0 = no bound (behind a load balancer every connection comes from its address).
  size_t max_connections_per_address = 1'000;
  // A request head must arrive complete within this (from accept, or from its first byte on a
  // kept-alive connection); a head that trickles is dropped. 100..600000.
  int64_t header_timeout_ms = 10'000;
  // WebSocket upgrade Origin patterns ('*' = any run); empty = same origin only (Origin host
  // equals Host); no Origin header (not a browser) is always allowed; ["*"] allows all.
  std::vector<std::string> allowed_origins;
  // "" = GET /metrics open (on this listener); else "Authorization: Bearer <metrics_key>".
  std::string metrics_key;
  bool operator==(const HttpSection&) const = default;
};

// The gateway's io thread count for `http`: `threads`, or for 0 (auto)
// clamp(hardware_concurrency / 2, 1, 8), where 0 (unknown) counts as 1 core.
uint32_t EffectiveHttpThreads(const HttpSection& http, unsigned hardware_concurrency);

// [api]: the HTTP server API (POST /api/<method>).
struct ApiSection {
  std::string key;  // "" = the server API is disabled (not served); else the required key
  bool Enabled() const { return !key.empty(); }
  bool operator==(const ApiSection&) const = default;
};

// [native]: the ZeroMQ endpoint native clients (client/cpp) connect to.
struct NativeSection {
  std::string endpoint = "tcp://127.0.0.1:0";  // port 0 = pick a free port
  // Messages queued for one session in its ZeroMQ pipe; one more and the session is closed as
  // slow (3008). 16..10000000.
  int64_t send_hwm = 10'000;
  // Pipelined commands of one session the node holds before it stops reading that session's
  // socket (back-pressure through TCP): ZeroMQ's receive pipe, counted in frames of the
  // largest size (limits.max_publication_bytes + 64 KiB), at least one. >= 65536.
  int64_t max_input_bytes = 8 << 20;
  // Open connections from one client IP address (TCP); one more is refused during its
  // handshake (a ZAP handler, docs/operations.md "Security"). 0 = no bound.
  size_t max_connections_per_address = 1'000;
  bool operator==(const NativeSection&) const = default;
};

// [cluster]: membership and replication between nodes (CHP).
struct ClusterSection {
  std::string chp_command = "tcp://127.0.0.1:0";    // this node's CHP ROUTER
  std::string chp_publisher = "tcp://127.0.0.1:0";  // this node's CHP XPUB
  // This node's data-plane ROUTER (forwarded publishes, docs/cluster.md §5), advertised in the
  // cluster map as the member's `api` endpoint.
  std::string peer_endpoint = "tcp://127.0.0.1:0";
  // Other nodes' inter-node endpoints (their cluster.endpoint): this node sends its heartbeat to
  // each (the meta group's leader takes it; docs/cluster.md §6). Empty = alone.
  std::vector<std::string> seeds;
  uint32_t replication_factor = 2;  // 1..5: the primary and R-1 backups of each partition
  int64_t heartbeat_ms = 500;       // 10..60000
  int64_t dead_after_ms = 2000;     // silence after which a node is dead; > heartbeat_ms
  // docs/cluster.md C-10: a backup without an ack this long for a waiting publication is
  // reported lagging (0 = dead_after_ms / 2).
  int64_t replica_lag_ms = 0;
  // C-10: publications waiting for their commit on this node as a primary, all channels, in
  // count and in channel + data + info bytes; beyond, publishes fail with 114 (temporary).
  size_t max_uncommitted = 10'000;
  size_t max_uncommitted_bytes = size_t{64} << 20;
  // C-20: on SIGTERM a node in a cluster drains (hands its partitions off, waits to be removed
  // from the map) for at most this long, then disconnects its clients and exits anyway (a log
  // line says so). 0 = no drain: SIGTERM stops at once, as SIGINT always does.
  int64_t drain_timeout_ms = 30'000;
  // C-19: a primary reports `handoff_ready`, so the controller completes planned moves (a
  // joining node taking partitions, a SIGTERM drain, rebalancing back to a rejoined node).
  // Off by default: under load a switch can still lose or repeat a publication on copies
  // (docs/cluster.md §16.11 "Not built"); with it off partitions move only by failover.
  bool planned_handoff = false;
  // ---- The meta group (docs/cluster.md §3.3, C-2; the cluster map) ----
  // This node's member id: stable across restarts, unique in the cluster; >= 1.
  uint64_t member_id = 1;
  // This node's inter-node request endpoint (a ROUTER: heartbeats from other nodes).
  std::string endpoint = "tcp://127.0.0.1:0";
  // This node's Raft address "host:port" (bound AND advertised). Port 0 = pick a free port, only
  // when this member is not among `voters` (alone, or a standby that joins them); as a voter it
  // must be left at its default or equal this member's entry there.
  std::string raft_address = "127.0.0.1:0";
  // The meta group's voters, "<member_id>@<host>:<port>" (1, 3 or 5 entries, C-2), used to
  // bootstrap a fresh Raft log. Empty = this node alone is a one-voter group.
  std::vector<std::string> voters;
  // Directory of the Raft log and snapshots (created when missing). "" = a fresh temporary
  // directory removed at exit (nothing survives a restart).
  std::string data_dir;
  uint32_t partitions = 256;  // 1..65536, fixed when the cluster is created (C-5)
  // Open connections from one IP address to each CHP socket (command, publisher); one more is
  // refused during its handshake. Peers are other nodes and tools: a few each. 0 = no bound.
  size_t chp_max_connections_per_address = 64;
  // The CHP server's bounds (chp::ServerOptions, docs/protocol/chp.md CS-1, CS-8, CS-22):
  // replies wait in a peer's ROUTER pipe up to chp_reply_pipe_hwm messages (1..100000), then in
  // a byte-counted queue: a peer with more than chp_max_peer_pending_bytes queued (>= 65536) gets
  // no further reply, and all peers together hold at most chp_max_pending_bytes (>= the per-peer
  // bound). A command frame over chp_max_command_bytes (>= 65536) disconnects its peer before it
  // is buffered; the mirror's keys and values take at most chp_max_store_bytes (>= 1 MiB).
  int64_t chp_reply_pipe_hwm = 32;
  size_t chp_max_peer_pending_bytes = size_t{32} << 20;
  size_t chp_max_pending_bytes = size_t{1} << 30;
  size_t chp_max_command_bytes = 1024 + (size_t{16} << 20) + 64 * 1024;  // chp::ServerOptions'
  size_t chp_max_store_bytes = size_t{1} << 30;
  // The largest value the CHP mirror takes (chp::ServerOptions::max_value_bytes, CV-2); it also
  // sizes the publisher's HWM from its byte budget (CS-35). 0 = derived from [limits]
  // (EffectiveChpMaxValueBytes); else 65536..8388608. A larger write is refused and counted
  // (chorus_chp_write_errors_total).
  size_t chp_max_value_bytes = 0;
  bool operator==(const ClusterSection&) const = default;
};

// [client]: WebSocket and native client connections.
struct ClientSection {
  std::string token_hmac_secret;          // HS256 connection tokens; "" = not accepted
  std::string token_rsa_public_key_file;  // PEM file for RS256 tokens; "" = not accepted
  bool client_insecure = false;           // accept any connect without a token (development)
  // Centrifugo's token_audience / token_issuer: "" = not checked; else every token's `aud`
  // must be (or, as an array, contain) this value / its `iss` must equal this value.
  std::string token_audience;
  std::string token_issuer;
  int64_t ping_interval_s = 25;      // 1..3600
  int64_t pong_timeout_s = 8;        // 1..3600, < ping_interval_s
  size_t max_queue_bytes = 1 << 20;  // per connection; >= limits.max_publication_bytes
  bool operator==(const ClientSection&) const = default;
};

// [scheduler]: the sync scheduler (broker/scheduler, docs/scheduler.md "Running in chorusd").
// Disabled by default; when enabled the node needs `source_roots`, an existing `catalog_dir`
// and a `[namespaces.sync]` with history (progress events go to channel `sync:<user>`).
struct SchedulerSection {
  bool enabled = false;
  uint32_t slots = 4;  // tasks running at once on this node: 1..1024
  // "<name>:<quantum>" per tier (names ^[a-z0-9_-]{1,32}$, quantum 1..1000), distinct names.
  std::vector<std::string> tiers{"normal:1", "premium:3"};
  int64_t lease_ms = 30'000;           // 100..3600000: a lease not renewed within this expires
  uint32_t max_attempts = 4;           // 1..100: runs of a task before it is failed
  int64_t backoff_base_ms = 500;       // 1..3600000: retry n+1 waits base * 2^(n-1)...
  int64_t backoff_max_ms = 60'000;     // ... capped here; >= backoff_base_ms
  uint32_t catalog_pool_size = 4;      // 1..256: SQLite connections per catalog
  int64_t progress_interval_ms = 250;  // 50..60000: at most one progress event per job this often
  uint32_t files_per_task = 256;       // 1..100000: files per `sync` task of a job
  // A job's source must be a directory under one of these (absolute, existing when enabled).
  std::vector<std::string> source_roots;
  // Catalogs are `<catalog_dir>/<name>.db`; "" allowed only when disabled.
  std::string catalog_dir;
  // External worker processes attach here (docs/protocol/worker.md); "" = none. Their slots add
  // to `slots` (which stays the number of in-process worker threads).
  std::string worker_endpoint;
  uint32_t max_workers = 64;  // 1..4096 attached at once
  bool operator==(const SchedulerSection&) const = default;
};

// A tier of [scheduler] tiers, parsed ("premium:3" -> {"premium", 3}); nullopt when malformed.
struct SchedulerTier {
  std::string name;
  uint32_t quantum = 1;
};
std::optional<SchedulerTier> ParseSchedulerTier(std::string_view text);

struct NodeConfig {
  NodeSection node;
  HttpSection http;
  ApiSection api;
  NativeSection native;
  ClusterSection cluster;
  ClientSection client;
  SchedulerSection scheduler;
  ChannelOptions channel;  // [channel]: options of channels without a namespace
  // [namespaces.<name>]: as in Centrifugo, a namespace does NOT inherit from [channel]; a key
  // it does not set takes the built-in default of ChannelOptions.
  std::map<std::string, ChannelOptions> namespaces;
  Limits limits;

  NamespaceRegistry MakeRegistry() const { return {channel, namespaces, limits}; }
  bool operator==(const NodeConfig&) const = default;
};

// The CHP mirror's max_value_bytes: cluster.chp_max_value_bytes, or for 0 the largest value the
// node writes to it: a publication's data (limits.max_publication_bytes) with the client's
// connection and channel info (each from one client message: at most
// max(64 KiB, 2 x max_publication_bytes, max_publication_bytes + 64 KiB)), or an HTTP API body
// (at most max(1 MiB, 2 x max_publication_bytes + 4 KiB)), whichever is larger, plus 64 KiB for
// keys and fields; within 64 KiB..8 MiB (chp's limit). Defaults: 1,114,112 bytes.
size_t EffectiveChpMaxValueBytes(const NodeConfig& c);

// The error of a config operation: one line, "<source>: <dotted.key>: <reason>", e.g.
// "chorus.toml: http.port: must be 0..65535 (got 70000)"; TOML syntax errors are
// "<source>:<line>:<column>: syntax error: <what toml++ says>".
struct ConfigError {
  std::string message;
};

template <typename T>
class [[nodiscard]] ConfigResult {
 public:
  ConfigResult(T value) : v_(std::move(value)) {}    // NOLINT(google-explicit-constructor)
  ConfigResult(ConfigError e) : v_(std::move(e)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The message; "" when ok.
  const std::string& error() const {
    static const std::string kNone;
    return ok() ? kNone : std::get<1>(v_).message;
  }

 private:
  std::variant<T, ConfigError> v_;
};

// Parses a TOML document. Unknown keys, wrong types and out-of-range values are errors (the
// first one found), then ValidateConfig runs. `source_name` starts every message (a file name).
// Empty text gives the defaults.
ConfigResult<NodeConfig> ParseConfig(std::string_view toml_text, std::string source_name);

// Reads and parses a file; messages start with `path` as given.
ConfigResult<NodeConfig> LoadConfig(const std::string& path);

// Checks a whole config (also one built in code): value ranges, endpoints, cross-field rules
// (dead_after_ms > heartbeat_ms, pong_timeout_s < ping_interval_s, listeners that would bind
// the same port, ...) and NamespaceRegistry::Validate(). Returns the first problem as
// "<dotted.key>: <reason>", or nullopt when valid.
std::optional<std::string> ValidateConfig(const NodeConfig& config);

// Sets one key from a command line flag (`--set http.port=0`): `value` is read as a TOML value
// when it is one (`true`, `5`, `["a", "b"]`, `"quoted"`); string keys take the text as it is,
// list keys also accept `a,b,c`. Namespace keys (`namespaces.chat.presence`) create the
// namespace with the built-in defaults when it does not exist. Then the whole config is
// validated; on error `config` is unchanged and the message is "--set: <key>: <reason>".
ConfigResult<Unit> ApplyOverride(NodeConfig& config, std::string_view dotted_key,
                                 std::string_view value);

// Applies several "key=value" overrides (spaces and tabs around key and value are dropped; quote
// a string value that needs them: `api.key=" x"`) in order, then validates once (so the order of
// related flags such as heartbeat_ms and dead_after_ms does not matter). All or nothing.
ConfigResult<Unit> ApplyOverrides(NodeConfig& config, const std::vector<std::string>& assignments);

// One line for the startup log: listeners, cluster settings, auth mode, namespaces. Never
// prints secrets (api.key, client.token_hmac_secret).
std::string DescribeConfig(const NodeConfig& config);

// Every key the parser knows, dotted, in file order; namespace keys as "namespaces.<name>.<key>".
std::vector<std::string> ConfigKeys();

// One entry of cluster.voters: "<member_id>@<host>:<port>".
struct ClusterVoter {
  uint64_t id = 0;
  std::string address;  // host:port
  bool operator==(const ClusterVoter&) const = default;
};
// The voters of a validated config, in file order.
std::vector<ClusterVoter> ClusterVoters(const ClusterSection& cluster);

}  // namespace chorus::broker
