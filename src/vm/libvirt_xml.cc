#include "vm/libvirt_xml.h"

#include <fmt/format.h>

namespace pcipass::vm {
namespace {

std::string xml_attr(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string rom_element(const Hostdev& h) {
  if (!h.rom_bar_off && h.rom_file.empty()) return {};
  std::string attrs;
  if (h.rom_bar_off) attrs += " bar='off'";
  if (!h.rom_file.empty()) attrs += fmt::format(" file='{}'", xml_attr(h.rom_file));
  return fmt::format("  <rom{}/>\n", attrs);
}

std::string guest_element(const GuestAddress& g) {
  return fmt::format(
      "  <address type='pci' domain='0x0000' bus='0x{:02x}' slot='0x{:02x}' "
      "function='0x{:x}'{}/>\n",
      g.bus, g.slot, g.function, g.multifunction ? " multifunction='on'" : "");
}

}  // namespace

Result<std::vector<Hostdev>> libvirt_hostdevs(const Selection& s, const XmlOptions& o) {
  std::vector<Hostdev> out;
  unsigned next_slot = kFirstGuestSlot;
  for (const Card& c : s.cards) {
    bool placed = c.multifunction();
    if (placed && next_slot > 0x1f)
      return Error::invalid(
          fmt::format("too many multifunction cards: guest bus 0 has slots 0x{:02x}-0x1f for "
                      "{} of them",
                      kFirstGuestSlot, 0x20 - kFirstGuestSlot),
          "run pcipass xml for fewer cards at a time and place the rest by hand");
    for (const Device* d : c.functions) {
      Hostdev h{d->address, c.iommu_group, o.managed, false, {}, std::nullopt};
      if (d == c.functions.front()) {
        h.rom_bar_off = o.rom_bar_off;
        h.rom_file = o.rom_file;
      }
      if (placed)
        h.guest = GuestAddress{0, static_cast<uint8_t>(next_slot), c.guest_function(*d),
                               d->address.function == 0};
      out.push_back(std::move(h));
    }
    if (placed) ++next_slot;
  }
  return out;
}

std::string libvirt_xml(const std::vector<Hostdev>& hostdevs) {
  std::string out;
  for (const Hostdev& h : hostdevs) {
    out += fmt::format("<hostdev mode='subsystem' type='pci' managed='{}'>\n",
                       h.managed ? "yes" : "no");
    out += fmt::format(
        "  <source>\n    <address domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' "
        "function='0x{:x}'/>\n  </source>\n",
        h.host.domain, h.host.bus, h.host.slot, h.host.function);
    out += rom_element(h);
    if (h.guest) out += guest_element(*h.guest);
    out += "</hostdev>\n";
  }
  return out;
}

std::string libvirt_mdev_xml(const std::vector<std::string>& uuids) {
  std::string out;
  for (const auto& u : uuids)
    out += fmt::format(
        "<hostdev mode='subsystem' type='mdev' model='vfio-pci'>\n  <source>\n    <address "
        "uuid='{}'/>\n  </source>\n</hostdev>\n",
        u);
  return out;
}

}  // namespace pcipass::vm
