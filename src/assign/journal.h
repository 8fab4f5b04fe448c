// What pcipass remembers under /run/pcipass: the lock, the journal of the operation in progress
// (every runtime change it makes: each device's state and each sysfs attribute's value, before
// and after), and the state of what pcipass has bound.
#pragma once

#include <functional>
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

inline constexpr const char* kJournalSchema = "pcipass.journal/2";
inline constexpr const char* kJournalSchemaV1 = "pcipass.journal/1";  // devices only; still read

// A device moved to another driver.
struct JournalEntry {
  PciAddress address;
  std::optional<int> group;
  DeviceState before, after;
  int seq = 0;  // its place among the journal's changes (rollback goes last first)
};

// One sysfs attribute write: /sys/bus/pci/devices/ADDR/NAME.
struct AttributeEntry {
  std::string path;
  std::optional<std::string> before;  // trimmed; nullopt: it could not be read (not restored)
  std::string after;                  // what was written
  int seq = 0;
};

// A mediated device made or removed: the UUID written to TYPE_DIR/create, or 1 to its remove.
struct MdevEntry {
  bool remove = false;   // false: created
  std::string type_dir;  // /sys/class/mdev_bus/PARENT/mdev_supported_types/TYPE
  std::string uuid;
  bool existed = false;  // before the change
  int seq = 0;
};

// One setting of an SR-IOV VF made through its PF's network interface (netlink).
struct VfLinkEntry {
  std::string ifname;  // the PF's interface
  int vf = 0;
  change::VfSetting before, after;  // the same field
  int seq = 0;
};

struct Journal {
  std::string operation;  // "bind" or "release"
  std::string driver;     // bind: the target driver
  std::string owner;      // bind --owner, as given
  int pid = 0;
  std::string phase =
      "writing";  // "writing": roll back; "committed": only the state file is left to update
  std::vector<JournalEntry> devices;
  std::vector<AttributeEntry> attributes;
  std::vector<MdevEntry> mdevs;
  std::vector<VfLinkEntry> vf_links;

  // "bind of 2 devices", "write of 1 device and 2 attributes", "write of 1 mdev".
  std::string summary() const;
  // Every journaled change as an applied change with its before-state, in the order they were
  // made: what a rollback after a crash undoes (last first).
  std::vector<change::Change> changes() const;
  // Appends the plan's runtime changes (device moves, attribute writes, mdevs) with their captured
  // before-states; `group` gives a device's IOMMU group.
  void add(const std::vector<change::Change>& plan,
           const std::function<std::optional<int>(const PciAddress&)>& group);
};

// /sys/bus/pci/devices/ADDR/NAME with a canonical address and a plain NAME (no '/', '.', '..'
// or control bytes): the only attributes a journal may name.
bool journal_attribute_path(const std::string& path);

// Validated: schema (journal/2, or journal/1 from an older pcipass), every field's type and range,
// PCI addresses, plain driver names, attribute paths (journal_attribute_path), a before state for
// every change. A journal that fails is an error naming it and the fix.
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
