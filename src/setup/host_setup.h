// `pcipass setup` as a whole: the parts the options ask for (the VFIO modules at boot, early
// binding, SELinux, the initramfs that must hold what the first two need, and the kernel command
// line through the boot loader), planned, then
// applied by apply_parts as ONE change set. A scenario on a real guest calls the same thing as
// `pcipass setup --vfio --early-bind ADDR`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "initramfs/initramfs.h"
#include "setup/early_bind.h"
#include "setup/kernel_cmdline.h"
#include "setup/selinux.h"
#include "setup/vfio.h"

namespace pcipass::setup {

struct Request {
  bool vfio = false;
  std::vector<PciAddress> early_bind;
  bool selinux = false;
  std::optional<initramfs::System> initramfs;  // --initramfs NAME; nullopt: detect
  CmdlineOptions cmdline;                      // --iommu, --iommu-pt, --hide-boot-framebuffer
};

struct InitramfsReport {
  const initramfs::Backend* backend = nullptr;
  initramfs::Wants wants;
  std::vector<std::string> configs;
  std::vector<initramfs::Image> images;
  bool changed = false;  // its configuration changes, so the images are regenerated
};

struct SetupReport {
  std::optional<VfioReport> vfio;
  std::optional<EarlyBindReport> early_bind;
  std::optional<SelinuxReport> selinux;
  std::optional<InitramfsReport> initramfs;  // nullopt: nothing for it, or no system found
  std::optional<CmdlineReport> cmdline;
  std::vector<std::string> notes;
  change::Applied applied;
};

// The report (without `applied`) and the parts, nothing changed: what `pcipass apply FILE` puts
// in its one plan with the devices' moves. `host` is needed for early binding only.
struct SetupPlan {
  SetupReport report;
  std::vector<Part> parts;
};
Result<SetupPlan> plan_setup(const HostFs& fs, const Request& req, const HostView* host);

// `host` is needed for early binding only (null otherwise).
Result<SetupReport> run_setup(HostFs& fs, const Request& req, const HostView* host,
                              const change::Ports& ports, const change::DurableRun& run);

}  // namespace pcipass::setup
