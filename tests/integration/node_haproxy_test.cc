// deploy/haproxy.cfg, checked (issue 10; docs/operations.md "TLS and a load balancer in front"):
// `haproxy -c` accepts the shipped file, and a real HAProxy running it in front of a real
// chorusd carries a WebSocket connect + subscribe + publish and enforces its rules (server API
// and /metrics denied from outside 10.0.0.0/8, port 80 redirected to https).
//
// One source of truth: the running config is the shipped file with only what cannot run here
// replaced (textual substitutions, below): the certificate path by a self-signed certificate
// made for the test; the listen ports by free loopback ports, with TLS left out of the test's
// `chorus_https` bind (the test's WebSocket client speaks plain WebSocket); the backend servers'
// addresses by the test node's; the global maxconn by one the test machine's descriptor limit
// serves. Needs Debian's `haproxy` (scripts/install-deps.sh) and openssl;
// skipped with a message when /usr/sbin/haproxy is missing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "gateway_ws_client.h"
#include "node_native_support.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

using json = nlohmann::json;
constexpr const char* kHaproxy = "/usr/sbin/haproxy";
constexpr const char* kOpenssl = "/usr/bin/openssl";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A TCP port free on 127.0.0.1 now (HAProxy cannot report a port it picked itself).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string Replace(const std::string& text, const std::string& pattern, const std::string& with,
                    int expected_count) {
  const std::regex re(pattern);
  const auto n =
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator());
  EXPECT_EQ(n, expected_count) << "deploy/haproxy.cfg changed: /" << pattern << "/";
  return std::regex_replace(text, re, with);
}

class HaproxyConfig : public NodeFixture {
 protected:
  void SetUp() override {
    if (access(kHaproxy, X_OK) != 0) {
      GTEST_SKIP() << kHaproxy << " is missing: install Debian's haproxy (scripts/install-deps.sh)";
    }
    ASSERT_EQ(access(kOpenssl, X_OK), 0) << "needs " << kOpenssl;
    char dir[] = "/tmp/chorus-haproxy-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    const CommandResult cert = RunCommand(
        kOpenssl, {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                   "/CN=localhost", "-keyout", dir_ + "/key.pem", "-out", dir_ + "/cert.pem"});
    ASSERT_EQ(cert.exit_code, 0) << cert.err;
    std::ofstream(dir_ + "/chorus.pem")
        << ReadFile(dir_ + "/cert.pem") << ReadFile(dir_ + "/key.pem");
    shipped_ = ReadFile(std::string(CHORUS_SOURCE_DIR) + "/deploy/haproxy.cfg");
    ASSERT_FALSE(shipped_.empty());
  }
  void TearDown() override {
    haproxy_.reset();
    NodeFixture::TearDown();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // The shipped file with the certificate made here.
  std::string WithCertificate() const {
    return Replace(shipped_, "/etc/haproxy/certs/chorus\\.pem", dir_ + "/chorus.pem", 1);
  }
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_, shipped_;
  std::unique_ptr<ChildProcess> haproxy_;
};

TEST_F(HaproxyConfig, TheShippedFileIsValid) {
  const std::string path = Write("haproxy.cfg", WithCertificate());
  const CommandResult r = RunCommand(kHaproxy, {"-c", "-f", path});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(HaproxyConfig, CarriesAWebSocketSessionAndEnforcesItsRules) {
  StartNode();
  const int http_port = FreePort(), front_port = FreePort();
  std::string cfg = WithCertificate();
  cfg = Replace(cfg, "bind :80\\b", "bind 127.0.0.1:" + std::to_string(http_port), 1);
  cfg = Replace(cfg, "bind :443 ssl crt \\S+ alpn http/1\\.1",
                "bind 127.0.0.1:" + std::to_string(front_port), 1);
  cfg = Replace(cfg, "10\\.0\\.0\\.1[123]:8000",
                node_->http_host() + ":" + std::to_string(node_->http_port()), 3);
  // maxconn 50000 needs about 100,000 descriptors; test machines allow fewer (20,000 here).
  cfg = Replace(cfg, "maxconn 50000", "maxconn 4000", 1);
  const std::string path = Write("running.cfg", cfg);
  haproxy_ = std::make_unique<ChildProcess>(kHaproxy, std::vector<std::string>{"-db", "-f", path});
  // Up once a health check has passed and a request goes through.
  ASSERT_TRUE(EventuallyTrue(
      [&] { return HttpRequest("127.0.0.1", front_port, "GET", "/health").status == 200; },
      std::chrono::seconds(10)));
  // The rules of the shipped file: the API and /metrics only from 10.0.0.0/8; http -> https.
  EXPECT_EQ(
      HttpRequest("127.0.0.1", front_port, "POST", "/api/info", "{}", {{"X-API-Key", "test-key"}})
          .status,
      403);
  EXPECT_EQ(HttpRequest("127.0.0.1", front_port, "GET", "/metrics").status, 403);
  EXPECT_EQ(HttpRequest("127.0.0.1", http_port, "GET", "/health").status, 301);
  // A WebSocket session through HAProxy: connect, subscribe, publish, and the publication back.
  gateway_test::WsClient ws(static_cast<uint16_t>(front_port));
  ASSERT_TRUE(ws.ok()) << "WebSocket upgrade through HAProxy";
  auto next = [&](const std::function<bool(const json&)>& match) -> std::optional<json> {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      auto m = ws.Read(std::chrono::seconds(5));
      if (!m) return std::nullopt;
      std::stringstream lines(*m);
      std::string line;
      while (std::getline(lines, line)) {
        json j = json::parse(line, nullptr, false);
        if (j.is_object() && match(j)) return j;
      }
    }
    return std::nullopt;
  };
  auto reply = [&](int id) { return next([id](const json& j) { return j.value("id", 0) == id; }); };
  ASSERT_TRUE(ws.Send(R"({"id":1,"connect":{}})"));
  auto c = reply(1);
  ASSERT_TRUE(c && c->contains("connect")) << (c ? c->dump() : "no reply");
  ASSERT_TRUE(ws.Send(R"({"id":2,"subscribe":{"channel":"chat:lb"}})"));
  auto s = reply(2);
  ASSERT_TRUE(s && s->contains("subscribe")) << (s ? s->dump() : "no reply");
  ASSERT_TRUE(ws.Send(R"({"id":3,"publish":{"channel":"chat:lb","data":{"via":"haproxy"}}})"));
  auto pub = next([](const json& j) {
    return j.contains("push") && j["push"].value("channel", "") == "chat:lb" &&
           j["push"].contains("pub");
  });
  ASSERT_TRUE(pub.has_value()) << "the publication comes back through HAProxy";
  EXPECT_EQ((*pub)["push"]["pub"]["data"]["via"], "haproxy");
}

}  // namespace
}  // namespace chorus::testing
