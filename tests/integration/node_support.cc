#include "node_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include <openssl/hmac.h>

namespace chorus::testing {

const char* const kTestNamespaces = R"(
[namespaces.chat]
presence = true
join_leave = true
user_presence = true
history_size = 100
history_ttl_ms = 60000
allow_recovery = true
allow_publish_for_client = true

[namespaces.short]
history_size = 3
history_ttl_ms = 60000
allow_recovery = true
allow_publish_for_client = true

[namespaces.ttl]
history_size = 100
history_ttl_ms = 500
allow_recovery = true
allow_publish_for_client = true

[namespaces.nohist]
presence = true
allow_publish_for_client = true

[namespaces.sync]
history_size = 100
history_ttl_ms = 600000
allow_recovery = true
)";

NodeProcess::NodeProcess(NodeOptions o) {
  char tmpl[] = "/tmp/chorusd-test-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd >= 0) close(fd);
  config_path_ = tmpl;
  {
    std::ofstream out(config_path_);
    out << "[http]\nport = 0\n[api]\nkey = \"" << o.api_key << "\"\n"
        << "[client]\nclient_insecure = " << (o.insecure ? "true" : "false")
        << "\ntoken_hmac_secret = \"" << o.hmac_secret << "\"\n"
        << kTestNamespaces << o.extra_toml;
  }
  // SIGTERM stops at once (no C-20 drain) unless a test sets cluster.drain_timeout_ms itself
  // (a later --set wins): Stop() is every test's teardown.
  std::vector<std::string> args = {"--config", config_path_, "--set", "cluster.drain_timeout_ms=0"};
  for (const auto& s : o.overrides) {
    args.push_back("--set");
    args.push_back(s);
  }
  if (o.launcher.empty()) {
    proc_ = std::make_unique<ChildProcess>(CHORUSD_BIN, args);
  } else {
    std::vector<std::string> wrapped(o.launcher.begin() + 1, o.launcher.end());
    wrapped.push_back(CHORUSD_BIN);
    wrapped.insert(wrapped.end(), args.begin(), args.end());
    proc_ = std::make_unique<ChildProcess>(o.launcher.front(), wrapped);
  }
  banner_ = proc_->ReadLine(std::chrono::seconds(10));
  if (banner_.rfind("chorusd ready", 0) != 0) return;
  native_ = Field(banner_, "native");
  chp_command_ = Field(banner_, "chp_command");
  const std::string http = Field(banner_, "http");
  const size_t colon = http.rfind(':');
  http_host_ = http.substr(0, colon);
  http_port_ = std::stoi(http.substr(colon + 1));
}

bool NodeProcess::Stop() {
  if (!proc_) return false;
  const bool clean = proc_->Terminate(std::chrono::seconds(10));
  proc_.reset();
  return clean;
}

NodeProcess::~NodeProcess() {
  proc_.reset();
  unlink(config_path_.c_str());
}

const msgpack::object* Frame::Get(const std::string& path) const {
  const msgpack::object* cur = &root();
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (cur->type != msgpack::type::MAP) return nullptr;
    const msgpack::object* next = nullptr;
    for (uint32_t i = 0; i < cur->via.map.size; ++i) {
      const auto& kv = cur->via.map.ptr[i];
      if (kv.key.type == msgpack::type::STR &&
          std::string(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
        next = &kv.val;
      }
    }
    if (next == nullptr) return nullptr;
    cur = next;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

std::string Frame::Str(const std::string& path) const {
  const auto* o = Get(path);
  if (o == nullptr || o->type != msgpack::type::STR) return "";
  return std::string(o->via.str.ptr, o->via.str.size);
}

uint64_t Frame::Uint(const std::string& path) const {
  const auto* o = Get(path);
  if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) return 0;
  return o->via.u64;
}

bool Frame::Bool(const std::string& path) const {
  const auto* o = Get(path);
  return o != nullptr && o->type == msgpack::type::BOOLEAN && o->via.boolean;
}

RawSession::RawSession(zmq::context_t& ctx, const std::string& endpoint, int rcvhwm)
    : sock_(ctx, zmq::socket_type::dealer) {
  sock_.set(zmq::sockopt::linger, 0);
  sock_.set(zmq::sockopt::rcvhwm, rcvhwm);
  sock_.connect(endpoint);
}

std::string P(const std::vector<std::pair<std::string, PValue>>& kv) {
  Pack p;
  p.Map(static_cast<uint32_t>(kv.size()));
  for (const auto& [k, v] : kv) {
    p.Str(k);
    switch (v.kind) {
      case PValue::kStr:
        p.Str(v.s);
        break;
      case PValue::kUint:
        p.U(v.u);
        break;
      case PValue::kInt:
        p.I(v.i);
        break;
      case PValue::kBool:
        p.Bool(v.b);
        break;
    }
  }
  return p.str();
}

uint64_t RawSession::Send(const std::string& method, const std::string& packed_params) {
  const uint64_t id = next_id_++;
  Pack p;
  p.Map(3).Str("id").U(id).Str("method").Str(method).Str("params");
  p.Raw(packed_params.empty() ? P({}) : packed_params);
  SendRaw(p.str());
  return id;
}

void RawSession::SendRaw(const std::string& bytes) {
  (void)sock_.send(zmq::buffer(bytes), zmq::send_flags::none);
}

std::optional<Frame> RawSession::Next(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
  zmq::message_t msg;
  if (!sock_.recv(msg, zmq::recv_flags::dontwait)) return std::nullopt;
  Frame f;
  try {
    f.handle = msgpack::unpack(static_cast<const char*>(msg.data()), msg.size());
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return f;
}

std::optional<Frame> RawSession::Await(const std::function<bool(const Frame&)>& matches, bool push,
                                       std::chrono::milliseconds timeout) {
  std::vector<Frame>& kept = push ? pushes_ : replies_;
  for (auto it = kept.begin(); it != kept.end(); ++it) {
    if (matches(*it)) {
      Frame f = std::move(*it);
      kept.erase(it);
      return f;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto f = Next(std::max(left, std::chrono::milliseconds(1)));
    if (!f) continue;
    if (f->IsPush() == push && matches(*f)) return f;
    (f->IsPush() ? pushes_ : replies_).push_back(std::move(*f));
  }
  return std::nullopt;
}

std::optional<Frame> RawSession::Reply(uint64_t id, std::chrono::milliseconds timeout) {
  return Await([id](const Frame& f) { return f.Uint("id") == id; }, /*push=*/false, timeout);
}

std::optional<Frame> RawSession::Push(const std::string& type, const std::string& channel,
                                      std::chrono::milliseconds timeout) {
  return Await(
      [&](const Frame& f) {
        return f.Str("push") == type && (channel.empty() || f.Str("channel") == channel);
      },
      /*push=*/true, timeout);
}

std::optional<Frame> RawSession::Call(const std::string& method, const std::string& params) {
  return Reply(Send(method, params));
}

HttpResult HttpRequest(const std::string& host, int port, const std::string& method,
                       const std::string& target, const std::string& body,
                       const std::map<std::string, std::string>& headers) {
  HttpResult r;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return r;
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return r;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host +
                    "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t head_end = resp.find("\r\n\r\n");
  if (head_end == std::string::npos || resp.rfind("HTTP/1.1 ", 0) != 0) return r;
  r.status = std::stoi(resp.substr(9, 3));
  std::istringstream head(resp.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(tolower(c));
    size_t v = colon + 1;
    while (v < line.size() && line[v] == ' ') ++v;
    r.headers[name] = line.substr(v);
  }
  r.body = resp.substr(head_end + 4);
  return r;
}

HttpResult Api(const NodeProcess& node, const std::string& method, const std::string& json_body,
               const std::string& key) {
  std::map<std::string, std::string> h = {{"Content-Type", "application/json"}};
  if (!key.empty()) h["X-API-Key"] = key;
  return HttpRequest(node.http_host(), node.http_port(), "POST", "/api/" + method, json_body, h);
}

namespace {
std::string Base64Url(const std::string& in) {
  static const char* kTable = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += kTable[(v >> 18) & 63];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += kTable[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    out += kTable[(v >> 18) & 63];
    out += kTable[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const uint32_t v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kTable[(v >> 18) & 63];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
  }
  return out;
}
}  // namespace

std::string MakeHs256Token(const std::string& secret, const std::string& sub, int64_t exp,
                           const std::string& info_json, const std::string& extra_claims) {
  const std::string header = Base64Url(R"({"alg":"HS256","typ":"JWT"})");
  std::string claims = "{\"sub\":\"" + sub + "\"";
  if (exp != 0) claims += ",\"exp\":" + std::to_string(exp);
  if (!info_json.empty()) claims += ",\"info\":" + info_json;
  if (!extra_claims.empty()) claims += "," + extra_claims;
  claims += "}";
  const std::string signing = header + "." + Base64Url(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &mac_len);
  return signing + "." + Base64Url(std::string(reinterpret_cast<char*>(mac), mac_len));
}

size_t RssBytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  }
  return 0;
}

void RaiseFileLimit() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rlimit want{65536, 65536};
  if (setrlimit(RLIMIT_NOFILE, &want) != 0) {  // not root: take the hard limit
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int64_t MetricValue(const NodeProcess& node, const std::string& name_and_labels) {
  const HttpResult m = HttpRequest(node.http_host(), node.http_port(), "GET", "/metrics");
  const std::string needle = "\n" + name_and_labels + " ";
  const size_t at = m.body.find(needle);
  if (m.status != 200 || at == std::string::npos) return -1;
  return std::stoll(m.body.substr(at + needle.size()));
}

}  // namespace chorus::testing
