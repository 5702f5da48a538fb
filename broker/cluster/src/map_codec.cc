#include "cluster/map_codec.h"

#include <msgpack.hpp>

namespace chorus::cluster {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

void PackIds(Packer& pk, const std::vector<MemberId>& ids) {
  pk.pack_array(static_cast<uint32_t>(ids.size()));
  for (MemberId m : ids) pk.pack_uint64(m);
}

void PackEndpoints(Packer& pk, const Endpoints& e) {
  pk.pack(e.chp);
  pk.pack(e.api);
  pk.pack(e.raft);
}

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// Strict readers: a wrong type marks the reader failed; the caller checks ok() once at the end.
class Reader {
 public:
  explicit Reader(const msgpack::object& array) {
    if (array.type != msgpack::type::ARRAY) {
      ok_ = false;
      return;
    }
    items_ = array.via.array.ptr;
    size_ = array.via.array.size;
  }
  bool ok() const { return ok_; }
  size_t size() const { return size_; }
  const msgpack::object* Next() {
    if (!ok_ || pos_ >= size_) {
      ok_ = false;
      return nullptr;
    }
    return &items_[pos_++];
  }
  uint64_t U64() {
    const msgpack::object* o = Next();
    if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) {
      ok_ = false;
      return 0;
    }
    return o->via.u64;
  }
  uint32_t U32() {
    uint64_t v = U64();
    if (v > UINT32_MAX) ok_ = false;
    return static_cast<uint32_t>(v);
  }
  bool Bool() {
    const msgpack::object* o = Next();
    if (o == nullptr || o->type != msgpack::type::BOOLEAN) {
      ok_ = false;
      return false;
    }
    return o->via.boolean;
  }
  std::string Str() {
    const msgpack::object* o = Next();
    if (o == nullptr || o->type != msgpack::type::STR) {
      ok_ = false;
      return {};
    }
    return std::string(o->via.str.ptr, o->via.str.size);
  }
  std::vector<MemberId> Ids() {
    const msgpack::object* o = Next();
    std::vector<MemberId> out;
    if (o == nullptr) return out;
    Reader r(*o);
    for (size_t i = 0; r.ok() && i < r.size(); ++i) out.push_back(r.U64());
    if (!r.ok()) ok_ = false;
    return out;
  }
  Endpoints Ends() {
    Endpoints e;
    e.chp = Str();
    e.api = Str();
    e.raft = Str();
    return e;
  }
  Reader Sub() {
    const msgpack::object* o = Next();
    if (o == nullptr) {
      Reader bad(msgpack::object{});
      return bad;
    }
    return Reader(*o);
  }

 private:
  const msgpack::object* items_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
  bool ok_ = true;
};

const msgpack::unpack_limit kLimits(1 << 20, 1 << 20, 1 << 16, 1 << 20, 1 << 20, 16);

// Unpacks exactly one object spanning all of `bytes`.
bool UnpackOne(std::string_view bytes, msgpack::object_handle& oh) {
  if (bytes.empty()) return false;
  try {
    size_t off = 0;
    msgpack::unpack(oh, bytes.data(), bytes.size(), off, nullptr, nullptr, kLimits);
    return off == bytes.size();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::string EncodeCommand(const Command& cmd) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  auto head = [&pk](CommandCode code, uint32_t fields) {
    pk.pack_array(fields + 1);
    pk.pack_uint8(static_cast<uint8_t>(code));
  };
  std::visit(Overloaded{
                 [&](const Bootstrap& c) {
                   head(CommandCode::kBootstrap, 2);
                   pk.pack_uint32(c.partition_count);
                   pk.pack_uint32(c.replication_factor);
                 },
                 [&](const AddMember& c) {
                   head(CommandCode::kAddMember, 5);
                   pk.pack_uint64(c.id);
                   pk.pack_uint64(c.incarnation);
                   PackEndpoints(pk, c.endpoints);
                 },
                 [&](const MarkDead& c) {
                   head(CommandCode::kMarkDead, 2);
                   pk.pack_uint64(c.id);
                   pk.pack_uint64(c.incarnation);
                 },
                 [&](const SetLeaving& c) {
                   head(CommandCode::kSetLeaving, 1);
                   pk.pack_uint64(c.id);
                 },
                 [&](const RemoveMember& c) {
                   head(CommandCode::kRemoveMember, 1);
                   pk.pack_uint64(c.id);
                 },
                 [&](const AssignPartition& c) {
                   head(CommandCode::kAssignPartition, 3);
                   pk.pack_uint32(c.partition);
                   pk.pack_uint64(c.expected_version);
                   PackIds(pk, c.replicas);
                 },
                 [&](const PromoteBackup& c) {
                   head(CommandCode::kPromoteBackup, 3);
                   pk.pack_uint32(c.partition);
                   pk.pack_uint64(c.expected_version);
                   pk.pack_uint64(c.member);
                 },
                 [&](const SetInSync& c) {
                   head(CommandCode::kSetInSync, 3);
                   pk.pack_uint32(c.partition);
                   pk.pack_uint64(c.expected_version);
                   PackIds(pk, c.in_sync);
                 },
                 [&](const AddReplica& c) {
                   head(CommandCode::kAddReplica, 3);
                   pk.pack_uint32(c.partition);
                   pk.pack_uint64(c.expected_version);
                   pk.pack_uint64(c.member);
                 },
                 [&](const RemoveReplica& c) {
                   head(CommandCode::kRemoveReplica, 3);
                   pk.pack_uint32(c.partition);
                   pk.pack_uint64(c.expected_version);
                   pk.pack_uint64(c.member);
                 },
                 [&](const BeginHandoff& c) {
                   head(CommandCode::kBeginHandoff, 3);
                   pk.pack_uint32(c.partition);
                   pk.pack_uint64(c.expected_version);
                   pk.pack_uint64(c.to);
                 },
                 [&](const CompleteHandoff& c) {
                   head(CommandCode::kCompleteHandoff, 3);
                   pk.pack_uint32(c.partition);
                   pk.pack_uint64(c.expected_version);
                   pk.pack_uint64(c.to);
                 },
                 [&](const CancelHandoff& c) {
                   head(CommandCode::kCancelHandoff, 2);
                   pk.pack_uint32(c.partition);
                   pk.pack_uint64(c.expected_version);
                 },
             },
             cmd);
  return std::string(buf.data(), buf.size());
}

Result<Command> DecodeCommand(std::string_view bytes) {
  msgpack::object_handle oh;
  if (!UnpackOne(bytes, oh)) return Errc::kMalformed;
  Reader r(oh.get());
  uint64_t code = r.U64();
  if (!r.ok() || code > 255) return Errc::kMalformed;
  Command out;
  switch (static_cast<CommandCode>(code)) {
    case CommandCode::kBootstrap: {
      Bootstrap c;
      c.partition_count = r.U32();
      c.replication_factor = r.U32();
      out = c;
      break;
    }
    case CommandCode::kAddMember: {
      AddMember c;
      c.id = r.U64();
      c.incarnation = r.U64();
      c.endpoints = r.Ends();
      out = c;
      break;
    }
    case CommandCode::kMarkDead: {
      MarkDead c;
      c.id = r.U64();
      c.incarnation = r.U64();
      out = c;
      break;
    }
    case CommandCode::kSetLeaving:
      out = SetLeaving{r.U64()};
      break;
    case CommandCode::kRemoveMember:
      out = RemoveMember{r.U64()};
      break;
    case CommandCode::kAssignPartition: {
      AssignPartition c;
      c.partition = r.U32();
      c.expected_version = r.U64();
      c.replicas = r.Ids();
      out = c;
      break;
    }
    case CommandCode::kPromoteBackup: {
      PromoteBackup c;
      c.partition = r.U32();
      c.expected_version = r.U64();
      c.member = r.U64();
      out = c;
      break;
    }
    case CommandCode::kSetInSync: {
      SetInSync c;
      c.partition = r.U32();
      c.expected_version = r.U64();
      c.in_sync = r.Ids();
      out = c;
      break;
    }
    case CommandCode::kAddReplica: {
      AddReplica c;
      c.partition = r.U32();
      c.expected_version = r.U64();
      c.member = r.U64();
      out = c;
      break;
    }
    case CommandCode::kRemoveReplica: {
      RemoveReplica c;
      c.partition = r.U32();
      c.expected_version = r.U64();
      c.member = r.U64();
      out = c;
      break;
    }
    case CommandCode::kBeginHandoff: {
      BeginHandoff c;
      c.partition = r.U32();
      c.expected_version = r.U64();
      c.to = r.U64();
      out = c;
      break;
    }
    case CommandCode::kCompleteHandoff: {
      CompleteHandoff c;
      c.partition = r.U32();
      c.expected_version = r.U64();
      c.to = r.U64();
      out = c;
      break;
    }
    case CommandCode::kCancelHandoff: {
      CancelHandoff c;
      c.partition = r.U32();
      c.expected_version = r.U64();
      out = c;
      break;
    }
    default:
      return Errc::kUnknownCommand;
  }
  if (!r.ok()) return Errc::kMalformed;
  return out;
}

// Snapshot: [version, partition_count, R, applied, [member...], [partition...]]
//   member    = [id, incarnation, chp, api, raft, state]
//   partition = [primary, [replicas], [in_sync], epoch, version, lineage, handoff_to]
std::string EncodeMap(const ClusterMap& map) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(6);
  pk.pack_uint8(kMapSnapshotVersion);
  pk.pack_uint32(map.partition_count());
  pk.pack_uint32(map.replication_factor());
  pk.pack_uint64(map.applied());
  pk.pack_array(static_cast<uint32_t>(map.members().size()));
  for (const auto& [id, m] : map.members()) {
    pk.pack_array(6);
    pk.pack_uint64(id);
    pk.pack_uint64(m.incarnation);
    PackEndpoints(pk, m.endpoints);
    pk.pack_uint8(static_cast<uint8_t>(m.state));
  }
  pk.pack_array(static_cast<uint32_t>(map.partitions().size()));
  for (const Partition& p : map.partitions()) {
    pk.pack_array(7);
    pk.pack_uint64(p.primary);
    PackIds(pk, p.replicas);
    PackIds(pk, p.in_sync);
    pk.pack_uint64(p.epoch);
    pk.pack_uint64(p.version);
    pk.pack_uint64(p.lineage);
    pk.pack_uint64(p.handoff_to);
  }
  return std::string(buf.data(), buf.size());
}

Result<ClusterMap> DecodeMap(std::string_view bytes) {
  msgpack::object_handle oh;
  if (!UnpackOne(bytes, oh)) return Errc::kMalformed;
  Reader r(oh.get());
  if (r.U64() != kMapSnapshotVersion) return Errc::kMalformed;
  uint32_t partition_count = r.U32();
  uint32_t rf = r.U32();
  uint64_t applied = r.U64();
  std::map<MemberId, Member> members;
  Reader ms = r.Sub();
  for (size_t i = 0; ms.ok() && i < ms.size(); ++i) {
    Reader mr = ms.Sub();
    Member m;
    m.id = mr.U64();
    m.incarnation = mr.U64();
    m.endpoints = mr.Ends();
    uint64_t state = mr.U64();
    if (!mr.ok() || state > 2 || m.id == 0 || members.count(m.id) != 0) return Errc::kMalformed;
    m.state = static_cast<MemberState>(state);
    members[m.id] = m;
  }
  std::vector<Partition> partitions;
  Reader ps = r.Sub();
  for (size_t i = 0; ps.ok() && i < ps.size(); ++i) {
    Reader pr = ps.Sub();
    Partition p;
    p.id = static_cast<PartitionId>(i);
    p.primary = pr.U64();
    p.replicas = pr.Ids();
    p.in_sync = pr.Ids();
    p.epoch = pr.U64();
    p.version = pr.U64();
    p.lineage = pr.U64();
    p.handoff_to = pr.U64();
    if (!pr.ok()) return Errc::kMalformed;
    partitions.push_back(std::move(p));
  }
  if (!r.ok() || !ms.ok() || !ps.ok() || partitions.size() != partition_count ||
      partition_count > kMaxPartitionCount || rf > kMaxReplicationFactor) {
    return Errc::kMalformed;
  }
  ClusterMap map = ClusterMap::FromParts(partition_count, rf, applied, std::move(members),
                                         std::move(partitions));
  if (!map.CheckInvariants().empty()) return Errc::kMalformed;
  return map;
}

}  // namespace chorus::cluster
