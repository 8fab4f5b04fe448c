// What the host would lose if a PCI device left it: network interfaces (and the default
// route), disks with mounted filesystems, swap, RAID members, the framebuffer console.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "pci/inventory.h"

namespace pcipass {

struct HostUse {
  std::string kind;    // "net", "route", "block", "mount", "root-fs", "swap", "md", "console", "process"
  std::string name;    // "eth0", "vda1", "/", "fb0", "1234"
  std::string detail;  // human explanation
  bool critical = false;  // losing it breaks the host (root fs, default route, console...)
};

class HostImpact {
 public:
  static HostImpact scan(const HostFs& fs, const Inventory& inv);
  // Uses of one device (not of the devices below it).
  const std::vector<HostUse>& uses(const PciAddress& a) const;
  bool critical(const PciAddress& a) const;
  // "holds the root filesystem (/ on vda1)" for the first critical use; "" when none.
  std::string critical_reason(const PciAddress& a) const;

  // Adds a use by hand (tests; later: processes found by the assign code).
  void add(const PciAddress& a, HostUse use) { uses_[a].push_back(std::move(use)); }

 private:
  std::map<PciAddress, std::vector<HostUse>> uses_;
};

// The PCI device that owns a sysfs path: the deepest PCI address among its components.
std::optional<PciAddress> owning_pci_device(const std::string& sysfs_path);

}  // namespace pcipass
