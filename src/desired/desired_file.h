// The desired-state file of `pcipass apply FILE` (docs/apply.md): YAML or JSON (JSON is YAML, one
// parser reads both), schema version 1. It says what a host should be: IOMMU on in the boot
// loader, the VFIO modules early, devices bound to vfio-pci and persisted (by address, or the
// first N devices of a vendor:device in address order), SR-IOV VF counts, mdevs. It is untrusted
// input: every key is checked, an unknown one is an error, and every error names the file, the
// key path (`devices[2].address`), the bad value and the fix.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pci/address.h"
#include "util/result.h"

namespace pcipass::desired {

inline constexpr int kVersion = 1;

struct BootWant {
  bool iommu = false;       // setup --iommu
  bool iommu_pt = false;    // setup --iommu-pt
  bool vfio_early = false;  // setup --vfio
  bool any() const { return iommu || iommu_pt || vfio_early; }
};

// One entry of `devices`: an address, or `id` with a count (the first `count` devices with those
// IDs, in address order, so the same host always gives the same ones).
struct DeviceWant {
  std::string key;  // "devices[2]", for messages
  std::optional<PciAddress> address;
  uint16_t vendor = 0, device = 0;  // with `id`
  int count = 1;
};

struct SriovWant {
  std::string key;
  PciAddress pf;
  int vfs = 0;
  bool bind = false;  // the VFs bound to vfio-pci (vf create --bind vfio-pci)
};

struct MdevWant {
  std::string key;
  std::string parent, type, uuid;
  bool autostart = false;  // the definition's start: auto
};

struct State {
  BootWant boot;
  std::vector<DeviceWant> devices;
  std::vector<SriovWant> sriov;
  std::vector<MdevWant> mdevs;
  bool empty() const { return !boot.any() && devices.empty() && sriov.empty() && mdevs.empty(); }
};

// `file` names the file in every error.
Result<State> parse_state(const std::string& text, const std::string& file);

}  // namespace pcipass::desired
