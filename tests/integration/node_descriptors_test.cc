// Descriptors (issue 10, item 6; docs/operations.md "Security"): a real chorusd started under a
// low RLIMIT_NOFILE (prlimit as the launcher) raises its soft limit toward the hard one, refuses
// a limit that cannot serve its config, and keeps descriptors for native clients however many
// idle HTTP connections arrive.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "node_native_support.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

constexpr const char* kPrlimit = "/usr/bin/prlimit";

// The soft "Max open files" of a process (0 when unreadable).
uint64_t SoftNofile(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) == 0) return std::stoull(line.substr(26));
  }
  return 0;
}

size_t OpenDescriptors(int pid) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// An idle TCP connection to host:port; -1 on failure.
int Dial(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class NodeDescriptors : public NodeFixture {
 protected:
  void SetUp() override {
    if (access(kPrlimit, X_OK) != 0) GTEST_SKIP() << "needs " << kPrlimit;
  }
};

TEST_F(NodeDescriptors, RaisesTheSoftLimitTowardTheHardOne) {
  NodeOptions o;
  o.launcher = {kPrlimit, "--nofile=256:4096"};
  StartNode(o);
  EXPECT_EQ(SoftNofile(node_->process().pid()), 4096u);
}

TEST_F(NodeDescriptors, RefusesALimitThatCannotServeTheConfig) {
  NodeOptions o;
  o.launcher = {kPrlimit, "--nofile=200:200"};  // < http.reserved_descriptors (256) + 16
  NodeProcess node(o);
  EXPECT_FALSE(node.ready()) << node.banner();
  EXPECT_EQ(node.process().Wait(std::chrono::seconds(10)), 2 << 8) << "exit status 2";
}

TEST_F(NodeDescriptors, IdleHttpConnectionsLeaveDescriptorsForNativeClients) {
  RaiseFileLimit();  // this process holds the idle connections
  NodeOptions o;
  o.launcher = {kPrlimit, "--nofile=512:512"};  // http.max_connections 10000 -> 256
  StartNode(o);
  const int pid = node_->process().pid();
  std::vector<int> idle;
  for (int i = 0; i < 700; ++i) {
    const int fd = Dial(node_->http_host(), node_->http_port());
    if (fd >= 0) idle.push_back(fd);
  }
  EXPECT_GE(idle.size(), 600u);
  // The gateway has taken what it may (256 connections) or everything it could.
  EXPECT_TRUE(EventuallyTrue([&] { return OpenDescriptors(pid) >= 256; }));
  RawSession s = Session();
  auto r = s.Call("connect", P({{"user", "u"}}));
  EXPECT_TRUE(r && r->Has("result"))
      << "a native client connects with " << OpenDescriptors(pid) << " descriptors open in chorusd";
  EXPECT_LT(OpenDescriptors(pid), 500u);
  for (int fd : idle) close(fd);
}

}  // namespace
}  // namespace chorus::testing
