// A peer server (redis-server, nats-server) run by broker_bench as a child process on loopback:
// its own temporary directory, a port that was free when picked, stopped by a signal and reaped.
// FreeLoopbackPort() also picks the ports of ws_fanout's nginx (nchan_peer.cc).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "test_util.h"

namespace chorus::bench {

// The absolute path of `name`: $PATH first, then /usr/sbin, /usr/local/sbin, /usr/bin (Debian
// puts nats-server in /usr/sbin, which is not in a normal user's PATH). Empty when not found.
std::string FindProgram(const std::string& name);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read, released); 0 when
// no socket could be bound. The caller retries with another one if the server cannot bind it.
int FreeLoopbackPort();

// Owns one child process and its directory /tmp/chorus-bench-<name>-XXXXXX (removed by the
// destructor). Owner: the thread that made it.
class PeerProcess {
 public:
  // `stop_signal` is the signal on which the program exits 0 (SIGTERM for Redis, SIGINT for
  // NATS, which exits 1 on SIGTERM).
  PeerProcess(const std::string& name, int stop_signal);
  ~PeerProcess();
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  const std::string& dir() const { return dir_; }
  int port() const { return port_; }

  // Runs `path args...` (stdout to a pipe nobody reads: the servers are told to log to a file).
  void Start(const std::string& path, std::vector<std::string> args);
  // True while the child has not exited (checked without blocking).
  bool Running();
  // Sends the stop signal, waits up to `timeout` (then SIGKILL) and reaps; true on exit 0.
  bool Stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The last `max_bytes` of file `name` in dir() (a server log, for error messages).
  std::string Tail(const std::string& name, size_t max_bytes = 600) const;

 private:
  std::string dir_;
  int port_ = 0;
  int stop_signal_;
  std::unique_ptr<chorus::testing::ChildProcess> child_;
  bool stopped_ = false;
};

}  // namespace chorus::bench
