// Shared helpers for Chorus tests: waiting on conditions with deadlines (never sleeps as
// synchronisation) and real child processes on loopback.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace chorus::testing {

// Calls `pred` until it returns true or `timeout` passes; returns the last result. `pred` should
// do a bounded amount of work (e.g. poll a socket for a few ms) so the loop does not spin.
bool EventuallyTrue(const std::function<bool()>& pred,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5));

// A child process with its stdout readable line by line. Killed (SIGKILL) on destruction if it
// is still running.
class ChildProcess {
 public:
  ChildProcess(std::string path, std::vector<std::string> args);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Reads one line of stdout, waiting at most `timeout`; empty when none arrived.
  std::string ReadLine(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Sends a signal (SIGSTOP, SIGCONT, SIGTERM, SIGKILL...).
  void Signal(int sig);
  // Waits for exit up to `timeout`; returns the exit status as from waitpid, or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // SIGTERM, then wait; true when the process exited with status 0 (clean shutdown).
  bool Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  bool exited_ = false;
  int status_ = 0;
};

// Runs a command to completion; returns its exit code and captured stdout/stderr.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::string& path, const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20));

// "key=value" lookup in a line of space-separated fields (e.g. the server's banner line).
std::string Field(const std::string& line, const std::string& key);

}  // namespace chorus::testing
