// Per-client-address connection bounds for the node's ZeroMQ listeners (native.endpoint and the
// CHP command and publisher sockets; issue 10, docs/operations.md "Security").
//
// libzmq's hook for refusing a connection is ZAP (ZeroMQ RFC 27): a socket with a ZAP domain
// asks the context's ZAP handler (a REP on inproc://zeromq.zap.01) about every new connection,
// with the peer's IP address, during the handshake, before any message is delivered. The guard
// is that handler. It counts the open TCP connections of each watched listener by address from
// the listener's socket monitor (ACCEPTED: the descriptor's peer address; DISCONNECTED: that
// descriptor released) and refuses (ZAP 400, libzmq closes the connection) a connection whose
// address then holds more than the listener's limit. Monitor events are drained before every
// ZAP answer: libzmq's io thread reports ACCEPTED before it starts that connection's handshake.
//
// Owned by the engine thread, which polls it (AddPollItems / HandleEvents) with its own sockets.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "broker/core/errc.h"

namespace chorus::broker::node {

class AddressGuard {
 public:
  // Binds the context's ZAP handler. Error (kInternal, logged) when one is already bound in
  // `ctx` (one guard per context).
  static Result<std::unique_ptr<AddressGuard>> Create(zmq::context_t& ctx);
  ~AddressGuard();

  // Before `socket` binds: gives it the ZAP domain `name` and monitors it. A connection from an
  // address holding `limit` open connections on this listener is refused; limit 0 = no bound
  // (then nothing is set). Names are distinct ("native", "chp_command", ...).
  Result<Unit> Watch(zmq::socket_t& socket, const std::string& name, size_t limit);

  size_t AddPollItems(std::vector<zmq::pollitem_t>& items);
  void HandleEvents(const zmq::pollitem_t* items);

  // Connections refused so far, by listener name (every watched name present).
  std::map<std::string, uint64_t> refused() const;

 private:
  struct Listener {
    std::string name;
    size_t limit = 0;
    zmq::socket_t monitor;                                    // PAIR, the monitor's stream
    std::unordered_map<int, std::string> by_fd;               // open descriptor -> address
    std::unordered_map<std::string, size_t> open_by_address;  // address -> open connections
    uint64_t refused = 0;
  };

  explicit AddressGuard(zmq::context_t& ctx);
  void DrainMonitors();
  void DrainMonitor(Listener& l);
  void Release(Listener& l, int fd);
  void AnswerZap();

  zmq::context_t& ctx_;
  zmq::socket_t zap_;  // REP on inproc://zeromq.zap.01
  std::vector<std::unique_ptr<Listener>> listeners_;
};

}  // namespace chorus::broker::node
