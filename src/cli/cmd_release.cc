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
}

int run_release(Context& ctx, const Args& a) {
  auto targets = scan_targets(ctx, a);
  if (!targets) return fail(ctx, targets.error());
  assign::ReleaseRequest req{targets->devices, a.with_group, a.dry_run, &targets->inv};
  auto r = assign::release(ctx.fs(), req, ctx.env());
  if (!r) return fail(ctx, r.error());
  if (ctx.json) {
    Json released = Json::array(), unchanged = Json::array();
    for (const auto& d : r->released)
      released.push_back({{"address", d.address.str()},
                          {"from", d.before.driver ? Json(*d.before.driver) : Json(nullptr)},
                          {"to", d.after.any_driver ? Json("(host driver)")
                                 : d.after.driver   ? Json(*d.after.driver)
                                                    : Json(nullptr)}});
    for (const auto& u : r->unchanged) unchanged.push_back(u.str());
    ctx.out << dump_json(Json{{"schema", "pcipass.release/1"},
                              {"dry_run", r->dry_run},
                              {"released", released},
                              {"unchanged", unchanged},
                              {"steps", steps_json(r->steps)}})
            << '\n';
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
  return kExitOk;
}

}  // namespace pcipass::cli
