#include "nchan_peer.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "node_support.h"
#include "peer_process.h"
#include "test_util.h"

namespace chorus::bench {

namespace {

namespace fs = std::filesystem;
using chorus::testing::ChildProcess;

constexpr int kAttempts = 5;  // starts tried when another process takes the free port first

// The processes whose parent is `ppid`, from /proc/<pid>/stat.
std::vector<int> ChildrenOf(int ppid) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    const size_t paren = stat.rfind(')');  // the command name may hold spaces
    if (paren == std::string::npos || paren + 4 > stat.size()) continue;
    char state = 0;
    int parent = 0;
    if (sscanf(stat.c_str() + paren + 2, "%c %d", &state, &parent) == 2 && parent == ppid &&
        state != 'Z') {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

}  // namespace

std::string NchanPeer::Missing(const NchanPeerOptions& o) {
  std::string missing;
  if (access(o.nginx.c_str(), X_OK) != 0) missing += " " + o.nginx;
  if (access(o.module.c_str(), R_OK) != 0) missing += " " + o.module;
  if (missing.empty()) return {};
  return "the Nchan peer needs" + missing +
         " (Debian packages nginx and libnginx-mod-nchan: bash scripts/install-deps.sh); "
         "--peer none measures Chorus alone";
}

std::string NchanPeer::Config(const NchanPeerOptions& o, const std::string& dir, uint16_t port,
                              const std::string& ready_token) {
  std::ostringstream c;
  c << "# Written by tests/bench/nchan_peer.cc for one benchmark run.\n"
    << "load_module " << o.module << ";\n"
    << "master_process on;\n"
    << "worker_processes " << o.workers << ";\n"
    << "pid " << dir << "/nginx.pid;\n"
    << "error_log " << dir << "/error.log warn;\n"
    << "events {\n  worker_connections " << o.max_connections << ";\n}\n"
    << "http {\n"
    << "  access_log off;\n"
    << "  client_body_temp_path " << dir << "/body;\n"
    << "  proxy_temp_path " << dir << "/proxy;\n"
    << "  fastcgi_temp_path " << dir << "/fastcgi;\n"
    << "  uwsgi_temp_path " << dir << "/uwsgi;\n"
    << "  scgi_temp_path " << dir
    << "/scgi;\n"
    // One publisher connection sends every publication of the run (the default closes a
    // keep-alive connection after 1,000 requests).
    << "  keepalive_requests 100000000;\n"
    << "  keepalive_timeout 3600s;\n"
    << "  nchan_message_buffer_length " << o.message_buffer_length << ";\n"
    << "  nchan_message_timeout " << o.message_timeout_s << "s;\n"
    << "  server {\n"
    << "    listen 127.0.0.1:" << port << " backlog=4096;\n"
    << "    location = /ready {\n      return 200 \"" << ready_token << "\";\n    }\n"
    << "    location ~ ^/sub/([\\w-]+)$ {\n"
    << "      nchan_subscriber websocket;\n"
    << "      nchan_channel_id $1;\n"
    << "      nchan_subscriber_first_message oldest;\n"
    << "      nchan_subscriber_timeout 0;\n"
    << "      nchan_websocket_ping_interval " << o.ping_s << ";\n"
    << "    }\n"
    << "    location ~ ^/pub/([\\w-]+)$ {\n"
    << "      nchan_publisher http;\n"
    << "      nchan_channel_id $1;\n"
    << "    }\n"
    << "  }\n"
    << "}\n";
  return c.str();
}

NchanPeer::NchanPeer(NchanPeerOptions options) : options_(std::move(options)) {
  if (error_ = Missing(options_); !error_.empty()) return;
  char tmpl[] = "/tmp/chorus-nchan-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);  // the workers run as nginx's unprivileged user when we are root
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const auto port = static_cast<uint16_t>(FreeLoopbackPort());
    if (port == 0) {
      error_ = "no free port on 127.0.0.1";
      return;
    }
    const Start s = TryStart(port);
    if (s == Start::kReady) return;
    if (s == Start::kFailed) return;
  }
  error_ = "the free port was taken " + std::to_string(kAttempts) + " times in a row";
}

NchanPeer::~NchanPeer() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

int NchanPeer::master_pid() const {
  return proc_ ? proc_->pid() : -1;
}

NchanPeer::Start NchanPeer::TryStart(uint16_t port) {
  const std::string token = "chorus-nchan-peer " + std::to_string(getpid()) + " " +
                            std::to_string(port) + " " + std::to_string(rand());
  const std::string conf = dir_ + "/nginx.conf";
  {
    std::ofstream out(conf, std::ios::trunc);
    out << Config(options_, dir_, port, token);
  }
  std::error_code ec;
  fs::remove(dir_ + "/error.log", ec);
  proc_ = std::make_unique<ChildProcess>(
      options_.nginx, std::vector<std::string>{"-p", dir_ + "/", "-c", conf, "-e",
                                               dir_ + "/error.log", "-g", "daemon off;"});
  stopped_ = false;
  bool exited = false;
  const bool up = chorus::testing::EventuallyTrue(
      [&] {
        if (proc_->Wait(std::chrono::milliseconds(1)) != -1) {  // polls the pid once
          exited = true;
          return true;
        }
        const auto r = chorus::testing::HttpRequest("127.0.0.1", port, "GET", "/ready", "", {});
        if (r.status != 200 || r.body != token) return false;
        workers_ = ChildrenOf(proc_->pid());
        return workers_.size() == static_cast<size_t>(options_.workers);
      },
      options_.start_timeout);
  if (up && !exited) {
    port_ = port;
    ready_ = true;
    error_.clear();
    return Start::kReady;
  }
  const std::string log = ErrorLogTail();
  if (!exited) Stop();
  stopped_ = true;
  proc_.reset();
  workers_.clear();
  if (log.find("Address already in use") != std::string::npos) return Start::kPortTaken;
  error_ = (exited ? "nginx exited at start: "
                   : "nginx did not answer on 127.0.0.1:" + std::to_string(port) + " in time: ") +
           log;
  return Start::kFailed;
}

std::string NchanPeer::ErrorLogTail() const {
  std::ifstream in(dir_ + "/error.log");
  std::stringstream s;
  s << in.rdbuf();
  std::string log = s.str();
  if (log.size() > 2000) log = log.substr(log.size() - 2000);
  while (!log.empty() && log.back() == '\n') log.pop_back();
  return log.empty() ? "(error.log empty)" : log;
}

bool NchanPeer::Stop() {
  if (stopped_ || !proc_) return clean_;
  stopped_ = true;
  proc_->Signal(SIGTERM);
  int st = proc_->Wait(std::chrono::seconds(10));
  if (st == -1) {
    fprintf(stderr, "nchan_peer: nginx did not exit within 10 s of SIGTERM; killing it\n");
    for (const int w : workers_) kill(w, SIGKILL);
    proc_->Signal(SIGKILL);
    st = proc_->Wait(std::chrono::seconds(5));
  }
  clean_ = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  if (!clean_) fprintf(stderr, "nchan_peer: nginx exit: %s\n", ErrorLogTail().c_str());
  return clean_;
}

}  // namespace chorus::bench
