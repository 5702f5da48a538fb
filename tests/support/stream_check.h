// A checker of recorded client streams, as etcd's watch tests check theirs (issue 12 "Tests"):
// every stream is ordered, has no duplicate and no gap unless the client was told
// `recovered: false`, and every (epoch, offset) carries one payload across every stream,
// acknowledgement and history the test saw. GoogleTest-free: it returns the violations.
//
// A stream is the sequence of what one client saw on one channel, across its reconnects:
//   Subscribed{epoch, after, recovered}  a subscribe answer; `after`: the position asked for
//                                        when it recovered, else the answer's offset
//   Publication{offset, payload}         a publication, recovered or live, in arrival order
// Rules: a publication follows a Subscribed; within a subscription the offsets are after+1,
// +2, ...; a `recovered: true` subscribe after another one resumes the same epoch from the last
// offset seen; only `recovered: false` (or a first subscribe) may start anywhere.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace chorus::testing {

struct StreamEvent {
  enum class Kind { kSubscribed, kPublication };
  Kind kind = Kind::kPublication;
  std::string epoch;  // kSubscribed
  // kSubscribed: the offset after which this subscription's publications come (the position
  // asked for when recovering, else the answer's offset); kPublication: its offset.
  uint64_t offset = 0;
  bool recovered = false;  // kSubscribed: the answer's `recovered`
  std::string payload;     // kPublication, canonical text
  static StreamEvent Subscribed(std::string epoch, uint64_t after, bool recovered) {
    StreamEvent e;
    e.kind = Kind::kSubscribed;
    e.epoch = std::move(epoch);
    e.offset = after;
    e.recovered = recovered;
    return e;
  }
  static StreamEvent Publication(uint64_t offset, std::string payload) {
    StreamEvent e;
    e.offset = offset;
    e.payload = std::move(payload);
    return e;
  }
};

// One payload per (epoch, offset), over everything a test saw.
class PayloadTruth {
 public:
  // "" when consistent, else the violation (naming `who`).
  std::string See(const std::string& epoch, uint64_t offset, const std::string& payload,
                  const std::string& who) {
    auto [it, fresh] = seen_.emplace(std::make_pair(epoch, offset), std::make_pair(payload, who));
    if (fresh || it->second.first == payload) return "";
    return who + ": (" + epoch + ", " + std::to_string(offset) + ") carries " + payload + ", " +
           it->second.second + " saw " + it->second.first;
  }
  size_t size() const { return seen_.size(); }

 private:
  std::map<std::pair<std::string, uint64_t>, std::pair<std::string, std::string>> seen_;
};

// The violations of one stream (empty when it is fine); payloads are checked against `truth`.
inline std::vector<std::string> CheckStream(const std::vector<StreamEvent>& events,
                                            PayloadTruth& truth, const std::string& who) {
  std::vector<std::string> bad;
  bool subscribed = false;
  std::string epoch;
  uint64_t next = 0;  // the offset the next publication must have
  for (size_t i = 0; i < events.size(); ++i) {
    const StreamEvent& e = events[i];
    const std::string at = who + " event " + std::to_string(i) + ": ";
    if (e.kind == StreamEvent::Kind::kSubscribed) {
      if (e.recovered && subscribed) {
        // A resume: same epoch, from the last offset this stream saw.
        if (e.epoch != epoch) {
          bad.push_back(at + "recovered: true with another epoch (" + e.epoch + " after " + epoch +
                        ")");
        }
        if (e.offset + 1 != next) {
          bad.push_back(at + "resumed after " + std::to_string(e.offset) + ", last seen " +
                        std::to_string(next - 1));
        }
      }
      next = e.offset + 1;
      subscribed = true;
      epoch = e.epoch;
      continue;
    }
    if (!subscribed) {
      bad.push_back(at + "publication " + std::to_string(e.offset) + " before any subscribe");
      continue;
    }
    if (e.offset < next) {
      bad.push_back(at + "duplicate or out of order: offset " + std::to_string(e.offset) +
                    ", expected " + std::to_string(next));
    } else if (e.offset > next) {
      bad.push_back(at + "gap: offset " + std::to_string(e.offset) + ", expected " +
                    std::to_string(next));
    }
    if (std::string v = truth.See(epoch, e.offset, e.payload, who); !v.empty()) bad.push_back(v);
    next = std::max(next, e.offset + 1);
  }
  return bad;
}

}  // namespace chorus::testing
