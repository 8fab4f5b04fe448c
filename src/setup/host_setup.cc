#include "setup/host_setup.h"

#include <fmt/format.h>

namespace pcipass::setup {

namespace {

// The initramfs part for what the other parts need there. No system at all is not an error for
// --vfio alone (modules-load.d still loads the modules, later in the boot): it is said in a note.
Result<std::optional<Part>> plan_initramfs_part(const HostFs& fs, const Request& req,
                                                SetupReport& r) {
  initramfs::Wants wants;
  if (req.vfio || !req.early_bind.empty()) wants.modules = TRY(vfio_modules(fs));
  if (r.early_bind) wants.files.push_back(kUdevRulePath);
  if (wants.empty()) return std::optional<Part>();
  auto backend = initramfs::detect(fs, req.initramfs);
  if (!backend) {
    if (req.initramfs || backend.error().kind != ErrorKind::kNotFound) return backend.error();
    r.notes.push_back(fmt::format(
        "{}; the vfio modules will load from {} once the root file system is mounted{}",
        backend.error().message, kModulesLoadPath,
        r.early_bind ? ", and only the udev rule on the root file system binds early" : ""));
    return std::optional<Part>();
  }
  initramfs::Planned p = TRY(initramfs::plan_initramfs(fs, **backend, wants));
  r.initramfs = InitramfsReport{*backend, wants, p.configs, p.images, p.changed};
  return std::optional<Part>(Part{PartKind::kInitramfs, std::move(p.changes)});
}

}  // namespace

Result<SetupPlan> plan_setup(const HostFs& fs, const Request& req, const HostView* host) {
  if (!req.vfio && req.early_bind.empty() && !req.selinux && !req.cmdline.any())
    return Error::invalid("nothing to set up",
                          "add --iommu, --iommu-pt, --hide-boot-framebuffer, --vfio, "
                          "--early-bind DEVICE... or --selinux");
  SetupReport r;
  std::vector<Part> parts;
  if (req.vfio) {
    r.vfio = TRY(plan_vfio(fs));
    parts.push_back(std::move(r.vfio->part));
  }
  if (!req.early_bind.empty()) {
    if (!host) return Error::state("early binding needs the PCI inventory", "");
    r.early_bind = TRY(plan_early_bind(fs, *host, req.early_bind));
    for (const auto& n : r.early_bind->notes) r.notes.push_back(n);
    parts.push_back(std::move(r.early_bind->part));
  }
  if (req.selinux) {
    r.selinux = TRY(plan_selinux(fs));
    if (!r.selinux->state.enabled)
      r.notes.push_back("SELinux is not enabled here: --selinux has nothing to set");
    parts.push_back(std::move(r.selinux->part));
  }
  if (auto p = TRY(plan_initramfs_part(fs, req, r))) parts.push_back(std::move(*p));
  if (req.cmdline.any()) {
    r.cmdline = TRY(plan_kernel_cmdline(fs, req.cmdline));
    parts.push_back(std::move(r.cmdline->part));
  }
  return SetupPlan{std::move(r), std::move(parts)};
}

Result<SetupReport> run_setup(HostFs& fs, const Request& req, const HostView* host,
                              const change::Ports& ports, const change::DurableRun& run) {
  SetupPlan p = TRY(plan_setup(fs, req, host));
  p.report.applied = TRY(apply_parts(fs, std::move(p.parts), ports, run));
  return std::move(p.report);
}

}  // namespace pcipass::setup
