// Shared by the gateway's integration tests (gateway_{http,ws,static,threads}_test.cc): a raw
// HTTP/1.1 client over POSIX sockets, a fake engine (a thread with a ROUTER on an inproc
// endpoint of the test's zmq context, answering HTTP requests from a scripted function or
// holding them, recording WebSocket events and sending WebSocket commands on request, to the
// DEALER of the shard that owns each connection, as the real engine does), and a fixture that
// starts the engine and the server (127.0.0.1, port 0) with `io_threads_` shards; the
// parameterised suites run with 1 and 2 (IoThreadsName names them).
#pragma once

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "broker/gateway/http_server.h"
#include "test_util.h"

namespace gateway_test {

namespace gw = chorus::broker::gateway;
using chorus::testing::EventuallyTrue;
using namespace std::chrono_literals;

inline constexpr char kKey[] = "s3cret-key";
inline constexpr char kUnauthorized[] = R"({"error":{"code":101,"message":"unauthorized"}})";
inline constexpr char kInternal[] = R"({"error":{"code":100,"message":"internal server error"}})";

// ---------------------------------------------------------------------------------------------
// Raw HTTP client.

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

inline std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }

  bool Send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // One response; nullopt on timeout, a closed connection or an unparsable answer.
  std::optional<HttpResponse> Read(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(deadline)) return std::nullopt;
    }
    HttpResponse r;
    const std::string head = buffer_.substr(0, head_end);
    size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) return std::nullopt;
    r.status = std::stoi(status_line.substr(9, 3));
    while (line_end != std::string::npos) {
      const size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string line = head.substr(start, line_end - start);
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[Lower(line.substr(0, colon))] = value;
    }
    buffer_.erase(0, head_end + 4);
    const size_t length =
        r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    while (buffer_.size() < length) {
      if (!Fill(deadline)) return std::nullopt;
    }
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return r;
  }

  // Whatever bytes are buffered or arrive within `timeout` (WebSocket frames after a 101).
  std::string ReadSome(std::chrono::milliseconds timeout) {
    if (buffer_.empty()) Fill(std::chrono::steady_clock::now() + timeout);
    std::string out;
    out.swap(buffer_);
    return out;
  }

  // True when the server closes the connection (EOF or reset) within `timeout`; bytes that
  // arrive before that are discarded.
  bool ClosedByPeer(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            deadline - std::chrono::steady_clock::now())
                                            .count());
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    }
  }

 private:
  bool Fill(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
};

inline std::string Request(const std::string& method, const std::string& target,
                           const std::vector<std::string>& headers = {},
                           const std::string& body = "", bool with_length = true) {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  if (with_length && (!body.empty() || method == "POST")) {
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  r += "\r\n" + body;
  return r;
}

inline std::string Api(const std::string& method, const std::string& body,
                       const std::string& auth = std::string("X-API-Key: ") + kKey) {
  std::vector<std::string> headers{"Content-Type: application/json"};
  if (!auth.empty()) headers.push_back(auth);
  return Request("POST", "/api/" + method, headers, body);
}

// Sends one request on a fresh connection and reads the answer.
inline std::optional<HttpResponse> RoundTrip(uint16_t port, const std::string& request) {
  RawClient c(port);
  if (!c.connected() || !c.Send(request)) return std::nullopt;
  return c.Read();
}

// ---------------------------------------------------------------------------------------------
// Fake engine.

struct EngineRequest {
  std::string routing_id;
  std::string correlation_id;
  std::string kind;
  std::string method;
  std::string body;
};

// One gateway -> engine WebSocket event.
struct WsEvent {
  std::string event;  // open | frame | closed
  uint64_t conn_id = 0;
  std::string payload;
  std::string gateway;  // the routing id of the DEALER (shard) it came from
};

inline std::string EncodeLe64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}
inline uint64_t DecodeLe64(const std::string& s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i)
    v |= uint64_t{static_cast<unsigned char>(s[i])} << (8 * i);
  return v;
}

struct EngineAnswer {
  std::string status = "200";
  std::string content_type = "application/json";
  std::string body;
};

// Returns the answer to send now, or nullopt to hold the request until ReleaseHeld.
using Script = std::function<std::optional<EngineAnswer>(const EngineRequest&)>;

// Answers echoing the request: "<kind>|<method>|<body>".
inline std::optional<EngineAnswer> Echo(const EngineRequest& r) {
  if (r.kind == "health") return EngineAnswer{"200", "text/plain", "ok"};
  if (r.kind == "metrics") return EngineAnswer{"200", "text/plain; version=0.0.4", "up 1\n"};
  return EngineAnswer{"200", "application/json", r.kind + "|" + r.method + "|" + r.body};
}

// Methods named "hold*" are held; the rest are echoed.
inline std::optional<EngineAnswer> HoldSome(const EngineRequest& r) {
  if (r.method.rfind("hold", 0) == 0) return std::nullopt;
  return Echo(r);
}

class FakeEngine {
 public:
  FakeEngine(zmq::context_t& ctx, std::string endpoint, Script script)
      : ctx_(ctx), endpoint_(std::move(endpoint)), script_(std::move(script)) {
    std::promise<void> bound;
    auto ready = bound.get_future();
    thread_ = std::thread([this, &bound] { Run(bound); });
    ready.get();
  }
  ~FakeEngine() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  size_t count() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }
  std::vector<EngineRequest> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  size_t held() const {
    std::lock_guard lock(mu_);
    return held_.size();
  }

  // WebSocket events received so far, in order.
  std::vector<WsEvent> ws_events() const {
    std::lock_guard lock(mu_);
    return ws_events_;
  }
  // The events for `conn_id` (0: all) named `event` ("" : any).
  std::vector<WsEvent> ws_events(uint64_t conn_id, const std::string& event = "") const {
    std::vector<WsEvent> out;
    for (auto& e : ws_events()) {
      if ((conn_id == 0 || e.conn_id == conn_id) && (event.empty() || e.event == event)) {
        out.push_back(e);
      }
    }
    return out;
  }

  // Sends `frames` to the gateway from the engine thread, in the order of the calls, with the
  // routing id of the DEALER that reported the conn id's `open` in front (like the engine's
  // by_conn_). A fanout whose ids belong to several DEALERs is split into one message per
  // DEALER (ids kept in order). Ids never opened, and anything else, go to the DEALER of the
  // latest message received. Needs a message from the gateway first.
  void SendToGateway(std::vector<std::string> frames) {
    std::lock_guard lock(mu_);
    commands_.push_back([this, frames = std::move(frames)](zmq::socket_t& s) {
      for (const auto& [gateway, message] : Route(frames)) {
        std::vector<zmq::const_buffer> parts{zmq::buffer(gateway)};
        for (const auto& f : message) parts.push_back(zmq::buffer(f));
        EXPECT_TRUE(zmq::send_multipart(s, parts, zmq::send_flags::none));
      }
      ++sent_;
    });
  }

  // The DEALER that reported `open` for `conn_id` ("" when none did).
  std::string gateway_of(uint64_t conn_id) const {
    std::lock_guard lock(mu_);
    auto it = conn_gateway_.find(conn_id);
    return it == conn_gateway_.end() ? std::string() : it->second;
  }
  // The routing ids of every DEALER a message came from.
  std::set<std::string> gateways() const {
    std::lock_guard lock(mu_);
    return gateways_;
  }
  // Commands sent so far (SendToGateway); lets a test wait until a burst has left.
  size_t sent() const { return sent_.load(); }

  // Answers every held request, in reverse order of arrival when `reverse`.
  void ReleaseHeld(bool reverse, std::function<EngineAnswer(const EngineRequest&)> answer) {
    std::lock_guard lock(mu_);
    commands_.push_back([this, reverse, answer](zmq::socket_t& s) {
      std::vector<EngineRequest> held;
      {
        std::lock_guard inner(mu_);
        held.swap(held_);
      }
      if (reverse) std::reverse(held.begin(), held.end());
      for (const auto& r : held) Reply(s, r, answer(r));
    });
  }

 private:
  void Run(std::promise<void>& bound) {
    zmq::socket_t socket(ctx_, zmq::socket_type::router);
    socket.set(zmq::sockopt::linger, 0);
    socket.bind(endpoint_);
    bound.set_value();
    while (!stop_) {
      std::vector<std::function<void(zmq::socket_t&)>> commands;
      {
        std::lock_guard lock(mu_);
        commands.swap(commands_);
      }
      for (auto& c : commands) c(socket);
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(5));
      std::vector<zmq::message_t> parts;
      while (zmq::recv_multipart(socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        Handle(socket, parts);
        parts.clear();
      }
    }
  }

  // Splits one command by destination DEALER (see SendToGateway). On the engine thread.
  std::vector<std::pair<std::string, std::vector<std::string>>> Route(
      const std::vector<std::string>& frames) {
    std::lock_guard lock(mu_);
    auto owner = [&](const std::string& id_frame) {
      if (id_frame.size() != 8) return gateway_id_;
      auto it = conn_gateway_.find(DecodeLe64(id_frame));
      return it == conn_gateway_.end() ? gateway_id_ : it->second;
    };
    const bool ws = frames.size() >= 3 && frames[0] == "ws";
    if (ws && frames[1] == "fanout" && frames[2].size() % 8 == 0 && !frames[2].empty()) {
      std::vector<std::pair<std::string, std::vector<std::string>>> out;
      for (size_t at = 0; at < frames[2].size(); at += 8) {
        const std::string id = frames[2].substr(at, 8);
        const std::string gateway = owner(id);
        auto it =
            std::find_if(out.begin(), out.end(), [&](const auto& m) { return m.first == gateway; });
        if (it == out.end()) {
          out.push_back({gateway, frames});
          out.back().second[2].clear();
          it = out.end() - 1;
        }
        it->second[2] += id;
      }
      return out;
    }
    return {{ws ? owner(frames[2]) : gateway_id_, frames}};
  }

  void Handle(zmq::socket_t& socket, std::vector<zmq::message_t>& parts) {
    if (!parts.empty()) {
      std::lock_guard lock(mu_);
      gateway_id_ = parts[0].to_string();
      gateways_.insert(gateway_id_);
    }
    // [routing id] ["ws"] [event] [conn id] [payload] (README "WebSocket frames").
    if (parts.size() == 5 && parts[1].to_string_view() == "ws") {
      WsEvent e{parts[2].to_string(), 0, parts[4].to_string(), parts[0].to_string()};
      EXPECT_EQ(parts[3].size(), 8u);
      if (parts[3].size() == 8) e.conn_id = DecodeLe64(parts[3].to_string());
      std::lock_guard lock(mu_);
      if (e.event == "open") {
        // Conn ids are unique per HttpServer (README "WebSocket"): never seen from two DEALERs.
        EXPECT_EQ(conn_gateway_.count(e.conn_id), 0u) << "conn id " << e.conn_id << " reused";
        conn_gateway_[e.conn_id] = e.gateway;
      }
      ws_events_.push_back(std::move(e));
      return;
    }
    // [routing id] + the bridge's 4 request frames.
    if (parts.size() != 5) {
      ADD_FAILURE() << "engine got a request of " << parts.size() << " frames";
      return;
    }
    EngineRequest r{parts[0].to_string(), parts[1].to_string(), parts[2].to_string(),
                    parts[3].to_string(), parts[4].to_string()};
    EXPECT_EQ(r.correlation_id.size(), 8u);
    std::optional<EngineAnswer> answer = script_(r);
    {
      std::lock_guard lock(mu_);
      seen_.push_back(r);
      if (!answer) held_.push_back(r);
    }
    if (answer) Reply(socket, r, *answer);
  }

  static void Reply(zmq::socket_t& socket, const EngineRequest& r, const EngineAnswer& a) {
    std::vector<zmq::const_buffer> frames{zmq::buffer(r.routing_id), zmq::buffer(r.correlation_id),
                                          zmq::buffer(a.status), zmq::buffer(a.content_type),
                                          zmq::buffer(a.body)};
    zmq::send_multipart(socket, frames, zmq::send_flags::dontwait);
  }

  zmq::context_t& ctx_;
  const std::string endpoint_;
  const Script script_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<EngineRequest> seen_;
  std::vector<EngineRequest> held_;
  std::vector<WsEvent> ws_events_;
  std::string gateway_id_;                        // of the latest message
  std::set<std::string> gateways_;                // every DEALER seen
  std::map<uint64_t, std::string> conn_gateway_;  // conn id -> DEALER of its `open`
  std::atomic<size_t> sent_{0};
  std::vector<std::function<void(zmq::socket_t&)>> commands_;
  std::thread thread_;  // last: started when everything above exists
};

// ---------------------------------------------------------------------------------------------

// Runs `server.Stop()` on a thread of its own, so that a test can check what the stop does
// meanwhile (connections closed, requests answered). Join() (or the destructor) waits for it
// and fails the process when Stop() has not returned within 5 s: a hung Stop cannot be
// recovered from (its io threads never exit).
class StopInBackground {
 public:
  explicit StopInBackground(gw::HttpServer& server)
      : stopped_(done_.get_future()), thread_([this, &server] {
          server.Stop();
          done_.set_value();
        }) {}
  ~StopInBackground() { Join(); }
  StopInBackground(const StopInBackground&) = delete;
  StopInBackground& operator=(const StopInBackground&) = delete;

  void Join() {
    if (!thread_.joinable()) return;
    if (stopped_.wait_for(5s) != std::future_status::ready) {
      std::fprintf(stderr, "FAILED: HttpServer::Stop() did not return within 5 s\n");
      std::_Exit(1);
    }
    thread_.join();
  }

 private:
  std::promise<void> done_;
  std::future<void> stopped_;
  std::thread thread_;  // last: started when the promise and its future exist
};

// Stops `server`, failing the process when Stop() does not return within 5 s.
inline void StopWithin5s(gw::HttpServer& server) {
  StopInBackground(server).Join();
}

// ---------------------------------------------------------------------------------------------

class GatewayFixture : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) server_->Stop();
    server_.reset();
    engine_.reset();
  }

  void StartEngine(Script script = Echo) {
    engine_ = std::make_unique<FakeEngine>(ctx_, endpoint_, std::move(script));
  }

  gw::HttpOptions Options() const {
    gw::HttpOptions o;
    o.api_key = kKey;
    o.engine_endpoint = endpoint_;
    o.io_threads = io_threads_;
    return o;
  }

  void StartServer(gw::HttpOptions o) {
    auto r = gw::HttpServer::Start(ctx_, std::move(o));
    ASSERT_TRUE(r.ok()) << r.error().message();
    server_ = std::move(*r);
    ASSERT_NE(server_->port(), 0);
  }
  void StartServer() { StartServer(Options()); }

  uint16_t port() const { return server_->port(); }

  static std::string NewEndpoint() {
    static std::atomic<int> n{0};
    return "inproc://gateway-test-" + std::to_string(n++);
  }

  size_t io_threads_ = 1;  // HttpOptions::io_threads of Options()
  zmq::context_t ctx_;     // outlives the engine and the server
  const std::string endpoint_ = NewEndpoint();
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<gw::HttpServer> server_;
};

// A suite run once per shard count: `class S : public ThreadsFixture {};`, TEST_P, and
// INSTANTIATE_TEST_SUITE_P(IoThreads, S, ::testing::Values(1, 2), IoThreadsName).
class ThreadsFixture : public GatewayFixture, public ::testing::WithParamInterface<size_t> {
 protected:
  ThreadsFixture() { io_threads_ = GetParam(); }
};

inline std::string IoThreadsName(const ::testing::TestParamInfo<size_t>& info) {
  return std::to_string(info.param) + "thread" + (info.param == 1 ? "" : "s");
}

}  // namespace gateway_test
