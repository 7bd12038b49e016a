// Running the `thinwire` executable from tests: synchronously with captured output, or in the
// background (to kill it). No shell is involved; arguments are passed as they are. Optionally in
// another working directory and with a replaced environment.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace thinwire::test {

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  std::string out;
  std::string err;
};

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Where and how a process runs: `cwd` empty keeps the test's directory; `env` empty keeps the
// test's environment, else it is the whole environment ("NAME=value" strings).
struct ProcessOptions {
  std::filesystem::path cwd;
  std::vector<std::string> env;
};

// Starts argv[0] with stdout and stderr redirected to files; returns the pid.
inline pid_t spawn_process(std::vector<std::string> args, const std::filesystem::path& out,
                           const std::filesystem::path& err, const ProcessOptions& options = {}) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = options.env;
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(),
                             options.env.empty() ? environ : envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
  return pid;
}

// Waits up to `timeout` for pid; kills it (SIGKILL) when the time is up. Returns the exit code,
// or -1 for a process that was killed or died from a signal.
inline int wait_process(pid_t pid, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs to completion (at most `timeout`), capturing stdout and stderr through files in `scratch`.
inline ProcessResult run_process(const std::vector<std::string>& args,
                                 const std::filesystem::path& scratch,
                                 std::chrono::seconds timeout = std::chrono::seconds(120),
                                 const ProcessOptions& options = {}) {
  const std::filesystem::path out = scratch / "stdout.txt";
  const std::filesystem::path err = scratch / "stderr.txt";
  ProcessResult r;
  r.exit_code = wait_process(spawn_process(args, out, err, options), timeout);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace thinwire::test
