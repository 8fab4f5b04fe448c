#include "setup/setup.h"

#include <algorithm>

namespace pcipass::setup {

Result<change::Applied> apply_parts(HostFs& fs, std::vector<Part> parts, const change::Ports& ports,
                                    const change::DurableRun& run) {
  std::stable_sort(parts.begin(), parts.end(),
                   [](const Part& a, const Part& b) { return a.kind < b.kind; });
  std::vector<change::Change> plan;
  for (auto& p : parts)
    for (auto& c : p.changes) plan.push_back(std::move(c));
  return change::apply_durable(fs, plan, ports, run);
}

}  // namespace pcipass::setup
