// What `pcipass check` says about the boot configuration setup made, where it applies: SELinux's
// virt_use_sysfs, vfio_pci configured into the initramfs but not loaded, and each device set for
// early binding that its host driver took anyway. Reported only on hosts that have these (so the
// fixed list of run_checks stays as it is); reading an initramfs image runs its lister through
// the command runner.
#pragma once

#include <vector>

#include "check/check.h"
#include "host/modules.h"
#include "host/runner.h"

namespace pcipass::setup {

std::vector<CheckResult> check_boot_setup(const HostFs& fs, const ModuleIndex& modules,
                                          CommandRunner* runner);

}  // namespace pcipass::setup
