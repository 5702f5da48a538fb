#include "http_session.h"

#include <array>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "broker/gateway/log.h"
#include "engine_client.h"
#include "static_file.h"
#include "ws_session.h"

namespace chorus::broker::gateway::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// After a response that ends the connection, at most this much of what the client still sends
// is read and dropped (so the close is a FIN, not an RST that could destroy the response).
constexpr size_t kDiscardBytes = 64 * 1024;
constexpr std::chrono::seconds kDiscardTimeout{2};
// What the wait for a kept-alive connection's next request reads at once.
constexpr size_t kFirstRead = 4096;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kText = "text/plain; charset=utf-8";

struct Answer {
  int status = 500;
  std::string_view content_type;
  std::string body;
  std::string_view allow;  // 405
  // A static file: Cache-Control: no-cache and X-Content-Type-Options: nosniff.
  bool static_file = false;
  // The Content-Length when the body was not read (a HEAD of a static file); else body.size().
  std::optional<uint64_t> length;
};

Answer Make(int status, std::string_view content_type, std::string body,
            std::string_view allow = {}) {
  Answer a;
  a.status = status;
  a.content_type = content_type;
  a.body = std::move(body);
  a.allow = allow;
  return a;
}

// Server API error codes the gateway answers on its own: the Centrifugo client error codes, as
// broker/core's Errc::kInternal and Errc::kUnauthorized (the gateway does not depend on core).
constexpr int kErrorInternal = 100;
constexpr int kErrorUnauthorized = 101;

// The gateway's own answers (README "Routes"): API errors in the API's JSON shape, plain text
// for HTTP-level ones.
Answer Own(int status, std::string_view allow = {}) {
  switch (status) {
    case 401:
      return Make(401, kJson, ErrorJson(kErrorUnauthorized, "unauthorized"));
    case 502:
      return Make(502, kJson, ErrorJson(kErrorInternal, "internal server error"));
    case 503:
      return Make(503, kJson, ErrorJson(kErrorInternal, "internal server error"));
    case 400:
      return Make(400, kText, "400 bad request\n");
    case 403:
      return Make(403, kText, "403 forbidden\n");
    case 404:
      return Make(404, kText, "404 page not found\n");
    case 405:
      return Make(405, kText, "405 method not allowed\n", allow);
    case 413:
      return Make(413, kText, "413 request entity too large\n");
    case 431:
      return Make(431, kText, "431 request header fields too large\n");
    default:
      return Make(status, kText, std::to_string(status) + "\n");
  }
}

class HttpSession : public Connection, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(asio::ip::tcp::socket socket, ConnectionSlot slot, ServerContext& ctx)
      : ctx_(ctx), slot_(std::move(slot)), stream_(std::move(socket)) {
    ctx_.connections.insert(this);
  }
  ~HttpSession() override { ctx_.connections.erase(this); }

  void Run() { ReadHead(); }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  // The next request head. On a kept-alive connection with nothing buffered, first wait (up to
  // idle_timeout) for its first byte; from then (or from accept) the head must be complete
  // within header_timeout (README "Bounds": a head that trickles is dropped).
  void ReadHead() {
    if (closed_ || ctx_.stopping) return Close();
    if (served_ == 0 || buffer_.size() != 0) return ReadHeadBytes();
    stream_.expires_after(ctx_.options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->OnReadError(ec);
                              self->buffer_.commit(n);
                              self->ReadHeadBytes();
                            });
  }

  void ReadHeadBytes() {
    if (closed_ || ctx_.stopping) return Close();
    parser_.emplace();
    head_request_ = false;
    parser_->header_limit(ctx_.options.max_header_bytes);
    // The body limit is applied after routing (OnHead). Not boost::none: Beast 1.74 compares
    // the length against an empty optional as "over the limit".
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    stream_.expires_after(std::min<std::chrono::steady_clock::duration>(ctx_.options.header_timeout,
                                                                        ctx_.options.idle_timeout));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHead(ec); });
  }

  void OnHead(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    ++served_;
    Bump(ctx_.counters->requests);
    const auto& req = parser_->get();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_request_ = req.method() == http::verb::head;

    RequestHead head;
    head.method = req.method_string();
    head.target = req.target();
    if (auto it = req.find("X-API-Key"); it != req.end()) head.x_api_key = it->value();
    if (auto it = req.find(http::field::authorization); it != req.end()) {
      head.authorization = it->value();
    }
    if (auto it = req.find(http::field::origin); it != req.end()) head.origin = it->value();
    if (auto it = req.find(http::field::host); it != req.end()) head.host = it->value();
    head.websocket_upgrade = beast::websocket::is_upgrade(req);
    route_ = RouteRequest(head, ctx_.router);
    // What the router answers when the request must be rejected; otherwise 0.
    const int reject = route_.kind == RouteKind::kReject ? route_.status : 0;

    if (parser_->is_done()) return Dispatch();
    // A body follows. Over the limit: a reject keeps its own status, a forward gets 413; the
    // body is not read and the connection ends after the answer.
    const auto length = parser_->content_length();
    if (length && *length > ctx_.options.max_body_bytes) {
      return Respond(Own(reject != 0 ? reject : 413, route_.allow), /*keep_alive=*/false);
    }
    // "Expect: 100-continue" (RFC 9110 §10.1.1): a client that waits for the interim answer
    // gets it when the request is accepted; a rejected one gets the final answer and the
    // connection ends, since its body may or may not follow.
    const auto expect = req.find(http::field::expect);
    const bool expects_continue =
        expect != req.end() && beast::iequals(expect->value(), "100-continue");
    if (expects_continue && reject != 0) {
      return Respond(Own(reject, route_.allow), /*keep_alive=*/false);
    }
    parser_->body_limit(ctx_.options.max_body_bytes);  // bounds a chunked body too
    stream_.expires_after(ctx_.options.idle_timeout);
    if (!expects_continue || version_ < 11) return ReadBody();
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        self->ReadBody();
                      });
  }

  void ReadBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      Bump(ctx_.counters->bad_requests);
      const int status = route_.kind == RouteKind::kReject ? route_.status : 413;
      return Respond(Own(status, route_.allow), /*keep_alive=*/false);
    }
    if (ec) return OnReadError(ec);
    Dispatch();
  }

  // Reading a head or a body failed: the peer left, it was idle too long, or it sent
  // something that is not HTTP (400 / 431 then close).
  void OnReadError(beast::error_code ec) {
    const bool not_http =
        ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message;
    if (!not_http) {
      if (ec == beast::error::timeout) Log().debug("idle connection closed");
      return Close();
    }
    Bump(ctx_.counters->bad_requests);
    Log().debug("malformed request: {}", ec.message());
    version_ = 11;
    Respond(Own(ec == http::error::header_limit ? 431 : 400), /*keep_alive=*/false);
  }

  void Dispatch() {
    if (route_.kind == RouteKind::kReject) return Respond(Own(route_.status, route_.allow));
    if (route_.kind == RouteKind::kWebSocket) return Upgrade();
    if (route_.kind == RouteKind::kStatic) return ServeStatic();

    std::string body = route_.takes_body ? std::move(parser_->get().body()) : std::string();
    Bump(ctx_.counters->forwarded);
    stream_.expires_never();  // the engine timeout bounds the wait from here
    const std::error_code ec = ctx_.engine->Submit(
        route_.engine_kind, route_.engine_method, body,
        [self = shared_from_this()](chp::Result<EngineReply> r) { self->OnEngine(std::move(r)); });
    if (ec) {
      if (ec == chp::Errc::kBusy) Bump(ctx_.counters->engine_busy);
      return Respond(Own(503));
    }
  }

  // Hands the socket and the parsed upgrade request to a WebSocket session; this session ends
  // (it has no pending operation, so it goes away when this handler returns). A client that
  // sent bytes behind its upgrade request broke RFC 6455 §4.1 (it must wait for the 101).
  void Upgrade() {
    if (ctx_.stopping) return Close();
    if (buffer_.size() != 0) return Respond(Own(400), /*keep_alive=*/false);
    closed_ = true;  // from here the socket belongs to the WebSocket session
    StartWsSession(stream_.release_socket(), parser_->release(), std::move(slot_), ctx_);
  }

  // A file of the static directory, read here on the shard's io thread (small and bounded: README
  // "Static files"); the engine is not involved.
  void ServeStatic() {
    StaticFile f = ReadStaticFile(ctx_.static_root, route_.static_path,
                                  ctx_.options.max_static_file_bytes, !head_request_);
    if (f.status != 200) return Respond(Own(f.status));
    Answer a;
    a.status = 200;
    a.content_type = f.content_type;
    a.body = std::move(f.body);
    a.static_file = true;
    a.length = f.size;
    Respond(std::move(a));
  }

  void OnEngine(chp::Result<EngineReply> r) {
    if (closed_) return;
    if (!r.ok()) return Respond(Own(r.error() == chp::Errc::kTimeout ? 503 : 502));
    Answer a;
    a.status = r->status;
    a.content_type = r->content_type;
    a.body = std::move(r->body);
    // a.content_type views into *r, which lives until Respond has copied it into the header.
    Respond(std::move(a));
  }

  void Respond(Answer a, bool keep_alive = true) {
    if (closed_) return;
    keep_alive = keep_alive && keep_alive_ && !ctx_.stopping;
    response_ = {};
    response_.version(version_);
    response_.result(static_cast<unsigned>(a.status));
    response_.set(http::field::server, "chorus");
    if (!a.content_type.empty()) response_.set(http::field::content_type, a.content_type);
    if (!a.allow.empty()) response_.set(http::field::allow, a.allow);
    if (a.static_file) {
      response_.set(http::field::cache_control, "no-cache");
      response_.set("X-Content-Type-Options", "nosniff");
    }
    response_.keep_alive(keep_alive);
    if (head_request_) {
      // RFC 9110 §9.3.2: the headers a GET would get, no body (whatever the answer).
      response_.content_length(a.length.value_or(a.body.size()));
    } else {
      if (a.status != 204 && a.status != 304) response_.body() = std::move(a.body);
      response_.prepare_payload();
    }
    stream_.expires_after(ctx_.options.idle_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        self->OnWritten(ec, keep_alive);
                      });
  }

  void OnWritten(beast::error_code ec, bool keep_alive) {
    if (ec) return Close();
    if (keep_alive) return ReadHead();
    LingeringClose();
  }

  // Ends the connection after a final response: half-close, then read and drop what the peer
  // still sends (bounded in bytes and time), then close.
  void LingeringClose() {
    if (closed_) return;
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kDiscardTimeout);
    Discard();
  }

  void Discard() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->discarded_ += n;
                              if (ec || self->discarded_ >= kDiscardBytes) return self->Close();
                              self->Discard();
                            });
  }

  ServerContext& ctx_;
  ConnectionSlot slot_;  // handed to the WebSocket session on an upgrade
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  Route route_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_request_ = false;  // the current request is a HEAD: its answer has no body
  bool closed_ = false;
  size_t discarded_ = 0;
  uint64_t served_ = 0;  // request heads read on this connection
  std::array<char, 4096> discard_{};
};

}  // namespace

void StartHttpSession(asio::ip::tcp::socket socket, ConnectionSlot slot, ServerContext& ctx) {
  std::make_shared<HttpSession>(std::move(socket), std::move(slot), ctx)->Run();
}

}  // namespace chorus::broker::gateway::detail
