// PCI addresses and the ways users name devices on the command line.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "util/result.h"

namespace pcipass {

struct PciAddress {
  uint32_t domain = 0;
  uint8_t bus = 0;
  uint8_t slot = 0;  // device number, 0..31
  uint8_t function = 0;

  auto operator<=>(const PciAddress&) const = default;
  // "0000:01:00.0", the kernel's sysfs name.
  std::string str() const;
  // "pci_0000_01_00_0", libvirt's node-device name.
  std::string libvirt_name() const;
};

// Strict parse of a sysfs name or a user-typed address: "0000:01:00.0", "01:00.0",
// "pci_0000_01_00_0". Errors name the bad field, e.g. "invalid bus number 'zz' in '0000:zz:00.0'".
Result<PciAddress> parse_address(std::string_view text);

// "10de:1b80" (vendor and device) or "10de:" / "10de" (any device of a vendor).
struct IdPattern {
  uint16_t vendor = 0;
  std::optional<uint16_t> device;
  auto operator<=>(const IdPattern&) const = default;
  bool matches(uint16_t v, uint16_t d) const { return v == vendor && (!device || *device == d); }
  std::string str() const;
};

using DeviceSelector = std::variant<PciAddress, IdPattern>;

// A device argument: any address form, or a vendor:device ID pair.
Result<DeviceSelector> parse_selector(std::string_view text);

// PCI addresses that are whole components of a sysfs path, root-most first
// ("/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/net/eth0" -> 00:01.0, 01:00.0).
std::vector<PciAddress> addresses_in_path(std::string_view path);

// Parses 1..max_digits hex digits (no 0x prefix) fully; nullopt otherwise.
std::optional<uint32_t> parse_hex(std::string_view s, size_t max_digits);

}  // namespace pcipass
