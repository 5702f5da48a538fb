// Process-level tests of the CHP tools: the real chorus-chp-server binary, written to through a
// ReplicaAgent, inspected with the real chorus-snapshot binary (docs/operations.md, "Inspecting
// state"); and a replica failing over from a server killed with SIGKILL to a new server process.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <msgpack.hpp>
#include <zmq.hpp>

#include "chp/agent.h"
#include "test_util.h"

namespace chorus::chp {
namespace {

using namespace std::chrono_literals;
using chorus::testing::ChildProcess;
using chorus::testing::EventuallyTrue;
using chorus::testing::Field;
using chorus::testing::RunCommand;

const std::string kServerBin = CHORUS_CHP_SERVER_BIN;
const std::string kSnapshotBin = CHORUS_SNAPSHOT_BIN;

template <typename T>
std::string Pack(const T& v) {
  msgpack::sbuffer b;
  msgpack::pack(b, v);
  return std::string(b.data(), b.size());
}

// ---------------------------------------------------------------------------------------------
// A tiny JSON parser (objects, arrays, strings, numbers, literals), enough to check the tool's
// output structurally. Numbers keep their text.

struct Json {
  enum Type { kNull, kBool, kNumber, kString, kArray, kObject } type = kNull;
  bool boolean = false;
  std::string text;  // number text or string value
  std::vector<Json> items;
  std::vector<std::string> keys;  // for objects, parallel to items

  const Json* Get(const std::string& key) const {
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key) return &items[i];
    }
    return nullptr;
  }
  const Json& operator[](const std::string& key) const {
    static const Json kMissing;
    const Json* j = Get(key);
    return j ? *j : kMissing;
  }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}
  // The whole input must be one value (surrounding whitespace allowed).
  std::optional<Json> ParseAll() {
    Json v;
    if (!Value(v)) return std::nullopt;
    Space();
    if (pos_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  void Space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Eat(char c) {
    Space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool String(std::string& out) {
    if (!Eat('"')) return false;
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) return false;
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u':
          if (pos_ + 4 > s_.size()) return false;
          out += "\\u" + std::string(s_.substr(pos_, 4));  // kept escaped
          pos_ += 4;
          break;
        default:
          return false;
      }
    }
    return false;
  }
  bool Value(Json& v) {
    Space();
    if (pos_ >= s_.size()) return false;
    const char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      v.type = Json::kObject;
      if (Eat('}')) return true;
      do {
        std::string key;
        Json item;
        if (!String(key) || !Eat(':') || !Value(item)) return false;
        if (v.Get(key) != nullptr) return false;  // duplicate key
        v.keys.push_back(std::move(key));
        v.items.push_back(std::move(item));
      } while (Eat(','));
      return Eat('}');
    }
    if (c == '[') {
      ++pos_;
      v.type = Json::kArray;
      if (Eat(']')) return true;
      do {
        Json item;
        if (!Value(item)) return false;
        v.items.push_back(std::move(item));
      } while (Eat(','));
      return Eat(']');
    }
    if (c == '"') {
      v.type = Json::kString;
      return String(v.text);
    }
    for (const auto& [word, type, b] :
         {std::tuple{"true", Json::kBool, true}, std::tuple{"false", Json::kBool, false},
          std::tuple{"null", Json::kNull, false}}) {
      if (s_.substr(pos_).starts_with(word)) {
        pos_ += std::string_view(word).size();
        v.type = type;
        v.boolean = b;
        return true;
      }
    }
    const size_t start = pos_;
    while (pos_ < s_.size() &&
           (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '-' ||
            s_[pos_] == '+' || s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
    }
    if (pos_ == start) return false;
    v.type = Json::kNumber;
    v.text = std::string(s_.substr(start, pos_ - start));
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// A TCP port on loopback that nothing listens on: bound, then closed.
int UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A chorus-chp-server child process.
struct ServerProcess {
  std::unique_ptr<ChildProcess> child;
  std::string command, publisher, id;
};

ServerProcess StartServer(const std::string& command = "tcp://127.0.0.1:0") {
  ServerProcess s;
  s.child = std::make_unique<ChildProcess>(
      kServerBin, std::vector<std::string>{"--command", command, "--publisher", "tcp://127.0.0.1:0",
                                           "--heartbeat-ms", "100", "--log-level", "warn"});
  const std::string banner = s.child->ReadLine(10s);
  EXPECT_TRUE(banner.starts_with("chorus-chp-server ")) << "banner: '" << banner << "'";
  s.command = Field(banner, "command");
  s.publisher = Field(banner, "publisher");
  s.id = Field(banner, "id");
  EXPECT_FALSE(s.command.empty());
  return s;
}

class ChpTools : public ::testing::Test {
 protected:
  // Writes through a ReplicaAgent and waits for every KVACK; returns the last acked position of
  // each subtree.
  std::map<std::string, Position> Write(
      const std::string& endpoint,
      const std::vector<std::tuple<std::string, std::optional<std::string>>>& ops) {
    AgentOptions o;
    o.endpoints = {endpoint};
    ReplicaAgent writer(ctx_, o);
    std::map<std::string, Position> positions;
    size_t acked = 0;
    for (const auto& [key, value] : ops) {
      auto on_ack = [&, key = key](const KvAck& a) {
        EXPECT_EQ(a.status, 0u) << key;
        positions[key.substr(0, key.find('/'))] = a.position;
        ++acked;
      };
      auto r = value ? writer.Set(key, *value, 0, on_ack) : writer.Erase(key, on_ack);
      EXPECT_TRUE(r.ok()) << key;
      // One at a time, so the acked positions are in order.
      EXPECT_TRUE(EventuallyTrue([&] {
        writer.RunOnce(5ms);
        return writer.unacked() == 0;
      })) << "no KVACK for "
          << key;
    }
    EXPECT_EQ(acked, ops.size());
    return positions;
  }

  // Seeds cfg/host = "db1", cfg/port = 5432, app/name = "chorus".
  void Seed() {
    server_ = StartServer();
    positions_ = Write(server_.command, {{"cfg/host", Pack(std::string("db1"))},
                                         {"cfg/port", Pack(5432)},
                                         {"app/name", Pack(std::string("chorus"))}});
    ASSERT_EQ(positions_["cfg"].seq, 2u);
    ASSERT_EQ(positions_["app"].seq, 1u);
  }

  static std::optional<Json> ParseLine(const std::string& out) {
    // Exactly one line.
    if (out.empty() || out.back() != '\n' || out.find('\n') != out.size() - 1) return std::nullopt;
    return JsonParser(out).ParseAll();
  }

  zmq::context_t ctx_;
  ServerProcess server_;
  std::map<std::string, Position> positions_;
};

TEST_F(ChpTools, SnapshotTableListsKeys) {
  Seed();
  auto r = RunCommand(kSnapshotBin, {server_.command});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& cfg_epoch = positions_["cfg"].epoch;
  EXPECT_NE(r.out.find("subtree cfg  epoch=" + cfg_epoch + "  seq=2  entries=2\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  host  seq=1  \"db1\"\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  port  seq=2  5432\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("subtree app  epoch=" + positions_["app"].epoch + "  seq=1  entries=1\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  name  seq=1  \"chorus\"\n"), std::string::npos) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(ChpTools, SnapshotJsonIsOneObjectPerSubtree) {
  Seed();
  auto r = RunCommand(kSnapshotBin, {server_.command, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = ParseLine(r.out);
  ASSERT_TRUE(j.has_value()) << "not one line of JSON: " << r.out;
  ASSERT_EQ(j->type, Json::kObject);
  EXPECT_EQ(j->keys, (std::vector<std::string>{"app", "cfg"}));
  const Json& cfg = (*j)["cfg"];
  ASSERT_EQ(cfg.type, Json::kObject);
  EXPECT_EQ(cfg.keys, (std::vector<std::string>{"epoch", "sequence", "entries"}));
  EXPECT_EQ(cfg["epoch"].type, Json::kString);
  EXPECT_EQ(cfg["epoch"].text, positions_["cfg"].epoch);
  EXPECT_EQ(cfg["sequence"].type, Json::kNumber);
  EXPECT_EQ(cfg["sequence"].text, "2");
  const Json& entries = cfg["entries"];
  ASSERT_EQ(entries.type, Json::kObject);
  EXPECT_EQ(entries.keys, (std::vector<std::string>{"host", "port"}));
  EXPECT_EQ(entries["host"].type, Json::kString);
  EXPECT_EQ(entries["host"].text, "db1");
  EXPECT_EQ(entries["port"].type, Json::kNumber);
  EXPECT_EQ(entries["port"].text, "5432");
  EXPECT_EQ((*j)["app"]["entries"]["name"].text, "chorus");
  EXPECT_EQ((*j)["app"]["sequence"].text, "1");
}

TEST_F(ChpTools, SnapshotSubtreeFilters) {
  Seed();
  auto table = RunCommand(kSnapshotBin, {server_.command, "--subtree", "cfg"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("subtree cfg "), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("subtree app"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("chorus"), std::string::npos) << table.out;

  auto json = RunCommand(kSnapshotBin, {server_.command, "--subtree", "app", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto j = ParseLine(json.out);
  ASSERT_TRUE(j.has_value()) << json.out;
  EXPECT_EQ(j->keys, std::vector<std::string>{"app"});

  // A subtree the server does not hold: unborn and empty, not an error.
  auto none = RunCommand(kSnapshotBin, {server_.command, "--subtree", "nothing", "--json"});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  auto n = ParseLine(none.out);
  ASSERT_TRUE(n.has_value()) << none.out;
  EXPECT_EQ((*n)["nothing"]["epoch"].text, "");
  EXPECT_EQ((*n)["nothing"]["sequence"].text, "0");
  EXPECT_TRUE((*n)["nothing"]["entries"].keys.empty());
}

TEST_F(ChpTools, SnapshotStatsShowsCounts) {
  Seed();
  const size_t cfg_bytes = 4 + Pack(std::string("db1")).size() + 4 + Pack(5432).size();
  const size_t app_bytes = 4 + Pack(std::string("chorus")).size();
  auto r = RunCommand(kSnapshotBin, {server_.command, "--stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0], "server " + server_.id);
  EXPECT_EQ(Words(lines[1]),
            (std::vector<std::string>{"SUBTREE", "EPOCH", "SEQUENCE", "KEYS", "BYTES"}));
  EXPECT_EQ(Words(lines[2]), (std::vector<std::string>{"app", positions_["app"].epoch, "1", "1",
                                                       std::to_string(app_bytes)}));
  EXPECT_EQ(Words(lines[3]), (std::vector<std::string>{"cfg", positions_["cfg"].epoch, "2", "2",
                                                       std::to_string(cfg_bytes)}));
  EXPECT_EQ(Words(lines[4]),
            (std::vector<std::string>{"TOTAL", "3", std::to_string(cfg_bytes + app_bytes)}));

  auto js = RunCommand(kSnapshotBin, {server_.command, "--stats", "--json"});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  auto j = ParseLine(js.out);
  ASSERT_TRUE(j.has_value()) << js.out;
  EXPECT_EQ((*j)["server_id"].text, server_.id);
  EXPECT_EQ((*j)["subtrees"]["cfg"]["keys"].text, "2");
  EXPECT_EQ((*j)["subtrees"]["cfg"]["sequence"].text, "2");
  EXPECT_EQ((*j)["subtrees"]["cfg"]["bytes"].text, std::to_string(cfg_bytes));
  EXPECT_EQ((*j)["total"]["subtrees"].text, "2");
  EXPECT_EQ((*j)["total"]["keys"].text, "3");
}

TEST_F(ChpTools, SnapshotFollowPrintsChangesWithSequence) {
  Seed();
  ChildProcess follow(kSnapshotBin,
                      {server_.command, "--subtree", "cfg", "--follow", "--follow-for", "1500"});
  const auto t0 = std::chrono::steady_clock::now();
  // The snapshot first: the subtree line and its two entries.
  EXPECT_TRUE(follow.ReadLine(10s).starts_with("subtree cfg "));
  EXPECT_TRUE(follow.ReadLine().starts_with("  host "));
  EXPECT_TRUE(follow.ReadLine().starts_with("  port "));
  // Changes made meanwhile.
  Write(server_.command, {{"cfg/port", Pack(5433)}, {"cfg/host", std::nullopt}});
  EXPECT_EQ(follow.ReadLine(), "seq=3 cfg/port set 5433");
  EXPECT_EQ(follow.ReadLine(), "seq=4 cfg/host delete");
  const int status = follow.Wait(10s);
  ASSERT_NE(status, -1) << "--follow-for did not end the follow";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1400ms);
}

TEST_F(ChpTools, SnapshotUnreachableEndpointExits2) {
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(UnusedPort());
  const auto t0 = std::chrono::steady_clock::now();
  auto r = RunCommand(kSnapshotBin, {endpoint, "--timeout", "700"}, 10s);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_LT(took, 5s);
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
  EXPECT_NE(r.err.find("no answer from " + endpoint), std::string::npos) << r.err;
}

TEST_F(ChpTools, SnapshotOfStoppedServerExits2) {
  ServerProcess s = StartServer();
  Write(s.command, {{"cfg/a", Pack(1)}});
  s.child->Signal(SIGSTOP);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = RunCommand(kSnapshotBin, {s.command, "--timeout", "700"}, 10s);
  const auto took = std::chrono::steady_clock::now() - t0;
  s.child->Signal(SIGCONT);
  EXPECT_EQ(r.exit_code, 2) << "a stopped server must not hang the tool: " << r.out << r.err;
  EXPECT_LT(took, 5s);
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  // Running again, it answers.
  auto ok = RunCommand(kSnapshotBin, {s.command, "--subtree", "cfg"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(s.child->Terminate());
}

TEST_F(ChpTools, SnapshotInvalidSubtreeExits1) {
  // No server needed: the name is checked first (nothing listens there anyway).
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(UnusedPort());
  for (const std::string bad : {"a/b", "$HUGZ", "*", "bad\x01name"}) {
    auto r = RunCommand(kSnapshotBin, {endpoint, "--subtree", bad}, 10s);
    EXPECT_EQ(r.exit_code, 1) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("invalid subtree"), std::string::npos) << r.err;
  }
}

TEST_F(ChpTools, ServerBannerAndCleanShutdown) {
  ServerProcess s = StartServer();
  EXPECT_TRUE(s.command.starts_with("tcp://127.0.0.1:"));
  EXPECT_TRUE(s.publisher.starts_with("tcp://127.0.0.1:"));
  EXPECT_EQ(s.id.size(), 16u);
  EXPECT_TRUE(s.child->Terminate()) << "SIGTERM must end the server with status 0";
}

TEST_F(ChpTools, ReplicaFailsOverFromKilledServerToNewServer) {
  ServerProcess a = StartServer();
  const std::string b_endpoint = "tcp://127.0.0.1:" + std::to_string(UnusedPort());
  AgentOptions o;
  o.endpoints = {a.command, b_endpoint};
  o.silence_timeout = 600ms;
  o.connect_timeout = 500ms;
  ReplicaAgent follower(ctx_, o);
  ASSERT_TRUE(follower.Follow("cfg").ok());
  auto pump_until = [&](const std::function<bool()>& pred, std::chrono::milliseconds t = 10s) {
    return EventuallyTrue(
        [&] {
          follower.RunOnce(5ms);
          return pred();
        },
        t);
  };
  ASSERT_TRUE(pump_until([&] { return follower.AllLive(); }));
  auto pa = Write(a.command, {{"cfg/host", Pack(std::string("db1"))}, {"cfg/old", Pack(1)}});
  ASSERT_TRUE(pump_until([&] { return follower.Find("cfg")->position() == pa["cfg"]; }));
  EXPECT_EQ(follower.Find("cfg")->entries().size(), 2u);
  EXPECT_EQ(follower.server_id(), a.id);

  a.child->Signal(SIGKILL);
  ASSERT_NE(a.child->Wait(), -1);
  ServerProcess b = StartServer(b_endpoint);
  ASSERT_EQ(b.command, b_endpoint) << "the port picked for B was taken meanwhile";
  auto pb = Write(b.command, {{"cfg/host", Pack(std::string("db2"))}, {"cfg/new", Pack(2)}});
  ASSERT_NE(pb["cfg"].epoch, pa["cfg"].epoch);

  ASSERT_TRUE(pump_until(
      [&] {
        return follower.server_id() == b.id && follower.AllLive() &&
               follower.Find("cfg")->position() == pb["cfg"];
      },
      20s))
      << "server " << follower.server_id() << " position " << follower.Find("cfg")->position();
  const auto& entries = follower.Find("cfg")->entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries.at("host").value, Pack(std::string("db2")));
  EXPECT_EQ(entries.at("new").value, Pack(2));
  EXPECT_FALSE(entries.contains("old")) << "content of the dead server's epoch survived";
  EXPECT_GE(follower.stats().failovers, 1u);
  // One snapshot from A (unborn at start), one from B after the epoch change; B's changes
  // after that are applied live.
  EXPECT_EQ(follower.Find("cfg")->stats().snapshots, 2u);
  EXPECT_EQ(follower.Find("cfg")->stats().rejected, 0u);
  EXPECT_TRUE(b.child->Terminate());
}

}  // namespace
}  // namespace chorus::chp
