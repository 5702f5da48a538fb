// libFuzzer target: the WebSocket JSON codec (broker/protocol/client_json.h) on arbitrary bytes.
//   - the input as a text frame (DecodeFrame): a malformed frame yields nothing; otherwise every
//     command has error 0, 104 or 107, its strings are valid UTF-8, its data values are compact
//     JSON that decode to themselves;
//   - every decoded request is written back as a JSON command line (the fuzzer's own writer) and
//     must decode to the same ClientCommand;
//   - the encoders, fed the decoded strings and data, produce compact JSON;
//   - the input as the data of the built-in rpc methods (must not crash).
// Any violation aborts (a crash to libFuzzer).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "broker/protocol/client_json.h"
#include "chp/keys.h"

namespace {

using namespace chorus::broker;
using namespace chorus::broker::json;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "client_json_fuzz: check failed: %s\n", what);
    std::abort();
  }
}

// A JSON string literal, escaping independently of the codec (\u for every control char).
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  return out + "\"";
}

std::string Bool(bool b) {
  return b ? "true" : "false";
}

// One command line holding `request`, with every field written out.
struct LineWriter {
  std::string operator()(const ConnectRequest& r) const {
    return "\"connect\":{\"token\":" + Quote(r.token) + ",\"name\":" + Quote(r.name) +
           ",\"version\":" + Quote(r.version) + "}";
  }
  std::string operator()(const SubscribeRequest& r) const {
    return "\"subscribe\":{\"channel\":" + Quote(r.channel) + ",\"token\":" + Quote(r.token) +
           ",\"recover\":" + Bool(r.recover) + ",\"epoch\":" + Quote(r.epoch) +
           ",\"offset\":" + std::to_string(r.offset) + ",\"positioned\":" + Bool(r.positioned) +
           ",\"recoverable\":" + Bool(r.recoverable) + ",\"join_leave\":" + Bool(r.join_leave) +
           "}";
  }
  std::string operator()(const UnsubscribeRequest& r) const {
    return "\"unsubscribe\":{\"channel\":" + Quote(r.channel) + "}";
  }
  std::string operator()(const PublishRequest& r) const {
    return "\"publish\":{\"channel\":" + Quote(r.channel) + ",\"data\":" + r.data + "}";
  }
  std::string operator()(const PresenceRequest& r) const {
    return "\"presence\":{\"channel\":" + Quote(r.channel) + ",\"cursor\":" + Quote(r.cursor) +
           ",\"limit\":" + std::to_string(r.limit) + "}";
  }
  std::string operator()(const PresenceStatsRequest& r) const {
    return "\"presence_stats\":{\"channel\":" + Quote(r.channel) + "}";
  }
  std::string operator()(const HistoryRequest& r) const {
    std::string out = "\"history\":{\"channel\":" + Quote(r.channel) +
                      ",\"limit\":" + std::to_string(r.limit) + ",\"reverse\":" + Bool(r.reverse);
    if (r.since) {
      out += ",\"since\":{\"offset\":" + std::to_string(r.since->offset) +
             ",\"epoch\":" + Quote(r.since->epoch) + "}";
    }
    return out + "}";
  }
  std::string operator()(const RefreshRequest& r) const {
    return "\"refresh\":{\"token\":" + Quote(r.token) + "}";
  }
  std::string operator()(const SubRefreshRequest& r) const {
    return "\"sub_refresh\":{\"channel\":" + Quote(r.channel) + ",\"token\":" + Quote(r.token) +
           "}";
  }
  std::string operator()(const SendRequest& r) const {
    return "\"send\":{" + (r.data.empty() ? std::string() : "\"data\":" + r.data) + "}";
  }
  std::string operator()(const RpcRequest& r) const {
    return "\"rpc\":{\"method\":" + Quote(r.method) +
           (r.data.empty() ? std::string() : ",\"data\":" + r.data) + "}";
  }
  std::string operator()(const PingRequest&) const { return "\"ping\":{}"; }
  std::string operator()(const DisconnectRequest&) const {
    Check(false, "the JSON codec produced a native-only request");
    return {};
  }
};

// `json` is one compact JSON value: as publish data it comes back unchanged.
bool IsCompactJson(const std::string& json) {
  const DecodedFrame f =
      DecodeFrame("{\"id\":1,\"publish\":{\"channel\":\"c\",\"data\":" + json + "}}");
  return !f.malformed && f.commands.size() == 1 && f.commands[0].error == 0 &&
         std::get<PublishRequest>(f.commands[0].request).data == json;
}

void CheckStrings(const ClientCommand& c) {
  std::visit(
      [](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (requires { r.channel; }) {
          Check(chorus::chp::IsValidUtf8(r.channel), "channel is not UTF-8");
        }
        if constexpr (requires { r.token; }) {
          Check(chorus::chp::IsValidUtf8(r.token), "token is not UTF-8");
        }
        if constexpr (requires { r.data; }) {
          Check(r.data.empty() || IsCompactJson(r.data), "data is not compact JSON");
        }
        if constexpr (std::is_same_v<T, PublishRequest>) {
          Check(!r.data.empty(), "a publish without data decoded");
        }
      },
      c.request);
}

void CheckEncoders(const ClientCommand& c) {
  std::string channel = "c", data = "null";
  std::visit(
      [&](const auto& r) {
        if constexpr (requires { r.channel; }) channel = r.channel;
        if constexpr (requires { r.data; }) {
          if (!r.data.empty()) data = r.data;
        }
      },
      c.request);
  Publication p{.offset = c.id,
                .data = data,
                .info = R"({"client":"x","user":"y"})",
                .tags = {{channel, channel}},
                .time_ms = 0};
  const PresenceEntry e{channel, channel, data, ""};
  Check(IsCompactJson(EncodePubPush(channel, p)), "pub push");
  Check(IsCompactJson(EncodeJoinPush(channel, e)), "join push");
  Check(IsCompactJson(EncodeUnsubscribePush(channel, 2000, channel)), "unsubscribe push");
  Check(IsCompactJson(EncodeDisconnectPush(3501, channel, false)), "disconnect push");
  Check(IsCompactJson(EncodeMessagePush(data)), "message push");
  Check(IsCompactJson(EncodeError(static_cast<uint32_t>(c.id), 107, channel)), "error reply");
  PresenceResult pr{{e}, channel};
  Check(IsCompactJson(EncodeReply(1, pr)), "presence reply");
  Check(IsCompactJson(EncodePresencePageRpcReply(1, pr)), "presence page reply");
  Check(IsCompactJson(EncodePresenceUsersRpcReply(1, {channel}, 1)), "presence users reply");
  SubscribeResult sr;
  sr.epoch = channel;
  sr.publications = {p};
  Check(IsCompactJson(EncodeReply(1, sr)), "subscribe reply");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  const DecodedFrame frame = DecodeFrame(input);
  if (frame.malformed) {
    Check(frame.commands.empty() && frame.pongs == 0, "a malformed frame yielded commands");
    Check(!frame.reason.empty(), "a malformed frame without a reason");
  } else {
    Check(frame.commands.size() + frame.pongs <= kMaxCommandsPerFrame, "too many commands");
  }
  for (const ClientCommand& c : frame.commands) {
    Check(c.id <= UINT32_MAX, "id out of range");
    Check(c.error == 0 || c.error == 104 || c.error == 107, "unexpected error code");
    if (c.error != 0) continue;
    CheckStrings(c);
    // Round trip through our own writer, with the id both before and after the method.
    const std::string body = std::visit(LineWriter{}, c.request);
    const std::string id = "\"id\":" + std::to_string(c.id);
    for (const std::string& line : {"{" + id + "," + body + "}", "{" + body + "," + id + "}"}) {
      const DecodedFrame again = DecodeFrame(line);
      Check(!again.malformed && again.commands.size() == 1, "a rewritten command does not decode");
      Check(again.commands[0] == c, "the round trip changed the command");
    }
    CheckEncoders(c);
  }
  // The built-in rpc params decoders on the raw input.
  if (const auto r = DecodePresencePageParams(input)) {
    Check(chorus::chp::IsValidUtf8(r->channel) && chorus::chp::IsValidUtf8(r->cursor),
          "presence page params are not UTF-8");
  }
  (void)DecodePresenceUsersParams(input);
  return 0;
}
