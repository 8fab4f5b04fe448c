// Names for vendor, device, subsystem and class IDs, from the PCI ID database through libpci.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "util/result.h"

struct pci_access;

namespace pcipass {

class HostFs;

// Where names come from: chosen once, by the caller, and shown in --json (docs/json.md).
enum class PciIdsSource { kOption, kTree, kSystem, kNone };
const char* pci_ids_source_id(PciIdsSource s);  // "option", "tree", "system", "none"

struct PciIdsChoice {
  PciIdsSource source = PciIdsSource::kNone;
  std::string path;   // as shown: the option's file, the host path inside the tree, the system's
  std::string local;  // the file libpci opens on this machine; "" for none
};

// The pci.ids of the machine pcipass runs on (Debian's pci.ids package).
inline constexpr const char* kSystemPciIds = "/usr/share/misc/pci.ids";

// Explicit beats implicit: `option` (an absolute path on this machine) when given; else the host
// tree's own /usr/share/misc/pci.ids or /usr/share/hwdata/pci.ids, resolved inside its root; else
// `system`, looked up through `local` (this machine's HostFs); else none (numeric names). Only
// regular files count.
Result<PciIdsChoice> choose_pci_ids(const HostFs& tree, const HostFs& local,
                                    const std::optional<std::string>& option,
                                    const std::string& system);

class PciIds {
 public:
  // Names from the pci.ids at `file` (a path on this machine); "" means none, and every lookup
  // then returns "".
  explicit PciIds(std::string file);
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
  // Why every name is "": no pci.ids was found, or libpci could not be loaded (the error names
  // the library and the package). nullopt when names are looked up.
  const std::optional<Error>& unavailable() const { return unavailable_; }
  // Why names stopped, naming the file and the line libpci gave ("/x/pci.ids: Unknown line type
  // at /x/pci.ids, line 3; ..."): set by the lookup that found the file malformed, after which
  // every lookup returns "".
  const std::optional<std::string>& problem() const { return problem_; }

 private:
  std::string lookup(int flags, unsigned v1, unsigned v2 = 0, unsigned v3 = 0,
                     unsigned v4 = 0) const;
  ::pci_access* access_ = nullptr;
  std::string path_;
  std::optional<Error> unavailable_;
  mutable std::optional<std::string> problem_;
  // Names already looked up: a host repeats a few models many times (4,096 devices of the
  // benchmark tree are 9 models), and each libpci lookup formats its answer with sprintf.
  mutable std::map<std::array<unsigned, 5>, std::string> names_;
};

// Coarse kinds users filter by: gpu, audio, net, storage, usb, bridge, ...
std::string class_kind(uint32_t class_code);
// The kinds `--class` accepts, for its help and error text.
const char* const* class_kinds();

}  // namespace pcipass
