// pcipass plan: what binding devices would do, changing nothing.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <set>
#include <tuple>
#include <variant>

#include "assign/assign.h"
#include "cli/commands.h"
#include "vm/attach.h"

namespace pcipass::cli {

// Without names: parsing pci.ids costs 60-80 ms a call, a third of a bind (tests/vm/bench-bind).
Result<std::vector<PciAddress>> resolve_devices(const Inventory& inv, const Args& a) {
  std::vector<PciAddress> out;
  for (const auto& arg : a.devices)
    for (const Device* d : TRY(inv.select(arg)))
      if (std::find(out.begin(), out.end(), d->address) == out.end()) out.push_back(d->address);
  return out;
}

Result<Targets> scan_targets(Context& ctx, const Args& a) {
  std::vector<PciAddress> named;
  for (const auto& arg : a.devices) {
    auto sel = parse_selector(arg);
    if (!sel || !std::holds_alternative<PciAddress>(*sel)) break;
    named.push_back(std::get<PciAddress>(*sel));
  }
  if (!named.empty() && named.size() == a.devices.size()) {
    auto inv = TRY(Inventory::scan_devices(ctx.fs(), named, nullptr));
    if (auto devices = resolve_devices(inv, a)) return Targets{std::move(inv), std::move(*devices)};
  }
  auto inv = TRY(Inventory::scan(ctx.fs(), nullptr));
  auto devices = TRY(resolve_devices(inv, a));
  return Targets{std::move(inv), std::move(devices)};
}

Json host_use_json(const PciAddress& a, const HostUse& u) {
  Json j{{"address", a.str()}};
  j.update(host_use_json(u));
  return j;
}

Json plan_json(const assign::Plan& p) {
  Json groups = Json::array(), losses = Json::array(), refusals = Json::array();
  for (const auto& g : p.groups) {
    Json devs = Json::array();
    for (const auto& d : g.devices) {
      Json uses = Json::array();
      for (const auto& u : d.uses) uses.push_back(host_use_json(d.address, u));
      devs.push_back({{"address", d.address.str()},
                      {"name", d.title},
                      {"kind", d.kind},
                      {"driver", or_null(d.driver)},
                      {"new_driver", or_null(d.new_driver)},
                      {"action", assign::action_id(d.action)},
                      {"requested", d.requested},
                      {"host_uses", uses}});
    }
    groups.push_back({{"id", g.id}, {"devices", devs}});
  }
  for (const auto& l : p.losses) losses.push_back(host_use_json(l.address, l.use));
  for (const auto& r : p.refusals)
    refusals.push_back({{"id", refusal_id(r.kind)},
                        {"address", r.address.str()},
                        {"message", r.message},
                        {"fix", r.fix}});
  return Json{{"driver", p.driver},
              {"verdict", p.verdict_id()},
              {"groups", groups},
              {"host_loses", losses},
              {"refusals", refusals}};
}

// What the VM would get: the devices that end on the target driver, each with its reset
// verdict ("VM started once, fails the second time" is what users meet next).
std::vector<std::pair<PciAddress, ResetAssessment>> plan_resets(Context& ctx, Inventory& inv,
                                                                const assign::Plan& p) {
  std::vector<std::pair<PciAddress, ResetAssessment>> out;
  for (const auto& g : p.groups)
    for (const auto& d : g.devices) {
      if (d.action != assign::Action::kBind && d.action != assign::Action::kUnchanged) continue;
      Device* dev = inv.find(d.address);
      if (!dev) continue;
      if (!dev->details) inv.load_details(ctx.fs(), *dev, nullptr);
      out.emplace_back(d.address, assess_reset(inv, *dev));
    }
  std::vector<PciAddress> together;
  for (const auto& [a, r] : out) together.push_back(a);
  for (auto& [a, r] : out) assigned_together(r, together);
  return out;
}

void print_resets(Context& ctx, const std::vector<std::pair<PciAddress, ResetAssessment>>& rs) {
  if (rs.empty()) return;
  ctx.out << "Reset between VM starts:\n";
  for (const auto& [a, r] : rs) {
    bool ok = r.verdict == ResetVerdict::kFunction || r.verdict == ResetVerdict::kBusAlone;
    ctx.out << "  " << a.str() << "  "
            << ctx.term.paint(ok ? Style::kGood : Style::kWarn, reset_verdict_id(r.verdict)) << ": "
            << printable(r.reason) << '\n';
    if (!r.fix.empty())
      ctx.out << "    " << ctx.term.paint(Style::kBold, "fix:") << ' ' << printable(r.fix) << '\n';
  }
}

void print_plan(Context& ctx, const assign::Plan& p,
                const std::vector<std::pair<PciAddress, ResetAssessment>>& resets) {
  for (const auto& g : p.groups) {
    ctx.out << ctx.term.paint(Style::kBold, fmt::format("IOMMU group {}", g.id)) << '\n';
    Table t({"ADDRESS", "DRIVER", "AFTER", "ACTION", "DEVICE"});
    for (const auto& d : g.devices) {
      Style s = d.action == assign::Action::kBind         ? Style::kWarn
                : d.action == assign::Action::kLeftBehind ? Style::kBad
                : d.action == assign::Action::kStays      ? Style::kDim
                                                          : Style::kGood;
      std::string action = assign::action_id(d.action);
      if (d.requested) action += " *";
      t.add({{d.address.str()},
             {d.driver.value_or("-")},
             {d.new_driver.value_or("-")},
             {action, s},
             {d.title}});
    }
    t.print(ctx.out, ctx.term, 2);
  }
  ctx.out << "The host would lose:";
  if (p.losses.empty())
    ctx.out << " nothing it uses\n";
  else
    ctx.out << '\n';
  for (const auto& l : p.losses) {
    std::string line = fmt::format("  {}  {}", l.address.str(), l.use.detail);
    if (!l.use.addresses.empty()) line += fmt::format(" [{}]", fmt::join(l.use.addresses, ", "));
    ctx.out << ctx.term.paint(l.use.critical ? Style::kBad : Style::kPlain, printable(line))
            << '\n';
  }
  print_resets(ctx, resets);
  std::string verdict = p.verdict_id();
  Style vs = p.refusals.empty() ? Style::kGood : Style::kBad;
  std::vector<std::string> moves;
  for (const auto& a : p.moves()) moves.push_back(a.str());
  if (p.refusals.empty() && moves.empty())
    verdict += ": every device is already on " + p.driver;
  else if (p.refusals.empty())
    verdict +=
        fmt::format(": `pcipass bind` would move {} to {}", fmt::join(moves, ", "), p.driver);
  ctx.out << "Verdict: " << ctx.term.paint(vs, printable(verdict)) << '\n';
  for (const auto& r : p.refusals) {
    ctx.out << "  " << printable(r.message) << '\n';
    ctx.out << "    " << ctx.term.paint(Style::kBold, "fix:") << ' ' << printable(r.fix) << '\n';
  }
}

void setup_plan(CLI::App& app, Args& a) {
  add_devices(app, a, true);
  add_driver_option(app, a);
  app.add_flag("--with-group", a.with_group, "Bring every endpoint of the devices' IOMMU groups");
  app.add_flag("--force", a.force, "Plan as if host-critical devices may be taken");
  app.add_option("--domain", a.domain,
                 "Also the libvirt domain's PCI slot budget: how many places are left after "
                 "these devices");
  app.add_option_function<std::string>(
         "--connect,-c", [&a](const std::string& v) { a.connect = v; },
         "libvirt URI for --domain (default: LIBVIRT_DEFAULT_URI, else qemu:///system)")
      ->option_text("URI");
}

namespace {

// One guest place per host slot the devices are in (a whole card shares one).
int cards_of(const std::vector<PciAddress>& devices) {
  std::set<std::tuple<uint16_t, uint8_t, uint8_t>> slots;
  for (const auto& d : devices) slots.insert({d.domain, d.bus, d.slot});
  return static_cast<int>(slots.size());
}

Result<Json> domain_budget(Context& ctx, const Args& a, const std::vector<PciAddress>& devices) {
  if (a.domain.empty()) return Json(nullptr);
  std::string uri = vm::libvirt_uri(a.connect, ctx.process());
  vm::SlotBudget b = TRY(vm::domain_budget(ctx.libvirt(), uri, a.domain, cards_of(devices)));
  for (const auto& w : vm::budget_warnings(b, a.domain)) print_warning(ctx.err, ctx.term, w);
  if (!ctx.json)
    ctx.out << fmt::format("Domain {} ({}, {}): {}\n", a.domain, vm::affect_name(b.affect),
                           vm::machine_name(b.machine), b.describe());
  return Json{{"domain", a.domain},
              {"uri", uri},
              {"affect", vm::affect_name(b.affect)},
              {"machine", vm::machine_name(b.machine)},
              {"free", b.free},
              {"needed", b.needed},
              {"remaining", b.remaining},
              {"libvirt_adds", b.libvirt_adds}};
}

}  // namespace

int run_plan(Context& ctx, const Args& a) {
  auto inv = ctx.inventory();
  if (!inv) return fail(ctx, inv.error());
  auto devices = resolve_devices(**inv, a);
  if (!devices) return fail(ctx, devices.error());
  auto plan = assign::make_plan(**inv, ctx.groups(), ctx.impact(), *devices,
                                {a.driver, a.with_group, a.force});
  if (!plan) return fail(ctx, plan.error());
  auto resets = plan_resets(ctx, **inv, *plan);
  if (ctx.json) {
    Json j{{"schema", "pcipass.plan/1"}};
    Json req = Json::array();
    for (const auto& d : *devices) req.push_back(d.str());
    j["requested"] = req;
    j.update(plan_json(*plan));
    Json rj = Json::array();
    for (const auto& [addr, r] : resets) {
      Json one{{"address", addr.str()}};
      one.update(reset_json(r));
      rj.push_back(one);
    }
    j["reset"] = rj;
    j["pci_ids"] = pci_ids_json(ctx);
    auto budget = domain_budget(ctx, a, *devices);
    if (!budget) return fail(ctx, budget.error());
    if (!a.domain.empty()) j["domain_budget"] = *budget;
    ctx.out << dump_json(j) << '\n';
  } else {
    print_plan(ctx, *plan, resets);
    if (auto budget = domain_budget(ctx, a, *devices); !budget) return fail(ctx, budget.error());
  }
  return plan->refusals.empty() ? kExitOk : kExitFailure;
}

}  // namespace pcipass::cli
