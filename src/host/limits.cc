#include "host/limits.h"

#include <fmt/format.h>

#include <charconv>
#include <sstream>

namespace pcipass {
namespace {

constexpr const char* kLimitsPath = "/proc/self/limits";

// A limit column: "unlimited" or a decimal byte count that fits 64 bits.
bool parse_limit(const std::string& s, std::optional<uint64_t>& out) {
  if (s == "unlimited") {
    out.reset();
    return true;
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return false;
  out = v;
  return true;
}

}  // namespace

Result<MemlockLimit> read_memlock_limit(const HostFs& fs) {
  Error cannot;
  cannot.kind = ErrorKind::kIo;
  cannot.message = fmt::format("cannot read Max locked memory in {}", kLimitsPath);
  cannot.path = kLimitsPath;
  auto text = fs.read(kLimitsPath, 64 * 1024);
  if (!text) return cannot;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("Max locked memory")) continue;
    std::istringstream cols(line.substr(17));
    std::string soft, hard;
    cols >> soft >> hard;
    MemlockLimit m;
    for (auto [column, out] : {std::pair{&soft, &m.soft}, std::pair{&hard, &m.hard}})
      if (!parse_limit(*column, *out)) {
        Error e = Error::invalid(fmt::format(
            "Max locked memory in {} is '{}', not unlimited or a byte count up to 2^64-1",
            kLimitsPath, column->substr(0, 32)));
        e.path = kLimitsPath;
        return e;
      }
    return m;
  }
  return cannot;
}

}  // namespace pcipass
