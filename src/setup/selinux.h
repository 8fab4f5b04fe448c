// SELinux hosts (seed 002 step 9): the hypervisor manages a device's sysfs files (reset, rom,
// config) only with the boolean virt_use_sysfs on (virt_manage_sysfs before policy 3.13). Read
// from /sys/fs/selinux, so fixtures test it; `setup --selinux` turns it on through setsebool.
#pragma once

#include <optional>
#include <string>

#include "check/check.h"
#include "setup/setup.h"

namespace pcipass::setup {

inline constexpr const char* kSelinuxDir = "/sys/fs/selinux";

struct SelinuxState {
  bool enabled = false;                // /sys/fs/selinux/enforce exists
  bool enforcing = false;              // it reads 1
  std::optional<std::string> boolean;  // the name this policy has; nullopt: neither
  bool on = false;                     // its current value
};
Result<SelinuxState> read_selinux(const HostFs& fs);

// The `setsebool -P NAME 1` that fixes it.
std::string selinux_fix(const SelinuxState& s);

// nullopt where SELinux is not enabled: the check does not apply.
std::optional<CheckResult> check_selinux(const HostFs& fs);

struct SelinuxReport {
  SelinuxState state;
  bool needed = false;  // enabled and the boolean off
  Part part;            // setsebool -P NAME 1 (undo: 0), then a check that it reads 1
};
Result<SelinuxReport> plan_selinux(const HostFs& fs);

}  // namespace pcipass::setup
