#include "cluster/assignment.h"

#include <algorithm>
#include <map>
#include <set>

namespace chorus::cluster {
namespace {

bool Holds(const Placement& p, MemberId m) {
  return std::find(p.replicas.begin(), p.replicas.end(), m) != p.replicas.end();
}

// Step 1: the previous replicas that are still eligible, at most r of them.
void KeepEligible(const std::vector<Placement>& previous, const std::set<MemberId>& eligible,
                  size_t r, std::vector<Placement>& out) {
  for (size_t p = 0; p < out.size() && p < previous.size(); ++p) {
    for (MemberId m : previous[p].replicas) {
      if (eligible.count(m) != 0 && out[p].replicas.size() < r && !Holds(out[p], m)) {
        out[p].replicas.push_back(m);
      }
    }
  }
}

std::map<MemberId, size_t> Loads(const std::vector<Placement>& out,
                                 const std::vector<MemberId>& members) {
  std::map<MemberId, size_t> load;
  for (MemberId m : members) load[m] = 0;
  for (const Placement& p : out) {
    for (MemberId m : p.replicas) ++load[m];
  }
  return load;
}

// Step 2: members over capacity shed the replicas they score lowest.
void ShedOverCapacity(std::vector<Placement>& out, std::map<MemberId, size_t>& load, size_t cap) {
  for (auto& [m, n] : load) {
    if (n <= cap) continue;
    std::vector<PartitionId> held;
    for (PartitionId p = 0; p < out.size(); ++p) {
      if (Holds(out[p], m)) held.push_back(p);
    }
    std::sort(held.begin(), held.end(),
              [m = m](PartitionId a, PartitionId b) { return Score(a, m) < Score(b, m); });
    for (size_t i = 0; i < held.size() && n > cap; ++i, --n) {
      auto& reps = out[held[i]].replicas;
      reps.erase(std::find(reps.begin(), reps.end(), m));
    }
  }
}

// Step 3: partitions short of replicas take the best-scoring members under capacity (or, when
// none fits, the best-scoring member at all: levelling below corrects it).
void FillMissing(std::vector<Placement>& out, std::map<MemberId, size_t>& load,
                 const std::vector<MemberId>& members, size_t r, size_t cap) {
  for (PartitionId p = 0; p < out.size(); ++p) {
    while (out[p].replicas.size() < r) {
      MemberId best = 0;
      bool best_fits = false;
      for (MemberId m : members) {
        if (Holds(out[p], m)) continue;
        bool fits = load[m] < cap;
        if (best == 0 || (fits && !best_fits) ||
            (fits == best_fits && Score(p, m) > Score(p, best))) {
          best = m;
          best_fits = fits;
        }
      }
      out[p].replicas.push_back(best);
      ++load[best];
    }
  }
}

// Step 4: while a member is under the floor (or one is over the cap), it takes from a member
// above the floor the replica it scores highest.
void Level(std::vector<Placement>& out, std::map<MemberId, size_t>& load, size_t floor,
           size_t cap) {
  for (size_t guard = 0; guard < out.size() * 8; ++guard) {
    MemberId under = 0;
    for (auto& [m, n] : load) {
      if (n < floor && (under == 0 || n < load[under])) under = m;
    }
    MemberId over_cap = 0;
    for (auto& [m, n] : load) {
      if (n > cap && (over_cap == 0 || n > load[over_cap])) over_cap = m;
    }
    if (under == 0 && over_cap != 0) {
      for (auto& [m, n] : load) {
        if (n < cap && (under == 0 || n < load[under])) under = m;
      }
    }
    if (under == 0) return;
    size_t donor_min = over_cap != 0 ? cap : floor;
    PartitionId best_p = 0;
    MemberId best_donor = 0;
    for (PartitionId p = 0; p < out.size(); ++p) {
      if (Holds(out[p], under)) continue;
      for (MemberId d : out[p].replicas) {
        if (load[d] <= donor_min) continue;
        if (best_donor == 0 || Score(p, under) > Score(best_p, under)) {
          best_p = p;
          best_donor = d;
        }
      }
    }
    if (best_donor == 0) return;
    auto& reps = out[best_p].replicas;
    *std::find(reps.begin(), reps.end(), best_donor) = under;
    --load[best_donor];
    ++load[under];
  }
}

// Step 5: primaries. Keep the previous primary while it is a replica and under the primary
// capacity; otherwise the replica with the fewest primaries (ties: higher score); then level.
void ChoosePrimaries(const std::vector<Placement>& previous, std::vector<Placement>& out,
                     const std::vector<MemberId>& members) {
  size_t n = members.size();
  size_t pcap = (out.size() + n - 1) / n;
  size_t pfloor = out.size() / n;
  std::map<MemberId, size_t> pload;
  for (MemberId m : members) pload[m] = 0;
  std::vector<MemberId> primary(out.size(), 0);
  for (PartitionId p = 0; p < out.size() && p < previous.size(); ++p) {
    MemberId prev = previous[p].primary();
    if (prev != 0 && Holds(out[p], prev) && pload[prev] < pcap) {
      primary[p] = prev;
      ++pload[prev];
    }
  }
  for (PartitionId p = 0; p < out.size(); ++p) {
    if (primary[p] != 0 || out[p].replicas.empty()) continue;
    MemberId best = 0;
    for (MemberId m : out[p].replicas) {
      if (best == 0 || pload[m] < pload[best] ||
          (pload[m] == pload[best] && Score(p, m) > Score(p, best))) {
        best = m;
      }
    }
    primary[p] = best;
    ++pload[best];
  }
  // Level: move a primary inside a replica set from a member above the floor (or above the cap)
  // to one below the floor (or below the cap), while that narrows the spread.
  for (size_t guard = 0; guard < out.size() * 4; ++guard) {
    bool moved = false;
    for (PartitionId p = 0; p < out.size() && !moved; ++p) {
      MemberId cur = primary[p];
      if (cur == 0) continue;
      for (MemberId m : out[p].replicas) {
        bool helps =
            (pload[m] < pfloor && pload[cur] > pfloor) || (pload[cur] > pcap && pload[m] < pcap);
        if (m != cur && helps) {
          primary[p] = m;
          --pload[cur];
          ++pload[m];
          moved = true;
          break;
        }
      }
    }
    if (!moved) break;
  }
  for (PartitionId p = 0; p < out.size(); ++p) {
    auto& reps = out[p].replicas;
    auto it = std::find(reps.begin(), reps.end(), primary[p]);
    if (it != reps.end()) std::rotate(reps.begin(), it, it + 1);
  }
}

}  // namespace

std::vector<Placement> Assign(const std::vector<Placement>& previous,
                              const std::vector<MemberId>& eligible_in, uint32_t replication_factor,
                              uint32_t partition_count) {
  std::vector<Placement> out(partition_count);
  std::set<MemberId> eligible_set(eligible_in.begin(), eligible_in.end());
  eligible_set.erase(0);
  std::vector<MemberId> members(eligible_set.begin(), eligible_set.end());
  if (members.empty() || partition_count == 0 || replication_factor == 0) return out;
  size_t n = members.size();
  size_t r = std::min<size_t>(replication_factor, n);
  size_t total = static_cast<size_t>(partition_count) * r;
  size_t cap = (total + n - 1) / n;
  size_t floor = total / n;

  KeepEligible(previous, eligible_set, r, out);
  auto load = Loads(out, members);
  ShedOverCapacity(out, load, cap);
  FillMissing(out, load, members, r, cap);
  Level(out, load, floor, cap);
  ChoosePrimaries(previous, out, members);
  return out;
}

size_t CountMovedReplicas(const std::vector<Placement>& before,
                          const std::vector<Placement>& after) {
  size_t moved = 0;
  for (size_t p = 0; p < after.size(); ++p) {
    for (MemberId m : after[p].replicas) {
      if (p >= before.size() || !Holds(before[p], m)) ++moved;
    }
  }
  return moved;
}

size_t CountMovedPrimaries(const std::vector<Placement>& before,
                           const std::vector<Placement>& after) {
  size_t moved = 0;
  for (size_t p = 0; p < after.size(); ++p) {
    MemberId b = p < before.size() ? before[p].primary() : 0;
    if (b != after[p].primary()) ++moved;
  }
  return moved;
}

}  // namespace chorus::cluster
