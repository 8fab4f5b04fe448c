// What `pcipass check` says about the boot configuration setup made, where it applies: SELinux's
// virt_use_sysfs, vfio_pci configured into the initramfs but not loaded, and each device set for
// early binding that its host driver took anyway. Reported only on hosts that have these (so the
// fixed list of run_checks stays as it is); reading an initramfs image runs its lister through
// the command runner.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "check/check.h"
#include "host/modules.h"
#include "host/runner.h"
#include "persist/assignments.h"
#include "setup/early_bind.h"

namespace pcipass::setup {

// One device the early-binding rule names, against the host now: desired (vfio-pci, with the
// rule's IDs) against actual, in the persisted devices' terms, for `status` and `check`.
struct EarlyState {
  EarlyRule rule;
  persist::Match match = persist::Match::kMatches;
  std::optional<std::string> driver;  // bound to now
  std::string message, fix;           // fix: empty when it matches
};
// Every device of pcipass's rule file, in its order; none without the file.
std::vector<EarlyState> early_bind_states(const HostFs& fs);

std::vector<CheckResult> check_boot_setup(const HostFs& fs, const ModuleIndex& modules,
                                          CommandRunner* runner);

}  // namespace pcipass::setup
