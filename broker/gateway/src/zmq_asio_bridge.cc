#include "zmq_asio_bridge.h"

#include <boost/asio/post.hpp>
#include <zmq_addon.hpp>

namespace chorus::broker::gateway::detail {

namespace asio = boost::asio;

ZmqAsioBridge::ZmqAsioBridge(asio::io_context& io, zmq::socket_t& socket, OnMessage on_message)
    : io_(io),
      socket_(socket),
      on_message_(std::move(on_message)),
      fd_(io, socket.get(zmq::sockopt::fd)) {}

ZmqAsioBridge::~ZmqAsioBridge() {
  Stop();
}

void ZmqAsioBridge::Start() {
  Arm();
  PostDrain();  // messages may be queued already, and their edge gone
}

bool ZmqAsioBridge::Send(std::vector<zmq::message_t>& parts) {
  if (stopped_) return false;
  const auto sent = zmq::send_multipart(socket_, parts, zmq::send_flags::dontwait);
  PostDrain();  // the send may have consumed the edge of an incoming message
  return sent.has_value();
}

void ZmqAsioBridge::Stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  fd_.cancel(ignored);
  fd_.release();  // libzmq owns the fd: never close it
}

void ZmqAsioBridge::Arm() {
  if (armed_ || stopped_) return;
  armed_ = true;
  fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                 [this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code& ec) {
                   if (alive.expired()) return;
                   armed_ = false;
                   if (ec || stopped_) return;  // operation_aborted after Stop
                   Drain();
                   Arm();
                 });
}

void ZmqAsioBridge::PostDrain() {
  if (drain_posted_ || stopped_) return;
  drain_posted_ = true;
  asio::post(io_, [this, alive = std::weak_ptr<char>(alive_)] {
    if (alive.expired()) return;
    drain_posted_ = false;
    Drain();
  });
}

void ZmqAsioBridge::Drain() {
  size_t handled = 0;
  while (!stopped_ && (socket_.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0) {
    if (handled == kBatch) {
      PostDrain();
      return;
    }
    parts_.clear();
    const auto got =
        zmq::recv_multipart(socket_, std::back_inserter(parts_), zmq::recv_flags::dontwait);
    if (!got) break;  // EAGAIN: ZMQ_EVENTS said otherwise; the next edge wakes us
    ++handled;
    on_message_(parts_);
  }
}

}  // namespace chorus::broker::gateway::detail
