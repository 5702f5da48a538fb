#include "peer_nats.h"

#include <nats/nats.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

namespace chorus::bench {

namespace {

constexpr char kSubject[] = "bench.fan";

struct OptionsFree {
  void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
};
using Options = std::unique_ptr<natsOptions, OptionsFree>;

// Options for a connection to 127.0.0.1:`port` that does not reconnect (a lost connection is a
// failed run, not something to hide).
Options MakeOptions(int port) {
  natsOptions* o = nullptr;
  if (natsOptions_Create(&o) != NATS_OK) return nullptr;
  Options opts(o);
  const std::string url = "nats://127.0.0.1:" + std::to_string(port);
  if (natsOptions_SetURL(o, url.c_str()) != NATS_OK || natsOptions_SetTimeout(o, 5000) != NATS_OK ||
      natsOptions_SetAllowReconnect(o, false) != NATS_OK) {
    return nullptr;
  }
  return opts;
}

bool Ping(int port) {
  Options opts = MakeOptions(port);
  natsConnection* nc = nullptr;
  if (!opts || natsConnection_Connect(&nc, opts.get()) != NATS_OK) return false;
  // Connect already exchanged INFO, CONNECT, PING and PONG; one more round trip to be sure.
  const bool ok = natsConnection_FlushTimeout(nc, 1000) == NATS_OK;
  natsConnection_Destroy(nc);
  return ok;
}

// An external event loop for libnats (natsOptions_SetEventLoop): one thread polls every
// subscriber connection's socket, lets libnats read and write on it, and drains each
// connection's synchronous subscription, as broker_bench's Receiver does for chorus.
// Threads: libnats calls Attach/Read/Write/Detach from whichever thread is using a connection;
// they only set atomics and wake the loop. The loop thread is the only one that calls
// natsConnection_Process*Event and NextMsg. Join() before any connection is destroyed.
class EventLoop {
 public:
  EventLoop() : wake_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~EventLoop() {
    Join();
    close(wake_);
  }
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  bool Configure(natsOptions* o) {
    return natsOptions_SetEventLoop(o, this, &Attach, &Read, &Write, &Detach) == NATS_OK;
  }
  // Hands the loop the subscription to drain for `nc` (after nc was connected through it).
  void SetSubscription(natsConnection* nc, natsSubscription* sub) {
    std::lock_guard lock(mu_);
    for (auto& c : conns_) {
      if (c->nc == nc) c->sub.store(sub, std::memory_order_release);
    }
  }
  uint64_t received() const { return deliveries_.received(); }
  std::vector<uint32_t> TakeSamples() {
    Join();
    return deliveries_.Take();
  }
  void Join() {
    stop_ = true;
    Wake();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Conn {
    EventLoop* loop = nullptr;
    natsConnection* nc = nullptr;
    std::atomic<natsSock> fd{-1};
    std::atomic<bool> attached{false};
    std::atomic<bool> want_read{false};
    std::atomic<bool> want_write{false};
    std::atomic<natsSubscription*> sub{nullptr};
  };

  void Wake() {
    const uint64_t one = 1;
    (void)!write(wake_, &one, sizeof one);
  }

  static natsStatus Attach(void** user, void* loop, natsConnection* nc, natsSock fd) {
    auto* self = static_cast<EventLoop*>(loop);
    auto* c = static_cast<Conn*>(*user);
    if (c == nullptr) {  // first attach (there is no reconnect: AllowReconnect is off)
      std::lock_guard lock(self->mu_);
      self->conns_.push_back(std::make_unique<Conn>());
      c = self->conns_.back().get();
      c->loop = self;
      c->nc = nc;
      *user = c;
    }
    c->fd = fd;
    c->want_read = true;
    c->attached = true;
    self->Wake();
    return NATS_OK;
  }
  static natsStatus Read(void* user, bool add) {
    auto* c = static_cast<Conn*>(user);
    c->want_read = add;
    c->loop->Wake();
    return NATS_OK;
  }
  static natsStatus Write(void* user, bool add) {
    auto* c = static_cast<Conn*>(user);
    c->want_write = add;
    if (add) c->loop->Wake();
    return NATS_OK;
  }
  static natsStatus Detach(void* user) {
    auto* c = static_cast<Conn*>(user);
    c->attached = false;
    c->loop->Wake();
    return NATS_OK;
  }

  void Run() {
    std::vector<pollfd> fds;
    std::vector<Conn*> who;
    while (!stop_.load(std::memory_order_relaxed)) {
      fds.assign(1, {wake_, POLLIN, 0});
      who.assign(1, nullptr);
      {
        std::lock_guard lock(mu_);
        for (auto& c : conns_) {
          if (!c->attached) continue;
          const short ev =
              static_cast<short>((c->want_read ? POLLIN : 0) | (c->want_write ? POLLOUT : 0));
          if (ev == 0) continue;
          fds.push_back({c->fd, ev, 0});
          who.push_back(c.get());
        }
      }
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents != 0) {
        uint64_t v;
        (void)!read(wake_, &v, sizeof v);
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        const short rev = fds[i].revents;
        if (rev == 0) continue;
        Conn* c = who[i];
        if (rev & (POLLIN | POLLERR | POLLHUP)) natsConnection_ProcessReadEvent(c->nc);
        if (rev & POLLOUT) natsConnection_ProcessWriteEvent(c->nc);
        natsSubscription* sub = c->sub.load(std::memory_order_acquire);
        if (sub == nullptr) continue;
        natsMsg* m = nullptr;
        while (natsSubscription_NextMsg(&m, sub, 0) == NATS_OK) {
          deliveries_.Record(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
          natsMsg_Destroy(m);
        }
      }
      deliveries_.Commit();
    }
  }

  const int wake_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> conns_;  // guarded by mu_; entries live as long as *this
  Deliveries deliveries_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The subscriber side of one run. Teardown order: the loop stops first (no thread touches a
// connection being freed); then every connection is closed before its subscription is
// destroyed, so no UNSUB is left in a buffer that only the stopped loop could write (closing
// would wait for it to be flushed, a timeout per connection).
struct Subscribers {
  EventLoop loop;
  std::vector<natsConnection*> conns;
  std::vector<natsSubscription*> subs;
  ~Subscribers() {
    loop.Join();
    for (auto* nc : conns) natsConnection_Close(nc);
    for (auto* s : subs) natsSubscription_Destroy(s);
    for (auto* nc : conns) natsConnection_Destroy(nc);
  }
};

}  // namespace

std::unique_ptr<NatsPeer> NatsPeer::Start(std::string& error) {
  const std::string bin = FindProgram("nats-server");
  if (bin.empty()) {
    error =
        "nats-server not found (Debian package nats-server, in /usr/sbin; "
        "scripts/install-deps.sh installs it)";
    return nullptr;
  }
  for (int attempt = 0; attempt < 3; ++attempt) {  // another process may take the port first
    auto proc = std::make_unique<PeerProcess>("nats", SIGINT);
    const int port = proc->port();
    proc->Start(bin,
                {"-a", "127.0.0.1", "-p", std::to_string(port), "-l", proc->dir() + "/nats.log"});
    const bool up = chorus::testing::EventuallyTrue([&] { return Ping(port) || !proc->Running(); },
                                                    std::chrono::seconds(10));
    if (up && proc->Running()) return std::unique_ptr<NatsPeer>(new NatsPeer(std::move(proc)));
    error = "nats-server on port " + std::to_string(port) +
            " did not answer within 10 s; log: " + proc->Tail("nats.log");
  }
  return nullptr;
}

NatsPeer::~NatsPeer() = default;

bool NatsPeer::Stop() {
  return proc_->Stop();
}

Figures NatsPeer::Fanout(size_t subs, int messages, int burst) {
  Subscribers rx;
  // SendAsap here only spares each subscriber connection libnats' flusher thread, which it
  // starts even on an external event loop; the few writes (SUB, PING, PONG) go through the loop.
  Options sub_opts = MakeOptions(port());
  if (!sub_opts || natsOptions_SetSendAsap(sub_opts.get(), true) != NATS_OK ||
      !rx.loop.Configure(sub_opts.get())) {
    return {.complete = false};
  }
  for (size_t i = 0; i < subs; ++i) {
    natsConnection* nc = nullptr;
    natsSubscription* sub = nullptr;
    natsStatus s = natsConnection_Connect(&nc, sub_opts.get());
    if (s == NATS_OK) rx.conns.push_back(nc);
    if (s == NATS_OK) s = natsConnection_SubscribeSync(&sub, nc, kSubject);
    if (s == NATS_OK) {
      rx.subs.push_back(sub);
      rx.loop.SetSubscription(nc, sub);
      // The PONG comes back once the server has processed the SUB before it.
      s = natsConnection_FlushTimeout(nc, 10000);
    }
    if (s != NATS_OK) {
      fprintf(stderr, "broker_bench: nats subscriber %zu: %s\n", i, natsStatus_GetText(s));
      return {.complete = false};
    }
  }
  // libnats buffers publications for its flusher thread, which waits up to 1 ms for more
  // before it writes (throughput over latency); SendAsap writes each PUB at once, as the
  // chorus and Redis publishers here do.
  Options pub_opts = MakeOptions(port());
  natsConnection* pub = nullptr;
  if (!pub_opts || natsOptions_SetSendAsap(pub_opts.get(), true) != NATS_OK ||
      natsConnection_Connect(&pub, pub_opts.get()) != NATS_OK) {
    fprintf(stderr, "broker_bench: nats publisher could not connect\n");
    return {.complete = false};
  }
  int errors = 0;
  Figures f = RunBursts(rx.loop, subs, messages, burst, [&](const std::string& payload) {
    if (natsConnection_Publish(pub, kSubject, payload.data(), static_cast<int>(payload.size())) !=
        NATS_OK) {
      ++errors;
    }
  });
  const natsStatus fs = natsConnection_FlushTimeout(pub, 10000);
  if (errors > 0 || fs != NATS_OK) {
    fprintf(stderr, "broker_bench: nats: %d publish errors, final flush: %s\n", errors,
            natsStatus_GetText(fs));
    f.complete = false;
  }
  natsConnection_Destroy(pub);
  return f;
}

}  // namespace chorus::bench
