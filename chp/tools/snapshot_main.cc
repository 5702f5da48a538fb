// chorus-snapshot: prints a CHP server's state (docs/operations.md, "Inspecting state").
//   chorus-snapshot <endpoint> [--subtree S] [--json] [--follow] [--stats] [--scheduler]
//                   [--timeout MS]
// Exit codes: 0 ok, 1 usage error, 2 server unreachable or no answer in time.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <map>

#include "chp/agent.h"
#include "chp/keys.h"
#include "chp/value_json.h"
#include "snapshot_scheduler.h"

namespace {

using namespace chorus::chp;

std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop = true;
}

struct Flags {
  std::string endpoint;
  std::string subtree;
  bool json = false;
  bool follow = false;
  bool stats = false;
  bool scheduler = false;
  int timeout_ms = 3000;
  int follow_ms = 0;  // 0: until interrupted
};

// Prints changes while following; one line each, with the sequence (spec: "--follow").
class FollowPrinter final : public ReplicaObserver {
 public:
  explicit FollowPrinter(const Flags& f) : flags_(f) {}
  bool enabled = false;

  void OnReset(std::string_view subtree, const Position& p, const EntryMap& entries) override {
    if (!enabled) return;
    if (flags_.json) {
      std::cout << "{\"event\":\"reset\",\"subtree\":" << JsonString(subtree)
                << ",\"epoch\":" << JsonString(p.epoch) << ",\"sequence\":" << p.seq
                << ",\"entries\":" << entries.size() << "}\n";
    } else {
      std::cout << "reset " << subtree << " epoch=" << (p.epoch.empty() ? "-" : p.epoch)
                << " seq=" << p.seq << " entries=" << entries.size() << "\n";
    }
    std::cout.flush();
  }
  void OnChange(std::string_view subtree, std::string_view epoch, const Record& r) override {
    if (!enabled) return;
    const bool has_value = r.op == Op::kSet;
    if (flags_.json) {
      std::cout << "{\"event\":\"change\",\"subtree\":" << JsonString(subtree)
                << ",\"key\":" << JsonString(r.key) << ",\"op\":\"" << OpName(r.op)
                << "\",\"epoch\":" << JsonString(epoch) << ",\"sequence\":" << r.seq;
      if (has_value) std::cout << ",\"value\":" << MsgpackToJson(r.value);
      if (r.ttl_ms != 0) std::cout << ",\"ttl_ms\":" << r.ttl_ms;
      std::cout << "}\n";
    } else {
      std::cout << "seq=" << r.seq << ' ' << subtree << '/' << r.key << ' ' << OpName(r.op);
      if (has_value) std::cout << ' ' << MsgpackToJson(r.value);
      if (r.ttl_ms != 0) std::cout << " ttl=" << r.ttl_ms << "ms";
      std::cout << "\n";
    }
    std::cout.flush();
  }

 private:
  const Flags& flags_;
};

std::vector<std::pair<std::string, const ReplicaEntry*>> Sorted(const EntryMap& entries) {
  std::vector<std::pair<std::string, const ReplicaEntry*>> out;
  out.reserve(entries.size());
  for (const auto& [k, e] : entries) out.emplace_back(k, &e);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

void PrintState(const ReplicaAgent& agent, const Flags& f) {
  if (f.json) {
    std::cout << "{";
    bool first = true;
    for (const auto& [name, r] : agent.replicas()) {
      std::cout << (first ? "" : ",") << JsonString(name)
                << ":{\"epoch\":" << JsonString(r.position().epoch)
                << ",\"sequence\":" << r.position().seq << ",\"entries\":{";
      bool first_entry = true;
      for (const auto& [key, e] : Sorted(r.entries())) {
        std::cout << (first_entry ? "" : ",") << JsonString(key) << ':' << MsgpackToJson(e->value);
        first_entry = false;
      }
      std::cout << "}}";
      first = false;
    }
    std::cout << "}\n";
    return;
  }
  for (const auto& [name, r] : agent.replicas()) {
    std::cout << "subtree " << name
              << "  epoch=" << (r.position().epoch.empty() ? "-" : r.position().epoch)
              << "  seq=" << r.position().seq << "  entries=" << r.entries().size() << "\n";
    for (const auto& [key, e] : Sorted(r.entries())) {
      std::cout << "  " << key << "  seq=" << e->seq << "  " << MsgpackToJson(e->value) << "\n";
    }
  }
}

void PrintStats(const ReplicaAgent& agent, const Flags& f) {
  uint64_t total_keys = 0, total_bytes = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> rows;
  for (const auto& [name, r] : agent.replicas()) {
    uint64_t bytes = 0;
    for (const auto& [k, e] : r.entries()) bytes += k.size() + e.value.size();
    rows[name] = {r.entries().size(), bytes};
    total_keys += r.entries().size();
    total_bytes += bytes;
  }
  if (f.json) {
    std::cout << "{\"server_id\":" << JsonString(agent.server_id()) << ",\"subtrees\":{";
    bool first = true;
    for (const auto& [name, r] : agent.replicas()) {
      std::cout << (first ? "" : ",") << JsonString(name)
                << ":{\"epoch\":" << JsonString(r.position().epoch)
                << ",\"sequence\":" << r.position().seq << ",\"keys\":" << rows[name].first
                << ",\"bytes\":" << rows[name].second << "}";
      first = false;
    }
    std::cout << "},\"total\":{\"subtrees\":" << rows.size() << ",\"keys\":" << total_keys
              << ",\"bytes\":" << total_bytes << "}}\n";
    return;
  }
  std::cout << "server " << agent.server_id() << "\n";
  std::printf("%-32s %-18s %12s %10s %12s\n", "SUBTREE", "EPOCH", "SEQUENCE", "KEYS", "BYTES");
  std::fflush(stdout);
  for (const auto& [name, r] : agent.replicas()) {
    std::printf("%-32s %-18s %12llu %10llu %12llu\n", name.c_str(),
                r.position().epoch.empty() ? "-" : r.position().epoch.c_str(),
                static_cast<unsigned long long>(r.position().seq),
                static_cast<unsigned long long>(rows[name].first),
                static_cast<unsigned long long>(rows[name].second));
  }
  std::printf("%-32s %-18s %12s %10llu %12llu\n", "TOTAL", "", "",
              static_cast<unsigned long long>(total_keys),
              static_cast<unsigned long long>(total_bytes));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"chorus-snapshot: print the state of a CHP server"};
  app.add_option("endpoint", f.endpoint, "server command endpoint, e.g. tcp://127.0.0.1:5570")
      ->required();
  app.add_option("--subtree", f.subtree, "only this subtree (default: all)");
  app.add_flag("--json", f.json, "print JSON instead of a table");
  app.add_flag("--follow", f.follow, "keep printing changes after the snapshot");
  app.add_flag("--stats", f.stats, "print counts, bytes and positions per subtree");
  app.add_flag("--scheduler", f.scheduler,
               "print the sync scheduler's subtrees s.<user> as queues, jobs and leases");
  app.add_option("--timeout", f.timeout_ms, "milliseconds to wait for the snapshot")
      ->check(CLI::Range(1, 3'600'000));
  app.add_option("--follow-for", f.follow_ms, "with --follow: stop after this many ms")
      ->check(CLI::Range(0, 86'400'000));
  CLI11_PARSE(app, argc, argv);

  chorus::chp::Log().set_level(spdlog::level::err);
  if (!f.subtree.empty() && !IsValidSubtree(f.subtree)) {
    std::cerr << "chorus-snapshot: invalid subtree name '" << f.subtree << "'\n";
    return 1;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  zmq::context_t ctx;
  AgentOptions options;
  options.endpoints = {f.endpoint};
  options.connect_timeout = std::chrono::milliseconds(f.timeout_ms);
  FollowPrinter printer(f);
  ReplicaAgent agent(ctx, options, &printer);
  try {
    if (f.subtree.empty()) {
      agent.FollowAll();
    } else {
      (void)agent.Follow(f.subtree);
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(f.timeout_ms);
    while (!agent.AllLive() && !g_stop && Clock::now() < deadline) {
      agent.RunOnce(std::chrono::milliseconds(20));
    }
  } catch (const zmq::error_t& e) {
    std::cerr << "chorus-snapshot: " << f.endpoint << ": " << e.what() << "\n";
    return 1;
  }
  if (!agent.AllLive()) {
    if (g_stop) return 130;
    std::cerr << "chorus-snapshot: no answer from " << f.endpoint << " within " << f.timeout_ms
              << " ms\n";
    return 2;
  }
  if (f.scheduler) {
    PrintSchedulerState(agent.replicas(), std::cout);
  } else if (f.stats) {
    PrintStats(agent, f);
  } else {
    PrintState(agent, f);
  }
  std::cout.flush();
  if (!f.follow) return 0;

  printer.enabled = true;
  const auto follow_end = f.follow_ms > 0 ? Clock::now() + std::chrono::milliseconds(f.follow_ms)
                                          : Clock::time_point::max();
  bool was_connected = true;
  while (!g_stop && Clock::now() < follow_end) {
    agent.RunOnce(std::chrono::milliseconds(50));
    if (was_connected != agent.connected()) {
      was_connected = agent.connected();
      std::cerr << "chorus-snapshot: " << (was_connected ? "reconnected to " : "lost ")
                << f.endpoint << "\n";
    }
  }
  return 0;
}
