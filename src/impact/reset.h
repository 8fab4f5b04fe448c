// Can vfio-pci reset this device between VM starts? "The VM started once and fails the second
// time" is what users hit after the first success: a device that cannot be reset keeps the
// state the last guest left, and some GPUs never come back from the reset vfio-pci can do.
#pragma once

#include <string>
#include <vector>

#include "pci/address.h"
#include "pci/device.h"

namespace pcipass {

class Inventory;

enum class ResetVerdict {
  kFunction,     // a reset of this function alone: FLR, AF FLR, PM, ACPI or device-specific
  kBusAlone,     // a secondary bus reset, and nothing else is on the bus
  kBusShared,    // only a bus reset, which also resets other devices (all must go to one VM)
  kNone,         // no reset at all: the device keeps its state from one guest to the next
  kVendorReset,  // a family known not to come back from the resets above (vendor-reset)
  kUnknown,      // no reset_method and too little config space to tell (not root)
};

// "function", "bus_alone", "bus_shared", "none", "vendor_reset", "unknown": JSON ids, stable.
const char* reset_verdict_id(ResetVerdict v);

struct ResetAssessment {
  ResetVerdict verdict = ResetVerdict::kNone;
  // The kernel's reset_method (5.15+), else what config space and the topology allow, in the
  // kernel's order of preference.
  std::vector<std::string> methods;
  bool methods_from_kernel = false;
  bool flr = false;  // PCIe Device Capabilities FLR or AF capability with FLR
  // Devices a secondary bus reset of this device's bus would also reset (the bus's other
  // functions and everything below them), for kBusShared.
  std::vector<PciAddress> bus_reset_also;
  std::string family;  // the known-bad family, for kVendorReset ("AMD Vega 10")
  std::string reason;  // one sentence, for people
  std::string fix;     // empty when nothing needs doing
};

// `d` needs its details loaded (Inventory::load_details) for reset_method and config space.
ResetAssessment assess_reset(const Inventory& inv, const Device& d);

// A kBusShared verdict when the devices in `together` go to the same VM: covered when they
// include everything the bus reset reaches (then no fix is needed), else the fix names the rest.
void assigned_together(ResetAssessment& r, const std::vector<PciAddress>& together);

}  // namespace pcipass
