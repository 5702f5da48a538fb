// One keep-alive HTTP/1.1 client connection that POSTs bodies pipelined, for benchmarks that
// publish to a peer over HTTP (Nchan's `nchan_publisher` location, tests/bench/nchan_peer.h):
// Post() queues a request, Flush() writes everything queued in one go (blocking), and
// AwaitResponses() reads the responses (status line, headers, a Content-Length body). A POSIX
// socket, no Asio and no Chorus code, so it runs on the bench thread between the generator's
// loop runs (ws_load.h).
//
// Owner: one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace chorus::bench {

class HttpPublisher {
 public:
  HttpPublisher() = default;
  ~HttpPublisher();
  HttpPublisher(const HttpPublisher&) = delete;
  HttpPublisher& operator=(const HttpPublisher&) = delete;

  // Connects to host:port (blocking, TCP_NODELAY); false with last_error() set on failure.
  [[nodiscard]] bool Connect(const std::string& host, uint16_t port);
  // Queues `POST target` with `body` (Content-Type: text/plain).
  void Post(std::string_view target, std::string_view body);
  // Writes every queued request; false (last_error() set) when the connection failed.
  [[nodiscard]] bool Flush();
  // Reads responses until `n` have arrived in all, or `timeout`, or the connection failed;
  // returns whether `n` arrived.
  bool AwaitResponses(uint64_t n, std::chrono::milliseconds timeout);

  uint64_t requests() const { return requests_; }
  uint64_t responses() const { return responses_; }
  // Responses whose status was not 2xx, plus a response we could not read (then the
  // connection is given up).
  uint64_t errors() const { return errors_; }
  const std::string& last_error() const { return last_error_; }

 private:
  // Parses complete responses out of in_; false when one could not be read.
  bool ParseResponses();
  void Fail(std::string why);

  int fd_ = -1;
  std::string host_header_;
  std::string out_;  // queued requests
  std::string in_;   // bytes of responses not parsed yet
  uint64_t requests_ = 0, responses_ = 0, errors_ = 0;
  std::string last_error_;
};

}  // namespace chorus::bench
