// Scheduler state <-> CHP records (state_records.h).
#include "broker/scheduler/state_records.h"

#include <msgpack.hpp>

namespace chorus::broker::scheduler {
namespace {

constexpr std::string_view kSubtreePrefix = "s.";
constexpr std::string_view kStatePrefix = "sync:";  // ExportState's keys: sync:<user>/...

using Packer = msgpack::packer<msgpack::sbuffer>;

void Key(Packer& p, std::string_view k) {
  p.pack_str(static_cast<uint32_t>(k.size()));
  p.pack_str_body(k.data(), static_cast<uint32_t>(k.size()));
}

std::string Str(const msgpack::sbuffer& b) {
  return std::string(b.data(), b.size());
}

}  // namespace

std::string UserSubtree(std::string_view user) {
  return std::string(kSubtreePrefix) + std::string(user);
}

std::string UserOfSubtree(std::string_view subtree) {
  if (subtree.substr(0, kSubtreePrefix.size()) != kSubtreePrefix) return {};
  std::string user(subtree.substr(kSubtreePrefix.size()));
  return IsValidUser(user) ? user : std::string();
}

std::vector<ChpRecord> ToChpRecords(const Scheduler& s,
                                    const std::function<uint64_t(TaskId)>& worker_of) {
  std::vector<ChpRecord> out;
  for (StateEntry& e : s.ExportState()) {
    // sync:<user>/<rest> -> s.<user>/<rest>
    out.push_back(
        {std::string(kSubtreePrefix) + e.key.substr(kStatePrefix.size()), std::move(e.value)});
  }
  for (const Scheduler::QueueView& q : s.Queues()) {
    msgpack::sbuffer b;
    Packer p(b);
    p.pack_map(8);
    Key(p, "tier"), p.pack(q.tier);
    Key(p, "quantum"), p.pack(q.quantum);
    Key(p, "ready"), p.pack(q.ready);
    Key(p, "running"), p.pack(q.running);
    Key(p, "backoff"), p.pack(q.backoff);
    Key(p, "held"), p.pack(q.held);
    Key(p, "jobs"), p.pack(q.jobs_live);
    Key(p, "node_slots"), p.pack(s.slots());
    out.push_back({UserSubtree(q.user) + "/queue", Str(b)});
  }
  for (const Scheduler::LeaseView& l : s.Leases()) {
    msgpack::sbuffer b;
    Packer p(b);
    p.pack_map(6);
    Key(p, "job"), p.pack(l.job);
    Key(p, "kind"), p.pack(l.kind);
    Key(p, "token"), p.pack(l.token);
    Key(p, "slot"), p.pack(l.slot);
    Key(p, "attempt"), p.pack(l.attempt);
    Key(p, "worker"), p.pack(worker_of ? worker_of(l.task) : uint64_t{0});
    out.push_back({UserSubtree(l.user) + "/lease/" + std::to_string(l.task), Str(b)});
  }
  return out;
}

Result<std::vector<StateEntry>> FromChpRecords(std::string_view user,
                                               const std::vector<ChpRecord>& records) {
  if (!IsValidUser(std::string(user))) return Errc::kBadRequest;
  const std::string prefix = UserSubtree(user) + "/";
  std::vector<StateEntry> out;
  for (const ChpRecord& r : records) {
    std::string_view k = r.key;
    if (k.substr(0, prefix.size()) == prefix) k.remove_prefix(prefix.size());
    if (k == "queue" || k.substr(0, 6) == "lease/") continue;
    if (k.substr(0, 4) != "job/" && k.substr(0, 5) != "task/") return Errc::kBadRequest;
    out.push_back({std::string(kStatePrefix) + std::string(user) + "/" + std::string(k), r.value});
  }
  return out;
}

void StateMirror::Assume(const std::vector<ChpRecord>& records) {
  for (const ChpRecord& r : records) held_[r.key] = r.value;
}

StateMirror::Changes StateMirror::Diff(const std::vector<ChpRecord>& now, size_t max) {
  Changes c;
  std::map<std::string_view, const std::string*> current;
  for (const ChpRecord& r : now) current[r.key] = &r.value;
  for (auto it = held_.begin(); it != held_.end();) {
    if (current.count(it->first) != 0) {
      ++it;
      continue;
    }
    if (c.erases.size() + c.sets.size() >= max) {
      c.more = true;
      return c;
    }
    c.erases.push_back(it->first);
    it = held_.erase(it);
  }
  for (const auto& [key, value] : current) {
    auto it = held_.find(std::string(key));
    if (it != held_.end() && it->second == *value) continue;
    if (c.erases.size() + c.sets.size() >= max) {
      c.more = true;
      return c;
    }
    c.sets.push_back({std::string(key), *value});
    held_[std::string(key)] = *value;
  }
  return c;
}

}  // namespace chorus::broker::scheduler
