// chorusd: the Chorus broker node. Thin main: flags, config, Node, signals.
//   chorusd --config chorus.toml [--set key=value ...]
//   chorusd --check-config chorus.toml
#include <csignal>
#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "broker/config/config.h"
#include "broker/gateway/log.h"
#include "broker/node/fd_limit.h"
#include "broker/node/log.h"
#include "broker/node/node.h"
#include "chp/log.h"

namespace {

spdlog::level::level_enum SpdLevel(chorus::broker::LogLevel l) {
  using chorus::broker::LogLevel;
  switch (l) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

int main(int argc, char** argv) {
  namespace broker = chorus::broker;
  CLI::App app{"chorusd: the Chorus broker node"};
  std::string config_path, check_path;
  std::vector<std::string> overrides;
  app.add_option("--config,-c", config_path,
                 "TOML configuration file (default: built-in defaults)");
  app.add_option("--check-config", check_path, "Validate a configuration file and exit");
  app.add_option("--set", overrides, "Override one key: --set http.port=0 (repeatable)");
  CLI11_PARSE(app, argc, argv);

  if (!check_path.empty()) {
    auto cfg = broker::LoadConfig(check_path);
    if (cfg)
      cfg = [&]() -> broker::ConfigResult<broker::NodeConfig> {
        auto c = *cfg;
        auto r = broker::ApplyOverrides(c, overrides);
        if (!r) return broker::ConfigError{r.error()};
        return c;
      }();
    if (!cfg) {
      std::cerr << "chorusd: " << cfg.error() << "\n";
      return 2;
    }
    std::cout << check_path << ": ok\n" << broker::DescribeConfig(*cfg) << "\n";
    return 0;
  }

  broker::NodeConfig config;
  if (!config_path.empty()) {
    auto loaded = broker::LoadConfig(config_path);
    if (!loaded) {
      std::cerr << "chorusd: " << loaded.error() << "\n";
      return 2;
    }
    config = *loaded;
  }
  if (auto r = broker::ApplyOverrides(config, overrides); !r) {
    std::cerr << "chorusd: " << r.error() << "\n";
    return 2;
  }

  const auto level = SpdLevel(config.node.log_level);
  chorus::broker::node::Log().set_level(level);
  chorus::chp::Log().set_level(level);
  chorus::broker::gateway::Log().set_level(level);  // before the gateway's startup lines

  // Descriptors: raise the soft limit, then fit http.max_connections under it (fd_limit.h).
  uint64_t nofile_before = 0;
  const uint64_t nofile = chorus::broker::node::RaiseFileLimit(&nofile_before);
  if (nofile != nofile_before) {
    chorus::broker::node::Log().info("descriptor limit raised from {} to {}", nofile_before,
                                     nofile);
  }
  const auto plan = chorus::broker::node::PlanDescriptors(config.http, nofile);
  if (!plan.error.empty()) {
    std::cerr << "chorusd: " << plan.error << "\n";
    return 2;
  }
  if (!plan.warning.empty()) chorus::broker::node::Log().warn("{}", plan.warning);
  config.http.max_connections = plan.max_connections;

  // Block the signals before any thread starts so only sigwait below receives them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto node = chorus::broker::node::Node::Start(config);
  if (!node) {
    std::cerr << "chorusd: " << node.error() << "\n";
    return 1;
  }
  chorus::broker::node::Log().info("{}", broker::DescribeConfig(config));
  std::cout << (*node)->Banner() << std::endl;  // the machine-readable ready line (stdout)
  chorus::broker::node::Log().info("{}", (*node)->Banner());

  int sig = 0;
  sigwait(&sigs, &sig);
  chorus::broker::node::Log().info("signal {}: shutting down", sig);
  // C-20: SIGTERM drains a cluster member first (cluster.drain_timeout_ms); SIGINT stops at once.
  if (sig == SIGTERM) {
    // With planned handoff off nothing can move away: the clients get 3001 at once and the
    // partitions fail over once this node is declared dead (docs/operations.md).
    (*node)->Drain(std::chrono::milliseconds(config.cluster.drain_timeout_ms),
                   config.cluster.planned_handoff);
  }
  (*node)->Stop();
  chorus::broker::node::Log().info("stopped");
  return 0;
}
