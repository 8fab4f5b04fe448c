// `vf set`: a NIC VF's MAC, VLAN, spoof check and trust, set through its PF's network interface
// (netlink: netlink.h) as a plan of the change engine, one kVfLink change per setting, each with
// the value read before it: journaled, rolled back on any failure, shown by a dry run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "assign/assign.h"
#include "change/change.h"
#include "pci/inventory.h"

namespace pcipass::sriov {

struct SetRequest {
  PciAddress pf;
  // The interface to use instead of the PF's (netdevsim, whose VFs are no PCI devices); the PF is
  // then not looked up.
  std::optional<std::string> ifname;
  int index = 0;
  std::vector<change::VfSetting> settings;  // in the order they are made
  bool dry_run = false;
  const Inventory* inventory = nullptr;  // the caller's scan (null: scan here)
};

struct SetReport {
  std::string ifname;
  int index = 0;
  struct Setting {
    change::VfSetting before, after;
  };
  std::vector<Setting> settings;
  std::vector<change::Step> steps;
  bool dry_run = false;
};

Result<SetReport> set(HostFs& fs, const SetRequest& req, const assign::Environment& env);

// Command-line values, each checked with an error that names the option, the input and the fix.
Result<std::string> parse_mac(const std::string& text);  // lowercase "52:54:00:12:34:56"
Result<int> parse_vlan(const std::string& text);         // 0 (none) to 4095
Result<int> parse_vf_index(const std::string& text);     // 0 to 65535

}  // namespace pcipass::sriov
