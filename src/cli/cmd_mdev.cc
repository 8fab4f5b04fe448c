// pcipass mdev types|list|create|remove|start-parent: mediated devices (docs/mdev.md).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/format.h"
#include "mdev/mdev.h"

namespace pcipass::cli {

namespace {

Json attrs_json(const std::vector<mdev::Attr>& attrs) {
  Json out = Json::array();
  for (const auto& a : attrs) out.push_back(Json{{a.name, a.value}});
  return out;
}

// `mdevctl types --dumpjson`'s shape: [] or [{PARENT: [{TYPE: {...}}]}].
Json types_mdevctl(const std::vector<mdev::Parent>& parents) {
  Json by_parent = Json::object();
  for (const auto& p : parents) {
    Json types = Json::array();
    for (const auto& t : p.types) {
      Json j{{"available_instances", t.available.value_or(0)}, {"device_api", t.device_api}};
      if (!t.name.empty()) j["name"] = t.name;
      if (!t.description.empty()) j["description"] = t.description;
      types.push_back(Json{{t.id, j}});
    }
    by_parent[p.name] = types;
  }
  return by_parent.empty() ? Json::array() : Json::array({by_parent});
}

int run_mdev_types(Context& ctx, const Args& a) {
  std::optional<std::string> parent;
  if (!a.mdev_parent.empty()) {
    auto p = mdev::parse_parent(a.mdev_parent);
    if (!p) return fail(ctx, p.error());
    parent = *p;
  }
  auto parents = mdev::types(ctx.fs(), parent);
  if (!parents) return fail(ctx, parents.error());
  for (const auto& p : *parents)
    for (const auto& w : p.problems) print_warning(ctx.err, ctx.term, w);
  if (ctx.json) {
    Json list = Json::array();
    for (const auto& p : *parents) {
      Json types = Json::array();
      for (const auto& t : p.types)
        types.push_back({{"type", t.id},
                         {"name", t.name},
                         {"description", t.description},
                         {"device_api", t.device_api},
                         {"available_instances", or_null(t.available)},
                         {"devices", t.devices}});
      list.push_back({{"parent", p.name}, {"types", types}, {"problems", p.problems}});
    }
    ctx.out << dump_json({{"schema", "pcipass.mdev-types/1"},
                          {"parents", list},
                          {"mdevctl", types_mdevctl(*parents)}})
            << '\n';
    return kExitOk;
  }
  if (parents->empty()) {
    print_line(ctx.out, "no parents of mediated devices on this host (/sys/class/mdev_bus)");
    return kExitOk;
  }
  for (const auto& p : *parents) {
    print_line(ctx.out, p.name);
    Table table({"TYPE", "AVAILABLE", "API", "NAME", "IN USE"});
    for (const auto& t : p.types)
      table.add({{t.id},
                 {t.available ? std::to_string(*t.available) : "?"},
                 {t.device_api.empty() ? "-" : t.device_api},
                 {t.name.empty() ? "-" : t.name},
                 {std::to_string(t.devices.size())}});
    table.print(ctx.out, ctx.term);
  }
  return kExitOk;
}

// `mdevctl list --dumpjson`'s shape: [] or [{PARENT: [{UUID: {mdev_type, start, attrs}}]}].
Json list_mdevctl(const std::vector<mdev::Mdev>& mdevs) {
  Json by_parent = Json::object();
  for (const auto& m : mdevs) {
    Json one{{"mdev_type", m.type},
             {"start", mdev::start_name(m.start)},
             {"attrs", attrs_json(m.attrs)}};
    if (!by_parent.contains(m.parent)) by_parent[m.parent] = Json::array();
    by_parent[m.parent].push_back(Json{{m.uuid, one}});
  }
  return by_parent.empty() ? Json::array() : Json::array({by_parent});
}

int run_mdev_list(Context& ctx, const Args& a) {
  auto l = mdev::list(ctx.fs(), a.mdev_defined);
  if (!l) return fail(ctx, l.error());
  for (const auto& w : l->problems) print_warning(ctx.err, ctx.term, w);
  if (ctx.json) {
    Json list = Json::array();
    for (const auto& m : l->mdevs)
      list.push_back({{"uuid", m.uuid},
                      {"parent", m.parent},
                      {"type", m.type},
                      {"active", m.active},
                      {"defined", m.defined},
                      {"start", mdev::start_name(m.start)},
                      {"attrs", attrs_json(m.attrs)},
                      {"driver", or_null(m.driver)},
                      {"iommu_group", or_null(m.iommu_group)}});
    ctx.out << dump_json({{"schema", "pcipass.mdev-list/1"},
                          {"defined", a.mdev_defined},
                          {"mdevs", list},
                          {"mdevctl", list_mdevctl(l->mdevs)},
                          {"problems", l->problems}})
            << '\n';
    return kExitOk;
  }
  if (l->mdevs.empty()) {
    print_line(ctx.out, a.mdev_defined ? "no mdev definitions in /etc/mdevctl.d"
                                       : "no active mediated devices");
    return kExitOk;
  }
  Table table({"UUID", "PARENT", "TYPE", "START", "STATE", "GROUP"});
  for (const auto& m : l->mdevs) {
    std::string state = m.active ? (m.defined ? "active, defined" : "active") : "defined";
    table.add({{m.uuid},
               {m.parent},
               {m.type},
               {m.defined ? mdev::start_name(m.start) : "-"},
               {state},
               {m.iommu_group ? std::to_string(*m.iommu_group) : "-"}});
  }
  table.print(ctx.out, ctx.term);
  return kExitOk;
}

int report(Context& ctx, const mdev::Report& r, const char* schema, bool created) {
  if (ctx.json) {
    ctx.out << dump_json({{"schema", schema},
                          {"dry_run", r.dry_run},
                          {"uuid", r.uuid},
                          {"parent", r.parent},
                          {"type", r.type},
                          {"active", r.active},
                          {"definition", or_null(r.config)},
                          {"change_set", or_null(r.durable.id)},
                          {"sysfsdev", "/sys/bus/mdev/devices/" + r.uuid},
                          {"steps", steps_json(r.steps)}})
            << '\n';
    return kExitOk;
  }
  if (r.dry_run) {
    print_steps(ctx, r.steps);
    return kExitOk;
  }
  if (created) {
    print_line(ctx.out, fmt::format("created mdev {} ({} on {})", r.uuid, r.type, r.parent));
    if (r.config) print_line(ctx.out, "defined in " + *r.config);
  } else {
    if (r.was_active) print_line(ctx.out, fmt::format("removed mdev {}", r.uuid));
    if (r.config) print_line(ctx.out, "removed its definition " + *r.config);
  }
  if (r.durable.id)
    print_line(ctx.out, fmt::format("change set {} (`pcipass undo {}` takes it back)",
                                    *r.durable.id, *r.durable.id));
  return kExitOk;
}

std::string command_line(const Args& a) {
  std::string out = "mdev " + a.mdev_action;
  if (a.mdev_action == "create") out += fmt::format(" {} {}", a.mdev_parent, a.mdev_type);
  if (!a.mdev_uuid.empty())
    out += " " + std::string(a.mdev_action == "create" ? "--uuid " : "") + a.mdev_uuid;
  if (a.persist) out += " --persist";
  if (a.mdev_auto) out += " --auto";
  return out;
}

int run_mdev_create(Context& ctx, const Args& a) {
  mdev::CreateRequest req;
  req.parent = a.mdev_parent;
  req.type = a.mdev_type;
  if (!a.mdev_uuid.empty()) req.uuid = a.mdev_uuid;
  req.dry_run = a.dry_run;
  req.persist = a.persist;
  req.autostart = a.mdev_auto;
  req.command = command_line(a);
  auto r = mdev::create(ctx.fs(), req, ctx.env());
  if (!r) return fail(ctx, r.error());
  return report(ctx, *r, "pcipass.mdev-create/1", true);
}

int run_mdev_remove(Context& ctx, const Args& a) {
  mdev::RemoveRequest req{a.mdev_uuid, a.dry_run, a.persist, command_line(a)};
  auto r = mdev::remove(ctx.fs(), req, ctx.env());
  if (!r) return fail(ctx, r.error());
  return report(ctx, *r, "pcipass.mdev-remove/1", false);
}

Json start_parent_json(const mdev::StartParentReport& r) {
  Json mdevs = Json::array();
  for (const auto& m : r.mdevs)
    mdevs.push_back({{"uuid", m.uuid},
                     {"type", m.type},
                     {"result", mdev::start_result_id(m.result)},
                     {"message", or_null(m.message)},
                     {"fix", or_null(m.fix)}});
  return {{"schema", "pcipass.mdev-start-parent/1"},
          {"dry_run", r.dry_run},
          {"parent", r.parent},
          {"definitions", r.dir},
          {"mdevs", mdevs},
          {"manual", r.manual},
          {"started", r.started()},
          {"changed", !r.dry_run && r.started() > 0},
          {"steps", steps_json(r.steps)},
          {"problems", r.problems},
          {"ok", r.ok()}};
}

int run_mdev_start_parent(Context& ctx, const Args& a) {
  auto r = mdev::start_parent(ctx.fs(), a.mdev_parent, a.dry_run, ctx.env());
  if (!r) return fail(ctx, r.error());
  for (const auto& w : r->problems) print_warning(ctx.err, ctx.term, w);
  int status = r->ok() ? kExitOk : kExitFailure;
  if (ctx.json) {
    ctx.out << dump_json(start_parent_json(*r)) << '\n';
    return status;
  }
  if (r->dry_run) print_steps(ctx, r->steps);
  for (const auto& m : r->mdevs) {
    switch (m.result) {
      case mdev::StartResult::kStarted:
        print_line(ctx.out,
                   fmt::format("{} mdev {} ({} on {})", r->dry_run ? "would start" : "started",
                               m.uuid, m.type, r->parent));
        break;
      case mdev::StartResult::kAlreadyActive:
        print_line(ctx.out,
                   fmt::format("mdev {} ({} on {}) is already active", m.uuid, m.type, r->parent));
        break;
      case mdev::StartResult::kConflict:
        ctx.out << ctx.term.paint(Style::kBad, printable(m.message)) << '\n';
        ctx.out << "      " << ctx.term.paint(Style::kBold, "fix:") << ' ' << printable(m.fix)
                << '\n';
    }
  }
  if (r->started() == 0)
    print_line(ctx.out, r->mdevs.empty()
                            ? fmt::format("nothing to start: no auto definitions in {}", r->dir)
                            : fmt::format("nothing to start: every auto definition in {} is {}",
                                          r->dir, r->ok() ? "active" : "active or in conflict"));
  return status;
}

}  // namespace

void setup_mdev(CLI::App& app, Args& a) {
  app.require_subcommand(1);
  auto* types = app.add_subcommand("types", "Parents of mediated devices and the types they offer");
  types->add_option("PARENT", a.mdev_parent, "Only this parent (a PCI address or a name)");
  auto* list = app.add_subcommand("list", "Active mediated devices (mdevctl list)");
  list->add_flag("--defined", a.mdev_defined, "Definitions in /etc/mdevctl.d instead");
  auto* create = app.add_subcommand("create", "Create a mediated device of TYPE on PARENT");
  create->add_option("PARENT", a.mdev_parent, "The parent (see `pcipass mdev types`)")->required();
  create->add_option("TYPE", a.mdev_type, "The type, e.g. mtty-2")->required();
  create->add_option("--uuid", a.mdev_uuid, "Its UUID (default: a random one)");
  create->add_flag("--persist", a.persist, "Also define it in /etc/mdevctl.d (mdevctl's format)");
  create->add_flag("--auto", a.mdev_auto, "With --persist: start it at boot (start: auto)");
  create->add_flag("--dry-run", a.dry_run, "Print every write, in order, and write nothing");
  auto* remove = app.add_subcommand("remove", "Remove a mediated device");
  remove->add_option("UUID", a.mdev_uuid, "The mdev's UUID")->required();
  remove->add_flag("--persist", a.persist, "Also delete its definition in /etc/mdevctl.d");
  remove->add_flag("--dry-run", a.dry_run, "Print every write, in order, and write nothing");
  auto* start = app.add_subcommand(
      "start-parent", "Create PARENT's auto definitions that are not active (udev runs it)");
  start->add_option("PARENT", a.mdev_parent, "The parent, as udev names it (%k)")->required();
  start->add_flag("--dry-run", a.dry_run, "Print every write, in order, and write nothing");
  start->footer(
      "What mdevctl's start-parent-mdevs does, as one transaction: a failed create removes the "
      "ones made by this run. pcipass's udev rule runs it when PARENT registers (docs/mdev.md).");
  using Sub = std::pair<CLI::App*, const char*>;
  for (auto [sub, name] : {Sub{types, "types"}, Sub{list, "list"}, Sub{create, "create"},
                           Sub{remove, "remove"}, Sub{start, "start-parent"}}) {
    sub->fallthrough();
    sub->preparse_callback([&a, name = std::string(name)](size_t) { a.mdev_action = name; });
  }
}

int run_mdev(Context& ctx, const Args& a) {
  if (a.mdev_action == "create") return run_mdev_create(ctx, a);
  if (a.mdev_action == "remove") return run_mdev_remove(ctx, a);
  if (a.mdev_action == "start-parent") return run_mdev_start_parent(ctx, a);
  if (a.mdev_action == "types") return run_mdev_types(ctx, a);
  return run_mdev_list(ctx, a);
}

}  // namespace pcipass::cli
