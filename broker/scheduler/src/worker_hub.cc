// WorkerHub (worker_hub.h): the ROUTER endpoint for external workers.
#include "broker/scheduler/worker_hub.h"

#include <zmq_addon.hpp>

#include <future>
#include <vector>

namespace chorus::broker::scheduler {
namespace {

constexpr int kHwm = 10'000;  // messages queued per socket direction (bounded)
const std::string kStop = "stop";

zmq::message_t Msg(const std::string& s) {
  return zmq::message_t(s.data(), s.size());
}

}  // namespace

std::unique_ptr<WorkerHub> WorkerHub::Start(zmq::context_t& ctx, const std::string& endpoint,
                                            Deliver deliver, std::string* error) {
  std::unique_ptr<WorkerHub> hub(new WorkerHub(ctx, std::move(deliver)));
  hub->inproc_ = "inproc://chorus-worker-hub-" + std::to_string(reinterpret_cast<uintptr_t>(&*hub));
  // The sockets are made here and then handed to the hub thread, which alone uses them.
  try {
    zmq::socket_t router(ctx, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxFrameBytes));
    router.set(zmq::sockopt::sndhwm, kHwm);
    router.set(zmq::sockopt::rcvhwm, kHwm);
    router.bind(endpoint);
    hub->bound_ = router.get(zmq::sockopt::last_endpoint);
    zmq::socket_t pull(ctx, zmq::socket_type::pull);
    pull.set(zmq::sockopt::linger, 0);
    pull.set(zmq::sockopt::rcvhwm, kHwm);
    pull.bind(hub->inproc_);
    WorkerHub* raw = hub.get();
    hub->thread_ = std::thread([raw, r = std::move(router), p = std::move(pull)]() mutable {
      raw->Loop(std::move(r), std::move(p));
    });
  } catch (const zmq::error_t& e) {  // the library throws: the boundary
    *error = "scheduler.worker_endpoint: cannot bind " + endpoint + ": " + e.what();
    return nullptr;
  }
  return hub;
}

WorkerHub::~WorkerHub() {
  if (!thread_.joinable()) return;
  if (!done_.load()) {
    zmq::socket_t stop(ctx_, zmq::socket_type::push);
    stop.set(zmq::sockopt::linger, 1000);
    stop.connect(inproc_);
    stop.send(zmq::message_t(), zmq::send_flags::sndmore);
    stop.send(Msg(kStop), zmq::send_flags::none);
  }
  thread_.join();
}

std::unique_ptr<WorkerHub::Sender> WorkerHub::MakeSender() {
  zmq::socket_t push(ctx_, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.set(zmq::sockopt::sndhwm, kHwm);
  push.connect(inproc_);
  return std::unique_ptr<Sender>(new Sender(std::move(push)));
}

bool WorkerHub::Sender::Send(const std::string& rid, const wire::Message& m) {
  if (rid.empty()) return false;
  const std::string frame = wire::Encode(m);
  if (!push_.send(Msg(rid), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
  return push_.send(Msg(frame), zmq::send_flags::dontwait).has_value();
}

void WorkerHub::Loop(zmq::socket_t router, zmq::socket_t pull) {
  zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                             {pull.handle(), 0, ZMQ_POLLIN, 0}};
  auto send_to = [&router](const zmq::message_t& rid, const std::string& frame) {
    // A worker that went away or whose queue is full loses the message (W-9, W-10).
    zmq::message_t id(rid.data(), rid.size());
    if (router.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      (void)router.send(Msg(frame), zmq::send_flags::dontwait);
    }
  };
  for (;;) {
    zmq::poll(items, 2, std::chrono::milliseconds(-1));
    if (items[1].revents & ZMQ_POLLIN) {
      std::vector<zmq::message_t> parts;
      (void)zmq::recv_multipart(pull, std::back_inserter(parts));
      if (parts.size() == 2 && parts[0].size() == 0 && parts[1].to_string_view() == kStop) return;
      if (parts.size() == 2) send_to(parts[0], parts[1].to_string());
    }
    if (items[0].revents & ZMQ_POLLIN) {
      for (int i = 0; i < 256; ++i) {  // a bounded burst, then look at the other socket
        std::vector<zmq::message_t> parts;
        auto n = zmq::recv_multipart(router, std::back_inserter(parts), zmq::recv_flags::dontwait);
        if (!n) break;
        std::string why;
        std::optional<wire::Message> m;
        if (parts.size() != 2) {
          why = "a message must be one frame";
        } else {
          m = wire::Decode(parts[1].to_string_view(), &why);
          if (m &&
              !(std::holds_alternative<wire::Hello>(*m) || std::holds_alternative<wire::Ping>(*m) ||
                std::holds_alternative<wire::HeartbeatMsg>(*m) ||
                std::holds_alternative<wire::DoneMsg>(*m))) {
            why = std::string("type '") + wire::TypeName(*m) + "' is not sent by workers";
            m.reset();
          }
        }
        if (!m) {
          send_to(parts[0],
                  wire::Encode(wire::ErrorMsg{static_cast<uint32_t>(wire::ErrorCode::kMalformed),
                                              "malformed: " + why}));
          continue;
        }
        if (!deliver_(Inbound{parts[0].to_string(), std::move(*m)})) {
          done_.store(true);
          return;
        }
      }
    }
  }
}

}  // namespace chorus::broker::scheduler
