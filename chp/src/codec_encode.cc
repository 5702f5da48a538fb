// Encoders of the CHP frames (docs/protocol/chp.md, "Frames"): bodies are msgpack arrays written
// with the packer, KVPUB (the hot path) directly with the raw writer. The decoders are in
// codec.cc.
#include <msgpack.hpp>

#include "chp/codec.h"
#include "chp/keys.h"
#include "codec_raw.h"

namespace chorus::chp {
namespace {

using codec_raw::RawWriter;

// Packs straight into the std::string that is returned (no intermediate buffer and copy).
struct StringSink {
  std::string* out;
  void write(const char* data, size_t size) { out->append(data, size); }
};
using Packer = msgpack::packer<StringSink>;

void PackStr(Packer& p, std::string_view s) {
  p.pack_str(static_cast<uint32_t>(s.size()));
  p.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}
void PackBin(Packer& p, std::string_view s) {
  p.pack_bin(static_cast<uint32_t>(s.size()));
  p.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}
void PackUuid(Packer& p, const Uuid& u) {
  PackBin(p, std::string_view(reinterpret_cast<const char*>(u.data()), u.size()));
}
void PackHead(Packer& p, Command c, uint32_t n) {
  p.pack_array(n);
  p.pack_uint8(static_cast<uint8_t>(c));
}

bool IsZero(const Uuid& u) {
  for (uint8_t b : u) {
    if (b != 0) return false;
  }
  return true;
}

}  // namespace

std::string Encode(const Hello& m) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  PackHead(p, Command::kHello, 3);
  p.pack_uint32(m.version);
  p.pack_uint64(m.request_id);
  return out;
}

std::string Encode(const Icanhaz& m) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  PackHead(p, Command::kIcanhaz, 6);
  p.pack_uint64(m.request_id);
  PackStr(p, m.subtree);
  PackStr(p, m.from.epoch);
  p.pack_uint64(m.from.seq);
  p.pack_uint64(m.term);
  return out;
}

std::string Encode(const KvSet& m) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  PackHead(p, Command::kKvSet, m.expected_seq ? 7 : 6);
  PackUuid(p, m.uuid);
  PackStr(p, m.key);
  p.pack_uint8(static_cast<uint8_t>(m.op));
  PackBin(p, m.value);
  p.pack_uint64(m.ttl_ms);
  if (m.expected_seq) p.pack_uint64(*m.expected_seq);
  return out;
}

std::string Encode(const Applied& m) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  PackHead(p, Command::kApplied, 3);
  PackStr(p, m.replica);
  p.pack_array(static_cast<uint32_t>(m.positions.size()));
  for (const AppliedEntry& e : m.positions) {
    p.pack_array(3);
    PackStr(p, e.subtree);
    PackStr(p, e.position.epoch);
    p.pack(e.position.seq);
  }
  return out;
}

std::string Encode(const HelloOk& m) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  PackHead(p, Command::kHelloOk, 5);
  p.pack_uint64(m.request_id);
  p.pack_uint32(m.version);
  PackStr(p, m.server_id);
  PackStr(p, m.publisher);
  return out;
}

std::string Encode(const KvSync& m) {
  size_t size = 32 + m.subtree.size();
  for (const Record& r : m.records) size += r.key.size() + r.value.size() + 40;
  std::string out;
  out.reserve(size);
  StringSink sink{&out};
  Packer p(sink);
  PackHead(p, Command::kKvSync, 4);
  p.pack_uint64(m.request_id);
  PackStr(p, m.subtree);
  p.pack_array(static_cast<uint32_t>(m.records.size()));
  for (const Record& r : m.records) {
    const bool uuid = !IsZero(r.uuid);  // CS-31: a resumed change carries its update's UUID
    p.pack_array(uuid ? 6 : 5);
    PackStr(p, r.key);
    p.pack_uint8(static_cast<uint8_t>(r.op));
    PackBin(p, r.value);
    p.pack_uint64(r.ttl_ms);
    p.pack_uint64(r.seq);
    if (uuid) PackUuid(p, r.uuid);
  }
  return out;
}

std::string Encode(const Kthxbai& m) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  PackHead(p, Command::kKthxbai, m.window.empty() ? 9 : 10);
  p.pack_uint64(m.request_id);
  PackStr(p, m.subtree);
  PackStr(p, m.position.epoch);
  p.pack_uint64(m.position.seq);
  p.pack_uint64(m.count);
  p.pack_uint8(static_cast<uint8_t>(m.mode));
  p.pack_uint64(m.term);
  p.pack_uint64(m.term_start);
  if (!m.window.empty()) {
    p.pack_array(static_cast<uint32_t>(m.window.size()));
    for (const WindowEntry& w : m.window) {
      p.pack_array(3);
      PackUuid(p, w.uuid);
      p.pack_uint64(w.seq);
      p.pack_uint64(w.age_ms);
    }
  }
  return out;
}

std::string Encode(const Done& m) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  PackHead(p, Command::kDone, 3);
  p.pack_uint64(m.request_id);
  p.pack_uint64(m.subtrees);
  return out;
}

std::string Encode(const KvAck& m) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  // CS-32: the key's seq goes with kConflict (and whenever set, so decoding round-trips).
  const bool conflict = m.status == static_cast<uint32_t>(Errc::kConflict) || m.key_seq != 0;
  PackHead(p, Command::kKvAck, conflict ? 6 : 5);
  PackUuid(p, m.uuid);
  p.pack_uint32(m.status);
  PackStr(p, m.position.epoch);
  p.pack_uint64(m.position.seq);
  if (conflict) p.pack_uint64(m.key_seq);  // CS-32
  return out;
}

std::string Encode(const Error& m) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  PackHead(p, Command::kError, 4);
  p.pack_uint64(m.request_id);
  p.pack_uint32(m.code);
  PackStr(p, m.message);
  return out;
}

std::string Encode(const KvPub& m) {
  std::string out;
  EncodeKvPubBody(m.epoch, m.record, m.term, out);
  return out;
}

void EncodeKvPubBody(std::string_view epoch, const Record& record, uint64_t term,
                     std::string& out) {
  // Written directly (the hot path of every change) with exactly the packer's encodings; the
  // codec tests and the fuzz round trip compare it with the packer-based decoders.
  out.resize(64 + epoch.size() + record.value.size());
  RawWriter w(out.data());
  w.ArrayHeader(8);
  w.Uint(static_cast<uint8_t>(Command::kKvPub));
  w.Str(epoch);
  w.Uint(record.seq);
  w.Uint(static_cast<uint8_t>(record.op));
  w.Bin(record.value);
  w.Uint(record.ttl_ms);
  if (IsZero(record.uuid)) {  // CS-31: the UUID of the update, nil for none
    w.Nil();
  } else {
    w.Bin(std::string_view(reinterpret_cast<const char*>(record.uuid.data()), record.uuid.size()));
  }
  w.Uint(term);  // CS-33
  out.resize(static_cast<size_t>(w.end() - out.data()));
}

void EncodePositionBody(std::string_view epoch, uint64_t seq, uint64_t term, uint64_t term_start,
                        std::string& out) {
  // Written directly like KVPUB (the sweep sends many, CS-26), in the packer's encodings.
  out.resize(48 + epoch.size());
  RawWriter w(out.data());
  w.ArrayHeader(5);
  w.Uint(static_cast<uint8_t>(Command::kPosition));
  w.Str(epoch);
  w.Uint(seq);
  w.Uint(term);  // CS-33
  w.Uint(term_start);
  out.resize(static_cast<size_t>(w.end() - out.data()));
}

std::string Encode(const PositionMsg& m) {
  std::string out;
  EncodePositionBody(m.position.epoch, m.position.seq, m.term, m.term_start, out);
  return out;
}

std::string Encode(const Hugz& m) {
  std::string out;
  StringSink sink{&out};
  Packer p(sink);
  PackHead(p, Command::kHugz, 5);
  p.pack_uint32(m.version);
  PackStr(p, m.server_id);
  p.pack_uint64(m.time_ms);
  p.pack_uint64(m.subtrees);
  return out;
}

std::string Topic(const KvPub& m) {
  return JoinKey(m.subtree, m.record.key);
}
std::string Topic(const PositionMsg& m) {
  return TopicPrefix(m.subtree);
}

}  // namespace chorus::chp
