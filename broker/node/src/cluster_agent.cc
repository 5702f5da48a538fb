#include "cluster_agent.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <future>
#include <msgpack.hpp>
#include <optional>
#include <vector>

#include "broker/node/log.h"
#include "chp/loop.h"
#include "cluster/map_codec.h"
#include "lease.h"

namespace chorus::broker::node {

namespace {

using Clock = std::chrono::steady_clock;

// Heartbeats between agents: msgpack [id, incarnation, chp, api, raft, leaving, seq] (`seq`
// names the heartbeat in the controller's lease grant, C-25: lease.h; an older 6-element
// heartbeat is accepted with seq 0, and gets no grant).
std::string EncodeHeartbeat(const cluster::Heartbeat& hb, uint64_t seq) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(7);
  pk.pack(hb.id);
  pk.pack(hb.incarnation);
  pk.pack(hb.endpoints.chp);
  pk.pack(hb.endpoints.api);
  pk.pack(hb.endpoints.raft);
  pk.pack(hb.leaving);
  pk.pack(seq);
  return {buf.data(), buf.size()};
}

bool DecodeHeartbeat(std::string_view bytes, cluster::Heartbeat& hb, uint64_t& seq) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size < 6 || o.via.array.size > 7) {
      return false;
    }
    const msgpack::object* a = o.via.array.ptr;
    if (a[0].type != msgpack::type::POSITIVE_INTEGER) return false;  // a lease grant, a report
    seq = o.via.array.size == 7 ? a[6].as<uint64_t>() : 0;
    hb.id = a[0].as<uint64_t>();
    hb.incarnation = a[1].as<uint64_t>();
    hb.endpoints.chp = a[2].as<std::string>();
    hb.endpoints.api = a[3].as<std::string>();
    hb.endpoints.raft = a[4].as<std::string>();
    hb.leaving = a[5].as<bool>();
    return hb.id != 0 && hb.incarnation != 0;
  } catch (const std::exception&) {
    return false;  // msgpack throws on malformed input and wrong types: dropped
  }
}

}  // namespace

// Replica reports (docs/cluster.md C-10, C-11): msgpack ["r", partition, primary, epoch,
// version, [caught_up], [lagging], handoff_ready]; from the engine over the view PAIR, and
// between agents on cluster.endpoint (told from a heartbeat by the "r").
std::string EncodeReport(const cluster::ReplicaReport& r) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(8);
  pk.pack(std::string("r"));
  pk.pack(r.partition);
  pk.pack(r.primary);
  pk.pack(r.epoch);
  pk.pack(r.version);
  pk.pack(r.caught_up);
  pk.pack(r.lagging);
  pk.pack(r.handoff_ready);
  return {buf.data(), buf.size()};
}

bool DecodeReport(std::string_view bytes, cluster::ReplicaReport& r) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 8) return false;
    const msgpack::object* a = o.via.array.ptr;
    if (a[0].as<std::string>() != "r") return false;
    cluster::ReplicaReport out;
    out.partition = a[1].as<uint32_t>();
    out.primary = a[2].as<uint64_t>();
    out.epoch = a[3].as<uint64_t>();
    out.version = a[4].as<uint64_t>();
    out.caught_up = a[5].as<std::vector<uint64_t>>();
    out.lagging = a[6].as<std::vector<uint64_t>>();
    out.handoff_ready = a[7].as<bool>();
    if (out.primary == 0 || out.caught_up.size() > 16 || out.lagging.size() > 16) return false;
    r = std::move(out);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

namespace {

// A free TCP port on `host` (bind port 0, read it, close). Another process may take it before
// raft binds it; raft then fails to start and chorusd reports it.
int FreePort(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), "0", &hints, &res) != 0 || res == nullptr) return 0;
  int port = 0;
  const int fd = socket(res->ai_family, SOCK_STREAM, 0);
  if (fd >= 0 && bind(fd, res->ai_addr, res->ai_addrlen) == 0) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      port = ss.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                                     : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    }
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  return port;
}

}  // namespace

std::string EncodeViewHeader(const ClusterViewHeader& h) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(6);
  pk.pack(h.member_id);
  pk.pack(h.incarnation);
  pk.pack(h.leader_id);
  pk.pack(h.entries);
  pk.pack(h.raft);
  pk.pack(h.endpoint);
  return {buf.data(), buf.size()};
}

bool DecodeViewHeader(std::string_view bytes, ClusterViewHeader& out) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 6) return false;
    const msgpack::object* a = o.via.array.ptr;
    out.member_id = a[0].as<uint64_t>();
    out.incarnation = a[1].as<uint64_t>();
    out.leader_id = a[2].as<uint64_t>();
    out.entries = a[3].as<uint64_t>();
    out.raft = a[4].as<std::string>();
    out.endpoint = a[5].as<std::string>();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

ClusterAgent::ClusterAgent(zmq::context_t& ctx, ClusterAgentOptions options)
    : ctx_(ctx),
      options_(std::move(options)),
      router_(ctx, zmq::socket_type::router),
      view_(ctx, zmq::socket_type::pair) {}

ConfigResult<std::unique_ptr<ClusterAgent>> ClusterAgent::Start(zmq::context_t& ctx,
                                                                ClusterAgentOptions options) {
  std::unique_ptr<ClusterAgent> a(new ClusterAgent(ctx, std::move(options)));
  const ClusterSection& c = a->options_.cluster;
  ClusterAddresses& ad = a->addresses_;
  ad.member_id = c.member_id;
  ad.incarnation = chp::WallMs();
  try {
    a->router_.set(zmq::sockopt::linger, 0);
    a->router_.set(zmq::sockopt::rcvhwm, 10'000);
    a->router_.set(zmq::sockopt::maxmsgsize, int64_t{64 * 1024});
    a->router_.bind(c.endpoint);
    ad.endpoint = a->router_.get(zmq::sockopt::last_endpoint);
    a->view_.set(zmq::sockopt::linger, 0);
    a->view_.set(zmq::sockopt::sndhwm, 16);
    a->view_.bind(a->options_.view_endpoint);
  } catch (const zmq::error_t& e) {
    return ConfigError{"cluster.endpoint: cannot bind " + c.endpoint + ": " + e.what()};
  }

  cluster::MetaGroupConfig mc;
  mc.id = c.member_id;
  const std::vector<ClusterVoter> voters = ClusterVoters(c);
  const bool voter = std::any_of(voters.begin(), voters.end(),
                                 [&c](const ClusterVoter& v) { return v.id == c.member_id; });
  if (!voter) {
    // Alone (no voters: a one-voter group) or a standby that joins the voters' running group
    // (C-2, C-18: no bootstrap; the leader adds it once it heartbeats, MaintainStandbys).
    mc.address = c.raft_address;
    const size_t colon = mc.address.rfind(':');
    if (mc.address.substr(colon + 1) == "0") {
      const int port = FreePort(mc.address.substr(0, colon));
      if (port == 0) return ConfigError{"cluster.raft_address: no free port on " + mc.address};
      mc.address = mc.address.substr(0, colon + 1) + std::to_string(port);
    }
    if (voters.empty()) mc.voters = {{c.member_id, mc.address}};
  } else {
    for (const ClusterVoter& v : voters) {
      mc.voters.emplace_back(v.id, v.address);
      if (v.id == c.member_id) mc.address = v.address;
    }
  }
  ad.raft = mc.address;
  std::error_code ec;
  if (c.data_dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path(ec) / "chorusd-raft-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      return ConfigError{"cluster.data_dir: cannot create a temporary directory " + tmpl};
    }
    a->temp_dir_ = tmpl;
    mc.data_dir = tmpl;
  } else {
    std::filesystem::create_directories(c.data_dir, ec);
    if (ec)
      return ConfigError{"cluster.data_dir: cannot create " + c.data_dir + ": " + ec.message()};
    mc.data_dir = c.data_dir;
  }
  // Timings from dead_after_ms (docs/cluster.md §14): election dead/2, Raft heartbeat a tenth of
  // that, lease 2/5 (below dead_after_ms, C-25).
  mc.election_timeout_ms = static_cast<unsigned>(std::max<int64_t>(50, c.dead_after_ms / 2));
  mc.heartbeat_timeout_ms = std::max(10u, mc.election_timeout_ms / 10);
  mc.run_controller = true;
  mc.controller.dead_after_ms = c.dead_after_ms;
  // With other voters, wait for their heartbeats before the first placement (controller.h).
  if (voters.size() > 1) mc.controller.initial_placement_delay_ms = c.dead_after_ms;
  mc.tick_ms = static_cast<unsigned>(std::clamp<int64_t>(c.heartbeat_ms / 2, 10, 100));
  mc.lease_ms = c.dead_after_ms * 2 / 5;
  mc.bootstrap_partitions = c.partitions;
  mc.bootstrap_replication_factor = c.replication_factor;
  auto meta = cluster::MetaGroup::Start(mc);
  if (!meta) {
    if (!a->temp_dir_.empty()) std::filesystem::remove_all(a->temp_dir_, ec);
    return ConfigError{"cluster: cannot start the meta group on " + mc.address + " (data in " +
                       mc.data_dir + "): " + meta.error().message()};
  }
  a->meta_ = std::move(*meta);
  a->thread_ = std::thread([p = a.get()] { p->Run(); });
  return a;
}

void ClusterAgent::Run() {
  const ClusterSection& c = options_.cluster;
  std::vector<zmq::socket_t> seeds;
  for (const std::string& s : c.seeds) {
    zmq::socket_t d(ctx_, zmq::socket_type::dealer);
    d.set(zmq::sockopt::linger, 0);
    d.set(zmq::sockopt::sndhwm, 4);     // a heartbeat that cannot leave is dropped: a newer follows
    d.set(zmq::sockopt::immediate, 1);  // never queue for a peer that is not connected
    d.connect(s);
    seeds.push_back(std::move(d));
  }
  cluster::Heartbeat hb;
  hb.id = addresses_.member_id;
  hb.incarnation = addresses_.incarnation;
  // `api`: the engine's data-plane ROUTER (forwarded publishes, docs/cluster.md §5).
  hb.endpoints = {options_.chp_endpoint, options_.peer_endpoint, addresses_.raft};
  // C-25: the leases granted for this node's heartbeats (lease.h), from this node's own
  // member when it leads and from the leading member's agent otherwise (an answer on the seed
  // DEALER); and the heartbeats of others this node's member may grant a lease for.
  HeartbeatClock sent;
  int64_t lease_sent_expiry = 0;  // the latest expiry sent to the engine
  std::deque<std::pair<uint64_t, std::future<cluster::Result<cluster::Lease>>>> own;
  struct Remote {
    std::string routing_id;
    LeaseReply reply;  // member, incarnation, seq; the rest from the grant
    std::future<cluster::Result<cluster::Lease>> lease;
  };
  std::deque<Remote> remote;
  auto granted = [&](uint64_t seq, const cluster::Lease& l) {
    const std::optional<int64_t> at = sent.SentAt(seq);
    if (!at || l.duration_ms <= 0) return;
    const LeaseGrant g{*at + l.duration_ms * 1'000'000, l.min_entries};
    if (g.expiry_ns <= lease_sent_expiry) return;
    const std::string bytes = EncodeLeaseGrant(g);
    if (view_.send(zmq::buffer(bytes), zmq::send_flags::dontwait)) lease_sent_expiry = g.expiry_ns;
  };
  auto steady_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  };
  const auto hb_period = std::chrono::milliseconds(c.heartbeat_ms);
  const auto view_period = std::chrono::milliseconds(std::clamp<int64_t>(c.heartbeat_ms, 10, 100));
  constexpr auto kResend = std::chrono::seconds(1);  // the view is re-sent at least this often
  auto next_hb = Clock::now();
  auto next_view = Clock::now();
  auto last_sent = Clock::time_point{};
  uint64_t sent_entries = UINT64_MAX, sent_leader = UINT64_MAX;
  try {
    while (!stop_.load()) {
      const auto now = Clock::now();
      if (leaving_.load() && !hb.leaving) {  // C-20: from SIGTERM on
        hb.leaving = true;
        next_hb = now;
        Log().info("cluster: leaving (drain): heartbeats carry leaving from now on");
      }
      if (now >= next_hb) {
        const uint64_t seq = sent.Sent(steady_ns());
        const std::string hb_bytes = EncodeHeartbeat(hb, seq);
        own.emplace_back(seq, meta_->SendHeartbeat(hb));  // a lease when this member leads
        while (own.size() > 64) own.pop_front();
        for (zmq::socket_t& d : seeds)
          (void)d.send(zmq::buffer(hb_bytes), zmq::send_flags::dontwait);
        next_hb = now + hb_period;
      }
      if (now >= next_view) {
        next_view = now + view_period;
        auto f = meta_->Status();
        if (f.wait_for(std::chrono::seconds(1)) == std::future_status::ready) {
          cluster::MetaStatus st = f.get();
          // C-24: the applied map holds this process's incarnation dead (it was silent past
          // dead_after_ms: a pause, SIGSTOP, the minority side of a split). It takes a new
          // incarnation and heartbeats with it: the controller re-adds it once its partitions
          // moved (the engine gave them up on that map, C-15) and it rejoins.
          const cluster::Member* me = st.map.FindMember(hb.id);
          if (me != nullptr && me->state == cluster::MemberState::kDead &&
              me->incarnation == hb.incarnation) {
            hb.incarnation = std::max<uint64_t>(chp::WallMs(), hb.incarnation + 1);
            next_hb = now;
            Log().warn("cluster: this node is dead in the map (incarnation {}): rejoining as {}",
                       me->incarnation, hb.incarnation);
          }
          // C-20: leaving and no longer in the applied map: the controller removed this member
          // (it holds no replica any more).
          if (hb.leaving && me == nullptr && st.map.bootstrapped() && !removed_.load()) {
            removed_.store(true);
            Log().info("cluster: removed from the map: drained");
          }
          int others = 0;
          for (const auto& [id, m] : st.map.members()) {
            others += id != hb.id && m.state != cluster::MemberState::kDead;
          }
          others_.store(others);
          if (st.is_leader) MaintainStandbys(st);
          if (st.entries != sent_entries || st.leader_id != sent_leader ||
              now - last_sent >= kResend) {
            ClusterViewHeader h{addresses_.member_id, hb.incarnation,  st.leader_id,
                                st.entries,           addresses_.raft, addresses_.endpoint};
            const std::string header = EncodeViewHeader(h);
            const std::string map = cluster::EncodeMap(st.map);
            if (view_.send(zmq::buffer(header),
                           zmq::send_flags::sndmore | zmq::send_flags::dontwait) &&
                view_.send(zmq::buffer(map), zmq::send_flags::dontwait)) {
              sent_entries = st.entries;
              sent_leader = st.leader_id;
              last_sent = now;
            }
          }
        }
      }
      // Lease grants completed by the meta member (its barrier committed, C-25).
      while (!own.empty() &&
             own.front().second.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        cluster::Result<cluster::Lease> l = own.front().second.get();
        if (l.ok()) granted(own.front().first, *l);
        own.pop_front();
      }
      while (!remote.empty() &&
             remote.front().lease.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        cluster::Result<cluster::Lease> l = remote.front().lease.get();
        if (l.ok() && remote.front().reply.seq != 0) {
          LeaseReply r = remote.front().reply;
          r.duration_ms = l->duration_ms;
          r.min_entries = l->min_entries;
          const std::string bytes = EncodeLeaseReply(r);
          (void)router_.send(zmq::buffer(remote.front().routing_id),
                             zmq::send_flags::sndmore | zmq::send_flags::dontwait);
          (void)router_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
        }
        remote.pop_front();
      }
      auto wait = std::min(next_hb, next_view) - Clock::now();
      // Waiting grants are looked at every 5 ms (the lease runs from the heartbeat's sending).
      if (!own.empty() || !remote.empty()) {
        wait = std::min<Clock::duration>(wait, std::chrono::milliseconds(5));
      }
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait);
      std::vector<zmq::pollitem_t> items = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                                            {view_.handle(), 0, ZMQ_POLLIN, 0}};
      for (zmq::socket_t& d : seeds) items.push_back({d.handle(), 0, ZMQ_POLLIN, 0});
      zmq::poll(items.data(), items.size(), std::max(ms, std::chrono::milliseconds(0)));
      // Grants from the leading member's agent for this node's heartbeats.
      for (size_t k = 0; k < seeds.size(); ++k) {
        if (!(items[2 + k].revents & ZMQ_POLLIN)) continue;
        for (int i = 0; i < 100; ++i) {
          zmq::message_t msg;
          if (!seeds[k].recv(msg, zmq::recv_flags::dontwait)) break;
          LeaseReply r;
          if (DecodeLeaseReply(msg.to_string_view(), r) && r.member == hb.id &&
              r.incarnation == hb.incarnation) {
            granted(r.seq, cluster::Lease{r.duration_ms, r.min_entries});
          }
        }
      }
      // The engine's replica reports: to this node's member and to every seed (the leader's
      // controller takes them, others drop them), as heartbeats go.
      for (int i = 0; i < 1000 && (items[1].revents & ZMQ_POLLIN); ++i) {
        zmq::message_t msg;
        if (!view_.recv(msg, zmq::recv_flags::dontwait)) break;
        cluster::ReplicaReport rep;
        if (!DecodeReport(msg.to_string_view(), rep)) continue;
        meta_->SendReport(rep);
        for (zmq::socket_t& d : seeds)
          (void)d.send(zmq::buffer(msg.data(), msg.size()), zmq::send_flags::dontwait);
      }
      for (int i = 0; i < 1000 && (items[0].revents & ZMQ_POLLIN); ++i) {
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(router_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
          break;
        }
        cluster::Heartbeat in;
        cluster::ReplicaReport rep;
        uint64_t seq = 0;
        if (parts.size() == 2 && DecodeHeartbeat(parts[1].to_string_view(), in, seq)) {
          // Taken by the leader's controller (a lease once its barrier commits, answered to
          // the sender), else refused at once.
          remote.push_back({parts[0].to_string(), LeaseReply{in.id, in.incarnation, seq, 0, 0},
                            meta_->SendHeartbeat(in)});
          while (remote.size() > 1024) remote.pop_front();
        } else if (parts.size() == 2 && DecodeReport(parts[1].to_string_view(), rep)) {
          meta_->SendReport(std::move(rep));
        }
      }
    }
  } catch (const std::exception& e) {
    Log().error("cluster agent stopped: {}", e.what());
  }
}

void ClusterAgent::MaintainStandbys(const cluster::MetaStatus& st) {
  const std::vector<ClusterVoter> voters = ClusterVoters(options_.cluster);
  for (const auto& [id, m] : st.map.members()) {
    if (m.state == cluster::MemberState::kDead || m.endpoints.raft.empty()) continue;
    if (standbys_.count(id) != 0) continue;
    if (std::any_of(voters.begin(), voters.end(),
                    [id = id](const ClusterVoter& v) { return v.id == id; })) {
      continue;
    }
    auto p = standby_pending_.find(id);
    if (p != standby_pending_.end()) {
      if (p->second.wait_for(std::chrono::seconds(0)) != std::future_status::ready) continue;
      const bool ok = p->second.get().ok();
      standby_pending_.erase(p);
      if (ok) {
        standbys_.insert(id);
        Log().info("cluster: member {} is a Raft standby at {}", id, m.endpoints.raft);
        continue;
      }
      // Refused (a configuration change in flight, leadership moving): asked again next view.
    }
    standby_pending_.emplace(id, meta_->AddStandby(id, m.endpoints.raft));
  }
}

void ClusterAgent::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  meta_.reset();
  router_.close();
  view_.close();
  if (!temp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
    temp_dir_.clear();
  }
}

ClusterAgent::~ClusterAgent() {
  Stop();
}

}  // namespace chorus::broker::node
