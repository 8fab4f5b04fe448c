#include "host/context.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
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
  p.random = [](unsigned char* out, size_t n) {
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::getrandom(out + got, n - got, 0);
      if (r < 0 && errno != EINTR) return false;
      if (r > 0) got += static_cast<size_t>(r);
    }
    return true;
  };
  return p;
}

}  // namespace pcipass
