// Fedora/RHEL: Boot Loader Specification entries in /boot/loader/entries, edited by grubby
// (`--update-kernel=ALL --args=... --remove-args=...`, which also keeps /etc/default/grub and
// /etc/kernel/cmdline in step for future kernels). Verified in every entry's `options`.
#include <fmt/format.h>

#include "boot/cmdline_file.h"
#include "boot/common.h"
#include "boot/grub_defaults.h"

namespace pcipass::boot {

namespace {

constexpr const char* kEntries = "/boot/loader/entries";
constexpr const char* kGrubenv = "/boot/grub2/grubenv";

std::optional<std::string> detect(const HostFs& fs) {
  std::string tool;
  if (!any_exists(fs, {"/usr/sbin/grubby", "/sbin/grubby", "/usr/bin/grubby"}, &tool))
    return std::nullopt;
  auto names = list_if_present(fs, kEntries);
  // Entries that cannot be listed may be there: grubby is still a candidate (its plan then
  // names the error). Passed over, grub2-mkconfig, which it supersedes, would be chosen and
  // regenerate a grub.cfg that BLS entries override.
  if (!names) return fmt::format("{} and {} ({})", tool, kEntries, names.error().describe());
  for (const auto& n : *names)
    if (n.ends_with(".conf")) return tool + " and BLS entries in " + std::string(kEntries);
  return std::nullopt;
}

Result<Generated> generated(const HostFs& fs) {
  return bls_entries(fs, kEntries, TRY(installed_kernels(fs)), kGrubenv);
}

Result<Configured> configured(const HostFs& fs) {
  Generated g = TRY(generated(fs));
  if (g.entries.empty()) return Error::not_found(fmt::format("no BLS entries in {}", kEntries));
  return Configured{kEntries + std::string("/") + g.entries.front().name,
                    g.entries.front().cmdline};
}

// Every file `grubby --update-kernel=ALL` may rewrite: each entry, and (Fedora's grubby keeps
// future kernels in step) /etc/default/grub and /etc/kernel/cmdline where they exist. Their
// bytes, not the inverse command, are the undo: that would put the parameter back but not the
// order, spacing or a parameter that was there twice. grubby writes nothing else for an
// argument edit (grub.cfg's blscfg reads the entries), so undo runs nothing.
Result<std::vector<std::string>> rewritten(const HostFs& fs) {
  std::vector<std::string> out;
  for (const auto& n : TRY(fs.list(kEntries)))
    if (n.ends_with(".conf")) out.push_back(kEntries + std::string("/") + n);
  for (const char* f : {kGrubDefaults, kKernelCmdlineFile})
    if (fs.exists(f)) out.push_back(f);
  return out;
}

// Entries of older Fedora and RHEL 8 say `options $kernelopts`: grubby then edits kernelopts in
// grubenv, which GRUB itself rewrites at every boot (boot_success, saved_entry), so its bytes
// cannot be held for undo. There the inverse command stays the undo.
Result<bool> uses_kernelopts(const HostFs& fs) {
  for (const auto& n : TRY(fs.list(kEntries)))
    if (n.ends_with(".conf") &&
        TRY(fs.read(kEntries + std::string("/") + n)).find("$kernelopts") != std::string::npos)
      return true;
  return false;
}

std::string joined(const std::vector<std::string>& v) {
  return fmt::format("{}", fmt::join(v, " "));
}

Result<BootPlan> plan(const HostFs& fs, const Edit& e) {
  Generated g = TRY(generated(fs));
  std::vector<std::string> add, remove;
  auto merge = [](std::vector<std::string>& into, const std::vector<std::string>& from) {
    for (const auto& s : from)
      if (std::find(into.begin(), into.end(), s) == into.end()) into.push_back(s);
  };
  for (const auto& entry : g.entries) {
    merge(add, to_add(e, entry.cmdline));
    merge(remove, to_remove(e, entry.cmdline));
  }
  BootPlan p;
  if (add.empty() && remove.empty()) return p;
  auto argv = [](const std::vector<std::string>& args, const std::vector<std::string>& rm) {
    std::vector<std::string> v = {"grubby", "--update-kernel=ALL"};
    if (!args.empty()) v.push_back("--args=" + joined(args));
    if (!rm.empty()) v.push_back("--remove-args=" + joined(rm));
    return v;
  };
  if (TRY(uses_kernelopts(fs))) {
    change::Change c = regeneration(argv(add, remove));
    c.undo_program->argv = argv(remove, add);
    p.programs.push_back(std::move(c));
    return p;
  }
  p.programs = guarded_run(argv(add, remove), TRY(rewritten(fs)));
  return p;
}

Result<std::vector<change::Change>> regenerate(const HostFs&) {
  return std::vector<change::Change>{};  // grubby writes the entries themselves
}

}  // namespace

const Backend kGrubbyBackend = {LoaderKind::kGrubby,
                                "grubby",
                                "BLS entries (grubby)",
                                {LoaderKind::kGrub2Mkconfig},
                                detect,
                                configured,
                                plan,
                                regenerate,
                                generated};

}  // namespace pcipass::boot
