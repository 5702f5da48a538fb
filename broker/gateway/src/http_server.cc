#include "broker/gateway/http_server.h"

#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/gateway/log.h"
#include "engine_client.h"
#include "http_session.h"
#include "server_context.h"
#include "static_file.h"
#include "ws_hub.h"

namespace chorus::broker::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace detail {

HttpStats Counters::Snapshot() const {
  constexpr auto r = std::memory_order_relaxed;
  HttpStats s;
  s.connections_accepted = connections_accepted.load(r);
  s.connections_rejected = connections_rejected.load(r);
  s.requests = requests.load(r);
  s.forwarded = forwarded.load(r);
  s.engine_replies = engine_replies.load(r);
  s.engine_timeouts = engine_timeouts.load(r);
  s.engine_busy = engine_busy.load(r);
  s.unmatched_replies = unmatched_replies.load(r);
  s.malformed_replies = malformed_replies.load(r);
  s.bad_requests = bad_requests.load(r);
  s.ws_open = ws_open.load(r);
  s.ws_closed = ws_closed.load(r);
  s.ws_slow_closed = ws_slow_closed.load(r);
  s.ws_frames_in = ws_frames_in.load(r);
  s.ws_messages_out = ws_messages_out.load(r);
  s.ws_frames_out = ws_frames_out.load(r);
  s.ws_bytes_queued = ws_bytes_queued.load(r);
  s.ws_malformed = ws_malformed.load(r);
  s.ws_unknown_conn = ws_unknown_conn.load(r);
  return s;
}

}  // namespace detail

namespace {

std::error_code ToStd(const boost::system::error_code& ec) {
  if (ec.category() == boost::system::generic_category()) {
    return {ec.value(), std::generic_category()};
  }
  if (ec.category() == boost::system::system_category()) {
    return {ec.value(), std::system_category()};
  }
  return ec;  // Boost's adapter category
}

bool Valid(const HttpOptions& o) {
  return !o.engine_endpoint.empty() && o.max_connections > 0 && o.max_in_flight > 0 &&
         o.engine_timeout.count() > 0 && o.idle_timeout.count() > 0 && o.max_header_bytes > 0 &&
         o.max_ws_queue_bytes > 0 && o.max_ws_message_bytes > 0 &&
         o.ws_handshake_timeout.count() > 0 && o.max_static_file_bytes > 0;
}

}  // namespace

// Owns the io thread. Everything below `thread_` in the member list except `port_` and
// `counters_` belongs to that thread: it creates the engine client and the acceptor (Setup),
// and destroys them (Teardown) before it exits. The io_context is declared first so that it
// outlives every I/O object.
class HttpServer::Impl {
 public:
  Impl(zmq::context_t& zctx, HttpOptions o, std::string static_root) : zctx_(zctx) {
    ctx_.options = std::move(o);
    ctx_.router.api_key = ctx_.options.api_key;
    ctx_.static_root = std::move(static_root);
    ctx_.router.static_files = !ctx_.static_root.empty();
    ctx_.counters = &counters_;
  }

  std::error_code Launch() {
    std::promise<std::error_code> ready;
    auto result = ready.get_future();
    thread_ = std::thread([this, &ready] { ThreadMain(ready); });
    const std::error_code ec = result.get();
    if (ec) thread_.join();
    return ec;
  }

  void Stop() {
    std::lock_guard lock(stop_mu_);
    if (!thread_.joinable()) return;
    if (std::this_thread::get_id() == thread_.get_id()) {
      Log().error("HttpServer::Stop called from its own io thread: ignored");
      return;
    }
    asio::post(io_, [this] { Shutdown(); });
    thread_.join();
    Log().info("http server on port {} stopped", port_.load());
  }

  uint16_t port() const { return port_.load(); }
  HttpStats stats() const { return counters_.Snapshot(); }

 private:
  void ThreadMain(std::promise<std::error_code>& ready) {
    const std::error_code ec = Setup();
    ready.set_value(ec);  // `ready` is gone after this
    if (!ec) {
      // Unexpected exceptions (from libzmq, or bad_alloc) are caught once here; the loop goes
      // on. run() returns when Shutdown has cancelled all work.
      for (;;) {
        try {
          io_.run();
          break;
        } catch (const std::exception& e) {
          Log().error("io thread: {}", e.what());
        }
      }
    }
    Teardown();
  }

  std::error_code Setup() {
    auto engine = detail::EngineClient::Create(
        io_, zctx_,
        {ctx_.options.engine_endpoint, ctx_.options.engine_timeout, ctx_.options.max_in_flight},
        counters_);
    if (!engine) return engine.error();
    engine_ = std::move(*engine);
    ctx_.engine = engine_.get();
    ws_ = std::make_unique<detail::WsHub>(io_, ctx_);
    ctx_.ws = ws_.get();
    engine_->SetWsHandler([hub = ws_.get()](const std::vector<zmq::message_t>& parts) {
      hub->OnEngineMessage(parts);
    });

    boost::system::error_code ec;
    const auto address = asio::ip::make_address(ctx_.options.address, ec);
    if (ec) return std::make_error_code(std::errc::invalid_argument);
    const tcp::endpoint endpoint(address, ctx_.options.port);
    acceptor_.emplace(io_);
    acceptor_->open(endpoint.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(endpoint, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ToStd(ec);
    port_ = acceptor_->local_endpoint(ec).port();
    if (ec) return ToStd(ec);
    retry_timer_.emplace(io_);

    engine_->Start();
    Accept();
    Log().info("http server listening on {}:{} (engine {}, api {})", ctx_.options.address,
               port_.load(), ctx_.options.engine_endpoint,
               ctx_.options.api_key.empty() ? "disabled" : "enabled");
    if (!ctx_.static_root.empty()) Log().info("static files from {}", ctx_.static_root);
    return {};
  }

  void Accept() {
    acceptor_->async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      OnAccept(ec, std::move(socket));
    });
  }

  void OnAccept(const boost::system::error_code& ec, tcp::socket socket) {
    if (ctx_.stopping || ec == asio::error::operation_aborted) return;
    if (ec) {
      // E.g. out of descriptors: retry shortly instead of spinning.
      Log().warn("accept: {}", ec.message());
      retry_timer_->expires_after(std::chrono::milliseconds(50));
      retry_timer_->async_wait([this](const boost::system::error_code& e) {
        if (!e && !ctx_.stopping) Accept();
      });
      return;
    }
    if (ctx_.connections.size() >= ctx_.options.max_connections) {
      detail::Bump(counters_.connections_rejected);
      boost::system::error_code ignored;
      socket.close(ignored);
    } else {
      detail::Bump(counters_.connections_accepted);
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      detail::StartHttpSession(std::move(socket), ctx_);
    }
    Accept();
  }

  // On the io thread: cancel everything so that io_.run() returns.
  void Shutdown() {
    ctx_.stopping = true;
    boost::system::error_code ignored;
    acceptor_->close(ignored);
    retry_timer_->cancel();
    const std::vector<detail::Connection*> open(ctx_.connections.begin(), ctx_.connections.end());
    for (detail::Connection* c : open) c->Close();  // WebSockets: 1001 and `closed` reported
    ws_->Shutdown();
    engine_->Shutdown();  // drops the callbacks that kept sessions waiting for the engine
  }

  void Teardown() {
    retry_timer_.reset();
    acceptor_.reset();
    ctx_.ws = nullptr;
    ws_.reset();
    ctx_.engine = nullptr;
    engine_.reset();  // closes the DEALER on its owner thread
  }

  zmq::context_t& zctx_;
  asio::io_context io_{1};
  detail::Counters counters_;
  std::atomic<uint16_t> port_{0};
  std::mutex stop_mu_;
  std::thread thread_;
  // io thread only:
  detail::ServerContext ctx_;
  std::unique_ptr<detail::EngineClient> engine_;
  std::unique_ptr<detail::WsHub> ws_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::steady_timer> retry_timer_;
};

chp::Result<std::unique_ptr<HttpServer>> HttpServer::Start(zmq::context_t& ctx, HttpOptions o) {
  if (!Valid(o)) return std::make_error_code(std::errc::invalid_argument);
  std::string static_root;
  if (!o.static_dir.empty()) {
    auto root = detail::ResolveStaticRoot(o.static_dir);
    if (!root) return root.error();
    static_root = std::move(*root);
  }
  auto impl = std::make_unique<Impl>(ctx, std::move(o), std::move(static_root));
  if (const std::error_code ec = impl->Launch()) return ec;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() {
  Stop();
}
uint16_t HttpServer::port() const {
  return impl_->port();
}
HttpStats HttpServer::stats() const {
  return impl_->stats();
}
void HttpServer::Stop() {
  impl_->Stop();
}

}  // namespace chorus::broker::gateway
