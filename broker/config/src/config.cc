// Parsing and validation of NodeConfig (broker/config/config.h). Every key is described once in
// a field table (name, TOML type, setter, value check); the TOML reader, the command line
// overrides, ValidateConfig and ConfigKeys all walk the same tables, so they cannot disagree.
#include "broker/config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <type_traits>

#include "config_fields.h"

namespace chorus::broker {
namespace {

using namespace config_detail;  // NOLINT: this file's private vocabulary (config_fields.h)

inline constexpr std::string_view kOverrideSource = "--set";
inline constexpr unsigned kMaxAutoHttpThreads = 8;

// ---- Reading a TOML document ---------------------------------------------------------------

Problem ReadNamespaces(const toml::node& n, NodeConfig& c) {
  const std::string key(kNamespacesKey);
  const auto* table = n.as_table();
  if (table == nullptr) return Expected(key, "a table", n);
  for (const auto& [name, value] : *table) {
    const std::string prefix = Dotted(key, name.str());
    const auto* options = value.as_table();
    if (options == nullptr) return Expected(prefix, "a table", value);
    ChannelOptions& o = c.namespaces[std::string(name.str())];  // built-in defaults, no [channel]
    for (const auto& [k, v] : *options) {
      const std::string field_key = Dotted(prefix, k.str());
      const Field<ChannelOptions>* f = FindChannelField(k.str());
      if (f == nullptr) return field_key + ": unknown key";
      if (auto p = f->set(v, o, field_key)) return p;
    }
  }
  return std::nullopt;
}

Problem ReadRoot(const toml::table& root, NodeConfig& c) {
  for (const auto& [section, value] : root) {
    const std::string key(section.str());
    if (key == kNamespacesKey) {
      if (auto p = ReadNamespaces(value, c)) return p;
      continue;
    }
    if (!IsSection(key)) return key + ": unknown key";
    const auto* table = value.as_table();
    if (table == nullptr) return Expected(key, "a table", value);
    for (const auto& [name, v] : *table) {
      const std::string field_key = Dotted(key, name.str());
      const NodeField* f = FindNodeField(key, name.str());
      if (f == nullptr) return field_key + ": unknown key";
      if (auto p = f->field.set(v, c, field_key)) return p;
    }
  }
  return std::nullopt;
}

// ---- Cross-field rules ------------------------------------------------------------------------

// cluster.voters (each entry's syntax is checked by its field): distinct ids and addresses,
// 1, 3 or 5 of them (C-2); when this member is among them, raft_address left default or equal
// (a member not among them joins as a standby at its own raft_address).
Problem CheckClusterVoters(const ClusterSection& cl) {
  if (cl.voters.empty()) return std::nullopt;
  const std::vector<ClusterVoter> voters = ClusterVoters(cl);
  if (voters.size() != 1 && voters.size() != 3 && voters.size() != 5) {
    return "cluster.voters: must hold 1, 3 or 5 voters (got " + std::to_string(voters.size()) + ")";
  }
  const ClusterVoter* self = nullptr;
  for (size_t i = 0; i < voters.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (voters[i].id == voters[j].id || voters[i].address == voters[j].address) {
        return "cluster.voters[" + std::to_string(i) + "]: duplicate of cluster.voters[" +
               std::to_string(j) + "]";
      }
    }
    if (voters[i].id == cl.member_id) self = &voters[i];
  }
  // A member that is not a voter joins the running group as a Raft standby (C-2, C-18): the
  // leader adds it at its raft_address once it heartbeats.
  if (self == nullptr) return std::nullopt;
  if (cl.raft_address != ClusterSection{}.raft_address && cl.raft_address != self->address) {
    return "cluster.raft_address: must equal this member's entry in cluster.voters (" +
           self->address + ") or be left unset (got \"" + cl.raft_address + "\")";
  }
  return std::nullopt;
}

// [scheduler]: distinct tiers, backoff_max >= backoff_base; when enabled, existing source roots
// and catalog directory and a `sync` namespace with history (progress events and their state
// after a reload, docs/scheduler.md "Running in chorusd").
Problem CheckScheduler(const NodeConfig& c) {
  const SchedulerSection& s = c.scheduler;
  if (s.tiers.empty()) return "scheduler.tiers: must name at least one tier";
  for (size_t i = 0; i < s.tiers.size(); ++i) {
    const auto a = ParseSchedulerTier(s.tiers[i]);
    for (size_t j = 0; a && j < i; ++j) {
      const auto b = ParseSchedulerTier(s.tiers[j]);
      if (b && a->name == b->name) {
        return "scheduler.tiers[" + std::to_string(i) + "]: duplicate tier " + Quoted(a->name);
      }
    }
  }
  if (s.backoff_max_ms < s.backoff_base_ms) {
    return "scheduler.backoff_max_ms: must be >= scheduler.backoff_base_ms = " +
           std::to_string(s.backoff_base_ms) + " (got " + std::to_string(s.backoff_max_ms) + ")";
  }
  if (!s.enabled) return std::nullopt;
  std::error_code ec;
  if (s.source_roots.empty()) {
    return "scheduler.source_roots: must name at least one directory when scheduler.enabled";
  }
  for (size_t i = 0; i < s.source_roots.size(); ++i) {
    if (!std::filesystem::is_directory(s.source_roots[i], ec)) {
      return "scheduler.source_roots[" + std::to_string(i) + "]: must be an existing directory " +
             "(got " + Quoted(s.source_roots[i]) + ")";
    }
  }
  if (s.catalog_dir.empty() || !std::filesystem::is_directory(s.catalog_dir, ec)) {
    return "scheduler.catalog_dir: must be an existing directory when scheduler.enabled (got " +
           Quoted(s.catalog_dir) + ")";
  }
  auto ns = c.namespaces.find("sync");
  if (ns == c.namespaces.end() || !ns->second.HistoryEnabled()) {
    return "scheduler.enabled: needs [namespaces.sync] with history_size and history_ttl_ms > 0 "
           "(progress events go to channel sync:<user>)";
  }
  return std::nullopt;
}

Problem CheckCrossFields(const NodeConfig& c) {
  const ClusterSection& cl = c.cluster;
  if (cl.chp_max_value_bytes != 0 && cl.chp_max_value_bytes < 65536) {
    return "cluster.chp_max_value_bytes: must be 0 (derived) or 65536..8388608 (got " +
           std::to_string(cl.chp_max_value_bytes) + ")";
  }
  if (cl.chp_max_pending_bytes < cl.chp_max_peer_pending_bytes) {
    return "cluster.chp_max_pending_bytes: must be >= cluster.chp_max_peer_pending_bytes = " +
           std::to_string(cl.chp_max_peer_pending_bytes) + " (got " +
           std::to_string(cl.chp_max_pending_bytes) + ")";
  }
  if (cl.dead_after_ms <= cl.heartbeat_ms) {
    return "cluster.dead_after_ms: must be > cluster.heartbeat_ms = " +
           std::to_string(cl.heartbeat_ms) + " (got " + std::to_string(cl.dead_after_ms) + ")";
  }
  for (size_t i = 0; i < cl.seeds.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (cl.seeds[i] == cl.seeds[j]) {
        return "cluster.seeds[" + std::to_string(i) + "]: duplicate of cluster.seeds[" +
               std::to_string(j) + "]";
      }
    }
  }
  if (auto p = CheckClusterVoters(cl)) return p;
  const ClientSection& cli = c.client;
  if (cli.pong_timeout_s >= cli.ping_interval_s) {
    return "client.pong_timeout_s: must be < client.ping_interval_s = " +
           std::to_string(cli.ping_interval_s) + " (got " + std::to_string(cli.pong_timeout_s) +
           ")";
  }
  if (cli.max_queue_bytes < c.limits.max_publication_bytes) {
    return "client.max_queue_bytes: must be >= limits.max_publication_bytes = " +
           std::to_string(c.limits.max_publication_bytes) + " (got " +
           std::to_string(cli.max_queue_bytes) + ")";
  }
  return CheckScheduler(c);
}

bool IsWildcardHost(std::string_view host) {
  return host == "*" || host == "0.0.0.0" || host == "::" || host == "[::]";
}

// Two listeners of this node that would bind the same address: the later one in file order is
// reported. Port 0 and * never collide (each picks its own free port).
Problem CheckListeners(const NodeConfig& c) {
  struct Listener {
    std::string key;
    Endpoint ep;
  };
  std::vector<Listener> listeners;
  Endpoint http;
  http.transport = "tcp";
  http.host = c.http.address;
  http.port = c.http.port;
  listeners.push_back({"http.port", http});
  const std::pair<std::string_view, const std::string*> endpoints[] = {
      {"native.endpoint", &c.native.endpoint},
      {"cluster.chp_command", &c.cluster.chp_command},
      {"cluster.chp_publisher", &c.cluster.chp_publisher},
      {"cluster.peer_endpoint", &c.cluster.peer_endpoint},
      {"cluster.endpoint", &c.cluster.endpoint}};
  for (const auto& [key, text] : endpoints) {
    Endpoint ep;
    if (ParseEndpoint(*text, std::string(key), /*bind=*/true, ep)) continue;  // checked before
    listeners.push_back({std::string(key), ep});
  }
  for (size_t i = 0; i < listeners.size(); ++i) {
    const Endpoint& a = listeners[i].ep;
    for (size_t j = 0; j < i; ++j) {
      const Endpoint& b = listeners[j].ep;
      if (a.transport != b.transport) continue;
      if (a.transport == "tcp") {
        const bool same_host = a.host == b.host || IsWildcardHost(a.host) || IsWildcardHost(b.host);
        if (a.port > 0 && a.port == b.port && same_host) {
          return listeners[i].key + ": tcp port " + std::to_string(a.port) +
                 " is already used by " + listeners[j].key;
        }
      } else if (a.address == b.address) {
        return listeners[i].key + ": " +
               Quoted(std::string(a.transport) + "://" + std::string(a.address)) +
               " is already used by " + listeners[j].key;
      }
    }
  }
  return std::nullopt;
}

// ---- Overrides ----------------------------------------------------------------------------------

// Calls `set` with `value` as a TOML node of the kind the key expects (see ApplyOverride).
Problem SetFromText(Kind kind, std::string_view value,
                    const std::function<Problem(const toml::node&)>& set) {
  std::optional<toml::table> doc;
  const toml::node* parsed = nullptr;
  try {
    doc = toml::parse("v = " + std::string(value));
    if (doc->size() == 1) parsed = doc->get("v");
  } catch (const toml::parse_error&) {
    // Not a TOML value: the text is a string.
  }
  const toml::value<std::string> text{std::string(value)};
  switch (kind) {
    case Kind::kString:
      return set(parsed != nullptr && parsed->is_string() ? *parsed : text);
    case Kind::kStrings: {
      if (parsed != nullptr && parsed->is_array()) return set(*parsed);
      toml::array list;
      if (parsed != nullptr && parsed->is_string()) {
        list.push_back(*parsed->value<std::string>());
      } else {
        for (std::string_view piece : Split(value, ',')) {
          if (!Trim(piece).empty()) list.push_back(std::string(Trim(piece)));
        }
      }
      return set(list);
    }
    case Kind::kBool:
    case Kind::kInt:
      break;
  }
  return set(parsed != nullptr ? *parsed : text);
}

Problem SetKey(NodeConfig& c, const std::string& key, std::string_view value) {
  const std::vector<std::string_view> parts = Split(key, '.');
  if (parts[0] == kNamespacesKey) {
    if (parts.size() < 3) {
      return key + ": is a table; set one of its keys (namespaces.<name>.<key>=<value>)";
    }
    const Field<ChannelOptions>* f = parts.size() == 3 ? FindChannelField(parts[2]) : nullptr;
    if (f == nullptr) return key + ": unknown key";
    ChannelOptions& o = c.namespaces[std::string(parts[1])];
    return SetFromText(f->kind, value, [&](const toml::node& n) { return f->set(n, o, key); });
  }
  if (parts.size() == 1 && IsSection(key)) {
    return key + ": is a table; set one of its keys (" + key + ".<key>=<value>)";
  }
  const NodeField* f = parts.size() == 2 ? FindNodeField(parts[0], parts[1]) : nullptr;
  if (f == nullptr) return key + ": unknown key";
  return SetFromText(f->field.kind, value,
                     [&](const toml::node& n) { return f->field.set(n, c, key); });
}

ConfigError Fail(std::string_view source, const std::string& problem) {
  return ConfigError{std::string(source) + ": " + problem};
}

}  // namespace

std::string_view ToString(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::optional<SchedulerTier> ParseSchedulerTier(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 32) return std::nullopt;
  SchedulerTier t;
  t.name = std::string(text.substr(0, colon));
  for (char ch : t.name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    if (!ok) return std::nullopt;
  }
  const std::string_view q = text.substr(colon + 1);
  if (q.empty() || q.size() > 4) return std::nullopt;
  uint32_t quantum = 0;
  for (char ch : q) {
    if (ch < '0' || ch > '9') return std::nullopt;
    quantum = quantum * 10 + static_cast<uint32_t>(ch - '0');
  }
  if (quantum < 1 || quantum > 1000) return std::nullopt;
  t.quantum = quantum;
  return t;
}

uint32_t EffectiveHttpThreads(const HttpSection& http, unsigned hardware_concurrency) {
  if (http.threads != 0) return http.threads;
  return std::clamp(hardware_concurrency / 2, 1u, kMaxAutoHttpThreads);
}

size_t EffectiveChpMaxValueBytes(const NodeConfig& c) {
  constexpr size_t kKiB = 1024;
  constexpr size_t kMin = 64 * kKiB, kMax = size_t{8} << 20;  // chp::kMaxValueBytesLimit
  if (c.cluster.chp_max_value_bytes != 0) return c.cluster.chp_max_value_bytes;
  const size_t pub = std::min(c.limits.max_publication_bytes, kMax);  // no overflow below
  const size_t message = std::max({64 * kKiB, 2 * pub, pub + 64 * kKiB});
  const size_t api_body = std::max<size_t>(size_t{1} << 20, 2 * pub + 4 * kKiB);
  return std::clamp(std::max(pub + 2 * message, api_body) + 64 * kKiB, kMin, kMax);
}

ConfigResult<NodeConfig> ParseConfig(std::string_view toml_text, std::string source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, std::string_view(source_name));
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    return ConfigError{source_name + ":" + std::to_string(at.line) + ":" +
                       std::to_string(at.column) +
                       ": syntax error: " + std::string(e.description())};
  }
  NodeConfig config;
  if (auto p = ReadRoot(root, config)) return Fail(source_name, *p);
  if (auto p = ValidateConfig(config)) return Fail(source_name, *p);
  return config;
}

ConfigResult<NodeConfig> LoadConfig(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Fail(path, "cannot read: is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Fail(path, "cannot read");
  return ParseConfig(text.str(), path);
}

std::optional<std::string> ValidateConfig(const NodeConfig& config) {
  for (const NodeField& f : NodeFields()) {
    if (!f.field.check) continue;
    if (auto p = f.field.check(config, Dotted(f.section, f.field.name))) return p;
  }
  if (auto p = CheckCrossFields(config)) return p;
  if (auto p = CheckListeners(config)) return p;
  return config.MakeRegistry().Validate();
}

ConfigResult<Unit> ApplyOverride(NodeConfig& config, std::string_view dotted_key,
                                 std::string_view value) {
  NodeConfig next = config;
  if (auto p = SetKey(next, std::string(dotted_key), value)) return Fail(kOverrideSource, *p);
  if (auto p = ValidateConfig(next)) return Fail(kOverrideSource, *p);
  config = std::move(next);
  return Unit{};
}

ConfigResult<Unit> ApplyOverrides(NodeConfig& config, const std::vector<std::string>& assignments) {
  NodeConfig next = config;
  for (const std::string& assignment : assignments) {
    const size_t eq = assignment.find('=');
    const std::string key(Trim(std::string_view(assignment).substr(0, eq)));
    if (eq == std::string::npos || key.empty()) {
      return Fail(kOverrideSource, Quoted(assignment) + ": expected <key>=<value>");
    }
    if (auto p = SetKey(next, key, Trim(std::string_view(assignment).substr(eq + 1)))) {
      return Fail(kOverrideSource, *p);
    }
  }
  if (auto p = ValidateConfig(next)) return Fail(kOverrideSource, *p);
  config = std::move(next);
  return Unit{};
}

std::string DescribeConfig(const NodeConfig& c) {
  std::string auth;
  if (c.client.client_insecure) {
    auth = "insecure";
  } else {
    if (!c.client.token_hmac_secret.empty()) auth = "hmac";
    if (!c.client.token_rsa_public_key_file.empty()) auth += auth.empty() ? "rsa" : "+rsa";
    if (auth.empty()) auth = "none";
  }
  std::string seeds;
  for (const std::string& s : c.cluster.seeds) seeds += (seeds.empty() ? "" : ",") + s;
  std::string voters;
  for (const std::string& v : c.cluster.voters) voters += (voters.empty() ? "" : ",") + v;
  std::string namespaces;
  for (const auto& [name, options] : c.namespaces) {
    namespaces += (namespaces.empty() ? "" : ",") + name;
  }
  std::ostringstream out;
  out << "node=" << (c.node.id.empty() ? "(random)" : c.node.id)
      << " log_level=" << ToString(c.node.log_level) << " http=" << c.http.address << ":"
      << c.http.port << " api=" << (c.api.Enabled() ? "on" : "off")
      << " native=" << c.native.endpoint << " chp_command=" << c.cluster.chp_command
      << " chp_publisher=" << c.cluster.chp_publisher << " seeds=[" << seeds << "]"
      << " replication_factor=" << c.cluster.replication_factor
      << " heartbeat_ms=" << c.cluster.heartbeat_ms << " dead_after_ms=" << c.cluster.dead_after_ms
      << " member_id=" << c.cluster.member_id << " cluster_endpoint=" << c.cluster.endpoint
      << " raft=" << c.cluster.raft_address << " voters=[" << voters << "]"
      << " partitions=" << c.cluster.partitions << " client_auth=" << auth
      << " scheduler=" << (c.scheduler.enabled ? "on" : "off")
      << " channel_history=" << (c.channel.HistoryEnabled() ? "on" : "off") << " namespaces=["
      << namespaces << "]";
  return out.str();
}

std::vector<std::string> ConfigKeys() {
  std::vector<std::string> keys;
  for (const NodeField& f : NodeFields()) keys.push_back(Dotted(f.section, f.field.name));
  for (const auto& f : ChannelFields()) {
    keys.push_back(Dotted(std::string(kNamespacesKey) + ".<name>", f.name));
  }
  return keys;
}

std::vector<ClusterVoter> ClusterVoters(const ClusterSection& cluster) {
  std::vector<ClusterVoter> out;
  for (const std::string& v : cluster.voters) {
    ClusterVoter voter;
    if (config_detail::ParseVoter(v, voter.id, voter.address)) out.push_back(voter);
  }
  return out;
}

}  // namespace chorus::broker
