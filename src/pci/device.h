// One PCI function as the kernel shows it in sysfs, plus what we decode from it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pci/address.h"
#include "pci/config_space.h"

namespace pcipass {

struct Device {
  PciAddress address;
  std::string sysfs_path;  // canonical: /sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0
  uint16_t vendor = 0, device = 0, subsystem_vendor = 0, subsystem_device = 0;
  uint8_t revision = 0;
  uint32_t class_code = 0;  // base class, subclass, programming interface
  uint8_t header_type = 0;
  std::string vendor_name, device_name, subsystem_name, class_name;
  std::optional<std::string> driver;
  std::optional<int> iommu_group;
  std::vector<PciAddress> parents;   // bridges from the root bus down to the direct parent
  std::optional<PciAddress> physfn;  // set on SR-IOV virtual functions
  std::vector<PciAddress> virtfns;   // set on SR-IOV physical functions with VFs enabled
  bool boot_vga = false;

  // Filled by Inventory::load_details (show, snapshot-heavy paths), not by the list scan.
  struct Details {
    std::optional<std::string> driver_override;
    std::string modalias;
    std::vector<std::string> modules;  // modules whose aliases match modalias
    std::optional<int> numa_node;
    std::optional<int> irq;
    std::vector<std::string> reset_methods;
    std::optional<std::string> link_speed, link_width, max_link_speed, max_link_width;
    std::optional<int> sriov_totalvfs, sriov_numvfs;
    std::optional<ConfigSpace> config;
    std::string config_error;
    // Attribute files that could not be read (other than absent) or hold a number out of range,
    // each naming the file; the value is then left unknown.
    std::vector<std::string> problems;
  };
  std::optional<Details> details;

  std::string kind() const;  // gpu, net, storage...
  bool is_host_bridge() const { return (class_code >> 8) == 0x0600; }
  bool is_bridge() const { return (header_type & 0x7f) == 1 || (header_type & 0x7f) == 2; }
  std::string id_pair() const;  // "10de:1b80"
};

}  // namespace pcipass
