// `*` replies streamed subtree by subtree (docs/protocol/chp.md CS-34) and the publisher's byte
// bound (CS-35). Same class and owner thread as server.cc.
#include <algorithm>
#include <limits>

#include "chp/codec.h"
#include "chp/server.h"

namespace chorus::chp {

int Server::publisher_hwm() const {
  if (options_.publisher_max_bytes == 0 || options_.publisher_hwm <= 0) {
    return options_.publisher_hwm;
  }
  // The largest message: a value of max_value_bytes, a full key as topic, the other fields.
  const size_t largest = options_.max_value_bytes + kMaxKeyBytes + 64;
  const size_t by_bytes = std::max<size_t>(1, options_.publisher_max_bytes / largest);
  const size_t capped = std::min<size_t>(by_bytes, std::numeric_limits<int>::max());
  return static_cast<int>(std::min<size_t>(capped, static_cast<size_t>(options_.publisher_hwm)));
}

size_t Server::QueuedFor(const std::string& peer) const {
  auto it = pending_.find(peer);
  return it == pending_.end() ? 0 : it->second.bytes;
}

void Server::StartStream(const std::vector<std::string>& envelope, uint64_t request_id) {
  const std::string& peer = envelope.front();
  if (streams_.erase(peer) > 0) ++stats_.streams_ended;  // replaced by the peer's new `*`
  if (QueuedFor(peer) > options_.max_peer_pending_bytes) {
    // CS-22 at the reply's beginning: dropped whole, like any reply (no stream is kept).
    Reply(envelope, Encode(Done{request_id, 0}));  // judged and dropped by Reply
    return;
  }
  Stream st{envelope, request_id, {}, 0, 0};
  st.names.reserve(store_.subtrees().size());
  for (const auto& [name, sub] : store_.subtrees()) st.names.push_back(name);
  ++stats_.streams;
  streams_.emplace(peer, std::move(st));
  // The first chunk now, as the reply's beginning (CS-22 judges the peer's bound here).
  AdvanceStreams();
}

bool Server::StreamRunnable() const {
  for (const auto& [peer, st] : streams_) {
    if (QueuedFor(peer) <= options_.stream_chunk_bytes) return true;
  }
  return false;
}

void Server::AdvanceStreams() {
  for (auto it = streams_.begin(); it != streams_.end();) {
    const std::string& peer = it->first;
    Stream& st = it->second;
    // A stream that has not sent anything yet begins its reply (CS-22); later chunks continue it.
    reply_begins_ = st.next == 0 && st.sent == 0;
    reply_dropped_ = false;
    reply_gone_ = false;
    reply_bytes_ = 0;
    bool ended = false;
    while (st.next < st.names.size() && reply_bytes_ < options_.stream_chunk_bytes &&
           QueuedFor(peer) <= options_.stream_chunk_bytes) {
      const std::string& name = st.names[st.next++];
      const Subtree* sub = store_.Find(name);
      if (sub == nullptr) continue;  // dropped since the request: not held, no KTHXBAI
      ServeSubtree(st.envelope, st.request_id, name, sub, Position{}, 0);
      ++st.sent;
      auto q = pending_.find(peer);
      if (reply_dropped_ || reply_gone_ || (q != pending_.end() && q->second.discarding)) {
        ended = true;  // CS-21 / CS-22: the rest of this reply is dropped with it
        break;
      }
    }
    if (!ended && st.next >= st.names.size()) {
      Reply(st.envelope, Encode(Done{st.request_id, st.sent}));
      it = streams_.erase(it);
      continue;
    }
    if (ended) {
      ++stats_.streams_ended;
      it = streams_.erase(it);
      continue;
    }
    ++it;
  }
  reply_begins_ = false;
  reply_dropped_ = false;
}

}  // namespace chorus::chp
