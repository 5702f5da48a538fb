// A WebSocket client for the gateway's tests (gateway_ws_test.cc, gateway_threads_test.cc,
// node_gateway_threads_test.cc): Beast's client on a private io_context that runs only inside
// its calls, each with a deadline, so a test never blocks for ever and never sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace gateway_test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using namespace std::chrono_literals;

// A WebSocket client on its own io_context, run only inside its calls, each with a deadline.
class WsClient {
  using tcp = asio::ip::tcp;

 public:
  // Connects to /connection/websocket and completes the handshake; ok() tells. `rcvbuf` > 0
  // shrinks the socket's receive buffer (a client that reads slowly fills up sooner).
  explicit WsClient(uint16_t port, int rcvbuf = 0) : ws_(io_) {
    beast::error_code ec;
    auto& s = ws_.next_layer();
    s.open(tcp::v4(), ec);
    if (!ec && rcvbuf > 0) s.set_option(asio::socket_base::receive_buffer_size(rcvbuf), ec);
    if (!ec) s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (ec) return;
    local_port_ = s.local_endpoint(ec).port();
    bool done = false;
    ws_.async_handshake("127.0.0.1:" + std::to_string(port), "/connection/websocket",
                        [&](beast::error_code e) {
                          ec = e;
                          done = true;
                        });
    ok_ = RunUntil(done, 5s) && !ec;
  }

  bool ok() const { return ok_; }
  uint16_t local_port() const { return local_port_; }

  bool Send(const std::string& text, bool binary = false) {
    ws_.text(!binary);
    bool done = false;
    beast::error_code ec;
    ws_.async_write(asio::buffer(text), [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    return RunUntil(done, 5s) && !ec;
  }

  // The next message, or nullopt on timeout (the read stays pending for the next call) or
  // when the connection ended (closed() and reason() tell more).
  std::optional<std::string> Read(std::chrono::milliseconds timeout = 5s) {
    if (closed_) return std::nullopt;
    if (!reading_) {
      reading_ = true;
      read_done_ = false;
      ws_.async_read(buffer_, [this](beast::error_code e, size_t) {
        read_ec_ = e;
        read_done_ = true;
      });
    }
    if (!RunUntil(read_done_, timeout)) return std::nullopt;
    reading_ = false;
    if (read_ec_) {
      closed_ = true;
      return std::nullopt;
    }
    std::string out = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    return out;
  }

  // Reads and drops messages until the connection ends; true when it did within `timeout`.
  bool WaitClosed(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      Read(left);
    }
    return true;
  }

  bool closed() const { return closed_; }
  beast::error_code close_error() const { return read_ec_; }
  // The close frame the server sent (code 0 when it sent none).
  websocket::close_reason reason() const { return ws_.reason(); }

  bool Close(uint16_t code) {
    bool done = false;
    beast::error_code ec;
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code)),
                    [&](beast::error_code e) {
                      ec = e;
                      done = true;
                    });
    return RunUntil(done, 5s) && !ec;
  }

 private:
  bool RunUntil(bool& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    io_.restart();
    while (!done && io_.run_one_until(deadline) > 0) {
    }
    return done;
  }

  asio::io_context io_;
  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
  bool ok_ = false;
  uint16_t local_port_ = 0;
  bool reading_ = false;
  bool read_done_ = false;
  bool closed_ = false;
  beast::error_code read_ec_;
};

inline std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

}  // namespace gateway_test
