// Shared by the CHP convergence fault tests (chp_convergence_test.cc, chp_convergence_faults_
// test.cc): the log of every change the servers published and the watch checker that holds each
// replica's reported stream against it.
//
// The checker (in the manner of etcd's watch checks): every change a replica reports is the
// server's change at that (subtree, epoch, seq), in order, without holes or repeats between
// resets; every reset's content is the server's state at the reset's position, rebuilt from the
// log; and a reset to unborn while the serving server still holds the replica's history (same
// epoch) is a transient wipe (issue 11, agent bug 1), a violation.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chp/replica.h"
#include "chp/store.h"

namespace chorus::chp {

inline std::string ChangeId(std::string_view subtree, std::string_view epoch, uint64_t seq) {
  std::string id(subtree);
  id += '\0';
  id += epoch;
  id += '\0';
  id += std::to_string(seq);
  return id;
}

// Every change any server published, by (subtree, epoch, seq), and each (subtree, epoch)'s
// changes in order, to rebuild its state at any seq.
struct ServerLog {
  struct Entry {
    std::string key;
    Op op;
    size_t value_hash;
  };
  std::unordered_map<std::string, Entry> changes;
  std::unordered_map<std::string, std::vector<std::pair<uint64_t, Entry>>> histories;

  void Add(const Change& c) {
    const Entry e{c.record->key, c.record->op, std::hash<std::string>{}(c.record->value)};
    const bool fresh = changes.emplace(ChangeId(c.subtree, c.epoch, c.record->seq), e).second;
    EXPECT_TRUE(fresh) << "the server reused (subtree, epoch, seq)";
    histories[ChangeId(c.subtree, c.epoch, 0)].emplace_back(c.record->seq, e);
  }

  // The content of (subtree, epoch) at `seq` as key -> (value hash, seq); false when the log
  // does not hold every change up to it.
  using State = std::map<std::string, std::pair<size_t, uint64_t>>;
  bool StateAt(std::string_view subtree, std::string_view epoch, uint64_t seq, State& out) const {
    out.clear();
    auto it = histories.find(ChangeId(subtree, epoch, 0));
    if (it == histories.end()) return seq == 0;
    uint64_t next = 1;
    for (const auto& [s, e] : it->second) {
      if (s > seq) break;
      if (s != next) return false;
      ++next;
      if (e.op == Op::kSet) {
        out[e.key] = {e.value_hash, s};
      } else {
        out.erase(e.key);
      }
    }
    return next == seq + 1;
  }
};

class WatchChecker final : public ReplicaObserver {
 public:
  // `serving_epoch(subtree)`: the epoch under which the server the replica should be following
  // now holds the subtree ("" when it does not hold it).
  WatchChecker(std::string name, const ServerLog& log,
               std::function<std::string(std::string_view)> serving_epoch = {})
      : name_(std::move(name)), log_(log), serving_epoch_(std::move(serving_epoch)) {}

  void OnReset(std::string_view subtree, const Position& p, const EntryMap& entries) override {
    Stream& s = streams_[std::string(subtree)];
    ++resets;
    if (p.epoch.empty()) {
      // A reset to unborn wipes the copy. Legitimate when the server lost the history (a
      // restart, a dropped subtree); a wipe when it still serves the epoch the replica had.
      if (!entries.empty()) Violation() << "unborn reset with entries: " << subtree;
      if (s.known && !s.position.epoch.empty() && serving_epoch_ &&
          serving_epoch_(subtree) == s.position.epoch) {
        Violation() << "transient wipe: " << subtree << " reset to unborn from ("
                    << s.position.epoch << ", " << s.position.seq
                    << ") while the server holds that epoch";
      }
    } else {
      ServerLog::State want;
      if (!log_.StateAt(subtree, p.epoch, p.seq, want)) {
        Violation() << "reset at a position the log cannot rebuild: " << subtree << " (" << p.epoch
                    << ", " << p.seq << ")";
      } else if (!Same(want, entries)) {
        Violation() << "reset content differs from the server's state at " << subtree << " ("
                    << p.epoch << ", " << p.seq << "): " << entries.size() << " entries, want "
                    << want.size();
      }
    }
    s.known = true;
    s.position = p;
    s.shadow = entries;
  }
  void OnChange(std::string_view subtree, std::string_view epoch, const Record& r) override {
    Stream& s = streams_[std::string(subtree)];
    ++changes;
    const bool in_order = s.known && (s.position.epoch.empty() ? r.seq == 1
                                                               : epoch == s.position.epoch &&
                                                                     r.seq == s.position.seq + 1);
    if (!in_order) {
      Violation() << "out of order: " << subtree << " at (" << s.position.epoch << ", "
                  << s.position.seq << ") got (" << epoch << ", " << r.seq << ")";
    }
    auto it = log_.changes.find(ChangeId(subtree, epoch, r.seq));
    if (it == log_.changes.end()) {
      Violation() << "never published: " << subtree << " (" << epoch << ", " << r.seq << ")";
    } else if (it->second.key != r.key || it->second.op != r.op ||
               it->second.value_hash != std::hash<std::string>{}(r.value)) {
      Violation() << "differs from the server's change: " << subtree << " (" << epoch << ", "
                  << r.seq << ") key " << r.key;
    }
    s.known = true;
    s.position = Position{std::string(epoch), r.seq};
    if (r.op == Op::kSet) {
      s.shadow[r.key] = ReplicaEntry{r.value, r.seq};
    } else {
      s.shadow.erase(r.key);
    }
  }

  const EntryMap* Shadow(const std::string& subtree) const {
    auto it = streams_.find(subtree);
    return it == streams_.end() ? nullptr : &it->second.shadow;
  }

  uint64_t resets = 0;
  uint64_t changes = 0;
  uint64_t violations = 0;
  std::vector<std::string> first_violations;

 private:
  struct Stream {
    bool known = false;
    Position position;
    EntryMap shadow;
  };
  struct Sink {
    std::ostringstream os;
    WatchChecker* w;
    ~Sink() {
      if (w->first_violations.size() < 20)
        w->first_violations.push_back(w->name_ + ": " + os.str());
    }
    template <typename T>
    Sink& operator<<(const T& v) {
      os << v;
      return *this;
    }
  };
  Sink Violation() {
    ++violations;
    return Sink{{}, this};
  }
  static bool Same(const ServerLog::State& want, const EntryMap& got) {
    if (want.size() != got.size()) return false;
    for (const auto& [k, e] : got) {
      auto it = want.find(k);
      if (it == want.end() || it->second.first != std::hash<std::string>{}(e.value) ||
          it->second.second != e.seq) {
        return false;
      }
    }
    return true;
  }

  std::string name_;
  const ServerLog& log_;
  std::function<std::string(std::string_view)> serving_epoch_;
  std::map<std::string, Stream> streams_;
};

}  // namespace chorus::chp
