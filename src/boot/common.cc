#include "boot/common.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "boot/cmdline_file.h"
#include "boot/grub_cfg.h"
#include "boot/grub_defaults.h"

namespace pcipass::boot {

Result<Configured> grub_configured(const HostFs& fs) {
  GrubDefaults g = TRY(GrubDefaults::read(fs));
  Configured c;
  c.cmdline = TRY(g.cmdline());
  c.path = kGrubDefaults;
  for (const auto& f : g.files)
    for (const auto& a : f.assignments)
      if (a.name == "GRUB_CMDLINE_LINUX_DEFAULT" || a.name == "GRUB_CMDLINE_LINUX") c.path = f.path;
  return c;
}

Result<BootPlan> grub_plan(const HostFs& fs, const Edit& e, std::vector<std::string> regenerate) {
  GrubDefaults g = TRY(GrubDefaults::read(fs));
  BootPlan p;
  p.files = TRY(g.edit(e));
  p.programs.push_back(regeneration(std::move(regenerate)));
  return p;
}

Result<Generated> grub_generated(const HostFs& fs, const std::string& cfg) {
  GrubCfg parsed = GrubCfg::parse(TRY(fs.read(cfg, 8 << 20)));
  std::string dir = cfg.substr(0, cfg.rfind('/'));
  std::optional<std::string> saved;
  if (auto env = fs.read(dir + "/grubenv")) saved = grubenv_value(*env, "saved_entry");
  auto found = parsed.default_entry(saved);
  if (!found) {
    Error err = found.error();
    err.path = cfg;
    return err;
  }
  const MenuEntry* e = *found;
  Generated g;
  g.path = cfg;
  if (!e->has_linux)
    return Error::state(fmt::format("{}: default entry '{}' has no linux line", cfg, e->title));
  g.entries.push_back(
      {fmt::format("default entry '{}'", e->title), KernelCmdline::parse(e->linux_args)});
  return g;
}

Result<Configured> cmdline_file_configured(const HostFs& fs) {
  Configured c;
  c.path = kKernelCmdlineFile;
  if (fs.exists(kKernelCmdlineFile)) {
    c.cmdline = CmdlineFile::parse(TRY(fs.read(kKernelCmdlineFile))).cmdline();
  } else {
    c.cmdline = KernelCmdline::parse(cmdline_from_proc(TRY(fs.read("/proc/cmdline"))));
  }
  return c;
}

Result<BootPlan> cmdline_file_plan(const HostFs& fs, const Edit& e) {
  std::string text = fs.exists(kKernelCmdlineFile)
                         ? TRY(fs.read(kKernelCmdlineFile))
                         : cmdline_from_proc(TRY(fs.read("/proc/cmdline")));
  std::string after = TRY(CmdlineFile::parse(text).edit(e, kKernelCmdlineFile));
  BootPlan p;
  if (!fs.exists(kKernelCmdlineFile) || after != text)
    p.files.emplace_back(kKernelCmdlineFile, after);
  return p;
}

Result<Generated> bls_entries(const HostFs& fs, const std::string& dir,
                              const std::vector<std::string>& versions,
                              const std::optional<std::string>& grubenv) {
  Generated g;
  g.path = dir;
  std::optional<std::string> kernelopts;
  if (grubenv)
    if (auto env = fs.read(*grubenv)) kernelopts = grubenv_value(*env, "kernelopts");
  for (const auto& name : TRY(fs.list(dir))) {
    if (!name.ends_with(".conf")) continue;
    std::istringstream in(TRY(fs.read(dir + "/" + name)));
    std::string version, options;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto sp = line.find_first_of(" \t");
      std::string key = line.substr(0, sp);
      std::string value = sp == std::string::npos ? "" : line.substr(sp + 1);
      if (key == "version") version = trim(value);
      if (key == "options") options += " " + value;  // several lines add up
    }
    if (!versions.empty() && std::find(versions.begin(), versions.end(), version) == versions.end())
      continue;
    // Once, as GRUB expands it, past what it put in: a kernelopts holding "$kernelopts" itself
    // (grubenv is anyone's edit) made a search from the start loop forever.
    const std::string value = kernelopts.value_or("");
    for (size_t at = 0; (at = options.find("$kernelopts", at)) != std::string::npos;
         at += value.size())
      options.replace(at, 11, value);
    g.entries.push_back({name, KernelCmdline::parse(options)});
  }
  return g;
}

std::optional<std::string> sd_boot_esp(const HostFs& fs) {
  for (const char* esp : {"/efi", "/boot/efi", "/boot"})
    if (fs.exists(std::string(esp) + "/loader/loader.conf") &&
        fs.exists(std::string(esp) + "/EFI/systemd"))
      return esp;
  return std::nullopt;
}

}  // namespace pcipass::boot
