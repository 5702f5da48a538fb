// chorus-chp-server: a standalone CHP server, for the demo, tools and process-level tests.
// Prints one line "chorus-chp-server command=<endpoint> publisher=<endpoint> id=<id>" on stdout
// once bound, then serves until SIGINT/SIGTERM.
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <iostream>
#include <random>

#include <msgpack.hpp>

#include "chp/server.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop = true;
}

std::string PackMap(const std::map<std::string, std::string>& m) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, m);
  return std::string(buf.data(), buf.size());
}

// A small moving world for the demo: users joining and leaving a "lobby" with a TTL, and chat
// lines in "chat".
class Demo {
 public:
  void Step(chorus::chp::Server& s) {
    static const char* kUsers[] = {"ada", "grace", "linus", "ken", "barbara", "edsger"};
    const std::string user = kUsers[rng_() % 6];
    switch (rng_() % 3) {
      case 0:
        (void)s.Set("lobby/" + user, PackMap({{"user", user}, {"state", "online"}}), 5000);
        break;
      case 1:
        (void)s.Erase("lobby/" + user);
        break;
      default:
        (void)s.Set("chat/" + std::to_string(++line_ % 5),
                    PackMap({{"from", user}, {"text", "hello #" + std::to_string(line_)}}));
    }
  }

 private:
  std::mt19937 rng_{42};
  uint64_t line_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  chorus::chp::ServerOptions o;
  int heartbeat_ms = 500;
  int demo_ms = 0;
  std::string level = "info";
  CLI::App app{"chorus-chp-server: a standalone CHP server"};
  app.add_option("--command", o.command_endpoint, "ROUTER endpoint (port 0: pick a free one)");
  app.add_option("--publisher", o.publisher_endpoint, "XPUB endpoint (port 0: pick a free one)");
  app.add_option("--id", o.server_id, "server id (default: random)");
  app.add_option("--heartbeat-ms", heartbeat_ms, "heartbeat interval")
      ->check(CLI::Range(10, 60000));
  app.add_option("--demo-ms", demo_ms, "write demo changes every N ms (0: off)")
      ->check(CLI::Range(0, 60000));
  app.add_option("--log-level", level, "trace, debug, info, warn, error");
  app.add_option("--max-pending-bytes", o.max_pending_bytes,
                 "queued reply bytes for all peers together (CS-22)");
  app.add_option("--max-peer-pending-bytes", o.max_peer_pending_bytes,
                 "queued reply bytes of one peer above which its new replies are dropped (CS-22)");
  app.add_option("--reply-pipe-hwm", o.reply_pipe_hwm, "ROUTER SNDHWM in messages (CS-22)")
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--max-store-bytes", o.store.max_bytes, "key and value bytes stored (CS-8)");
  app.add_option("--dedup-window", o.dedup_window,
                 "accepted KVSET UUIDs remembered at most (CS-10)");
  int dedup_ms = 10'000;
  app.add_option("--dedup-window-ms", dedup_ms, "how long accepted KVSET UUIDs are remembered")
      ->check(CLI::Range(1, 3'600'000));
  CLI11_PARSE(app, argc, argv);
  o.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  o.dedup_window_ms = std::chrono::milliseconds(dedup_ms);
  chorus::chp::Log().set_level(spdlog::level::from_str(level));

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  zmq::context_t ctx;
  auto server = chorus::chp::Server::Create(ctx, o);
  if (!server) {
    std::cerr << "chorus-chp-server: cannot bind: " << server.error().message() << "\n";
    return 1;
  }
  std::cout << "chorus-chp-server command=" << (*server)->command_endpoint()
            << " publisher=" << (*server)->publisher_endpoint() << " id=" << (*server)->server_id()
            << std::endl;
  Demo demo;
  if (demo_ms > 0) {
    for (int i = 0; i < 24; ++i) demo.Step(**server);  // a populated world from the start
  }
  auto next_demo = chorus::chp::Clock::now();
  while (!g_stop) {
    (*server)->RunOnce(std::chrono::milliseconds(demo_ms > 0 ? std::min(demo_ms, 50) : 50));
    if (demo_ms > 0 && chorus::chp::Clock::now() >= next_demo) {
      demo.Step(**server);
      next_demo += std::chrono::milliseconds(demo_ms);
    }
  }
  chorus::chp::Log().info("chorus-chp-server: stopping");
  return 0;
}
