#include "channel_records.h"

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

}  // namespace chorus::broker::node
