// The HTTP server API of a real chorusd, the other side: API key checks (nothing happens
// without the key), request errors (400/404 and Centrifugo error codes), /health and /metrics,
// `chorusd --check-config`, startup on an occupied port, and user-level presence pushes seen by
// a native subscriber.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "node_support.h"

namespace chorus::testing {
namespace {

using nlohmann::json;

json Body(const HttpResult& r) {
  json j = json::parse(r.body, nullptr, false);
  return j.is_discarded() ? json() : j;
}

// The error code of an HTTP answer's body (0 when there is none).
uint64_t CodeOf(const HttpResult& r) {
  json j = Body(r);
  if (!j.is_object() || !j.contains("error")) return 0;
  return j["error"].value("code", 0u);
}

struct Client {
  std::unique_ptr<RawSession> s;
  std::string id;
  RawSession* operator->() { return s.get(); }
};

Client Connect(zmq::context_t& ctx, const NodeProcess& node, const std::string& user) {
  Client c{std::make_unique<RawSession>(ctx, node.native()), ""};
  auto r = c->Call("connect", P({{"user", user}}));
  EXPECT_TRUE(r && r->Has("result")) << user;
  if (r) c.id = r->Str("result.client");
  return c;
}

bool Subscribe(Client& c, const std::string& channel) {
  auto r = c->Call("subscribe", P({{"channel", channel}}));
  return r && r->Has("result");
}

HttpResult Post(const NodeProcess& node, const std::string& method, const std::string& body,
                const std::map<std::string, std::string>& headers) {
  return HttpRequest(node.http_host(), node.http_port(), "POST", "/api/" + method, body, headers);
}

// A temporary config file, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/chorusd-http-test-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd >= 0) close(fd);
    path_ = tmpl;
    std::ofstream(path_) << text;
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class NodeHttpAuth : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(node_.ready()) << node_.banner(); }
  zmq::context_t ctx_;
  NodeProcess node_;
};

TEST_F(NodeHttpAuth, MissingKeyIsRejectedAndNothingHappens) {
  Client sub = Connect(ctx_, node_, "alice");
  ASSERT_TRUE(Subscribe(sub, "chat:auth"));
  const std::string publish = R"({"channel":"chat:auth","data":{"who":"intruder"}})";
  HttpResult r = Api(node_, "publish", publish, /*key=*/"");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(CodeOf(r), 101u) << r.body;
  EXPECT_EQ(Api(node_, "history_remove", R"({"channel":"chat:auth"})", "").status, 401);

  // The next publication is the first one: the refused one was neither delivered nor kept.
  HttpResult ok = Api(node_, "publish", R"({"channel":"chat:auth","data":{"who":"admin"}})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Body(ok)["result"].value("offset", 0u), 1u) << ok.body;
  auto push = sub->Push("pub", "chat:auth");
  ASSERT_TRUE(push);
  EXPECT_EQ(json::parse(push->Str("data.data")), json({{"who", "admin"}}));
  HttpResult h = Api(node_, "history", R"({"channel":"chat:auth","limit":-1})");
  ASSERT_EQ(Body(h)["result"]["publications"].size(), 1u) << h.body;
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpAuth, WrongKeyIsRejected) {
  for (const auto& headers :
       std::vector<std::map<std::string, std::string>>{{{"X-API-Key", "wrong-key"}},
                                                       {{"X-API-Key", "test-key-but-longer"}},
                                                       {{"Authorization", "apikey wrong-key"}},
                                                       {{"Authorization", "apikey"}},
                                                       {{"X-API-Key", ""}}}) {
    HttpResult r = Post(node_, "info", "{}", headers);
    EXPECT_EQ(r.status, 401) << headers.begin()->first << ": " << headers.begin()->second;
    EXPECT_EQ(CodeOf(r), 101u) << r.body;
  }
  HttpResult h = Api(node_, "history", R"({"channel":"chat:never","limit":0})");
  EXPECT_EQ(h.status, 200) << h.body;  // the node still answers with the right key
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpAuth, AuthorizationApikeyHeaderIsAccepted) {
  for (const char* scheme : {"apikey", "ApiKey"}) {
    HttpResult r = Post(node_, "publish", R"({"channel":"chat:hdr","data":1})",
                        {{"Authorization", std::string(scheme) + " test-key"}});
    EXPECT_EQ(r.status, 200) << scheme << ": " << r.body;
    EXPECT_TRUE(Body(r).contains("result")) << r.body;
  }
  HttpResult h = Api(node_, "history", R"({"channel":"chat:hdr","limit":0})");
  EXPECT_EQ(Body(h)["result"].value("offset", 0u), 2u) << h.body;
  EXPECT_TRUE(node_.Stop());
}

class NodeHttpErrors : public NodeHttpAuth {};

TEST_F(NodeHttpErrors, MalformedJsonIs400AndTheNodeKeepsAnswering) {
  for (const char* body : {R"({"channel":)", "{bad json}", "\xff\xfe", R"({"a":1}{)"}) {
    HttpResult r = Api(node_, "publish", body);
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_EQ(CodeOf(r), 107u) << r.body;
  }
  HttpResult next = Api(node_, "info", "{}");
  EXPECT_EQ(next.status, 200) << next.body;
  EXPECT_TRUE(Body(next).contains("result"));
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpErrors, BodyThatIsNotAnObjectIs400) {
  for (const char* body : {"[1,2]", R"("publish")", "42", "null", "true"}) {
    HttpResult r = Api(node_, "publish", body);
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_EQ(CodeOf(r), 107u) << r.body;
  }
  // Wrongly typed or missing fields are bad requests too.
  for (const char* body :
       {R"({"channel":5,"data":1})", R"({"data":1})", R"({"channel":"chat:x"})"}) {
    HttpResult r = Api(node_, "publish", body);
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_EQ(CodeOf(r), 107u) << r.body;
  }
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpErrors, UnknownMethodIs404WithCode104) {
  for (const char* method : {"nope", "Publish", "publish_all"}) {
    HttpResult r = Api(node_, method, "{}");
    EXPECT_EQ(r.status, 404) << method << ": " << r.body;
    EXPECT_EQ(CodeOf(r), 104u) << r.body;
  }
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpErrors, UnknownNamespaceIs102) {
  for (const char* method :
       {"publish", "history", "presence", "presence_stats", "history_remove"}) {
    HttpResult r = Api(node_, method, R"({"channel":"nope:x","data":1})");
    EXPECT_EQ(r.status, 200) << method << ": " << r.body;
    EXPECT_EQ(CodeOf(r), 102u) << method << ": " << r.body;
  }
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpErrors, FeatureOffInTheNamespaceIs108) {
  for (const char* method : {"presence", "presence_stats"}) {
    HttpResult r = Api(node_, method, R"({"channel":"short:x"})");
    EXPECT_EQ(CodeOf(r), 108u) << method << ": " << r.body;
  }
  for (const char* method : {"history", "history_remove"}) {
    HttpResult r = Api(node_, method, R"({"channel":"nohist:x"})");
    EXPECT_EQ(CodeOf(r), 108u) << method << ": " << r.body;
  }
  EXPECT_TRUE(node_.Stop());
}

TEST(NodeHttpLimits, OversizedDataIs106AndBadChannelNamesAre106Or107) {
  NodeOptions o;
  o.overrides = {"limits.max_publication_bytes=32"};
  NodeProcess node(o);
  ASSERT_TRUE(node.ready()) << node.banner();
  const std::string big =
      std::string(R"({"channel":"chat:l","data":")") + std::string(64, 'x') + "\"}";
  EXPECT_EQ(CodeOf(Api(node, "publish", big)), 106u);
  HttpResult b =
      Api(node, "broadcast",
          std::string(R"({"channels":["chat:l"],"data":")") + std::string(64, 'x') + "\"}");
  EXPECT_EQ(Body(b)["result"]["responses"][0]["error"].value("code", 0u), 106u) << b.body;
  HttpResult h = Api(node, "history", R"({"channel":"chat:l","limit":-1})");
  EXPECT_EQ(Body(h)["result"].value("offset", 99u), 0u) << h.body;  // nothing was kept
  const std::string long_name = "chat:" + std::string(300, 'n');
  EXPECT_EQ(CodeOf(Api(node, "publish", R"({"channel":")" + long_name + R"(","data":1})")), 106u);
  EXPECT_EQ(CodeOf(Api(node, "publish", R"({"channel":"chat:a\u0001","data":1})")), 107u);
  EXPECT_EQ(CodeOf(Api(node, "publish", R"({"channel":"","data":1})")), 107u);
  EXPECT_TRUE(node.Stop());
}

class NodeHttpOps : public NodeHttpAuth {};

// The value of an unlabelled sample, or of the first sample whose labels contain `labels`.
double Sample(const std::string& text, const std::string& name, const std::string& labels = "") {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind(name, 0) != 0) continue;
    const std::string rest = line.substr(name.size());
    if (rest.empty() || (rest[0] != ' ' && rest[0] != '{')) continue;  // a longer name
    if (!labels.empty() && rest.find(labels) == std::string::npos) continue;
    return std::atof(rest.substr(rest.rfind(' ') + 1).c_str());
  }
  return -1;
}

TEST_F(NodeHttpOps, HealthAndMetrics) {
  HttpResult health = HttpRequest(node_.http_host(), node_.http_port(), "GET", "/health");
  EXPECT_EQ(health.status, 200) << health.body;

  Client sub = Connect(ctx_, node_, "alice");
  ASSERT_TRUE(Subscribe(sub, "short:m"));
  ASSERT_EQ(Api(node_, "publish", R"({"channel":"short:m","data":1})").status, 200);
  ASSERT_TRUE(sub->Push("pub", "short:m"));

  HttpResult m = HttpRequest(node_.http_host(), node_.http_port(), "GET", "/metrics");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(m.headers["content-type"].rfind("text/plain", 0), 0u) << m.headers["content-type"];
  for (const char* name : {"chorus_connections", "chorus_channels", "chorus_publications_total",
                           "chorus_deliveries_total", "chorus_drops_total", "chorus_recovery_total",
                           "chorus_queue_depth"}) {
    EXPECT_NE(m.body.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
    EXPECT_GE(Sample(m.body, name), 0) << name << " has no sample";
  }
  EXPECT_EQ(Sample(m.body, "chorus_connections"), 1);
  EXPECT_EQ(Sample(m.body, "chorus_channels"), 1);
  EXPECT_EQ(Sample(m.body, "chorus_publications_total"), 1);
  EXPECT_EQ(Sample(m.body, "chorus_deliveries_total"), 1);
  EXPECT_EQ(Sample(m.body, "chorus_drops_total", "reason=\"slow\""), 0);
  EXPECT_TRUE(node_.Stop());
}

TEST(NodeHttpCheckConfig, GoodFileExits0AndABadKeyExits2NamingIt) {
  TempFile good("[http]\nport = 0\n[api]\nkey = \"k\"\n[namespaces.chat]\npresence = true\n");
  CommandResult ok = RunCommand(CHORUSD_BIN, {"--check-config", good.path()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("ok"), std::string::npos) << ok.out;

  TempFile bad("[http]\nport = 0\nprot = 8000\n");
  CommandResult r = RunCommand(CHORUSD_BIN, {"--check-config", bad.path()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("http.prot"), std::string::npos) << r.err;

  TempFile bad_ns("[namespaces.chat]\nhistory_size = 10\n");  // needs history_ttl_ms
  CommandResult ns = RunCommand(CHORUSD_BIN, {"--check-config", bad_ns.path()});
  EXPECT_EQ(ns.exit_code, 2) << ns.out << ns.err;
  EXPECT_NE(ns.err.find("namespaces.chat."), std::string::npos) << ns.err;
}

TEST(NodeHttpStartup, OccupiedHttpPortExitsNonZeroWithAClearMessage) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));

  TempFile cfg("[http]\naddress = \"127.0.0.1\"\nport = " + port + "\n[api]\nkey = \"k\"\n");
  CommandResult r = RunCommand(CHORUSD_BIN, {"--config", cfg.path()}, std::chrono::seconds(15));
  close(fd);
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.exit_code, -1) << "chorusd did not exit";
  EXPECT_EQ(r.out.find("chorusd ready"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("127.0.0.1:" + port), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("http"), std::string::npos) << r.err;
}

class NodeHttpPresenceEvents : public NodeHttpAuth {
 protected:
  // Pushes of `type` the observer holds, by user (its own join is left out).
  std::multiset<std::string> Users(Client& observer, const std::string& type) {
    std::multiset<std::string> out;
    for (const auto& f : observer->pushes()) {
      if (f.Str("push") != type || f.Str("channel") != "chat:room") continue;
      if (f.Str("data.info.user") != "observer") out.insert(f.Str("data.info.user"));
    }
    return out;
  }
  // After a ping's reply, every push the node sent the observer before is in its pushes().
  void Drain(Client& observer) { ASSERT_TRUE(observer->Call("ping")); }
};

TEST_F(NodeHttpPresenceEvents, UserLevelPushesOncePerUser) {
  Client obs = Connect(ctx_, node_, "observer");
  ASSERT_TRUE(Subscribe(obs, "chat:room"));
  Client a1 = Connect(ctx_, node_, "alice");
  Client a2 = Connect(ctx_, node_, "alice");
  Client b = Connect(ctx_, node_, "bob");
  for (Client* c : {&a1, &a2, &b}) ASSERT_TRUE(Subscribe(*c, "chat:room"));
  Drain(obs);
  EXPECT_EQ(Users(obs, "join"), (std::multiset<std::string>{"alice", "alice", "bob"}));
  EXPECT_EQ(Users(obs, "user_join"), (std::multiset<std::string>{"alice", "bob"}));

  // Alice's first connection leaves: a leave, but alice is still here.
  ASSERT_TRUE(a1->Call("unsubscribe", P({{"channel", "chat:room"}})));
  Drain(obs);
  EXPECT_EQ(Users(obs, "leave"), (std::multiset<std::string>{"alice"}));
  EXPECT_TRUE(Users(obs, "user_leave").empty());

  // Her last one goes (the session ends): user_leave now.
  a2->Send("disconnect");
  auto ul = obs->Push("user_leave", "chat:room");
  ASSERT_TRUE(ul);
  EXPECT_EQ(ul->Str("data.info.user"), "alice");
  EXPECT_EQ(ul->Str("data.info.client"), a2.id);
  // Bob, disconnected through the API.
  ASSERT_EQ(Api(node_, "disconnect", R"({"user":"bob"})").status, 200);
  auto ub = obs->Push("user_leave", "chat:room");
  ASSERT_TRUE(ub);
  EXPECT_EQ(ub->Str("data.info.user"), "bob");
  Drain(obs);
  EXPECT_EQ(Users(obs, "leave"), (std::multiset<std::string>{"alice", "alice", "bob"}));
  EXPECT_TRUE(Users(obs, "user_leave").empty());  // both taken by Push above, none extra
  EXPECT_EQ(Users(obs, "user_join"), (std::multiset<std::string>{"alice", "bob"}));  // no new ones
  EXPECT_TRUE(node_.Stop());
}

}  // namespace
}  // namespace chorus::testing
