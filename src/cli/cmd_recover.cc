// pcipass recover: finish or roll back a run that was interrupted (kill -9): the runtime journal
// under /run and durable change sets under /var/lib/pcipass (these survive a power loss).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "assign/assign.h"
#include "cli/commands.h"

namespace pcipass::cli {

int run_recover(Context& ctx, const Args&) {
  HostFs& fs = ctx.fs();
  auto r = assign::recover(fs, ctx.env());
  if (!r) return fail(ctx, r.error());
  if (ctx.json) {
    Json devs = Json::array();
    for (const auto& d : r->devices) {
      auto now = assign::read_device_state(fs, d.address);
      devs.push_back({{"address", d.address.str()}, {"driver", or_null(now.driver)}});
    }
    Json attrs = Json::array();
    for (const auto& a : r->attributes) {
      auto now = fs.read_trimmed(a.path);
      attrs.push_back({{"path", a.path}, {"value", or_null(now)}});
    }
    ctx.out << dump_json(Json{{"schema", "pcipass.recover/1"},
                              {"pending", r->pending},
                              {"operation", r->pending ? Json(r->operation) : Json(nullptr)},
                              {"action", !r->pending               ? "none"
                                         : r->phase == "committed" ? "recorded"
                                                                   : "rolled-back"},
                              {"devices", devs},
                              {"attributes", attrs},
                              {"steps", steps_json(r->steps)},
                              {"change_sets", r->change_sets}})
            << '\n';
    return kExitOk;
  }
  for (const auto& id : r->change_sets)
    print_line(ctx.out,
               fmt::format("change set {} was interrupted; its files are back as they were", id));
  if (!r->pending) {
    if (r->change_sets.empty()) ctx.out << "nothing to recover\n";
    return kExitOk;
  }
  if (r->phase == "committed") {
    print_line(ctx.out,
               fmt::format("the interrupted {} had finished its writes; its state is now recorded",
                           r->operation));
    return kExitOk;
  }
  print_line(ctx.out, fmt::format("rolled back an interrupted {}:", r->operation));
  for (const auto& d : r->devices)
    print_line(ctx.out, fmt::format("  {} is on {}", d.address.str(),
                                    assign::read_device_state(fs, d.address).describe()));
  for (const auto& a : r->attributes)
    print_line(ctx.out,
               fmt::format("  {} is {}", a.path, fs.read_trimmed(a.path).value_or("unreadable")));
  return kExitOk;
}

}  // namespace pcipass::cli
