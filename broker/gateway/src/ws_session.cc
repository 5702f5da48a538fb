#include "ws_session.h"

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "broker/gateway/bridge_codec.h"
#include "broker/gateway/log.h"
#include "ws_hub.h"

namespace chorus::broker::gateway::detail {
namespace {

using bridge::kCloseAbnormal;
using bridge::kCloseBadRequest;
using bridge::kCloseGoingAway;
using bridge::kCloseNoStatus;
using bridge::kCloseProtocolError;
using bridge::kCloseSlow;
using bridge::kCloseTooBig;
using bridge::kCloseTryAgainLater;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Request = http::request<http::string_body>;

// One coalesced frame holds at most this many bytes (a single larger message goes alone).
constexpr size_t kMaxCoalescedBytes = 256 * 1024;
// After the gateway starts a close (close frame queued behind the write in flight, then the
// client's answer), the connection is dropped at the latest this much later.
constexpr std::chrono::milliseconds kCloseGrace{2000};
constexpr std::chrono::milliseconds kStopGrace{500};  // the same while the server stops

std::string RemoteAddress(const asio::ip::tcp::socket& s) {
  boost::system::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  const std::string ip = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(ep.port());
}

// The close code to report for a read that failed with `ec` while the connection was open.
uint16_t ReadErrorCode(const beast::error_code& ec, const websocket::close_reason& peer) {
  if (ec == websocket::error::closed) {
    return peer.code == websocket::close_code::none ? kCloseNoStatus : peer.code;
  }
  if (ec == websocket::error::message_too_big) return kCloseTooBig;  // Beast sent 1009
  if (ec == websocket::error::bad_frame_payload) return 1007;        // Beast sent 1007 (UTF-8)
  if (ec.category() == beast::error_code(websocket::error::closed).category()) {
    return kCloseProtocolError;  // Beast failed the connection with 1002
  }
  return kCloseAbnormal;  // EOF, reset, ...
}

class WsSession : public Connection,
                  public WsConnection,
                  public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(asio::ip::tcp::socket socket, Request request, ConnectionSlot slot, ServerContext& ctx)
      : ctx_(ctx),
        slot_(std::move(slot)),
        ws_(std::move(socket)),
        request_(std::move(request)),
        grace_(ws_.get_executor()) {
    ctx_.connections.insert(this);
  }
  ~WsSession() override {
    DropQueue();
    Unregister(kCloseAbnormal, /*report=*/true);  // a safety net: every path unregisters first
    ctx_.connections.erase(this);
  }

  void Run() {
    beast::get_lowest_layer(ws_).expires_never();  // the websocket timeouts below apply instead
    websocket::stream_base::timeout t{};
    t.handshake_timeout = ctx_.options.ws_handshake_timeout;  // also bounds Beast's close
    t.idle_timeout = websocket::stream_base::none();  // the engine pings (Centrifugo protocol)
    t.keep_alive_pings = false;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "chorus"); }));
    ws_.read_message_max(ctx_.options.max_ws_message_bytes);
    ws_.auto_fragment(false);  // one message, one frame
    ws_.async_accept(request_,
                     [self = shared_from_this()](beast::error_code ec) { self->OnAccept(ec); });
  }

  // Stop(): 1001, reported, and a short grace.
  void Close() override {
    if (id_ == 0) return Teardown();  // handshake not done: the engine never heard of it
    CloseReported(kCloseGoingAway, "server shutdown", kStopGrace);
  }

  void Push(std::shared_ptr<const std::string> message) override {
    if (closing_) return;
    const size_t n = message->size();
    if (queued_bytes_ + n > ctx_.options.max_ws_queue_bytes) {
      Log().info("ws {}: more than {} bytes queued, closing (slow)", id_,
                 ctx_.options.max_ws_queue_bytes);
      return CloseReported(kCloseSlow, "slow", kCloseGrace);
    }
    queued_bytes_ += n;
    Bump(ctx_.counters->ws_bytes_queued, n);
    queue_.push_back(std::move(message));
    Write();
  }

  void CloseFromEngine(uint16_t code, const std::string& reason) override {
    Unregister(code, /*report=*/false);  // the hub has forgotten us already
    StartClose(code, reason, kCloseGrace);
  }

 private:
  void OnAccept(beast::error_code ec) {
    request_ = {};
    // A failed handshake was answered by Beast (400 / 426); the engine never hears of it.
    if (ec || closing_ || ctx_.stopping || ctx_.ws == nullptr) return Teardown();
    id_ = ctx_.ws->Open(this, RemoteAddress(beast::get_lowest_layer(ws_).socket()));
    if (id_ == 0) return StartClose(kCloseTryAgainLater, "try again later", kCloseGrace);
    registered_ = true;
    Read();
  }

  void Read() {
    ws_.async_read(in_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (closing_) return;  // our close owns the connection now (and reads the client's answer)
    if (ec) {
      const uint16_t code = ReadErrorCode(ec, ws_.reason());
      Unregister(code, /*report=*/true);
      return Teardown();  // after error::closed Beast has answered the close and torn down
    }
    if (!ws_.got_text()) {
      return CloseReported(kCloseBadRequest, "bad request", kCloseGrace);  // W-1
    }
    const auto data = in_.data();
    const std::string_view message(static_cast<const char*>(data.data()), data.size());
    const bool sent = ctx_.ws->Frame(id_, message);
    in_.consume(in_.size());
    if (!sent) {
      Log().warn("ws {}: engine bridge would block, closing", id_);
      return CloseReported(kCloseTryAgainLater, "try again later", kCloseGrace);
    }
    Read();
  }

  // One async_write at a time. Several queued messages go out as one text frame joined by
  // '\n' (at most kMaxCoalescedBytes), written from the shared buffers without copying them.
  void Write() {
    if (writing_ || closing_ || queue_.empty()) return;
    writing_ = true;
    size_t bytes = 0;
    in_flight_.clear();
    buffers_.clear();
    do {
      if (!in_flight_.empty()) buffers_.emplace_back(kNewline.data(), kNewline.size());
      bytes += queue_.front()->size();
      buffers_.emplace_back(queue_.front()->data(), queue_.front()->size());
      in_flight_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    } while (!queue_.empty() &&
             bytes + in_flight_.size() + queue_.front()->size() <= kMaxCoalescedBytes);
    in_flight_bytes_ = bytes;
    ws_.text(true);
    ws_.async_write(buffers_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWritten(ec);
    });
  }

  void OnWritten(beast::error_code ec) {
    writing_ = false;
    queued_bytes_ -= in_flight_bytes_;
    Drop(ctx_.counters->ws_bytes_queued, in_flight_bytes_);
    in_flight_bytes_ = 0;
    const size_t messages = in_flight_.size();
    in_flight_.clear();
    buffers_.clear();
    if (closing_) return;
    if (ec) {
      Unregister(kCloseAbnormal, /*report=*/true);
      return Teardown();
    }
    Bump(ctx_.counters->ws_frames_out);
    Bump(ctx_.counters->ws_messages_out, messages);
    Write();
  }

  void CloseReported(uint16_t code, std::string_view reason, std::chrono::milliseconds grace) {
    if (closing_) return;
    Unregister(code, /*report=*/true);
    StartClose(code, reason, grace);
  }

  // Drops the queue and sends a close frame (after the write in flight, if any); the
  // connection is dropped when the close handshake ends or after `grace`, whichever is first.
  void StartClose(uint16_t code, std::string_view reason, std::chrono::milliseconds grace) {
    if (closing_) return;
    closing_ = true;
    DropQueue();
    grace_.expires_after(grace);
    grace_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->Teardown();
    });
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason),
                    [self = shared_from_this()](beast::error_code) { self->Teardown(); });
  }

  // Closes the socket: every pending operation ends. Idempotent.
  void Teardown() {
    closing_ = true;
    DropQueue();
    if (torn_down_) return;
    torn_down_ = true;
    grace_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).close();
  }

  void Unregister(uint16_t code, bool report) {
    if (!registered_) return;
    registered_ = false;
    if (ctx_.ws != nullptr) ctx_.ws->Closed(id_, code, report);
  }

  void DropQueue() {
    size_t n = 0;
    for (const auto& m : queue_) n += m->size();
    queue_.clear();
    queued_bytes_ -= n;
    Drop(ctx_.counters->ws_bytes_queued, n);
  }

  static constexpr std::string_view kNewline = "\n";

  ServerContext& ctx_;
  ConnectionSlot slot_;  // given back when the session is gone
  websocket::stream<beast::tcp_stream> ws_;
  Request request_;  // the upgrade request, until the handshake completes
  asio::steady_timer grace_;
  beast::flat_buffer in_;
  uint64_t id_ = 0;          // 0 until the engine was told `open`
  bool registered_ = false;  // in the hub; the engine has not been told `closed` yet
  bool writing_ = false;
  bool closing_ = false;  // a close was started (or the socket is gone): no more I/O of ours
  bool torn_down_ = false;
  // Messages waiting, then the ones being written; queued_bytes_ counts both.
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::vector<std::shared_ptr<const std::string>> in_flight_;
  std::vector<asio::const_buffer> buffers_;
  size_t in_flight_bytes_ = 0;
  size_t queued_bytes_ = 0;
};

}  // namespace

template <class UpgradeRequest>
void StartWsSession(asio::ip::tcp::socket socket, UpgradeRequest request, ConnectionSlot slot,
                    ServerContext& ctx) {
  std::make_shared<WsSession>(std::move(socket), std::move(request), std::move(slot), ctx)->Run();
}

template void StartWsSession<Request>(asio::ip::tcp::socket socket, Request request,
                                      ConnectionSlot slot, ServerContext& ctx);

}  // namespace chorus::broker::gateway::detail
