// The field tables of NodeConfig (config_fields.cc): every key described once (name, TOML type,
// setter, value check), and the small text helpers the reader and the overrides share
// (config.cc). Private to the config module; toml++ stays inside it.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/config/config.h"

namespace chorus::broker::config_detail {

// "<dotted.key>: <reason>", or nullopt when fine.
using Problem = std::optional<std::string>;

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

// A ZeroMQ endpoint split into its parts; `port` is -1 for "*" and for non-tcp transports.
struct Endpoint {
  std::string_view transport;  // "tcp", "ipc" or "inproc"
  std::string_view address;    // everything after "://"
  std::string_view host;       // tcp only
  int64_t port = -1;           // tcp only; 0 or -1 ("*") = pick a free port
};

// A field of a section of NodeConfig, reached through the section's member.
struct NodeField {
  std::string_view section;
  Field<NodeConfig> field;
};

// A user's string in a message: quoted, control characters and quotes escaped, at most 80 bytes.
std::string Quoted(std::string_view s);
std::string Dotted(std::string_view a, std::string_view b);
// "<key>: expected <what> (got <TOML type of n>)".
Problem Expected(const std::string& key, std::string_view what, const toml::node& n);
std::vector<std::string_view> Split(std::string_view s, char sep);
std::string_view Trim(std::string_view s);
// Reads `v` as an endpoint to bind (`bind`: port 0..65535 or *) or to connect to (a host that
// is not a wildcard and a port 1..65535).
Problem ParseEndpoint(std::string_view v, const std::string& key, bool bind, Endpoint& ep);
// A Raft address "host:port" (host not a wildcard; port 1..65535, or 0 when `allow_zero`).
bool ParseRaftAddress(std::string_view v, bool allow_zero);
// One cluster.voters entry "<member_id>@<host>:<port>"; false when malformed.
bool ParseVoter(std::string_view v, uint64_t& id, std::string& address);

// Every key outside [namespaces], in file order; the keys of a namespace (and of [channel]).
const std::vector<NodeField>& NodeFields();
const Fields<ChannelOptions>& ChannelFields();
const NodeField* FindNodeField(std::string_view section, std::string_view name);
const Field<ChannelOptions>* FindChannelField(std::string_view name);
bool IsSection(std::string_view name);

}  // namespace chorus::broker::config_detail
