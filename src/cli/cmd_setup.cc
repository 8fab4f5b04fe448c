// pcipass setup --vfio: load the VFIO modules at every boot, as a change set undo can revert.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "setup/vfio.h"

namespace pcipass::cli {

void setup_setup(CLI::App& app, Args& a) {
  app.add_flag(
      "--vfio", a.vfio,
      "Load vfio, vfio_iommu_type1 and vfio_pci at boot (/etc/modules-load.d/pcipass.conf)");
  app.add_flag("--dry-run", a.dry_run, "Print the change as a diff and write nothing");
  app.footer(
      "Every setup is a change set under /var/lib/pcipass/changes: `pcipass undo` reverts it.\n"
      "The boot loader (IOMMU kernel options) and initramfs parts of setup come later (issue 9).");
}

int run_setup(Context& ctx, const Args& a) {
  if (!a.vfio)
    return fail(ctx, Error::invalid("nothing to set up",
                                    "add --vfio (the kernel command line and initramfs are not "
                                    "set up by pcipass yet)"));
  const auto& env = ctx.env();
  change::Ports ports{env.loader, env.runner, env.sleep_ms,
                      [&env] { return env.process.time_now(); }};
  auto r = setup::setup_vfio(ctx.fs(), ports, {"setup --vfio", env.process.time_now(), a.dry_run});
  if (!r) return fail(ctx, r.error());
  const auto& applied = r->applied;
  if (ctx.json) {
    ctx.out << dump_json(Json{{"schema", "pcipass.setup/1"},
                              {"dry_run", a.dry_run},
                              {"changed", applied.changed},
                              {"change_set", applied.id ? Json(*applied.id) : Json(nullptr)},
                              {"path", r->path},
                              {"modules", r->modules},
                              {"added", r->added},
                              {"created", applied.changed && r->created},
                              {"steps", steps_json(applied.steps)}})
            << '\n';
    return kExitOk;
  }
  if (!applied.changed) {
    print_line(ctx.out, fmt::format("nothing to change: {} already loads {} at boot", r->path,
                                    fmt::join(r->modules, ", ")));
    return kExitOk;
  }
  if (a.dry_run) {
    print_steps(ctx, applied.steps);
    return kExitOk;
  }
  print_line(ctx.out,
             fmt::format("change set {}: {} {} ({} now load at boot)", *applied.id,
                         r->created ? "created" : "added to", r->path, fmt::join(r->added, ", ")));
  print_line(ctx.out, fmt::format("undo with `pcipass undo {}`", *applied.id));
  return kExitOk;
}

}  // namespace pcipass::cli
