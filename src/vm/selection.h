// What a VM is given: the named host functions grouped into cards (the functions of one host
// bus:slot), each placed in one guest slot, after the IOMMU group check of `plan`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "impact/impact.h"
#include "pci/groups.h"
#include "pci/inventory.h"
#include "util/result.h"

namespace pcipass::vm {

// The functions of one host slot that go into one guest slot. A card is kept whole (one guest
// slot, host function numbers, multifunction on function 0) only when every function the host
// has in that slot is passed; otherwise each function is its own card at guest function 0,
// because a guest enumerates a slot only through its function 0.
struct Card {
  std::vector<const Device*> functions;  // sorted by address, at least one
  bool whole = false;                    // every function of the host slot is passed
  int iommu_group = 0;

  const Device& first() const { return *functions.front(); }
  bool multifunction() const { return whole && functions.size() > 1; }
  // The host slot ("0000:01:00") of a multifunction card, else the function's address.
  std::string host_name() const;
  // Guest function number of a function of this card: its host number on a whole card.
  uint8_t guest_function(const Device& d) const;
  bool has_vga() const;
};

struct Selection {
  std::vector<Card> cards;  // in host address order
};

// True for a VGA-compatible display controller (class 0x0300, programming interface 00): the
// one function QEMU's x-vga and Proxmox's x-vga=1 apply to.
bool is_vga(const Device& d);

// The cards for `named` (resolved addresses). With `with_group`, every endpoint of the named
// devices' IOMMU groups is added (bridges and host bridges stay). Refuses (kInvalid, exit 2) a
// bridge, a host bridge, a device without an IOMMU group, and a group that would not be viable:
// an endpoint not named whose driver keeps the host's hold on the group, naming it and the fix.
Result<Selection> select_for_vm(const Inventory& inv, const GroupMap& groups,
                                const std::vector<PciAddress>& named, bool with_group);

// Passed functions the host cannot do without (its root disk, default route, console), with
// the reason: a VM started with them takes them away (libvirt's managed mode unbinds them at VM
// start), so the commands warn. Generating text changes nothing, so this is not a refusal.
struct CriticalUse {
  PciAddress address;
  std::string reason;
};
std::vector<CriticalUse> host_critical(const Selection& s, const HostImpact& impact);

// The ROM file a user names for a card: an absolute path that exists in the host view.
Status check_rom_file(const HostFs& fs, const std::string& path, const Selection& s);

}  // namespace pcipass::vm
