// Scheduler::ExportState / Restore: the scheduler's state as CHP key/values
// (docs/scheduler.md, "Replication as CHP key/values"). Values are msgpack arrays whose first
// element is the format version (1).
#include <msgpack.hpp>

#include <algorithm>
#include <charconv>
#include <tuple>

#include "broker/scheduler/scheduler.h"

namespace chorus::broker::scheduler {
namespace {

constexpr uint32_t kFormat = 1;
constexpr std::string_view kPrefix = "sync:";

using Packer = msgpack::packer<msgpack::sbuffer>;

std::string Str(const msgpack::sbuffer& b) {
  return std::string(b.data(), b.size());
}

// Reads one msgpack array element by element, checking types; any mismatch sets !ok().
class Reader {
 public:
  explicit Reader(const std::string& bytes) {
    try {
      handle_ = msgpack::unpack(bytes.data(), bytes.size());
    } catch (const std::exception&) {  // the library throws on malformed input: the boundary
      return;
    }
    const msgpack::object& o = handle_.get();
    if (o.type != msgpack::type::ARRAY) return;
    items_ = o.via.array.ptr;
    size_ = o.via.array.size;
    ok_ = true;
  }
  bool ok() const { return ok_; }
  const msgpack::object* Next() {
    if (!ok_ || pos_ >= size_) {
      ok_ = false;
      return nullptr;
    }
    return &items_[pos_++];
  }
  uint64_t U64() {
    const auto* o = Next();
    if (!o || o->type != msgpack::type::POSITIVE_INTEGER) return Fail<uint64_t>();
    return o->via.u64;
  }
  int64_t I64() {
    const auto* o = Next();
    if (o && o->type == msgpack::type::NEGATIVE_INTEGER) return o->via.i64;
    if (!o || o->type != msgpack::type::POSITIVE_INTEGER || o->via.u64 > INT64_MAX) {
      return Fail<int64_t>();
    }
    return static_cast<int64_t>(o->via.u64);
  }
  bool Bool() {
    const auto* o = Next();
    if (!o || o->type != msgpack::type::BOOLEAN) return Fail<bool>();
    return o->via.boolean;
  }
  std::string String() {
    const auto* o = Next();
    if (!o || o->type != msgpack::type::STR) return Fail<std::string>();
    return std::string(o->via.str.ptr, o->via.str.size);
  }
  // The elements of a nested array (for errors), or !ok().
  std::vector<std::string> Strings() {
    const auto* o = Next();
    std::vector<std::string> out;
    if (!o || o->type != msgpack::type::ARRAY) return Fail<std::vector<std::string>>();
    for (uint32_t i = 0; i < o->via.array.size; ++i) {
      const auto& e = o->via.array.ptr[i];
      if (e.type != msgpack::type::STR) return Fail<std::vector<std::string>>();
      out.emplace_back(e.via.str.ptr, e.via.str.size);
    }
    return out;
  }
  bool AtEnd() const { return ok_ && pos_ == size_; }

 private:
  template <typename T>
  T Fail() {
    ok_ = false;
    return T{};
  }
  msgpack::object_handle handle_;
  const msgpack::object* items_ = nullptr;
  uint32_t size_ = 0, pos_ = 0;
  bool ok_ = false;
};

bool ParseId(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && *out > 0;
}

}  // namespace

std::vector<StateEntry> Scheduler::ExportState() const {
  std::vector<JobId> ids;
  for (const auto& [id, job] : jobs_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  std::vector<StateEntry> out;
  for (JobId id : ids) {
    const JobEntry& job = jobs_.at(id);
    const JobInfo& in = job.info;
    const std::string base = std::string(kPrefix) + in.spec.user + "/";
    msgpack::sbuffer b;
    Packer p(b);
    p.pack_array(10);
    p.pack(kFormat);
    p.pack(in.spec.tier);
    p.pack(in.spec.source);
    p.pack(in.spec.catalog);
    p.pack(static_cast<uint32_t>(in.state));
    const auto& n = in.counts;
    p.pack_array(8);
    for (uint64_t v : {n.tasks_total, n.tasks_done, n.tasks_failed, n.retries, n.leases_expired,
                       n.items_total, n.items_done, n.items_failed}) {
      p.pack(v);
    }
    p.pack(in.errors);
    p.pack(in.errors_dropped);
    p.pack(in.submitted_ms);
    p.pack(in.finished_ms);
    out.push_back({base + "job/" + std::to_string(id), Str(b)});
    std::vector<TaskId> tasks(job.tasks);
    std::sort(tasks.begin(), tasks.end());
    for (TaskId tid : tasks) {
      const Task& t = tasks_.at(tid);
      if (t.state == TaskState::kDone || t.state == TaskState::kFailed) continue;
      msgpack::sbuffer tb;
      Packer tp(tb);
      tp.pack_array(6);
      tp.pack(kFormat);
      tp.pack(t.spec.kind);
      tp.pack(t.spec.payload);
      tp.pack(t.spec.final);
      tp.pack(t.attempts);
      tp.pack(t.state == TaskState::kBackoff ? t.not_before_ms : int64_t{0});
      out.push_back({base + "task/" + std::to_string(id) + "/" + std::to_string(tid), Str(tb)});
    }
  }
  return out;
}

Result<std::unique_ptr<Scheduler>> Scheduler::Restore(SchedulerConfig config,
                                                      const std::vector<StateEntry>& state,
                                                      int64_t now) {
  auto s = std::make_unique<Scheduler>(std::move(config));
  struct Parsed {
    std::string user;
    uint64_t job = 0, task = 0;  // task 0: a job entry
    const std::string* value;
  };
  std::vector<Parsed> parsed;
  for (const auto& e : state) {
    std::string_view k = e.key;
    if (k.substr(0, kPrefix.size()) != kPrefix) return Errc::kBadRequest;
    k.remove_prefix(kPrefix.size());
    const size_t slash = k.find('/');
    if (slash == std::string_view::npos) return Errc::kBadRequest;
    Parsed p{std::string(k.substr(0, slash)), 0, 0, &e.value};
    std::string_view rest = k.substr(slash + 1);
    if (rest.substr(0, 4) == "job/") {
      if (!ParseId(rest.substr(4), &p.job)) return Errc::kBadRequest;
    } else if (rest.substr(0, 5) == "task/") {
      rest.remove_prefix(5);
      const size_t s2 = rest.find('/');
      if (s2 == std::string_view::npos || !ParseId(rest.substr(0, s2), &p.job) ||
          !ParseId(rest.substr(s2 + 1), &p.task)) {
        return Errc::kBadRequest;
      }
    } else {
      return Errc::kBadRequest;
    }
    parsed.push_back(std::move(p));
  }
  // Jobs before tasks, each in id order (task order is queue order).
  std::sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) {
    return std::make_pair(a.task != 0, a.task ? a.task : a.job) <
           std::make_pair(b.task != 0, b.task ? b.task : b.job);
  });
  for (const auto& p : parsed) {
    Result<Unit> r = p.task == 0 ? s->RestoreJob(p.user, p.job, *p.value)
                                 : s->RestoreTask(p.user, p.job, p.task, *p.value, now);
    if (!r) return r.error();
  }
  s->FinishRestore(now);
  return s;
}

Result<Unit> Scheduler::RestoreJob(const std::string& user, JobId id, const std::string& value) {
  Reader r(value);
  if (r.U64() != kFormat || jobs_.count(id)) return Errc::kBadRequest;
  JobInfo in;
  in.id = id;
  in.spec.user = user;
  in.spec.tier = r.String();
  in.spec.source = r.String();
  in.spec.catalog = r.String();
  const uint64_t state = r.U64();
  auto& n = in.counts;
  const auto* counts = r.Next();
  if (!counts || counts->type != msgpack::type::ARRAY || counts->via.array.size != 8) {
    return Errc::kBadRequest;
  }
  uint64_t* fields[] = {&n.tasks_total,    &n.tasks_done,  &n.tasks_failed, &n.retries,
                        &n.leases_expired, &n.items_total, &n.items_done,   &n.items_failed};
  for (uint32_t i = 0; i < 8; ++i) {
    const auto& o = counts->via.array.ptr[i];
    if (o.type != msgpack::type::POSITIVE_INTEGER) return Errc::kBadRequest;
    *fields[i] = o.via.u64;
  }
  in.errors = r.Strings();
  in.errors_dropped = r.U64();
  in.submitted_ms = r.I64();
  in.finished_ms = r.I64();
  if (!r.AtEnd() || state > static_cast<uint64_t>(JobState::kCancelled)) return Errc::kBadRequest;
  in.state = static_cast<JobState>(state);
  // The same checks as Submit, so restored state is as valid as submitted state.
  if (!IsValidUser(in.spec.user)) return Errc::kBadRequest;
  auto tier = quantum_by_tier_.find(in.spec.tier);
  if (tier == quantum_by_tier_.end()) return Errc::kUnknownTier;
  if (!IsFinal(in.state)) {
    UserQueue& uq = users_[user];
    uq.quantum = tier->second;
    uq.tier = in.spec.tier;
  }
  JobEntry& job = jobs_[id];
  job.info = std::move(in);
  if (InBlock(id)) next_job_ = std::max(next_job_, id + 1);
  if (IsFinal(job.info.state)) finished_jobs_.push_back(id);
  return Unit{};
}

Result<Unit> Scheduler::RestoreTask(const std::string& user, JobId job_id, TaskId id,
                                    const std::string& value, int64_t now) {
  Reader r(value);
  if (r.U64() != kFormat) return Errc::kBadRequest;
  TaskSpec spec;
  spec.kind = r.String();
  spec.payload = r.String();
  spec.final = r.Bool();
  const uint64_t attempts = r.U64();
  const int64_t not_before = r.I64();
  if (!r.AtEnd() || attempts > UINT32_MAX) return Errc::kBadRequest;
  if (auto v = ValidateTask(spec); !v) return v.error();
  auto jit = jobs_.find(job_id);
  if (jit == jobs_.end() || jit->second.info.spec.user != user || IsFinal(jit->second.info.state) ||
      tasks_.count(id)) {
    return Errc::kBadRequest;
  }
  JobEntry& job = jit->second;
  Task& t = tasks_[id];
  t.id = id;
  t.job = job_id;
  t.spec = std::move(spec);
  t.attempts = static_cast<uint32_t>(attempts);
  job.tasks.push_back(id);
  ++live_tasks_;
  if (InBlock(id)) next_task_ = std::max(next_task_, id + 1);
  if (t.spec.final) {
    t.state = TaskState::kPending;
    job.held_final.push_back(id);
  } else if (not_before > now) {
    ++job.unfinished_nonfinal;
    t.state = TaskState::kBackoff;
    t.not_before_ms = not_before;
    backoff_.insert({not_before, id});
    ++counters_.backoff;
  } else {
    ++job.unfinished_nonfinal;
    MakeReady(t);
  }
  return Unit{};
}

void Scheduler::FinishRestore(int64_t now) {
  std::vector<JobId> ids;
  for (const auto& [id, job] : jobs_) ids.push_back(id);
  FinishAdopt(ids, now);
}

void Scheduler::FinishAdopt(const std::vector<JobId>& ids, int64_t now) {
  for (JobId id : ids) {
    JobEntry& job = jobs_.at(id);
    if (IsFinal(job.info.state)) continue;
    auto& n = job.info.counts;
    n.tasks_running = 0;
    n.tasks_total = n.tasks_done + n.tasks_failed + job.tasks.size();  // what is really there
    MaybeFinishJob(job, now);
  }
  Forget();
}

Result<std::vector<JobId>> Scheduler::Adopt(const std::vector<StateEntry>& state, int64_t now) {
  // Checked in full first on a scratch scheduler, so a refusal changes nothing here.
  auto scratch = Restore(config_, state, now);
  if (!scratch) return scratch.error();
  for (const auto& [id, job] : (*scratch)->jobs_) {
    if (jobs_.count(id) != 0) return Errc::kBadRequest;
    for (TaskId t : job.tasks) {
      if (tasks_.count(t) != 0) return Errc::kBadRequest;
    }
  }
  std::vector<StateEntry> jobs, tasks;
  for (const auto& e : state)
    (e.key.find("/job/") != std::string::npos ? jobs : tasks).push_back(e);
  std::vector<JobId> adopted;
  for (const auto& [id, job] : (*scratch)->jobs_) adopted.push_back(id);
  std::sort(adopted.begin(), adopted.end());
  // The scratch run proved every entry valid and its ids free: re-apply them here in the same
  // order (jobs, then tasks by id).
  for (const auto& e : jobs) {
    const std::string_view k = e.key;
    const size_t slash = k.find('/');
    const std::string user(k.substr(kPrefix.size(), slash - kPrefix.size()));
    uint64_t id = 0;
    (void)ParseId(k.substr(k.rfind('/') + 1), &id);
    if (auto r = RestoreJob(user, id, e.value); !r) return r.error();  // not reached: checked
  }
  std::vector<std::tuple<uint64_t, uint64_t, std::string, const std::string*>> ts;
  for (const auto& e : tasks) {
    const std::string_view k = e.key;
    const size_t slash = k.find('/');
    const std::string user(k.substr(kPrefix.size(), slash - kPrefix.size()));
    std::string_view rest = k.substr(slash + 1 + 5);  // "task/"
    const size_t s2 = rest.find('/');
    uint64_t job = 0, task = 0;
    (void)ParseId(rest.substr(0, s2), &job);
    (void)ParseId(rest.substr(s2 + 1), &task);
    ts.emplace_back(task, job, user, &e.value);
  }
  std::sort(ts.begin(), ts.end());
  for (const auto& [task, job, user, value] : ts) {
    if (auto r = RestoreTask(user, job, task, *value, now); !r) return r.error();
  }
  FinishAdopt(adopted, now);
  return adopted;
}

}  // namespace chorus::broker::scheduler
