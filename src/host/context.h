// What the process knows about itself, passed in rather than read globally: the environment,
// the user it runs as, the clock, and whether its HostFs is the running machine. The executable
// builds one from its real process (make_process_context); tests build their own. Nothing in the
// library reads the environment, the user id or the clock directly.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace pcipass {

struct ProcessContext {
  std::map<std::string, std::string> environment;
  uid_t uid = 0;
  pid_t pid = 0;
  // True when the HostFs is the machine pcipass runs on (root "/"), not a captured tree: only
  // then are kernel modules loaded and the process's own SSH session consulted. The CLI decides
  // it from --root; the library never looks at the root's name.
  bool live = false;
  // Wall clock (seconds since the epoch) and a sleep; null means the real ones.
  std::function<int64_t()> now;
  std::function<void(int ms)> sleep_ms;
  // Fills `n` bytes with randomness (a new mdev's UUID); false when none could be had. Null:
  // this process has no source, and what needs one asks the user instead.
  std::function<bool(unsigned char* out, size_t n)> random;

  std::optional<std::string> env(const std::string& name) const {
    auto it = environment.find(name);
    if (it == environment.end()) return std::nullopt;
    return it->second;
  }
  int64_t time_now() const;
  void sleep(int ms) const;
};

// The real process: environ, getuid(), getpid(), time(), nanosleep, getrandom(). Only main() calls
// this.
ProcessContext make_process_context(char** envp, bool live);

}  // namespace pcipass
