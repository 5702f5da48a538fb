// chorus-chat-example: a minimal chat over the native protocol. Connects to one node endpoint,
// subscribes to a channel, prints every publication, publishes each stdin line as a JSON string.
// One thread: the client and stdin are polled together with chp::PollOnce.
//
//   chorus-chat-example --endpoint tcp://127.0.0.1:7001 --user alice --channel chat:lobby
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "chorus/client/client.h"
#include "chp/value_json.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;

// Stdin as a Pollable: hands complete lines to `on_line`, reports EOF.
class StdinLines final : public chorus::chp::Pollable {
 public:
  explicit StdinLines(std::function<void(const std::string&)> on_line)
      : on_line_(std::move(on_line)) {}
  bool eof() const { return eof_; }

  size_t AddPollItems(std::vector<zmq::pollitem_t>& items) override {
    if (eof_) return 0;
    items.push_back({nullptr, STDIN_FILENO, ZMQ_POLLIN, 0});
    return 1;
  }
  void HandleEvents(const zmq::pollitem_t* items, chorus::chp::Clock::time_point) override {
    if (eof_ || (items[0].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) == 0) return;
    char buf[4096];
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
    if (n <= 0) {
      eof_ = true;
      return;
    }
    buffer_.append(buf, static_cast<size_t>(n));
    for (size_t pos; (pos = buffer_.find('\n')) != std::string::npos;) {
      std::string line = buffer_.substr(0, pos);
      buffer_.erase(0, pos + 1);
      if (!line.empty()) on_line_(line);
    }
  }
  chorus::chp::Clock::time_point NextDeadline() const override {
    return chorus::chp::Clock::time_point::max();
  }

 private:
  std::function<void(const std::string&)> on_line_;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  namespace cc = chorus::client;
  CLI::App app{"Chorus native-protocol chat example"};
  cc::ClientOptions options;
  std::string endpoint;
  std::string channel = "chat";
  app.add_option("--endpoint", endpoint, "node native endpoint, e.g. tcp://127.0.0.1:7001")
      ->required();
  app.add_option("--channel", channel, "channel to join");
  app.add_option("--token", options.token, "JWT (HS256)");
  app.add_option("--user", options.user, "user name (node with client_insecure)");
  CLI11_PARSE(app, argc, argv);
  options.endpoints = {endpoint};
  if (auto ok = cc::Validate(options); !ok) {
    std::cerr << "bad options: " << ok.error() << "\n";
    return 2;
  }
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });

  zmq::context_t ctx;
  cc::ClientHandlers events;
  events.on_connected = [](const cc::ConnectResult& r) {
    std::cerr << "connected as " << r.client << " (node " << r.version << ")\n";
  };
  events.on_disconnected = [](const cc::DisconnectInfo& d) {
    std::cerr << "disconnected: " << d.code << " " << d.reason
              << (d.reconnect ? " (reconnecting)" : "") << "\n";
    if (!d.reconnect) g_stop = 1;
  };
  events.on_error = [](const cc::Error& e) { std::cerr << "connect failed: " << e << "\n"; };
  cc::Client client(ctx, options, events);

  cc::SubscriptionHandlers subs;
  subs.on_publication = [](const cc::Publication& p) {
    std::cout << (p.info ? p.info->user : std::string("server")) << "> " << p.data << std::endl;
  };
  subs.on_join = [](const cc::ClientInfo& i) { std::cerr << "* " << i.user << " joined\n"; };
  subs.on_leave = [](const cc::ClientInfo& i) { std::cerr << "* " << i.user << " left\n"; };
  subs.on_subscribed = [&](const cc::SubscribeResult& r) {
    std::cerr << "subscribed to " << channel
              << (r.was_recovering && !r.recovered ? " (history lost while away)" : "") << "\n";
  };
  subs.on_unsubscribed = [&](uint32_t code, const std::string& reason) {
    std::cerr << "unsubscribed: " << code << " " << reason << "\n";
    g_stop = 1;
  };
  subs.on_error = [&](const cc::Error& e) {
    std::cerr << "subscribe refused: " << e << "\n";
    g_stop = 1;
  };
  if (auto ok = client.Subscribe(channel, {}, subs); !ok) {
    std::cerr << "subscribe: " << ok.error() << "\n";
    return 1;
  }
  client.Connect();

  StdinLines input([&](const std::string& line) {
    auto sent =
        client.Publish(channel, chorus::chp::JsonString(line), [](cc::Result<cc::PublishResult> r) {
          if (!r) std::cerr << "publish failed: " << r.error() << "\n";
        });
    if (!sent) std::cerr << "publish: " << sent.error() << "\n";
  });
  while (g_stop == 0 && !input.eof()) {
    chorus::chp::PollOnce({&client, &input}, std::chrono::milliseconds(200));
  }
  // Stdin ended: let the last publishes get their replies before leaving.
  const auto until = chorus::chp::Clock::now() + std::chrono::seconds(5);
  while (g_stop == 0 && client.pending() > 0 && chorus::chp::Clock::now() < until) {
    client.RunOnce(std::chrono::milliseconds(100));
  }
  client.Disconnect();
  return 0;
}
