// Test support for the broker node: a real `chorusd` child process on loopback with ephemeral
// ports, its addresses read from the ready line; a raw native (DEALER + msgpack) session; a
// minimal HTTP/1.1 client over a POSIX socket (no Chorus code on the client side).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <msgpack.hpp>
#include <zmq.hpp>

#include "msgpack_pack.h"
#include "test_util.h"

namespace chorus::testing {

// The namespaces most tests use (TOML, appended to the node's config file):
//  chat:    presence, join_leave, user_presence, history 100 / 60 s, allow_recovery, publish
//  short:   history 3 / 60 s, allow_recovery, publish
//  ttl:     history 100 / 500 ms, allow_recovery, publish
//  nohist:  presence only, publish
//  sync:    history 100 / 600 s, allow_recovery (the sync scheduler's progress channels)
extern const char* const kTestNamespaces;

struct NodeOptions {
  std::string extra_toml;              // appended after kTestNamespaces
  std::vector<std::string> overrides;  // --set key=value
  bool insecure = true;                // client.client_insecure
  std::string api_key = "test-key";
  std::string hmac_secret = "test-secret";
  // A command chorusd runs under, e.g. {"/usr/bin/prlimit", "--nofile=256:256"}; empty = none.
  std::vector<std::string> launcher;
};

class NodeProcess {
 public:
  explicit NodeProcess(NodeOptions options = {});
  ~NodeProcess();
  bool ready() const { return !native_.empty(); }
  const std::string& native() const { return native_; }
  const std::string& http_host() const { return http_host_; }
  int http_port() const { return http_port_; }
  const std::string& chp_command() const { return chp_command_; }
  const std::string& banner() const { return banner_; }
  ChildProcess& process() { return *proc_; }
  // SIGTERM and wait: true on a clean exit (status 0). No C-20 drain unless the test set
  // cluster.drain_timeout_ms (NodeProcess passes 0 first).
  bool Stop();

 private:
  std::string config_path_;
  std::unique_ptr<ChildProcess> proc_;
  std::string banner_, native_, http_host_, chp_command_;
  int http_port_ = 0;
};

// A decoded msgpack map frame, kept alive with its zone.
struct Frame {
  msgpack::object_handle handle;
  const msgpack::object& root() const { return handle.get(); }
  // Lookups by dotted path through maps ("result.epoch"); nullptr when absent.
  const msgpack::object* Get(const std::string& path) const;
  std::string Str(const std::string& path) const;  // "" when absent / not a string
  uint64_t Uint(const std::string& path) const;    // 0 when absent
  bool Bool(const std::string& path) const;        // false when absent
  bool Has(const std::string& path) const { return Get(path) != nullptr; }
  bool IsPush() const { return Has("push"); }
};

// A raw native session: one DEALER socket, msgpack built by hand (not the client library).
class RawSession {
 public:
  RawSession(zmq::context_t& ctx, const std::string& endpoint, int rcvhwm = 1000);
  // Sends {id, method, params}; params is a packed map built by the caller (or an empty map).
  uint64_t Send(const std::string& method, const std::string& packed_params = "");
  void SendRaw(const std::string& bytes);
  // Next frame within timeout (replies and pushes in arrival order).
  std::optional<Frame> Next(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Waits for the reply with this id; pushes received meanwhile are kept in pushes().
  std::optional<Frame> Reply(uint64_t id,
                             std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Waits for a push of this type (and channel, when given); earlier kept pushes count.
  std::optional<Frame> Push(const std::string& type, const std::string& channel = "",
                            std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Sends and waits for the reply.
  std::optional<Frame> Call(const std::string& method, const std::string& packed_params = "");
  std::vector<Frame>& pushes() { return pushes_; }
  zmq::socket_t& socket() { return sock_; }

 private:
  // The first kept or arriving frame (a push when `push`, else a reply) that `matches`; frames
  // of the other kind, or not matching, are kept for later calls.
  std::optional<Frame> Await(const std::function<bool(const Frame&)>& matches, bool push,
                             std::chrono::milliseconds timeout);

  zmq::socket_t sock_;
  uint64_t next_id_ = 1;
  std::vector<Frame> pushes_;
  std::vector<Frame> replies_;
};

// Packs a params map from string / uint / bool values: P({{"channel", "chat:a"}, ...}) (with
// the tests' one msgpack writer, Pack in tests/support/msgpack_pack.h, for anything else).
struct PValue {
  enum Kind { kStr, kUint, kBool, kInt } kind;
  std::string s;
  uint64_t u = 0;
  int64_t i = 0;
  bool b = false;
  PValue(const char* v) : kind(kStr), s(v) {}             // NOLINT
  PValue(std::string v) : kind(kStr), s(std::move(v)) {}  // NOLINT
  PValue(uint64_t v) : kind(kUint), u(v) {}               // NOLINT
  PValue(int v) : kind(kInt), i(v) {}                     // NOLINT
  PValue(bool v) : kind(kBool), b(v) {}                   // NOLINT
};
std::string P(const std::vector<std::pair<std::string, PValue>>& kv);

// HTTP over a fresh TCP connection ("Connection: close"); status 0 when the request failed.
struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};
HttpResult HttpRequest(const std::string& host, int port, const std::string& method,
                       const std::string& target, const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {});
// POST /api/<method> with X-API-Key.
HttpResult Api(const NodeProcess& node, const std::string& method, const std::string& json_body,
               const std::string& key = "test-key");
// The value of the /metrics sample `name_and_labels` (e.g. `x{a="b"}`); -1 when absent.
int64_t MetricValue(const NodeProcess& node, const std::string& name_and_labels);

// An HS256 JWT for `sub` with optional exp (seconds since the epoch; 0 = none), made with
// libjwt-free code (OpenSSL HMAC) so the test does not reuse the node's verifier.
// `extra_claims`: more members of the claims object, as JSON text (`"channels":["a"]`).
std::string MakeHs256Token(const std::string& secret, const std::string& sub, int64_t exp = 0,
                           const std::string& info_json = "", const std::string& extra_claims = "");

// The resident set size of a process, in bytes (from /proc/<pid>/status).
size_t RssBytes(int pid);

// Raises this process's descriptor limit (inherited by the chorusd children it starts): to
// 65536 when allowed (root), else the soft limit to the hard one. For load generators.
void RaiseFileLimit();

}  // namespace chorus::testing
