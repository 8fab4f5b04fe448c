// The passthrough verdict of one device: IOMMU on, group viability (pci/groups) and what the host
// would lose (impact) together. Its own file because it joins the PCI view with the host's uses.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "impact/impact.h"
#include "pci/groups.h"

namespace pcipass {

enum class Verdict { kReady, kNeedsGroup, kGroupNotViable, kNoIommu, kHostCritical, kBridge };
const char* verdict_id(Verdict v);     // "ready", "needs-group", ... (JSON)
const char* verdict_label(Verdict v);  // "ready", "needs group", ... (human)

struct Assessment {
  Verdict verdict = Verdict::kNoIommu;
  std::string reason;
  std::vector<PciAddress> companions;  // other endpoints of the group that must come along
};

// Can this device be given to a VM, and what would come along?
Assessment assess(const Device& d, const GroupMap& groups, const HostImpact& impact, bool iommu_on);

// The same for many devices of one host view. What a group contributes (its endpoints, and which
// of them the host can't lose) is worked out once per group: assessed one device at a time,
// list was quadratic in a group's size (a 764-device group of the benchmark tree was 19% of
// list's instructions).
class Assessor {
 public:
  Assessor(const GroupMap& groups, const HostImpact& impact, bool iommu_on)
      : groups_(groups), impact_(impact), iommu_on_(iommu_on) {}
  // `companions`: fill Assessment::companions too (show and plan list them; list does not).
  Assessment operator()(const Device& d, bool companions = true);

 private:
  struct GroupFacts {
    std::vector<const Device*> endpoints;
    std::vector<std::pair<const Device*, std::string>> critical;  // with the reason
  };
  const GroupFacts& facts(const IommuGroup& g);

  const GroupMap& groups_;
  const HostImpact& impact_;
  bool iommu_on_;
  std::map<int, GroupFacts> facts_;
};

}  // namespace pcipass
