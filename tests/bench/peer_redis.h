// Redis pub/sub as a broker_bench peer: a redis-server child on 127.0.0.1 (free port, no
// persistence, its directory in /tmp), subscribers and a publisher over hiredis, measured with
// the same bursts as chorus (fanout.h). See docs/benchmarks.md for how to read the figures.
#pragma once

#include <memory>
#include <string>

#include "fanout.h"
#include "peer_process.h"

namespace chorus::bench {

// Owner: the thread that started it (Fanout runs its receiver thread inside the call).
class RedisPeer {
 public:
  // Starts redis-server and waits (10 s at most) until it answers PING. nullptr with `error`
  // set when redis-server is not installed or does not come up.
  static std::unique_ptr<RedisPeer> Start(std::string& error);
  ~RedisPeer();

  // `subs` connections each SUBSCRIBEd to one channel, one publisher connection sending
  // PUBLISH (pipelined: each command written at once, the integer replies read every 64 and at
  // the end, each one checked to count `subs` receivers). Incomplete when a burst is not
  // delivered, a reply is missing or counts fewer receivers.
  Figures Fanout(size_t subs, int messages, int burst);

  // SIGTERM, reap; true when redis-server exited 0.
  bool Stop();
  int port() const { return proc_->port(); }

 private:
  explicit RedisPeer(std::unique_ptr<PeerProcess> proc) : proc_(std::move(proc)) {}
  std::unique_ptr<PeerProcess> proc_;
};

}  // namespace chorus::bench
