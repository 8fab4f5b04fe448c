// pcipass status: what pcipass has bound, from which drivers, and whether it still holds.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "assign/assign.h"
#include "cli/commands.h"
#include "persist/persist.h"
#include "setup/boot_check.h"

namespace pcipass::cli {

Json ids_json(const std::optional<persist::Ids>& ids);  // cmd_apply.cc

static Json persisted_json(const persist::DesiredState& d) {
  Json devices = Json::array();
  for (const auto& c : d.devices)
    devices.push_back({{"address", c.desired.address.str()},
                       {"driver", c.desired.driver},
                       {"desired_ids", ids_json(c.desired.ids)},
                       {"actual_ids", ids_json(c.actual)},
                       {"current_driver", or_null(c.driver)},
                       {"state", persist::match_id(c.match)},
                       {"message", c.message},
                       {"fix", or_null(c.fix)}});
  return {{"store", persist::kAssignmentsPath},
          {"present", d.store_present},
          {"devices", devices},
          {"all_match", d.all_match()}};
}

static Json early_json(const std::vector<setup::EarlyState>& early) {
  Json devices = Json::array();
  for (const auto& e : early)
    devices.push_back(
        {{"address", e.rule.address.str()},
         {"driver", "vfio-pci"},
         {"desired_ids", e.rule.vendor && e.rule.device
                             ? Json(fmt::format("{:04x}:{:04x}", *e.rule.vendor, *e.rule.device))
                             : Json(nullptr)},
         {"current_driver", or_null(e.driver)},
         {"state", persist::match_id(e.match)},
         {"message", e.message},
         {"fix", or_null(e.fix)}});
  return {{"rule", setup::kUdevRulePath}, {"devices", devices}};
}

static void print_early(Context& ctx, const std::vector<setup::EarlyState>& early) {
  if (early.empty()) return;
  ctx.out << fmt::format("set for early binding in {} (desired against actual):\n",
                         setup::kUdevRulePath);
  Table t({"ADDRESS", "IDS", "DESIRED", "ACTUAL", "STATE"});
  for (const auto& e : early) {
    const auto& r = e.rule;
    t.add({{r.address.str()},
           {r.vendor && r.device ? fmt::format("{:04x}:{:04x}", *r.vendor, *r.device) : "-"},
           {"vfio-pci"},
           {e.match == persist::Match::kAbsent ? "-" : e.driver.value_or("no driver")},
           {persist::match_id(e.match),
            e.match == persist::Match::kMatches ? Style::kGood : Style::kBad}});
  }
  t.print(ctx.out, ctx.term);
  for (const auto& e : early)
    if (e.match != persist::Match::kMatches) {
      print_line(ctx.out, "  " + e.message);
      print_line(ctx.out, "    fix: " + e.fix);
    }
}

static void print_persisted(Context& ctx, const persist::DesiredState& d) {
  if (d.devices.empty()) return;
  ctx.out << fmt::format("persisted in {} (desired against actual):\n", persist::kAssignmentsPath);
  Table t({"ADDRESS", "IDS", "DESIRED", "ACTUAL", "STATE"});
  for (const auto& c : d.devices) {
    bool good = c.match == persist::Match::kMatches;
    std::string actual = c.match == persist::Match::kAbsent ? "-"
                         : c.match == persist::Match::kIdsDiffer
                             ? fmt::format("{:04x}:{:04x}", c.actual->vendor, c.actual->device)
                             : c.driver.value_or("no driver");
    t.add({{c.desired.address.str()},
           {fmt::format("{:04x}:{:04x}", c.desired.ids.vendor, c.desired.ids.device)},
           {c.desired.driver},
           {actual},
           {persist::match_id(c.match), good ? Style::kGood : Style::kBad}});
  }
  t.print(ctx.out, ctx.term);
  for (const auto& c : d.devices)
    if (c.match != persist::Match::kMatches) {
      print_line(ctx.out, "  " + c.message);
      print_line(ctx.out, "    fix: " + c.fix);
    }
}

static Json bindings_json(const std::vector<assign::StatusEntry>& entries) {
  Json list = Json::array();
  for (const auto& e : entries) {
    Json users = Json::array();
    for (const auto& u : e.users)
      users.push_back({{"pid", u.pid}, {"comm", u.comm}, {"path", u.path}});
    const auto& b = e.binding;
    list.push_back(
        {{"address", b.address.str()},
         {"iommu_group", or_null(b.group)},
         {"driver", b.driver},
         {"original_driver", or_null(b.original.driver)},
         {"original_driver_override", or_null(b.original.override)},
         {"owner", or_null(b.owner)},
         {"present", e.present},
         {"current_driver", or_null(e.driver)},
         {"node", b.group && b.driver == "vfio-pci" ? Json("/dev/vfio/" + std::to_string(*b.group))
                                                    : Json(nullptr)},
         {"node_present", e.node},
         {"holds", e.holds},
         {"problem", or_null(e.problem)},
         {"users", users}});
  }
  return list;
}

static Json pending_json(const std::optional<assign::Journal>& pending) {
  if (!pending) return nullptr;
  Json devs = Json::array();
  Json attrs = Json::array();
  for (const auto& d : pending->devices) devs.push_back(d.address.str());
  for (const auto& a : pending->attributes) attrs.push_back(a.path);
  return {{"operation", pending->operation},
          {"phase", pending->phase},
          {"pid", pending->pid},
          {"devices", devs},
          {"attributes", attrs}};
}

// What pcipass bound since boot; `nothing` says so when the persisted and early lists are empty
// too, `since boot` when only this boot's list is.
static void print_bindings(Context& ctx, const std::vector<assign::StatusEntry>& entries,
                           bool nothing) {
  if (entries.empty()) {
    ctx.out << (nothing ? "pcipass has bound nothing\n" : "pcipass has bound nothing since boot\n");
    return;
  }
  Table t({"ADDRESS", "GROUP", "DRIVER", "ORIGINAL", "STATE"});
  for (const auto& e : entries) {
    const auto& b = e.binding;
    std::string state = e.holds ? "holds" : e.problem;
    if (e.holds && !e.users.empty())
      state =
          fmt::format("holds, in use by {} (pid {})", e.users.front().comm, e.users.front().pid);
    t.add({{b.address.str()},
           {b.group ? std::to_string(*b.group) : "-"},
           {b.driver},
           {b.original.driver.value_or("no driver") +
            (b.original.override ? " (override " + *b.original.override + ")" : "")},
           {state, e.holds ? Style::kGood : Style::kBad}});
  }
  t.print(ctx.out, ctx.term);
}

int run_status(Context& ctx, const Args&) {
  auto r = assign::status(ctx.fs());
  if (!r) return fail(ctx, r.error());
  auto desired = persist::desired_state(ctx.fs());
  if (!desired) return fail(ctx, desired.error());
  auto early = setup::early_bind_states(ctx.fs());
  bool all_hold = desired->all_match();
  for (const auto& e : early) all_hold &= e.match == persist::Match::kMatches;
  for (const auto& e : r->entries) all_hold &= e.holds;
  if (ctx.json) {
    ctx.out << dump_json(Json{{"schema", "pcipass.status/1"},
                              {"bindings", bindings_json(r->entries)},
                              {"pending", pending_json(r->pending)},
                              {"all_hold", all_hold},
                              {"persisted", persisted_json(*desired)},
                              {"early_bind", early_json(early)}})
            << '\n';
  } else {
    print_bindings(ctx, r->entries, desired->devices.empty() && early.empty());
    print_persisted(ctx, *desired);
    print_early(ctx, early);
    if (r->pending)
      ctx.out << ctx.term.paint(Style::kBad,
                                printable(fmt::format(
                                    "an interrupted {} left a journal: run `pcipass recover`",
                                    r->pending->summary())))
              << '\n';
  }
  if (r->pending) return kExitFailure;
  return all_hold ? kExitOk : kExitWarn;
}

}  // namespace pcipass::cli
