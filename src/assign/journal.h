// What pcipass remembers under /run/pcipass: the lock, the journal of the operation in progress
// (each device's state before and after), and the state of what pcipass has bound.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "change/change.h"
#include "host/host_fs.h"
#include "pci/address.h"

namespace pcipass::assign {

inline constexpr const char* kRunDir = "/run/pcipass";
inline constexpr const char* kLockPath = "/run/pcipass/lock";
inline constexpr const char* kJournalPath = "/run/pcipass/journal.json";
inline constexpr const char* kStatePath = "/run/pcipass/state.json";

using change::device_dir;
using change::DeviceState;
using change::read_device_state;

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

// Validated: schema, every field's type and range, PCI addresses, plain driver names, a before
// state for every device. A journal that fails is an error naming it and the fix.
Result<std::optional<Journal>> load_journal(const HostFs& fs);
Result<Journal> parse_journal(const std::string& text);  // the same, for tests
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

Result<StateFile> load_state(const HostFs& fs);  // a missing file is an empty state; validated
Status save_state(HostFs& fs, const StateFile& s);

}  // namespace pcipass::assign
