// What pcipass remembers under /run/pcipass: the lock, the journal of the operation in progress
// (each device's state before and after), and the state of what pcipass has bound.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "pci/address.h"

namespace pcipass::assign {

inline constexpr const char* kRunDir = "/run/pcipass";
inline constexpr const char* kLockPath = "/run/pcipass/lock";
inline constexpr const char* kJournalPath = "/run/pcipass/journal.json";
inline constexpr const char* kStatePath = "/run/pcipass/state.json";

// The two things binding changes on a device.
struct DeviceState {
  std::optional<std::string> driver;    // nullopt: no driver
  std::optional<std::string> override;  // nullopt: "(null)", none set
  // Only in targets: accept whatever driver the kernel probes (release of a device pcipass
  // did not bind, whose original driver is unknown).
  bool any_driver = false;
  bool operator==(const DeviceState&) const = default;
  std::string describe() const;  // "e1000e", "no driver", "vfio-pci (override vfio-pci)"
};

std::string device_dir(const PciAddress& a);  // /sys/bus/pci/devices/ADDR
DeviceState read_device_state(const HostFs& fs, const PciAddress& a);

struct JournalEntry {
  PciAddress address;
  std::optional<int> group;
  DeviceState before, after;
};

struct Journal {
  std::string operation;  // "bind" or "release"
  std::string driver;     // bind: the target driver
  std::string owner;      // bind --owner, as given
  int pid = 0;
  std::string phase =
      "writing";  // "writing": roll back; "committed": only the state file is left to update
  std::vector<JournalEntry> devices;
};

Result<std::optional<Journal>> load_journal(const HostFs& fs);
Status save_journal(HostFs& fs, const Journal& j);

// One device pcipass has bound, and what it was before.
struct Binding {
  PciAddress address;
  std::optional<int> group;
  std::string driver;    // what pcipass bound it to
  DeviceState original;  // driver and driver_override before
  std::string owner;     // --owner given, "" when none
};

struct StateFile {
  std::vector<Binding> bindings;  // sorted by address
  const Binding* find(const PciAddress& a) const;
  void put(Binding b);
  void erase(const PciAddress& a);
};

Result<StateFile> load_state(const HostFs& fs);  // a missing file is an empty state
Status save_state(HostFs& fs, const StateFile& s);

}  // namespace pcipass::assign
