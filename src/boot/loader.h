// Boot loaders as a table of backends, one file each, as pciutils' lib/access.c lists its access
// methods: each says how to tell it is this host's (reading the host only through HostFs, never
// the distribution's name), where the kernel command line is configured, how to edit it, which
// program regenerates what the firmware reads (argv through the CommandRunner, never a shell),
// and how to read back what the next boot will use.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "boot/words.h"
#include "change/change.h"
#include "host/host_fs.h"

namespace pcipass::boot {

enum class LoaderKind {
  kUpdateGrub,     // GRUB, Debian/Ubuntu: /etc/default/grub(.d), update-grub
  kGrub2Mkconfig,  // GRUB with grub2-mkconfig -o the grub.cfg this host boots
  kGrubby,         // Fedora/RHEL BLS entries through grubby
  kSystemdBoot,    // systemd-boot / kernel-install: /etc/kernel/cmdline
  kKernelstub,     // Pop!_OS
  kProxmox,        // proxmox-boot-tool, systemd-boot ESPs: /etc/kernel/cmdline + refresh
  kProxmoxGrub,    // proxmox-boot-tool, GRUB ESPs: /etc/default/grub, update-grub + refresh
  kRpmOstree,      // rpm-ostree kargs: reported, never edited
};

// What the next boot will use, read from the generated output: every entry that must carry the
// parameters (grub.cfg's default entry; each BLS or systemd-boot entry of an installed kernel).
struct Generated {
  std::string path;  // "/boot/grub/grub.cfg", "/boot/loader/entries"
  struct Entry {
    std::string name;  // "default entry 'Debian GNU/Linux'", "6.1.0-13-amd64.conf"
    KernelCmdline cmdline;
  };
  std::vector<Entry> entries;
};

// Where the command line is configured, as the host has it now.
struct Configured {
  std::string path;  // "/etc/default/grub", "/etc/kernel/cmdline"
  KernelCmdline cmdline;
};

// A backend's plan for an edit: files with their new bytes, then programs, each with the program
// that undoes it (for regeneration: the same regeneration, run after the files are back), or
// preceded by guards (change::Change::file_guard) of every file it rewrites, whose bytes are then
// its undo (grubby, kernelstub: an inverse command would restore the parameter, not the bytes).
struct BootPlan {
  std::vector<std::pair<std::string, std::string>> files;
  std::vector<change::Change> programs;  // programs, and the guards of the files they rewrite
  std::optional<std::string> manual;     // the command the user runs instead (rpm-ostree)
};

struct Backend {
  LoaderKind kind;
  const char* name;                    // for --boot-loader NAME
  const char* what;                    // "GRUB (update-grub)"
  std::vector<LoaderKind> supersedes;  // loaders whose traces this one's host also has
  // Why this loader is plausible on the host ("/etc/default/grub and /usr/sbin/update-grub");
  // nullopt when it is not.
  std::optional<std::string> (*detect)(const HostFs&);
  Result<Configured> (*configured)(const HostFs&);
  Result<BootPlan> (*plan)(const HostFs&, const Edit&);
  // The programs that regenerate the boot configuration from unchanged files (a file that has
  // the parameter when the generated output does not), with guards as in BootPlan.
  Result<std::vector<change::Change>> (*regenerate)(const HostFs&);
  Result<Generated> (*generated)(const HostFs&);
};

const std::vector<const Backend*>& backends();
const Backend* backend_named(const std::string& name);
std::string backend_names();  // "update-grub, grub2-mkconfig, ..."

// This host's boot loader: the plausible ones, less those another plausible one supersedes,
// must be exactly one; else an error naming what was found and how to choose (--boot-loader).
// `choice`: the user's --boot-loader, taken without detection.
Result<const Backend*> detect(const HostFs& fs, const std::optional<std::string>& choice);

// What `e` still lacks in `g`'s entries ("default entry 'Debian' lacks intel_iommu=on"), or
// nullopt when every entry has it.
std::optional<std::string> lacking(const Generated& g, const Edit& e);

// What is pending for `e` on this host's boot loader, for `pcipass check`: "intel_iommu=on is
// in /etc/default/grub and in /boot/grub/grub.cfg but not in /proc/cmdline: reboot", or "... in
// /etc/default/grub but not in /boot/grub/grub.cfg: run update-grub". nullopt when the loader is
// unknown, the configuration does not ask for `e` (the usual fix applies), or the running kernel
// already has it.
std::optional<std::string> pending(const HostFs& fs, const Edit& e, const KernelCmdline& running);

// A regeneration step: `argv` run, with the same argv as its undo (run after the files are
// back, so the generated output follows them).
change::Change regeneration(std::vector<std::string> argv);
// `argv` run with no undo program, after a guard of each of `rewrites`: undo puts those files'
// bytes back instead.
std::vector<change::Change> guarded_run(std::vector<std::string> argv,
                                        const std::vector<std::string>& rewrites);
// The argv of the programs among `changes`, shell-quoted for display.
std::vector<std::string> program_texts(const std::vector<change::Change>& changes);

// Helpers the backends share.
bool any_exists(const HostFs& fs, std::initializer_list<const char*> paths,
                std::string* found = nullptr);
// Versions of /boot/vmlinuz-*; an error when /boot cannot be listed (not "no kernels": the
// entries of the kernels passed over would keep their old options).
Result<std::vector<std::string>> installed_kernels(const HostFs& fs);

// The backends (one file each).
extern const Backend kUpdateGrubBackend, kGrub2MkconfigBackend, kGrubbyBackend, kSystemdBootBackend,
    kKernelstubBackend, kProxmoxBackend, kProxmoxGrubBackend, kRpmOstreeBackend;

}  // namespace pcipass::boot
