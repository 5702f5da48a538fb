#include "channel_records.h"

#include <algorithm>
#include <exception>

#include <msgpack.hpp>

namespace chorus::broker::node {
namespace {

// A msgpack map's member, or nullptr.
const msgpack::object* Member(const msgpack::object& m, std::string_view name) {
  if (m.type != msgpack::type::MAP) return nullptr;
  for (uint32_t i = 0; i < m.via.map.size; ++i) {
    const auto& kv = m.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == name) {
      return &kv.val;
    }
  }
  return nullptr;
}

}  // namespace

std::string_view RelativeKey(std::string_view subtree, std::string_view key) {
  if (key.size() > subtree.size() && key.substr(0, subtree.size()) == subtree &&
      key[subtree.size()] == '/') {
    return key.substr(subtree.size() + 1);
  }
  return key;
}

bool DecodeTop(std::string_view bytes, CopyTop& out) {
  try {
    auto oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& m = oh.get();
    const msgpack::object* n = Member(m, "n");
    const msgpack::object* e = Member(m, "e");
    const msgpack::object* o = Member(m, "o");
    const msgpack::object* c = Member(m, "c");
    const msgpack::object* p = Member(m, "p");
    if (e == nullptr || o == nullptr) return false;
    CopyTop t;
    if (n != nullptr) t.channel = n->as<std::string>();
    t.top.epoch = e->as<std::string>();
    t.top.offset = o->as<uint64_t>();
    t.committed = c != nullptr ? c->as<uint64_t>() : t.top.offset;
    if (t.committed > t.top.offset) return false;
    t.partition_epoch = p != nullptr ? p->as<uint64_t>() : 0;
    out = std::move(t);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

bool DecodePublication(std::string_view bytes, Publication& out) {
  try {
    auto oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& m = oh.get();
    const msgpack::object* o = Member(m, "o");
    const msgpack::object* t = Member(m, "t");
    const msgpack::object* d = Member(m, "d");
    const msgpack::object* i = Member(m, "i");
    const msgpack::object* g = Member(m, "g");
    if (o == nullptr || t == nullptr || d == nullptr) return false;
    Publication p;
    p.offset = o->as<uint64_t>();
    p.time_ms = t->as<int64_t>();
    p.data = d->as<std::string>();
    if (i != nullptr && !i->is_nil()) p.info = i->as<std::string>();
    if (g != nullptr) p.tags = g->as<std::map<std::string, std::string>>();
    if (p.offset == 0) return false;
    out = std::move(p);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

bool DecodeEphemeral(std::string_view bytes, std::string& channel, Publication& out) {
  try {
    auto oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& m = oh.get();
    const msgpack::object* n = Member(m, "n");
    const msgpack::object* t = Member(m, "t");
    const msgpack::object* d = Member(m, "d");
    const msgpack::object* i = Member(m, "i");
    const msgpack::object* g = Member(m, "g");
    if (n == nullptr || t == nullptr || d == nullptr) return false;
    Publication p;
    std::string name = n->as<std::string>();
    p.time_ms = t->as<int64_t>();
    p.data = d->as<std::string>();
    if (i != nullptr && !i->is_nil()) p.info = i->as<std::string>();
    if (g != nullptr) p.tags = g->as<std::map<std::string, std::string>>();
    if (name.empty()) return false;
    channel = std::move(name);
    out = std::move(p);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// `p/<client>`: {u: user, ci: conn info, hi: chan info, nd: member, in: incarnation}.
bool DecodePresence(std::string_view client, std::string_view bytes, PresenceEntry& out) {
  try {
    auto oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& m = oh.get();
    const msgpack::object* u = Member(m, "u");
    if (u == nullptr || client.empty()) return false;
    PresenceEntry e;
    e.client = std::string(client);
    e.user = u->as<std::string>();
    if (const msgpack::object* ci = Member(m, "ci")) e.conn_info = ci->as<std::string>();
    if (const msgpack::object* hi = Member(m, "hi")) e.chan_info = hi->as<std::string>();
    const msgpack::object* nd = Member(m, "nd");
    if (nd != nullptr && nd->type == msgpack::type::POSITIVE_INTEGER) e.node = nd->via.u64;
    if (const msgpack::object* in = Member(m, "in")) e.incarnation = in->as<uint64_t>();
    out = std::move(e);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

namespace {

void AddRecord(ChannelSnapshot& out, std::vector<Publication>& pubs, std::string_view subtree,
               std::string_view key, std::string_view value) {
  const std::string_view k = RelativeKey(subtree, key);
  if (k == "top") {
    out.has_top = DecodeTop(value, out.top);
  } else if (k.starts_with("h/")) {
    Publication p;
    if (DecodePublication(value, p)) pubs.push_back(std::move(p));
  } else if (k.starts_with("p/")) {
    PresenceEntry e;
    if (DecodePresence(k.substr(2), value, e)) out.presence.push_back(std::move(e));
  }
}

void KeepRunToTop(ChannelSnapshot& out, std::vector<Publication> pubs) {
  if (!out.has_top) return;
  std::sort(pubs.begin(), pubs.end(),
            [](const Publication& a, const Publication& b) { return a.offset > b.offset; });
  uint64_t want = out.top.top.offset;
  for (Publication& p : pubs) {
    if (want == 0 || p.offset != want) break;
    out.run.push_back(std::move(p));
    --want;
  }
  std::reverse(out.run.begin(), out.run.end());
}

}  // namespace

ChannelSnapshot DecodeChannelSnapshot(std::string_view subtree, const chp::EntryMap& entries) {
  ChannelSnapshot out;
  std::vector<Publication> pubs;
  for (const auto& [key, entry] : entries) AddRecord(out, pubs, subtree, key, entry.value);
  KeepRunToTop(out, std::move(pubs));
  return out;
}

ChannelSnapshot DecodeChannelSnapshot(std::string_view subtree,
                                      const std::vector<chp::Record>& records) {
  ChannelSnapshot out;
  std::vector<Publication> pubs;
  for (const chp::Record& r : records) AddRecord(out, pubs, subtree, r.key, r.value);
  KeepRunToTop(out, std::move(pubs));
  return out;
}

}  // namespace chorus::broker::node
