// Frame layouts: docs/protocol/native.md, "Frames" and "Methods". Every frame is one msgpack map
// with string keys; unknown keys are ignored on decode.
#include "codec.h"

#include <algorithm>
#include <exception>
#include <limits>

namespace chorus::client::detail {
namespace {

constexpr size_t kMaxFrameBytes = 64u << 20;

struct StringSink {
  std::string* out;
  void write(const char* data, size_t size) { out->append(data, size); }
};
using Packer = msgpack::packer<StringSink>;

void PackStr(Packer& p, std::string_view s) {
  p.pack_str(static_cast<uint32_t>(s.size()));
  p.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

// Writes `{id, method, params: {...}}`; the caller packs exactly `params` key/value pairs.
class Command {
 public:
  Command(uint64_t id, std::string_view method, uint32_t params) : sink_{&out_}, pk_(sink_) {
    pk_.pack_map(3);
    PackStr(pk_, "id");
    pk_.pack_uint64(id);
    PackStr(pk_, "method");
    PackStr(pk_, method);
    PackStr(pk_, "params");
    pk_.pack_map(params);
  }
  Command(const Command&) = delete;
  Command& operator=(const Command&) = delete;
  Command& Str(std::string_view key, std::string_view value) {
    PackStr(pk_, key);
    PackStr(pk_, value);
    return *this;
  }
  Command& Uint(std::string_view key, uint64_t value) {
    PackStr(pk_, key);
    pk_.pack_uint64(value);
    return *this;
  }
  Command& Int(std::string_view key, int64_t value) {
    PackStr(pk_, key);
    pk_.pack_int64(value);
    return *this;
  }
  Command& Bool(std::string_view key, bool value) {
    PackStr(pk_, key);
    value ? pk_.pack_true() : pk_.pack_false();
    return *this;
  }
  Command& Position(std::string_view key, const StreamPosition& pos) {
    PackStr(pk_, key);
    pk_.pack_map(2);
    Uint("offset", pos.offset);
    Str("epoch", pos.epoch);
    return *this;
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
  StringSink sink_;
  Packer pk_;
};

bool IsAbsent(const msgpack::object* o) {
  return o == nullptr || o->type == msgpack::type::NIL;
}

// Reads the fields of one msgpack map by key. A missing (or nil) key leaves the output at its
// default; a key of the wrong type makes the whole read fail.
class MapReader {
 public:
  explicit MapReader(const msgpack::object* o) {
    if (IsAbsent(o)) return;
    if (o->type != msgpack::type::MAP) {
      ok_ = false;
      return;
    }
    map_ = &o->via.map;
  }
  bool ok() const { return ok_; }

  const msgpack::object* Find(std::string_view key) const {
    if (map_ == nullptr) return nullptr;
    for (uint32_t i = 0; i < map_->size; ++i) {
      const msgpack::object& k = map_->ptr[i].key;
      if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
        const msgpack::object* v = &map_->ptr[i].val;
        return IsAbsent(v) ? nullptr : v;
      }
    }
    return nullptr;
  }
  MapReader& Str(std::string_view key, std::string& out) {
    const msgpack::object* v = Find(key);
    if (v == nullptr) return *this;
    if (!ReadStr(*v, out)) ok_ = false;
    return *this;
  }
  template <typename T>
  MapReader& Uint(std::string_view key, T& out) {
    const msgpack::object* v = Find(key);
    if (v == nullptr) return *this;
    if (v->type != msgpack::type::POSITIVE_INTEGER ||
        v->via.u64 > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      ok_ = false;
      return *this;
    }
    out = static_cast<T>(v->via.u64);
    return *this;
  }
  MapReader& Bool(std::string_view key, bool& out) {
    const msgpack::object* v = Find(key);
    if (v == nullptr) return *this;
    if (v->type != msgpack::type::BOOLEAN) {
      ok_ = false;
      return *this;
    }
    out = v->via.boolean;
    return *this;
  }
  MapReader& Fail() {
    ok_ = false;
    return *this;
  }

  static bool ReadStr(const msgpack::object& v, std::string& out) {
    if (v.type == msgpack::type::STR) {
      out.assign(v.via.str.ptr, v.via.str.size);
      return true;
    }
    if (v.type == msgpack::type::BIN) {  // lenient: some packers write JSON text as bin
      out.assign(v.via.bin.ptr, v.via.bin.size);
      return true;
    }
    return false;
  }

 private:
  const msgpack::object_map* map_ = nullptr;
  bool ok_ = true;
};

Error Malformed(std::string what) {
  return Error(Errc::kMalformed, std::move(what));
}

Result<ClientInfo> ReadClientInfo(const msgpack::object* o) {
  ClientInfo info;
  MapReader r(o);
  r.Str("client", info.client)
      .Str("user", info.user)
      .Str("conn_info", info.conn_info)
      .Str("chan_info", info.chan_info);
  if (!r.ok()) return Malformed("bad client info");
  return info;
}

Result<std::vector<Publication>> ReadPublications(const msgpack::object* o) {
  std::vector<Publication> out;
  if (IsAbsent(o)) return out;
  if (o->type != msgpack::type::ARRAY) return Malformed("publications is not an array");
  out.reserve(o->via.array.size);
  for (uint32_t i = 0; i < o->via.array.size; ++i) {
    auto p = DecodePublication(&o->via.array.ptr[i]);
    if (!p) return p.error();
    out.push_back(std::move(*p));
  }
  return out;
}

}  // namespace

std::string EncodeConnect(uint64_t id, std::string_view token, std::string_view user,
                          std::string_view info) {
  Command c(id, "connect", info.empty() ? 1 : 2);
  if (!token.empty()) {
    c.Str("token", token);
  } else {
    c.Str("user", user);
  }
  if (!info.empty()) c.Str("info", info);
  return c.Take();
}

std::string EncodeSubscribe(uint64_t id, std::string_view channel, bool recover,
                            std::string_view epoch, uint64_t offset, std::string_view info) {
  Command c(id, "subscribe", info.empty() ? 4 : 5);
  c.Str("channel", channel).Bool("recover", recover).Str("epoch", epoch).Uint("offset", offset);
  if (!info.empty()) c.Str("info", info);
  return c.Take();
}

std::string EncodeUnsubscribe(uint64_t id, std::string_view channel) {
  return Command(id, "unsubscribe", 1).Str("channel", channel).Take();
}

std::string EncodePublish(uint64_t id, std::string_view channel, std::string_view data) {
  return Command(id, "publish", 2).Str("channel", channel).Str("data", data).Take();
}

std::string EncodePresence(uint64_t id, std::string_view channel, std::string_view cursor,
                           uint32_t limit) {
  Command c(id, "presence", limit > 0 ? 3 : 2);
  c.Str("channel", channel).Str("cursor", cursor);
  if (limit > 0) c.Uint("limit", limit);
  return c.Take();
}

std::string EncodePresenceStats(uint64_t id, std::string_view channel) {
  return Command(id, "presence_stats", 1).Str("channel", channel).Take();
}

std::string EncodeHistory(uint64_t id, std::string_view channel, const HistoryOptions& options) {
  Command c(id, "history", options.since ? 4 : 3);
  c.Str("channel", channel).Int("limit", options.limit);
  if (options.since) c.Position("since", *options.since);
  c.Bool("reverse", options.reverse);
  return c.Take();
}

std::string EncodeSyncSubmit(uint64_t id, const SyncSubmitOptions& options) {
  Command c(id, "sync_submit", options.tier.empty() ? 2 : 3);
  c.Str("source", options.source).Str("catalog", options.catalog);
  if (!options.tier.empty()) c.Str("tier", options.tier);
  return c.Take();
}

std::string EncodeSyncStatus(uint64_t id, uint64_t job) {
  if (job == 0) return Command(id, "sync_status", 0).Take();
  return Command(id, "sync_status", 1).Uint("job", job).Take();
}

std::string EncodeSyncCancel(uint64_t id, uint64_t job) {
  return Command(id, "sync_cancel", 1).Uint("job", job).Take();
}

std::string EncodePing(uint64_t id) {
  return Command(id, "ping", 0).Take();
}

std::string EncodeDisconnect(uint64_t id) {
  return Command(id, "disconnect", 0).Take();
}

Result<ServerFrame> DecodeFrame(std::string_view bytes) {
  if (bytes.empty() || bytes.size() > kMaxFrameBytes) return Malformed("empty or oversized frame");
  ServerFrame f;
  try {
    // The parser reserves room for a container's elements when it reads the header; capping the
    // counts by the frame size accepts the same frames and stops a tiny frame reserving millions.
    const size_t array_cap = std::min<size_t>(size_t{1} << 24, bytes.size());
    const size_t map_cap = std::min<size_t>(size_t{1} << 24, bytes.size() / 2);
    const msgpack::unpack_limit limit(array_cap, map_cap, kMaxFrameBytes, kMaxFrameBytes, 1u << 16,
                                      /*depth=*/32);
    size_t off = 0;
    f.handle = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr, limit);
    if (off != bytes.size()) return Malformed("trailing bytes after the map");
  } catch (const std::exception& e) {
    return Malformed(std::string("not msgpack: ") + e.what());
  }
  const msgpack::object& root = f.handle.get();
  if (root.type != msgpack::type::MAP) return Malformed("frame is not a map");
  MapReader r(&root);
  if (const msgpack::object* push = r.Find("push"); push != nullptr) {
    f.is_push = true;
    if (!MapReader::ReadStr(*push, f.push)) return Malformed("push is not a str");
    r.Str("channel", f.channel);
    f.data = r.Find("data");
    if (!r.ok() || (f.data != nullptr && f.data->type != msgpack::type::MAP)) {
      return Malformed("bad push " + f.push);
    }
    return f;
  }
  const msgpack::object* id = r.Find("id");
  if (id == nullptr || id->type != msgpack::type::POSITIVE_INTEGER) {
    return Malformed("frame has neither push nor a uint id");
  }
  f.id = id->via.u64;
  if (const msgpack::object* err = r.Find("error"); err != nullptr) {
    Error e;
    MapReader er(err);
    er.Uint("code", e.code).Str("message", e.message);
    if (!er.ok() || err->type != msgpack::type::MAP) return Malformed("bad error map");
    f.error = std::move(e);
    return f;
  }
  f.result = r.Find("result");
  if (f.result != nullptr && f.result->type != msgpack::type::MAP) {
    return Malformed("result is not a map");
  }
  return f;
}

Result<ConnectResult> DecodeConnectResult(const msgpack::object* o) {
  ConnectResult out;
  MapReader r(o);
  r.Str("client", out.client)
      .Str("version", out.version)
      .Uint("ping", out.ping)
      .Uint("pong", out.pong);
  if (!r.ok()) return Malformed("bad connect result");
  return out;
}

Result<SubscribeResult> DecodeSubscribeResult(const msgpack::object* o) {
  SubscribeResult out;
  MapReader r(o);
  r.Bool("recoverable", out.recoverable)
      .Str("epoch", out.epoch)
      .Uint("offset", out.offset)
      .Bool("recovered", out.recovered)
      .Bool("was_recovering", out.was_recovering);
  if (!r.ok()) return Malformed("bad subscribe result");
  auto pubs = ReadPublications(r.Find("publications"));
  if (!pubs) return pubs.error();
  out.publications = std::move(*pubs);
  return out;
}

Result<PublishResult> DecodePublishResult(const msgpack::object* o) {
  PublishResult out;
  MapReader r(o);
  r.Uint("offset", out.offset).Str("epoch", out.epoch);
  if (!r.ok()) return Malformed("bad publish result");
  return out;
}

Result<PresenceResult> DecodePresenceResult(const msgpack::object* o) {
  PresenceResult out;
  MapReader r(o);
  r.Str("next_cursor", out.next_cursor);
  if (!r.ok()) return Malformed("bad presence result");
  if (const msgpack::object* p = r.Find("presence"); p != nullptr) {
    if (p->type != msgpack::type::MAP) return Malformed("presence is not a map");
    for (uint32_t i = 0; i < p->via.map.size; ++i) {
      std::string id;
      if (!MapReader::ReadStr(p->via.map.ptr[i].key, id)) return Malformed("bad presence key");
      auto info = ReadClientInfo(&p->via.map.ptr[i].val);
      if (!info) return info.error();
      out.presence.emplace(std::move(id), std::move(*info));
    }
  }
  return out;
}

Result<PresenceStatsResult> DecodePresenceStatsResult(const msgpack::object* o) {
  PresenceStatsResult out;
  MapReader r(o);
  r.Uint("num_clients", out.num_clients).Uint("num_users", out.num_users);
  if (!r.ok()) return Malformed("bad presence_stats result");
  return out;
}

Result<HistoryResult> DecodeHistoryResult(const msgpack::object* o) {
  HistoryResult out;
  MapReader r(o);
  r.Str("epoch", out.epoch).Uint("offset", out.offset);
  if (!r.ok()) return Malformed("bad history result");
  auto pubs = ReadPublications(r.Find("publications"));
  if (!pubs) return pubs.error();
  out.publications = std::move(*pubs);
  return out;
}

Result<Publication> DecodePublication(const msgpack::object* o) {
  Publication out;
  if (IsAbsent(o) || o->type != msgpack::type::MAP) return Malformed("publication is not a map");
  MapReader r(o);
  r.Uint("offset", out.offset).Str("data", out.data);
  if (!r.ok()) return Malformed("bad publication");
  if (const msgpack::object* info = r.Find("info"); info != nullptr) {
    auto ci = ReadClientInfo(info);
    if (!ci) return ci.error();
    out.info = std::move(*ci);
  }
  if (const msgpack::object* tags = r.Find("tags"); tags != nullptr) {
    if (tags->type != msgpack::type::MAP) return Malformed("tags is not a map");
    for (uint32_t i = 0; i < tags->via.map.size; ++i) {
      std::string k, v;
      if (!MapReader::ReadStr(tags->via.map.ptr[i].key, k) ||
          !MapReader::ReadStr(tags->via.map.ptr[i].val, v)) {
        return Malformed("bad tag");
      }
      out.tags.emplace(std::move(k), std::move(v));
    }
  }
  return out;
}

Result<ClientInfo> DecodeJoinLeave(const msgpack::object* o) {
  MapReader r(o);
  if (!r.ok()) return Malformed("bad join/leave body");
  const msgpack::object* info = r.Find("info");
  if (info == nullptr) return Malformed("join/leave without info");
  return ReadClientInfo(info);
}

Result<DisconnectInfo> DecodeDisconnect(const msgpack::object* o) {
  DisconnectInfo out;
  MapReader r(o);
  r.Uint("code", out.code).Str("reason", out.reason).Bool("reconnect", out.reconnect);
  if (!r.ok()) return Malformed("bad disconnect push");
  return out;
}

Result<DisconnectInfo> DecodeUnsubscribe(const msgpack::object* o) {
  DisconnectInfo out;
  MapReader r(o);
  r.Uint("code", out.code).Str("reason", out.reason);
  if (!r.ok()) return Malformed("bad unsubscribe push");
  return out;
}

namespace {

// A job map (docs/scheduler.md "Running in chorusd": J).
Result<SyncJob> ReadSyncJob(const msgpack::object* o) {
  SyncJob out;
  MapReader r(o);
  if (o == nullptr || o->type != msgpack::type::MAP) return Malformed("bad sync job");
  r.Uint("id", out.id)
      .Str("user", out.user)
      .Str("tier", out.tier)
      .Str("source", out.source)
      .Str("catalog", out.catalog)
      .Str("state", out.state)
      .Str("phase", out.phase)
      .Uint("done", out.done)
      .Uint("failed", out.failed)
      .Uint("total", out.total)
      .Uint("errors_dropped", out.errors_dropped);
  MapReader t(r.Find("tasks"));
  t.Uint("total", out.tasks.total)
      .Uint("done", out.tasks.done)
      .Uint("failed", out.tasks.failed)
      .Uint("running", out.tasks.running)
      .Uint("retries", out.tasks.retries)
      .Uint("leases_expired", out.tasks.leases_expired);
  if (!r.ok() || !t.ok() || out.id == 0) return Malformed("bad sync job");
  if (const msgpack::object* e = r.Find("errors")) {
    if (e->type != msgpack::type::ARRAY) return Malformed("bad sync job errors");
    for (uint32_t i = 0; i < e->via.array.size; ++i) {
      std::string msg;
      if (!MapReader::ReadStr(e->via.array.ptr[i], msg)) return Malformed("bad sync job error");
      out.errors.push_back(std::move(msg));
    }
  }
  return out;
}

}  // namespace

Result<uint64_t> DecodeSyncSubmitResult(const msgpack::object* o) {
  uint64_t job = 0;
  MapReader r(o);
  r.Uint("job", job);
  if (!r.ok() || job == 0) return Malformed("bad sync_submit result");
  return job;
}

Result<SyncJob> DecodeSyncStatusResult(const msgpack::object* o) {
  MapReader r(o);
  if (!r.ok()) return Malformed("bad sync_status result");
  return ReadSyncJob(r.Find("job"));
}

Result<std::vector<SyncJob>> DecodeSyncJobsResult(const msgpack::object* o) {
  MapReader r(o);
  const msgpack::object* a = r.Find("jobs");
  if (!r.ok() || a == nullptr || a->type != msgpack::type::ARRAY) {
    return Malformed("bad sync_status result");
  }
  std::vector<SyncJob> out;
  for (uint32_t i = 0; i < a->via.array.size; ++i) {
    auto job = ReadSyncJob(&a->via.array.ptr[i]);
    if (!job) return job.error();
    out.push_back(std::move(*job));
  }
  return out;
}

Result<Unit> DecodeEmptyResult(const msgpack::object* o) {
  MapReader r(o);
  if (!r.ok()) return Malformed("bad result");
  return Unit{};
}

}  // namespace chorus::client::detail
