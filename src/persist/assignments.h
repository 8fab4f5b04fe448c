// The desired state: /etc/pcipass/assignments.json, the devices `bind --persist` recorded, by
// address and with their IDs, so that `apply --boot` binds them again and refuses a card that
// was moved or swapped. Other parts of pcipass (early binding, the initramfs hook) read it too,
// so its shape is fixed (docs/persist.md):
//   {"schema": "pcipass.assignments/1", "devices": [{"address": "0000:01:00.0",
//    "vendor": "10de", "device": "1b80", "subsystem_vendor": "1043", "subsystem_device": "8591",
//    "driver": "vfio-pci"}],
//   "sriov": [{"pf": "0000:00:04.0", "vendor": "1b36", "device": "0010", "num_vfs": 7,
//    "drivers_autoprobe": false, "driver": "vfio-pci", "vfs": ["0000:00:04.1", ...]}]}
// ("sriov", from `vf create --persist`, is left out while it is empty, so older readers see the
// file they know.)
// It is untrusted input when read back: every field is checked, and a bad one is an error naming
// the file, the entry and the fix. Keys pcipass does not know are kept when it rewrites the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "pci/address.h"
#include "pci/device.h"
#include "pci/inventory.h"
#include "util/json.h"

namespace pcipass::persist {

inline constexpr const char* kAssignmentsPath = "/etc/pcipass/assignments.json";
inline constexpr const char* kAssignmentsDir = "/etc/pcipass";
inline constexpr const char* kAssignmentsSchema = "pcipass.assignments/1";

// A device's identity as the kernel shows it.
struct Ids {
  uint16_t vendor = 0, device = 0, subsystem_vendor = 0, subsystem_device = 0;
  bool operator==(const Ids&) const = default;
  std::string str() const;  // "10de:1b80 (subsystem 1043:8591)"
};

struct Assignment {
  PciAddress address;
  Ids ids;
  std::string driver;           // vfio-pci or pci-stub
  Json extra = Json::object();  // keys pcipass does not know, kept as they were
};

// An SR-IOV PF's VFs as `vf create --persist` recorded them: the PF by address and
// vendor:device (a changed card is reported, not configured), the VF count, and the driver every
// VF is bound to (with their addresses) when it was created with --bind.
struct SriovEntry {
  PciAddress pf;
  uint16_t vendor = 0, device = 0;  // the PF's
  int num_vfs = 0;
  bool drivers_autoprobe = true;         // false: sriov_drivers_autoprobe=0 before sriov_numvfs
  std::string driver;                    // "" (the VFs are left to the host) or vfio-pci / pci-stub
  std::vector<PciAddress> vfs;           // bound to `driver`, by VF index; empty without a driver
  Json extra = Json::object();           // keys pcipass does not know, kept as they were
  bool same(const SriovEntry& o) const;  // every recorded field equal (not `extra`)
  std::string ids() const;               // "1b36:0010"
};

struct Assignments {
  std::vector<Assignment> devices;  // by address, one entry per address
  std::vector<SriovEntry> sriov;    // by PF address, one entry per PF
  Json extra = Json::object();      // top-level keys pcipass does not know
  const Assignment* find(const PciAddress& a) const;
  // Adds or replaces the entry for a.address; false when it was already exactly so.
  bool put(Assignment a);
  // Removes the entry for `a`; false when there was none.
  bool erase(const PciAddress& a);
  const SriovEntry* find_sriov(const PciAddress& pf) const;
  bool put_sriov(SriovEntry e);  // false when it was already exactly so
  bool erase_sriov(const PciAddress& pf);
  bool empty() const { return devices.empty() && sriov.empty(); }
};

// The entry bind --persist records for a device.
Assignment assignment_for(const Device& d, const std::string& driver);

// Validated (schema, every entry's address, IDs, driver, no address twice); `path` names the
// file in errors.
Result<Assignments> parse_assignments(const std::string& text, const std::string& path);
// ROOT/etc/pcipass/assignments.json; a missing file is an empty store.
Result<Assignments> load_assignments(const HostFs& fs);
// The file's bytes: entries ordered by address, IDs as four lowercase hex digits.
std::string render_assignments(const Assignments& a);

Ids ids_of(const Device& d);

// Desired against actual, per device.
enum class Match {
  kMatches,      // there, same IDs, on the driver
  kOtherDriver,  // there, same IDs, on another driver (or none)
  kAbsent,       // no device at the address
  kIdsDiffer,    // another card: moved or swapped; never bound
};
const char* match_id(Match m);  // "matches", "other-driver", "absent", "ids-differ"

struct Comparison {
  Assignment desired;
  Match match = Match::kMatches;
  std::optional<Ids> actual;          // nullopt: absent
  std::optional<std::string> driver;  // bound to now
  std::string message;                // "0000:01:00.0 is persisted for vfio-pci but nouveau has it"
  std::string fix;                    // empty when it matches
};

// Against `inv`, which holds the devices at the store's addresses (and their groups); an address
// it lacks is absent.
std::vector<Comparison> compare(const Inventory& inv, const Assignments& a);
// The store's devices and their groups, read from the host (only those: boot must be quick).
Result<Inventory> scan_assigned(const HostFs& fs, const Assignments& a);

}  // namespace pcipass::persist
