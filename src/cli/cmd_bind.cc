// pcipass bind: hand devices to vfio-pci (or pci-stub), as one transaction.
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <sstream>

#include "assign/assign.h"
#include "cli/commands.h"
#include "persist/persist.h"

namespace pcipass::cli {

Json steps_json(const std::vector<assign::Step>& steps) {
  Json out = Json::array();
  for (const auto& s : steps) {
    Json j{{"kind", change::step_kind_id(s.kind)}, {"path", s.path}, {"data", s.data}};
    if (!s.diff.empty()) j["diff"] = s.diff;
    out.push_back(j);
  }
  return out;
}

void print_steps(Context& ctx, const std::vector<assign::Step>& steps) {
  ctx.out << "dry run: pcipass would make these changes, in order:\n";
  for (const auto& s : steps) {
    print_line(ctx.out, "  " + s.text());
    print_lines(ctx.out, s.diff, "    ");
  }
  ctx.out << "nothing was changed\n";
}

void setup_bind(CLI::App& app, Args& a) {
  add_devices(app, a, true);
  add_driver_option(app, a);
  app.add_flag("--with-group", a.with_group, "Bind every endpoint of the devices' IOMMU groups");
  app.add_flag("--force", a.force,
               "Take devices the host needs (root disk, default route, SSH, console)");
  app.add_flag("--dry-run", a.dry_run, "Print every write, in order, and write nothing");
  app.add_option("--owner", a.owner, "Give /dev/vfio/GROUP to USER[:GROUP] (e.g. libvirt-qemu:kvm)")
      ->option_text("USER[:GROUP]");
  app.add_flag("--persist", a.persist,
               "Also bind them at every boot: record them in /etc/pcipass/assignments.json and "
               "enable pcipass-apply.service (a change set `pcipass undo` reverts)");
}

std::string persist_command(const std::string& verb, const Args& a) {
  std::string out = verb + " --persist";
  if (verb == "bind" && a.driver != "vfio-pci") out += " --driver " + a.driver;
  if (a.with_group) out += " --with-group";
  for (const auto& d : a.devices) out += " " + d;
  return out;
}

Json persist_json(const persist::PersistReport& p, const assign::DurableOutcome& d) {
  Json devices = Json::array();
  for (const auto& x : p.devices) devices.push_back(x.str());
  return {{"store", persist::kAssignmentsPath},
          {"devices", devices},
          {"changed", d.changed},
          {"change_set", or_null(d.id)},
          {"unit_enabled", p.enabled_unit}};
}

void print_persist(Context& ctx, const persist::PersistReport& p, const assign::DurableOutcome& d,
                   const std::string& verb) {
  std::vector<std::string> shown;
  for (const auto& x : p.devices) shown.push_back(x.str());
  if (!d.changed) {
    print_line(ctx.out,
               fmt::format("{} already as asked: nothing to change", persist::kAssignmentsPath));
    return;
  }
  if (!d.id) return;  // dry run: the steps said it
  print_line(ctx.out, fmt::format("change set {}: {} {} {} {}", *d.id, verb, fmt::join(shown, ", "),
                                  verb == "persisted" ? "in" : "from", persist::kAssignmentsPath));
  if (p.enabled_unit)
    print_line(ctx.out, fmt::format("enabled {} ({})", persist::kUnitName, persist::kWantsLink));
  print_line(ctx.out, fmt::format("undo with `pcipass undo {}`", *d.id));
}

int run_bind(Context& ctx, const Args& a) {
  auto targets = scan_targets(ctx, a);
  if (!targets) return fail(ctx, targets.error());
  assign::BindRequest req{targets->devices, a.driver, a.with_group, a.force,
                          a.dry_run,        a.owner,  &targets->inv};
  std::optional<persist::PersistReport> persisted;
  Result<assign::BindReport> r = assign::BindReport{};
  if (a.persist) {
    auto p = persist::bind_persist(ctx.fs(), req, ctx.env(), persist_command("bind", a), *r);
    if (!p) return fail(ctx, p.error());
    persisted = std::move(*p);
  } else {
    r = assign::bind(ctx.fs(), req, ctx.env());
  }
  if (!r) return fail(ctx, r.error());
  for (const auto& w : r->warnings) print_warning(ctx.err, ctx.term, w);
  if (persisted)
    for (const auto& w : persisted->warnings) print_warning(ctx.err, ctx.term, w);
  if (ctx.json) {
    Json bound = Json::array(), unchanged = Json::array(), groups = Json::array();
    for (const auto& g : r->plan.groups)
      for (const auto& d : g.devices)
        if (d.action == assign::Action::kBind)
          bound.push_back({{"address", d.address.str()}, {"from", or_null(d.driver)}});
    for (const auto& u : r->unchanged) unchanged.push_back(u.str());
    for (int g : r->groups)
      groups.push_back({{"id", g},
                        {"node", a.driver == "vfio-pci" ? Json("/dev/vfio/" + std::to_string(g))
                                                        : Json(nullptr)}});
    Json doc{{"schema", "pcipass.bind/1"},
             {"dry_run", r->dry_run},
             {"driver", a.driver},
             {"bound", bound},
             {"unchanged", unchanged},
             {"groups", groups},
             {"steps", steps_json(r->steps)},
             {"warnings", r->warnings}};
    if (persisted) {
      doc["persist"] = persist_json(*persisted, r->durable);
      for (const auto& w : persisted->warnings) doc["warnings"].push_back(w);
    }
    ctx.out << dump_json(doc) << '\n';
    return kExitOk;
  }
  if (r->dry_run) {
    if (r->steps.empty()) {
      print_line(ctx.out, "dry run: nothing to write; every device is already on " + a.driver);
      return kExitOk;
    }
    print_steps(ctx, r->steps);
    return kExitOk;
  }
  for (const auto& g : r->plan.groups)
    for (const auto& d : g.devices)
      if (d.action == assign::Action::kBind)
        print_line(ctx.out, fmt::format("bound {} to {} (was {})", d.address.str(), a.driver,
                                        d.driver.value_or("no driver")));
  for (const auto& u : r->unchanged)
    print_line(ctx.out, fmt::format("{} is already on {}", u.str(), a.driver));
  for (int g : r->groups) {
    if (a.driver != "vfio-pci") continue;
    std::string line = fmt::format("group {} is ready: /dev/vfio/{}", g, g);
    if (!a.owner.empty()) line += " (owner " + a.owner + ")";
    print_line(ctx.out, line);
  }
  if (persisted) print_persist(ctx, *persisted, r->durable, "persisted");
  return kExitOk;
}

}  // namespace pcipass::cli
