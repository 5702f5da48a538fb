// NodeConfig's field tables (config_fields.h): one entry per key with its TOML type, setter and
// value check, walked by the reader, the overrides, ValidateConfig and ConfigKeys (config.cc),
// so they cannot disagree.
#include "config_fields.h"

#include <array>
#include <filesystem>
#include <limits>
#include <type_traits>
#include <utility>

namespace chorus::broker::config_detail {

inline constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();
// http.threads: HttpOptions::kMaxIoThreads of the gateway (which this module does not depend on).
inline constexpr int64_t kMaxHttpThreads = 64;
inline constexpr std::array kLevels = {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo,
                                       LogLevel::kWarn, LogLevel::kError};

std::string_view TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// A user's string in a message: quoted, control characters and quotes escaped, at most 80 bytes.
std::string Quoted(std::string_view s) {
  static constexpr size_t kMax = 80;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "\"";
}

std::string Dotted(std::string_view a, std::string_view b) {
  std::string key(a);
  key += '.';
  key += b;
  return key;
}

Problem Expected(const std::string& key, std::string_view what, const toml::node& n) {
  return key + ": expected " + std::string(what) + " (got " + std::string(TypeName(n)) + ")";
}

template <typename V>
Problem OutOfRange(const std::string& key, int64_t lo, int64_t hi, V got) {
  const std::string range =
      hi == kI64Max ? ">= " + std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi);
  return key + ": must be " + range + " (got " + std::to_string(got) + ")";
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    const size_t at = s.find(sep);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return parts;
    s.remove_prefix(at + 1);
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// ---- Value checks shared by several keys ----------------------------------------------------

using StringCheck = Problem (*)(std::string_view value, const std::string& key);

Problem CheckNodeId(std::string_view v, const std::string& key) {
  if (v.empty()) return std::nullopt;  // chorusd picks a random id
  bool ok = v.size() <= 64;
  for (char c : v) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.');
  }
  if (ok) return std::nullopt;
  return key + ": must match ^[-a-zA-Z0-9_.]{1,64}$ (got " + Quoted(v) + ")";
}

Problem CheckHost(std::string_view v, const std::string& key) {
  const bool ok = !v.empty() && v.find_first_of(" \t\r\n/") == std::string_view::npos;
  if (ok) return std::nullopt;
  return key + ": must be a host name or IP address (got " + Quoted(v) + ")";
}

Problem CheckOriginPattern(std::string_view v, const std::string& key) {
  bool ok = !v.empty();
  for (char c : v) ok = ok && static_cast<unsigned char>(c) > 0x20 && c != 0x7F;
  if (ok) return std::nullopt;
  return key + ": must be a non-empty origin pattern without spaces (got " + Quoted(v) + ")";
}

Problem CheckStaticDir(std::string_view v, const std::string& key) {
  if (v.empty()) return std::nullopt;  // no static files
  std::error_code ec;
  if (std::filesystem::is_directory(std::filesystem::path(v), ec)) return std::nullopt;
  return key + ": must be an existing directory (got " + Quoted(v) + ")";
}

Problem CheckTier(std::string_view v, const std::string& key) {
  if (ParseSchedulerTier(v)) return std::nullopt;
  return key + ": expected \"<name>:<quantum>\" with name ^[a-z0-9_-]{1,32}$ and quantum " +
         "1..1000 (got " + Quoted(v) + ")";
}

Problem CheckAbsolutePath(std::string_view v, const std::string& key) {
  if (!v.empty() && v.front() == '/') return std::nullopt;
  return key + ": must be an absolute path (got " + Quoted(v) + ")";
}

bool ParsePort(std::string_view s, int64_t& port) {
  if (s.empty() || s.size() > 5) return false;
  port = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    port = port * 10 + (c - '0');
  }
  return port <= 65535;
}

// Reads `v` as an endpoint to bind (`bind`: port 0..65535 or *) or to connect to (a host that
// is not a wildcard and a port 1..65535).
Problem ParseEndpoint(std::string_view v, const std::string& key, bool bind, Endpoint& ep) {
  const size_t sep = v.find("://");
  if (sep != std::string_view::npos) {
    ep.transport = v.substr(0, sep);
    ep.address = v.substr(sep + 3);
  }
  const bool known = ep.transport == "tcp" || ep.transport == "ipc" || ep.transport == "inproc";
  if (sep == std::string_view::npos || !known || ep.address.empty()) {
    return key + ": expected tcp://host:port, ipc://path or inproc://name (got " + Quoted(v) + ")";
  }
  if (ep.transport != "tcp") return std::nullopt;
  const size_t colon = ep.address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return key + ": expected tcp://host:port (got " + Quoted(v) + ")";
  }
  ep.host = ep.address.substr(0, colon);
  const std::string_view port = ep.address.substr(colon + 1);
  if (bind) {
    if (port == "*" || ParsePort(port, ep.port)) return std::nullopt;
    return key + ": port must be 0..65535 or * (got " + Quoted(v) + ")";
  }
  if (ep.host != "*" && ParsePort(port, ep.port) && ep.port > 0) return std::nullopt;
  return key + ": expected a host and a port 1..65535 to connect to (got " + Quoted(v) + ")";
}

Problem CheckBindEndpoint(std::string_view v, const std::string& key) {
  Endpoint ep;
  return ParseEndpoint(v, key, /*bind=*/true, ep);
}

// "" (off) or an endpoint to bind.
Problem CheckOptionalBindEndpoint(std::string_view v, const std::string& key) {
  if (v.empty()) return std::nullopt;
  return CheckBindEndpoint(v, key);
}

Problem CheckSeed(std::string_view v, const std::string& key) {
  Endpoint ep;
  return ParseEndpoint(v, key, /*bind=*/false, ep);
}

bool ParseRaftAddress(std::string_view v, bool allow_zero) {
  const size_t colon = v.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view host = v.substr(0, colon);
  int64_t port = 0;
  if (!ParsePort(v.substr(colon + 1), port) || (port == 0 && !allow_zero)) return false;
  return !CheckHost(host, "").has_value() && host != "*" && host != "0.0.0.0" && host != "::";
}

bool ParseVoter(std::string_view v, uint64_t& id, std::string& address) {
  const size_t at = v.find('@');
  if (at == std::string_view::npos || at == 0 || at > 19) return false;
  uint64_t n = 0;
  for (char c : v.substr(0, at)) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n == 0 || n > static_cast<uint64_t>(kI64Max)) return false;
  if (!ParseRaftAddress(v.substr(at + 1), /*allow_zero=*/false)) return false;
  id = n;
  address = std::string(v.substr(at + 1));
  return true;
}

Problem CheckRaftAddress(std::string_view v, const std::string& key) {
  if (ParseRaftAddress(v, /*allow_zero=*/true)) return std::nullopt;
  return key + ": expected host:port with a host that is not a wildcard (got " + Quoted(v) + ")";
}

Problem CheckVoter(std::string_view v, const std::string& key) {
  uint64_t id = 0;
  std::string address;
  if (ParseVoter(v, id, address)) return std::nullopt;
  return key + ": expected <member_id>@<host>:<port> with member_id >= 1 and port 1..65535 (got " +
         Quoted(v) + ")";
}

// ---- Field tables -----------------------------------------------------------------------------

template <typename S>
Field<S> BoolField(std::string_view name, bool S::*member) {
  auto set = [member](const toml::node& n, S& s, const std::string& key) -> Problem {
    const auto* v = n.as_boolean();
    if (v == nullptr) return Expected(key, "a boolean", n);
    s.*member = v->get();
    return std::nullopt;
  };
  return {name, Kind::kBool, set, nullptr};
}

template <typename S, typename M>
Field<S> IntField(std::string_view name, M S::*member, int64_t lo, int64_t hi) {
  static_assert(std::is_integral_v<M> && !std::is_same_v<M, bool>);
  auto set = [member, lo, hi](const toml::node& n, S& s, const std::string& key) -> Problem {
    const auto* v = n.as_integer();
    if (v == nullptr) return Expected(key, "an integer", n);
    const int64_t x = v->get();
    if (x < lo || x > hi) return OutOfRange(key, lo, hi, x);
    s.*member = static_cast<M>(x);
    return std::nullopt;
  };
  auto check = [member, lo, hi](const S& s, const std::string& key) -> Problem {
    const M x = s.*member;
    if (std::cmp_less(x, lo) || std::cmp_greater(x, hi)) return OutOfRange(key, lo, hi, x);
    return std::nullopt;
  };
  return {name, Kind::kInt, set, check};
}

template <typename S>
Field<S> StringField(std::string_view name, std::string S::*member, StringCheck checker) {
  auto set = [member](const toml::node& n, S& s, const std::string& key) -> Problem {
    const auto* v = n.as_string();
    if (v == nullptr) return Expected(key, "a string", n);
    s.*member = v->get();
    return std::nullopt;
  };
  std::function<Problem(const S&, const std::string&)> check;
  if (checker != nullptr) {
    check = [member, checker](const S& s, const std::string& key) {
      return checker(s.*member, key);
    };
  }
  return {name, Kind::kString, set, check};
}

// A list of strings; `checker` sees each element with the key "<key>[<index>]".
template <typename S>
Field<S> StringsField(std::string_view name, std::vector<std::string> S::*member,
                      StringCheck checker) {
  auto set = [member](const toml::node& n, S& s, const std::string& key) -> Problem {
    const auto* list = n.as_array();
    if (list == nullptr) return Expected(key, "an array of strings", n);
    std::vector<std::string> values;
    for (size_t i = 0; i < list->size(); ++i) {
      const auto* v = (*list)[i].as_string();
      if (v == nullptr) {
        return Expected(key + "[" + std::to_string(i) + "]", "a string", (*list)[i]);
      }
      values.push_back(v->get());
    }
    s.*member = std::move(values);
    return std::nullopt;
  };
  auto check = [member, checker](const S& s, const std::string& key) -> Problem {
    const std::vector<std::string>& values = s.*member;
    for (size_t i = 0; i < values.size(); ++i) {
      if (auto p = checker(values[i], key + "[" + std::to_string(i) + "]")) return p;
    }
    return std::nullopt;
  };
  return {name, Kind::kStrings, set, check};
}

Field<NodeSection> LogLevelField() {
  auto set = [](const toml::node& n, NodeSection& s, const std::string& key) -> Problem {
    const auto* v = n.as_string();
    if (v == nullptr) return Expected(key, "a string", n);
    for (LogLevel level : kLevels) {
      if (ToString(level) == v->get()) {
        s.log_level = level;
        return std::nullopt;
      }
    }
    return key + ": must be one of trace, debug, info, warn, error (got " + Quoted(v->get()) + ")";
  };
  return {"log_level", Kind::kString, set, nullptr};
}

const Fields<ChannelOptions>& ChannelFields() {
  using O = ChannelOptions;
  static const Fields<O> kFields = {
      BoolField("presence", &O::presence),
      BoolField("join_leave", &O::join_leave),
      BoolField("user_presence", &O::user_presence),
      IntField("history_size", &O::history_size, 0, kU32Max),
      // Any integer: NamespaceRegistry::Validate() reports a negative TTL with its own message.
      IntField("history_ttl_ms", &O::history_ttl_ms, kI64Min, kI64Max),
      BoolField("force_recovery", &O::force_recovery),
      BoolField("allow_recovery", &O::allow_recovery),
      BoolField("allow_subscribe_for_client", &O::allow_subscribe_for_client),
      BoolField("allow_subscribe_for_anonymous", &O::allow_subscribe_for_anonymous),
      BoolField("allow_publish_for_client", &O::allow_publish_for_client),
      BoolField("allow_publish_for_anonymous", &O::allow_publish_for_anonymous),
      BoolField("allow_presence_for_client", &O::allow_presence_for_client),
      BoolField("allow_presence_for_anonymous", &O::allow_presence_for_anonymous),
      BoolField("allow_history_for_client", &O::allow_history_for_client),
      BoolField("allow_history_for_anonymous", &O::allow_history_for_anonymous),
      IntField("presence_page_size", &O::presence_page_size, 0, kU32Max),
  };
  return kFields;
}

template <typename S>
void AddSection(std::vector<NodeField>& out, std::string_view section, S NodeConfig::*member,
                const Fields<S>& fields) {
  for (const Field<S>& f : fields) {
    Field<NodeConfig> g{f.name, f.kind, nullptr, nullptr};
    g.set = [member, set = f.set](const toml::node& n, NodeConfig& c, const std::string& key) {
      return set(n, c.*member, key);
    };
    if (f.check) {
      g.check = [member, check = f.check](const NodeConfig& c, const std::string& key) {
        return check(c.*member, key);
      };
    }
    out.push_back({section, std::move(g)});
  }
}

// Every key outside [namespaces], in file order.
const std::vector<NodeField>& NodeFields() {
  static const std::vector<NodeField> kFields = [] {
    std::vector<NodeField> out;
    AddSection<NodeSection>(out, "node", &NodeConfig::node,
                            {StringField("id", &NodeSection::id, CheckNodeId), LogLevelField()});
    AddSection<HttpSection>(
        out, "http", &NodeConfig::http,
        {StringField("address", &HttpSection::address, CheckHost),
         IntField("port", &HttpSection::port, 0, 65535),
         StringField("static_dir", &HttpSection::static_dir, CheckStaticDir),
         IntField("threads", &HttpSection::threads, 0, kMaxHttpThreads),
         IntField("max_connections", &HttpSection::max_connections, 1, kI64Max),
         IntField("reserved_descriptors", &HttpSection::reserved_descriptors, 16, kI64Max),
         // issue 10 (harden2): per-address bound, head deadline, Origin check, /metrics key.
         IntField("max_connections_per_address", &HttpSection::max_connections_per_address, 0,
                  kI64Max),
         IntField("header_timeout_ms", &HttpSection::header_timeout_ms, 100, 600'000),
         StringsField("allowed_origins", &HttpSection::allowed_origins, CheckOriginPattern),
         StringField("metrics_key", &HttpSection::metrics_key, nullptr)});
    AddSection<ApiSection>(out, "api", &NodeConfig::api,
                           {StringField("key", &ApiSection::key, nullptr)});
    AddSection<NativeSection>(
        out, "native", &NodeConfig::native,
        {StringField("endpoint", &NativeSection::endpoint, CheckBindEndpoint),
         IntField("send_hwm", &NativeSection::send_hwm, 16, 10'000'000),
         IntField("max_input_bytes", &NativeSection::max_input_bytes, 65536, kI64Max),
         IntField("max_connections_per_address", &NativeSection::max_connections_per_address, 0,
                  kI64Max)});
    using C = ClusterSection;
    AddSection<C>(
        out, "cluster", &NodeConfig::cluster,
        {StringField("chp_command", &C::chp_command, CheckBindEndpoint),
         StringField("chp_publisher", &C::chp_publisher, CheckBindEndpoint),
         StringField("peer_endpoint", &C::peer_endpoint, CheckBindEndpoint),
         StringsField("seeds", &C::seeds, CheckSeed),
         IntField("replication_factor", &C::replication_factor, 1, 5),
         IntField("heartbeat_ms", &C::heartbeat_ms, 10, 60'000),
         IntField("dead_after_ms", &C::dead_after_ms, 1, 600'000),
         IntField("replica_lag_ms", &C::replica_lag_ms, 0, 600'000),
         IntField("max_uncommitted", &C::max_uncommitted, 1, 10'000'000),
         IntField("max_uncommitted_bytes", &C::max_uncommitted_bytes, 1024, kI64Max),
         IntField("drain_timeout_ms", &C::drain_timeout_ms, 0, 3'600'000),
         BoolField("planned_handoff", &C::planned_handoff),
         IntField("member_id", &C::member_id, 1, kI64Max),
         StringField("endpoint", &C::endpoint, CheckBindEndpoint),
         StringField("raft_address", &C::raft_address, CheckRaftAddress),
         StringsField("voters", &C::voters, CheckVoter),
         StringField("data_dir", &C::data_dir, nullptr),
         IntField("partitions", &C::partitions, 1, 65536),
         IntField("chp_max_connections_per_address", &C::chp_max_connections_per_address, 0,
                  kI64Max),
         IntField("chp_reply_pipe_hwm", &C::chp_reply_pipe_hwm, 1, 100'000),
         IntField("chp_max_peer_pending_bytes", &C::chp_max_peer_pending_bytes, 65536, kI64Max),
         IntField("chp_max_pending_bytes", &C::chp_max_pending_bytes, 65536, kI64Max),
         IntField("chp_max_command_bytes", &C::chp_max_command_bytes, 65536, kI64Max),
         IntField("chp_max_store_bytes", &C::chp_max_store_bytes, 1 << 20, kI64Max),
         IntField("chp_max_value_bytes", &C::chp_max_value_bytes, 0, 8 << 20)});
    using K = ClientSection;
    AddSection<K>(out, "client", &NodeConfig::client,
                  {StringField("token_hmac_secret", &K::token_hmac_secret, nullptr),
                   StringField("token_rsa_public_key_file", &K::token_rsa_public_key_file, nullptr),
                   BoolField("client_insecure", &K::client_insecure),
                   // issue 10 (harden2): token claims checked when set.
                   StringField("token_audience", &K::token_audience, nullptr),
                   StringField("token_issuer", &K::token_issuer, nullptr),
                   IntField("ping_interval_s", &K::ping_interval_s, 1, 3600),
                   IntField("pong_timeout_s", &K::pong_timeout_s, 1, 3600),
                   IntField("max_queue_bytes", &K::max_queue_bytes, 1, kI64Max)});
    using S = SchedulerSection;
    AddSection<S>(out, "scheduler", &NodeConfig::scheduler,
                  {BoolField("enabled", &S::enabled), IntField("slots", &S::slots, 1, 1024),
                   StringsField("tiers", &S::tiers, CheckTier),
                   IntField("lease_ms", &S::lease_ms, 100, 3'600'000),
                   IntField("max_attempts", &S::max_attempts, 1, 100),
                   IntField("backoff_base_ms", &S::backoff_base_ms, 1, 3'600'000),
                   IntField("backoff_max_ms", &S::backoff_max_ms, 1, 3'600'000),
                   IntField("catalog_pool_size", &S::catalog_pool_size, 1, 256),
                   IntField("progress_interval_ms", &S::progress_interval_ms, 50, 60'000),
                   IntField("files_per_task", &S::files_per_task, 1, 100'000),
                   StringsField("source_roots", &S::source_roots, CheckAbsolutePath),
                   StringField("catalog_dir", &S::catalog_dir, nullptr),
                   // External workers (docs/protocol/worker.md).
                   StringField("worker_endpoint", &S::worker_endpoint, CheckOptionalBindEndpoint),
                   IntField("max_workers", &S::max_workers, 1, 4096)});
    AddSection<ChannelOptions>(out, kDefaultOptionsKey, &NodeConfig::channel, ChannelFields());
    // Zero passes here so that NamespaceRegistry::Validate() reports it ("must be > 0").
    AddSection<Limits>(
        out, kLimitsKey, &NodeConfig::limits,
        {IntField("max_channel_length", &Limits::max_channel_length, 0, kI64Max),
         IntField("max_channels_per_connection", &Limits::max_channels_per_connection, 0, kI64Max),
         IntField("max_publication_bytes", &Limits::max_publication_bytes, 0, kI64Max),
         IntField("max_json_depth", &Limits::max_json_depth, 0, kI64Max),
         IntField("max_channels", &Limits::max_channels, 0, kI64Max),
         IntField("channel_creations_per_second", &Limits::channel_creations_per_second, 0,
                  kI64Max),
         IntField("publications_per_second", &Limits::publications_per_second, 0, kI64Max),
         IntField("idle_channel_ttl_ms", &Limits::idle_channel_ttl_ms, kI64Min, kI64Max)});
    return out;
  }();
  return kFields;
}

const NodeField* FindNodeField(std::string_view section, std::string_view name) {
  for (const NodeField& f : NodeFields()) {
    if (f.section == section && f.field.name == name) return &f;
  }
  return nullptr;
}

const Field<ChannelOptions>* FindChannelField(std::string_view name) {
  for (const auto& f : ChannelFields()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool IsSection(std::string_view name) {
  if (name == kNamespacesKey) return true;
  for (const NodeField& f : NodeFields()) {
    if (f.section == name) return true;
  }
  return false;
}

}  // namespace chorus::broker::config_detail
