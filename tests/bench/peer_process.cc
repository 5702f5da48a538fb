#include "peer_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace chorus::bench {

std::string FindProgram(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* path = getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');) {
      if (!d.empty()) dirs.push_back(d);
    }
  }
  for (const char* d : {"/usr/sbin", "/usr/local/sbin", "/usr/bin"}) dirs.emplace_back(d);
  for (const auto& d : dirs) {
    const std::string candidate = d + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

PeerProcess::PeerProcess(const std::string& name, int stop_signal) : stop_signal_(stop_signal) {
  std::string tmpl = "/tmp/chorus-bench-" + name + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  port_ = FreeLoopbackPort();
}

PeerProcess::~PeerProcess() {
  if (child_ && !stopped_) Stop(std::chrono::seconds(5));
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void PeerProcess::Start(const std::string& path, std::vector<std::string> args) {
  child_ = std::make_unique<chorus::testing::ChildProcess>(path, std::move(args));
  stopped_ = false;
}

bool PeerProcess::Running() {
  if (!child_ || stopped_) return false;
  // Wait() polls waitpid at least once; 1 ms keeps this a non-blocking check.
  return child_->Wait(std::chrono::milliseconds(1)) == -1;
}

bool PeerProcess::Stop(std::chrono::milliseconds timeout) {
  if (!child_ || stopped_) return false;
  stopped_ = true;
  child_->Signal(stop_signal_);
  int st = child_->Wait(timeout);
  if (st == -1) {
    child_->Signal(SIGKILL);
    st = child_->Wait(std::chrono::seconds(5));
    return false;
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

std::string PeerProcess::Tail(const std::string& name, size_t max_bytes) const {
  std::ifstream in(dir_ + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > max_bytes) s = "..." + s.substr(s.size() - max_bytes);
  return s;
}

}  // namespace chorus::bench
