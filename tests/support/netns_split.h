// Network splits for tests (issue 12 test 6): every node in its own network namespace, linked
// by veth pairs to bridges in a dedicated "switch" namespace; a split moves the nodes of each
// side to a bridge of their own, a heal moves them back. Nothing is configured in the root
// namespace.
//
//   node i (ns <prefix>n<i>): eth0 10.77.0.<i>/24  --veth-- switch: n<i>, on bridge b0 (or b<k>)
//                             eth1 10.78.0.<i>/24  --veth-- switch: c<i>, on bridge bc
//   clients (ns <prefix>cl):  eth0 10.78.0.100/24 --veth-- switch: cl,   on bridge bc
//
// The cluster traffic uses 10.77.0.x (the split cuts it); the test's own clients reach every
// node on 10.78.0.x, which a split never cuts (as clients behind a load balancer on both sides).
// Nodes do not forward between their interfaces (ip_forward is off in a new namespace).
//
// A split is silent, as a real one: packets are dropped (a bridge without the destination's
// port), connections are not reset. netem is not available here; `ip netns` and veth are.
//
// Needs root and iproute2. Use: `NetnsSplit net; if (auto why = net.Setup(5); !why.empty())
// GTEST_SKIP() << why;` then start processes with `net.Launcher(i)` and create the test's own
// sockets on a thread that entered the client namespace (`EnterClientNamespace`).
#pragma once

#include <string>
#include <vector>

namespace chorus::testing {

class NetnsSplit {
 public:
  NetnsSplit();
  ~NetnsSplit();  // Teardown()
  NetnsSplit(const NetnsSplit&) = delete;
  NetnsSplit& operator=(const NetnsSplit&) = delete;

  // Deletes leftovers of earlier runs (namespaces named chsplit-<pid>- whose process is gone),
  // then creates `nodes` node namespaces (ids 1..nodes), the client and switch namespaces and
  // every link, all on one bridge. Returns "" on success, else why it cannot run (not root, no
  // `ip`, namespaces refused): the caller skips. A failure half-way is cleaned up.
  std::string Setup(int nodes);
  // Deletes every namespace this object created (processes still inside keep running but lose
  // their links: stop them first). Safe to call twice.
  void Teardown();

  // The node's cluster address (10.77.0.<id>) and client address (10.78.0.<id>).
  static std::string ClusterAddress(int id);
  static std::string ClientAddress(int id);
  std::string NodeNamespace(int id) const;
  std::string ClientNamespace() const;
  // {"ip", "netns", "exec", <ns>}: NodeOptions::launcher for a process inside node `id`'s
  // namespace (`ip netns exec` execs the command: the child's pid is the process's own).
  std::vector<std::string> Launcher(int id) const;

  // Splits the cluster network: each group is one side (node ids); a node in no group is
  // isolated alone. Nodes on one side reach each other only. Returns false (with the failing
  // command in last_error()) when `ip` failed.
  bool Split(const std::vector<std::vector<int>>& sides);
  // Every node back on one bridge.
  bool Heal();

  // Moves the calling thread into the client namespace (sockets it creates afterwards live
  // there, as do the threads it starts, e.g. a ZeroMQ context's I/O threads created after).
  // LeaveClientNamespace() returns it to the namespace it was in. false on failure.
  bool EnterClientNamespace();
  bool LeaveClientNamespace();

  const std::string& last_error() const { return last_error_; }

 private:
  bool Ip(const std::vector<std::string>& args);
  bool MoveToBridge(int id, int bridge);

  std::string prefix_;  // chsplit-<pid>-
  int nodes_ = 0;
  std::vector<std::string> created_;  // namespaces, in creation order
  std::vector<int> bridges_;          // bridge numbers created in the switch namespace
  int saved_ns_fd_ = -1;              // the thread's namespace before EnterClientNamespace
  std::string last_error_;
};

}  // namespace chorus::testing
