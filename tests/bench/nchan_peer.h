// Nchan (the nginx pub/sub module, Debian packages nginx + libnginx-mod-nchan) as a benchmark
// peer of chorusd: one nginx child process on loopback with a config written for the run.
//
// The config (NchanPeer::Config) has one server on 127.0.0.1:<free port> with
//   /sub/<channel>  `nchan_subscriber websocket` (each message is one text frame holding the
//                   published body, nothing else: no handshake, no envelope),
//   /pub/<channel>  `nchan_publisher http` (POST the body),
//   /ready          a token, to tell our nginx from whatever else might hold the port;
// `master_process on` with `worker_processes` workers (1 by default: one event loop, the
// budget of chorusd's one gateway io thread; chorusd's engine thread is extra and nearly idle
// in a fan-out, see docs/benchmarks.md), every path (pid, logs, temp) inside a temp directory.
// The master runs in the foreground (-g 'daemon off;') as our child; Stop() or the destructor
// shuts it down and reaps it. Not `master_process off`: Nchan's in-memory store talks to its
// workers through the master's IPC, and single-process mode is not a supported setup of it.
//
// The port is found by binding 127.0.0.1:0 in this process and handing the number to nginx; if
// another process takes it first, nginx fails to bind and the start is retried on a new port.
//
// Owner: one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace chorus::testing {
class ChildProcess;
}

namespace chorus::bench {

struct NchanPeerOptions {
  std::string nginx = "/usr/sbin/nginx";
  // Debian loads it from /etc/nginx/modules-enabled, which a config of our own does not
  // include: the config loads it by path.
  std::string module = "/usr/lib/nginx/modules/ngx_nchan_module.so";
  int workers = 1;                // worker_processes
  size_t max_connections = 1024;  // worker_connections (nginx allocates them at start)
  int ping_s = 0;                 // nchan_websocket_ping_interval; 0: no pings
  // Messages kept per channel (nchan_message_buffer_length). Nchan has no "no history"; a few
  // cover a subscriber whose subscription completes after its 101 (they start at the oldest).
  int message_buffer_length = 10;
  int message_timeout_s = 60;  // nchan_message_timeout
  std::chrono::milliseconds start_timeout = std::chrono::seconds(10);
};

class NchanPeer {
 public:
  // "" when the nginx binary and the Nchan module are there, else what is missing and how to
  // install it.
  static std::string Missing(const NchanPeerOptions& options);
  // The nginx.conf for `dir` (absolute, no trailing '/'), `port` and `ready_token`.
  static std::string Config(const NchanPeerOptions& options, const std::string& dir, uint16_t port,
                            const std::string& ready_token);

  // Writes the config into a new temp dir and starts nginx; ready() tells whether it answers
  // on port() and its workers are known, within options.start_timeout per attempt.
  explicit NchanPeer(NchanPeerOptions options);
  ~NchanPeer();  // Stop() when still running; removes the temp dir
  NchanPeer(const NchanPeer&) = delete;
  NchanPeer& operator=(const NchanPeer&) = delete;

  bool ready() const { return ready_; }
  const std::string& error() const { return error_; }  // why not ready
  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  int master_pid() const;
  const std::vector<int>& worker_pids() const { return workers_; }
  // The last 2,000 bytes of nginx's error log (for reports).
  std::string ErrorLogTail() const;

  // SIGTERM to the master (nginx's fast shutdown) and reap it within 10 s, else SIGKILL the
  // workers and the master; true on exit status 0. Idempotent.
  bool Stop();

 private:
  enum class Start { kReady, kPortTaken, kFailed };
  Start TryStart(uint16_t port);

  NchanPeerOptions options_;
  std::string dir_;
  uint16_t port_ = 0;
  std::unique_ptr<chorus::testing::ChildProcess> proc_;
  std::vector<int> workers_;
  bool ready_ = false;
  bool stopped_ = false;
  bool clean_ = false;
  std::string error_;
};

}  // namespace chorus::bench
