// Wire codec for CHP bodies (docs/protocol/chp.md, "Frames"). Every body is one msgpack array
// whose first element is the command code. Decoders never throw: malformed input is a value.
#pragma once

#include <string>
#include <string_view>

#include "chp/errc.h"
#include "chp/types.h"

namespace chorus::chp {

std::string Encode(const Hello& m);
std::string Encode(const Icanhaz& m);
std::string Encode(const KvSet& m);
std::string Encode(const Applied& m);
std::string Encode(const HelloOk& m);
std::string Encode(const KvSync& m);
std::string Encode(const Kthxbai& m);
std::string Encode(const Done& m);
std::string Encode(const KvAck& m);
std::string Encode(const Error& m);
// Publisher messages: Encode gives the body; Topic gives frame 0.
std::string Encode(const KvPub& m);
std::string Encode(const PositionMsg& m);
std::string Encode(const Hugz& m);
std::string Topic(const KvPub& m);
std::string Topic(const PositionMsg& m);
// The body of a KvPub for `record` in `epoch` under `term`, written into `out` (its content
// replaced, its capacity reused): the server's publish path. Same bytes as
// Encode(KvPub{..., epoch, record, term}).
void EncodeKvPubBody(std::string_view epoch, const Record& record, uint64_t term, std::string& out);
// The body of a POSITION, likewise (Encode(PositionMsg) uses it).
void EncodePositionBody(std::string_view epoch, uint64_t seq, uint64_t term, uint64_t term_start,
                        std::string& out);

Result<CommandMessage> DecodeCommand(std::string_view body);
Result<ReplyMessage> DecodeReply(std::string_view body);
Result<PubMessage> DecodePub(std::string_view topic, std::string_view body);
// The hot path of a replica: a KVPUB exactly as Encode writes it, decoded into `out` whose
// strings keep their capacity between calls (no allocation per update once warm). False: not
// such a KVPUB, `out` unspecified; DecodePub then gives the verdict. Same result as DecodePub.
bool DecodeKvPubInto(std::string_view topic, std::string_view body, KvPub& out);
// The same for a POSITION (the sweep's bulk, CS-26): false for anything else or a POSITION it
// does not take (e.g. extra trailing elements), which DecodePub then decodes.
bool DecodePositionInto(std::string_view topic, std::string_view body, PositionMsg& out);

// True when `value` is exactly one well-formed msgpack object (values are msgpack, spec §Values).
bool IsMsgpackValue(std::string_view value);

namespace detail {
// DecodePub without its fast path for KVPUB: the fuzz target checks that both give the same.
Result<PubMessage> DecodePubGeneric(std::string_view topic, std::string_view body);
}  // namespace detail

}  // namespace chorus::chp
