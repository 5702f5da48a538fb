// Helpers shared by the replica unit tests.
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "chp/replica.h"

namespace chorus::chp {

// Readable gtest failure messages.
inline void PrintTo(SubtreeReplica::State s, std::ostream* os) {
  *os << StateName(s);
}
inline void PrintTo(const ReplicaEntry& e, std::ostream* os) {
  *os << "{value=" << ::testing::PrintToString(e.value) << ", seq=" << e.seq << "}";
}

}  // namespace chorus::chp

namespace chorus::chp::testing_support {

// Records every observer call.
class Recorder : public ReplicaObserver {
 public:
  struct Reset {
    std::string subtree;
    Position position;
    EntryMap entries;
  };
  struct Change {
    std::string subtree;
    std::string epoch;
    Record record;
  };
  void OnReset(std::string_view subtree, const Position& position,
               const EntryMap& entries) override {
    resets.push_back({std::string(subtree), position, entries});
  }
  void OnChange(std::string_view subtree, std::string_view epoch, const Record& record) override {
    changes.push_back({std::string(subtree), std::string(epoch), record});
  }
  std::vector<uint64_t> ChangeSeqs() const {
    std::vector<uint64_t> out;
    for (const Change& c : changes) out.push_back(c.record.seq);
    return out;
  }

  std::vector<Reset> resets;
  std::vector<Change> changes;
};

inline Record SetRec(std::string key, std::string value, uint64_t seq) {
  return Record{std::move(key), Op::kSet, std::move(value), 0, seq};
}
inline Record DelRec(std::string key, uint64_t seq) {
  return Record{std::move(key), Op::kDelete, "", 0, seq};
}

}  // namespace chorus::chp::testing_support
