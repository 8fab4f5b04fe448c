// What several backends share: the GRUB defaults (update-grub, grub2-mkconfig), /etc/kernel/cmdline
// (systemd-boot, Proxmox) and Boot Loader Specification entries (grubby, systemd-boot).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "boot/loader.h"

namespace pcipass::boot {

Result<Configured> grub_configured(const HostFs& fs);
Result<BootPlan> grub_plan(const HostFs& fs, const Edit& e, std::vector<std::string> regenerate);
// grub.cfg's default entry; grubenv beside it gives ${saved_entry}.
Result<Generated> grub_generated(const HostFs& fs, const std::string& cfg);

// /etc/kernel/cmdline, or (absent) what kernel-install would use instead: /proc/cmdline.
Result<Configured> cmdline_file_configured(const HostFs& fs);
Result<BootPlan> cmdline_file_plan(const HostFs& fs, const Edit& e);

// The entries of a BLS directory (`version` among `versions` when that is not empty), their
// `options` with $kernelopts from `grubenv` (older Fedora).
Result<Generated> bls_entries(const HostFs& fs, const std::string& dir,
                              const std::vector<std::string>& versions,
                              const std::optional<std::string>& grubenv);

// The EFI system partition's mount point with a systemd-boot loader.conf: /efi, /boot/efi, /boot.
std::optional<std::string> sd_boot_esp(const HostFs& fs);

}  // namespace pcipass::boot
