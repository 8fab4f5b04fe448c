// Proxmox VE with proxmox-boot-tool (ESPs named in /etc/kernel/proxmox-boot-uuids, kept in step
// by `proxmox-boot-tool refresh`). Two modes, as Proxmox's documentation describes them:
// - systemd-boot (UEFI without Secure Boot, e.g. a ZFS root): the command line is
//   /etc/kernel/cmdline, which refresh copies into every ESP's loader entries. It mounts the ESPs
//   only while it writes, so what pcipass can read back is /etc/kernel/cmdline itself.
// - GRUB (legacy BIOS boot, or UEFI with Secure Boot through shim): the command line is
//   GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub; update-grub writes /boot/grub/grub.cfg
//   (read back) and refresh puts GRUB and the kernels on every ESP.
// The mode is the ESPs' content, which is not mounted; it follows from how this host booted, which
// is: no EFI firmware, or Secure Boot on, is GRUB.
#include "boot/cmdline_file.h"
#include "boot/common.h"

namespace pcipass::boot {

namespace {

constexpr const char* kSecureBoot =
    "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

// The variable's 4 attribute bytes, then one byte: 1 when Secure Boot is on.
bool secure_boot(const HostFs& fs) {
  auto v = fs.read(kSecureBoot, 64);
  return v && v->size() == 5 && (*v)[4] == 1;
}

// Why the GRUB mode applies, or nullopt for the systemd-boot mode.
std::optional<std::string> grub_mode(const HostFs& fs) {
  if (!fs.is_dir("/sys/firmware/efi")) return "legacy BIOS boot";
  if (secure_boot(fs)) return "Secure Boot";
  return std::nullopt;
}

std::optional<std::string> tool_and_list(const HostFs& fs) {
  std::string tool;
  if (!fs.exists("/etc/kernel/proxmox-boot-uuids") ||
      !any_exists(fs, {"/usr/sbin/proxmox-boot-tool", "/sbin/proxmox-boot-tool"}, &tool))
    return std::nullopt;
  return "/etc/kernel/proxmox-boot-uuids and " + tool;
}

std::optional<std::string> detect(const HostFs& fs) {
  if (grub_mode(fs)) return std::nullopt;
  return tool_and_list(fs);
}

std::optional<std::string> detect_grub(const HostFs& fs) {
  auto why = grub_mode(fs);
  auto found = tool_and_list(fs);
  if (!why || !found || !fs.exists("/etc/default/grub")) return std::nullopt;
  return *found + ", /etc/default/grub, " + *why + " (GRUB on the ESPs)";
}

// update-grub, then refresh (which may copy what update-grub wrote). Undo and rollback run a
// set's programs last to first, so each carries the other's invocation as its undo: they too run
// update-grub first.
std::vector<change::Change> grub_then_refresh() {
  change::Change grub = regeneration({"update-grub"});
  change::Change refresh = regeneration({"proxmox-boot-tool", "refresh"});
  std::swap(grub.undo_program, refresh.undo_program);
  return {std::move(grub), std::move(refresh)};
}

Result<std::vector<change::Change>> regenerate_grub(const HostFs&) {
  return grub_then_refresh();
}

Result<BootPlan> plan_grub(const HostFs& fs, const Edit& e) {
  BootPlan p = TRY(grub_plan(fs, e, {"update-grub"}));
  p.programs = grub_then_refresh();
  return p;
}

Result<Generated> generated_grub(const HostFs& fs) {
  return grub_generated(fs, "/boot/grub/grub.cfg");
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

const Backend kProxmoxGrubBackend = {
    LoaderKind::kProxmoxGrub,
    "proxmox-boot-tool-grub",
    "proxmox-boot-tool, GRUB mode (Proxmox VE)",
    {LoaderKind::kUpdateGrub, LoaderKind::kGrub2Mkconfig, LoaderKind::kSystemdBoot},
    detect_grub,
    grub_configured,
    plan_grub,
    regenerate_grub,
    generated_grub};

}  // namespace pcipass::boot
