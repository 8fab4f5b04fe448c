// pcipass release (unbind, reattach): give devices back to their host drivers.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "assign/assign.h"
#include "cli/commands.h"

namespace pcipass::cli {

void setup_release(CLI::App& app, Args& a) {
  add_devices(app, a, true);
  app.add_flag("--with-group", a.with_group,
               "Also release the other devices of their groups that pcipass bound");
  app.add_flag("--dry-run", a.dry_run, "Print every write, in order, and write nothing");
  app.add_flag("--persist", a.persist,
               "Also forget them at boot: remove them from /etc/pcipass/assignments.json (a "
               "change set `pcipass undo` reverts)");
}

// release --persist of addresses with no device behind them (a card taken out): they are only
// forgotten. The rest are released as usual.
static std::vector<PciAddress> gone_devices(Context& ctx, Args& rest) {
  std::vector<PciAddress> gone;
  std::vector<std::string> kept;
  for (const auto& arg : rest.devices) {
    auto sel = parse_selector(arg);
    if (sel && std::holds_alternative<PciAddress>(*sel) &&
        !ctx.fs().exists(change::device_dir(std::get<PciAddress>(*sel))))
      gone.push_back(std::get<PciAddress>(*sel));
    else
      kept.push_back(arg);
  }
  rest.devices = kept;
  return gone;
}

int run_release(Context& ctx, const Args& args) {
  Args a = args;
  std::vector<PciAddress> gone;
  if (a.persist) gone = gone_devices(ctx, a);
  Result<Targets> targets = Targets{};
  if (!a.devices.empty()) targets = scan_targets(ctx, a);
  if (!targets) return fail(ctx, targets.error());
  assign::ReleaseRequest req{targets->devices, a.with_group, a.dry_run, &targets->inv};
  std::optional<persist::PersistReport> persisted;
  Result<assign::ReleaseReport> r = assign::ReleaseReport{};
  if (a.persist) {
    auto p = persist::release_persist(ctx.fs(), req, ctx.env(), persist_command("release", args),
                                      *r, gone);
    if (!p) return fail(ctx, p.error());
    persisted = std::move(*p);
  } else {
    r = assign::release(ctx.fs(), req, ctx.env());
  }
  if (!r) return fail(ctx, r.error());
  if (ctx.json) {
    Json released = Json::array(), unchanged = Json::array();
    for (const auto& d : r->released)
      released.push_back({{"address", d.address.str()},
                          {"from", or_null(d.before.driver)},
                          {"to", d.after.any_driver ? Json("(host driver)")
                                 : d.after.driver   ? Json(*d.after.driver)
                                                    : Json(nullptr)}});
    for (const auto& u : r->unchanged) unchanged.push_back(u.str());
    Json doc{{"schema", "pcipass.release/1"},
             {"dry_run", r->dry_run},
             {"released", released},
             {"unchanged", unchanged},
             {"steps", steps_json(r->steps)}};
    if (persisted) doc["persist"] = persist_json(*persisted, r->durable);
    ctx.out << dump_json(doc) << '\n';
    return kExitOk;
  }
  if (r->dry_run) {
    if (r->steps.empty())
      ctx.out << "dry run: nothing to write\n";
    else
      print_steps(ctx, r->steps);
    return kExitOk;
  }
  for (const auto& d : r->released)
    print_line(ctx.out, fmt::format("released {}: {} -> {}", d.address.str(),
                                    d.before.driver.value_or("no driver"),
                                    d.after.driver.value_or("no driver")));
  for (const auto& u : r->unchanged)
    print_line(ctx.out, fmt::format("{} is already back on the host", u.str()));
  if (persisted) print_persist(ctx, *persisted, r->durable, "removed");
  return kExitOk;
}

}  // namespace pcipass::cli
