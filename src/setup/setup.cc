#include "setup/setup.h"

#include <algorithm>

namespace pcipass::setup {

std::vector<change::Change> ordered_changes(std::vector<Part> parts) {
  std::stable_sort(parts.begin(), parts.end(),
                   [](const Part& a, const Part& b) { return a.kind < b.kind; });
  std::vector<change::Change> plan;
  for (auto& p : parts)
    for (auto& c : p.changes) plan.push_back(std::move(c));
  return plan;
}

Result<change::Applied> apply_parts(HostFs& fs, std::vector<Part> parts, const change::Ports& ports,
                                    const change::DurableRun& run) {
  std::vector<change::Change> plan = ordered_changes(std::move(parts));
  return change::apply_durable(fs, plan, ports, run);
}

}  // namespace pcipass::setup
