#include "vm/selection.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "assign/plan.h"

namespace pcipass::vm {
namespace {

using SlotKey = std::tuple<uint32_t, uint8_t, uint8_t>;

SlotKey slot_of(const PciAddress& a) {
  return {a.domain, a.bus, a.slot};
}

// Host bridges share groups on some chipsets but are never given to a VM, as in `plan`.
bool assignable(const Device& d) {
  return !d.is_bridge() && !d.is_host_bridge();
}

// The kernel opens a group for a VM only when no endpoint of it is held by a host driver: an
// endpoint left out of the VM must already be on vfio-pci (or pci-stub, or no driver).
Status check_group(const IommuGroup& g, const std::set<PciAddress>& wanted) {
  std::vector<std::string> left, all;
  for (const Device* d : g.endpoints()) {
    if (!assignable(*d)) continue;
    all.push_back(d->address.str());
    if (!wanted.count(d->address) && !driver_keeps_group_viable(d->driver))
      left.push_back(fmt::format("{} ({})", d->address.str(), *d->driver));
  }
  if (left.empty()) return {};
  return Error::invalid(
      fmt::format("IOMMU group {} would not be viable: {} {} in it and not named, so the VM "
                  "could not open the group",
                  g.id, fmt::join(left, ", "), left.size() == 1 ? "is" : "are"),
      fmt::format("add --with-group to pass every endpoint of group {} ({}), or name them", g.id,
                  fmt::join(all, ", ")));
}

std::vector<Card> make_cards(const Inventory& inv, const std::set<PciAddress>& wanted) {
  std::map<SlotKey, size_t> on_host;
  for (const auto& d : inv.devices()) ++on_host[slot_of(d.address)];
  std::map<SlotKey, std::vector<const Device*>> by_slot;
  for (const auto& a : wanted) by_slot[slot_of(a)].push_back(inv.find(a));
  std::vector<Card> cards;
  for (auto& [key, functions] : by_slot) {
    bool whole = functions.size() == on_host[key];
    if (whole) {
      cards.push_back({functions, true, *functions.front()->iommu_group});
      continue;
    }
    for (const Device* d : functions) cards.push_back({{d}, false, *d->iommu_group});
  }
  return cards;
}

}  // namespace

std::string Card::host_name() const {
  if (!multifunction()) return first().address.str();
  std::string s = first().address.str();
  return s.substr(0, s.size() - 2);
}

uint8_t Card::guest_function(const Device& d) const {
  return whole ? d.address.function : 0;
}

bool Card::has_vga() const {
  for (const Device* d : functions)
    if (is_vga(*d)) return true;
  return false;
}

bool is_vga(const Device& d) {
  return d.class_code == 0x030000;
}

Result<Selection> select_for_vm(const Inventory& inv, const GroupMap& groups,
                                const std::vector<PciAddress>& named, bool with_group) {
  std::set<PciAddress> wanted;
  std::set<int> group_ids;
  for (const auto& a : named) {
    TRY(assign::check_assignable(inv, a));
    wanted.insert(a);
    group_ids.insert(*inv.find(a)->iommu_group);
  }
  for (int id : group_ids) {
    const IommuGroup* g = groups.find(id);
    if (!g) continue;
    if (with_group)
      for (const Device* d : g->endpoints())
        if (assignable(*d)) wanted.insert(d->address);
    TRY(check_group(*g, wanted));
  }
  return Selection{make_cards(inv, wanted)};
}

std::vector<CriticalUse> host_critical(const Selection& s, const HostImpact& impact) {
  std::vector<CriticalUse> out;
  for (const Card& c : s.cards)
    for (const Device* d : c.functions)
      if (auto reason = impact.critical_reason(d->address); !reason.empty())
        out.push_back({d->address, std::move(reason)});
  return out;
}

Status check_rom_file(const HostFs& fs, const std::string& path, const Selection& s) {
  if (s.cards.size() > 1)
    return Error::invalid(
        fmt::format("a ROM file belongs to one card, and {} cards were named", s.cards.size()),
        "name the functions of one card (or one device) with a ROM file");
  if (std::any_of(path.begin(), path.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
    return Error::invalid("ROM file path holds control characters",
                          "rename the file to a plain name");
  if (path.empty() || path.front() != '/')
    return Error::invalid(fmt::format("ROM file '{}' is not an absolute path", path),
                          "give the full path, e.g. /usr/share/vgabios/gpu.rom");
  if (fs.type(path) != FileType::kFile)
    return Error::not_found(
        fmt::format("ROM file {} is not a file on this host (root {})", path, fs.root()),
        "copy the card's ROM image there (or correct the path), then run again");
  return {};
}

}  // namespace pcipass::vm
