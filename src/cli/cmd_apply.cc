// pcipass apply [--boot]: bind what /etc/pcipass/assignments.json says, refusing moved cards.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "persist/persist.h"

namespace pcipass::cli {

void setup_apply(CLI::App& app, Args& a) {
  app.add_flag("--boot", a.boot,
               "Run as pcipass-apply.service does at boot (a missing store is not an error)");
  app.add_flag("--dry-run", a.dry_run, "Print every write, in order, and write nothing");
  app.footer(
      "Each device is bound only if the device at its address still has the vendor, device and "
      "subsystem IDs recorded by `bind --persist`; each IOMMU group is its own transaction.");
}

Json ids_json(const std::optional<persist::Ids>& ids) {
  if (!ids) return nullptr;
  return {{"vendor", fmt::format("{:04x}", ids->vendor)},
          {"device", fmt::format("{:04x}", ids->device)},
          {"subsystem_vendor", fmt::format("{:04x}", ids->subsystem_vendor)},
          {"subsystem_device", fmt::format("{:04x}", ids->subsystem_device)}};
}

int run_apply(Context& ctx, const Args& a) {
  auto r = persist::apply(ctx.fs(), ctx.env(), a.dry_run);
  if (!r) return fail(ctx, r.error());
  for (const auto& w : r->warnings) print_warning(ctx.err, ctx.term, w);
  int status = r->ok() ? kExitOk : kExitFailure;
  if (ctx.json) {
    Json devices = Json::array();
    for (const auto& d : r->devices) {
      const auto& c = d.before;
      devices.push_back({{"address", c.desired.address.str()},
                         {"driver", c.desired.driver},
                         {"desired_ids", ids_json(c.desired.ids)},
                         {"actual_ids", ids_json(c.actual)},
                         {"driver_before", c.driver ? Json(*c.driver) : Json(nullptr)},
                         {"result", persist::outcome_id(d.outcome)},
                         {"message", d.message.empty() ? Json(nullptr) : Json(d.message)},
                         {"fix", d.fix.empty() ? Json(nullptr) : Json(d.fix)}});
    }
    ctx.out << dump_json(Json{{"schema", "pcipass.apply/1"},
                              {"dry_run", a.dry_run},
                              {"boot", a.boot},
                              {"store", persist::kAssignmentsPath},
                              {"store_present", r->store_present},
                              {"devices", devices},
                              {"steps", steps_json(r->steps)},
                              {"warnings", r->warnings},
                              {"ok", r->ok()}})
            << '\n';
    return status;
  }
  if (r->devices.empty()) {
    print_line(ctx.out, fmt::format("nothing persisted ({} {})", persist::kAssignmentsPath,
                                    r->store_present ? "lists no device" : "does not exist"));
    return status;
  }
  if (a.dry_run && !r->steps.empty()) print_steps(ctx, r->steps);
  for (const auto& d : r->devices) {
    const auto& c = d.before;
    std::string addr = c.desired.address.str();
    switch (d.outcome) {
      case persist::Outcome::kBound:
        print_line(ctx.out, fmt::format("{} {} to {} (was {})", a.dry_run ? "would bind" : "bound",
                                        addr, c.desired.driver, c.driver.value_or("no driver")));
        break;
      case persist::Outcome::kAlreadyBound:
        print_line(ctx.out, fmt::format("{} is already bound to {}", addr, c.desired.driver));
        break;
      default:
        ctx.out << ctx.term.paint(Style::kBad,
                                  printable(fmt::format("{} not bound: {}", addr, d.message)))
                << '\n';
        if (!d.fix.empty())
          ctx.out << "      " << ctx.term.paint(Style::kBold, "fix:") << ' ' << printable(d.fix)
                  << '\n';
    }
  }
  return status;
}

}  // namespace pcipass::cli
