// The initramfs systems pcipass can configure, as a table of backends (one file each, as pciutils'
// lib/access.c lists its access methods): how each is recognised on the host, where it is told
// which modules and files to take in, how it is regenerated, which images the next boot uses and
// how to list what is in them. setup's initramfs part (plan_initramfs) edits the configuration,
// regenerates every image, then checks each image really holds what was asked for: a regeneration
// that silently dropped vfio-pci fails the change set, which rolls back and regenerates again.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "change/change.h"
#include "host/host_fs.h"
#include "host/runner.h"

namespace pcipass::initramfs {

enum class System { kInitramfsTools, kDracut, kMkinitcpio };
const char* system_name(System s);  // "initramfs-tools", "dracut", "mkinitcpio"
std::optional<System> parse_system(std::string_view name);

// What setup's parts want the initramfs to hold.
struct Wants {
  std::vector<std::string> modules;  // module names as modprobe spells them: "vfio_pci"
  std::vector<std::string> files;    // host files to copy in as they are (a udev rule)
  bool empty() const { return modules.empty() && files.empty(); }
};

// One image the next boot may use; `kernel` is empty where the image is named by a preset
// (mkinitcpio's initramfs-linux.img) rather than by a kernel release.
struct Image {
  std::string kernel;
  std::string path;
};

struct Backend {
  System system;
  const char* name;
  // Any one of these on the host shows the system is installed (its generator program).
  std::vector<const char*> evidence;
  // The configuration edits for `wants`, as file writes (and the directories they need); a file
  // already as wanted is still planned (the change engine leaves unchanged files alone).
  Result<std::vector<change::Change>> (*plan)(const HostFs& fs, const Wants& wants);
  std::vector<std::string> regenerate;  // argv: every installed kernel's image
  Result<std::vector<Image>> (*images)(const HostFs& fs);
  const char* lister;  // lists an image's paths, one per line: lsinitramfs IMAGE
};

// The table, in a fixed order.
const std::vector<const Backend*>& backends();
const Backend& backend(System s);

// The one system installed on this host, or the one `chosen` (--initramfs NAME), which must be
// installed. Several installed, or none: an error naming what was found and --initramfs.
Result<const Backend*> detect(const HostFs& fs, std::optional<System> chosen);

struct Planned {
  const Backend* backend = nullptr;
  std::vector<std::string> configs;  // the files edited, in order
  std::vector<Image> images;         // checked after regenerating
  bool changed = false;              // false: the configuration already asks for everything
  std::vector<change::Change> changes;
};

// The configuration edits, then (only when one changes something) the regeneration, undone by
// regenerating again from the restored files, and one check per image of the installed kernels.
Result<Planned> plan_initramfs(const HostFs& fs, const Backend& b, const Wants& wants);

// The environment the generators and listers run with: a fixed PATH and the C locale.
Invocation invocation(std::vector<std::string> argv);

// Whether an image listing (lsinitramfs, lsinitrd or lsinitcpio output) holds the module: a path
// ending in NAME.ko with any compression suffix, '-' and '_' alike (vfio_pci is vfio-pci.ko).
bool listing_has_module(std::string_view listing, std::string_view module);
// Whether it holds the host file `path` (listed without its leading slash, or with it).
bool listing_has_file(std::string_view listing, std::string_view path);
// Modules built into kernel `release` (its modules.builtin), underscored; none when the kernel
// has no modules.builtin, an error when it cannot be read (a module missing from an image may
// then be built in: the caller cannot tell).
Result<std::vector<std::string>> builtin_modules(const HostFs& fs, const std::string& release);
// Kernel releases installed: /lib/modules/V with a kernel image (/boot/vmlinuz-V or
// /lib/modules/V/vmlinuz). An error when /lib/modules cannot be listed: the images of the
// kernels passed over would go unchecked after a regeneration.
Result<std::vector<std::string>> installed_kernels(const HostFs& fs);

// Checks one image: lists it through `runner` and fails naming what is missing.
Status verify_image(const HostFs& fs, CommandRunner* runner, const Backend& b, const Image& image,
                    const Wants& wants);

}  // namespace pcipass::initramfs
