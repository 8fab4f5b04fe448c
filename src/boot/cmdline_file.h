// /etc/kernel/cmdline, which kernel-install (systemd-boot, 90-loaderentry.install) and Proxmox's
// proxmox-boot-tool put on every entry they write: parameters separated by white space, no
// quoting. Edits change only the bytes of the parameters they touch.
#pragma once

#include <optional>
#include <string>

#include "boot/words.h"

namespace pcipass::boot {

inline constexpr const char* kKernelCmdlineFile = "/etc/kernel/cmdline";

struct CmdlineFile {
  std::string text;
  Value value;             // its words, and where a new one goes (after the last)
  bool init_args = false;  // it has a `--`: the words after it are init's, not in `value`
  static CmdlineFile parse(std::string text);
  const std::string& str() const { return text; }
  KernelCmdline cmdline() const;
  // The file's new bytes after `e`.
  Result<std::string> edit(const Edit& e, const std::string& path) const;
};

// A new /etc/kernel/cmdline from the running kernel's command line (what kernel-install uses
// when the file is absent), without what the boot loader adds itself (BOOT_IMAGE=, initrd=).
std::string cmdline_from_proc(const std::string& proc_cmdline);

}  // namespace pcipass::boot
