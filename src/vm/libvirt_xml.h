// libvirt <hostdev> elements for a Selection (`pcipass xml`).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "vm/selection.h"

namespace pcipass::vm {

struct XmlOptions {
  bool managed = true;  // managed='no' for devices bound at boot by `pcipass bind --persist`
  bool rom_bar_off = false;
  std::string rom_file;  // empty: none
};

struct GuestAddress {
  uint8_t bus = 0, slot = 0, function = 0;
  bool multifunction = false;
};

struct Hostdev {
  PciAddress host;
  int iommu_group = 0;
  bool managed = true;
  bool rom_bar_off = false;
  std::string rom_file;
  std::optional<GuestAddress> guest;  // set on the functions of a multifunction card
};

// Guest slots of multifunction cards: bus 0, from kFirstGuestSlot up, one per card in host
// address order. Only multifunction cards need one (their functions must share a guest slot,
// which libvirt's own placement would not do); the rest are left to libvirt, which fills slots
// from the lowest free one up: starting at 0x10 leaves it room below, as Proxmox's hostpci slots
// (16 and up on i440fx) do.
inline constexpr uint8_t kFirstGuestSlot = 0x10;

// The hostdevs in card order; ROM options go on each card's first function (the one whose ROM
// the guest firmware runs). Refuses more multifunction cards than bus 0 has slots above 0x10.
Result<std::vector<Hostdev>> libvirt_hostdevs(const Selection& s, const XmlOptions& o);
// The elements, each a complete <hostdev>...</hostdev> block, concatenated.
std::string libvirt_xml(const std::vector<Hostdev>& hostdevs);
// A <hostdev type='mdev' model='vfio-pci'> element per mediated device, by its (validated) UUID.
std::string libvirt_mdev_xml(const std::vector<std::string>& uuids);

}  // namespace pcipass::vm
