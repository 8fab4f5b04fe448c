// pcipass apply [--boot]: bind what /etc/pcipass/assignments.json says, refusing moved cards.
// pcipass apply FILE: bring the host to a desired-state file's state (cmd_apply_file.cc).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "persist/persist.h"

namespace pcipass::cli {

void setup_apply(CLI::App& app, Args& a) {
  app.add_option_function<std::string>(
         "FILE", [&a](const std::string& v) { a.desired_file = v; },
         "A desired-state file (YAML or JSON, docs/apply.md) to bring the host to; without it, "
         "the persisted devices are bound")
      ->option_text("FILE");
  app.add_flag("--boot", a.boot,
               "Run as pcipass-apply.service does at boot (a missing store is not an error)");
  app.add_flag("--dry-run", a.dry_run, "Print every write, in order, and write nothing");
  app.footer(
      "FILE: one plan (setup's boot parts, devices bound and persisted, VFs, mdevs), rolled back "
      "as a whole on failure; what is already so is left alone. Without FILE: each device is "
      "bound only if the device at its address still has the vendor, device and subsystem IDs "
      "recorded by `bind --persist`; each IOMMU group is its own transaction.");
}

Json ids_json(const std::optional<persist::Ids>& ids) {
  if (!ids) return nullptr;
  return {{"vendor", fmt::format("{:04x}", ids->vendor)},
          {"device", fmt::format("{:04x}", ids->device)},
          {"subsystem_vendor", fmt::format("{:04x}", ids->subsystem_vendor)},
          {"subsystem_device", fmt::format("{:04x}", ids->subsystem_device)}};
}

namespace {

Json sriov_json(const persist::SriovApplied& s) {
  const auto& e = s.desired;
  Json vfs = Json::array(), bound = Json::array();
  for (const auto& v : e.vfs) vfs.push_back(v.str());
  for (const auto& v : s.bound) bound.push_back(v.str());
  Json actual = nullptr;
  if (s.actual)
    actual = {{"vendor", fmt::format("{:04x}", s.actual->first)},
              {"device", fmt::format("{:04x}", s.actual->second)}};
  return {
      {"pf", e.pf.str()},
      {"desired_ids",
       {{"vendor", fmt::format("{:04x}", e.vendor)}, {"device", fmt::format("{:04x}", e.device)}}},
      {"actual_ids", actual},
      {"num_vfs", e.num_vfs},
      {"drivers_autoprobe", e.drivers_autoprobe},
      {"driver", or_null(e.driver)},
      {"vfs", vfs},
      {"pf_driver_before", or_null(s.pf_driver)},
      {"module_loaded", or_null(s.module)},
      {"num_vfs_before", s.num_vfs_before},
      {"bound", bound},
      {"result", persist::outcome_id(s.outcome)},
      {"message", or_null(s.message)},
      {"fix", or_null(s.fix)}};
}

void print_fix(Context& ctx, const std::string& fix) {
  if (fix.empty()) return;
  ctx.out << "      " << ctx.term.paint(Style::kBold, "fix:") << ' ' << printable(fix) << '\n';
}

void print_sriov(Context& ctx, const persist::SriovApplied& s, bool dry) {
  const auto& e = s.desired;
  std::string pf = e.pf.str();
  switch (s.outcome) {
    case persist::Outcome::kConfigured: {
      std::string line =
          fmt::format("{} {}: {} VFs (was {})", dry ? "would configure" : "configured", pf,
                      e.num_vfs, s.num_vfs_before);
      if (!s.bound.empty()) line += fmt::format(", {} bound to {}", s.bound.size(), e.driver);
      print_line(ctx.out, line);
      break;
    }
    case persist::Outcome::kAlreadyConfigured:
      print_line(ctx.out, fmt::format("{} already has its {} VFs as persisted", pf, e.num_vfs));
      break;
    default:
      ctx.out << ctx.term.paint(Style::kBad,
                                printable(fmt::format("{} not configured: {}", pf, s.message)))
              << '\n';
      print_fix(ctx, s.fix);
  }
}

}  // namespace

int run_apply(Context& ctx, const Args& a) {
  if (a.desired_file) {
    if (a.boot)
      return fail(ctx, Error::invalid("--boot replays the persisted devices; it takes no FILE",
                                      "drop --boot, or the FILE"));
    return run_apply_file(ctx, a);
  }
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
                         {"driver_before", or_null(c.driver)},
                         {"result", persist::outcome_id(d.outcome)},
                         {"message", or_null(d.message)},
                         {"fix", or_null(d.fix)}});
    }
    Json sriov = Json::array();
    for (const auto& s : r->sriov) sriov.push_back(sriov_json(s));
    ctx.out << dump_json(Json{{"schema", "pcipass.apply/1"},
                              {"dry_run", a.dry_run},
                              {"boot", a.boot},
                              {"store", persist::kAssignmentsPath},
                              {"store_present", r->store_present},
                              {"sriov", sriov},
                              {"devices", devices},
                              {"steps", steps_json(r->steps)},
                              {"warnings", r->warnings},
                              {"ok", r->ok()}})
            << '\n';
    return status;
  }
  if (r->devices.empty() && r->sriov.empty()) {
    print_line(ctx.out, fmt::format("nothing persisted ({} {})", persist::kAssignmentsPath,
                                    r->store_present ? "lists no device" : "does not exist"));
    return status;
  }
  if (a.dry_run && !r->steps.empty()) print_steps(ctx, r->steps);
  for (const auto& s : r->sriov) print_sriov(ctx, s, a.dry_run);
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
        print_fix(ctx, d.fix);
    }
  }
  return status;
}

}  // namespace pcipass::cli
