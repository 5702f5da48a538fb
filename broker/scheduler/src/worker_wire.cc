// CWP/1 codec (worker_wire.h, docs/protocol/worker.md).
#include "broker/scheduler/worker_wire.h"

#include <msgpack.hpp>

#include <algorithm>
#include <map>

namespace chorus::broker::scheduler::wire {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

void Key(Packer& p, std::string_view k) {
  p.pack_str(static_cast<uint32_t>(k.size()));
  p.pack_str_body(k.data(), static_cast<uint32_t>(k.size()));
}
void Str(Packer& p, std::string_view k, const std::string& v) {
  Key(p, k);
  p.pack(v);
}
template <typename T>
void Num(Packer& p, std::string_view k, T v) {
  Key(p, k);
  p.pack(v);
}

bool Printable(const std::string& s, size_t max) {
  return s.size() <= max &&
         std::none_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

// The fields of one msgpack map with string keys; typed getters record the first error.
class Fields {
 public:
  explicit Fields(const msgpack::object& o) {
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) {
        Fail("a key is not a string");
        return;
      }
      by_key_[std::string(kv.key.via.str.ptr, kv.key.via.str.size)] = &kv.val;
    }
  }
  const std::string& why() const { return why_; }
  bool ok() const { return why_.empty(); }
  void Fail(const std::string& w) {
    if (why_.empty()) why_ = w;
  }
  const msgpack::object* Get(const char* k, bool required) {
    auto it = by_key_.find(k);
    if (it == by_key_.end() || it->second->type == msgpack::type::NIL) {
      if (required) Fail(std::string(k) + " is required");
      return nullptr;
    }
    return it->second;
  }
  uint64_t U64(const char* k, bool required = true, uint64_t max = UINT64_MAX) {
    const auto* o = Get(k, required);
    if (!o) return 0;
    if (o->type != msgpack::type::POSITIVE_INTEGER || o->via.u64 > max) {
      Fail(std::string(k) + " must be an unsigned integer <= " + std::to_string(max));
      return 0;
    }
    return o->via.u64;
  }
  bool Bool(const char* k) {
    const auto* o = Get(k, false);
    if (!o) return false;
    if (o->type != msgpack::type::BOOLEAN) Fail(std::string(k) + " must be a boolean");
    return o->type == msgpack::type::BOOLEAN && o->via.boolean;
  }
  std::string Str(const char* k, bool required, size_t max) {
    const auto* o = Get(k, required);
    if (!o) return {};
    if (o->type != msgpack::type::STR || o->via.str.size > max) {
      Fail(std::string(k) + " must be a string of at most " + std::to_string(max) + " bytes");
      return {};
    }
    return std::string(o->via.str.ptr, o->via.str.size);
  }

 private:
  std::map<std::string, const msgpack::object*, std::less<>> by_key_;
  std::string why_;
};

std::optional<Message> DecodeHello(Fields& f) {
  Hello h;
  h.version = static_cast<uint32_t>(f.U64("version", true, UINT32_MAX));
  h.slots = static_cast<uint32_t>(f.U64("slots", true, UINT32_MAX));
  if (const auto* k = f.Get("kinds", true)) {
    if (k->type != msgpack::type::ARRAY || k->via.array.size > kMaxKinds) {
      f.Fail("kinds must be an array of at most " + std::to_string(kMaxKinds) + " strings");
    } else {
      for (uint32_t i = 0; i < k->via.array.size; ++i) {
        const auto& e = k->via.array.ptr[i];
        if (e.type != msgpack::type::STR) {
          f.Fail("kinds must hold strings");
          break;
        }
        h.kinds.emplace_back(e.via.str.ptr, e.via.str.size);
      }
    }
  }
  if (!f.ok()) return std::nullopt;
  return h;
}

std::optional<Message> DecodeLease(Fields& f) {
  LeaseMsg m;
  Lease& l = m.lease;
  l.task = f.U64("task");
  l.job = f.U64("job");
  l.token = f.U64("token");
  l.deadline_ms = static_cast<int64_t>(f.U64("lease_ms", true, INT64_MAX));
  l.attempt = static_cast<uint32_t>(f.U64("attempt", true, UINT32_MAX));
  l.job_failed_tasks = f.U64("job_failed_tasks", false);
  l.spec.user = f.Str("user", true, kMaxTextBytes);
  l.spec.tier = f.Str("tier", true, kMaxTextBytes);
  l.spec.source = f.Str("source", true, kMaxTextBytes);
  l.spec.catalog = f.Str("catalog", true, kMaxTextBytes);
  l.kind = f.Str("kind", true, 64);
  l.payload = f.Str("payload", false, 1u << 20);
  if (!f.ok()) return std::nullopt;
  return m;
}

std::optional<Message> DecodeDone(Fields& f) {
  DoneMsg d;
  d.task = f.U64("task");
  d.token = f.U64("token");
  TaskOutcome& o = d.outcome;
  o.ok = f.Bool("ok");
  if (!f.Get("ok", true)) return std::nullopt;
  o.permanent = f.Bool("permanent");
  o.error = f.Str("error", false, kMaxTextBytes);
  o.items_total = f.U64("items_total", false);
  o.items_done = f.U64("items_done", false);
  o.items_failed = f.U64("items_failed", false);
  if (const auto* c = f.Get("children", false)) {
    if (c->type != msgpack::type::ARRAY || c->via.array.size > kMaxChildren) {
      f.Fail("children must be an array of at most " + std::to_string(kMaxChildren) + " tasks");
    } else {
      for (uint32_t i = 0; i < c->via.array.size && f.ok(); ++i) {
        const auto& e = c->via.array.ptr[i];
        // [kind: str, payload: str, final: bool]
        if (e.type != msgpack::type::ARRAY || e.via.array.size != 3 ||
            e.via.array.ptr[0].type != msgpack::type::STR ||
            e.via.array.ptr[1].type != msgpack::type::STR ||
            e.via.array.ptr[2].type != msgpack::type::BOOLEAN) {
          f.Fail("a child must be [kind: str, payload: str, final: bool]");
          break;
        }
        const auto* a = e.via.array.ptr;
        o.children.push_back({std::string(a[0].via.str.ptr, a[0].via.str.size),
                              std::string(a[1].via.str.ptr, a[1].via.str.size), a[2].via.boolean});
      }
    }
  }
  if (!f.ok()) return std::nullopt;
  return d;
}

}  // namespace

const char* TypeName(const Message& m) {
  static constexpr const char* kNames[] = {"hello",     "welcome", "ping",   "lease",
                                           "heartbeat", "done",    "revoke", "error"};
  return kNames[m.index()];
}

std::string Encode(const Message& m) {
  msgpack::sbuffer buf;
  Packer p(buf);
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Hello>) {
          p.pack_map(4);
          Str(p, "type", "hello");
          Num(p, "version", v.version);
          Num(p, "slots", v.slots);
          Key(p, "kinds");
          p.pack(v.kinds);
        } else if constexpr (std::is_same_v<T, Welcome>) {
          p.pack_map(5);
          Str(p, "type", "welcome");
          Num(p, "worker", v.worker);
          Num(p, "lease_ms", v.lease_ms);
          Num(p, "heartbeat_ms", v.heartbeat_ms);
          Num(p, "timeout_ms", v.timeout_ms);
        } else if constexpr (std::is_same_v<T, Ping>) {
          p.pack_map(1);
          Str(p, "type", "ping");
        } else if constexpr (std::is_same_v<T, LeaseMsg>) {
          const Lease& l = v.lease;
          p.pack_map(13);
          Str(p, "type", "lease");
          Num(p, "task", l.task);
          Num(p, "job", l.job);
          Num(p, "token", l.token);
          Num(p, "lease_ms", l.deadline_ms);
          Num(p, "attempt", l.attempt);
          Num(p, "job_failed_tasks", l.job_failed_tasks);
          Str(p, "user", l.spec.user);
          Str(p, "tier", l.spec.tier);
          Str(p, "source", l.spec.source);
          Str(p, "catalog", l.spec.catalog);
          Str(p, "kind", l.kind);
          Str(p, "payload", l.payload);
        } else if constexpr (std::is_same_v<T, HeartbeatMsg> || std::is_same_v<T, RevokeMsg>) {
          p.pack_map(3);
          Str(p, "type", std::is_same_v<T, HeartbeatMsg> ? "heartbeat" : "revoke");
          Num(p, "task", v.task);
          Num(p, "token", v.token);
        } else if constexpr (std::is_same_v<T, DoneMsg>) {
          const TaskOutcome& o = v.outcome;
          p.pack_map(10);
          Str(p, "type", "done");
          Num(p, "task", v.task);
          Num(p, "token", v.token);
          Num(p, "ok", o.ok);
          Num(p, "permanent", o.permanent);
          Str(p, "error", o.error);
          Num(p, "items_total", o.items_total);
          Num(p, "items_done", o.items_done);
          Num(p, "items_failed", o.items_failed);
          Key(p, "children");
          p.pack_array(static_cast<uint32_t>(o.children.size()));
          for (const TaskSpec& c : o.children) {
            p.pack_array(3);
            p.pack(c.kind);
            p.pack(c.payload);
            p.pack(c.final);
          }
        } else {
          static_assert(std::is_same_v<T, ErrorMsg>);
          p.pack_map(3);
          Str(p, "type", "error");
          Num(p, "code", v.code);
          Str(p, "message", v.message);
        }
      },
      m);
  return std::string(buf.data(), buf.size());
}

std::optional<Message> Decode(std::string_view frame, std::string* why) {
  if (frame.size() > kMaxFrameBytes) {
    *why = "frame larger than " + std::to_string(kMaxFrameBytes) + " bytes";
    return std::nullopt;
  }
  msgpack::object_handle h;
  try {
    h = msgpack::unpack(frame.data(), frame.size());
  } catch (const std::exception&) {  // the library throws on malformed input: the boundary
    *why = "not msgpack";
    return std::nullopt;
  }
  if (h.get().type != msgpack::type::MAP) {
    *why = "not a msgpack map";
    return std::nullopt;
  }
  Fields f(h.get());
  const std::string type = f.Str("type", true, 16);
  std::optional<Message> out;
  if (!f.ok()) {
  } else if (type == "hello") {
    out = DecodeHello(f);
  } else if (type == "ping") {
    out = Ping{};
  } else if (type == "lease") {
    out = DecodeLease(f);
  } else if (type == "heartbeat" || type == "revoke") {
    const TaskId task = f.U64("task");
    const LeaseToken token = f.U64("token");
    if (f.ok() && type == "heartbeat") out = HeartbeatMsg{task, token};
    if (f.ok() && type == "revoke") out = RevokeMsg{task, token};
  } else if (type == "done") {
    out = DecodeDone(f);
  } else if (type == "welcome") {
    Welcome w;
    w.worker = f.U64("worker");
    w.lease_ms = static_cast<int64_t>(f.U64("lease_ms", true, INT64_MAX));
    w.heartbeat_ms = static_cast<int64_t>(f.U64("heartbeat_ms", true, INT64_MAX));
    w.timeout_ms = static_cast<int64_t>(f.U64("timeout_ms", true, INT64_MAX));
    if (f.ok()) out = w;
  } else if (type == "error") {
    ErrorMsg e;
    e.code = static_cast<uint32_t>(f.U64("code", true, UINT32_MAX));
    e.message = f.Str("message", false, kMaxTextBytes);
    if (f.ok()) out = e;
  } else {
    f.Fail("unknown type '" + (Printable(type, 16) ? type : std::string("?")) + "'");
  }
  if (!out) *why = f.why().empty() ? "malformed" : f.why();
  return out;
}

}  // namespace chorus::broker::scheduler::wire
