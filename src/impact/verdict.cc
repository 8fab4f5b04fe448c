#include "impact/verdict.h"

#include <algorithm>

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
  return Assessor(groups, impact, iommu_on)(d);
}

const Assessor::GroupFacts& Assessor::facts(const IommuGroup& g) {
  auto [it, added] = facts_.try_emplace(g.id);
  if (!added) return it->second;
  GroupFacts& f = it->second;
  f.endpoints = g.endpoints();
  for (const Device* e : f.endpoints)
    if (std::string why = impact_.critical_reason(e->address); !why.empty())
      f.critical.emplace_back(e, std::move(why));
  return f;
}

Assessment Assessor::operator()(const Device& d, bool companions) {
  Assessment a;
  if (d.is_bridge() || d.is_host_bridge()) {
    a.verdict = Verdict::kBridge;
    a.reason = d.is_host_bridge()
                   ? "the host bridge is part of the platform and is never assigned"
                   : "bridges and ports stay with the host; the devices below them are assigned";
    return a;
  }
  if (std::string why = impact_.critical_reason(d.address); !why.empty()) {
    a.verdict = Verdict::kHostCritical;
    a.reason = std::move(why);
    return a;
  }
  const IommuGroup* g = d.iommu_group ? groups_.find(*d.iommu_group) : nullptr;
  if (!g) {
    a.verdict = Verdict::kNoIommu;
    a.reason = iommu_on_ ? "the device has no IOMMU group"
                         : "the IOMMU is off: no device has an IOMMU group";
    return a;
  }
  const GroupFacts& f = facts(*g);
  // The reason names the first four companions and counts the rest: list assesses every device
  // of a group, so a walk over all endpoints per device was quadratic in the group's size
  // (callgrind, bench tree's 764-device group); only `companions` needs them all.
  std::string names;
  size_t named = 0, others = 0;
  for (const Device* other : f.endpoints) {
    if (other == &d) continue;
    if (companions) a.companions.push_back(other->address);
    if (named < 4) {
      names += named++ ? ", " : "";
      names += other->address.str();
    } else if (!companions) {
      break;
    }
  }
  others = f.endpoints.size() -
           (std::find(f.endpoints.begin(), f.endpoints.end(), &d) != f.endpoints.end() ? 1 : 0);
  std::string critical;
  for (const auto& [other, why] : f.critical)
    if (other != &d) {
      if (!critical.empty()) critical += "; ";
      critical += other->address.str();
      critical += ' ';
      critical += why;
    }
  // Put together by hand: list assesses every device, and four format calls a device were 4% of
  // its instructions at 4,096 devices (callgrind, bench tree).
  std::string group = "group " + std::to_string(g->id);
  if (!critical.empty()) {
    a.verdict = Verdict::kGroupNotViable;
    a.reason = group + " also holds " + critical;
  } else if (others > 0) {
    a.verdict = Verdict::kNeedsGroup;
    a.reason = group + " must go along: " + names;
    if (others > 4) a.reason += " and " + std::to_string(others - 4) + " more";
  } else {
    a.verdict = Verdict::kReady;
    a.reason = driver_keeps_group_viable(d.driver) && d.driver
                   ? "bound to " + *d.driver + "; " + group + " is viable"
                   : "alone in " + group;
  }
  return a;
}

}  // namespace pcipass
