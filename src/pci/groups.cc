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

// One sort of (group, position) pairs instead of a map node per group: 3,154 groups of the
// benchmark tree were 6,400 allocations. The position keeps each group in inventory (address)
// order.
GroupMap GroupMap::build(const Inventory& inv) {
  const auto& devices = inv.devices();
  std::vector<std::pair<int, size_t>> members;
  members.reserve(devices.size());
  for (size_t i = 0; i < devices.size(); ++i)
    if (devices[i].iommu_group) members.emplace_back(*devices[i].iommu_group, i);
  std::sort(members.begin(), members.end());
  GroupMap m;
  for (const auto& [id, i] : members) {
    if (m.groups_.empty() || m.groups_.back().id != id) m.groups_.push_back(IommuGroup{id, {}});
    m.groups_.back().devices.push_back(&devices[i]);
  }
  return m;
}

const IommuGroup* GroupMap::find(int id) const {
  auto it = std::lower_bound(groups_.begin(), groups_.end(), id,
                             [](const IommuGroup& g, int v) { return g.id < v; });
  return it != groups_.end() && it->id == id ? &*it : nullptr;
}

}  // namespace pcipass
