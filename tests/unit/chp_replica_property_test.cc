// Property test: a SubtreeReplica fed a lossy update stream from a Store, with resyncs served by
// Store::ResumeFrom or a full snapshot of the store's entries, converges on the store's content.
// The "network" delays requests and replies, drops updates and POSITIONs, loses requests and
// restarts the server (new epoch); everything is driven by a fixed seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "chp/replica.h"
#include "chp/store.h"
#include "chp_replica_support.h"

namespace chorus::chp {
namespace {

using Map = std::map<std::string, std::pair<std::string, uint64_t>>;  // key -> (value, seq)

// Applies what the observer sees to its own map: checks the observer stream is complete.
class Mirror : public ReplicaObserver {
 public:
  void OnReset(std::string_view, const Position&, const EntryMap& entries) override {
    values.clear();
    for (const auto& [k, e] : entries) values[k] = e.value;
  }
  void OnChange(std::string_view, std::string_view, const Record& r) override {
    if (r.op == Op::kSet) {
      values[r.key] = r.value;
    } else {
      values.erase(r.key);
    }
  }
  std::map<std::string, std::string> values;
};

Map FromReplica(const EntryMap& m) {
  Map out;
  for (const auto& [k, e] : m) out[k] = {e.value, e.seq};
  return out;
}

class Simulation {
 public:
  explicit Simulation(uint64_t seed) : rng_(seed) { Restart(); }

  void Run(int steps) {
    for (int i = 0; i < steps; ++i) {
      Step();
      CheckInvariant();
      if (::testing::Test::HasFatalFailure()) return;
    }
    Converge();
  }

  const ReplicaStats& stats() const { return replica_.stats(); }
  int restarts() const { return restarts_; }
  int checks() const { return checks_; }

 private:
  struct Reply {
    std::deque<std::vector<Record>> batches;
    Kthxbai end;
  };

  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  uint64_t Uniform(uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }

  void Restart() {
    StoreOptions o;
    o.backlog_records = 24;
    o.new_epoch = [this] { return "epoch" + std::to_string(++epochs_); };
    store_ = std::make_unique<Store>(std::move(o));
    ++restarts_;
  }

  void Publish(const std::string& epoch, const Record& r) {
    if (Chance(drop_)) return;
    replica_.OnUpdate(epoch, r, &mirror_);
  }

  void ApplyRandomOp() {
    const std::string key = "k" + std::to_string(Uniform(0, 39));
    Result<Store::Applied> r = Errc::kMalformed;
    if (Chance(0.7)) {
      std::string value(Uniform(0, 8), '\0');
      for (char& c : value) c = static_cast<char>(Uniform(0, 255));
      const uint64_t ttl = Chance(0.2) ? Uniform(1, 60) : 0;
      r = store_->Apply("sub", key, Op::kSet, value, ttl, now_);
    } else {
      r = store_->Apply("sub", key, Op::kDelete, "", 0, now_);
    }
    ASSERT_TRUE(r.ok());
    if (r->changed) {
      RecordHistory(r->position);
      Publish(r->position.epoch, r->record);
    }
  }

  Reply Serve(const Icanhaz& req) {
    Reply out;
    std::vector<Record> records;
    SyncMode mode = SyncMode::kResume;
    if (req.from.epoch.empty() || !store_->ResumeFrom("sub", req.from, records)) {
      mode = SyncMode::kSnapshot;
      records.clear();
      if (const Subtree* st = store_->Find("sub")) {
        for (const auto& [k, e] : st->entries) {
          records.push_back({k, Op::kSet, e.value, Store::RemainingTtl(e, now_), e.seq});
        }
      }
    }
    out.end = Kthxbai{req.request_id, "sub", store_->PositionOf("sub"), records.size(), mode};
    // Split into random batches, possibly with empty ones.
    while (!records.empty()) {
      const size_t n = std::min<size_t>(records.size(), Uniform(0, 10));
      out.batches.emplace_back(records.begin(), records.begin() + static_cast<ptrdiff_t>(n));
      records.erase(records.begin(), records.begin() + static_cast<ptrdiff_t>(n));
    }
    return out;
  }

  // Delivers one batch, or the terminator when no batch is left. True when the reply is done.
  bool DeliverPart(Reply& reply) {
    if (!reply.batches.empty()) {
      replica_.OnSyncRecords(reply.end.request_id, std::move(reply.batches.front()));
      reply.batches.pop_front();
      return false;
    }
    replica_.OnSyncEnd(reply.end, &mirror_);
    return true;
  }

  void Step() {
    now_ += static_cast<int64_t>(Uniform(0, 3));
    store_->Expire(now_, [&](const Change& c) {
      RecordHistory({std::string(c.epoch), c.record->seq});
      Publish(std::string(c.epoch), *c.record);
    });

    const uint64_t action = Uniform(0, 99);
    if (action < 70) {
      ApplyRandomOp();
    } else if (action < 76) {
      if (!Chance(drop_)) replica_.OnPosition(store_->PositionOf("sub"));
    } else if (action < 77 && Chance(0.15)) {
      Restart();
      if (Chance(0.5)) {
        // The agent noticed (new connection): everything in flight is gone.
        replica_.OnResubscribe();
        in_flight_.reset();
        reply_.reset();
      } else if (in_flight_) {
        in_flight_.reset();  // the dead server never answers
        replica_.OnRequestFailed();
      }
    }

    if (replica_.state() == SubtreeReplica::State::kWaitSubscribe && Chance(0.3)) {
      replica_.OnSubscribed();
    }
    if (replica_.state() == SubtreeReplica::State::kNeedSync && !in_flight_ && Chance(0.5)) {
      // A reply to an abandoned request may still arrive (and must be ignored): keep it sometimes.
      if (Chance(0.5)) reply_.reset();
      in_flight_ = replica_.MakeRequest(++next_request_);
    }
    if (in_flight_ && Chance(0.3)) {
      if (Chance(0.05)) {
        replica_.OnRequestFailed();  // lost request or timeout
      } else {
        reply_ = Serve(*in_flight_);
      }
      in_flight_.reset();
    }
    if (reply_ && Chance(0.4) && DeliverPart(*reply_)) reply_.reset();
  }

  // The store's content after each change, by epoch and sequence (index 0: empty).
  void RecordHistory(const Position& p) {
    std::vector<Map>& h = history_[p.epoch];
    if (h.empty()) h.emplace_back();
    ASSERT_EQ(h.size(), p.seq);  // sequences are consecutive from 1
    h.push_back(StoreMap());
  }

  // Safety: a live replica holds exactly what the store held at the replica's position, and
  // its observer saw the same content.
  void CheckInvariant() {
    if (!replica_.live()) return;
    const Position& p = replica_.position();
    const Map want = p.epoch.empty() ? Map{} : history_.at(p.epoch).at(p.seq);
    ASSERT_EQ(FromReplica(replica_.entries()), want) << "at position " << p;
    ASSERT_EQ(mirror_.values, Values(replica_.entries())) << "at position " << p;
    ++checks_;
  }

  void Converge() {
    drop_ = 0;
    for (int round = 0; round < 50; ++round) {
      if (replica_.live() && replica_.position() == store_->PositionOf("sub")) break;
      if (replica_.state() == SubtreeReplica::State::kWaitSubscribe) replica_.OnSubscribed();
      if (replica_.live()) replica_.OnPosition(store_->PositionOf("sub"));
      if (replica_.state() == SubtreeReplica::State::kNeedSync) {
        in_flight_ = replica_.MakeRequest(++next_request_);
      }
      if (in_flight_) {
        reply_ = Serve(*in_flight_);
        in_flight_.reset();
      }
      while (reply_ && !DeliverPart(*reply_)) {
      }
      reply_.reset();
    }
    ASSERT_TRUE(replica_.live()) << StateName(replica_.state());
    ASSERT_EQ(replica_.position(), store_->PositionOf("sub"));
    EXPECT_EQ(FromReplica(replica_.entries()), StoreMap());
    EXPECT_EQ(mirror_.values, Values(replica_.entries()));
  }

  Map StoreMap() const {
    Map out;
    if (const Subtree* st = store_->Find("sub")) {
      for (const auto& [k, e] : st->entries) out[k] = {e.value, e.seq};
    }
    return out;
  }
  static std::map<std::string, std::string> Values(const EntryMap& m) {
    std::map<std::string, std::string> out;
    for (const auto& [k, e] : m) out[k] = e.value;
    return out;
  }

  std::mt19937_64 rng_;
  int epochs_ = 0;
  int restarts_ = 0;
  int checks_ = 0;
  std::map<std::string, std::vector<Map>> history_;
  std::unique_ptr<Store> store_;
  SubtreeReplica replica_{"sub", /*max_queue=*/16};
  Mirror mirror_;
  int64_t now_ = 0;
  uint64_t next_request_ = 0;
  std::optional<Icanhaz> in_flight_;
  std::optional<Reply> reply_;
  double drop_ = 0.05;
};

TEST(ReplicaProperty, ConvergesOnStoreContent) {
  ReplicaStats total;
  int restarts = 0;
  for (uint64_t seed : {1u, 2u, 3u, 42u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Simulation sim(seed);
    sim.Run(3000);
    if (HasFatalFailure()) return;
    const ReplicaStats& s = sim.stats();
    total.snapshots += s.snapshots;
    total.resumes += s.resumes;
    total.gaps += s.gaps;
    total.epoch_changes += s.epoch_changes;
    total.behind += s.behind;
    total.rejected += s.rejected;
    total.stale += s.stale;
    total.overflows += s.overflows;
    total.failed_requests += s.failed_requests;
    restarts += sim.restarts() - 1;
    EXPECT_GT(sim.checks(), 1000);  // the safety invariant was checked on live states
  }
  // The run must have exercised every recovery path, or it proves little.
  EXPECT_GT(total.snapshots, 4u);
  EXPECT_GT(total.resumes, 0u);
  EXPECT_GT(total.gaps, 0u);
  EXPECT_GT(total.epoch_changes, 0u);
  EXPECT_GT(total.behind, 0u);
  EXPECT_GT(total.stale, 0u);
  EXPECT_GT(total.overflows, 0u);
  EXPECT_GT(total.failed_requests, 0u);
  EXPECT_GT(restarts, 0);
  std::printf(
      "snapshots=%llu resumes=%llu gaps=%llu epoch_changes=%llu behind=%llu rejected=%llu "
      "stale=%llu overflows=%llu failed=%llu restarts=%d\n",
      static_cast<unsigned long long>(total.snapshots),
      static_cast<unsigned long long>(total.resumes), static_cast<unsigned long long>(total.gaps),
      static_cast<unsigned long long>(total.epoch_changes),
      static_cast<unsigned long long>(total.behind),
      static_cast<unsigned long long>(total.rejected), static_cast<unsigned long long>(total.stale),
      static_cast<unsigned long long>(total.overflows),
      static_cast<unsigned long long>(total.failed_requests), restarts);
}

}  // namespace
}  // namespace chorus::chp
