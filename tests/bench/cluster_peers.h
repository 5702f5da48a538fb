// cluster_bench's peers, measured with the same paced publishing as chorus (paced.h):
//  - NATS as a 2-server cluster over a route (two nats-server children on 127.0.0.1):
//    the publisher on server 1, the subscriber on server 2, so each publication crosses the
//    route as chorus's cross the nodes;
//  - Redis pub/sub on one redis-server (peer_redis.h starts it): the publisher and the
//    subscriber on separate connections.
// See docs/benchmarks.md ("Cluster") for how to read the figures.
#pragma once

#include <memory>
#include <string>

#include "fanout.h"
#include "peer_process.h"

namespace chorus::bench {

// Owner: the thread that started it.
class NatsRoutePeer {
 public:
  // Starts both servers (routes to each other, monitoring port on server 1) and waits (10 s at
  // most) until each answers a client. nullptr with `error` set when nats-server is missing or
  // does not come up.
  static std::unique_ptr<NatsRoutePeer> Start(std::string& error);
  ~NatsRoutePeer();

  // A fresh subscriber on server 2, a probe published on server 1 until it arrives (the
  // route carries the interest), then `count` publications at `rate`/s on server 1.
  // `route_msgs`: messages server 1 sent over its route during the run (from /routez).
  Figures Paced(int count, double rate, double* route_msgs = nullptr);

  // SIGINT both, reap; true when both exited 0.
  bool Stop();

 private:
  NatsRoutePeer() = default;
  std::unique_ptr<PeerProcess> s1_, s2_;
  int monitor_port_ = 0;
};

// `count` publications at `rate`/s on a fresh publisher connection to the Redis at `port`,
// received by a fresh subscriber connection (SUBSCRIBE answered before the first).
// Incomplete when a publication is not delivered or a PUBLISH reply does not count 1 receiver.
Figures RedisPaced(int port, int count, double rate);

}  // namespace chorus::bench
