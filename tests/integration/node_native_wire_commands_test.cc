// Raw-wire tests of each native command's result (docs/protocol/native.md, "Methods" and push
// bodies) against a real chorusd: connect, subscribe, unsubscribe, publish, presence (paged),
// presence_stats, history, ping, and the join / leave / user_join / user_leave pushes.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "node_native_support.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;

msgpack::type::object_type TypeOf(const Frame& f, const std::string& path) {
  const msgpack::object* o = f.Get(path);
  return o == nullptr ? msgpack::type::NIL : o->type;
}

// The publication maps of the array at `path`, as (offset, data) pairs.
std::vector<std::pair<uint64_t, std::string>> Pubs(const Frame& f, const std::string& path) {
  std::vector<std::pair<uint64_t, std::string>> out;
  const msgpack::object* a = f.Get(path);
  if (a == nullptr || a->type != msgpack::type::ARRAY) return out;
  for (uint32_t i = 0; i < a->via.array.size; ++i) {
    const msgpack::object& m = a->via.array.ptr[i];
    std::pair<uint64_t, std::string> p;
    for (uint32_t k = 0; m.type == msgpack::type::MAP && k < m.via.map.size; ++k) {
      const auto& kv = m.via.map.ptr[k];
      const std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
      if (key == "offset") p.first = kv.val.as<uint64_t>();
      if (key == "data") p.second = kv.val.as<std::string>();
    }
    out.push_back(p);
  }
  return out;
}

size_t MapSize(const Frame& f, const std::string& path) {
  const msgpack::object* o = f.Get(path);
  return o != nullptr && o->type == msgpack::type::MAP ? o->via.map.size : 0;
}

std::vector<std::string> MapKeys(const Frame& f, const std::string& path) {
  std::vector<std::string> out;
  const msgpack::object* o = f.Get(path);
  for (uint32_t i = 0; o != nullptr && o->type == msgpack::type::MAP && i < o->via.map.size; ++i) {
    out.emplace_back(o->via.map.ptr[i].key.via.str.ptr, o->via.map.ptr[i].key.via.str.size);
  }
  return out;
}

class NodeNativeCommands : public NodeFixture {
 protected:
  // Publishes `n` publications numbered from `first` ({"n":first}...), waiting for each reply.
  void PublishN(RawSession& s, const std::string& channel, int n, int first = 1) {
    for (int i = 0; i < n; ++i) {
      auto r =
          s.Call("publish",
                 P({{"channel", channel}, {"data", "{\"n\":" + std::to_string(first + i) + "}"}}));
      ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
    }
  }
};

TEST_F(NodeNativeCommands, ConnectInsecureResult) {
  StartNode();
  RawSession a = Session(), b = Session();
  auto r = a.Call("connect", P({{"user", "alice"}, {"info", "{\"name\":\"A\"}"}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  EXPECT_EQ(r->Uint("id"), 1u);
  EXPECT_FALSE(r->Has("error"));
  EXPECT_EQ(TypeOf(*r, "result.client"), msgpack::type::STR);
  EXPECT_FALSE(r->Str("result.client").empty());
  EXPECT_FALSE(r->Str("result.version").empty());
  EXPECT_EQ(r->Uint("result.ping"), 25u);  // client.ping_interval_s default
  EXPECT_EQ(r->Uint("result.pong"), 8u);   // client.pong_timeout_s default
  EXPECT_NE(ConnectAs(b, "alice"), r->Str("result.client")) << "client ids are per session";
  // The user and conn_info are what presence shows.
  // chan_info comes from a subscription token (N-20); a client's own `info` is ignored.
  const std::string token =
      MakeHs256Token("test-secret", "alice", 0, "{\"room\":1}", "\"channel\":\"chat:c\"");
  ASSERT_TRUE(
      a.Call("subscribe", P({{"channel", "chat:c"}, {"token", token}, {"info", "{\"x\":2}"}}))
          ->Has("result"));
  auto p = a.Call("presence", P({{"channel", "chat:c"}}));
  const std::string me = "result.presence." + r->Str("result.client");
  EXPECT_EQ(p->Str(me + ".client"), r->Str("result.client"));
  EXPECT_EQ(p->Str(me + ".user"), "alice");
  EXPECT_EQ(p->Str(me + ".conn_info"), "{\"name\":\"A\"}");
  EXPECT_EQ(p->Str(me + ".chan_info"), "{\"room\":1}");
}

TEST_F(NodeNativeCommands, ConnectTokenCarriesInfo) {
  NodeOptions o;
  o.insecure = false;
  StartNode(o);
  RawSession s = Session();
  auto r = s.Call("connect", P({{"token", MakeHs256Token("test-secret", "bob", 0, "{\"a\":1}")}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  ASSERT_TRUE(s.Call("subscribe", P({{"channel", "chat:t"}}))->Has("result"));
  auto p = s.Call("presence", P({{"channel", "chat:t"}}));
  const std::string me = "result.presence." + r->Str("result.client");
  EXPECT_EQ(p->Str(me + ".user"), "bob");
  EXPECT_EQ(p->Str(me + ".conn_info"), "{\"a\":1}");
}

TEST_F(NodeNativeCommands, SubscribeResultKeysAndTypes) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  PublishN(s, "chat:s", 2);
  auto r = s.Call("subscribe", P({{"channel", "chat:s"}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  EXPECT_EQ(TypeOf(*r, "result.recoverable"), msgpack::type::BOOLEAN);
  EXPECT_EQ(TypeOf(*r, "result.epoch"), msgpack::type::STR);
  EXPECT_EQ(TypeOf(*r, "result.offset"), msgpack::type::POSITIVE_INTEGER);
  EXPECT_EQ(TypeOf(*r, "result.recovered"), msgpack::type::BOOLEAN);
  EXPECT_EQ(TypeOf(*r, "result.was_recovering"), msgpack::type::BOOLEAN);
  EXPECT_EQ(TypeOf(*r, "result.publications"), msgpack::type::ARRAY);
  EXPECT_TRUE(r->Bool("result.recoverable"));
  EXPECT_FALSE(r->Str("result.epoch").empty());
  EXPECT_EQ(r->Uint("result.offset"), 2u);
  EXPECT_FALSE(r->Bool("result.recovered"));
  EXPECT_FALSE(r->Bool("result.was_recovering"));
  EXPECT_TRUE(Pubs(*r, "result.publications").empty()) << "no recovery asked: none";
  // Without history: not recoverable, position 0 / "".
  auto n = s.Call("subscribe", P({{"channel", "nohist:s"}, {"recover", true}}));
  ASSERT_TRUE(n && n->Has("result"));
  EXPECT_FALSE(n->Bool("result.recoverable"));
  EXPECT_FALSE(n->Bool("result.recovered"));
  EXPECT_EQ(n->Uint("result.offset"), 0u);
  EXPECT_EQ(n->Str("result.epoch"), "");
}

TEST_F(NodeNativeCommands, PublishOffsetsIncreaseAndPushCarriesInfo) {
  StartNode();
  RawSession p = Session(), sub = Session();
  const std::string pc = ConnectAs(p, "pete", "{\"k\":\"v\"}");
  ASSERT_FALSE(ConnectAs(sub, "sue").empty());
  ASSERT_TRUE(sub.Call("subscribe", P({{"channel", "chat:p"}}))->Has("result"));
  std::string epoch;
  for (uint64_t i = 1; i <= 5; ++i) {
    auto r = p.Call("publish", P({{"channel", "chat:p"}, {"data", "[" + std::to_string(i) + "]"}}));
    ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
    EXPECT_EQ(r->Uint("result.offset"), i);
    if (i == 1) epoch = r->Str("result.epoch");
    EXPECT_EQ(r->Str("result.epoch"), epoch);
    EXPECT_FALSE(epoch.empty());
  }
  for (uint64_t i = 1; i <= 5; ++i) {
    auto f = sub.Push("pub", "chat:p");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->Uint("data.offset"), i);
    EXPECT_EQ(f->Str("data.data"), "[" + std::to_string(i) + "]");
    EXPECT_EQ(f->Str("data.info.client"), pc);
    EXPECT_EQ(f->Str("data.info.user"), "pete");
    EXPECT_EQ(f->Str("data.info.conn_info"), "{\"k\":\"v\"}");
  }
  // Another channel has its own stream; a channel without history gives 0 / "".
  EXPECT_EQ(p.Call("publish", P({{"channel", "chat:q"}, {"data", "1"}}))->Uint("result.offset"),
            1u);
  auto nh = p.Call("publish", P({{"channel", "nohist:p"}, {"data", "1"}}));
  ASSERT_TRUE(nh && nh->Has("result"));
  EXPECT_EQ(nh->Uint("result.offset"), 0u);
  EXPECT_EQ(nh->Str("result.epoch"), "");
  // A publication through the server API has no info.
  auto api = Api(*node_, "publish", R"({"channel":"chat:p","data":{"x":1}})");
  ASSERT_EQ(api.status, 200) << api.body;
  auto f = sub.Push("pub", "chat:p");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->Uint("data.offset"), 6u);
  EXPECT_FALSE(f->Has("data.info"));
}

TEST_F(NodeNativeCommands, PresenceAndPresenceStats) {
  StartNode();
  RawSession a1 = Session(), a2 = Session(), b = Session();
  const std::string c1 = ConnectAs(a1, "alice"), c2 = ConnectAs(a2, "alice");
  const std::string cb = ConnectAs(b, "bob");
  for (RawSession* s : {&a1, &a2, &b}) {
    ASSERT_TRUE(s->Call("subscribe", P({{"channel", "chat:pr"}}))->Has("result"));
  }
  auto p = b.Call("presence", P({{"channel", "chat:pr"}}));
  ASSERT_TRUE(p && p->Has("result")) << ErrorCode(p);
  const std::vector<std::string> keys = MapKeys(*p, "result.presence");
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), (std::set<std::string>{c1, c2, cb}));
  EXPECT_EQ(p->Str("result.presence." + cb + ".user"), "bob");
  EXPECT_EQ(p->Str("result.next_cursor"), "");
  auto st = b.Call("presence_stats", P({{"channel", "chat:pr"}}));
  EXPECT_EQ(st->Uint("result.num_clients"), 3u);
  EXPECT_EQ(st->Uint("result.num_users"), 2u);
  EXPECT_EQ(TypeOf(*st, "result.num_users"), msgpack::type::POSITIVE_INTEGER);
  ASSERT_TRUE(a1.Call("unsubscribe", P({{"channel", "chat:pr"}}))->Has("result"));
  st = b.Call("presence_stats", P({{"channel", "chat:pr"}}));
  EXPECT_EQ(st->Uint("result.num_clients"), 2u);
  EXPECT_EQ(st->Uint("result.num_users"), 2u);
  // A channel nobody is in: empty.
  EXPECT_EQ(MapSize(*b.Call("presence", P({{"channel", "chat:empty"}})), "result.presence"), 0u);
  EXPECT_EQ(b.Call("presence_stats", P({{"channel", "chat:empty"}}))->Uint("result.num_clients"),
            0u);
}

TEST_F(NodeNativeCommands, PresencePagesWithCursorAndLimit) {
  NodeOptions o;
  o.extra_toml = "\n[namespaces.paged]\npresence = true\npresence_page_size = 2\n";
  StartNode(o);
  std::vector<RawSession> sessions;
  std::set<std::string> clients;
  for (int i = 0; i < 5; ++i) {
    sessions.push_back(Session());
    clients.insert(ConnectAs(sessions.back(), "u" + std::to_string(i)));
    ASSERT_TRUE(sessions.back().Call("subscribe", P({{"channel", "paged:x"}}))->Has("result"));
  }
  RawSession& q = sessions[0];
  // Pages of the namespace's size (2) by default; a larger limit is capped to it.
  for (bool with_limit : {false, true}) {
    std::set<std::string> seen;
    std::string cursor;
    int pages = 0;
    do {
      auto r = q.Call(
          "presence",
          with_limit ? P({{"channel", "paged:x"}, {"cursor", cursor}, {"limit", uint64_t{100}}})
                     : P({{"channel", "paged:x"}, {"cursor", cursor}}));
      ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
      EXPECT_LE(MapSize(*r, "result.presence"), 2u);
      for (const auto& k : MapKeys(*r, "result.presence")) {
        EXPECT_TRUE(seen.insert(k).second) << "returned twice: " << k;
      }
      cursor = r->Str("result.next_cursor");
      ASSERT_LT(++pages, 10);
    } while (!cursor.empty());
    EXPECT_EQ(seen, clients);
    EXPECT_EQ(pages, 3);
  }
  // limit 1: five pages of one, the last with next_cursor "".
  std::set<std::string> seen;
  std::string cursor;
  for (int i = 0; i < 5; ++i) {
    auto r = q.Call("presence", P({{"channel", "paged:x"}, {"cursor", cursor}, {"limit", 1}}));
    ASSERT_EQ(MapSize(*r, "result.presence"), 1u);
    seen.insert(MapKeys(*r, "result.presence")[0]);
    cursor = r->Str("result.next_cursor");
    EXPECT_EQ(cursor.empty(), i == 4) << "page " << i;
  }
  EXPECT_EQ(seen, clients);
  // A cursor past the last entry: an empty last page.
  auto past = q.Call("presence", P({{"channel", "paged:x"}, {"cursor", *clients.rbegin()}}));
  ASSERT_TRUE(past && past->Has("result"));
  EXPECT_EQ(MapSize(*past, "result.presence"), 0u);
  EXPECT_EQ(past->Str("result.next_cursor"), "");
}

TEST_F(NodeNativeCommands, HistoryLimitSinceReverse) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  PublishN(s, "chat:h", 10);
  auto pos = s.Call("history", P({{"channel", "chat:h"}}));  // limit absent = 0
  ASSERT_TRUE(pos && pos->Has("result")) << ErrorCode(pos);
  EXPECT_TRUE(Pubs(*pos, "result.publications").empty());
  EXPECT_EQ(pos->Uint("result.offset"), 10u);
  const std::string epoch = pos->Str("result.epoch");
  ASSERT_FALSE(epoch.empty());
  auto hist = [&](const std::string& params) {
    auto r = s.Call("history", params);
    EXPECT_TRUE(r && r->Has("result")) << ErrorCode(r);
    if (r) {
      EXPECT_EQ(r->Uint("result.offset"), 10u);
      EXPECT_EQ(r->Str("result.epoch"), epoch);
    }
    return r ? OffsetsOf(*r, "result.publications") : std::vector<uint64_t>{};
  };
  using V = std::vector<uint64_t>;
  EXPECT_EQ(hist(P({{"channel", "chat:h"}, {"limit", 3}})), (V{1, 2, 3}));
  EXPECT_EQ(hist(P({{"channel", "chat:h"}, {"limit", -1}})), (V{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(hist(P({{"channel", "chat:h"}, {"limit", 100}})).size(), 10u);
  EXPECT_EQ(hist(P({{"channel", "chat:h"}, {"limit", 3}, {"reverse", true}})), (V{10, 9, 8}));
  auto h = s.Call("history", P({{"channel", "chat:h"}, {"limit", 2}}));
  EXPECT_EQ(Pubs(*h, "result.publications")[1].second, "{\"n\":2}");
  // since is exclusive; with reverse it goes back from there.
  auto since = [&](uint64_t offset, const std::string& ep, int limit, bool reverse) {
    return Pack()
        .Map(4)
        .Str("channel")
        .Str("chat:h")
        .Str("limit")
        .I(limit)
        .Str("reverse")
        .Bool(reverse)
        .Str("since")
        .Map(2)
        .Str("offset")
        .U(offset)
        .Str("epoch")
        .Str(ep)
        .str();
  };
  EXPECT_EQ(hist(since(7, epoch, -1, false)), (V{8, 9, 10}));
  EXPECT_EQ(hist(since(2, epoch, 2, false)), (V{3, 4}));
  EXPECT_EQ(hist(since(10, epoch, -1, false)), V{});
  EXPECT_EQ(hist(since(4, epoch, -1, true)), (V{3, 2, 1}));
  EXPECT_EQ(hist(since(7, "", -1, false)), (V{8, 9, 10})) << "an empty epoch skips the check";
  EXPECT_EQ(ErrorCode(s.Call("history", since(3, "wrong", -1, false))), 112u);
  EXPECT_EQ(ErrorCode(s.Call("history", since(11, epoch, -1, false))), 112u) << "future offset";
  EXPECT_EQ(ErrorCode(s.Call("history", since(0, epoch, -1, true))), 107u);
  // A channel never published to: position 0 with a fresh epoch.
  auto fresh = s.Call("history", P({{"channel", "chat:fresh"}, {"limit", -1}}));
  ASSERT_TRUE(fresh && fresh->Has("result"));
  EXPECT_EQ(fresh->Uint("result.offset"), 0u);
}

TEST_F(NodeNativeCommands, HistoryCapKeepsTheLastThree) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  PublishN(s, "short:cap", 10);
  auto r = s.Call("history", P({{"channel", "short:cap"}, {"limit", -1}}));
  ASSERT_TRUE(r && r->Has("result"));
  EXPECT_EQ(OffsetsOf(*r, "result.publications"), (std::vector<uint64_t>{8, 9, 10}));
  EXPECT_EQ(Pubs(*r, "result.publications")[0].second, "{\"n\":8}");
  EXPECT_EQ(r->Uint("result.offset"), 10u);
}

TEST_F(NodeNativeCommands, PingHasEmptyResult) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  auto r = s.Call("ping");
  ASSERT_TRUE(r);
  EXPECT_EQ(TypeOf(*r, "result"), msgpack::type::MAP);
  EXPECT_EQ(MapSize(*r, "result"), 0u);
  EXPECT_FALSE(r->Has("error"));
}

TEST_F(NodeNativeCommands, JoinLeaveAndUserJoinUserLeave) {
  StartNode();
  RawSession w = Session(), a1 = Session(), a2 = Session();
  ASSERT_FALSE(ConnectAs(w, "watcher").empty());
  ASSERT_TRUE(w.Call("subscribe", P({{"channel", "chat:jl"}}))->Has("result"));
  ASSERT_TRUE(w.Push("join", "chat:jl"));  // its own
  ASSERT_TRUE(w.Push("user_join", "chat:jl"));
  // Counts pushes of a type kept by `w` after a ping barrier (everything the node sent before
  // the ping reply has arrived).
  auto drain = [&](const std::string& type, const std::string& client) {
    EXPECT_TRUE(w.Call("ping"));
    int n = 0;
    for (auto it = w.pushes().begin(); it != w.pushes().end();) {
      if (it->Str("push") == type && it->Str("channel") == "chat:jl" &&
          (client.empty() || it->Str("data.info.client") == client)) {
        ++n;
        it = w.pushes().erase(it);
      } else {
        ++it;
      }
    }
    return n;
  };
  const std::string c1 = ConnectAs(a1, "alice"), c2 = ConnectAs(a2, "alice");
  const std::string token =
      MakeHs256Token("test-secret", "alice", 0, "{\"s\":1}", "\"channel\":\"chat:jl\"");
  ASSERT_TRUE(a1.Call("subscribe", P({{"channel", "chat:jl"}, {"token", token}}))->Has("result"));
  auto join = w.Push("join", "chat:jl");
  ASSERT_TRUE(join);
  EXPECT_EQ(join->Str("data.info.client"), c1);
  EXPECT_EQ(join->Str("data.info.user"), "alice");
  EXPECT_EQ(join->Str("data.info.chan_info"), "{\"s\":1}");
  auto uj = w.Push("user_join", "chat:jl");
  ASSERT_TRUE(uj);
  EXPECT_EQ(uj->Str("data.info.user"), "alice");
  // The second connection of alice: join, no user_join.
  ASSERT_TRUE(a2.Call("subscribe", P({{"channel", "chat:jl"}}))->Has("result"));
  ASSERT_TRUE(w.Push("join", "chat:jl"));
  EXPECT_EQ(drain("user_join", ""), 0);
  // The first leaves: leave, no user_leave; the last leaves (by disconnect): both.
  ASSERT_TRUE(a1.Call("unsubscribe", P({{"channel", "chat:jl"}}))->Has("result"));
  auto leave = w.Push("leave", "chat:jl");
  ASSERT_TRUE(leave);
  EXPECT_EQ(leave->Str("data.info.client"), c1);
  EXPECT_EQ(drain("user_leave", ""), 0);
  a2.Send("disconnect");
  leave = w.Push("leave", "chat:jl");
  ASSERT_TRUE(leave);
  EXPECT_EQ(leave->Str("data.info.client"), c2);
  auto ul = w.Push("user_leave", "chat:jl");
  ASSERT_TRUE(ul);
  EXPECT_EQ(ul->Str("data.info.user"), "alice");
  EXPECT_EQ(drain("join", ""), 0);
  EXPECT_EQ(drain("leave", ""), 0);
}

TEST_F(NodeNativeCommands, NoJoinLeaveWithoutTheOption) {
  StartNode();
  RawSession w = Session(), a = Session();
  ASSERT_FALSE(ConnectAs(w, "w").empty());
  ASSERT_FALSE(ConnectAs(a, "a").empty());
  ASSERT_TRUE(w.Call("subscribe", P({{"channel", "nohist:jl"}}))->Has("result"));
  ASSERT_TRUE(a.Call("subscribe", P({{"channel", "nohist:jl"}}))->Has("result"));
  ASSERT_TRUE(a.Call("unsubscribe", P({{"channel", "nohist:jl"}}))->Has("result"));
  EXPECT_TRUE(w.Call("ping"));
  EXPECT_TRUE(w.pushes().empty()) << "nohist has presence but no join_leave";
  // Presence is still kept.
  ASSERT_TRUE(a.Call("subscribe", P({{"channel", "nohist:jl"}}))->Has("result"));
  EXPECT_EQ(w.Call("presence_stats", P({{"channel", "nohist:jl"}}))->Uint("result.num_clients"),
            2u);
}

}  // namespace
}  // namespace chorus::testing
