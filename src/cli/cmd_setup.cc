// pcipass setup: the host configured for passthrough at boot (the VFIO modules, the kernel
// command line through the boot loader) as ONE change set that undo reverts; setup --undo.
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "change/store.h"
#include "cli/commands.h"
#include "setup/kernel_cmdline.h"
#include "setup/vfio.h"

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

std::string command_text(const Args& a) {
  std::string out = "setup";
  if (a.iommu) out += " --iommu";
  if (a.iommu_pt) out += " --iommu-pt";
  if (a.hide_boot_framebuffer) out += " --hide-boot-framebuffer";
  if (a.vfio) out += " --vfio";
  if (!a.boot_loader.empty()) out += " --boot-loader " + a.boot_loader;
  return out;
}

Json cmdline_json(const setup::CmdlineReport& r) {
  return Json{{"boot_loader", r.loader->name},
              {"configured", r.configured},
              {"iommu_vendor", vendor_name(r.vendor)},
              {"add", r.add},
              {"remove", r.remove},
              {"already", r.already},
              {"regenerate_only", r.regenerate_only},
              {"manual_command", r.manual ? Json(*r.manual) : Json(nullptr)},
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

}  // namespace

void setup_setup(CLI::App& app, Args& a) {
  app.add_flag(
      "--vfio", a.vfio,
      "Load vfio, vfio_iommu_type1 and vfio_pci at boot (/etc/modules-load.d/pcipass.conf)");
  app.add_flag("--iommu", a.iommu,
               "Turn the IOMMU on in the kernel command line (intel_iommu=on on Intel; on AMD, "
               "where it is on by default, remove amd_iommu=off)");
  app.add_flag("--iommu-pt", a.iommu_pt, "Add iommu=pt (identity mapping for host devices)");
  app.add_flag("--hide-boot-framebuffer", a.hide_boot_framebuffer,
               "Keep the firmware framebuffer off the boot GPU (initcall_blacklist=sysfb_init, or "
               "video=efifb:off before kernel 5.15)");
  app.add_option("--boot-loader", a.boot_loader,
                 "Use this boot loader instead of detecting it: " + boot::backend_names())
      ->option_text("NAME");
  app.add_flag("--undo", a.undo, "Revert the newest setup change set byte for byte");
  app.add_flag("--dry-run", a.dry_run, "Print the changes as diffs and commands, write nothing");
  app.footer(
      "Every setup is one change set under /var/lib/pcipass/changes: `pcipass setup --undo` (or "
      "`pcipass undo`) reverts it.");
}

int run_setup(Context& ctx, const Args& a) {
  if (a.undo) return run_setup_undo(ctx, a);
  setup::CmdlineOptions opts{a.iommu, a.iommu_pt, a.hide_boot_framebuffer, std::nullopt};
  if (!a.boot_loader.empty()) opts.boot_loader = a.boot_loader;
  if (!a.vfio && !opts.any())
    return fail(ctx, Error::invalid("nothing to set up",
                                    "add --iommu, --iommu-pt, --hide-boot-framebuffer or --vfio"));
  const auto& env = ctx.env();
  change::Ports ports{env.loader, env.runner, env.sleep_ms,
                      [&env] { return env.process.time_now(); }};
  std::vector<setup::Part> parts;
  std::optional<setup::VfioReport> vfio;
  std::optional<setup::CmdlineReport> cmd;
  if (a.vfio) {
    auto r = setup::plan_vfio(ctx.fs());
    if (!r) return fail(ctx, r.error());
    vfio = std::move(*r);
    parts.push_back(std::move(vfio->part));
  }
  if (opts.any()) {
    auto r = setup::plan_kernel_cmdline(ctx.fs(), opts);
    if (!r) return fail(ctx, r.error());
    cmd = std::move(*r);
    parts.push_back(std::move(cmd->part));
  }
  auto applied = setup::apply_parts(ctx.fs(), std::move(parts), ports,
                                    {command_text(a), env.process.time_now(), a.dry_run});
  if (!applied) return fail(ctx, applied.error());
  if (ctx.json) {
    Json j{{"schema", "pcipass.setup/1"},
           {"dry_run", a.dry_run},
           {"changed", applied->changed},
           {"change_set", applied->id ? Json(*applied->id) : Json(nullptr)},
           {"path", vfio ? Json(vfio->path) : Json(nullptr)},
           {"modules", vfio ? Json(vfio->modules) : Json::array()},
           {"added", vfio ? Json(vfio->added) : Json::array()},
           {"created", vfio && applied->changed && vfio->created},
           {"kernel_cmdline", cmd ? cmdline_json(*cmd) : Json(nullptr)},
           {"steps", steps_json(applied->steps)}};
    ctx.out << dump_json(j) << '\n';
    return kExitOk;
  }
  if (a.dry_run && applied->changed) {
    if (cmd) print_cmdline(ctx, *cmd, false);
    print_steps(ctx, applied->steps);
    return kExitOk;
  }
  if (!cmd) {  // --vfio alone
    if (!applied->changed) {
      print_line(ctx.out, fmt::format("nothing to change: {} already loads {} at boot", vfio->path,
                                      fmt::join(vfio->modules, ", ")));
      return kExitOk;
    }
    print_line(ctx.out, fmt::format("change set {}: {} {} ({} now load at boot)", *applied->id,
                                    vfio->created ? "created" : "added to", vfio->path,
                                    fmt::join(vfio->added, ", ")));
    print_line(ctx.out, fmt::format("undo with `pcipass undo {}`", *applied->id));
    return kExitOk;
  }
  if (applied->changed) print_line(ctx.out, fmt::format("change set {}:", *applied->id));
  if (vfio) {
    if (vfio->added.empty())
      print_line(ctx.out, fmt::format("{} already loads {} at boot", vfio->path,
                                      fmt::join(vfio->modules, ", ")));
    else
      print_line(ctx.out,
                 fmt::format("{} {} ({} now load at boot)", vfio->created ? "created" : "added to",
                             vfio->path, fmt::join(vfio->added, ", ")));
  }
  print_cmdline(ctx, *cmd, applied->changed);
  if (applied->changed)
    print_line(ctx.out, fmt::format("undo with `pcipass setup --undo` (or `pcipass undo {}`)",
                                    *applied->id));
  return kExitOk;
}

}  // namespace pcipass::cli
