// Proxmox VE with proxmox-boot-tool (ZFS root, systemd-boot on the ESPs named in
// /etc/kernel/proxmox-boot-uuids): /etc/kernel/cmdline, then `proxmox-boot-tool refresh`, which
// copies kernels and entries to every ESP. It mounts them only while it writes, so what pcipass
// can read back afterwards is /etc/kernel/cmdline itself, the source refresh copies from.
#include "boot/cmdline_file.h"
#include "boot/common.h"

namespace pcipass::boot {

namespace {

std::optional<std::string> detect(const HostFs& fs) {
  std::string tool;
  if (!fs.exists("/etc/kernel/proxmox-boot-uuids") ||
      !any_exists(fs, {"/usr/sbin/proxmox-boot-tool", "/sbin/proxmox-boot-tool"}, &tool))
    return std::nullopt;
  return "/etc/kernel/proxmox-boot-uuids and " + tool;
}

Result<std::vector<change::Change>> regenerate(const HostFs&) {
  return std::vector<change::Change>{regeneration({"proxmox-boot-tool", "refresh"})};
}

Result<BootPlan> plan(const HostFs& fs, const Edit& e) {
  BootPlan p = TRY(cmdline_file_plan(fs, e));
  p.programs = TRY(regenerate(fs));
  return p;
}

Result<Generated> generated(const HostFs& fs) {
  Configured c = TRY(cmdline_file_configured(fs));
  Generated g;
  g.path = kKernelCmdlineFile;
  g.entries.push_back({"the command line proxmox-boot-tool copies", c.cmdline});
  return g;
}

}  // namespace

const Backend kProxmoxBackend = {
    LoaderKind::kProxmox,
    "proxmox-boot-tool",
    "proxmox-boot-tool (Proxmox VE)",
    {LoaderKind::kUpdateGrub, LoaderKind::kGrub2Mkconfig, LoaderKind::kSystemdBoot},
    detect,
    cmdline_file_configured,
    plan,
    regenerate,
    generated};

}  // namespace pcipass::boot
