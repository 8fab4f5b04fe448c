// `pcipass setup --early-bind DEVICE...`: devices claimed by vfio-pci at boot before their host
// drivers probe them, chosen by address (and checked against their vendor:device IDs), so that one
// of two identical cards can be passed through while the other stays with the host. Three pieces,
// one change set: a udev rule that writes driver_override=vfio-pci when the device is added, the
// same rule inside the initramfs (setup's initramfs part), and `softdep DRIVER pre: vfio-pci` in
// /etc/modprobe.d/pcipass.conf so vfio-pci is loaded whenever a host driver of theirs is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host/modules.h"
#include "impact/impact.h"
#include "pci/groups.h"
#include "pci/inventory.h"
#include "setup/setup.h"

namespace pcipass::setup {

// Low-numbered, so it runs before 80-drivers.rules loads the device's driver module.
inline constexpr const char* kUdevRulePath = "/etc/udev/rules.d/05-pcipass-vfio.rules";
inline constexpr const char* kModprobePath = "/etc/modprobe.d/pcipass.conf";

struct EarlyDevice {
  PciAddress address;
  uint16_t vendor = 0, device = 0;
  std::optional<std::string> driver;  // its driver now
  std::vector<std::string> softdeps;  // host driver modules that must load after vfio-pci
  std::vector<std::string> builtin;   // host drivers built into the kernel: only udev can win
};

struct EarlyBindReport {
  std::vector<EarlyDevice> devices;
  std::vector<std::string> added;  // addresses the rule did not name yet
  std::vector<std::string> notes;  // what the user should know (built-in host drivers)
  Part part;
};

struct HostView {
  const Inventory& inv;
  const GroupMap& groups;
  const HostImpact& impact;
  const ModuleIndex& modules;
};

// Refuses a device whose IOMMU group would not be viable at boot (another endpoint left on a host
// driver: name it too) or that the host needs (root disk, console).
Result<EarlyBindReport> plan_early_bind(const HostFs& fs, const HostView& host,
                                        const std::vector<PciAddress>& devices);

// One device's rule line: matches the address AND the IDs, sets the override.
std::string udev_rule_line(const PciAddress& a, uint16_t vendor, uint16_t device);

struct EarlyRule {
  PciAddress address;
  std::optional<uint16_t> vendor, device;
};
// The devices a rule file (pcipass's own) sets for early binding.
std::vector<EarlyRule> parse_udev_rules(const std::string& text);

}  // namespace pcipass::setup
