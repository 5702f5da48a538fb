#include "ws_load.h"

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <random>
#include <utility>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "http_head.h"

namespace chorus::bench {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
// Binding to a source address picks the port at connect time (per destination), not at bind
// time, so one source address is not limited to one set of ephemeral ports for all peers.
using BindAddressNoPort = asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>;

constexpr size_t kSharedBufferBytes = 256 * 1024;  // one read; the node coalesces up to 256 KiB
constexpr size_t kMaxHandshakeBytes = 8192;
constexpr size_t kKeepCapacity = 4096;  // larger per-connection buffers are freed when empty
constexpr std::string_view kWsGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

enum class State : uint8_t { kConnecting, kHandshake, kJoining, kOpen, kClosing, kClosed };

// Opcodes (RFC 6455 section 5.2).
constexpr uint8_t kOpContinuation = 0x0, kOpText = 0x1, kOpBinary = 0x2, kOpClose = 0x8,
                  kOpPing = 0x9, kOpPong = 0xA;

std::string Base64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  const int len =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

// Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2).
std::string AcceptFor(const std::string& key) {
  const std::string s = key + std::string(kWsGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  return Base64(digest, sizeof digest);
}

// The unsigned integer right after `key` in `s` (e.g. key `"offset":`), or 0.
uint64_t NumberAfter(std::string_view s, std::string_view key, size_t from = 0) {
  const size_t at = s.find(key, from);
  if (at == std::string_view::npos) return 0;
  uint64_t v = 0;
  for (size_t i = at + key.size(); i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  return v;
}

void ReleaseIfLarge(std::string& s) {
  if (s.empty() && s.capacity() > kKeepCapacity) std::string().swap(s);
}

}  // namespace

struct WsLoad::Impl {
  struct Conn {
    explicit Conn(asio::io_context& io) : sock(io) {}
    tcp::socket sock;
    std::string pending;  // received bytes not parsed yet: the handshake, or a split frame
    std::string message;  // a fragmented text message being assembled
    std::string out;      // frames waiting for the write in flight
    std::string writing;  // the write in flight
    std::string key;      // Sec-WebSocket-Key until the handshake is done
    uint64_t last_offset = 0;
    uint64_t next_id = 3;  // 1: connect, 2: subscribe, then Publish()
    uint32_t delivered = 0;
    uint32_t index = 0;
    uint8_t replies_wanted = 1;
    State state = State::kConnecting;
    bool in_write = false;
    bool joining = false;  // counted in pending_ (between connect and its last join reply)
    bool pinged = false;
  };

  explicit Impl(WsLoadOptions o) : options(std::move(o)), shared(kSharedBufferBytes), rng(42) {
    samples.reserve(std::min<size_t>(options.max_samples, size_t{1} << 20));
    error_code ec;
    peer = tcp::endpoint(asio::ip::make_address(options.host, ec), options.port);
    for (const auto& a : options.source_addresses) {
      sources.push_back(asio::ip::make_address(a, ec));
    }
  }

  ~Impl() {
    for (auto& c : conns) {
      error_code ignored;
      c->sock.close(ignored);
    }
    io.restart();
    io.poll();  // the aborted handlers run while their connections still exist
  }

  // ---- connection setup ----
  void Start(Conn& c) {
    error_code ec;
    c.sock.open(tcp::v4(), ec);
    if (!ec && !sources.empty()) {
      c.sock.set_option(BindAddressNoPort(true), ec);
      ec = {};  // older kernels: bind still works, with a port per source address
      c.sock.bind(tcp::endpoint(sources[next_source++ % sources.size()], 0), ec);
    }
    if (ec) return Fail(c, "socket: " + ec.message());
    c.joining = true;
    ++pending_joins;
    c.sock.async_connect(peer, [this, &c](const error_code& e) { OnConnected(c, e); });
  }

  void OnConnected(Conn& c, const error_code& ec) {
    if (c.state == State::kClosed) return;
    if (ec) return Fail(c, "connect: " + ec.message());
    error_code ignored;
    c.sock.set_option(tcp::no_delay(true), ignored);
    c.sock.non_blocking(true, ignored);
    unsigned char raw[16];
    for (auto& b : raw) b = static_cast<unsigned char>(rng());
    c.key = Base64(raw, sizeof raw);
    const std::string target = options.raw && channel_of
                                   ? options.target + (*channel_of)(c.index - open_first)
                                   : options.target;
    c.out = "GET " + target + " HTTP/1.1\r\nHost: " + options.host + ":" +
            std::to_string(options.port) +
            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + c.key +
            "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    c.state = State::kHandshake;
    Flush(c);
    WaitReadable(c);
  }

  void OnHandshakeBytes(Conn& c) {
    const size_t end = c.pending.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.pending.size() > kMaxHandshakeBytes) Fail(c, "handshake: response head too long");
      return;
    }
    const std::string_view head(c.pending.data(), end + 2);
    if (head.rfind("HTTP/1.1 101", 0) != 0) {
      return Fail(c, "handshake: " + std::string(head.substr(0, head.find("\r\n"))));
    }
    if (HeaderValue(head, "Sec-WebSocket-Accept") != AcceptFor(c.key)) {
      ++counters.protocol_errors;
      return Fail(c, "handshake: wrong Sec-WebSocket-Accept");
    }
    std::string().swap(c.key);
    std::string rest = c.pending.substr(end + 4);
    c.pending.clear();
    if (options.raw) {
      Joined(c);
      if (!rest.empty()) OnBytes(c, rest.data(), rest.size());
      return;
    }
    c.state = State::kJoining;
    const std::string channel = channel_of ? (*channel_of)(c.index - open_first) : std::string();
    std::string join = R"({"id":1,"connect":{}})";
    c.replies_wanted = 1;
    if (!channel.empty()) {
      join += "\n{\"id\":2,\"subscribe\":{\"channel\":\"" + channel + "\"}}";
      c.replies_wanted = 2;
    }
    SendFrame(c, kOpText, join);
    if (!rest.empty()) OnBytes(c, rest.data(), rest.size());
  }

  void Joined(Conn& c) {
    c.state = State::kOpen;
    ++counters.opened;
    ++open_now;
    EndJoin(c);
  }

  void EndJoin(Conn& c) {
    if (!c.joining) return;
    c.joining = false;
    --pending_joins;
    StartMore();
  }

  void StartMore() {
    while (next_start < open_end && pending_joins < options.max_pending) {
      Start(*conns[next_start++]);
    }
  }

  // ---- reading ----
  void WaitReadable(Conn& c) {
    c.sock.async_wait(tcp::socket::wait_read, [this, &c](const error_code& ec) {
      if (c.state == State::kClosed) return;
      if (ec) return Lost(c, "wait: " + ec.message());
      OnReadable(c);
    });
  }

  // Reads until the socket would block (Asio's epoll is edge-triggered), then waits again.
  void OnReadable(Conn& c) {
    for (;;) {
      error_code ec;
      const size_t n = c.sock.read_some(asio::buffer(shared), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec) return Lost(c, ec == asio::error::eof ? "eof" : "read: " + ec.message());
      ++counters.reads;
      OnBytes(c, shared.data(), n);
      if (c.state == State::kClosed) return;
    }
    WaitReadable(c);
  }

  void OnBytes(Conn& c, const char* data, size_t n) {
    if (c.state == State::kHandshake) {
      c.pending.append(data, n);
      return OnHandshakeBytes(c);
    }
    const bool from_pending = !c.pending.empty();
    if (from_pending) c.pending.append(data, n);
    std::string_view buf = from_pending ? std::string_view(c.pending) : std::string_view(data, n);
    size_t pos = 0;
    while (c.state != State::kClosed) {
      const size_t used = OneFrame(c, buf.substr(pos));
      if (used == 0) break;
      pos += used;
    }
    if (c.state == State::kClosed) return;
    if (from_pending) {
      c.pending.erase(0, pos);
    } else {
      c.pending.assign(buf.substr(pos));
    }
    ReleaseIfLarge(c.pending);
  }

  // Handles the frame at the start of `b`; returns its size, 0 when it is not complete.
  size_t OneFrame(Conn& c, std::string_view b) {
    if (b.size() < 2) return 0;
    const auto* u = reinterpret_cast<const unsigned char*>(b.data());
    const bool fin = (u[0] & 0x80) != 0;
    const uint8_t op = u[0] & 0x0F;
    if ((u[0] & 0x70) != 0 || (u[1] & 0x80) != 0) {  // RSV bits, or a masked server frame
      ++counters.protocol_errors;
      Fail(c, "frame: RSV bit or mask set by the server");
      return 0;
    }
    size_t header = 2;
    uint64_t len = u[1] & 0x7F;
    if (len == 126) {
      if (b.size() < 4) return 0;
      len = (uint64_t{u[2]} << 8) | u[3];
      header = 4;
    } else if (len == 127) {
      if (b.size() < 10) return 0;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | u[2 + i];
      header = 10;
    }
    if (b.size() < header + len) return 0;
    const std::string_view payload = b.substr(header, len);
    switch (op) {
      case kOpText:
      case kOpContinuation:
        if (op == kOpText && fin && c.message.empty()) {
          OnMessage(c, payload);
        } else {
          c.message.append(payload);
          if (fin) {
            const std::string m = std::move(c.message);
            c.message.clear();
            OnMessage(c, m);
          }
        }
        break;
      case kOpPing:
        if (options.raw) Pinged(c);
        SendFrame(c, kOpPong, payload);
        break;
      case kOpPong:
        break;
      case kOpClose: {
        const uint16_t code =
            payload.size() >= 2
                ? static_cast<uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                        static_cast<unsigned char>(payload[1]))
                : 1005;
        counters.last_close_code = code;
        if (c.state == State::kClosing) {
          Close(c);
        } else {
          Lost(c, "close " + std::to_string(code) + " " +
                      std::string(payload.size() > 2 ? payload.substr(2) : ""));
        }
        break;
      }
      case kOpBinary:
      default:
        ++counters.protocol_errors;
        Fail(c, "frame: unexpected opcode " + std::to_string(op));
        return 0;
    }
    return header + len;
  }

  // One text message: lines separated by '\n' (W-3, W-10); in raw mode one publication.
  void OnMessage(Conn& c, std::string_view m) {
    ++counters.text_messages;
    if (options.raw) {
      if (m.rfind("{\"t\":", 0) == 0) {
        Delivered(c, NumberAfter(m, "{\"t\":"));
      } else {
        ++counters.other_pushes;
      }
      return;
    }
    while (!m.empty() && c.state != State::kClosed) {
      const size_t nl = m.find('\n');
      std::string_view line = m.substr(0, nl);
      m = nl == std::string_view::npos ? std::string_view() : m.substr(nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      OnLine(c, line);
    }
  }

  void OnLine(Conn& c, std::string_view line) {
    if (line == "{}") {  // the server's ping (W-9)
      Pinged(c);
      SendFrame(c, kOpText, "{}");
      return;
    }
    if (line.find("\"push\":") != std::string_view::npos) {
      const size_t pub = line.find("\"pub\":{");
      const size_t t = line.find("{\"t\":", pub == std::string_view::npos ? line.size() : pub);
      if (pub == std::string_view::npos || t == std::string_view::npos) {
        ++counters.other_pushes;
        if (line.find("\"disconnect\":") != std::string_view::npos ||
            line.find("\"unsubscribe\":") != std::string_view::npos) {
          counters.last_error = std::string(line.substr(0, 200));
        }
        return;
      }
      Delivered(c, NumberAfter(line, "{\"t\":", t));
      // The offset follows the data; data we publish holds no "offset" key.
      const uint64_t offset = NumberAfter(line, "\"offset\":", t);
      if (offset != 0) {
        if (c.last_offset != 0 && offset != c.last_offset + 1) ++counters.order_errors;
        c.last_offset = offset;
      }
      return;
    }
    const uint64_t id = NumberAfter(line, "\"id\":");
    ++counters.replies;
    const bool error = line.find("\"error\":") != std::string_view::npos;
    if (error) {
      ++counters.error_replies;
      counters.last_error = std::string(line.substr(0, 200));
    }
    if (id >= 3) {
      ++counters.publish_replies;
      return;
    }
    if (c.state != State::kJoining) return;
    if (error) return Fail(c, "join: " + std::string(line.substr(0, 200)));
    if (id == c.replies_wanted) Joined(c);
  }

  void Pinged(Conn& c) {
    ++counters.pings;
    if (!c.pinged) {
      c.pinged = true;
      ++counters.pinged;
    }
  }

  // A publication sent at `sent` (NowNs()) reached `c`.
  void Delivered(Conn& c, uint64_t sent) {
    const uint64_t now = NowNs();
    if (samples.size() < options.max_samples) {
      samples.push_back(static_cast<uint32_t>(std::min<uint64_t>(now - sent, UINT32_MAX)));
    }
    ++counters.delivered;
    ++c.delivered;
  }

  // ---- writing ----
  // Appends one masked client frame (RFC 6455 section 5.3) and starts writing.
  void SendFrame(Conn& c, uint8_t op, std::string_view payload) {
    const size_t n = payload.size();
    std::string& o = c.out;
    o.push_back(static_cast<char>(0x80 | op));
    if (n < 126) {
      o.push_back(static_cast<char>(0x80 | n));
    } else if (n <= 0xFFFF) {
      o.push_back(static_cast<char>(0x80 | 126));
      o.push_back(static_cast<char>(n >> 8));
      o.push_back(static_cast<char>(n & 0xFF));
    } else {
      o.push_back(static_cast<char>(0x80 | 127));
      for (int i = 7; i >= 0; --i) o.push_back(static_cast<char>((uint64_t{n} >> (8 * i)) & 0xFF));
    }
    const uint32_t key = static_cast<uint32_t>(rng());
    const unsigned char mask[4] = {
        static_cast<unsigned char>(key >> 24), static_cast<unsigned char>(key >> 16),
        static_cast<unsigned char>(key >> 8), static_cast<unsigned char>(key)};
    o.append(reinterpret_cast<const char*>(mask), 4);
    const size_t at = o.size();
    o.append(payload);
    for (size_t i = 0; i < n; ++i) o[at + i] = static_cast<char>(o[at + i] ^ mask[i & 3]);
    Flush(c);
  }

  void Flush(Conn& c) {
    if (c.in_write || c.out.empty() || c.state == State::kClosed) return;
    c.in_write = true;
    c.writing.swap(c.out);
    asio::async_write(c.sock, asio::buffer(c.writing), [this, &c](const error_code& ec, size_t) {
      c.in_write = false;
      c.writing.clear();
      ReleaseIfLarge(c.writing);
      if (c.state == State::kClosed) return;
      if (ec) return Lost(c, "write: " + ec.message());
      Flush(c);
    });
  }

  // ---- endings ----
  // Before the connection was open: it counts as failed.
  void Fail(Conn& c, const std::string& why) {
    if (c.state == State::kClosed) return;
    if (c.state == State::kOpen || c.state == State::kClosing) return Lost(c, why);
    ++counters.failed;
    counters.last_error = why;
    Close(c);
  }

  // An open connection ended without our close: the node closed it or the socket failed.
  void Lost(Conn& c, const std::string& why) {
    if (c.state == State::kClosed) return;
    if (c.state == State::kClosing) return Close(c);
    if (c.state != State::kOpen) return Fail(c, why);
    ++counters.closed_by_node;
    counters.last_error = why;
    Close(c);
  }

  void Close(Conn& c) {
    if (c.state == State::kOpen || c.state == State::kClosing) --open_now;
    c.state = State::kClosed;
    error_code ignored;
    c.sock.close(ignored);
    std::string().swap(c.pending);
    std::string().swap(c.message);
    std::string().swap(c.out);
    EndJoin(c);
  }

  WsLoadOptions options;
  asio::io_context io{1};
  tcp::endpoint peer;
  std::vector<asio::ip::address> sources;
  size_t next_source = 0;
  std::vector<char> shared;
  std::vector<std::unique_ptr<Conn>> conns;
  std::minstd_rand rng;
  WsLoadCounters counters;
  std::vector<uint32_t> samples;
  size_t pending_joins = 0;
  size_t open_now = 0;
  // The batch Open() is starting.
  size_t open_first = 0, open_end = 0, next_start = 0;
  const std::function<std::string(size_t)>* channel_of = nullptr;
};

WsLoad::WsLoad(WsLoadOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
WsLoad::~WsLoad() = default;

WsLoad::OpenResult WsLoad::Open(size_t n, const std::function<std::string(size_t)>& channel,
                                std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  OpenResult r;
  r.first = m.conns.size();
  for (size_t i = 0; i < n; ++i) {
    m.conns.push_back(std::make_unique<Impl::Conn>(m.io));
    m.conns.back()->index = static_cast<uint32_t>(r.first + i);
  }
  m.open_first = r.first;
  m.open_end = r.first + n;
  m.next_start = r.first;
  m.channel_of = &channel;
  const uint64_t before_ok = m.counters.opened, before_failed = m.counters.failed;
  m.StartMore();
  RunUntil(
      [&] {
        return m.counters.opened + m.counters.failed - before_ok - before_failed >= n &&
               m.next_start == m.open_end;
      },
      timeout);
  m.next_start = m.open_end;  // no more starts; the rest fail below
  for (size_t i = r.first; i < r.first + n; ++i) {
    Impl::Conn& c = *m.conns[i];
    if (c.state != State::kOpen && c.state != State::kClosed) m.Fail(c, "open: timeout");
  }
  m.channel_of = nullptr;
  r.ok = m.counters.opened - before_ok;
  return r;
}

void WsLoad::Publish(size_t conn, std::string_view channel, std::string_view data_json) {
  Impl::Conn& c = *impl_->conns.at(conn);
  if (c.state != State::kOpen || impl_->options.raw) return;
  std::string cmd = "{\"id\":" + std::to_string(c.next_id++) + ",\"publish\":{\"channel\":\"";
  cmd.append(channel);
  cmd += "\",\"data\":";
  cmd.append(data_json);
  cmd += "}}";
  impl_->SendFrame(c, kOpText, cmd);
}

bool WsLoad::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto& io = impl_->io;
  io.restart();
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    // run_one_until returns 0 when the io_context has no work at all: then wait in slices.
    if (io.run_one_until(std::min(
            deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(50))) == 0 &&
        io.stopped()) {
      io.restart();
      if (done()) return true;
      if (impl_->open_now == 0 && impl_->pending_joins == 0) return done();
    }
  }
  return true;
}

size_t WsLoad::CloseAll(std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  for (auto& c : m.conns) {
    if (c->state != State::kOpen) continue;
    c->state = State::kClosing;
    const char code[2] = {static_cast<char>(1000 >> 8), static_cast<char>(1000 & 0xFF)};
    m.SendFrame(*c, kOpClose, std::string_view(code, 2));
  }
  RunUntil([&] { return m.open_now == 0; }, timeout);
  const size_t left = m.open_now;
  for (auto& c : m.conns) {
    if (c->state == State::kClosing) m.Close(*c);
  }
  return left;
}

const WsLoadCounters& WsLoad::counters() const {
  return impl_->counters;
}
size_t WsLoad::size() const {
  return impl_->conns.size();
}
size_t WsLoad::open_count() const {
  return impl_->open_now;
}
uint64_t WsLoad::DeliveredTo(size_t conn) const {
  return impl_->conns.at(conn)->delivered;
}
std::vector<uint32_t> WsLoad::TakeLatencies() {
  return std::move(impl_->samples);
}

}  // namespace chorus::bench
