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

namespace chorus::broker {
namespace {

// "<dotted.key>: <reason>", or nullopt when fine.
using Problem = std::optional<std::string>;

inline constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();
inline constexpr std::string_view kOverrideSource = "--set";
// http.threads: HttpOptions::kMaxIoThreads of the gateway (which this module does not depend on).
inline constexpr int64_t kMaxHttpThreads = 64;
inline constexpr unsigned kMaxAutoHttpThreads = 8;
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

Problem CheckStaticDir(std::string_view v, const std::string& key) {
  if (v.empty()) return std::nullopt;  // no static files
  std::error_code ec;
  if (std::filesystem::is_directory(std::filesystem::path(v), ec)) return std::nullopt;
  return key + ": must be an existing directory (got " + Quoted(v) + ")";
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

// A ZeroMQ endpoint split into its parts; `port` is -1 for "*" and for non-tcp transports.
struct Endpoint {
  std::string_view transport;  // "tcp", "ipc" or "inproc"
  std::string_view address;    // everything after "://"
  std::string_view host;       // tcp only
  int64_t port = -1;           // tcp only; 0 or -1 ("*") = pick a free port
};

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

Problem CheckSeed(std::string_view v, const std::string& key) {
  Endpoint ep;
  return ParseEndpoint(v, key, /*bind=*/false, ep);
}

// ---- Field tables -----------------------------------------------------------------------------

enum class Kind { kBool, kInt, kString, kStrings };

// One key of a section whose value is an S.
template <typename S>
struct Field {
  std::string_view name;
  Kind kind;
  // Reads `n` into the field; a wrong TOML type or an integer out of range is a Problem.
  std::function<Problem(const toml::node& n, S& target, const std::string& key)> set;
  // Checks the field's current value (ranges, syntax); null when every value is fine.
  std::function<Problem(const S& target, const std::string& key)> check;
};

template <typename S>
using Fields = std::vector<Field<S>>;

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

// A field of a section of NodeConfig, reached through the section's member.
struct NodeField {
  std::string_view section;
  Field<NodeConfig> field;
};

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
         IntField("max_connections", &HttpSection::max_connections, 1, kI64Max)});
    AddSection<ApiSection>(out, "api", &NodeConfig::api,
                           {StringField("key", &ApiSection::key, nullptr)});
    AddSection<NativeSection>(out, "native", &NodeConfig::native,
                              {StringField("endpoint", &NativeSection::endpoint, CheckBindEndpoint),
                               IntField("send_hwm", &NativeSection::send_hwm, 16, 10'000'000)});
    using C = ClusterSection;
    AddSection<C>(out, "cluster", &NodeConfig::cluster,
                  {StringField("chp_command", &C::chp_command, CheckBindEndpoint),
                   StringField("chp_publisher", &C::chp_publisher, CheckBindEndpoint),
                   StringsField("seeds", &C::seeds, CheckSeed),
                   IntField("replication_factor", &C::replication_factor, 1, 5),
                   IntField("heartbeat_ms", &C::heartbeat_ms, 10, 60'000),
                   IntField("dead_after_ms", &C::dead_after_ms, 1, 600'000)});
    using K = ClientSection;
    AddSection<K>(out, "client", &NodeConfig::client,
                  {StringField("token_hmac_secret", &K::token_hmac_secret, nullptr),
                   StringField("token_rsa_public_key_file", &K::token_rsa_public_key_file, nullptr),
                   BoolField("client_insecure", &K::client_insecure),
                   IntField("ping_interval_s", &K::ping_interval_s, 1, 3600),
                   IntField("pong_timeout_s", &K::pong_timeout_s, 1, 3600),
                   IntField("max_queue_bytes", &K::max_queue_bytes, 1, kI64Max)});
    AddSection<ChannelOptions>(out, kDefaultOptionsKey, &NodeConfig::channel, ChannelFields());
    // Zero passes here so that NamespaceRegistry::Validate() reports it ("must be > 0").
    AddSection<Limits>(
        out, kLimitsKey, &NodeConfig::limits,
        {IntField("max_channel_length", &Limits::max_channel_length, 0, kI64Max),
         IntField("max_channels_per_connection", &Limits::max_channels_per_connection, 0, kI64Max),
         IntField("max_publication_bytes", &Limits::max_publication_bytes, 0, kI64Max)});
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

Problem CheckCrossFields(const NodeConfig& c) {
  const ClusterSection& cl = c.cluster;
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
  return std::nullopt;
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
      {"cluster.chp_publisher", &c.cluster.chp_publisher}};
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

uint32_t EffectiveHttpThreads(const HttpSection& http, unsigned hardware_concurrency) {
  if (http.threads != 0) return http.threads;
  return std::clamp(hardware_concurrency / 2, 1u, kMaxAutoHttpThreads);
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
      << " client_auth=" << auth
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

}  // namespace chorus::broker
