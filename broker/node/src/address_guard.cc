#include "address_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <zmq.h>

#include <zmq_addon.hpp>

#include <array>
#include <atomic>
#include <cstring>

#include "broker/node/log.h"

namespace chorus::broker::node {

namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

// The peer's IP address of a connected TCP descriptor as libzmq writes it in ZAP requests
// ("127.0.0.1", "::1"); "" when it is not an IP socket or is already closed.
std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  std::array<char, INET6_ADDRSTRLEN> buf{};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    if (inet_ntop(AF_INET, &a->sin_addr, buf.data(), buf.size()) == nullptr) return "";
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (inet_ntop(AF_INET6, &a->sin6_addr, buf.data(), buf.size()) == nullptr) return "";
  } else {
    return "";
  }
  return buf.data();
}

}  // namespace

AddressGuard::AddressGuard(zmq::context_t& ctx) : ctx_(ctx), zap_(ctx, zmq::socket_type::rep) {}

AddressGuard::~AddressGuard() = default;

Result<std::unique_ptr<AddressGuard>> AddressGuard::Create(zmq::context_t& ctx) {
  std::unique_ptr<AddressGuard> g(new AddressGuard(ctx));
  try {
    g->zap_.set(zmq::sockopt::linger, 0);
    g->zap_.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    Log().error("cannot bind the ZAP handler {}: {}", kZapEndpoint, e.what());
    return Errc::kInternal;
  }
  return g;
}

Result<Unit> AddressGuard::Watch(zmq::socket_t& socket, const std::string& name, size_t limit) {
  if (limit == 0) return Unit{};
  static std::atomic<uint64_t> next_id{0};
  const std::string endpoint =
      "inproc://chorus-address-guard-" + name + "-" + std::to_string(next_id.fetch_add(1));
  auto l = std::make_unique<Listener>();
  l->name = name;
  l->limit = limit;
  try {
    socket.set(zmq::sockopt::zap_domain, name);
    if (zmq_socket_monitor(socket.handle(), endpoint.c_str(),
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0) {
      throw zmq::error_t();
    }
    l->monitor = zmq::socket_t(ctx_, zmq::socket_type::pair);
    l->monitor.set(zmq::sockopt::linger, 0);
    l->monitor.connect(endpoint);
  } catch (const zmq::error_t& e) {
    Log().error("cannot watch the {} listener's connections: {}", name, e.what());
    return Errc::kInternal;
  }
  listeners_.push_back(std::move(l));
  return Unit{};
}

size_t AddressGuard::AddPollItems(std::vector<zmq::pollitem_t>& items) {
  items.push_back({zap_.handle(), 0, ZMQ_POLLIN, 0});
  for (const auto& l : listeners_) items.push_back({l->monitor.handle(), 0, ZMQ_POLLIN, 0});
  return 1 + listeners_.size();
}

void AddressGuard::HandleEvents(const zmq::pollitem_t* items) {
  DrainMonitors();
  if (items[0].revents & ZMQ_POLLIN) AnswerZap();
}

void AddressGuard::DrainMonitors() {
  for (auto& l : listeners_) DrainMonitor(*l);
}

// A monitor event is two frames: 6 bytes (u16 event, u32 value: the descriptor for ACCEPTED and
// DISCONNECTED) and the endpoint.
void AddressGuard::DrainMonitor(Listener& l) {
  while (true) {
    zmq::message_t head;
    if (!l.monitor.recv(head, zmq::recv_flags::dontwait)) return;
    uint16_t event = 0;
    uint32_t value = 0;
    const bool well_formed = head.size() == 6;
    if (well_formed) {
      std::memcpy(&event, head.data(), 2);
      std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
    }
    while (head.more()) {
      zmq::message_t rest;
      if (!l.monitor.recv(rest, zmq::recv_flags::dontwait)) break;
      if (!rest.more()) break;
    }
    if (!well_formed) continue;
    const int fd = static_cast<int>(value);
    if (event == ZMQ_EVENT_ACCEPTED) {
      Release(l, fd);  // a descriptor reused before its DISCONNECTED was read (not expected)
      std::string address = PeerAddress(fd);
      if (address.empty()) continue;  // not TCP, or closed already (its DISCONNECTED follows)
      ++l.open_by_address[address];
      l.by_fd.emplace(fd, std::move(address));
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
      Release(l, fd);
    }
  }
}

void AddressGuard::Release(Listener& l, int fd) {
  auto it = l.by_fd.find(fd);
  if (it == l.by_fd.end()) return;
  auto count = l.open_by_address.find(it->second);
  if (count != l.open_by_address.end() && --count->second == 0) l.open_by_address.erase(count);
  l.by_fd.erase(it);
}

// ZAP request (RFC 27): version, request id, domain, address, identity, mechanism, credentials.
// Reply: version, request id, status code, status text, user id, metadata.
void AddressGuard::AnswerZap() {
  while (true) {
    std::vector<zmq::message_t> req;
    if (!zmq::recv_multipart(zap_, std::back_inserter(req), zmq::recv_flags::dontwait)) return;
    auto text = [&](size_t i) { return i < req.size() ? req[i].to_string() : std::string(); };
    const std::string domain = text(2);
    const std::string address = text(3);
    bool allow = true;
    for (auto& l : listeners_) {
      if (l->name != domain) continue;
      auto it = l->open_by_address.find(address);
      // The counts include the connection asking (its ACCEPTED was drained before).
      if (!address.empty() && it != l->open_by_address.end() && it->second > l->limit) {
        allow = false;
        ++l->refused;
      }
    }
    const std::array<std::string, 6> reply = {text(0).empty() ? "1.0" : text(0),
                                              text(1),
                                              allow ? "200" : "400",
                                              allow ? "OK" : "too many connections from address",
                                              "",
                                              ""};
    for (size_t i = 0; i < reply.size(); ++i) {
      (void)zap_.send(zmq::buffer(reply[i]),
                      i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
}

std::map<std::string, uint64_t> AddressGuard::refused() const {
  std::map<std::string, uint64_t> out;
  for (const auto& l : listeners_) out[l->name] = l->refused;
  return out;
}

}  // namespace chorus::broker::node
