// Decoders of the CHP frames (docs/protocol/chp.md, "Frames"; the encoders are in
// codec_encode.cc). Bodies are msgpack arrays; readers accept and ignore trailing elements they
// do not know (forward compatibility, spec §Versioning).
#include "chp/codec.h"

#include <msgpack.hpp>

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>

#include "chp/keys.h"
#include "codec_raw.h"

namespace chorus::chp {
namespace {

using codec_raw::RawReader;

// Reads the elements of one msgpack array in order, checking each element's type.
class Reader {
 public:
  explicit Reader(const msgpack::object& o) {
    if (o.type == msgpack::type::ARRAY) {
      items_ = o.via.array.ptr;
      size_ = o.via.array.size;
      ok_ = true;
    }
  }
  bool ok() const { return ok_; }
  size_t size() const { return size_; }
  size_t pos() const { return pos_; }

  template <typename T>
  Reader& Uint(T& out) {
    const msgpack::object* o = Next();
    if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER ||
        o->via.u64 > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      ok_ = false;
      return *this;
    }
    out = static_cast<T>(o->via.u64);
    return *this;
  }
  Reader& Str(std::string& out) {
    const msgpack::object* o = Next();
    if (o == nullptr || o->type != msgpack::type::STR) return Fail();
    out.assign(o->via.str.ptr, o->via.str.size);
    return *this;
  }
  Reader& Bin(std::string& out) {
    const msgpack::object* o = Next();
    if (o == nullptr || o->type != msgpack::type::BIN) return Fail();
    out.assign(o->via.bin.ptr, o->via.bin.size);
    return *this;
  }
  Reader& UuidField(Uuid& out) {
    const msgpack::object* o = Next();
    if (o == nullptr || o->type != msgpack::type::BIN || o->via.bin.size != out.size()) {
      return Fail();
    }
    std::copy_n(reinterpret_cast<const uint8_t*>(o->via.bin.ptr), out.size(), out.begin());
    return *this;
  }
  Reader& OpField(Op& out) {
    uint8_t v = 0;
    Uint(v);
    if (ok_ && v > static_cast<uint8_t>(Op::kExpire)) ok_ = false;
    out = static_cast<Op>(v);
    return *this;
  }
  // A trailing element added within the version (CW-3, CW-11): absent, or not an unsigned
  // integer of the type (a sender that put something else there before it was defined), leaves
  // `out` as it is.
  template <typename T>
  Reader& OptUint(T& out) {
    if (!ok_ || pos_ >= size_) return *this;
    const msgpack::object& o = items_[pos_++];
    if (o.type == msgpack::type::POSITIVE_INTEGER &&
        o.via.u64 <= static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      out = static_cast<T>(o.via.u64);
    }
    return *this;
  }
  // A trailing UUID (CW-3): bin of 16 bytes; absent or anything else leaves `out` as it is.
  Reader& OptUuid(Uuid& out) {
    if (!ok_ || pos_ >= size_) return *this;
    const msgpack::object& o = items_[pos_++];
    if (o.type == msgpack::type::BIN && o.via.bin.size == out.size()) {
      std::copy_n(reinterpret_cast<const uint8_t*>(o.via.bin.ptr), out.size(), out.begin());
    }
    return *this;
  }
  // A trailing optional u64 (CW-3): present only when it is an unsigned integer.
  Reader& OptUint64(std::optional<uint64_t>& out) {
    if (!ok_ || pos_ >= size_) return *this;
    const msgpack::object& o = items_[pos_++];
    if (o.type == msgpack::type::POSITIVE_INTEGER) out = o.via.u64;
    return *this;
  }
  Reader& ArrayField(const msgpack::object*& out) {
    out = Next();
    if (out == nullptr || out->type != msgpack::type::ARRAY) return Fail();
    return *this;
  }
  const msgpack::object* Next() {
    if (!ok_ || pos_ >= size_) {
      ok_ = false;
      return nullptr;
    }
    return &items_[pos_++];
  }

 private:
  Reader& Fail() {
    ok_ = false;
    return *this;
  }
  const msgpack::object* items_ = nullptr;
  uint32_t size_ = 0;
  uint32_t pos_ = 0;
  bool ok_ = false;
};

bool ReferenceAll(msgpack::type::object_type, std::size_t, void*) {
  return true;
}

// The parser's zone, reused by every decode on this thread: a fresh zone per frame costs two
// allocations (the zone and its first 8 KiB chunk). Decoders copy what they keep out of the
// parsed objects, so the zone is cleared (back to its first chunk) when the decode returns.
class ScratchZone {
 public:
  ScratchZone() : zone_(Zone()) {}
  ~ScratchZone() { zone_.clear(); }
  ScratchZone(const ScratchZone&) = delete;
  ScratchZone& operator=(const ScratchZone&) = delete;
  msgpack::zone& get() { return zone_; }

 private:
  static msgpack::zone& Zone() {
    thread_local msgpack::zone zone;
    return zone;
  }
  msgpack::zone& zone_;
};

// Parses exactly one msgpack object spanning the whole body into `zone`. Limits bound what a
// hostile frame can make the parser allocate. Strings and bins reference `body`.
bool Parse(std::string_view body, msgpack::zone& zone, msgpack::object& out) {
  if (body.empty() || body.size() > kMaxFrameBytes) return false;
  try {
    std::size_t off = 0;
    // The parser reserves room for an array's or map's elements when it reads the header. An
    // element takes at least one byte (a pair two), so capping the counts by the body size
    // accepts exactly the same frames but stops a 5-byte frame from reserving a million objects.
    const size_t array_cap = std::min<size_t>(size_t{1} << 20, body.size());
    const size_t map_cap = std::min<size_t>(1024, body.size() / 2);
    const msgpack::unpack_limit limit(array_cap, map_cap, /*str=*/kMaxFrameBytes,
                                      /*bin=*/kMaxFrameBytes, /*ext=*/1u << 16, /*depth=*/16);
    out = msgpack::unpack(zone, body.data(), body.size(), off, ReferenceAll, nullptr, limit);
    return off == body.size();
  } catch (const std::exception&) {
    return false;
  }
}

bool ReadCommand(const msgpack::object& root, Command& cmd) {
  if (root.type != msgpack::type::ARRAY || root.via.array.size == 0) return false;
  const msgpack::object& c = root.via.array.ptr[0];
  if (c.type != msgpack::type::POSITIVE_INTEGER || c.via.u64 > 255) return false;
  cmd = static_cast<Command>(c.via.u64);
  return true;
}

bool ReadRecord(const msgpack::object& o, Record& r) {
  Reader rd(o);
  rd.Str(r.key).OpField(r.op).Bin(r.value).Uint(r.ttl_ms).Uint(r.seq).OptUuid(r.uuid);
  return rd.ok();
}

// KTHXBAI element 9 (CS-31): [[uuid bin(16), seq u64, age_ms u64], ...]. Absent or not an
// array: no window. A malformed entry makes the frame malformed.
bool ReadWindow(Reader& rd, std::vector<WindowEntry>& out) {
  const msgpack::object* o = rd.ok() && rd.pos() < rd.size() ? rd.Next() : nullptr;
  if (o == nullptr || o->type != msgpack::type::ARRAY) return true;
  out.resize(o->via.array.size);
  for (uint32_t i = 0; i < o->via.array.size; ++i) {
    Reader er(o->via.array.ptr[i]);
    er.UuidField(out[i].uuid).Uint(out[i].seq).Uint(out[i].age_ms);
    if (!er.ok()) return false;
  }
  return true;
}

// The body of a KVPUB exactly as Encode writes it (six elements, the usual formats): fills `m`
// (not its subtree and key, which come from the topic) and returns true. False: use the parser.
bool FastKvPub(std::string_view body, KvPub& m) {
  if (body.size() > kMaxFrameBytes) return false;
  RawReader rd(body);
  uint32_t n = 0;
  uint64_t code = 0;
  uint64_t seq = 0;
  uint64_t op = 0;
  uint64_t ttl = 0;
  uint64_t term = 0;
  std::string_view epoch;
  std::string_view value;
  std::string_view uuid;
  if (!rd.Array(n) || (n != 6 && n != 8) || !rd.Uint(code) ||
      code != static_cast<uint64_t>(Command::kKvPub) || !rd.Str(epoch) || !rd.Uint(seq) ||
      !rd.Uint(op) || op > static_cast<uint64_t>(Op::kExpire) || !rd.Bin(value) || !rd.Uint(ttl)) {
    return false;
  }
  if (n == 8) {
    // CS-31 / CS-33: the update's UUID (nil for none) and the subtree's term.
    if (!rd.Nil() && (!rd.Bin(uuid) || uuid.size() != m.record.uuid.size())) return false;
    if (!rd.Uint(term)) return false;
  }
  if (!rd.AtEnd()) return false;
  if (!uuid.empty()) std::memcpy(m.record.uuid.data(), uuid.data(), uuid.size());
  m.term = term;
  m.epoch.assign(epoch);
  m.record.seq = seq;
  m.record.op = static_cast<Op>(op);
  m.record.value.assign(value);
  m.record.ttl_ms = ttl;
  return true;
}

}  // namespace

Result<CommandMessage> DecodeCommand(std::string_view body) {
  ScratchZone zone;
  msgpack::object root;
  Command cmd{};
  if (!Parse(body, zone.get(), root) || !ReadCommand(root, cmd)) return Errc::kMalformed;
  Reader rd(root);
  uint8_t code = 0;
  rd.Uint(code);
  switch (cmd) {
    case Command::kHello: {
      Hello m;
      rd.Uint(m.version).Uint(m.request_id);
      if (rd.ok()) return CommandMessage{m};
      break;
    }
    case Command::kIcanhaz: {
      Icanhaz m;
      rd.Uint(m.request_id).Str(m.subtree).Str(m.from.epoch).Uint(m.from.seq).OptUint(m.term);
      if (rd.ok()) return CommandMessage{std::move(m)};
      break;
    }
    case Command::kKvSet: {
      KvSet m;
      rd.UuidField(m.uuid).Str(m.key).OpField(m.op).Bin(m.value).Uint(m.ttl_ms);
      rd.OptUint64(m.expected_seq);  // CS-32
      if (rd.ok()) return CommandMessage{std::move(m)};
      break;
    }
    case Command::kApplied: {
      Applied m;
      const msgpack::object* arr = nullptr;
      rd.Str(m.replica).ArrayField(arr);
      if (!rd.ok()) break;
      m.positions.resize(arr->via.array.size);
      for (uint32_t i = 0; i < arr->via.array.size; ++i) {
        AppliedEntry& e = m.positions[i];
        Reader er(arr->via.array.ptr[i]);
        er.Str(e.subtree).Str(e.position.epoch).Uint(e.position.seq);
        if (!er.ok()) return Errc::kMalformed;
      }
      return CommandMessage{std::move(m)};
    }
    default:
      return Errc::kUnknownCommand;
  }
  return Errc::kMalformed;
}

Result<ReplyMessage> DecodeReply(std::string_view body) {
  ScratchZone zone;
  msgpack::object root;
  Command cmd{};
  if (!Parse(body, zone.get(), root) || !ReadCommand(root, cmd)) return Errc::kMalformed;
  Reader rd(root);
  uint8_t code = 0;
  rd.Uint(code);
  switch (cmd) {
    case Command::kHelloOk: {
      HelloOk m;
      rd.Uint(m.request_id).Uint(m.version).Str(m.server_id).Str(m.publisher);
      if (rd.ok()) return ReplyMessage{std::move(m)};
      break;
    }
    case Command::kKvSync: {
      KvSync m;
      rd.Uint(m.request_id).Str(m.subtree);
      const msgpack::object* list = rd.Next();
      if (!rd.ok() || list->type != msgpack::type::ARRAY) break;
      m.records.resize(list->via.array.size);
      for (uint32_t i = 0; i < list->via.array.size; ++i) {
        if (!ReadRecord(list->via.array.ptr[i], m.records[i])) return Errc::kMalformed;
      }
      return ReplyMessage{std::move(m)};
    }
    case Command::kKthxbai: {
      Kthxbai m;
      uint8_t mode = 0;
      rd.Uint(m.request_id).Str(m.subtree).Str(m.position.epoch).Uint(m.position.seq);
      rd.Uint(m.count).Uint(mode).OptUint(m.term).OptUint(m.term_start);
      if (!ReadWindow(rd, m.window)) break;
      if (rd.ok() && mode <= static_cast<uint8_t>(SyncMode::kResume)) {
        m.mode = static_cast<SyncMode>(mode);
        return ReplyMessage{std::move(m)};
      }
      break;
    }
    case Command::kDone: {
      Done m;
      rd.Uint(m.request_id).Uint(m.subtrees);
      if (rd.ok()) return ReplyMessage{m};
      break;
    }
    case Command::kKvAck: {
      KvAck m;
      rd.UuidField(m.uuid).Uint(m.status).Str(m.position.epoch).Uint(m.position.seq);
      rd.OptUint(m.key_seq);
      if (rd.ok()) return ReplyMessage{std::move(m)};
      break;
    }
    case Command::kError: {
      Error m;
      rd.Uint(m.request_id).Uint(m.code).Str(m.message);
      if (rd.ok()) return ReplyMessage{std::move(m)};
      break;
    }
    default:
      return Errc::kUnknownCommand;
  }
  return Errc::kMalformed;
}

Result<PubMessage> DecodePub(std::string_view topic, std::string_view body) {
  // Fast path for the bulk of the traffic; same result as the generic decoder (fuzzed to agree).
  KvPub m;
  if (FastKvPub(body, m)) {
    auto parts = SplitKey(topic);
    if (!parts) return Errc::kMalformed;
    m.subtree.assign(parts->subtree);
    m.record.key.assign(parts->key);
    return PubMessage{std::move(m)};
  }
  return detail::DecodePubGeneric(topic, body);
}

bool DecodeKvPubInto(std::string_view topic, std::string_view body, KvPub& out) {
  out.record.uuid = Uuid{};  // FastKvPub writes it only when present
  out.term = 0;
  if (!FastKvPub(body, out)) return false;
  auto parts = SplitKey(topic);
  if (!parts) return false;
  out.subtree.assign(parts->subtree);
  out.record.key.assign(parts->key);
  return true;
}

bool DecodePositionInto(std::string_view topic, std::string_view body, PositionMsg& out) {
  if (topic.size() < 2 || topic.back() != '/' || body.size() > kMaxFrameBytes) return false;
  RawReader rd(body);
  uint32_t n = 0;
  uint64_t code = 0;
  uint64_t seq = 0;
  uint64_t term = 0;
  uint64_t term_start = 0;
  std::string_view epoch;
  if (!rd.Array(n) || (n != 3 && n != 5) || !rd.Uint(code) ||
      code != static_cast<uint64_t>(Command::kPosition) || !rd.Str(epoch) || !rd.Uint(seq)) {
    return false;
  }
  if (n == 5 && (!rd.Uint(term) || !rd.Uint(term_start))) return false;  // CS-33
  if (!rd.AtEnd()) return false;
  const std::string_view subtree = topic.substr(0, topic.size() - 1);
  if (!IsValidSubtree(subtree)) return false;
  out.subtree.assign(subtree);
  out.position.epoch.assign(epoch);
  out.position.seq = seq;
  out.term = term;
  out.term_start = term_start;
  return true;
}

Result<PubMessage> detail::DecodePubGeneric(std::string_view topic, std::string_view body) {
  ScratchZone zone;
  msgpack::object root;
  Command cmd{};
  if (!Parse(body, zone.get(), root) || !ReadCommand(root, cmd)) return Errc::kMalformed;
  Reader rd(root);
  uint8_t code = 0;
  rd.Uint(code);
  switch (cmd) {
    case Command::kKvPub: {
      auto parts = SplitKey(topic);
      if (!parts) return Errc::kMalformed;
      KvPub m;
      m.subtree.assign(parts->subtree);
      m.record.key.assign(parts->key);
      rd.Str(m.epoch).Uint(m.record.seq).OpField(m.record.op).Bin(m.record.value);
      rd.Uint(m.record.ttl_ms).OptUuid(m.record.uuid).OptUint(m.term);
      if (rd.ok()) return PubMessage{std::move(m)};
      break;
    }
    case Command::kPosition: {
      if (topic.size() < 2 || topic.back() != '/') return Errc::kMalformed;
      PositionMsg m;
      m.subtree.assign(topic.substr(0, topic.size() - 1));
      if (!IsValidSubtree(m.subtree)) return Errc::kMalformed;
      rd.Str(m.position.epoch).Uint(m.position.seq).OptUint(m.term).OptUint(m.term_start);
      if (rd.ok()) return PubMessage{std::move(m)};
      break;
    }
    case Command::kHugz: {
      if (topic != kHugzTopic) return Errc::kMalformed;
      Hugz m;
      rd.Uint(m.version).Str(m.server_id).Uint(m.time_ms).Uint(m.subtrees);
      if (rd.ok()) return PubMessage{std::move(m)};
      break;
    }
    default:
      return Errc::kUnknownCommand;
  }
  return Errc::kMalformed;
}

bool IsMsgpackValue(std::string_view value) {
  ScratchZone zone;
  msgpack::object root;
  return Parse(value, zone.get(), root);
}

}  // namespace chorus::chp
