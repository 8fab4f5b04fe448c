// `pcipass setup --vfio`: the VFIO modules loaded at every boot, through systemd's
// modules-load.d, as a durable change set that `pcipass undo` reverts. The first durable user of
// the change engine; boot loader and initramfs parts come later (issue 9).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "change/store.h"
#include "setup/setup.h"

namespace pcipass::setup {

inline constexpr const char* kModulesLoadPath = "/etc/modules-load.d/pcipass.conf";
inline constexpr const char* kOsReleasePath = "/proc/sys/kernel/osrelease";

// "6.1.0-13-amd64" -> {6, 1}; nullopt unless it starts with two numbers that fit an int.
std::optional<std::pair<int, int>> kernel_version(std::string_view release);

// The running kernel's release and version, from /proc/sys/kernel/osrelease. When it can't be
// told, the error's fix says `needed_for` (why pcipass needs it).
struct KernelRelease {
  std::string text;  // "6.1.0-13-amd64"
  std::pair<int, int> version;
};
Result<KernelRelease> running_kernel(const HostFs& fs, std::string_view needed_for);

// vfio, vfio_iommu_type1, vfio_pci, and vfio_virqfd where the running kernel is older than 6.2
// (it was merged into vfio then).
Result<std::vector<std::string>> vfio_modules(const HostFs& fs);

// `existing` with every module of `modules` it does not list appended, one per line; its own
// lines are kept as they are. "" + absent gives a new file with a header.
std::string with_modules(const std::optional<std::string>& existing,
                         const std::vector<std::string>& modules);

struct VfioReport {
  std::string path = kModulesLoadPath;
  std::vector<std::string> modules;  // all the file must list
  std::vector<std::string> added;    // the ones it did not list yet
  bool created = false;              // the file did not exist
  Part part;                         // the changes, for apply_parts
  change::Applied applied;           // id (nullopt when nothing changed or dry run), steps
};

// Plans the part; nothing is written.
Result<VfioReport> plan_vfio(const HostFs& fs);
// Plans it and runs it alone as a change set.
Result<VfioReport> setup_vfio(HostFs& fs, const change::Ports& ports,
                              const change::DurableRun& run);

}  // namespace pcipass::setup
