// The fixture of the gateway's in-process WebSocket tests (gateway_ws_test.cc,
// gateway_threads_test.cc): the fake engine and server of gateway_test_support.h, Beast
// clients of gateway_ws_client.h, and waits for the engine-side events of a connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gateway_test_support.h"
#include "gateway_ws_client.h"

namespace gateway_test {

class WsFixture : public ThreadsFixture {
 protected:
  // Waits for the `open` of the client whose local port is `port`; its conn id, or 0.
  uint64_t WaitOpen(uint16_t client_port) {
    const std::string remote = "127.0.0.1:" + std::to_string(client_port);
    uint64_t id = 0;
    EventuallyTrue([&] {
      for (const auto& e : engine_->ws_events(0, "open")) {
        if (e.payload == remote) id = e.conn_id;
      }
      return id != 0;
    });
    return id;
  }

  std::unique_ptr<WsClient> Connect(uint64_t* id, int rcvbuf = 0) {
    auto c = std::make_unique<WsClient>(port(), rcvbuf);
    EXPECT_TRUE(c->ok());
    *id = c->ok() ? WaitOpen(c->local_port()) : 0;
    EXPECT_NE(*id, 0u);
    return c;
  }

  // The payload of the `closed` event of `id`, "" when none arrived within the deadline.
  std::string WaitClosedEvent(uint64_t id) {
    std::string code;
    EventuallyTrue([&] {
      const auto e = engine_->ws_events(id, "closed");
      if (!e.empty()) code = e.front().payload;
      return !e.empty();
    });
    return code;
  }

  void Send(uint64_t id, const std::string& bytes) {
    engine_->SendToGateway({"ws", "send", EncodeLe64(id), bytes});
  }
};

}  // namespace gateway_test
