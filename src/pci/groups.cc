#include "pci/groups.h"

#include <fmt/format.h>

#include <algorithm>

namespace pcipass {

bool driver_keeps_group_viable(const std::optional<std::string>& driver) {
  if (!driver) return true;
  return *driver == "pci-stub" || driver->find("vfio") != std::string::npos;
}

std::vector<const Device*> IommuGroup::endpoints() const {
  std::vector<const Device*> out;
  for (const Device* d : devices)
    if (!d->is_bridge()) out.push_back(d);
  return out;
}

std::vector<const Device*> IommuGroup::blocking() const {
  std::vector<const Device*> out;
  for (const Device* d : endpoints())
    if (!driver_keeps_group_viable(d->driver)) out.push_back(d);
  return out;
}

GroupMap GroupMap::build(const Inventory& inv) {
  std::map<int, IommuGroup> by_id;
  for (const auto& d : inv.devices()) {
    if (!d.iommu_group) continue;
    auto& g = by_id[*d.iommu_group];
    g.id = *d.iommu_group;
    g.devices.push_back(&d);  // inventory order is address order
  }
  GroupMap m;
  for (auto& [id, g] : by_id) m.groups_.push_back(std::move(g));
  return m;
}

const IommuGroup* GroupMap::find(int id) const {
  auto it = std::lower_bound(groups_.begin(), groups_.end(), id,
                             [](const IommuGroup& g, int v) { return g.id < v; });
  return it != groups_.end() && it->id == id ? &*it : nullptr;
}

}  // namespace pcipass
