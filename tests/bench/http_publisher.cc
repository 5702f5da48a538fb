#include "http_publisher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "http_head.h"

namespace chorus::bench {

namespace {

constexpr size_t kMaxHead = 16 * 1024;

}  // namespace

HttpPublisher::~HttpPublisher() {
  if (fd_ >= 0) close(fd_);
}

bool HttpPublisher::Connect(const std::string& host, uint16_t port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    Fail(std::string("socket: ") + strerror(errno));
    return false;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    Fail("bad address " + host);
    return false;
  }
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Fail(std::string("connect: ") + strerror(errno));
    return false;
  }
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  host_header_ = host + ":" + std::to_string(port);
  return true;
}

void HttpPublisher::Post(std::string_view target, std::string_view body) {
  out_ += "POST ";
  out_.append(target);
  out_ += " HTTP/1.1\r\nHost: " + host_header_ +
          "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n";
  out_.append(body);
  ++requests_;
}

bool HttpPublisher::Flush() {
  size_t sent = 0;
  while (fd_ >= 0 && sent < out_.size()) {
    const ssize_t n = send(fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Fail(std::string("send: ") + strerror(errno));
      break;
    }
    sent += static_cast<size_t>(n);
  }
  out_.clear();
  return fd_ >= 0;
}

bool HttpPublisher::AwaitResponses(uint64_t n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (responses_ < n && fd_ >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;  // the deadline is checked above
    const ssize_t got = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (got <= 0) {
      Fail(got == 0 ? "connection closed by the peer" : std::string("recv: ") + strerror(errno));
      break;
    }
    in_.append(buf, static_cast<size_t>(got));
    if (!ParseResponses()) break;
  }
  return responses_ >= n;
}

bool HttpPublisher::ParseResponses() {
  for (;;) {
    const size_t end = in_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (in_.size() > kMaxHead) {
        Fail("response head too long");
        return false;
      }
      return true;
    }
    const std::string_view head(in_.data(), end + 2);
    if (head.rfind("HTTP/1.1 ", 0) != 0 || head.size() < 12) {
      Fail("not an HTTP/1.1 response: " + std::string(head.substr(0, head.find("\r\n"))));
      return false;
    }
    const std::string_view length = HeaderValue(head, "Content-Length");
    if (length.empty()) {  // chunked or close-delimited: not what a publisher location sends
      Fail("response without Content-Length: " + std::string(head.substr(0, 200)));
      return false;
    }
    const size_t body = strtoul(std::string(length).c_str(), nullptr, 10);
    if (in_.size() < end + 4 + body) return true;
    const int status = atoi(std::string(head.substr(9, 3)).c_str());
    ++responses_;
    if (status < 200 || status > 299) {
      ++errors_;
      last_error_ = std::string(head.substr(0, head.find("\r\n")));
    }
    in_.erase(0, end + 4 + body);
  }
}

void HttpPublisher::Fail(std::string why) {
  ++errors_;
  last_error_ = std::move(why);
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace chorus::bench
