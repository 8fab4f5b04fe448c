// `pcipass apply FILE`: a host brought to the state a desired-state file describes
// (desired_file.h) as ONE plan of the change engine. setup's parts (the kernel command line, the
// VFIO modules early), the store of persisted devices and VFs with the boot unit, and mdevctl's
// definitions are the plan's durable change set; the VF counts, the devices' moves to vfio-pci
// and the mdevs are its runtime changes, journaled. A dry run shows the whole plan (diffs, argv,
// writes); a failure anywhere rolls all of it back. What is already as the file says is left out
// of the plan, so a second run changes nothing and says so (`changed` false).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "assign/assign.h"
#include "desired/desired_file.h"
#include "setup/host_setup.h"

namespace pcipass::desired {

// One device the file names (an address, or one of the first N of an id).
struct DeviceResult {
  std::string key;  // "devices[1]"
  PciAddress address;
  std::optional<std::string> driver;  // before
  bool bind = false;                  // moved to vfio-pci by the plan
};

struct SriovResult {
  std::string key;
  PciAddress pf;
  int vfs_before = 0, vfs = 0;
  std::vector<PciAddress> bound;  // VFs moved to vfio-pci
  bool change = false;            // the plan writes to the PF or its VFs
};

struct MdevResult {
  std::string key;
  std::string uuid, parent, type;
  bool create = false;  // not there: created by the plan
  bool define = false;  // its definition in /etc/mdevctl.d written by the plan
};

struct BootResult {
  bool asked = false;
  bool change = false;  // the plan changes boot files or runs their programs
  std::vector<std::string> notes;
};

struct Report {
  BootResult boot;
  std::vector<DeviceResult> devices;  // in address order
  bool store_change = false;          // /etc/pcipass/assignments.json or the boot unit change
  std::vector<SriovResult> sriov;
  std::vector<MdevResult> mdevs;
  std::vector<assign::Step> steps;        // made, or with dry_run those that would be
  bool changed = false;                   // false: the host already was as the file says
  std::optional<std::string> change_set;  // the durable change set (`pcipass undo ID`)
  std::vector<std::string> warnings;
  bool dry_run = false;
};

struct Options {
  bool dry_run = false;
  std::string command;  // what the change set records: "apply FILE"
  std::string file;     // named in errors
};

Result<Report> apply_state(HostFs& fs, const State& state, const assign::Environment& env,
                           const Options& options);

}  // namespace pcipass::desired
