#include "cluster_meta_sim.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "cluster/map_codec.h"

namespace chorus::cluster::sim {
namespace {

bool Contains(const std::vector<MemberId>& v, MemberId m) {
  return std::find(v.begin(), v.end(), m) != v.end();
}

MemberId IdOf(unsigned i) {
  return i + 1;
}

// CLUSTER_SIM_TRACE=1 prints the chaos, the p0 map changes and the p0 commits.
bool Trace() {
  static const bool on = std::getenv("CLUSTER_SIM_TRACE") != nullptr;
  return on;
}

}  // namespace

Sim::Sim(const SimConfig& config)
    : config_(config),
      rng_(config.seed),
      leader_term_(config.servers, 0),
      inflight_(config.servers, 0),
      alive_(config.servers, true),
      incarnation_(config.servers, 1),
      lease_until_(config.servers, 0),
      lease_min_entries_(config.servers, 0),
      barrier_inflight_(config.servers, false),
      leaving_(config.servers, false),
      exited_(config.servers, false),
      cut_(config.servers, std::vector<bool>(config.servers, false)),
      pending_(config.servers),
      data_(config.servers),
      last_epoch_(config.servers, std::vector<uint64_t>(config.partitions, 0)) {
  if (Trace()) std::cerr << "=== seed " << config.seed << "\n";
  raft_fixture_initialize(&f_);
  for (unsigned i = 0; i < config.servers; ++i) {
    fsms_.push_back(std::make_unique<MetaFsm>());
    fsms_[i]->set_observer([this, i](const MetaFsm& fsm) { OnApplied(i, fsm); });
    ctl_.emplace_back(ControllerConfig{config.dead_after_ms, 4, 0});
    raft_fixture_grow(&f_, fsms_[i]->fsm());
  }
  raft_configuration conf;
  raft_fixture_configuration(&f_, config.servers, &conf);
  raft_fixture_bootstrap(&f_, &conf);
  raft_configuration_close(&conf);
  for (unsigned i = 0; i < config.servers; ++i) {
    raft_set_pre_vote(Raft(i), true);
    // No snapshots here: libraft 0.15's fixture copies the leader's log from index 1 at every
    // step (its Leader Append-Only check), which overflows a heap buffer once the log has been
    // compacted by a snapshot (found with AddressSanitizer). Snapshots are covered on disk by
    // cluster_meta_uv_test and by the codec tests.
    raft_set_snapshot_threshold(Raft(i), 1u << 30);
    raft_fixture_set_randomized_election_timeout(&f_, i, 1000 + rng_() % 500);
    raft_fixture_set_network_latency(&f_, i, 5 + rng_() % 30);
    raft_fixture_set_disk_latency(&f_, i, 2 + rng_() % 15);
  }
  raft_fixture_start(&f_);
}

Sim::~Sim() {
  raft_fixture_close(&f_);
}

void Sim::Fail(const std::string& what) {
  if (violation.empty()) {
    std::ostringstream os;
    os << "seed " << config_.seed << " n=" << config_.servers << " t=" << raft_fixture_time(&f_)
       << ": " << what;
    violation = os.str();
  }
}

bool Sim::Linked(unsigned i, unsigned j) const {
  return i == j ? alive_[i] : alive_[i] && alive_[j] && !cut_[i][j] && !cut_[j][i];
}

bool Sim::SelfAlive(unsigned j) const {
  const Member* m = View(j).FindMember(IdOf(j));
  return m != nullptr && m->state != MemberState::kDead && m->incarnation == incarnation_[j];
}

// A backup acknowledges the primary's position only at the epoch its own map holds (C-13).
bool Sim::Acks(unsigned primary, unsigned backup, PartitionId p, uint64_t epoch) const {
  if (!Linked(primary, backup) || !SelfAlive(backup)) return false;
  const Partition* bp = View(backup).FindPartition(p);
  return bp != nullptr && bp->epoch == epoch;
}

Sim::Data& Sim::DataOf(unsigned j, PartitionId p, uint64_t lineage) {
  Data& d = data_[j][p];
  if (d.lineage != lineage) d = Data{lineage, {}};  // another lineage: the old copy is void
  return d;
}

void Sim::OnApplied(unsigned s, const MetaFsm& fsm) {
  const ClusterMap& map = fsm.map();
  if (Trace() && map.bootstrapped()) {
    std::cerr << "t=" << raft_fixture_time(&f_) << " s" << s << " e" << fsm.entries() << " "
              << map.partitions()[0];
    for (const auto& [id, m] : map.members()) {
      std::cerr << " m" << id << ":" << ToString(m.state) << "/" << m.incarnation;
    }
    std::cerr << "\n";
  }
  std::string bad = map.CheckInvariants();
  if (!bad.empty()) Fail("map invariants on server " + std::to_string(s) + ": " + bad);
  // State machine safety: equal entry counts, equal maps.
  std::string enc = EncodeMap(map);
  auto [it, fresh] = reference_.emplace(fsm.entries(), enc);
  if (!fresh && it->second != enc) {
    Fail("server " + std::to_string(s) + " diverged at entry " + std::to_string(fsm.entries()));
  }
  for (const Partition& p : map.partitions()) {
    if (p.id >= last_epoch_[s].size()) continue;
    if (p.epoch < last_epoch_[s][p.id]) Fail("epoch went back on p" + std::to_string(p.id));
    if (p.epoch > last_epoch_[s][p.id] && last_epoch_[s][p.id] != 0 && fresh) {
      const Member* m = map.FindMember(p.primary);
      (void)m;
    }
    last_epoch_[s][p.id] = p.epoch;
    if (p.primary == 0) continue;
    auto [pe, first] = primary_of_epoch_.emplace(std::make_pair(p.id, p.epoch), p.primary);
    if (!first && pe->second != p.primary) {
      Fail("two primaries for p" + std::to_string(p.id) + " epoch " + std::to_string(p.epoch));
    }
  }
}

void Sim::Report(unsigned leader, unsigned j, int64_t now) {
  (void)now;
  const ClusterMap& view = View(j);
  for (const Partition& p : view.partitions()) {
    if (p.primary != IdOf(j)) continue;
    ReplicaReport rep{p.id, p.primary, p.epoch, p.version, {}, {}, true};
    Data& mine = DataOf(j, p.id, p.lineage);
    for (MemberId r : p.replicas) {
      if (r == p.primary) continue;
      if (Acks(j, r - 1, p.id, p.epoch)) {
        rep.caught_up.push_back(r);
        DataOf(r - 1, p.id, p.lineage) = mine;  // caught up: it holds the primary's line
      } else if (p.IsInSync(r)) {
        rep.lagging.push_back(r);
      }
    }
    std::vector<MemberId> adds;
    for (MemberId r : rep.caught_up) {
      if (!p.IsInSync(r)) adds.push_back(r);
    }
    if (!adds.empty()) {
      Pending& pend = pending_[j][p.id];
      if (pend.version != p.version) pend = Pending{p.version, {}};
      for (MemberId r : adds) {
        if (!Contains(pend.members, r)) pend.members.push_back(r);
      }
    }
    ctl_[leader].OnReport(rep);
  }
}

void Sim::Commit(unsigned j, int64_t now) {
  if (!SelfAlive(j) || lease_until_[j] <= now) return;
  if (fsms_[j]->entries() < lease_min_entries_[j]) return;  // its view is older than the grant
  const ClusterMap& view = View(j);
  for (const Partition& p : view.partitions()) {
    if (p.primary != IdOf(j)) continue;
    std::vector<MemberId> quorum = p.in_sync;
    auto pend = pending_[j].find(p.id);
    if (pend != pending_[j].end()) {
      if (p.version > pend->second.version) {
        pending_[j].erase(pend);  // the map now tells whether the growth applied (C-11)
      } else {
        for (MemberId r : pend->second.members) {
          if (!Contains(quorum, r)) quorum.push_back(r);
        }
      }
    }
    bool ok = true;
    for (MemberId r : quorum) {
      if (r != p.primary && !Acks(j, r - 1, p.id, p.epoch)) ok = false;
    }
    if (!ok) continue;
    // The commit: checks first.
    Data& mine = DataOf(j, p.id, p.lineage);
    auto& line = committed_[{p.id, p.lineage}];
    for (uint64_t pub : line) {
      if (std::find(mine.pubs.begin(), mine.pubs.end(), pub) == mine.pubs.end()) {
        Fail("committed publication " + std::to_string(pub) + " of p" + std::to_string(p.id) +
             " missing on primary " + std::to_string(p.primary) + " epoch " +
             std::to_string(p.epoch));
        return;
      }
    }
    auto [c, first] = committer_.emplace(std::make_pair(p.id, p.epoch), j);
    if (!first && c->second != j) {
      Fail("two primaries committed p" + std::to_string(p.id) + " in epoch " +
           std::to_string(p.epoch));
    }
    uint64_t& max_epoch = max_commit_epoch_[p.id];
    if (p.epoch < max_epoch) {
      Fail("stale primary " + std::to_string(p.primary) + " committed p" + std::to_string(p.id) +
           " at epoch " + std::to_string(p.epoch) + " after epoch " + std::to_string(max_epoch));
    }
    max_epoch = std::max(max_epoch, p.epoch);
    uint64_t pub = ++next_pub_;
    if (Trace() && p.id == 0) {
      std::cerr << "t=" << now << " commit pub " << pub << " by s" << j << " " << p << "\n";
    }
    mine.pubs.push_back(pub);
    line.push_back(pub);
    for (MemberId r : quorum) {
      if (r != p.primary) DataOf(r - 1, p.id, p.lineage) = mine;
    }
    ++stats.commits;
  }
}

void Sim::Tick(int64_t now) {
  const unsigned n = config_.servers;
  // Zombies (C-24): a member that finds itself dead takes a new incarnation and drops its copies.
  for (unsigned j = 0; j < n; ++j) {
    if (!alive_[j]) continue;
    const Member* m = View(j).FindMember(IdOf(j));
    if (m != nullptr && m->state == MemberState::kDead && m->incarnation == incarnation_[j]) {
      ++incarnation_[j];
      data_[j].clear();
      pending_[j].clear();
      leaving_[j] = false;
      if (Trace()) std::cerr << "t=" << now << " zombie s" << j << " new incarnation\n";
    }
  }
  // A leaving member exits once its own map no longer holds it.
  for (unsigned j = 0; j < n; ++j) {
    if (alive_[j] && leaving_[j] && View(j).FindMember(IdOf(j)) == nullptr) {
      raft_fixture_kill(&f_, j);
      alive_[j] = false;
      leaving_[j] = false;
      exited_[j] = true;
      ++stats.exits;
    }
  }
  for (unsigned i = 0; i < n; ++i) {
    raft* r = Raft(i);
    bool leads = alive_[i] && raft_state(r) == RAFT_LEADER;
    if (!leads) {
      leader_term_[i] = 0;
      continue;
    }
    if (leader_term_[i] != r->current_term) {
      leader_term_[i] = r->current_term;
      inflight_[i] = 0;
      ctl_[i].OnElected(now);
    }
    // Heartbeats and reports reach this leader's controller from linked members; the answer
    // renews their commit lease (C-25).
    std::vector<unsigned> grants;
    for (unsigned j = 0; j < n; ++j) {
      if (!Linked(i, j)) continue;
      ctl_[i].OnHeartbeat(Heartbeat{IdOf(j), incarnation_[j], {}, leaving_[j]}, now);
      // The lease is granted only to a member the controller's map does not hold dead, and
      // only for a view at least as new as the controller's (C-25)...
      const Member* m = View(i).FindMember(IdOf(j));
      if (m == nullptr || m->state != MemberState::kDead || m->incarnation != incarnation_[j]) {
        grants.push_back(j);
      }
      if (SelfAlive(j)) Report(i, j, now);
    }
    // ... and only once a Raft barrier started now has committed: a majority confirmed this
    // leader after the heartbeats arrived, so a deposed or revived stale leader grants nothing.
    if (!grants.empty() && !barrier_inflight_[i]) {
      auto* req = new BarrierRequest{};
      req->sim = this;
      req->server = i;
      req->granted_at = now;
      req->min_entries = fsms_[i]->entries();
      req->members = grants;
      req->barrier.data = req;
      if (raft_barrier(r, &req->barrier, &Sim::OnBarrier) == 0) {
        barrier_inflight_[i] = true;
      } else {
        delete req;
      }
    }
    if (inflight_[i] != 0) continue;
    std::vector<Command> cmds;
    if (!View(i).bootstrapped()) {
      cmds.push_back(Bootstrap{config_.partitions, config_.replication_factor});
    } else {
      cmds = ctl_[i].Decide(View(i), now);
    }
    raft_term term = r->current_term;
    bool minority = split_ && minority_.count(i) != 0;
    uint64_t split_id = split_id_;
    for (const Command& cmd : cmds) {
      if (std::holds_alternative<PromoteBackup>(cmd)) ++stats.promotions;
      if (std::holds_alternative<CompleteHandoff>(cmd)) ++stats.handoffs;
      if (const auto* a = std::get_if<AssignPartition>(&cmd)) {
        if (View(i).FindPartition(a->partition)->primary != 0) ++stats.new_lineages;
      }
      if (minority) ++stats.minority_proposals;
      auto submitted = Propose(r, cmd, [this, i, term, minority, split_id](Result<Unit> done) {
        if (leader_term_[i] == term && inflight_[i] > 0) --inflight_[i];
        if (done.ok() && minority && split_ && split_id == split_id_) {
          Fail("the minority side changed the map during a split (server " + std::to_string(i) +
               ")");
        }
      });
      if (submitted.ok()) ++inflight_[i];
    }
  }
  for (unsigned j = 0; j < n; ++j) {
    if (alive_[j]) Commit(j, now);
  }
}

void Sim::OnBarrier(struct raft_barrier* barrier, int status) {
  auto* req = static_cast<BarrierRequest*>(barrier->data);
  Sim* sim = req->sim;
  sim->barrier_inflight_[req->server] = false;
  if (status == 0) {
    for (unsigned j : req->members) {
      int64_t until = req->granted_at + sim->config_.lease_ms;
      if (until > sim->lease_until_[j]) {
        sim->lease_until_[j] = until;
        sim->lease_min_entries_[j] = req->min_entries;
      }
    }
  }
  delete req;
}

// raft_fixture_revive reconnects the server to every live peer: cut links are cut again.
void Sim::Revive(unsigned v) {
  raft_fixture_revive(&f_, v);
  alive_[v] = true;
  for (unsigned j = 0; j < config_.servers; ++j) {
    if (j == v) continue;
    if (cut_[v][j]) raft_fixture_saturate(&f_, v, j);
    if (cut_[j][v]) raft_fixture_saturate(&f_, j, v);
  }
}

void Sim::HealAll() {
  const unsigned n = config_.servers;
  for (unsigned i = 0; i < n; ++i) {
    for (unsigned j = 0; j < n; ++j) {
      if (i == j) continue;
      if (cut_[i][j]) raft_fixture_desaturate(&f_, i, j);
      cut_[i][j] = false;
    }
  }
  split_ = false;
  minority_.clear();
}

void Sim::Chaos(int64_t now) {
  const unsigned n = config_.servers;
  std::vector<unsigned> up, down;
  for (unsigned i = 0; i < n; ++i) (alive_[i] ? up : down).push_back(i);
  switch (rng_() % 7) {
    case 0:  // kill -9 (or SIGSTOP): the server stops; its memory is kept
      if (up.size() > 1) {
        unsigned v = up[rng_() % up.size()];
        raft_fixture_kill(&f_, v);
        alive_[v] = false;
        ++stats.kills;
      }
      break;
    case 1:  // revive: SIGCONT (same incarnation) or a restart (new incarnation, no data)
      if (!down.empty()) {
        unsigned v = down[rng_() % down.size()];
        Revive(v);
        ++stats.revivals;
        if (exited_[v] || rng_() % 2 == 0) {  // a node that left comes back as a new process
          exited_[v] = false;
          leaving_[v] = false;  // SIGTERM's intent died with the process
          ++incarnation_[v];
          data_[v].clear();
          pending_[v].clear();
          ++stats.restarts;
        }
      }
      break;
    case 2:  // split: a minority of the voters loses every link to the rest
      if (!split_) {
        HealAll();
        std::vector<unsigned> all(n);
        for (unsigned i = 0; i < n; ++i) all[i] = i;
        std::shuffle(all.begin(), all.end(), rng_);
        minority_ = std::set<unsigned>(all.begin(), all.begin() + (n - 1) / 2);
        // Entries that exist anywhere now may still commit (their replication messages are in
        // flight); nothing created after the split may reach the minority.
        commit_at_split_ = 0;
        for (unsigned i = 0; i < n; ++i) {
          commit_at_split_ = std::max(commit_at_split_, raft_last_index(Raft(i)));
        }
        for (unsigned a : minority_) {
          for (unsigned b = 0; b < n; ++b) {
            if (minority_.count(b)) continue;
            raft_fixture_saturate(&f_, a, b);
            raft_fixture_saturate(&f_, b, a);
            cut_[a][b] = cut_[b][a] = true;
          }
        }
        split_ = true;
        ++split_id_;
        ++stats.splits;
      }
      break;
    case 3:  // heal
      HealAll();
      break;
    case 4: {  // one-way drop between two servers
      unsigned a = rng_() % n, b = rng_() % n;
      if (a != b && !split_) {
        raft_fixture_saturate(&f_, a, b);
        cut_[a][b] = true;
      }
      break;
    }
    case 5: {  // SIGTERM: a member leaves by handoff (C-20) and exits once removed
      // One rolling restart at a time, and only while the others can hold R replicas.
      unsigned v = rng_() % n;
      size_t staying = 0, leaving = 0;
      for (unsigned i = 0; i < n; ++i) {
        leaving += leaving_[i] || exited_[i];
        staying += alive_[i] && !leaving_[i];
      }
      if (leaving == 0 && staying > config_.replication_factor && alive_[v] &&
          View(v).FindMember(IdOf(v)) != nullptr) {
        leaving_[v] = true;
        ++stats.leaves;
      }
      break;
    }
    default:  // quiet period
      break;
  }
  if (Trace()) {
    std::cerr << "t=" << now << " chaos: alive";
    for (unsigned i = 0; i < n; ++i) std::cerr << ' ' << alive_[i];
    std::cerr << " split=" << split_ << "\n";
  }
  next_chaos_ = now + 500 + static_cast<int64_t>(rng_() % 2500);
}

void Sim::CheckStep() {
  if (!split_) return;
  // The minority side applies nothing that was not committed before the split.
  for (unsigned s : minority_) {
    if (raft_last_applied(Raft(s)) > commit_at_split_) {
      Fail("minority server " + std::to_string(s) + " applied index " +
           std::to_string(raft_last_applied(Raft(s))) + " beyond the pre-split last index " +
           std::to_string(commit_at_split_));
    }
  }
}

bool Sim::Run() {
  int64_t next_tick = config_.tick_ms;
  next_chaos_ = 3000;
  const int64_t chaos_end = config_.chaos_ms;
  const int64_t end = config_.chaos_ms + config_.settle_ms;
  bool settled = false;
  while (violation.empty()) {
    raft_fixture_step(&f_);
    ++stats.steps;
    auto now = static_cast<int64_t>(raft_fixture_time(&f_));
    CheckStep();
    if (now >= end) break;
    if (settled) {
      // Members that finished leaving come back as new processes, so the cluster can settle.
      for (unsigned i = 0; i < config_.servers; ++i) {
        if (!alive_[i] && exited_[i]) {
          Revive(i);
          exited_[i] = false;
          ++incarnation_[i];
          data_[i].clear();
          pending_[i].clear();
        }
      }
    }
    if (!settled && now >= chaos_end) {
      settled = true;
      HealAll();
      for (unsigned i = 0; i < config_.servers; ++i) {
        if (!alive_[i]) {
          Revive(i);
          if (exited_[i]) {
            exited_[i] = false;
            ++incarnation_[i];
            data_[i].clear();
            pending_[i].clear();
          }
        }
      }
    } else if (!settled && now >= next_chaos_) {
      Chaos(now);
    }
    while (now >= next_tick) {
      Tick(next_tick);
      next_tick += config_.tick_ms;
    }
  }
  return violation.empty();
}

std::string Sim::CheckConverged() const {
  std::ostringstream err;
  const ClusterMap& first = View(0);
  for (unsigned i = 1; i < config_.servers; ++i) {
    if (!(View(i) == first)) err << "server " << i << " map differs; ";
  }
  if (!first.bootstrapped()) err << "never bootstrapped; ";
  for (const Partition& p : first.partitions()) {
    const Member* m = first.FindMember(p.primary);
    if (m == nullptr || m->state != MemberState::kAlive)
      err << "p" << p.id << " has no live primary; ";
    if (p.in_sync.size() < std::min<size_t>(config_.replication_factor, config_.servers)) {
      err << "p" << p.id << " in_sync " << p.in_sync.size() << "; ";
    }
  }
  if (!err.str().empty()) {
    err << "\n" << first << "\nalive/incarnation/leaving/exited:";
    for (unsigned i = 0; i < config_.servers; ++i) {
      err << " [" << alive_[i] << "/" << incarnation_[i] << "/" << leaving_[i] << "/" << exited_[i]
          << "]";
    }
  }
  return err.str();
}

}  // namespace chorus::cluster::sim
