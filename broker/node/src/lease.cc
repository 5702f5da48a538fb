#include "lease.h"

#include <algorithm>
#include <msgpack.hpp>

namespace chorus::broker::node {

std::string EncodeLeaseReply(const LeaseReply& r) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(6);
  pk.pack(std::string("l"));
  pk.pack(r.member);
  pk.pack(r.incarnation);
  pk.pack(r.seq);
  pk.pack(r.duration_ms);
  pk.pack(r.min_entries);
  return {buf.data(), buf.size()};
}

bool DecodeLeaseReply(std::string_view bytes, LeaseReply& out) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 6) return false;
    const msgpack::object* a = o.via.array.ptr;
    if (a[0].type != msgpack::type::STR || a[0].as<std::string>() != "l") return false;
    LeaseReply r;
    r.member = a[1].as<uint64_t>();
    r.incarnation = a[2].as<uint64_t>();
    r.seq = a[3].as<uint64_t>();
    r.duration_ms = a[4].as<int64_t>();
    r.min_entries = a[5].as<uint64_t>();
    if (r.member == 0 || r.duration_ms <= 0 || r.duration_ms > 600'000) return false;
    out = r;
    return true;
  } catch (const std::exception&) {
    return false;  // malformed or wrong types: dropped
  }
}

std::string EncodeLeaseGrant(const LeaseGrant& g) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(3);
  pk.pack(std::string("L"));
  pk.pack(g.expiry_ns);
  pk.pack(g.min_entries);
  return {buf.data(), buf.size()};
}

bool DecodeLeaseGrant(std::string_view bytes, LeaseGrant& out) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 3) return false;
    const msgpack::object* a = o.via.array.ptr;
    if (a[0].type != msgpack::type::STR || a[0].as<std::string>() != "L") return false;
    out.expiry_ns = a[1].as<int64_t>();
    out.min_entries = a[2].as<uint64_t>();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

uint64_t HeartbeatClock::Sent(int64_t now_ns) {
  const uint64_t seq = next_++;
  sent_.emplace_back(seq, now_ns);
  if (sent_.size() > 64) sent_.pop_front();
  return seq;
}

std::optional<int64_t> HeartbeatClock::SentAt(uint64_t seq) const {
  for (const auto& [s, at] : sent_) {
    if (s == seq) return at;
  }
  return std::nullopt;
}

void LeaseHolder::Add(const LeaseGrant& g) {
  ++grants_;
  // Keep expiries ascending; a grant that ends no later than the newest one with no larger
  // min_entries adds nothing.
  while (!leases_.empty() && leases_.back().expiry_ns <= g.expiry_ns &&
         leases_.back().min_entries >= g.min_entries) {
    leases_.pop_back();
  }
  if (!leases_.empty() && leases_.back().expiry_ns >= g.expiry_ns &&
      leases_.back().min_entries <= g.min_entries) {
    return;
  }
  leases_.push_back(g);  // out of order only when grants crossed: keep expiries ascending
  std::sort(leases_.begin(), leases_.end(),
            [](const LeaseGrant& a, const LeaseGrant& b) { return a.expiry_ns < b.expiry_ns; });
  while (leases_.size() > 32) leases_.pop_front();
}

bool LeaseHolder::Valid(int64_t now_ns, uint64_t entries) const {
  for (auto it = leases_.rbegin(); it != leases_.rend(); ++it) {
    if (it->expiry_ns <= now_ns) return false;  // every older one ended earlier
    if (it->min_entries <= entries) return true;
  }
  return false;
}

}  // namespace chorus::broker::node
