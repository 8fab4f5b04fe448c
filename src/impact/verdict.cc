#include "impact/verdict.h"

#include <fmt/format.h>

namespace pcipass {

const char* verdict_id(Verdict v) {
  switch (v) {
    case Verdict::kReady:
      return "ready";
    case Verdict::kNeedsGroup:
      return "needs-group";
    case Verdict::kGroupNotViable:
      return "group-not-viable";
    case Verdict::kNoIommu:
      return "no-iommu";
    case Verdict::kHostCritical:
      return "host-critical";
    case Verdict::kBridge:
      return "bridge";
  }
  return "?";
}

const char* verdict_label(Verdict v) {
  switch (v) {
    case Verdict::kReady:
      return "ready";
    case Verdict::kNeedsGroup:
      return "needs group";
    case Verdict::kGroupNotViable:
      return "group not viable";
    case Verdict::kNoIommu:
      return "no IOMMU";
    case Verdict::kHostCritical:
      return "host-critical";
    case Verdict::kBridge:
      return "bridge";
  }
  return "?";
}

Assessment assess(const Device& d, const GroupMap& groups, const HostImpact& impact,
                  bool iommu_on) {
  Assessment a;
  if (d.is_bridge() || d.is_host_bridge()) {
    a.verdict = Verdict::kBridge;
    a.reason = d.is_host_bridge()
                   ? "the host bridge is part of the platform and is never assigned"
                   : "bridges and ports stay with the host; the devices below them are assigned";
    return a;
  }
  if (impact.critical(d.address)) {
    a.verdict = Verdict::kHostCritical;
    a.reason = impact.critical_reason(d.address);
    return a;
  }
  const IommuGroup* g = d.iommu_group ? groups.find(*d.iommu_group) : nullptr;
  if (!g) {
    a.verdict = Verdict::kNoIommu;
    a.reason = iommu_on ? "the device has no IOMMU group"
                        : "the IOMMU is off: no device has an IOMMU group";
    return a;
  }
  std::vector<std::string> critical;
  for (const Device* other : g->endpoints()) {
    if (other == &d) continue;
    a.companions.push_back(other->address);
    if (impact.critical(other->address))
      critical.push_back(
          fmt::format("{} {}", other->address.str(), impact.critical_reason(other->address)));
  }
  if (!critical.empty()) {
    a.verdict = Verdict::kGroupNotViable;
    a.reason = fmt::format("group {} also holds {}", g->id, fmt::join(critical, "; "));
  } else if (!a.companions.empty()) {
    a.verdict = Verdict::kNeedsGroup;
    std::vector<std::string> names;
    for (size_t i = 0; i < a.companions.size() && i < 4; ++i)
      names.push_back(a.companions[i].str());
    std::string more =
        a.companions.size() > 4 ? fmt::format(" and {} more", a.companions.size() - 4) : "";
    a.reason = fmt::format("group {} must go along: {}{}", g->id, fmt::join(names, ", "), more);
  } else {
    a.verdict = Verdict::kReady;
    a.reason = driver_keeps_group_viable(d.driver) && d.driver
                   ? fmt::format("bound to {}; group {} is viable", *d.driver, g->id)
                   : fmt::format("alone in group {}", g->id);
  }
  return a;
}

}  // namespace pcipass
