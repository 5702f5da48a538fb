// A lossy link between CHP replicas and one CHP server, for the convergence fault tests: a
// command relay (ROUTER front, DEALER back; the server returns the envelope unchanged, CW-5)
// that rewrites HELLO_OK's publisher endpoint to its own, and a publisher relay (XSUB back,
// XPUB front, verbose, so every subscription reaches the server and gets its welcome, CS-13)
// that drops the publisher messages a filter picks: single lost POSITION or HUGZ messages, or a
// loss rate. It is a chp::Pollable, polled on the test thread with the rest.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "chp/codec.h"
#include "chp/loop.h"

namespace chorus::chp {

class LossyLink final : public Pollable {
 public:
  // Returns true to drop the publisher message [topic][body] (decoded when it decodes).
  using Filter = std::function<bool(const PubMessage* decoded, std::string_view topic)>;

  LossyLink(zmq::context_t& ctx, const std::string& server_command,
            const std::string& server_publisher)
      : front_cmd_(ctx, zmq::socket_type::router),
        back_cmd_(ctx, zmq::socket_type::dealer),
        front_pub_(ctx, zmq::socket_type::xpub),
        back_pub_(ctx, zmq::socket_type::xsub) {
    for (zmq::socket_t* s : {&front_cmd_, &back_cmd_, &front_pub_, &back_pub_}) {
      s->set(zmq::sockopt::linger, 0);
    }
    front_pub_.set(zmq::sockopt::xpub_verbose, 1);
    front_pub_.set(zmq::sockopt::sndhwm, 100'000);
    back_pub_.set(zmq::sockopt::rcvhwm, 100'000);
    front_cmd_.bind("tcp://127.0.0.1:0");
    front_pub_.bind("tcp://127.0.0.1:0");
    command_endpoint_ = front_cmd_.get(zmq::sockopt::last_endpoint);
    publisher_endpoint_ = front_pub_.get(zmq::sockopt::last_endpoint);
    back_cmd_.connect(server_command);
    back_pub_.connect(server_publisher);
  }

  const std::string& command_endpoint() const { return command_endpoint_; }
  void set_filter(Filter f) { filter_ = std::move(f); }
  // Returns true to drop a reply on its way to a replica (e.g. KVACKs: lost acknowledgements).
  void set_reply_filter(std::function<bool(const ReplyMessage&)> f) {
    reply_filter_ = std::move(f);
  }
  uint64_t dropped() const { return dropped_; }

  size_t AddPollItems(std::vector<zmq::pollitem_t>& items) override {
    for (zmq::socket_t* s : {&front_cmd_, &back_cmd_, &front_pub_, &back_pub_}) {
      items.push_back({s->handle(), 0, ZMQ_POLLIN, 0});
    }
    return 4;
  }
  Clock::time_point NextDeadline() const override { return Clock::time_point::max(); }
  void HandleEvents(const zmq::pollitem_t* items, Clock::time_point) override {
    if (items[0].revents & ZMQ_POLLIN) Relay(front_cmd_, back_cmd_, false);
    if (items[1].revents & ZMQ_POLLIN) Relay(back_cmd_, front_cmd_, true);
    if (items[2].revents & ZMQ_POLLIN) Relay(front_pub_, back_pub_, false);  // subscriptions
    if (items[3].revents & ZMQ_POLLIN) RelayPub();
  }

 private:
  void Relay(zmq::socket_t& from, zmq::socket_t& to, bool replies) {
    for (int n = 0; n < 1000; ++n) {
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(from, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        return;
      }
      if (replies && !frames.empty()) {
        // HELLO_OK: the replica must subscribe here, not at the server (CR-2 keeps our port).
        auto decoded = DecodeReply(frames.back().to_string_view());
        if (decoded && reply_filter_ && reply_filter_(*decoded)) {
          ++dropped_;
          continue;
        }
        if (decoded) {
          if (auto* ok = std::get_if<HelloOk>(&*decoded)) {
            ok->publisher = publisher_endpoint_;
            frames.back() = zmq::message_t(Encode(*ok));
          }
        }
      }
      (void)zmq::send_multipart(to, frames, zmq::send_flags::dontwait);
    }
  }
  void RelayPub() {
    for (int n = 0; n < 10'000; ++n) {
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(back_pub_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        return;
      }
      if (frames.size() == 2 && filter_) {
        auto decoded = DecodePub(frames[0].to_string_view(), frames[1].to_string_view());
        if (filter_(decoded ? &*decoded : nullptr, frames[0].to_string_view())) {
          ++dropped_;
          continue;
        }
      }
      (void)zmq::send_multipart(front_pub_, frames, zmq::send_flags::dontwait);
    }
  }

  zmq::socket_t front_cmd_, back_cmd_, front_pub_, back_pub_;
  std::string command_endpoint_, publisher_endpoint_;
  Filter filter_;
  std::function<bool(const ReplyMessage&)> reply_filter_;
  uint64_t dropped_ = 0;
};

}  // namespace chorus::chp
