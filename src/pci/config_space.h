// Decoding a device's configuration space (the sysfs `config` file): header fields and the
// standard and extended capability lists, defensively (loops, bad pointers, truncation).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace pcipass {

struct PcieInfo {
  int port_type = 0;  // Device/Port Type field
  std::string port_type_name;
  bool flr = false;  // Function Level Reset supported
  std::optional<int> link_max_speed_gts_x10, link_max_width;
  std::optional<int> link_speed_gts_x10, link_width;
};

struct SriovInfo {
  uint16_t initial_vfs = 0, total_vfs = 0, num_vfs = 0, vf_offset = 0, vf_stride = 0, vf_device = 0;
};

struct AcsInfo {
  uint16_t capability = 0, control = 0;
  // As the kernel's pci_acs_enabled(): Source Validation, Request and Completion Redirect and
  // Upstream Forwarding must be on wherever the port implements them.
  bool isolates() const {
    uint16_t wanted = 0x1d & capability;
    return (control & wanted) == wanted;
  }
};

struct Capability {
  bool extended = false;
  uint16_t id = 0;
  uint16_t offset = 0;
  std::string name;     // "MSI-X", "PCI Express", "Access Control Services"...
  std::string summary;  // short human details: "64-bit, 1/4 vectors, enabled"
};

struct ConfigSpace {
  uint16_t vendor = 0, device = 0, command = 0, status = 0;
  uint8_t revision = 0, header_type = 0, interrupt_pin = 0, interrupt_line = 0;
  uint32_t class_code = 0;
  size_t size = 0;  // bytes available: 64 (unprivileged), 256 or 4096
  std::vector<Capability> capabilities;
  std::vector<std::string> problems;  // malformed lists, with the offsets involved
  bool pm = false;                // a Power Management capability whose control register was read
  bool pm_no_soft_reset = false;  // PMCSR NoSoftRst: D3hot->D0 keeps state, so no PM reset
  bool af_flr = false;            // Advanced Features capability with TP and FLR
  bool msi = false, msix = false;
  std::optional<PcieInfo> pcie;
  std::optional<SriovInfo> sriov;
  std::optional<AcsInfo> acs;
  bool aer = false;

  bool multifunction() const { return header_type & 0x80; }
  int layout() const { return header_type & 0x7f; }  // 0 endpoint, 1 PCI bridge, 2 CardBus
  const Capability* find(bool extended, uint16_t id) const;
};

// Fails only when the header itself (64 bytes) is missing; damage further in is reported
// in `problems` and decoding goes on with what could be trusted.
Result<ConfigSpace> parse_config_space(std::string_view bytes);

std::string capability_name(bool extended, uint16_t id);

}  // namespace pcipass
