// WorkerHub: the node's ZeroMQ endpoint for external workers (docs/protocol/worker.md, CWP/1).
//
// Threads and ownership: the hub's own thread owns the ROUTER socket bound at the endpoint and
// an inproc PULL socket. It decodes every frame a worker sends (a malformed one is answered
// with `error` code 1 at once and goes no further, W-2) and hands the rest to `deliver` (the
// runner's bounded inbox; no state is kept here). Messages to workers come from a Sender,
// a PUSH socket owned by the thread that created it (the runner's owner thread), and leave
// through the ROUTER on the hub thread. The hub holds no scheduler state.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "broker/scheduler/worker_wire.h"

namespace chorus::broker::scheduler {

class WorkerHub {
 public:
  // A decoded message from the worker whose connection has routing id `rid`.
  struct Inbound {
    std::string rid;
    wire::Message msg;
  };
  // Called on the hub thread; may block (the inbox is bounded); false: the runner is stopping.
  using Deliver = std::function<bool(Inbound&&)>;

  // Binds `endpoint` (e.g. tcp://127.0.0.1:0) and starts the hub thread; nullptr and *error
  // when it cannot bind.
  static std::unique_ptr<WorkerHub> Start(zmq::context_t& ctx, const std::string& endpoint,
                                          Deliver deliver, std::string* error);
  ~WorkerHub();  // stops and joins the hub thread
  WorkerHub(const WorkerHub&) = delete;
  WorkerHub& operator=(const WorkerHub&) = delete;

  const std::string& endpoint() const { return bound_; }  // the bound address

  // Sends messages to workers through the hub. Owned by the thread that made it (MakeSender).
  class Sender {
   public:
    // False when the message could not be queued (the hub's queue is full: the message is
    // dropped; a lost lease expires, a lost revoke is repeated on the next heartbeat).
    bool Send(const std::string& rid, const wire::Message& m);

   private:
    friend class WorkerHub;
    explicit Sender(zmq::socket_t s) : push_(std::move(s)) {}
    zmq::socket_t push_;
  };
  std::unique_ptr<Sender> MakeSender();

 private:
  WorkerHub(zmq::context_t& ctx, Deliver deliver) : ctx_(ctx), deliver_(std::move(deliver)) {}
  void Loop(zmq::socket_t router, zmq::socket_t pull);

  zmq::context_t& ctx_;
  Deliver deliver_;
  std::string bound_, inproc_;
  std::atomic<bool> done_{false};  // the loop returned on its own (the runner is stopping)
  std::thread thread_;
};

}  // namespace chorus::broker::scheduler
