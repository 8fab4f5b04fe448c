// pcipass vf list|create|remove: SR-IOV virtual functions (docs/sriov.md).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/format.h"
#include "persist/persist.h"
#include "sriov/sriov.h"
#include "sriov/vf_set.h"

namespace pcipass::cli {

namespace {

Json link_json(const std::optional<sriov::VfLink>& l) {
  if (!l) return nullptr;
  return {{"mac", l->mac},
          {"vlan", l->vlan},
          {"qos", l->qos},
          {"spoofchk", or_null(l->spoofchk)},
          {"trust", or_null(l->trust)}};
}

Json pf_json(const sriov::PhysicalFunction& p) {
  Json vfs = Json::array();
  for (const auto& v : p.vfs) {
    const Device* d = v.device;
    vfs.push_back({{"address", v.address.str()},
                   {"index", v.index},
                   {"driver", d ? or_null(d->driver) : Json(nullptr)},
                   {"iommu_group", d ? or_null(d->iommu_group) : Json(nullptr)},
                   {"passthrough", d ? assessment_json(v.assessment) : Json(nullptr)},
                   {"net", link_json(v.link)}});
  }
  const Device& d = *p.device;
  return {{"address", d.address.str()},    {"title", device_title(d)},
          {"driver", or_null(d.driver)},   {"total_vfs", or_null(p.total_vfs)},
          {"num_vfs", or_null(p.num_vfs)}, {"drivers_autoprobe", or_null(p.drivers_autoprobe)},
          {"interfaces", p.interfaces},    {"vfs", vfs},
          {"problems", p.problems}};
}

std::string on_off(const std::optional<bool>& b) {
  return b ? (*b ? "on" : "off") : "-";
}

// A NIC PF's VFs get the columns of what its driver reports (MAC, VLAN, spoof check, trust).
void print_vfs(Context& ctx, const sriov::PhysicalFunction& p) {
  bool net = std::any_of(p.vfs.begin(), p.vfs.end(), [](const auto& v) { return v.link; });
  bool pci = p.device != nullptr;  // false: an interface's VFs (--ifname)
  std::vector<std::string> heads{"VF", "ADDRESS", "DRIVER", "GROUP", "VERDICT"};
  if (net) heads.insert(heads.end(), {"MAC", "VLAN", "SPOOFCHK", "TRUST"});
  Table table(heads);
  for (const auto& v : p.vfs) {
    const Device* x = v.device;
    std::vector<Table::Cell> row{{std::to_string(v.index)},
                                 {pci ? v.address.str() : "-"},
                                 {x && x->driver ? *x->driver : "-"},
                                 {x && x->iommu_group ? std::to_string(*x->iommu_group) : "-"},
                                 {x     ? verdict_label(v.assessment.verdict)
                                  : pci ? "gone"
                                        : "-"}};
    if (net) {
      const auto& l = v.link;
      std::string vlan = !l || !l->vlan ? "-"
                         : l->qos       ? fmt::format("{} qos {}", l->vlan, l->qos)
                                        : std::to_string(l->vlan);
      row.insert(row.end(), {{l ? l->mac : "-"},
                             {vlan},
                             {l ? on_off(l->spoofchk) : "-"},
                             {l ? on_off(l->trust) : "-"}});
    }
    table.add(row);
  }
  table.print(ctx.out, ctx.term);
}

// vf list --ifname IF (hidden, for tests): the VFs a network interface reports, with no PCI
// device behind them (netdevsim). The same schema, with null addresses.
int run_vf_list_ifname(Context& ctx, const sriov::VfLinkSource* links, const std::string& ifname) {
  if (!links)
    return fail(ctx, Error::state("no netlink here to read " + ifname + "'s VFs",
                                  "run pcipass on the host itself (not on a --root tree)"));
  auto vfs = links->vfs(ifname);
  if (!vfs) return fail(ctx, vfs.error());
  if (ctx.json) {
    Json list = Json::array();
    for (const auto& l : *vfs)
      list.push_back({{"address", nullptr}, {"index", l.index}, {"net", link_json(l)}});
    Json pf{{"address", nullptr},
            {"title", nullptr},
            {"driver", nullptr},
            {"total_vfs", nullptr},
            {"num_vfs", static_cast<int>(vfs->size())},
            {"drivers_autoprobe", nullptr},
            {"interfaces", Json::array({ifname})},
            {"vfs", list},
            {"problems", Json::array()}};
    ctx.out << dump_json({{"schema", "pcipass.vf-list/1"}, {"pfs", Json::array({pf})}}) << '\n';
    return kExitOk;
  }
  sriov::PhysicalFunction p;
  for (const auto& l : *vfs) p.vfs.push_back({{}, l.index, nullptr, {}, l});
  print_line(ctx.out, fmt::format("{}: {} VFs", ifname, vfs->size()));
  if (!p.vfs.empty()) print_vfs(ctx, p);
  return kExitOk;
}

int run_vf_list(Context& ctx, const Args& a) {
  // The netlink port is both the change engine's and list's source (a test's double is too).
  auto* links = dynamic_cast<const sriov::VfLinkSource*>(ctx.env().vf_links);
  if (a.vf_ifname) return run_vf_list_ifname(ctx, links, *a.vf_ifname);
  auto inv = ctx.inventory();
  if (!inv) return fail(ctx, inv.error());
  std::optional<PciAddress> pf;
  if (!a.devices.empty()) {
    auto sel = resolve_devices(**inv, a);
    if (!sel) return fail(ctx, sel.error());
    pf = sel->front();
  }
  auto pfs = sriov::list(ctx.fs(), **inv, ctx.groups(), ctx.impact(), pf, links);
  if (!pfs) return fail(ctx, pfs.error());
  if (ctx.json) {
    Json out = Json::array();
    for (const auto& p : *pfs) out.push_back(pf_json(p));
    ctx.out << dump_json({{"schema", "pcipass.vf-list/1"}, {"pfs", out}}) << '\n';
    return kExitOk;
  }
  if (pfs->empty()) {
    print_line(ctx.out, "no SR-IOV physical functions on this host");
    return kExitOk;
  }
  for (const auto& p : *pfs) {
    const Device& d = *p.device;
    print_line(ctx.out,
               fmt::format("{} {} (driver {}): {} of {} VFs, drivers_autoprobe {}", d.address.str(),
                           device_title(d), d.driver.value_or("none"),
                           p.num_vfs ? std::to_string(*p.num_vfs) : "?",
                           p.total_vfs ? std::to_string(*p.total_vfs) : "?",
                           p.drivers_autoprobe ? (*p.drivers_autoprobe ? "on" : "off") : "?"));
    for (const auto& w : p.problems) print_warning(ctx.err, ctx.term, w);
    if (p.vfs.empty()) continue;
    print_vfs(ctx, p);
  }
  return kExitOk;
}

Json addresses_json(const std::vector<PciAddress>& v) {
  Json out = Json::array();
  for (const auto& a : v) out.push_back(a.str());
  return out;
}

int report(Context& ctx, const sriov::Report& r, const char* schema,
           const std::optional<persist::PersistReport>& persisted = std::nullopt) {
  if (persisted)
    for (const auto& w : persisted->warnings) print_warning(ctx.err, ctx.term, w);
  if (ctx.json) {
    Json doc{{"schema", schema},
             {"dry_run", r.dry_run},
             {"pf", r.pf.str()},
             {"num_vfs_before", r.num_vfs_before},
             {"num_vfs", r.num_vfs},
             {"drivers_autoprobe", or_null(r.drivers_autoprobe)},
             {"removed", addresses_json(r.removed)},
             {"created", addresses_json(r.created)},
             {"bound", addresses_json(r.bound)},
             {"driver", or_null(r.driver)},
             {"steps", steps_json(r.steps)}};
    // Only with --persist, as bind's "persist" key (docs/json.md).
    if (persisted) doc["persist"] = persist_json(*persisted, r.durable);
    ctx.out << dump_json(doc) << '\n';
    return kExitOk;
  }
  if (r.dry_run && !r.steps.empty()) {
    print_steps(ctx, r.steps);
    return kExitOk;
  }
  if (r.steps.empty() || (persisted && r.bound.empty() && r.num_vfs == r.num_vfs_before)) {
    print_line(ctx.out, fmt::format("{} already has {} VFs as asked: nothing to change", r.pf.str(),
                                    r.num_vfs_before));
  } else {
    print_line(ctx.out,
               fmt::format("{}: {} VFs (was {})", r.pf.str(), r.num_vfs, r.num_vfs_before));
    for (const auto& a : r.created) print_line(ctx.out, "created " + a.str());
    for (const auto& a : r.bound)
      print_line(ctx.out, fmt::format("bound {} to {}", a.str(), r.driver));
  }
  if (persisted) print_persist(ctx, *persisted, r.durable, "persisted");
  return kExitOk;
}

// `vf create|remove --persist ...` as the change set's command.
std::string vf_command(const std::string& verb, const Args& a, const PciAddress& pf) {
  std::string out = fmt::format("vf {} --persist {}", verb, pf.str());
  if (verb == "create") out += " " + std::to_string(a.vf_count);
  if (!a.vf_bind.empty()) out += " --bind " + a.vf_bind;
  if (a.no_autoprobe) out += " --no-autoprobe";
  return out;
}

Result<PciAddress> the_pf(Context& ctx, const Args& a, Inventory*& inv) {
  inv = TRY(ctx.inventory());
  auto sel = TRY(resolve_devices(*inv, a));
  if (sel.size() != 1)
    return Error::invalid(
        fmt::format("'{}' names {} devices, not one PF", a.devices.front(), sel.size()),
        "name the PF by its address (see `pcipass vf list`)");
  return sel.front();
}

int run_vf_create(Context& ctx, const Args& a) {
  Inventory* inv = nullptr;
  auto pf = the_pf(ctx, a, inv);
  if (!pf) return fail(ctx, pf.error());
  sriov::CreateRequest req;
  req.pf = *pf;
  req.count = a.vf_count;
  if (!a.vf_bind.empty()) req.bind = a.vf_bind;
  req.no_autoprobe = a.no_autoprobe;
  req.dry_run = a.dry_run;
  req.inventory = inv;
  if (a.persist) {
    sriov::Report r;
    auto p = persist::vf_create_persist(ctx.fs(), req, ctx.env(), vf_command("create", a, *pf), r);
    if (!p) return fail(ctx, p.error());
    return report(ctx, r, "pcipass.vf-create/1", *p);
  }
  auto r = sriov::create(ctx.fs(), req, ctx.env());
  if (!r) return fail(ctx, r.error());
  return report(ctx, *r, "pcipass.vf-create/1");
}

int run_vf_remove(Context& ctx, const Args& a) {
  Inventory* inv = nullptr;
  auto pf = the_pf(ctx, a, inv);
  if (!pf) return fail(ctx, pf.error());
  Result<sriov::Report> r = sriov::Report{};
  std::optional<persist::PersistReport> persisted;
  if (a.persist) {
    auto p = persist::vf_remove_persist(ctx.fs(), {*pf, a.dry_run, inv}, ctx.env(),
                                        vf_command("remove", a, *pf), *r);
    if (!p) return fail(ctx, p.error());
    persisted = std::move(*p);
  } else {
    r = sriov::remove(ctx.fs(), {*pf, a.dry_run, inv}, ctx.env());
  }
  if (!r) return fail(ctx, r.error());
  if (ctx.json || r->dry_run) return report(ctx, *r, "pcipass.vf-remove/1", persisted);
  if (r->num_vfs_before == 0)
    print_line(ctx.out, fmt::format("{} has no VFs: nothing to remove", pf->str()));
  for (const auto& v : r->removed) print_line(ctx.out, "removed " + v.str());
  if (persisted) print_persist(ctx, *persisted, r->durable, "removed");
  return kExitOk;
}

// The settings asked for, in a fixed order (mac, vlan, spoofchk, trust), each checked.
Result<std::vector<change::VfSetting>> wanted_settings(const Args& a) {
  std::vector<change::VfSetting> out;
  using change::VfField;
  if (a.vf_mac) out.push_back({VfField::kMac, TRY(sriov::parse_mac(*a.vf_mac)), 0, 0, false});
  if (a.vf_vlan) out.push_back({VfField::kVlan, {}, TRY(sriov::parse_vlan(*a.vf_vlan)), 0, false});
  if (a.vf_spoofchk) out.push_back({VfField::kSpoofchk, {}, 0, 0, *a.vf_spoofchk == "on"});
  if (a.vf_trust) out.push_back({VfField::kTrust, {}, 0, 0, *a.vf_trust == "on"});
  return out;
}

Json setting_json(const change::VfSetting& s) {
  switch (s.field) {
    case change::VfField::kMac:
      return s.mac;
    case change::VfField::kVlan:
      return {{"vlan", s.vlan}, {"qos", s.qos}};
    case change::VfField::kSpoofchk:
    case change::VfField::kTrust:
      break;
  }
  return s.on;
}

int set_report(Context& ctx, const sriov::SetReport& r) {
  if (ctx.json) {
    Json settings = Json::array();
    for (const auto& s : r.settings)
      settings.push_back({{"field", change::vf_field_name(s.after.field)},
                          {"before", setting_json(s.before)},
                          {"after", setting_json(s.after)}});
    ctx.out << dump_json({{"schema", "pcipass.vf-set/1"},
                          {"dry_run", r.dry_run},
                          {"ifname", r.ifname},
                          {"vf", r.index},
                          {"settings", settings},
                          {"steps", steps_json(r.steps)}})
            << '\n';
    return kExitOk;
  }
  if (r.dry_run) {
    print_steps(ctx, r.steps);
    return kExitOk;
  }
  for (const auto& s : r.settings)
    print_line(ctx.out, fmt::format("{} VF {}: {} {} (was {})", r.ifname, r.index,
                                    change::vf_field_name(s.after.field), s.after.value(),
                                    s.before.value()));
  return kExitOk;
}

int run_vf_set(Context& ctx, const Args& a) {
  sriov::SetRequest req;
  auto index = sriov::parse_vf_index(a.vf_index);
  if (!index) return fail(ctx, index.error());
  req.index = *index;
  auto settings = wanted_settings(a);
  if (!settings) return fail(ctx, settings.error());
  req.settings = std::move(*settings);
  req.dry_run = a.dry_run;
  if (a.vf_ifname) {
    req.ifname = *a.vf_ifname;
  } else {
    Inventory* inv = nullptr;
    auto pf = the_pf(ctx, a, inv);
    if (!pf) return fail(ctx, pf.error());
    req.pf = *pf;
    req.inventory = inv;
  }
  auto r = sriov::set(ctx.fs(), req, ctx.env());
  if (!r) return fail(ctx, r.error());
  return set_report(ctx, *r);
}

}  // namespace

void setup_vf(CLI::App& app, Args& a) {
  app.require_subcommand(1);
  auto* list = app.add_subcommand("list", "SR-IOV physical functions and their VFs");
  auto pf = [&a](const std::string& v) { a.devices = {v}; };
  list->add_option_function<std::string>("PF", pf, "Only this physical function");
  list->add_option("--ifname", a.vf_ifname)
      ->group("");  // tests: netdevsim's VFs (run_vf_list_ifname)
  auto* create = app.add_subcommand(
      "create", "Make N VFs on PF (through 0 when it has others), optionally bound to vfio-pci");
  create->add_option_function<std::string>("PF", pf, "The physical function")->required();
  create->add_option("N", a.vf_count, "How many VFs")->required();
  create->add_option("--bind", a.vf_bind, "Bind every new VF to this driver (vfio-pci, pci-stub)")
      ->check(CLI::IsMember({"vfio-pci", "pci-stub"}));
  create->add_flag("--no-autoprobe", a.no_autoprobe,
                   "Set sriov_drivers_autoprobe=0: new VFs get no host driver");
  create->add_flag("--dry-run", a.dry_run, "Print every write, in order, and write nothing");
  create->add_flag("--persist", a.persist,
                   "Also make them at every boot: record the count, autoprobe and bindings in "
                   "/etc/pcipass/assignments.json and enable pcipass-apply.service");
  auto* remove = app.add_subcommand("remove", "Remove every VF of PF (sriov_numvfs=0)");
  remove->add_option_function<std::string>("PF", pf, "The physical function")->required();
  remove->add_flag("--dry-run", a.dry_run, "Print every write, in order, and write nothing");
  remove->add_flag("--persist", a.persist,
                   "Also forget the PF's VFs in /etc/pcipass/assignments.json (none at boot)");
  auto* set = app.add_subcommand(
      "set", "Set a NIC VF's MAC, VLAN, spoof check or trust through its PF's interface");
  set->add_option_function<std::string>("PF", pf, "The physical function")->required();
  set->add_option("INDEX", a.vf_index, "The VF's index (`pcipass vf list`, column VF)")->required();
  set->add_option("--mac", a.vf_mac, "The VF's MAC address, e.g. 52:54:00:12:34:56");
  set->add_option("--vlan", a.vf_vlan, "Its VLAN ID, 1-4095 (0: none)");
  set->add_option("--spoofchk", a.vf_spoofchk, "MAC spoof checking")
      ->check(CLI::IsMember({"on", "off"}));
  set->add_option("--trust", a.vf_trust, "Trusted (may change its MAC, see all multicast)")
      ->check(CLI::IsMember({"on", "off"}));
  // For tests: an interface whose VFs are no PCI devices (netdevsim); PF is then not looked up.
  set->add_option("--ifname", a.vf_ifname)->group("");
  set->add_flag("--dry-run", a.dry_run, "Print every setting, in order, and change nothing");
  using Sub = std::pair<CLI::App*, const char*>;
  for (auto [sub, name] :
       {Sub{list, "list"}, Sub{create, "create"}, Sub{remove, "remove"}, Sub{set, "set"}}) {
    sub->fallthrough();
    sub->preparse_callback([&a, name = std::string(name)](size_t) { a.vf_action = name; });
  }
}

int run_vf(Context& ctx, const Args& a) {
  if (a.vf_action == "create") return run_vf_create(ctx, a);
  if (a.vf_action == "remove") return run_vf_remove(ctx, a);
  if (a.vf_action == "set") return run_vf_set(ctx, a);
  return run_vf_list(ctx, a);
}

}  // namespace pcipass::cli
