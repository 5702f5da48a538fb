#include "cluster_peers.h"

#include <hiredis/hiredis.h>
#include <nats/nats.h>
#include <poll.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "node_support.h"
#include "paced.h"

namespace chorus::bench {

namespace {

constexpr char kSubject[] = "bench.route";
constexpr char kChannel[] = "bench:route";

// --- NATS -----------------------------------------------------------------------------------

struct OptionsFree {
  void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
};
using Options = std::unique_ptr<natsOptions, OptionsFree>;

// A connection to 127.0.0.1:`port` that never reconnects (a lost connection fails the run) and
// writes each PUB at once (libnats otherwise waits up to 1 ms to batch, as in peer_nats.cc).
natsConnection* NatsConnect(int port) {
  natsOptions* o = nullptr;
  if (natsOptions_Create(&o) != NATS_OK) return nullptr;
  Options opts(o);
  const std::string url = "nats://127.0.0.1:" + std::to_string(port);
  natsConnection* nc = nullptr;
  if (natsOptions_SetURL(o, url.c_str()) != NATS_OK || natsOptions_SetTimeout(o, 5000) != NATS_OK ||
      natsOptions_SetAllowReconnect(o, false) != NATS_OK ||
      natsOptions_SetSendAsap(o, true) != NATS_OK || natsConnection_Connect(&nc, o) != NATS_OK) {
    return nullptr;
  }
  return nc;
}

bool NatsPing(int port) {
  natsConnection* nc = NatsConnect(port);
  if (nc == nullptr) return false;
  const bool ok = natsConnection_FlushTimeout(nc, 1000) == NATS_OK;
  natsConnection_Destroy(nc);
  return ok;
}

// One synchronous subscription drained by its own thread: payloads with a send time go to the
// latency samples, anything else counts as a probe.
class NatsReceiver {
 public:
  explicit NatsReceiver(natsSubscription* sub) : sub_(sub) {
    thread_ = std::thread([this] { Run(); });
  }
  ~NatsReceiver() { Join(); }
  uint64_t received() const { return deliveries_.received(); }
  uint64_t probes() const { return probes_.load(); }
  std::vector<uint32_t> TakeSamples() {
    Join();
    return deliveries_.Take();
  }

 private:
  void Join() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void Run() {
    while (!stop_.load(std::memory_order_relaxed)) {
      natsMsg* m = nullptr;
      if (natsSubscription_NextMsg(&m, sub_, 20) != NATS_OK) continue;
      const char* d = natsMsg_GetData(m);
      const auto n = static_cast<size_t>(natsMsg_GetDataLength(m));
      if (SendTime(d, n) == 0) {
        ++probes_;
      } else {
        deliveries_.Record(d, n);
        deliveries_.Commit();
      }
      natsMsg_Destroy(m);
    }
  }

  natsSubscription* sub_;
  Deliveries deliveries_;
  std::atomic<uint64_t> probes_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// --- Redis ----------------------------------------------------------------------------------

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

Context RedisConnect(int port) {
  Context c(redisConnectWithTimeout("127.0.0.1", port, timeval{5, 0}));
  if (c && c->err) c.reset();
  return c;
}

// Reads every complete reply available on `c` (waiting `wait_ms` for the first) into `on`.
// False when the connection failed.
template <typename OnReply>
bool RedisDrain(redisContext* c, int wait_ms, OnReply&& on) {
  pollfd p{c->fd, POLLIN, 0};
  while (poll(&p, 1, wait_ms) > 0) {
    if (redisBufferRead(c) != REDIS_OK) return false;
    void* raw = nullptr;
    while (redisGetReplyFromReader(c, &raw) == REDIS_OK && raw != nullptr) {
      on(Reply(static_cast<redisReply*>(raw)));
    }
    wait_ms = 0;
  }
  return true;
}

class RedisReceiver {
 public:
  explicit RedisReceiver(redisContext* c) : c_(c) {
    thread_ = std::thread([this] { Run(); });
  }
  ~RedisReceiver() { Join(); }
  uint64_t received() const { return deliveries_.received(); }
  std::vector<uint32_t> TakeSamples() {
    Join();
    return deliveries_.Take();
  }
  bool failed() const { return failed_; }  // after TakeSamples

 private:
  void Join() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void Run() {
    while (!stop_.load(std::memory_order_relaxed) && !failed_) {
      failed_ = !RedisDrain(c_, 20, [&](Reply r) {
        // ["message", channel, payload]
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[2]->type == REDIS_REPLY_STRING) {
          deliveries_.Record(r->element[2]->str, r->element[2]->len);
        }
      });
      deliveries_.Commit();
    }
  }

  redisContext* c_;
  Deliveries deliveries_;
  std::atomic<bool> stop_{false};
  bool failed_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<NatsRoutePeer> NatsRoutePeer::Start(std::string& error) {
  const std::string bin = FindProgram("nats-server");
  if (bin.empty()) {
    error =
        "nats-server not found (Debian package nats-server, in /usr/sbin; "
        "scripts/install-deps.sh installs it)";
    return nullptr;
  }
  for (int attempt = 0; attempt < 3; ++attempt) {  // another process may take a port first
    std::unique_ptr<NatsRoutePeer> peer(new NatsRoutePeer());
    peer->s1_ = std::make_unique<PeerProcess>("nats1", SIGINT);
    peer->s2_ = std::make_unique<PeerProcess>("nats2", SIGINT);
    const int c1 = FreeLoopbackPort(), c2 = FreeLoopbackPort();
    peer->monitor_port_ = FreeLoopbackPort();
    auto args = [](PeerProcess& p, int own, int other) {
      return std::vector<std::string>{"-a",
                                      "127.0.0.1",
                                      "-p",
                                      std::to_string(p.port()),
                                      "-l",
                                      p.dir() + "/nats.log",
                                      "--cluster_name",
                                      "bench",
                                      "--cluster",
                                      "nats://127.0.0.1:" + std::to_string(own),
                                      "--routes",
                                      "nats://127.0.0.1:" + std::to_string(other)};
    };
    std::vector<std::string> a1 = args(*peer->s1_, c1, c2);
    a1.insert(a1.end(), {"-m", std::to_string(peer->monitor_port_)});
    peer->s1_->Start(bin, a1);
    peer->s2_->Start(bin, args(*peer->s2_, c2, c1));
    const bool up = chorus::testing::EventuallyTrue(
        [&] {
          return (NatsPing(peer->s1_->port()) && NatsPing(peer->s2_->port())) ||
                 !peer->s1_->Running() || !peer->s2_->Running();
        },
        std::chrono::seconds(10));
    if (up && peer->s1_->Running() && peer->s2_->Running()) return peer;
    error = "nats-server cluster did not answer within 10 s; logs: " + peer->s1_->Tail("nats.log") +
            " | " + peer->s2_->Tail("nats.log");
  }
  return nullptr;
}

NatsRoutePeer::~NatsRoutePeer() = default;

bool NatsRoutePeer::Stop() {
  const bool a = s1_->Stop(), b = s2_->Stop();
  return a && b;
}

namespace {

// The messages server 1 sent over its routes so far (/routez "out_msgs" summed); -1 on error.
double RouteOutMsgs(int monitor_port) {
  auto r = chorus::testing::HttpRequest("127.0.0.1", monitor_port, "GET", "/routez");
  auto j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (r.status != 200 || j.is_discarded() || !j.contains("routes")) return -1;
  double n = 0;
  for (const auto& route : j["routes"]) n += route.value("out_msgs", 0.0);
  return n;
}

}  // namespace

Figures NatsRoutePeer::Paced(int count, double rate, double* route_msgs) {
  natsConnection* sub_nc = NatsConnect(s2_->port());
  natsConnection* pub = NatsConnect(s1_->port());
  natsSubscription* sub = nullptr;
  Figures f{.complete = false};
  if (sub_nc == nullptr || pub == nullptr ||
      natsConnection_SubscribeSync(&sub, sub_nc, kSubject) != NATS_OK ||
      natsConnection_FlushTimeout(sub_nc, 5000) != NATS_OK) {
    fprintf(stderr, "cluster_bench: nats: could not connect or subscribe\n");
  } else {
    int errors = 0;
    {
      NatsReceiver rx(sub);
      // Server 1 learns the subscription over the route: probe until one arrives.
      const bool routed = chorus::testing::EventuallyTrue(
          [&] {
            natsConnection_PublishString(pub, kSubject, "probe");
            return rx.probes() > 0;
          },
          std::chrono::seconds(10));
      const double before = RouteOutMsgs(monitor_port_);
      if (routed) {
        f = RunPaced(rx, count, rate, [&](const std::string& payload) {
          if (natsConnection_Publish(pub, kSubject, payload.data(),
                                     static_cast<int>(payload.size())) != NATS_OK) {
            ++errors;
          }
        });
      } else {
        fprintf(stderr, "cluster_bench: nats: the route never carried the subscription\n");
      }
      const double after = RouteOutMsgs(monitor_port_);
      if (route_msgs != nullptr) *route_msgs = before >= 0 && after >= 0 ? after - before : -1;
    }
    if (errors > 0 || natsConnection_FlushTimeout(pub, 5000) != NATS_OK) f.complete = false;
  }
  if (sub_nc != nullptr) natsConnection_Close(sub_nc);
  if (sub != nullptr) natsSubscription_Destroy(sub);
  if (sub_nc != nullptr) natsConnection_Destroy(sub_nc);
  if (pub != nullptr) natsConnection_Destroy(pub);
  return f;
}

Figures RedisPaced(int port, int count, double rate) {
  Context sub = RedisConnect(port), pub = RedisConnect(port);
  if (!sub || !pub) return {.complete = false};
  Reply r(static_cast<redisReply*>(redisCommand(sub.get(), "SUBSCRIBE %s", kChannel)));
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return {.complete = false};
  RedisReceiver rx(sub.get());
  int sent = 0, replies = 0, errors = 0;
  auto on_reply = [&](Reply reply) {
    ++replies;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) ++errors;
  };
  Figures f = RunPaced(rx, count, rate, [&](const std::string& payload) {
    redisAppendCommand(pub.get(), "PUBLISH %s %b", kChannel, payload.data(), payload.size());
    int done = 0;
    while (!done) {
      if (redisBufferWrite(pub.get(), &done) != REDIS_OK) {
        ++errors;
        break;
      }
    }
    ++sent;
    if (!RedisDrain(pub.get(), 0, on_reply)) ++errors;
  });
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (replies < sent && errors == 0 && Clock::now() < deadline) {
    if (!RedisDrain(pub.get(), 50, on_reply)) ++errors;
  }
  if (replies < sent || errors > 0 || rx.failed()) {
    fprintf(stderr, "cluster_bench: redis: %d of %d replies, %d errors\n", replies, sent, errors);
    f.complete = false;
  }
  return f;
}

}  // namespace chorus::bench
