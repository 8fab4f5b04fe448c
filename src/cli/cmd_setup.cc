// pcipass setup: the host configured for passthrough at boot (the VFIO modules, early binding,
// SELinux, the initramfs, the kernel command line through the boot loader), as ONE change set
// that undo reverts; setup --undo.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "change/store.h"
#include "cli/commands.h"
#include "setup/host_setup.h"

namespace pcipass::cli {

namespace {

const char* vendor_name(setup::IommuVendor v) {
  switch (v) {
    case setup::IommuVendor::kIntel:
      return "intel";
    case setup::IommuVendor::kAmd:
      return "amd";
    case setup::IommuVendor::kUnknown:
      break;
  }
  return "unknown";
}

Json cmdline_json(const setup::CmdlineReport& r) {
  return Json{{"boot_loader", r.loader->name},
              {"configured", r.configured},
              {"iommu_vendor", vendor_name(r.vendor)},
              {"add", r.add},
              {"remove", r.remove},
              {"already", r.already},
              {"regenerate_only", r.regenerate_only},
              {"manual_command", or_null(r.manual)},
              {"programs", r.programs},
              {"notes", r.notes}};
}

// The newest applied change set a setup made.
int run_setup_undo(Context& ctx, const Args& a) {
  auto sets = change::list_change_sets(ctx.fs());
  if (!sets) return fail(ctx, sets.error());
  for (auto it = sets->rbegin(); it != sets->rend(); ++it)
    if (it->state == change::SetState::kApplied &&
        (it->command == "setup" || it->command.starts_with("setup "))) {
      Args undo = a;
      undo.id = it->id;
      return run_undo(ctx, undo);
    }
  return fail(ctx, Error::not_found("no applied setup change set to undo",
                                    "`pcipass undo --list` shows every change set"));
}

void print_cmdline(Context& ctx, const setup::CmdlineReport& r, bool changed) {
  print_line(ctx.out, fmt::format("boot loader: {}", r.loader->what));
  for (const auto& n : r.notes) print_line(ctx.out, "  " + n);
  if (r.manual) {
    print_line(ctx.out, fmt::format("pcipass does not edit rpm-ostree deployments: run `{}`, then "
                                    "reboot",
                                    *r.manual));
    return;
  }
  if (r.already) {
    print_line(ctx.out, fmt::format("nothing to change: {} and what the next boot uses already "
                                    "have {}",
                                    r.configured, boot::describe(r.edit)));
    return;
  }
  if (!changed) return;
  if (r.regenerate_only)
    print_line(ctx.out, fmt::format("{} already has {}, but the boot configuration did not: "
                                    "regenerated it",
                                    r.configured, boot::describe(r.edit)));
  for (const auto& p : r.remove)
    print_line(ctx.out, fmt::format("removed {} ({})", p, r.configured));
  for (const auto& p : r.add) print_line(ctx.out, fmt::format("added {} ({})", p, r.configured));
  for (const auto& p : r.programs) print_line(ctx.out, fmt::format("ran {}", p));
  print_line(ctx.out, "verified what the next boot uses: reboot to use it");
}

// --early-bind takes addresses: binding by IDs is what cannot tell identical cards apart.
Result<std::vector<PciAddress>> early_addresses(Context& ctx, const Args& a) {
  std::vector<PciAddress> out;
  if (a.early_bind.empty()) return out;
  const Inventory* inv = TRY(ctx.inventory());
  for (const auto& arg : a.early_bind) {
    auto sel = parse_selector(arg);
    if (!sel || !std::holds_alternative<PciAddress>(*sel))
      return Error::invalid(
          fmt::format("--early-bind {}: not a PCI address", arg),
          "name each device by its address (0000:01:00.0): early binding is by address, so that "
          "one of two identical cards can stay with the host");
    for (const Device* d : TRY(inv->select(arg)))
      if (std::find(out.begin(), out.end(), d->address) == out.end()) out.push_back(d->address);
  }
  return out;
}

Json initramfs_json(const setup::SetupReport& r) {
  if (!r.initramfs) return nullptr;
  const auto& i = *r.initramfs;
  Json images = Json::array();
  for (const auto& im : i.images)
    images.push_back({{"kernel", or_null(im.kernel)}, {"path", im.path}});
  return {{"system", i.backend->name},   {"configs", i.configs},
          {"modules", i.wants.modules},  {"files", i.wants.files},
          {"regenerated", i.changed},    {"regenerate", i.backend->regenerate},
          {"lister", i.backend->lister}, {"images", images}};
}

Json early_json(const setup::SetupReport& r) {
  if (!r.early_bind) return nullptr;
  Json devices = Json::array();
  for (const auto& d : r.early_bind->devices)
    devices.push_back({{"address", d.address.str()},
                       {"id", fmt::format("{:04x}:{:04x}", d.vendor, d.device)},
                       {"driver", or_null(d.driver)},
                       {"softdep", d.softdeps},
                       {"builtin", d.builtin}});
  return {{"rule", setup::kUdevRulePath},
          {"modprobe", setup::kModprobePath},
          {"devices", devices},
          {"added", r.early_bind->added}};
}

Json selinux_json(const setup::SetupReport& r) {
  if (!r.selinux) return nullptr;
  const auto& s = r.selinux->state;
  return {{"enabled", s.enabled},
          {"enforcing", s.enforcing},
          {"boolean", or_null(s.boolean)},
          {"was_on", s.on},
          {"sets", r.selinux->needed}};
}

void print_json(Context& ctx, const Args& a, const setup::SetupReport& r) {
  const auto& applied = r.applied;
  Json modules = r.vfio ? Json(r.vfio->modules) : Json::array();
  Json added = r.vfio ? Json(r.vfio->added) : Json::array();
  ctx.out << dump_json(
                 Json{{"schema", "pcipass.setup/1"},
                      {"dry_run", a.dry_run},
                      {"changed", applied.changed},
                      {"change_set", or_null(applied.id)},
                      {"path", setup::kModulesLoadPath},
                      {"modules", modules},
                      {"added", added},
                      {"created", applied.changed && r.vfio && r.vfio->created},
                      {"initramfs", initramfs_json(r)},
                      {"early_bind", early_json(r)},
                      {"selinux", selinux_json(r)},
                      {"kernel_cmdline", r.cmdline ? cmdline_json(*r.cmdline) : Json(nullptr)},
                      {"notes", r.notes},
                      {"steps", steps_json(applied.steps)}})
          << '\n';
}

// One line per part that changed something; the --vfio line only with `vfio_line`.
std::vector<std::string> done_lines(const setup::SetupReport& r, bool vfio_line = true) {
  std::vector<std::string> out;
  if (vfio_line && r.vfio && !r.vfio->added.empty())
    out.push_back(fmt::format("{} {} ({} now load at boot)",
                              r.vfio->created ? "created" : "added to", r.vfio->path,
                              fmt::join(r.vfio->added, ", ")));
  if (r.early_bind && !r.early_bind->added.empty())
    out.push_back(fmt::format("{} set for early binding to vfio-pci ({}, {})",
                              fmt::join(r.early_bind->added, ", "), setup::kUdevRulePath,
                              setup::kModprobePath));
  if (r.selinux && r.selinux->needed)
    out.push_back(fmt::format("turned on the SELinux boolean {}", *r.selinux->state.boolean));
  if (r.initramfs && r.initramfs->changed) {
    std::vector<std::string> images;
    for (const auto& i : r.initramfs->images) images.push_back(i.path);
    out.push_back(
        fmt::format("{}: {} regenerated and checked ({})", r.initramfs->backend->name,
                    images.empty() ? "images" : fmt::format("{}", fmt::join(images, ", ")),
                    fmt::join(r.initramfs->wants.modules, ", ")));
  }
  return out;
}

std::string command_text(const Args& a, const setup::Request& req) {
  std::string out = "setup";
  if (a.iommu) out += " --iommu";
  if (a.iommu_pt) out += " --iommu-pt";
  if (a.hide_boot_framebuffer) out += " --hide-boot-framebuffer";
  if (a.vfio) out += " --vfio";
  for (const auto& d : req.early_bind) out += " --early-bind " + d.str();
  if (a.selinux) out += " --selinux";
  if (!a.boot_loader.empty()) out += " --boot-loader " + a.boot_loader;
  return out;
}

std::string nothing_line(const setup::SetupReport& r) {
  if (r.vfio && !r.early_bind && !r.selinux)
    return fmt::format(
        "nothing to change: {} already loads {} at boot{}", r.vfio->path,
        fmt::join(r.vfio->modules, ", "),
        r.initramfs ? fmt::format(", and {} puts them in the initramfs", r.initramfs->backend->name)
                    : "");
  return "nothing to change: the host is already set up as asked";
}

}  // namespace

void setup_setup(CLI::App& app, Args& a) {
  app.add_flag("--vfio", a.vfio,
               "Load vfio, vfio_iommu_type1 and vfio_pci at boot (/etc/modules-load.d/pcipass.conf "
               "and the initramfs)");
  app.add_flag("--iommu", a.iommu,
               "Turn the IOMMU on in the kernel command line (intel_iommu=on on Intel; on AMD, "
               "where it is on by default, remove amd_iommu=off)");
  app.add_flag("--iommu-pt", a.iommu_pt, "Add iommu=pt (identity mapping for host devices)");
  app.add_flag("--hide-boot-framebuffer", a.hide_boot_framebuffer,
               "Keep the firmware framebuffer off the boot GPU (initcall_blacklist=sysfb_init, or "
               "video=efifb:off before kernel 5.15)");
  app.add_option("--early-bind", a.early_bind,
                 "Hand these devices (by address) to vfio-pci at boot, before their host drivers")
      ->option_text("ADDRESS...");
  app.add_flag("--selinux", a.selinux,
               "Turn on the SELinux boolean virt_use_sysfs (setsebool -P), where it is off");
  app.add_option("--boot-loader", a.boot_loader,
                 "Use this boot loader instead of detecting it: " + boot::backend_names())
      ->option_text("NAME");
  app.add_option("--initramfs", a.initramfs,
                 "The initramfs system to configure, where several are installed")
      ->option_text("initramfs-tools|dracut|mkinitcpio");
  app.add_flag("--undo", a.undo, "Revert the newest setup change set byte for byte");
  app.add_flag("--dry-run", a.dry_run, "Print the changes as diffs and commands; write nothing");
  app.footer(
      "Every setup is one change set under /var/lib/pcipass/changes: `pcipass setup --undo` (or "
      "`pcipass undo`) reverts it.");
}

namespace {

// Without the kernel command line: one line per part.
int print_parts(Context& ctx, const setup::SetupReport& r, bool dry_run) {
  const auto& applied = r.applied;
  if (!applied.changed) {
    print_line(ctx.out, nothing_line(r));
    return kExitOk;
  }
  if (dry_run) {
    print_steps(ctx, applied.steps);
    return kExitOk;
  }
  auto lines = done_lines(r);
  if (lines.size() == 1) {
    print_line(ctx.out, fmt::format("change set {}: {}", *applied.id, lines.front()));
  } else {
    print_line(ctx.out, fmt::format("change set {}:", *applied.id));
    for (const auto& l : lines) print_line(ctx.out, "  " + l);
  }
  print_line(ctx.out, fmt::format("undo with `pcipass undo {}`", *applied.id));
  return kExitOk;
}

// With it: what the boot loader got, and what the next boot will use.
int print_with_cmdline(Context& ctx, const setup::SetupReport& r, bool dry_run) {
  const auto& applied = r.applied;
  if (dry_run && applied.changed) {
    print_cmdline(ctx, *r.cmdline, false);
    print_steps(ctx, applied.steps);
    return kExitOk;
  }
  if (applied.changed) print_line(ctx.out, fmt::format("change set {}:", *applied.id));
  if (r.vfio) {
    if (r.vfio->added.empty())
      print_line(ctx.out, fmt::format("{} already loads {} at boot", r.vfio->path,
                                      fmt::join(r.vfio->modules, ", ")));
    else
      print_line(ctx.out, fmt::format("{} {} ({} now load at boot)",
                                      r.vfio->created ? "created" : "added to", r.vfio->path,
                                      fmt::join(r.vfio->added, ", ")));
  }
  if (applied.changed)
    for (const auto& l : done_lines(r, false)) print_line(ctx.out, l);
  print_cmdline(ctx, *r.cmdline, applied.changed);
  if (applied.changed)
    print_line(ctx.out,
               fmt::format("undo with `pcipass setup --undo` (or `pcipass undo {}`)", *applied.id));
  return kExitOk;
}

}  // namespace

int run_setup(Context& ctx, const Args& a) {
  if (a.undo) return run_setup_undo(ctx, a);
  setup::Request req;
  req.vfio = a.vfio;
  req.selinux = a.selinux;
  req.cmdline = {a.iommu, a.iommu_pt, a.hide_boot_framebuffer, std::nullopt};
  if (!a.boot_loader.empty()) req.cmdline.boot_loader = a.boot_loader;
  if (!a.initramfs.empty()) {
    req.initramfs = initramfs::parse_system(a.initramfs);
    if (!req.initramfs)
      return fail(ctx, Error::invalid(fmt::format("--initramfs {}: unknown", a.initramfs),
                                      "use initramfs-tools, dracut or mkinitcpio"));
  }
  auto early = early_addresses(ctx, a);
  if (!early) return fail(ctx, early.error());
  req.early_bind = *early;
  std::optional<setup::HostView> host;
  if (!req.early_bind.empty())
    host.emplace(setup::HostView{**ctx.inventory(), ctx.groups(), ctx.impact(), ctx.modules()});
  const auto& env = ctx.env();
  change::Ports ports{env.loader, env.runner, env.sleep_ms,
                      [&env] { return env.process.time_now(); }, env.vf_links};
  auto r = setup::run_setup(ctx.fs(), req, host ? &*host : nullptr, ports,
                            {command_text(a, req), env.process.time_now(), a.dry_run});
  if (!r) return fail(ctx, r.error());
  if (ctx.json) {
    print_json(ctx, a, *r);
    return kExitOk;
  }
  for (const auto& n : r->notes) print_line(ctx.err, "note: " + n);
  return r->cmdline ? print_with_cmdline(ctx, *r, a.dry_run) : print_parts(ctx, *r, a.dry_run);
}

}  // namespace pcipass::cli
