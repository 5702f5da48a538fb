#include "broker/gateway/http_server.h"

#include <pthread.h>

#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
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
  return !o.engine_endpoint.empty() && o.io_threads >= 1 &&
         o.io_threads <= HttpOptions::kMaxIoThreads && o.max_connections > 0 &&
         o.max_in_flight > 0 && o.engine_timeout.count() > 0 && o.idle_timeout.count() > 0 &&
         o.max_header_bytes > 0 && o.max_ws_queue_bytes > 0 && o.max_ws_message_bytes > 0 &&
         o.ws_handshake_timeout.count() > 0 && o.max_static_file_bytes > 0 &&
         o.header_timeout.count() > 0;
}

// "chorus-http-<i>" (top, ps -L, /proc/<pid>/task/*/comm); Linux allows 15 characters.
void NameThisThread(size_t shard) {
  const std::string name = "chorus-http-" + std::to_string(shard);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace

// Owns the shards (README "Threads and ownership"). A shard is one io thread with its
// io_context, engine client (DEALER), WebSocket hub, connections and in-flight requests; its
// thread creates them (SetupShard), is the only one to touch them, and destroys them
// (TeardownShard) before it exits. Shard 0's thread also owns the listener (acceptor, retry
// timer, the socket being accepted) and hands every accepted socket to a shard. Only `shared_`,
// `port_` and each shard's `open` count (relaxed atomics) are read across threads.
class HttpServer::Impl {
 public:
  Impl(zmq::context_t& zctx, HttpOptions o, std::string static_root) : zctx_(zctx) {
    for (size_t i = 0; i < o.io_threads; ++i) {
      auto s = std::make_unique<Shard>();
      s->ctx.options = o;
      s->ctx.router.api_key = o.api_key;
      s->ctx.static_root = static_root;
      s->ctx.router.static_files = !static_root.empty();
      s->ctx.router.metrics_key = o.metrics_key;
      s->ctx.router.allowed_origins = o.allowed_origins;
      s->ctx.shard = i;
      s->ctx.shared = &shared_;
      s->ctx.counters = &shared_.counters;
      shards_.push_back(std::move(s));
    }
  }

  // Starts every shard's thread and waits for their setup. On an error (shard 0's first: the
  // DEALER, then the listener) the shards that are up are shut down and every thread joined.
  std::error_code Launch() {
    std::vector<std::promise<std::error_code>> ready(shards_.size());
    std::vector<std::future<std::error_code>> results;
    for (auto& p : ready) results.push_back(p.get_future());
    for (size_t i = 0; i < shards_.size(); ++i) {
      shards_[i]->thread = std::thread([this, i, &ready] { ShardMain(*shards_[i], ready[i]); });
    }
    std::error_code first;
    std::vector<Shard*> up;
    for (size_t i = 0; i < shards_.size(); ++i) {
      const std::error_code ec = results[i].get();
      if (!ec) up.push_back(shards_[i].get());
      if (ec && !first) first = ec;
    }
    if (first) {
      for (Shard* s : up) asio::post(s->io, [this, s] { ShutdownShard(*s); });
      for (auto& s : shards_) s->thread.join();
      return first;
    }
    // Every shard runs: the listener may hand sockets out now.
    asio::post(shards_[0]->io, [this] { Accept(); });
    const HttpOptions& o = shards_[0]->ctx.options;
    Log().info("http server listening on {}:{} ({} io thread{}, engine {}, api {})", o.address,
               port_.load(), shards_.size(), shards_.size() == 1 ? "" : "s", o.engine_endpoint,
               o.api_key.empty() ? "disabled" : "enabled");
    if (!shards_[0]->ctx.static_root.empty()) {
      Log().info("static files from {}", shards_[0]->ctx.static_root);
    }
    return {};
  }

  // Shard 0 (the listener) shuts down first and is waited for, so that no socket is handed to
  // a shard after that shard's shutdown; then the others; then every thread is joined.
  void Stop() {
    std::lock_guard lock(stop_mu_);
    if (!shards_[0]->thread.joinable()) return;
    for (const auto& s : shards_) {
      if (std::this_thread::get_id() == s->thread.get_id()) {
        Log().error("HttpServer::Stop called from one of its io threads: ignored");
        return;
      }
    }
    std::promise<void> listener_down;
    asio::post(shards_[0]->io, [this, &listener_down] {
      ShutdownShard(*shards_[0]);
      listener_down.set_value();
    });
    listener_down.get_future().wait();
    for (size_t i = 1; i < shards_.size(); ++i) {
      Shard* s = shards_[i].get();
      asio::post(s->io, [this, s] { ShutdownShard(*s); });
    }
    for (auto& s : shards_) s->thread.join();
    Log().info("http server on port {} stopped", port_.load());
  }

  uint16_t port() const { return port_.load(); }
  HttpStats stats() const { return shared_.counters.Snapshot(); }

 private:
  struct Shard {
    asio::io_context io{1};  // first: outlives every I/O object of the shard
    // Slots (open connections) of this shard: taken by the listener on shard 0's thread, given
    // back by the sessions on this shard's thread.
    std::atomic<size_t> open{0};
    std::thread thread;
    // This shard's thread only:
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    detail::ServerContext ctx;
    std::unique_ptr<detail::EngineClient> engine;
    std::unique_ptr<detail::WsHub> ws;
  };

  void ShardMain(Shard& s, std::promise<std::error_code>& ready) {
    NameThisThread(s.ctx.shard);
    const std::error_code ec = SetupShard(s);
    ready.set_value(ec);  // `ready` is gone after this
    if (!ec) {
      // Unexpected exceptions (from libzmq, or bad_alloc) are caught once here; the loop goes
      // on. run() returns when ShutdownShard has cancelled all work (the work guard included).
      for (;;) {
        try {
          s.io.run();
          break;
        } catch (const std::exception& e) {
          Log().error("io thread {}: {}", s.ctx.shard, e.what());
        }
      }
    }
    TeardownShard(s);
  }

  std::error_code SetupShard(Shard& s) {
    const HttpOptions& o = s.ctx.options;
    auto engine = detail::EngineClient::Create(
        s.io, zctx_, {o.engine_endpoint, o.engine_timeout, o.max_in_flight}, shared_);
    if (!engine) return engine.error();
    s.engine = std::move(*engine);
    s.ctx.engine = s.engine.get();
    s.ws = std::make_unique<detail::WsHub>(s.io, s.ctx);
    s.ctx.ws = s.ws.get();
    s.engine->SetWsHandler([hub = s.ws.get()](const std::vector<zmq::message_t>& parts) {
      hub->OnEngineMessage(parts);
    });
    s.work.emplace(s.io.get_executor());
    if (&s == shards_[0].get()) {
      if (const std::error_code ec = Listen(s)) return ec;
    }
    s.engine->Start();
    return {};
  }

  // Shard 0's thread: binds and listens; accepting starts once every shard is up (Launch).
  std::error_code Listen(Shard& s) {
    const HttpOptions& o = s.ctx.options;
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(o.address, ec);
    if (ec) return std::make_error_code(std::errc::invalid_argument);
    const tcp::endpoint endpoint(address, o.port);
    acceptor_.emplace(s.io);
    acceptor_->open(endpoint.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(endpoint, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ToStd(ec);
    port_ = acceptor_->local_endpoint(ec).port();
    if (ec) return ToStd(ec);
    retry_timer_.emplace(s.io);
    return {};
  }

  // Shard 0's thread. The next connection is accepted straight into a socket of the shard
  // chosen now (its io_context's reactor registers the descriptor; Asio allows that from
  // another thread), so it never has to move between reactors.
  void Accept() {
    Shard& target = Pick();
    accepting_.emplace(target.io);
    accepting_for_ = &target;
    acceptor_->async_accept(*accepting_,
                            [this](const boost::system::error_code& ec) { OnAccept(ec); });
  }

  // The shard with the fewest open connections; among equals, the one after the last pick
  // (so short HTTP connections go round-robin, and long-lived WebSockets are balanced).
  Shard& Pick() {
    const size_t n = shards_.size();
    size_t best = next_pick_ % n;
    size_t best_open = std::numeric_limits<size_t>::max();
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (next_pick_ + k) % n;
      const size_t open = shards_[i]->open.load(std::memory_order_relaxed);
      if (open < best_open) {
        best = i;
        best_open = open;
      }
    }
    next_pick_ = best + 1;
    return *shards_[best];
  }

  // Open connections of all shards. Only this thread (shard 0's) adds to the counts, so the
  // sum never misses one of its own additions and max_connections holds exactly; a decrement
  // not yet visible only makes the bound briefly stricter.
  size_t OpenConnections() const {
    size_t total = 0;
    for (const auto& s : shards_) total += s->open.load(std::memory_order_relaxed);
    return total;
  }

  void OnAccept(const boost::system::error_code& ec) {
    Shard& shard0 = *shards_[0];
    if (shard0.ctx.stopping || ec == asio::error::operation_aborted) return;
    if (ec) {
      // E.g. out of descriptors: retry shortly instead of spinning.
      // Logged at most once per kAcceptLogEvery (at EMFILE it fails every retry, 20 times a
      // second); the first accept that works after a logged failure reports how many were not
      // logged. So at most two lines per kAcceptLogEvery (docs/operations.md "Descriptors").
      const auto now = std::chrono::steady_clock::now();
      if (accept_errors_logged_ == std::chrono::steady_clock::time_point{} ||
          now - accept_errors_logged_ >= kAcceptLogEvery) {
        Log().warn("accept: {} ({} more since the last report)", ec.message(),
                   accept_errors_quiet_);
        accept_errors_logged_ = now;
        accept_errors_quiet_ = 0;
        accept_error_reported_ = true;
      } else {
        ++accept_errors_quiet_;
      }
      retry_timer_->expires_after(std::chrono::milliseconds(50));
      retry_timer_->async_wait([this](const boost::system::error_code& e) {
        if (!e && !shards_[0]->ctx.stopping) Accept();
      });
      return;
    }
    if (accept_error_reported_) {
      Log().warn("accept: working again ({} more failures since the last report, not logged)",
                 accept_errors_quiet_);
      accept_errors_quiet_ = 0;
      accept_error_reported_ = false;
    }
    tcp::socket socket = std::move(*accepting_);
    Shard& target = *accepting_for_;
    boost::system::error_code ignored;
    const size_t per_address = shard0.ctx.options.max_connections_per_address;
    std::string address;
    if (per_address > 0) address = socket.remote_endpoint(ignored).address().to_string();
    if (OpenConnections() >= shard0.ctx.options.max_connections ||
        (per_address > 0 && !shared_.per_address.TryAdd(address, per_address))) {
      detail::Bump(shared_.counters.connections_rejected);
      socket.close(ignored);
    } else {
      detail::Bump(shared_.counters.connections_accepted);
      socket.set_option(tcp::no_delay(true), ignored);
      target.open.fetch_add(1, std::memory_order_relaxed);
      Handoff(target, std::move(socket),
              per_address > 0
                  ? detail::ConnectionSlot(&target.open, &shared_.per_address, std::move(address))
                  : detail::ConnectionSlot(&target.open));
    }
    Accept();
  }

  // Shard 0's thread: `socket` (of `target`'s io_context) and its slot go to `target`'s
  // thread, which starts the session; a shard that is stopping drops them (closed, released).
  void Handoff(Shard& target, tcp::socket socket, detail::ConnectionSlot slot) {
    if (&target == shards_[0].get()) {
      return detail::StartHttpSession(std::move(socket), std::move(slot), target.ctx);
    }
    asio::post(target.io, [&target, socket = std::move(socket), slot = std::move(slot)]() mutable {
      if (target.ctx.stopping) return;
      detail::StartHttpSession(std::move(socket), std::move(slot), target.ctx);
    });
  }

  // On the shard's thread: cancel everything so that its io.run() returns.
  void ShutdownShard(Shard& s) {
    s.ctx.stopping = true;
    boost::system::error_code ignored;
    if (&s == shards_[0].get()) {
      if (acceptor_) acceptor_->close(ignored);
      if (retry_timer_) retry_timer_->cancel();
    }
    const std::vector<detail::Connection*> open(s.ctx.connections.begin(), s.ctx.connections.end());
    for (detail::Connection* c : open) c->Close();  // WebSockets: 1001 and `closed` reported
    s.ws->Shutdown();
    s.engine->Shutdown();  // drops the callbacks that kept sessions waiting for the engine
    s.work.reset();
  }

  void TeardownShard(Shard& s) {
    if (&s == shards_[0].get()) {
      retry_timer_.reset();
      accepting_.reset();
      accepting_for_ = nullptr;
      acceptor_.reset();
    }
    s.work.reset();
    s.ctx.ws = nullptr;
    s.ws.reset();
    s.ctx.engine = nullptr;
    s.engine.reset();  // closes the DEALER on its owner thread
  }

  zmq::context_t& zctx_;
  detail::SharedState shared_;
  std::atomic<uint16_t> port_{0};
  std::mutex stop_mu_;
  std::vector<std::unique_ptr<Shard>> shards_;  // fixed from the constructor on
  // Shard 0's thread only (the listener):
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::steady_timer> retry_timer_;
  static constexpr std::chrono::seconds kAcceptLogEvery{10};
  std::chrono::steady_clock::time_point accept_errors_logged_{};
  size_t accept_errors_quiet_ = 0;        // accept errors not logged since the last report
  bool accept_error_reported_ = false;    // a failure was logged and no accept worked since
  std::optional<tcp::socket> accepting_;  // of accepting_for_'s io_context
  Shard* accepting_for_ = nullptr;
  size_t next_pick_ = 0;
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
