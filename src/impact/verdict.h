// The passthrough verdict of one device: IOMMU on, group viability (pci/groups) and what the host
// would lose (impact) together. Its own file because it joins the PCI view with the host's uses.
#pragma once

#include <string>
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

}  // namespace pcipass
