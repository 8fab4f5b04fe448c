// Names for vendor, device, subsystem and class IDs, from the PCI ID database through libpci.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

struct pci_access;

namespace pcipass {

class HostFs;

class PciIds {
 public:
  // Uses the first pci.ids found under the host root (usr/share/misc, usr/share/hwdata),
  // then the one of the machine pcipass runs on; with none, every lookup returns "".
  explicit PciIds(const HostFs& fs);
  ~PciIds();
  PciIds(const PciIds&) = delete;
  PciIds& operator=(const PciIds&) = delete;

  std::string vendor(uint16_t vendor) const;
  std::string device(uint16_t vendor, uint16_t device) const;
  std::string subsystem(uint16_t vendor, uint16_t device, uint16_t sub_vendor,
                        uint16_t sub_device) const;
  // class_code is the 24-bit class/subclass/prog-if value; the name is the subclass's.
  std::string class_name(uint32_t class_code) const;
  const std::string& database() const { return path_; }

 private:
  ::pci_access* access_ = nullptr;
  std::string path_;
};

// Coarse kinds users filter by: gpu, audio, net, storage, usb, bridge, ...
std::string class_kind(uint32_t class_code);
// The kinds `--class` accepts, for its help and error text.
const char* const* class_kinds();

}  // namespace pcipass
