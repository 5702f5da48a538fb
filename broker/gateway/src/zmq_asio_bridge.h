// ZmqAsioBridge: drives one zmq socket from an Asio io_context without blocking it, by waiting
// on the socket's ZMQ_FD with a posix::stream_descriptor. Reused by every gateway part that
// talks to the engine (the HTTP server now, the WebSocket gateway for engine pushes later).
//
// ZMQ_FD is edge-triggered and only says "look at ZMQ_EVENTS": on every wake-up the bridge
// receives while ZMQ_EVENTS has ZMQ_POLLIN (non-blocking), and after every Send it drains again
// (a send may process the command that would have produced the next edge), then re-arms.
//
// Threads: not thread-safe. The bridge, its socket and the io_context's thread are one owner:
// every method and the message callback run on the thread that runs the io_context. The socket
// belongs to the caller and must outlive the bridge; the descriptor is released, never closed,
// by the bridge (libzmq owns the fd).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <zmq.hpp>

namespace chorus::broker::gateway::detail {

class ZmqAsioBridge {
 public:
  // Called once per received multipart message, on the io thread.
  using OnMessage = std::function<void(std::vector<zmq::message_t>& parts)>;

  // Messages handled per wake-up before the rest is deferred to a posted handler (so a busy
  // socket does not starve the io_context's other work).
  static constexpr size_t kBatch = 256;

  ZmqAsioBridge(boost::asio::io_context& io, zmq::socket_t& socket, OnMessage on_message);
  ~ZmqAsioBridge();  // Stop()
  ZmqAsioBridge(const ZmqAsioBridge&) = delete;
  ZmqAsioBridge& operator=(const ZmqAsioBridge&) = delete;

  // Starts waiting for messages (and drains what is already queued, from a posted handler).
  void Start();

  // Sends `parts` as one multipart message without blocking. False when the socket would
  // block (no peer, or its high-water mark is reached); nothing was sent then. Throws
  // zmq::error_t on unexpected errors (the owner thread's loop catches it).
  [[nodiscard]] bool Send(std::vector<zmq::message_t>& parts);

  // Cancels the wait and releases the descriptor; no callback runs afterwards. Idempotent.
  void Stop();

 private:
  void Arm();
  void PostDrain();
  void Drain();

  boost::asio::io_context& io_;
  zmq::socket_t& socket_;
  OnMessage on_message_;
  boost::asio::posix::stream_descriptor fd_;
  bool armed_ = false;         // an async_wait is outstanding
  bool drain_posted_ = false;  // a Drain is queued on the io_context
  bool stopped_ = false;
  std::vector<zmq::message_t> parts_;  // reused receive buffer
  // Handlers hold a weak_ptr to this: one that runs after the bridge is gone does nothing.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace chorus::broker::gateway::detail
