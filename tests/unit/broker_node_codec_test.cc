// Unit tests for the native protocol codec (broker/protocol/native_codec.h, docs/protocol/native.md
// "Frames") and the CHP subtree names of channels (ChannelSubtree, chp_state_sink.h).
#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "broker/channels/chp_state_sink.h"
#include "broker/protocol/native_codec.h"
#include "chp/keys.h"
#include "chp/types.h"

namespace chorus::broker::node {
namespace {

// A decoded frame with lookups by dotted path ("data.info.user").
struct Decoded {
  msgpack::object_handle handle;
  const msgpack::object* Get(const std::string& path) const {
    const msgpack::object* cur = &handle.get();
    size_t start = 0;
    for (;;) {
      const size_t dot = path.find('.', start);
      const std::string key = path.substr(start, dot == std::string::npos ? dot : dot - start);
      if (cur->type != msgpack::type::MAP) return nullptr;
      const msgpack::object* next = nullptr;
      for (uint32_t i = 0; i < cur->via.map.size; ++i) {
        const auto& kv = cur->via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR && kv.key.as<std::string>() == key) next = &kv.val;
      }
      if (next == nullptr) return nullptr;
      cur = next;
      if (dot == std::string::npos) return cur;
      start = dot + 1;
    }
  }
  bool Has(const std::string& path) const { return Get(path) != nullptr; }
  std::string Str(const std::string& path) const {
    const auto* o = Get(path);
    return o && o->type == msgpack::type::STR ? o->as<std::string>() : "<not a str>";
  }
  uint64_t Uint(const std::string& path) const {
    const auto* o = Get(path);
    return o && o->type == msgpack::type::POSITIVE_INTEGER ? o->via.u64 : 999'999;
  }
  // Keys of the map at `path` ("" = the root), sorted.
  std::set<std::string> Keys(const std::string& path = "") const {
    const msgpack::object* o = path.empty() ? &handle.get() : Get(path);
    std::set<std::string> out;
    if (o == nullptr || o->type != msgpack::type::MAP) return out;
    for (uint32_t i = 0; i < o->via.map.size; ++i)
      out.insert(o->via.map.ptr[i].key.as<std::string>());
    return out;
  }
};

Decoded Decode(const std::string& frame) {
  Decoded d;
  d.handle = msgpack::unpack(frame.data(), frame.size());
  return d;
}

// Packs a map from a builder callback: Pack(n, [](Packer& pk) { ... }).
template <typename F>
std::string Pack(uint32_t entries, F&& fill) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(entries);
  fill(pk);
  return std::string(buf.data(), buf.size());
}

// A command map {id, method[, params]} with params given as already packed bytes.
std::string Command(uint64_t id, const std::string& method, const std::string& params = "") {
  std::string out = Pack(params.empty() ? 2 : 3, [&](Packer& pk) {
    PackStr(pk, "id");
    pk.pack_uint64(id);
    PackStr(pk, "method");
    PackStr(pk, method);
    if (!params.empty()) PackStr(pk, "params");
  });
  return out + params;
}

// ---------------------------------------------------------------------------------------------
// DecodeCommand (N-6)

TEST(BrokerNodeDecodeCommand, AcceptsAMapWithIdMethodAndParams) {
  const std::string params = Pack(1, [](Packer& pk) {
    PackStr(pk, "channel");
    PackStr(pk, "chat:a");
  });
  NativeCommand cmd;
  ASSERT_TRUE(DecodeCommand(Command(7, "subscribe", params), cmd));
  EXPECT_EQ(cmd.id, 7u);
  EXPECT_EQ(cmd.method, "subscribe");
  ASSERT_NE(cmd.params, nullptr);
  Params p(cmd.params);
  EXPECT_EQ(p.Str("channel"), "chat:a");
  EXPECT_FALSE(p.bad());
}

TEST(BrokerNodeDecodeCommand, ParamsMayBeAbsentOrNil) {
  NativeCommand cmd;
  ASSERT_TRUE(DecodeCommand(Command(1, "ping"), cmd));
  EXPECT_EQ(cmd.params, nullptr);
  msgpack::sbuffer nil;
  msgpack::pack(nil, msgpack::type::nil_t());
  ASSERT_TRUE(DecodeCommand(Command(2, "ping", std::string(nil.data(), nil.size())), cmd));
  EXPECT_EQ(cmd.id, 2u);
  EXPECT_EQ(cmd.params, nullptr);
  // Unknown keys are ignored.
  const std::string extra = Pack(3, [](Packer& pk) {
    PackStr(pk, "id");
    pk.pack_uint64(3);
    PackStr(pk, "method");
    PackStr(pk, "ping");
    PackStr(pk, "future");
    pk.pack_true();
  });
  ASSERT_TRUE(DecodeCommand(extra, cmd));
  EXPECT_EQ(cmd.id, 3u);
}

TEST(BrokerNodeDecodeCommand, RejectsFramesThatAreNotAMap) {
  NativeCommand cmd;
  EXPECT_FALSE(DecodeCommand("", cmd));
  EXPECT_FALSE(DecodeCommand("\xc1", cmd));  // never used in msgpack
  EXPECT_FALSE(DecodeCommand("not msgpack at all", cmd));
  msgpack::sbuffer arr;
  msgpack::pack(arr, std::vector<int>{1, 2});
  EXPECT_FALSE(DecodeCommand(std::string(arr.data(), arr.size()), cmd));
  EXPECT_EQ(cmd.id, 0u);
  // Truncated: the map announces a method it does not carry.
  const std::string full = Command(1, "ping");
  EXPECT_FALSE(DecodeCommand(full.substr(0, full.size() - 2), cmd));
  EXPECT_FALSE(DecodeCommand(full + "\x01", cmd));  // trailing bytes
}

// N-6: a container header that announces more elements than the frame can hold is refused
// before the parser reserves room for them (a 5-byte map32 header once asked for 256 GiB, seen
// under ASan), and so is nesting no command has (data and info are JSON text, N-21).
TEST(BrokerNodeDecodeCommand, N6_HugeHeadersAndDeepNestingAreRefusedUnread) {
  NativeCommand cmd;
  EXPECT_FALSE(DecodeCommand(std::string("\xdf\xff\xff\xff\xff", 5), cmd));  // map32
  EXPECT_FALSE(DecodeCommand(std::string("\xdd\xff\xff\xff\xff", 5), cmd));  // array32
  // {"id":1,"method":"ping","params":{"x":[[[...]]]}} with 40 nested arrays.
  std::string deep = "\x83\xa2id\x01\xa6method\xa4ping\xa6params\x81\xa1x";
  deep += std::string(40, '\x91');
  deep += '\x01';
  EXPECT_FALSE(DecodeCommand(deep, cmd));
  // The same shape three levels deep is an ordinary command.
  std::string shallow = "\x83\xa2id\x01\xa6method\xa4ping\xa6params\x81\xa1x\x91\x91\x01";
  EXPECT_TRUE(DecodeCommand(shallow, cmd));
}

TEST(BrokerNodeDecodeCommand, RejectsAMissingOrUnusableId) {
  NativeCommand cmd;
  const std::string no_id = Pack(1, [](Packer& pk) {
    PackStr(pk, "method");
    PackStr(pk, "ping");
  });
  EXPECT_FALSE(DecodeCommand(no_id, cmd));
  EXPECT_EQ(cmd.id, 0u);
  EXPECT_FALSE(DecodeCommand(Command(0, "ping"), cmd));  // id >= 1
  EXPECT_EQ(cmd.id, 0u);
  const std::string negative = Pack(2, [](Packer& pk) {
    PackStr(pk, "id");
    pk.pack_int64(-3);
    PackStr(pk, "method");
    PackStr(pk, "ping");
  });
  EXPECT_FALSE(DecodeCommand(negative, cmd));
  EXPECT_EQ(cmd.id, 0u);
  const std::string str_id = Pack(2, [](Packer& pk) {
    PackStr(pk, "id");
    PackStr(pk, "1");
    PackStr(pk, "method");
    PackStr(pk, "ping");
  });
  EXPECT_FALSE(DecodeCommand(str_id, cmd));
  EXPECT_EQ(cmd.id, 0u);
}

TEST(BrokerNodeDecodeCommand, KeepsAUsableIdWhenTheRestIsBad) {
  NativeCommand cmd;
  const std::string no_method = Pack(1, [](Packer& pk) {
    PackStr(pk, "id");
    pk.pack_uint64(9);
  });
  EXPECT_FALSE(DecodeCommand(no_method, cmd));
  EXPECT_EQ(cmd.id, 9u);  // answered with 107
  const std::string int_method = Pack(2, [](Packer& pk) {
    PackStr(pk, "id");
    pk.pack_uint64(10);
    PackStr(pk, "method");
    pk.pack_uint64(1);
  });
  EXPECT_FALSE(DecodeCommand(int_method, cmd));
  EXPECT_EQ(cmd.id, 10u);
  msgpack::sbuffer arr;
  msgpack::pack(arr, std::vector<int>{1});
  EXPECT_FALSE(DecodeCommand(Command(11, "ping", std::string(arr.data(), arr.size())), cmd));
  EXPECT_EQ(cmd.id, 11u);
}

// ---------------------------------------------------------------------------------------------
// Params (N-8)

class BrokerNodeParams : public ::testing::Test {
 protected:
  void SetUp() override {
    frame_ = Pack(8, [](Packer& pk) {
      PackStr(pk, "s");
      PackStr(pk, "text");
      PackStr(pk, "u");
      pk.pack_uint64(42);
      PackStr(pk, "neg");
      pk.pack_int64(-5);
      PackStr(pk, "big");
      pk.pack_uint64(UINT64_MAX);
      PackStr(pk, "b");
      pk.pack_true();
      PackStr(pk, "m");
      pk.pack_map(0);
      PackStr(pk, "nil");
      pk.pack_nil();
      PackStr(pk, "f");
      pk.pack_double(1.5);
    });
    handle_ = msgpack::unpack(frame_.data(), frame_.size());
  }
  Params Fresh() const { return Params(&handle_.get()); }

  std::string frame_;
  msgpack::object_handle handle_;
};

TEST_F(BrokerNodeParams, ReadsEachTypeWithoutSettingBad) {
  Params p = Fresh();
  EXPECT_EQ(p.Str("s"), "text");
  EXPECT_EQ(p.Uint("u"), 42u);
  EXPECT_EQ(p.Int("neg"), -5);
  EXPECT_EQ(p.Int("u"), 42);  // a positive int is an int too
  EXPECT_EQ(p.Bool("b"), true);
  EXPECT_NE(p.Map("m"), nullptr);
  EXPECT_FALSE(p.bad());
}

TEST_F(BrokerNodeParams, AbsentAndNilAreNotBad) {
  Params p = Fresh();
  EXPECT_EQ(p.Str("missing"), std::nullopt);
  EXPECT_EQ(p.Uint("missing"), std::nullopt);
  EXPECT_EQ(p.Int("nil"), std::nullopt);
  EXPECT_EQ(p.Bool("nil"), std::nullopt);
  EXPECT_EQ(p.Map("nil"), nullptr);
  EXPECT_EQ(p.Str("nil"), std::nullopt);
  EXPECT_FALSE(p.bad());
  Params none;  // a command without params
  EXPECT_EQ(none.Str("s"), std::nullopt);
  EXPECT_FALSE(none.bad());
}

TEST_F(BrokerNodeParams, WrongTypesSetBad) {
  struct Case {
    const char* what;
    std::function<bool(Params&)> read;  // true when the getter returned nothing
  };
  const std::vector<Case> cases = {
      {"Str on uint", [](Params& p) { return !p.Str("u"); }},
      {"Str on map", [](Params& p) { return !p.Str("m"); }},
      {"Uint on negative", [](Params& p) { return !p.Uint("neg"); }},
      {"Uint on str", [](Params& p) { return !p.Uint("s"); }},
      {"Uint on float", [](Params& p) { return !p.Uint("f"); }},
      {"Int on u64 > INT64_MAX", [](Params& p) { return !p.Int("big"); }},
      {"Int on bool", [](Params& p) { return !p.Int("b"); }},
      {"Bool on uint", [](Params& p) { return !p.Bool("u"); }},
      {"Bool on str", [](Params& p) { return !p.Bool("s"); }},
      {"Map on str", [](Params& p) { return p.Map("s") == nullptr; }},
  };
  for (const auto& c : cases) {
    Params p = Fresh();
    EXPECT_TRUE(c.read(p)) << c.what;
    EXPECT_TRUE(p.bad()) << c.what;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoders ("Node to client: reply", "push")

TEST(BrokerNodeEncode, ErrorAndResultReplies) {
  Decoded err = Decode(EncodeError(5, 107, "bad request"));
  EXPECT_EQ(err.Keys(), (std::set<std::string>{"id", "error"}));
  EXPECT_EQ(err.Uint("id"), 5u);
  EXPECT_EQ(err.Keys("error"), (std::set<std::string>{"code", "message"}));
  EXPECT_EQ(err.Uint("error.code"), 107u);
  EXPECT_EQ(err.Str("error.message"), "bad request");

  Decoded empty = Decode(EncodeEmptyResult(6));
  EXPECT_EQ(empty.Keys(), (std::set<std::string>{"id", "result"}));
  EXPECT_EQ(empty.Uint("id"), 6u);
  ASSERT_TRUE(empty.Has("result"));
  EXPECT_EQ(empty.Get("result")->type, msgpack::type::MAP);
  EXPECT_TRUE(empty.Keys("result").empty());

  Decoded r = Decode(EncodeResult(7, 2, [](Packer& pk) {
    PackStr(pk, "epoch");
    PackStr(pk, "abc");
    PackStr(pk, "offset");
    pk.pack_uint64(3);
  }));
  EXPECT_EQ(r.Str("result.epoch"), "abc");
  EXPECT_EQ(r.Uint("result.offset"), 3u);
}

TEST(BrokerNodeEncode, PubPushCarriesThePublicationMap) {
  Publication p;
  p.offset = 12;
  p.data = R"({"text":"hi"})";
  p.info = ClientInfoToJson({"c1", "alice", R"({"role":"admin"})", ""});
  p.tags = {{"k", "v"}};
  Decoded d = Decode(EncodePubPush("chat:a", p));
  EXPECT_EQ(d.Keys(), (std::set<std::string>{"push", "channel", "data"}));
  EXPECT_FALSE(d.Has("id"));
  EXPECT_EQ(d.Str("push"), "pub");
  EXPECT_EQ(d.Str("channel"), "chat:a");
  EXPECT_EQ(d.Keys("data"), (std::set<std::string>{"offset", "data", "info", "tags"}));
  EXPECT_EQ(d.Uint("data.offset"), 12u);
  EXPECT_EQ(d.Str("data.data"), R"({"text":"hi"})");
  EXPECT_EQ(d.Keys("data.info"),
            (std::set<std::string>{"client", "user", "conn_info", "chan_info"}));
  EXPECT_EQ(d.Str("data.info.client"), "c1");
  EXPECT_EQ(d.Str("data.info.user"), "alice");
  EXPECT_EQ(d.Str("data.info.conn_info"), R"({"role":"admin"})");
  EXPECT_EQ(d.Str("data.info.chan_info"), "");
  EXPECT_EQ(d.Str("data.tags.k"), "v");

  // Published through the server API: no info, no tags.
  Publication api;
  api.offset = 0;
  api.data = "1";
  Decoded bare = Decode(EncodePubPush("nohist:x", api));
  EXPECT_EQ(bare.Keys("data"), (std::set<std::string>{"offset", "data"}));
  EXPECT_EQ(bare.Uint("data.offset"), 0u);
}

TEST(BrokerNodeEncode, PresencePushes) {
  const PresenceEntry e{"c9", "bob", "", R"({"seat":3})"};
  const std::vector<std::pair<PresenceEventType, std::string>> types = {
      {PresenceEventType::kJoin, "join"},
      {PresenceEventType::kLeave, "leave"},
      {PresenceEventType::kUserJoin, "user_join"},
      {PresenceEventType::kUserLeave, "user_leave"}};
  for (const auto& [type, name] : types) {
    Decoded d = Decode(EncodePresencePush("chat:p", type, e));
    EXPECT_EQ(d.Str("push"), name);
    EXPECT_EQ(d.Str("channel"), "chat:p");
    EXPECT_EQ(d.Keys("data"), (std::set<std::string>{"info"}));
    EXPECT_EQ(d.Str("data.info.client"), "c9");
    EXPECT_EQ(d.Str("data.info.user"), "bob");
    EXPECT_EQ(d.Str("data.info.chan_info"), R"({"seat":3})");
  }
}

TEST(BrokerNodeEncode, UnsubscribeAndDisconnectPushes) {
  Decoded u = Decode(EncodeUnsubscribePush("chat:a", 2000, "server unsubscribe"));
  EXPECT_EQ(u.Str("push"), "unsubscribe");
  EXPECT_EQ(u.Str("channel"), "chat:a");
  EXPECT_EQ(u.Keys("data"), (std::set<std::string>{"code", "reason"}));
  EXPECT_EQ(u.Uint("data.code"), 2000u);
  EXPECT_EQ(u.Str("data.reason"), "server unsubscribe");

  for (bool reconnect : {true, false}) {
    Decoded d = Decode(EncodeDisconnectPush(3503, "force disconnect", reconnect));
    EXPECT_EQ(d.Keys(), (std::set<std::string>{"push", "data"}));  // no channel
    EXPECT_EQ(d.Str("push"), "disconnect");
    EXPECT_EQ(d.Keys("data"), (std::set<std::string>{"code", "reason", "reconnect"}));
    EXPECT_EQ(d.Uint("data.code"), 3503u);
    EXPECT_EQ(d.Str("data.reason"), "force disconnect");
    ASSERT_TRUE(d.Has("data.reconnect"));
    ASSERT_EQ(d.Get("data.reconnect")->type, msgpack::type::BOOLEAN);
    EXPECT_EQ(d.Get("data.reconnect")->via.boolean, reconnect);
  }
}

TEST(BrokerNodeEncode, ClientInfoJsonRoundTrips) {
  const PresenceEntry e{"c1", "alice", R"({"a":[1,2]})", R"({"seat":3})"};
  const std::string json = ClientInfoToJson(e);
  EXPECT_NE(json.find(R"("conn_info":{"a":[1,2]})"), std::string::npos) << json;  // a JSON value
  EXPECT_EQ(ClientInfoFromJson(json), e);
  const PresenceEntry plain{"c2", "", "", ""};
  EXPECT_EQ(ClientInfoToJson(plain), R"({"client":"c2","user":""})");
  EXPECT_EQ(ClientInfoFromJson(ClientInfoToJson(plain)), plain);
  EXPECT_EQ(ClientInfoFromJson("not json"), PresenceEntry{});
}

// ---------------------------------------------------------------------------------------------
// ChannelSubtree

TEST(BrokerNodeChannelSubtree, PrefixesAndEscapesSlashAndPercent) {
  EXPECT_EQ(ChannelSubtree("chat:room"), "c.chat:room");
  EXPECT_EQ(ChannelSubtree("a/b"), "c.a%2Fb");
  EXPECT_EQ(ChannelSubtree("50%"), "c.50%25");
  EXPECT_EQ(ChannelSubtree("/%/"), "c.%2F%25%2F");
  // Injective: a literal "%2F" does not collide with "/".
  EXPECT_EQ(ChannelSubtree("%2F"), "c.%252F");
  EXPECT_NE(ChannelSubtree("%2F"), ChannelSubtree("/"));
  EXPECT_EQ(ChannelSubtree("ünïcode"), "c.ünïcode");
}

TEST(BrokerNodeChannelSubtree, IsAlwaysAValidSubtreeNeverStartingWithDollar) {
  const std::vector<std::string> names = {"$private:x",
                                          "$",
                                          "*",
                                          "/",
                                          "%",
                                          "chat:a/b/c",
                                          std::string(253, 'x'),
                                          std::string(254, 'x'),
                                          std::string(100, '/'),
                                          std::string(1000, '%')};
  for (const auto& n : names) {
    const std::string s = ChannelSubtree(n);
    EXPECT_NE(s.front(), '$') << n;
    EXPECT_LE(s.size(), chp::kMaxSubtreeBytes) << n;
    EXPECT_EQ(s.find('/'), std::string::npos) << n;
    EXPECT_TRUE(chp::IsValidSubtree(s)) << s;
  }
  EXPECT_EQ(ChannelSubtree("$private:x"), "c.$private:x");
}

TEST(BrokerNodeChannelSubtree, LongNamesAreHashed) {
  const std::string fits(chp::kMaxSubtreeBytes - 2, 'x');  // "c." + 253 bytes = 255
  EXPECT_EQ(ChannelSubtree(fits), "c." + fits);
  const std::string over = fits + "y";
  const std::string hashed = ChannelSubtree(over);
  ASSERT_EQ(hashed.size(), 18u) << hashed;
  EXPECT_EQ(hashed.substr(0, 2), "c#");
  for (char c : hashed.substr(2)) EXPECT_TRUE(isxdigit(static_cast<unsigned char>(c))) << hashed;
  EXPECT_EQ(ChannelSubtree(over), hashed);  // stable
  EXPECT_NE(ChannelSubtree(fits + "z"), hashed);
  // Escaping counts: 100 slashes escape to 300 bytes.
  EXPECT_EQ(ChannelSubtree(std::string(100, '/')).substr(0, 2), "c#");
  EXPECT_EQ(
      ChannelSubtree(std::string(84, '/')), "c." + [] {
        std::string s;
        for (int i = 0; i < 84; ++i) s += "%2F";
        return s;
      }());
}

}  // namespace
}  // namespace chorus::broker::node
