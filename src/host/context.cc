#include "host/context.h"

#include <time.h>
#include <unistd.h>

#include <cstring>

namespace pcipass {

int64_t ProcessContext::time_now() const {
  if (now) return now();
  return static_cast<int64_t>(::time(nullptr));
}

void ProcessContext::sleep(int ms) const {
  if (sleep_ms) return sleep_ms(ms);
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (::nanosleep(&ts, &ts) != 0) {
  }
}

ProcessContext make_process_context(char** envp, bool live) {
  ProcessContext p;
  for (char** e = envp; e && *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (!eq) continue;
    p.environment.emplace(std::string(*e, static_cast<size_t>(eq - *e)), std::string(eq + 1));
  }
  p.uid = ::getuid();
  p.pid = ::getpid();
  p.live = live;
  return p;
}

}  // namespace pcipass
