#include "peer_redis.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>

#include <cstdio>
#include <cstring>

namespace chorus::bench {

namespace {

constexpr char kChannel[] = "bench:fan";

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

Context Connect(int port) {
  const timeval tv{5, 0};
  Context c(redisConnectWithTimeout("127.0.0.1", port, tv));
  if (c && c->err) c.reset();
  return c;
}

Reply Command(redisContext* c, const char* fmt, const char* arg = nullptr) {
  return Reply(static_cast<redisReply*>(arg ? redisCommand(c, fmt, arg) : redisCommand(c, fmt)));
}

bool Ping(int port) {
  Context c = Connect(port);
  if (!c) return false;
  Reply r = Command(c.get(), "PING");
  return r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
}

// One thread drains every subscriber connection (poll over their sockets, one read per
// readiness, every complete reply parsed), as broker_bench's Receiver does for chorus.
class Receiver {
 public:
  explicit Receiver(const std::vector<Context>& subs) {
    for (const auto& c : subs) ctxs_.push_back(c.get());
    thread_ = std::thread([this] { Run(); });
  }
  ~Receiver() { Join(); }
  uint64_t received() const { return deliveries_.received(); }
  std::vector<uint32_t> TakeSamples() {
    Join();
    return deliveries_.Take();
  }
  bool failed() const { return failed_; }

 private:
  void Join() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void Run() {
    std::vector<pollfd> fds;
    for (auto* c : ctxs_) fds.push_back({c->fd, POLLIN, 0});
    while (!stop_.load(std::memory_order_relaxed)) {
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        if (redisBufferRead(ctxs_[i]) != REDIS_OK) {
          fds[i].fd = -1;  // closed or broken: poll ignores it from now on
          failed_ = true;
          continue;
        }
        void* raw = nullptr;
        while (redisGetReplyFromReader(ctxs_[i], &raw) == REDIS_OK && raw != nullptr) {
          Reply r(static_cast<redisReply*>(raw));
          // ["message", channel, payload]
          if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
              r->element[2]->type == REDIS_REPLY_STRING) {
            deliveries_.Record(r->element[2]->str, r->element[2]->len);
          }
        }
      }
      deliveries_.Commit();
    }
  }

  std::vector<redisContext*> ctxs_;
  Deliveries deliveries_;
  std::atomic<bool> stop_{false};
  bool failed_ = false;  // written by the receiver thread, read after Join
  std::thread thread_;
};

}  // namespace

std::unique_ptr<RedisPeer> RedisPeer::Start(std::string& error) {
  const std::string bin = FindProgram("redis-server");
  if (bin.empty()) {
    error =
        "redis-server not found (Debian package redis-server; scripts/install-deps.sh installs "
        "it)";
    return nullptr;
  }
  for (int attempt = 0; attempt < 3; ++attempt) {  // another process may take the port first
    auto proc = std::make_unique<PeerProcess>("redis", SIGTERM);
    const int port = proc->port();
    proc->Start(bin, {"--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", proc->dir(), "--logfile",
                      proc->dir() + "/redis.log", "--loglevel", "warning", "--daemonize", "no"});
    const bool up = chorus::testing::EventuallyTrue([&] { return Ping(port) || !proc->Running(); },
                                                    std::chrono::seconds(10));
    if (up && proc->Running()) return std::unique_ptr<RedisPeer>(new RedisPeer(std::move(proc)));
    error = "redis-server on port " + std::to_string(port) +
            " did not answer PING within 10 s; log: " + proc->Tail("redis.log");
  }
  return nullptr;
}

RedisPeer::~RedisPeer() = default;

bool RedisPeer::Stop() {
  return proc_->Stop();
}

Figures RedisPeer::Fanout(size_t subs, int messages, int burst) {
  std::vector<Context> sockets;
  for (size_t i = 0; i < subs; ++i) {
    Context c = Connect(port());
    Reply r = c ? Command(c.get(), "SUBSCRIBE %s", kChannel) : nullptr;
    // The reply ["subscribe", channel, count] comes once the server holds the subscription.
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
      fprintf(stderr, "broker_bench: redis subscriber %zu could not subscribe\n", i);
      return {.complete = false};
    }
    sockets.push_back(std::move(c));
  }
  Context pub = Connect(port());
  if (!pub) {
    fprintf(stderr, "broker_bench: redis publisher could not connect\n");
    return {.complete = false};
  }
  Receiver rx(sockets);
  int sent = 0, replies = 0, errors = 0;
  auto drain = [&](int wait_ms) {
    pollfd p{pub->fd, POLLIN, 0};
    while (poll(&p, 1, wait_ms) > 0) {
      if (redisBufferRead(pub.get()) != REDIS_OK) {
        ++errors;
        return;
      }
      void* raw = nullptr;
      while (redisGetReplyFromReader(pub.get(), &raw) == REDIS_OK && raw != nullptr) {
        Reply r(static_cast<redisReply*>(raw));
        ++replies;
        // PUBLISH answers the number of clients that received the message.
        if (r->type != REDIS_REPLY_INTEGER || r->integer != static_cast<long long>(subs)) {
          ++errors;
        }
      }
      wait_ms = 0;
    }
  };
  Figures f = RunBursts(rx, subs, messages, burst, [&](const std::string& payload) {
    redisAppendCommand(pub.get(), "PUBLISH %s %b", kChannel, payload.data(), payload.size());
    int done = 0;
    while (!done) {
      if (redisBufferWrite(pub.get(), &done) != REDIS_OK) {
        ++errors;
        break;
      }
    }
    if (++sent % 64 == 0) drain(0);
  });
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (replies < sent && errors == 0 && Clock::now() < deadline) drain(50);
  if (replies < sent || errors > 0 || rx.failed()) {
    fprintf(stderr, "broker_bench: redis: %d of %d publish replies, %d errors%s\n", replies, sent,
            errors, rx.failed() ? ", a subscriber connection failed" : "");
    f.complete = false;
  }
  return f;
}

}  // namespace chorus::bench
