// IOMMU groups and the kernel's viability rule: a group can be opened by a VM only when every
// endpoint in it is bound to vfio-pci (or a vfio variant driver, or pci-stub) or to no driver.
// Bridges and ports (header type 1) may stay on pcieport.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pci/inventory.h"

namespace pcipass {

// True for drivers the kernel lets a user-owned group contain: none, vfio*, pci-stub.
bool driver_keeps_group_viable(const std::optional<std::string>& driver);

struct IommuGroup {
  int id = 0;
  std::vector<const Device*> devices;  // sorted by address
  // Endpoints still on host drivers: what must move before a VM can open the group.
  std::vector<const Device*> blocking() const;
  bool viable() const { return blocking().empty(); }
  std::vector<const Device*> endpoints() const;
};

class GroupMap {
 public:
  static GroupMap build(const Inventory& inv);
  const IommuGroup* find(int id) const;
  const std::vector<IommuGroup>& groups() const { return groups_; }

 private:
  std::vector<IommuGroup> groups_;  // sorted by id
};

}  // namespace pcipass
