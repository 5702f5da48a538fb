// Printing of cluster map values (tests, logs, tools).
#include <ostream>

#include "cluster/cluster_map.h"

namespace chorus::cluster {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::ostream& PrintIds(std::ostream& os, const std::vector<MemberId>& ids) {
  os << '[';
  for (size_t i = 0; i < ids.size(); ++i) os << (i ? "," : "") << ids[i];
  return os << ']';
}

}  // namespace

const char* ToString(MemberState s) {
  switch (s) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kLeaving:
      return "leaving";
    case MemberState::kDead:
      return "dead";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, const Member& m) {
  return os << "member{" << m.id << " inc=" << m.incarnation << ' ' << ToString(m.state)
            << " chp=" << m.endpoints.chp << " api=" << m.endpoints.api
            << " raft=" << m.endpoints.raft << '}';
}

std::ostream& operator<<(std::ostream& os, const Partition& p) {
  os << "p" << p.id << "{primary=" << p.primary << " replicas=";
  PrintIds(os, p.replicas) << " in_sync=";
  PrintIds(os, p.in_sync) << " epoch=" << p.epoch << " version=" << p.version
                          << " lineage=" << p.lineage;
  if (p.handoff_to != 0) os << " handoff_to=" << p.handoff_to;
  return os << '}';
}

std::ostream& operator<<(std::ostream& os, const Command& c) {
  std::visit(
      Overloaded{
          [&](const Bootstrap& x) {
            os << "Bootstrap{partitions=" << x.partition_count << " R=" << x.replication_factor
               << '}';
          },
          [&](const AddMember& x) {
            os << "AddMember{" << x.id << " inc=" << x.incarnation << " chp=" << x.endpoints.chp
               << '}';
          },
          [&](const MarkDead& x) { os << "MarkDead{" << x.id << " inc=" << x.incarnation << '}'; },
          [&](const SetLeaving& x) { os << "SetLeaving{" << x.id << '}'; },
          [&](const RemoveMember& x) { os << "RemoveMember{" << x.id << '}'; },
          [&](const AssignPartition& x) {
            os << "AssignPartition{p" << x.partition << " v" << x.expected_version << ' ';
            PrintIds(os, x.replicas) << '}';
          },
          [&](const PromoteBackup& x) {
            os << "PromoteBackup{p" << x.partition << " v" << x.expected_version << ' ' << x.member
               << '}';
          },
          [&](const SetInSync& x) {
            os << "SetInSync{p" << x.partition << " v" << x.expected_version << ' ';
            PrintIds(os, x.in_sync) << '}';
          },
          [&](const AddReplica& x) {
            os << "AddReplica{p" << x.partition << " v" << x.expected_version << ' ' << x.member
               << '}';
          },
          [&](const RemoveReplica& x) {
            os << "RemoveReplica{p" << x.partition << " v" << x.expected_version << ' ' << x.member
               << '}';
          },
          [&](const BeginHandoff& x) {
            os << "BeginHandoff{p" << x.partition << " v" << x.expected_version << " to=" << x.to
               << '}';
          },
          [&](const CompleteHandoff& x) {
            os << "CompleteHandoff{p" << x.partition << " v" << x.expected_version << " to=" << x.to
               << '}';
          },
          [&](const CancelHandoff& x) {
            os << "CancelHandoff{p" << x.partition << " v" << x.expected_version << '}';
          },
      },
      c);
  return os;
}

std::ostream& operator<<(std::ostream& os, const ClusterMap& m) {
  os << "ClusterMap{partitions=" << m.partition_count() << " R=" << m.replication_factor()
     << " applied=" << m.applied() << "\n";
  for (const auto& [id, mem] : m.members()) os << "  " << mem << "\n";
  for (const Partition& p : m.partitions()) os << "  " << p << "\n";
  return os << '}';
}

}  // namespace chorus::cluster
