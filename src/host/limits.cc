#include "host/limits.h"

#include <sstream>

namespace pcipass {
namespace {

// A limit column: "unlimited" or a decimal byte count.
bool parse_limit(const std::string& s, std::optional<uint64_t>& out) {
  if (s == "unlimited") {
    out.reset();
    return true;
  }
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  out = std::stoull(s);
  return true;
}

}  // namespace

std::optional<MemlockLimit> read_memlock_limit(const HostFs& fs) {
  auto text = fs.read("/proc/self/limits", 64 * 1024);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("Max locked memory")) continue;
    std::istringstream cols(line.substr(17));
    std::string soft, hard;
    cols >> soft >> hard;
    MemlockLimit m;
    if (!parse_limit(soft, m.soft) || !parse_limit(hard, m.hard)) return std::nullopt;
    return m;
  }
  return std::nullopt;
}

}  // namespace pcipass
