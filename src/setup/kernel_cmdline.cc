#include "setup/kernel_cmdline.h"

#include <fmt/format.h>

#include <charconv>
#include <sstream>

#include "setup/vfio.h"

namespace pcipass::setup {

namespace {

std::string cpu_vendor(const HostFs& fs) {
  auto text = fs.read("/proc/cpuinfo", 256 * 1024);
  if (!text) return {};
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    auto colon = line.find(':');
    if (colon != std::string::npos && trim(line.substr(0, colon)) == "vendor_id")
      return trim(line.substr(colon + 1));
  }
  return {};
}

Status add_iommu(const HostFs& fs, CmdlineReport& r) {
  r.vendor = iommu_vendor(fs);
  r.edit.drop.push_back({"iommu", "off"});
  switch (r.vendor) {
    case IommuVendor::kIntel:
      r.edit.want.push_back({"intel_iommu", "on"});
      r.notes.push_back("Intel VT-d: the kernel needs intel_iommu=on");
      return {};
    case IommuVendor::kAmd:
      r.edit.drop.push_back({"amd_iommu", "off"});
      r.notes.push_back("AMD-Vi is on by default: only amd_iommu=off (if present) is removed");
      return {};
    case IommuVendor::kUnknown:
      break;
  }
  return Error::not_found(
      "cannot tell whether this host's IOMMU is Intel VT-d or AMD-Vi: no ACPI DMAR or IVRS "
      "table and no vendor_id in /proc/cpuinfo",
      "enable the IOMMU in the firmware setup first (`pcipass check` says which)");
}

}  // namespace

IommuVendor iommu_vendor(const HostFs& fs) {
  if (fs.exists("/sys/firmware/acpi/tables/DMAR")) return IommuVendor::kIntel;
  if (fs.exists("/sys/firmware/acpi/tables/IVRS")) return IommuVendor::kAmd;
  std::string v = cpu_vendor(fs);
  if (v == "GenuineIntel") return IommuVendor::kIntel;
  if (v == "AuthenticAMD" || v == "HygonGenuine") return IommuVendor::kAmd;
  return IommuVendor::kUnknown;
}

Result<std::pair<KernelCmdline::Param, std::string>> framebuffer_param(const HostFs& fs) {
  KernelRelease k =
      TRY(running_kernel(fs, "the framebuffer parameter depends on the kernel version"));
  if (k.version >= std::pair{5, 15})
    return std::pair{KernelCmdline::Param{"initcall_blacklist", "sysfb_init"},
                     fmt::format("kernel {} hands the firmware framebuffer to simpledrm/simplefb "
                                 "through sysfb (5.15 and later), which video=efifb:off does not "
                                 "stop: initcall_blacklist=sysfb_init does",
                                 k.text)};
  return std::pair{KernelCmdline::Param{"video", "efifb:off"},
                   fmt::format("kernel {} (before 5.15) drives the firmware framebuffer with "
                               "efifb: video=efifb:off keeps it off the GPU's BARs",
                               k.text)};
}

Result<CmdlineReport> plan_kernel_cmdline(const HostFs& fs, const CmdlineOptions& o) {
  CmdlineReport r;
  r.part.kind = PartKind::kKernelCmdline;
  if (o.iommu) TRY(add_iommu(fs, r));
  if (o.iommu_pt) {
    r.edit.want.push_back({"iommu", "pt"});
    r.notes.push_back("iommu=pt: identity mapping for host devices (optional, less overhead)");
  }
  if (o.hide_boot_framebuffer) {
    auto [param, why] = TRY(framebuffer_param(fs));
    r.edit.also.push_back(param);
    r.notes.push_back(why);
  }
  r.loader = TRY(boot::detect(fs, o.boot_loader));
  boot::Configured c = TRY(r.loader->configured(fs));
  r.configured = c.path;
  r.add = boot::to_add(r.edit, c.cmdline);
  r.remove = boot::to_remove(r.edit, c.cmdline);
  std::vector<change::Change> programs;
  auto& plan = r.part.changes;
  if (r.add.empty() && r.remove.empty()) {
    auto g = r.loader->generated(fs);
    if (g && !boot::lacking(*g, r.edit)) {
      r.already = true;
      return r;
    }
    r.regenerate_only = true;
    programs = TRY(r.loader->regenerate(fs));
  } else {
    boot::BootPlan p = TRY(r.loader->plan(fs, r.edit));
    r.manual = p.manual;
    if (r.manual) return r;
    for (auto& [path, bytes] : p.files)
      plan.push_back(change::Change::file_write(path, bytes, 0644));
    programs = std::move(p.programs);
  }
  r.programs = boot::program_texts(programs);
  for (auto& pr : programs) plan.push_back(std::move(pr));
  const boot::Backend* b = r.loader;
  boot::Edit e = r.edit;
  std::string ran = r.programs.empty() ? std::string("the edit") : r.programs.back();
  plan.push_back(change::Change::check(
      b->name, fmt::format("the next boot's command line has {}", boot::describe(e)),
      [b, e, ran](const HostFs& f, CommandRunner*) -> Status {
        auto g = b->generated(f);
        if (!g)
          return Error::state(fmt::format("after {}, cannot read what the next boot uses: {}", ran,
                                          g.error().describe()),
                              "every edit was rolled back; see the program's output above");
        if (auto missing = boot::lacking(*g, e))
          return Error::state(
              fmt::format("{} did not carry the change into what the next boot uses: {}", ran,
                          *missing),
              "every edit was rolled back; run it by hand to see why, or set the parameter by "
              "hand");
        return {};
      }));
  return r;
}

}  // namespace pcipass::setup
