#include "netns_split.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <set>
#include <sstream>

#include "test_util.h"

namespace chorus::testing {

namespace {

constexpr const char* kIp = "/usr/sbin/ip";
constexpr const char* kFamily = "chsplit-";

bool IpAvailable() {
  return access(kIp, X_OK) == 0;
}

// The names listed by `ip netns list` ("name (id: 3)" or "name").
std::vector<std::string> ListNamespaces() {
  std::vector<std::string> out;
  CommandResult r = RunCommand(kIp, {"netns", "list"}, std::chrono::seconds(10));
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string name = line.substr(0, line.find(' '));
    if (!name.empty()) out.push_back(name);
  }
  return out;
}

}  // namespace

NetnsSplit::NetnsSplit() : prefix_(std::string(kFamily) + std::to_string(getpid()) + "-") {}

NetnsSplit::~NetnsSplit() {
  LeaveClientNamespace();
  Teardown();
}

std::string NetnsSplit::ClusterAddress(int id) {
  return "10.77.0." + std::to_string(id);
}
std::string NetnsSplit::ClientAddress(int id) {
  return "10.78.0." + std::to_string(id);
}
std::string NetnsSplit::NodeNamespace(int id) const {
  return prefix_ + "n" + std::to_string(id);
}
std::string NetnsSplit::ClientNamespace() const {
  return prefix_ + "cl";
}
std::vector<std::string> NetnsSplit::Launcher(int id) const {
  return {kIp, "netns", "exec", NodeNamespace(id)};
}

bool NetnsSplit::Ip(const std::vector<std::string>& args) {
  CommandResult r = RunCommand(kIp, args, std::chrono::seconds(10));
  if (r.exit_code == 0) return true;
  std::string cmd = "ip";
  for (const std::string& a : args) cmd += " " + a;
  last_error_ = cmd + ": exit " + std::to_string(r.exit_code) + ": " + r.err;
  return false;
}

std::string NetnsSplit::Setup(int nodes) {
  if (geteuid() != 0) return "network namespaces need root (this test runs as a normal user)";
  if (!IpAvailable()) return std::string("no ") + kIp + " (install iproute2)";
  if (nodes < 1 || nodes > 99) return "1..99 nodes";
  // Leftovers of runs that died before their teardown: chsplit-<pid>- with <pid> gone.
  for (const std::string& name : ListNamespaces()) {
    if (name.rfind(kFamily, 0) != 0) continue;
    const std::string rest = name.substr(std::string(kFamily).size());
    const pid_t pid = static_cast<pid_t>(std::atol(rest.c_str()));
    if (pid > 0 && pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH) {
      (void)Ip({"netns", "delete", name});
    }
  }
  nodes_ = nodes;
  const std::string sw = prefix_ + "sw";
  auto add_ns = [&](const std::string& name) {
    (void)Ip({"netns", "delete", name});  // a leftover of this very pid (reused)
    if (!Ip({"netns", "add", name})) return false;
    created_.push_back(name);
    return Ip({"-n", name, "link", "set", "lo", "up"});
  };
  // A veth pair: `sw_end` in the switch namespace on `bridge`, `inner` in `ns` with `address`.
  auto link = [&](const std::string& ns, const std::string& inner, const std::string& sw_end,
                  const std::string& bridge, const std::string& address) {
    return Ip({"-n", sw, "link", "add", sw_end, "type", "veth", "peer", "name", inner, "netns",
               ns}) &&
           Ip({"-n", sw, "link", "set", sw_end, "master", bridge, "up"}) &&
           Ip({"-n", ns, "addr", "add", address + "/24", "dev", inner}) &&
           Ip({"-n", ns, "link", "set", inner, "up"});
  };
  bool ok = add_ns(sw) && Ip({"-n", sw, "link", "add", "b0", "type", "bridge"}) &&
            Ip({"-n", sw, "link", "set", "b0", "up"}) &&
            Ip({"-n", sw, "link", "add", "bc", "type", "bridge"}) &&
            Ip({"-n", sw, "link", "set", "bc", "up"}) && add_ns(ClientNamespace()) &&
            link(ClientNamespace(), "eth0", "cl", "bc", "10.78.0.100");
  if (ok) bridges_.push_back(0);
  for (int id = 1; ok && id <= nodes; ++id) {
    const std::string n = std::to_string(id);
    ok = add_ns(NodeNamespace(id)) &&
         link(NodeNamespace(id), "eth0", "n" + n, "b0", ClusterAddress(id)) &&
         link(NodeNamespace(id), "eth1", "c" + n, "bc", ClientAddress(id));
  }
  if (!ok) {
    const std::string why = "cannot build the namespaces: " + last_error_;
    Teardown();
    return why;
  }
  return "";
}

void NetnsSplit::Teardown() {
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) (void)Ip({"netns", "delete", *it});
  created_.clear();
  bridges_.clear();
}

bool NetnsSplit::MoveToBridge(int id, int bridge) {
  const std::string sw = prefix_ + "sw";
  const std::string name = "b" + std::to_string(bridge);
  bool exists = false;
  for (int b : bridges_) exists = exists || b == bridge;
  if (!exists) {
    if (!Ip({"-n", sw, "link", "add", name, "type", "bridge"}) ||
        !Ip({"-n", sw, "link", "set", name, "up"})) {
      return false;
    }
    bridges_.push_back(bridge);
  }
  return Ip({"-n", sw, "link", "set", "n" + std::to_string(id), "master", name});
}

bool NetnsSplit::Split(const std::vector<std::vector<int>>& sides) {
  std::set<int> placed;
  int bridge = 0;
  for (const std::vector<int>& side : sides) {
    for (int id : side) {
      if (!MoveToBridge(id, bridge)) return false;
      placed.insert(id);
    }
    ++bridge;
  }
  for (int id = 1; id <= nodes_; ++id) {  // alone: a bridge of its own
    if (placed.count(id) == 0 && !MoveToBridge(id, bridge++)) return false;
  }
  return true;
}

bool NetnsSplit::Heal() {
  for (int id = 1; id <= nodes_; ++id) {
    if (!MoveToBridge(id, 0)) return false;
  }
  return true;
}

bool NetnsSplit::EnterClientNamespace() {
  if (saved_ns_fd_ >= 0) return true;
  const int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int target = open(("/run/netns/" + ClientNamespace()).c_str(), O_RDONLY | O_CLOEXEC);
  bool ok = self >= 0 && target >= 0 && setns(target, CLONE_NEWNET) == 0;
  if (target >= 0) close(target);
  if (ok) {
    saved_ns_fd_ = self;
  } else {
    last_error_ = "setns into " + ClientNamespace() + " failed";
    if (self >= 0) close(self);
  }
  return ok;
}

bool NetnsSplit::LeaveClientNamespace() {
  if (saved_ns_fd_ < 0) return true;
  const bool ok = setns(saved_ns_fd_, CLONE_NEWNET) == 0;
  close(saved_ns_fd_);
  saved_ns_fd_ = -1;
  return ok;
}

}  // namespace chorus::testing
