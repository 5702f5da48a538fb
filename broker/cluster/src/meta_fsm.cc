#include "cluster/meta_fsm.h"

extern "C" {  // raft.h has no C++ guards
#include <raft.h>
}

#include <cstdint>
#include <cstring>
#include <msgpack.hpp>
#include <new>

#include "cluster/map_codec.h"

namespace chorus::cluster {
namespace {

// The apply result travels to the proposer's callback as an integer in the result pointer:
// 0 = accepted, otherwise a cluster Errc value.
void* EncodeResult(Errc e) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>(e));
}

Errc DecodeResult(void* result) {
  return static_cast<Errc>(static_cast<uint32_t>(reinterpret_cast<uintptr_t>(result)));
}

struct ProposeRequest {
  struct raft_apply req;  // first member: libraft hands back this pointer
  ProposeCallback cb;
};

void ApplyDone(struct raft_apply* req, int status, void* result) {
  auto* p = reinterpret_cast<ProposeRequest*>(req);
  ProposeCallback cb = std::move(p->cb);
  delete p;
  if (status == 0) {
    Errc e = DecodeResult(result);
    cb(e == Errc::kOk ? Result<Unit>(Unit{}) : Result<Unit>(e));
  } else if (status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER || status == RAFT_SHUTDOWN) {
    cb(Errc::kNotLeader);
  } else {
    cb(Errc::kRaft);
  }
}

// libraft's uv log mis-reads entries whose length is not a multiple of 8 after a restart
// (canonical/raft issues #189 and #304: "TODO: enforce the requirement of 8-byte alignment"), so
// every entry and snapshot is padded with zero bytes to a multiple of 8; a reader takes the one
// msgpack object at the front and accepts at most 7 zero bytes after it.
std::string PadTo8(std::string bytes) {
  bytes.resize((bytes.size() + 7) / 8 * 8, '\0');
  return bytes;
}

std::string_view Unpad(std::string_view bytes) {
  try {
    size_t off = 0;
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size(), off);
    std::string_view rest = bytes.substr(off);
    if (rest.size() < 8 && rest.find_first_not_of('\0') == std::string_view::npos) {
      return bytes.substr(0, off);
    }
  } catch (const std::exception&) {
  }
  return bytes;  // the decoder reports it as malformed
}

// Snapshot layout: [entries, map bytes] (map bytes as map_codec.h encodes them).
std::string EncodeSnapshot(uint64_t entries, const ClusterMap& map) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(2);
  pk.pack_uint64(entries);
  std::string m = EncodeMap(map);
  pk.pack_bin(static_cast<uint32_t>(m.size()));
  pk.pack_bin_body(m.data(), static_cast<uint32_t>(m.size()));
  return PadTo8(std::string(buf.data(), buf.size()));
}

bool DecodeSnapshot(const char* data, size_t len, uint64_t& entries, ClusterMap& map) {
  std::string_view bytes = Unpad(std::string_view(data, len));
  data = bytes.data();
  len = bytes.size();
  try {
    size_t off = 0;
    msgpack::object_handle oh = msgpack::unpack(data, len, off);
    const msgpack::object& o = oh.get();
    if (off != len || o.type != msgpack::type::ARRAY || o.via.array.size < 2) return false;
    const msgpack::object& e = o.via.array.ptr[0];
    const msgpack::object& m = o.via.array.ptr[1];
    if (e.type != msgpack::type::POSITIVE_INTEGER || m.type != msgpack::type::BIN) return false;
    auto decoded = DecodeMap(std::string_view(m.via.bin.ptr, m.via.bin.size));
    if (!decoded.ok()) return false;
    entries = e.via.u64;
    map = std::move(*decoded);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

MetaFsm::MetaFsm() : fsm_(new raft_fsm{}) {
  fsm_->version = 1;
  fsm_->data = this;
  fsm_->apply = &MetaFsm::ApplyCb;
  fsm_->snapshot = &MetaFsm::SnapshotCb;
  fsm_->restore = &MetaFsm::RestoreCb;
}

MetaFsm::~MetaFsm() {
  delete fsm_;
}

int MetaFsm::ApplyCb(raft_fsm* fsm, const raft_buffer* buf, void** result) {
  auto* self = static_cast<MetaFsm*>(fsm->data);
  // Every outcome is deterministic and returns 0: a malformed or rejected entry is a no-op on
  // every voter, never a reason for libraft to stop applying.
  auto cmd = DecodeCommand(Unpad(std::string_view(static_cast<const char*>(buf->base), buf->len)));
  Errc outcome = Errc::kOk;
  if (!cmd.ok()) {
    outcome = static_cast<Errc>(cmd.error().value());
  } else {
    auto applied = self->map_.Apply(*cmd);
    if (!applied.ok()) outcome = static_cast<Errc>(applied.error().value());
  }
  ++self->entries_;
  *result = EncodeResult(outcome);
  if (self->observer_) self->observer_(*self);
  return 0;
}

int MetaFsm::SnapshotCb(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
  auto* self = static_cast<MetaFsm*>(fsm->data);
  std::string bytes = EncodeSnapshot(self->entries_, self->map_);
  // libraft frees both the array and the base (version-1 FSM contract).
  *bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  if (*bufs == nullptr) return RAFT_NOMEM;
  (*bufs)[0].len = bytes.size();
  (*bufs)[0].base = raft_malloc(bytes.size());
  if ((*bufs)[0].base == nullptr) {
    raft_free(*bufs);
    *bufs = nullptr;
    return RAFT_NOMEM;
  }
  std::memcpy((*bufs)[0].base, bytes.data(), bytes.size());
  *n_bufs = 1;
  return 0;
}

int MetaFsm::RestoreCb(raft_fsm* fsm, raft_buffer* buf) {
  auto* self = static_cast<MetaFsm*>(fsm->data);
  uint64_t entries = 0;
  ClusterMap map;
  if (!DecodeSnapshot(static_cast<const char*>(buf->base), buf->len, entries, map)) {
    return RAFT_MALFORMED;
  }
  self->map_ = std::move(map);
  self->entries_ = entries;
  raft_free(buf->base);  // on success the FSM owns the buffer
  if (self->observer_) self->observer_(*self);
  return 0;
}

Result<Unit> Propose(raft* r, const Command& cmd, ProposeCallback cb) {
  if (raft_state(r) != RAFT_LEADER) return Errc::kNotLeader;
  std::string bytes = PadTo8(EncodeCommand(cmd));
  raft_buffer buf;
  buf.len = bytes.size();
  buf.base = raft_malloc(bytes.size());
  if (buf.base == nullptr) return Errc::kRaft;
  std::memcpy(buf.base, bytes.data(), bytes.size());
  auto* req = new ProposeRequest{};
  req->cb = std::move(cb);
  int rv = raft_apply(r, &req->req, &buf, 1, &ApplyDone);
  if (rv != 0) {
    raft_free(buf.base);
    delete req;
    return rv == RAFT_NOTLEADER || rv == RAFT_LEADERSHIPLOST ? Errc::kNotLeader : Errc::kRaft;
  }
  return Unit{};
}

}  // namespace chorus::cluster
