// NATS as a broker_bench peer: a nats-server child on 127.0.0.1 (free port), subscribers and a
// publisher over the Debian C client (libnats), measured with the same bursts as chorus
// (fanout.h). See docs/benchmarks.md for how to read the figures.
#pragma once

#include <memory>
#include <string>

#include "fanout.h"
#include "peer_process.h"

namespace chorus::bench {

// Owner: the thread that started it (Fanout runs its event-loop thread inside the call).
class NatsPeer {
 public:
  // Starts nats-server and waits (10 s at most) until a client connects and gets its PONG.
  // nullptr with `error` set when nats-server is not installed or does not come up.
  static std::unique_ptr<NatsPeer> Start(std::string& error);
  ~NatsPeer();

  // `subs` connections each with one synchronous subscription on one subject, all read by one
  // thread through libnats' external event loop hooks (so 1,000 subscribers do not mean 1,000
  // reader threads); one ordinary publisher connection (libnats' own reader and flusher
  // threads) doing PUB, which NATS does not answer; a final flush round trip checks the
  // publisher's connection. Incomplete when a burst is not delivered or a call fails.
  Figures Fanout(size_t subs, int messages, int burst);

  // SIGINT (nats-server exits 1 on SIGTERM), reap; true when nats-server exited 0.
  bool Stop();
  int port() const { return proc_->port(); }

 private:
  explicit NatsPeer(std::unique_ptr<PeerProcess> proc) : proc_(std::move(proc)) {}
  std::unique_ptr<PeerProcess> proc_;
};

}  // namespace chorus::bench
