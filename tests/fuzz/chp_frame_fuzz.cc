// libFuzzer target: every CHP frame decoder and the msgpack value helpers on arbitrary bytes.
//   - the whole input as a command body (DecodeCommand) and as a reply body (DecodeReply);
//   - split as [topic length: 1 byte][topic][body] for a publication (DecodePub), which must agree
//     with the generic decoder it has a fast path over (detail::DecodePubGeneric);
//   - the whole input as a value (IsMsgpackValue, MsgpackToJson).
// Whatever decodes is encoded again and must decode to the same message, and encoding must be
// deterministic (the re-encoded body encodes to itself). Any violation aborts (a crash to
// libFuzzer).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "chp/codec.h"
#include "chp/keys.h"
#include "chp/value_json.h"

namespace {

using namespace chorus::chp;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "chp_frame_fuzz: check failed: %s\n", what);
    std::abort();
  }
}

// Encodes each alternative of a decoded message again and decodes the result with `decode`.
template <typename Message, typename Decode>
void RoundTrip(const Message& decoded, Decode decode) {
  const std::string body = std::visit([](const auto& m) { return Encode(m); }, decoded);
  auto again = decode(body);
  Check(again.ok(), "a re-encoded message does not decode");
  Check(*again == decoded, "the round trip changed the message");
  const std::string body2 = std::visit([](const auto& m) { return Encode(m); }, *again);
  Check(body2 == body, "encoding is not deterministic");
}

std::string PubTopic(const PubMessage& m) {
  if (const auto* pub = std::get_if<KvPub>(&m)) return Topic(*pub);
  if (const auto* pos = std::get_if<PositionMsg>(&m)) return Topic(*pos);
  return kHugzTopic;
}

void FuzzPub(std::string_view topic, std::string_view body) {
  auto decoded = DecodePub(topic, body);
  auto generic = detail::DecodePubGeneric(topic, body);
  // The replica's in-place path (one KvPub reused across inputs, as the agent does) accepts only
  // what DecodePub accepts, and decodes it the same.
  static KvPub reused;
  if (DecodeKvPubInto(topic, body, reused)) {
    Check(decoded.ok() && std::holds_alternative<KvPub>(*decoded) &&
              std::get<KvPub>(*decoded) == reused,
          "DecodeKvPubInto and DecodePub disagree");
  }
  static PositionMsg reused_position;  // the same for the sweep's POSITIONs (CS-26)
  if (DecodePositionInto(topic, body, reused_position)) {
    Check(decoded.ok() && std::holds_alternative<PositionMsg>(*decoded) &&
              std::get<PositionMsg>(*decoded) == reused_position,
          "DecodePositionInto and DecodePub disagree");
  }
  Check(decoded.ok() == generic.ok(), "DecodePub and its generic path disagree on acceptance");
  if (!decoded.ok()) {
    Check(decoded.error() == generic.error(), "DecodePub and its generic path give other errors");
    return;
  }
  Check(*decoded == *generic, "DecodePub and its generic path decode differently");
  if (const auto* pub = std::get_if<KvPub>(&*decoded)) {
    // The server's hot-path encoder writes the same bytes as Encode(KvPub).
    std::string fast;
    EncodeKvPubBody(pub->epoch, pub->record, pub->term, fast);
    Check(fast == Encode(*pub), "EncodeKvPubBody differs from Encode(KvPub)");
  }
  const std::string topic2 = PubTopic(*decoded);
  RoundTrip(*decoded, [&](std::string_view b) { return DecodePub(topic2, b); });
}

void FuzzValue(std::string_view value) {
  const bool is_value = IsMsgpackValue(value);
  const std::string json = MsgpackToJson(value);
  Check(!json.empty(), "MsgpackToJson returned nothing");
  Check(IsValidUtf8(json), "MsgpackToJson returned invalid UTF-8");
  if (is_value && json.starts_with("{\"$raw_base64\":")) {
    // Only a map that really has that key may render like the fallback.
    const auto first = static_cast<uint8_t>(value[0]);
    Check((first & 0xf0) == 0x80 || first == 0xde || first == 0xdf,
          "a valid msgpack value rendered as raw bytes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (auto cmd = DecodeCommand(input); cmd.ok()) RoundTrip(*cmd, DecodeCommand);
  if (auto reply = DecodeReply(input); reply.ok()) RoundTrip(*reply, DecodeReply);

  if (!input.empty()) {
    const size_t topic_len = std::min<size_t>(static_cast<uint8_t>(input[0]), input.size() - 1);
    FuzzPub(input.substr(1, topic_len), input.substr(1 + topic_len));
  }

  FuzzValue(input);
  return 0;
}
