#include "fanout.h"

#include <algorithm>

#include "broker/core/errc.h"
#include "broker/node/log.h"

namespace chorus::broker::node {
namespace {
constexpr int kBatch = 256;  // messages read per socket per poll
}  // namespace

FanoutClient::FanoutClient(zmq::context_t& ctx, FanoutOptions options)
    : ctx_(ctx), options_(options) {}

FanoutClient::Peer* FanoutClient::PeerFor(uint64_t member, const std::string& endpoint) {
  auto it = peers_.find(member);
  if (it != peers_.end() && it->second.endpoint == endpoint) return &it->second;
  if (it != peers_.end()) peers_.erase(it);  // the member moved (a restart): a fresh socket
  try {
    zmq::socket_t d(ctx_, zmq::socket_type::dealer);
    d.set(zmq::sockopt::linger, 0);
    d.set(zmq::sockopt::sndhwm, 10'000);
    d.set(zmq::sockopt::rcvhwm, 10'000);
    // A larger frame than any part may be closes the link instead of being held (the reply
    // envelope is small: 1 KiB covers it).
    d.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.max_reply_bytes + 1024));
    d.connect(endpoint);
    return &peers_.emplace(member, Peer{endpoint, std::move(d)}).first->second;
  } catch (const zmq::error_t& e) {
    Log().warn("fan-out: cannot connect to member {} at {}: {}", member, endpoint, e.what());
    return nullptr;
  }
}

bool FanoutClient::HasRoom(size_t request_bytes, size_t targets) const {
  return calls_.size() < options_.max_calls &&
         bytes_ + request_bytes * std::max<size_t>(1, targets) <= options_.max_in_flight_bytes;
}

bool FanoutClient::Start(uint64_t sender, const std::string& method, const std::string& params,
                         std::vector<FanoutTarget> targets, Done done) {
  const size_t bytes = (method.size() + params.size()) * std::max<size_t>(1, targets.size());
  if (!HasRoom(method.size() + params.size(), targets.size())) {
    ++stats_.refused;
    return false;
  }
  const uint64_t id = next_id_++;
  Call call;
  call.deadline = chp::Clock::now() + options_.timeout;
  call.bytes = bytes;
  call.done = std::move(done);
  const std::string body = EncodeFanoutRequest({id, sender, method, params}, options_.request_kind);
  for (const FanoutTarget& t : targets) {
    FanoutPart part;
    part.member = t.member;
    Peer* peer = t.endpoint.empty() ? nullptr : PeerFor(t.member, t.endpoint);
    if (peer != nullptr && peer->dealer.send(zmq::buffer(body), zmq::send_flags::dontwait)) {
      ++stats_.requests;
      ++call.remaining;
    } else {
      // No endpoint, no socket, or the pipe to that member is full: it cannot answer.
      ++stats_.not_sent;
    }
    call.parts.push_back(std::move(part));
  }
  ++stats_.calls;
  bytes_ += bytes;
  if (call.remaining == 0) ready_.push_back(id);
  calls_.emplace(id, std::move(call));
  return true;
}

size_t FanoutClient::AddPollItems(std::vector<zmq::pollitem_t>& items) {
  for (auto& [id, peer] : peers_) items.push_back({peer.dealer.handle(), 0, ZMQ_POLLIN, 0});
  return peers_.size();
}

void FanoutClient::End(std::map<uint64_t, Call>::iterator it,
                       std::vector<std::pair<Done, Call>>& ended) {
  bytes_ -= it->second.bytes;
  Done done = std::move(it->second.done);
  ended.emplace_back(std::move(done), std::move(it->second));
  calls_.erase(it);
}

void FanoutClient::HandleEvents(const zmq::pollitem_t* items, chp::Clock::time_point now) {
  // Callbacks run last: one may Start a call, which may add or replace a peer's socket.
  std::vector<std::pair<Done, Call>> ended;
  size_t i = 0;
  std::vector<uint64_t> readable;
  for (auto& [member, peer] : peers_) {
    if (items[i++].revents & ZMQ_POLLIN) readable.push_back(member);
  }
  for (uint64_t member : readable) {
    auto it = peers_.find(member);
    if (it != peers_.end()) ReadPeer(member, it->second, ended);
  }
  for (uint64_t id : std::exchange(ready_, {})) {
    auto it = calls_.find(id);
    if (it != calls_.end()) End(it, ended);
  }
  while (!calls_.empty() && calls_.begin()->second.deadline <= now) {
    for (const FanoutPart& p : calls_.begin()->second.parts) {
      if (!p.answered) ++stats_.timeouts;
    }
    End(calls_.begin(), ended);
  }
  for (auto& [done, call] : ended) done(std::move(call.parts));
}

chp::Clock::time_point FanoutClient::NextDeadline() const {
  if (!ready_.empty()) return chp::Clock::now();  // ended at the next poll
  return calls_.empty() ? chp::Clock::time_point::max() : calls_.begin()->second.deadline;
}

void FanoutClient::ReadPeer(uint64_t member, Peer& peer,
                            std::vector<std::pair<Done, Call>>& ended) {
  for (int i = 0; i < kBatch; ++i) {
    zmq::message_t msg;
    if (!peer.dealer.recv(msg, zmq::recv_flags::dontwait)) return;
    FanoutReply reply;
    if (!DecodeFanoutReply(msg.to_string_view(), reply, options_.reply_kind)) {
      ++stats_.malformed;
      continue;
    }
    auto it = calls_.find(reply.id);
    if (it == calls_.end()) continue;  // answered after its deadline: the call has ended
    Call& call = it->second;
    auto part = std::find_if(call.parts.begin(), call.parts.end(), [&](const FanoutPart& p) {
      return p.member == member && !p.answered;
    });
    if (part == call.parts.end()) continue;  // not asked of this member, or a duplicate
    ++stats_.replies;
    part->answered = true;
    part->code = reply.code;
    if (reply.body.size() > options_.max_reply_bytes ||
        bytes_ + reply.body.size() > options_.max_in_flight_bytes) {
      part->code = ToCode(Errc::kLimitExceeded);
      part->body = "the part of member " + std::to_string(member) + " is too large";
    } else {
      bytes_ += reply.body.size();
      call.bytes += reply.body.size();
      part->body = std::move(reply.body);
    }
    if (--call.remaining == 0) End(it, ended);
  }
}

}  // namespace chorus::broker::node
