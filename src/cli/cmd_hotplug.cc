// pcipass hotplug / unplug: a host device into (and out of) a running QEMU over QMP.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "vm/hotplug.h"

namespace pcipass::cli {
namespace {

Json bind_json(const assign::BindReport& b) {
  Json bound = Json::array();
  for (const auto& g : b.plan.groups)
    for (const auto& d : g.devices)
      if (d.action == assign::Action::kBind)
        bound.push_back({{"address", d.address.str()}, {"from", or_null(d.driver)}});
  return {{"bound", bound}, {"steps", steps_json(b.steps)}};
}

void print_places_left(Context& ctx, const vm::HotplugReport& r) {
  print_line(ctx.out, r.machine == vm::Machine::kQ35
                          ? fmt::format("{} free root port{} left in the guest", r.remaining,
                                        r.remaining == 1 ? "" : "s")
                          : fmt::format("{} free slot{} left on the guest's root bus", r.remaining,
                                        r.remaining == 1 ? "" : "s"));
}

void print_hotplug(Context& ctx, const vm::HotplugReport& r, const std::string& socket) {
  if (r.dry_run) {
    if (!r.bind.steps.empty()) print_steps(ctx, r.bind.steps);
    print_line(ctx.out, fmt::format("dry run: pcipass read the {} guest's PCI tree and would send "
                                    "to {}:",
                                    vm::machine_name(r.machine), socket));
    print_line(ctx.out,
               "  " + dump_json(Json{{"execute", "device_add"}, {"arguments", r.device_add}}, -1));
    print_line(ctx.out, "nothing was sent that changes the guest");
    return;
  }
  for (const auto& a : r.bind.bound)
    print_line(ctx.out, fmt::format("bound {} to vfio-pci", a.str()));
  print_line(ctx.out, fmt::format("hot-plugged {} into the {} guest as {} on bus {}",
                                  r.device_add["host"].get<std::string>(),
                                  vm::machine_name(r.machine), r.id, r.bus));
  print_places_left(ctx, r);
}

}  // namespace

void setup_hotplug(CLI::App& app, Args& a) {
  app.add_option("--qmp", a.qmp, "The running QEMU's QMP unix socket (-qmp unix:SOCKET,server=on)")
      ->required()
      ->option_text("SOCKET");
  add_devices(app, a, true);
  app.add_option("--id", a.id, "Device id in the guest (default pcipass-0000-01-00-0)");
  app.add_flag("--with-group", a.with_group,
               "Bind every endpoint of the device's IOMMU group (only DEVICE is hot-plugged)");
  app.add_flag("--force", a.force, "As bind --force: take a device the host needs");
  app.add_flag("--dry-run", a.dry_run,
               "Read the guest and print the bind plan and device_add; change nothing");
}

int run_hotplug(Context& ctx, const Args& a) {
  if (a.devices.size() != 1)
    return fail(ctx, Error::invalid("hotplug takes one DEVICE",
                                    "run pcipass hotplug once per device, each into its own "
                                    "root port"));
  auto targets = scan_targets(ctx, a);
  if (!targets) return fail(ctx, targets.error());
  vm::HotplugRequest req{
      a.qmp, targets->devices.front(), a.id, a.dry_run, &targets->inv, a.with_group, a.force};
  auto r = vm::hotplug(ctx.fs(), ctx.qmp(), ctx.process(), ctx.env(), req);
  if (!r) return fail(ctx, r.error());
  if (ctx.json) {
    Json doc{{"schema", "pcipass.hotplug/1"},
             {"dry_run", r->dry_run},
             {"socket", a.qmp},
             {"device", req.device.str()},
             {"id", r->id},
             {"machine", vm::machine_name(r->machine)},
             {"bus", r->bus},
             {"device_add", r->device_add},
             {"sent", !r->dry_run},
             {"remaining", r->remaining},
             {"bind", bind_json(r->bind)},
             {"warnings", r->warnings}};
    ctx.out << dump_json(doc) << '\n';
    return kExitOk;
  }
  for (const auto& w : r->warnings) print_warning(ctx.err, ctx.term, w);
  print_hotplug(ctx, *r, a.qmp);
  return kExitOk;
}

void setup_unplug(CLI::App& app, Args& a) {
  app.add_option("--qmp", a.qmp, "The running QEMU's QMP unix socket")
      ->required()
      ->option_text("SOCKET");
  app.add_option("ID", a.id, "The device's id in the guest (as hotplug printed it)")->required();
  app.add_option("--timeout", a.timeout_s, "Seconds to wait for the guest to release it (30)")
      ->check(CLI::Range(0, 86400))
      ->option_text("S");
  app.add_flag(
      "--dry-run", a.dry_run,
      "Look the id up in the guest and print the device_del; send nothing that changes it");
}

int run_unplug(Context& ctx, const Args& a) {
  auto r = vm::unplug(ctx.qmp(), ctx.process(), {a.qmp, a.id, a.timeout_s, a.dry_run});
  if (!r) return fail(ctx, r.error());
  Json device_del{{"execute", "device_del"}, {"arguments", {{"id", r->id}}}};
  if (ctx.json) {
    ctx.out << dump_json({{"schema", "pcipass.unplug/1"},
                          {"dry_run", r->dry_run},
                          {"socket", a.qmp},
                          {"id", r->id},
                          {"type", r->dry_run ? Json(r->type) : Json(nullptr)},
                          {"device_del", device_del},
                          {"deleted", !r->dry_run},
                          {"path", r->path},
                          {"waited_s", r->waited_s}})
            << '\n';
    return kExitOk;
  }
  if (r->dry_run) {
    print_line(ctx.out, fmt::format("dry run: the guest behind {} has {} ({}); pcipass would send:",
                                    a.qmp, r->id, r->type));
    print_line(ctx.out, "  " + dump_json(device_del, -1));
    print_line(ctx.out, fmt::format("and wait up to {} s for DEVICE_DELETED; nothing was sent that "
                                    "changes the guest",
                                    a.timeout_s));
    return kExitOk;
  }
  print_line(ctx.out, fmt::format("unplugged {}: the guest released it ({})", r->id, r->path));
  return kExitOk;
}

}  // namespace pcipass::cli
