// `pcipass setup --iommu [--iommu-pt] [--hide-boot-framebuffer]`: the kernel command line through
// this host's boot loader (boot/loader.h), as setup's PartKind::kKernelCmdline: the configuration
// file's edit, the regeneration (undone by the same regeneration once the files are back), then
// a check that what the next boot reads has the parameters; the check failing rolls it all back.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "boot/loader.h"
#include "setup/setup.h"

namespace pcipass::setup {

struct CmdlineOptions {
  bool iommu = false;                      // intel_iommu=on (Intel); amd_iommu=off removed (AMD)
  bool iommu_pt = false;                   // iommu=pt
  bool hide_boot_framebuffer = false;      // initcall_blacklist=sysfb_init or video=efifb:off
  std::optional<std::string> boot_loader;  // --boot-loader NAME: no detection
  bool any() const { return iommu || iommu_pt || hide_boot_framebuffer; }
};

enum class IommuVendor { kIntel, kAmd, kUnknown };

struct CmdlineReport {
  const boot::Backend* loader = nullptr;
  IommuVendor vendor = IommuVendor::kUnknown;
  std::vector<std::string> notes;  // why each parameter (or none) is asked for
  boot::Edit edit;
  std::string configured;                // the file (or entries) holding the command line
  std::vector<std::string> add, remove;  // parameters, as written, that change there
  bool regenerate_only = false;          // the file has them, the generated output did not
  bool already = false;                  // nothing to do: configured and generated have them
  std::optional<std::string> manual;     // rpm-ostree: the command the user runs
  std::vector<std::string> programs;     // what runs, for display
  Part part;
};

// The IOMMU's vendor: the ACPI table (DMAR: Intel VT-d, IVRS: AMD-Vi), else the CPU's vendor_id,
// as `pcipass check` decides it.
IommuVendor iommu_vendor(const HostFs& fs);
// The parameter that keeps the firmware framebuffer off the boot GPU on the running kernel, and
// why that one.
Result<std::pair<KernelCmdline::Param, std::string>> framebuffer_param(const HostFs& fs);

Result<CmdlineReport> plan_kernel_cmdline(const HostFs& fs, const CmdlineOptions& o);

}  // namespace pcipass::setup
