// The host's PCI devices, read from /sys/bus/pci/devices through HostFs.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "pci/device.h"
#include "pci/ids.h"

namespace pcipass {

class ModuleIndex;

class Inventory {
 public:
  // Scans every device; names come from `ids` (may be null for numeric output).
  static Result<Inventory> scan(const HostFs& fs, const PciIds* ids);
  // Only `wanted` and every device of their IOMMU groups (what bind and release act on), so that
  // a call for one device does not read the whole bus: scripts call pcipass a device at a time
  // (tests/vm/bench-calls). Addresses not on the bus are left out.
  static Result<Inventory> scan_devices(const HostFs& fs, const std::vector<PciAddress>& wanted,
                                        const PciIds* ids);

  const std::vector<Device>& devices() const { return devices_; }
  std::vector<Device>& devices() { return devices_; }
  const Device* find(const PciAddress& a) const;
  Device* find(const PciAddress& a);
  // Devices matching a command-line argument; an address that matches nothing is an error
  // naming the nearest addresses that do exist.
  Result<std::vector<const Device*>> select(const std::string& argument) const;
  // Devices directly below `bridge` (their last parent is it).
  std::vector<const Device*> children(const PciAddress& bridge) const;
  // Reads the slower attributes (config space, modalias, reset methods...).
  void load_details(const HostFs& fs, Device& d, const ModuleIndex* modules) const;
  bool iommu_groups_present() const { return groups_present_; }
  // Every device is in PCI domain 0000, so addresses can be shown as lspci does (01:00.0).
  bool single_domain_zero() const {
    return std::all_of(devices_.begin(), devices_.end(),
                       [](const Device& d) { return d.address.domain == 0; });
  }
  // Entries of /sys/bus/pci/devices that could not be read, and attribute files holding bad
  // values (the device is listed, from config space), with the reason.
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  void add(const HostFs& fs, const std::string& name, const PciIds* ids,
           std::vector<std::pair<Device, bool>>& read);
  void assemble(const HostFs& fs, std::vector<std::pair<Device, bool>> read);

  std::vector<Device> devices_;
  std::map<PciAddress, size_t> index_;
  bool groups_present_ = false;
  std::vector<std::string> problems_;
};

inline constexpr const char* kPciDevicesDir = "/sys/bus/pci/devices";

}  // namespace pcipass
