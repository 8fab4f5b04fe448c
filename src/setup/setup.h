// `pcipass setup`: the host configured for passthrough at boot. Each option plans one part (the
// VFIO modules at boot, the kernel command line through the boot loader, the initramfs, early
// binding...); the parts run as ONE durable change set, so one `pcipass undo` (or
// `setup --undo`) reverts a whole setup and a failure in any part rolls back all of them.
#pragma once

#include <string>
#include <vector>

#include "change/store.h"

namespace pcipass::setup {

// In the order parts run: files the initramfs takes in (modules-load.d, modprobe.d, udev rules)
// are written before the initramfs is regenerated, and the boot loader comes last.
enum class PartKind { kModulesLoad, kEarlyBind, kSelinux, kInitramfs, kKernelCmdline };

struct Part {
  PartKind kind = PartKind::kModulesLoad;
  // Its share of the plan, in order: files, then the programs that regenerate from them, then
  // the checks (change::Change::check) that the regenerated output has what the files ask for.
  std::vector<change::Change> changes;
};

// The parts' changes, sorted by kind (the order they must run in).
std::vector<change::Change> ordered_changes(std::vector<Part> parts);

// The parts, sorted by kind, as one change set.
Result<change::Applied> apply_parts(HostFs& fs, std::vector<Part> parts, const change::Ports& ports,
                                    const change::DurableRun& run);

}  // namespace pcipass::setup
