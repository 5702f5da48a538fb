// A receiver thread for ZeroMQ subscriber sockets (broker_bench's raw libzmq and chorus
// sessions, cluster_bench's chorus subscriber): drains every socket until stopped, counting
// messages and sampling publish->deliver latencies (fanout.h's Deliveries).
#pragma once

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "fanout.h"

namespace chorus::bench {

// Owner: the thread that made it; the sockets belong to its receiver thread until
// TakeSamples() or destruction.
class ZmqReceiver {
 public:
  explicit ZmqReceiver(std::vector<zmq::socket_t*> socks) : socks_(std::move(socks)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~ZmqReceiver() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  ZmqReceiver(const ZmqReceiver&) = delete;
  ZmqReceiver& operator=(const ZmqReceiver&) = delete;
  uint64_t received() const { return deliveries_.received(); }
  std::vector<uint32_t> TakeSamples() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return deliveries_.Take();
  }

 private:
  void Run() {
    std::vector<zmq::pollitem_t> items;
    for (auto* s : socks_) items.push_back({s->handle(), 0, ZMQ_POLLIN, 0});
    zmq::message_t msg;
    while (!stop_.load(std::memory_order_relaxed)) {
      if (zmq::poll(items.data(), items.size(), std::chrono::milliseconds(20)) <= 0) continue;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        while (socks_[i]->recv(msg, zmq::recv_flags::dontwait)) {
          deliveries_.Record(static_cast<const char*>(msg.data()), msg.size());
        }
      }
      deliveries_.Commit();
    }
  }

  std::vector<zmq::socket_t*> socks_;
  Deliveries deliveries_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace chorus::bench
