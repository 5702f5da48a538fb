#include "broker/channels/chp_state_sink.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include <msgpack.hpp>

#include "chp/keys.h"
#include "chp/types.h"

namespace chorus::broker {
namespace {

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

template <typename F>
std::string Pack(F&& fill) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  fill(pk);
  return std::string(buf.data(), buf.size());
}

void PackStr(msgpack::packer<msgpack::sbuffer>& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

}  // namespace

std::string ChannelSubtree(std::string_view channel) {
  std::string out = "c.";
  out.reserve(channel.size() + 2);
  for (char c : channel) {
    if (c == '%') {
      out += "%25";
    } else if (c == '/') {
      out += "%2F";
    } else {
      out.push_back(c);
    }
  }
  if (out.size() <= chp::kMaxSubtreeBytes) return out;
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(Fnv1a64(channel)));
  return std::string("c#") + hex;
}

void ChpStateSink::Count(bool ok) {
  if (!ok) ++write_errors_;
}

void ChpStateSink::OnTop(std::string_view channel, const StreamPosition& top) {
  key_ = ChannelSubtree(channel) + "/top";
  TopExtras x;
  if (top_extras_) top_extras_(channel, x);
  auto v = Pack([&](auto& pk) {
    pk.pack_map(3 + (x.has_committed ? 1 : 0) + (x.partition_epoch != 0 ? 1 : 0));
    PackStr(pk, "n");
    PackStr(pk, channel);
    PackStr(pk, "e");
    PackStr(pk, top.epoch);
    PackStr(pk, "o");
    pk.pack_uint64(top.offset);
    if (x.has_committed) {
      PackStr(pk, "c");
      pk.pack_uint64(std::min(x.committed, top.offset));
    }
    if (x.partition_epoch != 0) {
      PackStr(pk, "p");
      pk.pack_uint64(x.partition_epoch);
    }
  });
  Count(server_.Put(key_, v).ok());
}

// The fields every publication record carries after its first one (`o` in `h/<slot>`, `n` in
// the ephemeral `x`): time, data, info, tags.
namespace {
void PackPublicationFields(msgpack::packer<msgpack::sbuffer>& pk, const Publication& pub) {
  PackStr(pk, "t");
  pk.pack_int64(pub.time_ms);
  PackStr(pk, "d");
  PackStr(pk, pub.data);
  PackStr(pk, "i");
  if (pub.info) {
    PackStr(pk, *pub.info);
  } else {
    pk.pack_nil();
  }
  PackStr(pk, "g");
  pk.pack_map(static_cast<uint32_t>(pub.tags.size()));
  for (const auto& [k, val] : pub.tags) {
    PackStr(pk, k);
    PackStr(pk, val);
  }
}
}  // namespace

void ChpStateSink::OnPublication(std::string_view channel, const Publication& pub,
                                 size_t history_size, int64_t ttl_ms) {
  if (history_size == 0) return;
  key_ = ChannelSubtree(channel) + "/h/" + std::to_string(pub.offset % history_size);
  auto v = Pack([&](auto& pk) {
    pk.pack_map(5);
    PackStr(pk, "o");
    pk.pack_uint64(pub.offset);
    PackPublicationFields(pk, pub);
  });
  const uint64_t ttl = ttl_ms > 0 ? static_cast<uint64_t>(ttl_ms) : 0;
  Count(server_.Put(key_, v, std::min<uint64_t>(ttl, chp::kMaxTtlMs)).ok());
}

void ChpStateSink::OnEphemeral(std::string_view channel, const Publication& pub) {
  key_ = ChannelSubtree(channel) + "/x";
  auto v = Pack([&](auto& pk) {
    pk.pack_map(5);
    PackStr(pk, "n");
    PackStr(pk, channel);
    PackPublicationFields(pk, pub);
  });
  Count(server_.Put(key_, v, kEphemeralTtlMs).ok());
}

void ChpStateSink::OnHistoryRemoved(std::string_view channel, size_t /*history_size*/) {
  const std::string subtree = ChannelSubtree(channel);
  const chp::Subtree* st = server_.store().Find(subtree);
  if (!st) return;
  std::vector<std::string> slots;
  for (const auto& [key, entry] : st->entries) {
    if (key.starts_with("h/")) slots.push_back(subtree + "/" + key);
  }
  for (const auto& key : slots) (void)server_.Erase(key);
}

void ChpStateSink::OnPresence(std::string_view channel, const PresenceEntry& entry, bool joined) {
  key_ = ChannelSubtree(channel) + "/p/" + entry.client;
  if (!joined) {
    (void)server_.Erase(key_);
    return;
  }
  auto v = Pack([&](auto& pk) {
    pk.pack_map(5);
    PackStr(pk, "u");
    PackStr(pk, entry.user);
    PackStr(pk, "ci");
    PackStr(pk, entry.conn_info);
    PackStr(pk, "hi");
    PackStr(pk, entry.chan_info);
    PackStr(pk, "nd");  // the member holding the connection (C-21), not this server
    pk.pack_uint64(entry.node);
    PackStr(pk, "in");
    pk.pack_uint64(entry.incarnation);
  });
  Count(server_.Put(key_, v).ok());
}

void ChpStateSink::OnChannelDropped(std::string_view channel, size_t history_size) {
  OnHistoryRemoved(channel, history_size);
  key_ = ChannelSubtree(channel) + "/top";
  (void)server_.Erase(key_);
}

}  // namespace chorus::broker
