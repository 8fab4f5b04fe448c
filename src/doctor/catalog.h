// The doctor's catalog: which messages mean which cause, and how each cause is checked on this
// host. One row per cause; the order is the order of matching (the first row whose pattern
// matches a line explains it).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "doctor/doctor.h"

namespace pcipass::doctor {

// What an examiner may look at: the host, the kernel log, and the failure's lines.
struct Probe {
  const HostFs& fs;
  const KernelLog& kernel;
  const std::vector<std::string_view>& section;
  std::string_view line;  // the line that matched
};

// Fills the finding's explanation, evidence, fix and `confirmed`; may change its cause when the
// evidence points elsewhere (a container refused for an RMRR rather than interrupt remapping).
using Examine = void (*)(const Probe&, Finding&);

struct Entry {
  Cause cause;
  std::vector<std::string_view> patterns;  // any one matches; '*' is any text
  Examine examine;
};

const std::vector<Entry>& catalog();

}  // namespace pcipass::doctor
