// CommandRunner: the one way pcipass runs programs (update-grub, dracut, kernel-install,
// mdevctl...). argv goes to execve, never through a shell; the environment is explicit; stdin is
// optional; stdout and stderr are captured; a timeout kills the child. Nothing else in the
// library calls system, popen, fork or exec. Tests use a fake that records each argv and replays
// scripted results (tests/unit/fake_runner.h), as ninja's FakeCommandRunner does.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace pcipass {

struct Invocation {
  std::vector<std::string> argv;                   // argv[0] is an absolute path or a name on PATH
  std::map<std::string, std::string> environment;  // the child's whole environment
  std::optional<std::string> stdin_data;           // nullopt: /dev/null
  int timeout_ms = 10 * 60 * 1000;
  std::string text() const;  // argv shell-quoted for display: update-grub, 'a b'
};

struct CommandResult {
  int exit_status = 0;  // 0..255 when the child exited
  int signal = 0;       // non-zero when a signal ended it (SIGKILL after a timeout)
  bool timed_out = false;
  std::string out, err;
  bool ok() const { return exit_status == 0 && signal == 0 && !timed_out; }
};

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // Runs the command to completion. An Error only when it could not be run at all (not found,
  // not executable, fork failed); a non-zero exit is a CommandResult (see checked()).
  virtual Result<CommandResult> run(const Invocation& cmd) = 0;

  // run(), then an Error naming argv[0], the exit status (or signal, or timeout) and the tail of
  // stderr when it did not succeed.
  Result<CommandResult> checked(const Invocation& cmd);
  // That error for a result that did not succeed.
  static Error failure(const Invocation& cmd, const CommandResult& r);
};

// The real runner: posix_spawn (PATH searched in the command's environment), pipes, poll,
// SIGKILL on timeout.
std::unique_ptr<CommandRunner> make_real_runner();
// For a captured tree (--root): runs nothing, since update-initramfs or lsinitramfs would act on
// the machine pcipass runs on, not on the tree. Every run() is an error naming the program and
// `root`.
std::unique_ptr<CommandRunner> make_tree_runner(std::string root);

}  // namespace pcipass
