// chorus-snapshot --scheduler (snapshot_scheduler.h).
#include "snapshot_scheduler.h"

#include <msgpack.hpp>

#include <algorithm>
#include <vector>

namespace chorus::chp {
namespace {

// A msgpack value unpacked for reading; every getter tolerates a missing or mistyped field.
class Value {
 public:
  explicit Value(const std::string& bytes) {
    try {
      h_ = msgpack::unpack(bytes.data(), bytes.size());
      ok_ = true;
    } catch (const std::exception&) {  // malformed record: shown as such
    }
  }
  bool ok() const { return ok_; }
  const msgpack::object* At(uint32_t i) const {
    const auto& o = h_.get();
    if (!ok_ || o.type != msgpack::type::ARRAY || i >= o.via.array.size) return nullptr;
    return &o.via.array.ptr[i];
  }
  const msgpack::object* Field(std::string_view k) const {
    const auto& o = h_.get();
    if (!ok_ || o.type != msgpack::type::MAP) return nullptr;
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type == msgpack::type::STR &&
          std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == k) {
        return &kv.val;
      }
    }
    return nullptr;
  }

 private:
  msgpack::object_handle h_;
  bool ok_ = false;
};

std::string Text(const msgpack::object* o) {
  if (o == nullptr) return "?";
  if (o->type == msgpack::type::STR) return std::string(o->via.str.ptr, o->via.str.size);
  if (o->type == msgpack::type::POSITIVE_INTEGER) return std::to_string(o->via.u64);
  if (o->type == msgpack::type::NEGATIVE_INTEGER) return std::to_string(o->via.i64);
  if (o->type == msgpack::type::BOOLEAN) return o->via.boolean ? "true" : "false";
  return "?";
}

uint64_t Num(const msgpack::object* o, uint32_t i) {
  if (o == nullptr || o->type != msgpack::type::ARRAY || i >= o->via.array.size) return 0;
  const auto& e = o->via.array.ptr[i];
  return e.type == msgpack::type::POSITIVE_INTEGER ? e.via.u64 : 0;
}

const char* JobState(const msgpack::object* o) {
  static const char* kNames[] = {"queued", "running", "succeeded", "failed", "cancelled"};
  if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER || o->via.u64 > 4) return "?";
  return kNames[o->via.u64];
}

}  // namespace

void PrintSchedulerState(const std::map<std::string, SubtreeReplica, std::less<>>& replicas,
                         std::ostream& out) {
  size_t users = 0;
  for (const auto& [name, r] : replicas) {
    if (name.rfind("s.", 0) != 0) continue;
    ++users;
    std::vector<std::pair<std::string, const std::string*>> keys;
    for (const auto& [k, e] : r.entries()) keys.emplace_back(k, &e.value);
    std::sort(keys.begin(), keys.end());
    out << "user " << name.substr(2);
    for (const auto& [k, v] : keys) {
      if (k != "queue") continue;
      Value q(*v);
      out << "  tier=" << Text(q.Field("tier")) << " quantum=" << Text(q.Field("quantum"))
          << "  ready=" << Text(q.Field("ready")) << " running=" << Text(q.Field("running"))
          << " backoff=" << Text(q.Field("backoff")) << " held=" << Text(q.Field("held"))
          << " jobs=" << Text(q.Field("jobs")) << "  node_slots=" << Text(q.Field("node_slots"));
    }
    out << "\n";
    for (const auto& [k, v] : keys) {
      Value x(*v);
      if (k.rfind("job/", 0) == 0) {
        // [format, tier, source, catalog, state, [tasks total, done, failed, retries, leases
        //  expired, items total, done, failed], errors, errors dropped, submitted, finished]
        const msgpack::object* c = x.At(5);
        out << "  job " << k.substr(4) << "  " << JobState(x.At(4)) << "  tasks " << Num(c, 1)
            << "/" << Num(c, 0) << " done, " << Num(c, 2) << " failed  items " << Num(c, 6) << "/"
            << Num(c, 5) << "  retries " << Num(c, 3) << "  leases_expired " << Num(c, 4)
            << "  source " << Text(x.At(2)) << "\n";
      } else if (k.rfind("lease/", 0) == 0) {
        out << "  lease task " << k.substr(6) << "  job " << Text(x.Field("job")) << "  kind "
            << Text(x.Field("kind")) << "  slot " << Text(x.Field("slot")) << "  token "
            << Text(x.Field("token")) << "  attempt " << Text(x.Field("attempt")) << "  worker "
            << Text(x.Field("worker")) << "\n";
      } else if (k.rfind("task/", 0) == 0) {
        // [format, kind, payload, final, attempts, backoff end ms]
        out << "  task " << k.substr(5) << "  " << Text(x.At(1))
            << (Text(x.At(3)) == "true" ? " (final)" : "") << "  attempts " << Text(x.At(4))
            << (Text(x.At(5)) != "0" ? "  backoff" : "") << "\n";
      } else if (k != "queue") {
        out << "  " << k << "  (unknown record)\n";
      }
    }
  }
  if (users == 0) out << "no scheduler state (no s.<user> subtree)\n";
}

}  // namespace chorus::chp
