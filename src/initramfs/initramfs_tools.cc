// initramfs-tools (Debian, Ubuntu): /etc/initramfs-tools/modules lists a module per line (with
// optional arguments); files come in through a hook script; `update-initramfs -u -k all`
// rebuilds /boot/initrd.img-VERSION of every installed kernel.
#include <sstream>

#include "initramfs/backends.h"

namespace pcipass::initramfs {

namespace {

constexpr const char* kModules = "/etc/initramfs-tools/modules";
constexpr const char* kHook = "/etc/initramfs-tools/hooks/pcipass";
// The Debian package's hook (data/initramfs-tools/pcipass) copies the early-binding files itself
// when they exist: with it, pcipass writes no hook in /etc. A packaged hook that does not name a
// wanted file (another version of the package) leaves the /etc hook to be written.
constexpr const char* kPackagedHook = "/usr/share/initramfs-tools/hooks/pcipass";

bool packaged_hook_copies(const HostFs& fs, const std::vector<std::string>& files) {
  auto text = fs.read(kPackagedHook, 64 * 1024);
  if (!text) return false;
  for (const auto& f : files)
    if (text->find(f) == std::string::npos) return false;
  return true;
}

// A line's module: its first word, comments ('#') dropped.
std::vector<std::string> listed_modules(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto words = split_words(line.substr(0, line.find('#')));
    if (!words.empty()) out.push_back(words.front());
  }
  return out;
}

// initramfs-tools runs every executable in hooks/ while building the image; this one copies the
// files as they are, to the same path inside the image (systemd-udevd there reads
// /etc/udev/rules.d as it does on the root file system).
std::string hook_script(const std::vector<std::string>& files) {
  std::string s =
      "#!/bin/sh\n"
      "# Written by `pcipass setup --early-bind`; `pcipass undo` removes it. Copies pcipass's\n"
      "# early-binding files into the initramfs, so that driver_override is set there before\n"
      "# the devices' host drivers load.\n"
      "PREREQ=\"udev\"\n"
      "prereqs() { echo \"$PREREQ\"; }\n"
      "case \"$1\" in prereqs) prereqs; exit 0 ;; esac\n"
      "set -e\n";
  for (const auto& f : files) {
    std::string dir = f.substr(0, f.rfind('/'));
    s += "mkdir -p \"${DESTDIR}" + dir + "\"\n";
    s += "cp -p " + f + " \"${DESTDIR}" + f + "\"\n";
  }
  return s;
}

Result<std::vector<change::Change>> plan(const HostFs& fs, const Wants& wants) {
  std::vector<change::Change> out;
  if (!wants.modules.empty()) {
    auto text = TRY(read_optional(fs, kModules));
    std::string bytes = text.value_or(kHeader);
    for (const auto& m : missing_words(wants.modules, listed_modules(bytes), true))
      bytes = append_line(bytes, kHeader, m);
    plan_write(fs, out, kModules, bytes);
  }
  if (!wants.files.empty() && !packaged_hook_copies(fs, wants.files))
    plan_write(fs, out, kHook, hook_script(wants.files), 0755);
  return out;
}

Result<std::vector<Image>> images(const HostFs& fs) {
  std::vector<Image> out;
  for (const auto& v : TRY(installed_kernels(fs))) out.push_back({v, "/boot/initrd.img-" + v});
  return out;
}

}  // namespace

const Backend kInitramfsToolsBackend = {
    System::kInitramfsTools,
    "initramfs-tools",
    {"/usr/sbin/update-initramfs", "/sbin/update-initramfs"},
    plan,
    {"update-initramfs", "-u", "-k", "all"},
    images,
    "lsinitramfs",
};

}  // namespace pcipass::initramfs
