// mkinitcpio (Arch): MODULES=(...) and FILES=(...) arrays, in /etc/mkinitcpio.conf or, where the
// installed mkinitcpio sources /etc/mkinitcpio.conf.d/*.conf (v38 and later), in a drop-in of
// pcipass's own that adds to them (MODULES+=(...)); `mkinitcpio -P` rebuilds every preset's
// image, /boot/initramfs-PRESET.img (and -fallback).
#include "initramfs/backends.h"
#include "initramfs/mkinitcpio_conf.h"

namespace pcipass::initramfs {

namespace {

constexpr const char* kConf = "/etc/mkinitcpio.conf";
constexpr const char* kDropIn = "/etc/mkinitcpio.conf.d/pcipass.conf";
constexpr const char* kProgram = "/usr/bin/mkinitcpio";

// The program is a bash script: one that names the drop-in directory reads it.
bool reads_drop_ins(const HostFs& fs) {
  auto script = fs.read(kProgram, 4 << 20);
  return script && script->find("mkinitcpio.conf.d") != std::string::npos;
}

Result<std::string> add(std::string text, const std::string& path, const Wants& wants,
                        const char* op) {
  if (!wants.modules.empty())
    text = TRY(with_array_words(text, path, "MODULES", wants.modules, op, true));
  if (!wants.files.empty())
    text = TRY(with_array_words(text, path, "FILES", wants.files, op, false));
  return text;
}

Result<std::vector<change::Change>> plan(const HostFs& fs, const Wants& wants) {
  std::vector<change::Change> out;
  auto conf = TRY(read_optional(fs, kConf));
  if (!reads_drop_ins(fs)) {
    if (!conf)
      return Error::not_found(std::string(kConf) + " is missing",
                              "reinstall mkinitcpio, or name another system with --initramfs");
    plan_write(fs, out, kConf, TRY(add(*conf, kConf, wants, "=")));
    return out;
  }
  // What the main file already lists needs no second mention in the drop-in.
  Wants rest = wants;
  if (conf) {
    ShellConf c = TRY(parse_shell_conf(*conf, kConf));
    std::vector<std::string> modules, files;
    for (const ShellArray* a : c.arrays("MODULES"))
      for (const auto& w : a->words) modules.push_back(w.value);
    for (const ShellArray* a : c.arrays("FILES"))
      for (const auto& w : a->words) files.push_back(w.value);
    rest.modules = missing_words(wants.modules, modules, true);
    rest.files = missing_words(wants.files, files, false);
  }
  auto drop_in = TRY(read_optional(fs, kDropIn));
  if (rest.empty() && !drop_in) return out;
  plan_write(fs, out, kDropIn, TRY(add(drop_in.value_or(kHeader), kDropIn, rest, "+=")));
  return out;
}

Result<std::vector<Image>> images(const HostFs& fs) {
  std::vector<Image> out;
  for (const auto& n : TRY(list_if_present(fs, "/boot")))
    if (n.starts_with("initramfs-") && n.ends_with(".img")) out.push_back({"", "/boot/" + n});
  return out;
}

}  // namespace

const Backend kMkinitcpioBackend = {
    System::kMkinitcpio,
    "mkinitcpio",
    {kProgram, "/usr/sbin/mkinitcpio"},
    plan,
    {"mkinitcpio", "-P"},
    images,
    "lsinitcpio",
};

}  // namespace pcipass::initramfs
