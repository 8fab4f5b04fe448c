#include "assign/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace pcipass::assign {

const char* action_id(Action a) {
  switch (a) {
    case Action::kBind:
      return "bind";
    case Action::kUnchanged:
      return "unchanged";
    case Action::kStays:
      return "stays";
    case Action::kViable:
      return "viable";
    case Action::kLeftBehind:
      return "left-behind";
  }
  return "?";
}

std::vector<PciAddress> Plan::moves() const {
  std::vector<PciAddress> out;
  for (const auto& g : groups)
    for (const auto& d : g.devices)
      if (d.action == Action::kBind) out.push_back(d.address);
  std::sort(out.begin(), out.end());
  return out;
}

const char* Plan::verdict_id() const {
  if (!refusals.empty()) return "refused";
  return moves().empty() ? "nothing-to-do" : "ready";
}

Error Plan::refusal_error(const std::string& operation) const {
  std::vector<std::string> messages, fixes;
  for (const auto& r : refusals) {
    messages.push_back(r.message);
    if (std::find(fixes.begin(), fixes.end(), r.fix) == fixes.end()) fixes.push_back(r.fix);
  }
  return Error::refused(fmt::format("refusing to {}: {}", operation, fmt::join(messages, "; ")),
                        fmt::format("{}", fmt::join(fixes, "; ")));
}

namespace {

std::string title_of(const Device& d) {
  std::string name = d.vendor_name.empty() ? fmt::format("Vendor {:04x}", d.vendor) : d.vendor_name;
  name += ' ';
  name += d.device_name.empty() ? fmt::format("Device {:04x}", d.device) : d.device_name;
  return name + " [" + d.id_pair() + "]";
}

}  // namespace

Status check_assignable(const Inventory& inv, const PciAddress& a) {
  const Device* d = inv.find(a);
  if (!d)
    return Error::not_found(fmt::format("no PCI device {} on this host", a.str()),
                            "see `pcipass list`");
  if (d->is_host_bridge())
    return Error::invalid(
        fmt::format("{} is the host bridge: it is part of the platform and is never assigned",
                    a.str()),
        "name an endpoint device (see `pcipass list`)");
  if (d->is_bridge())
    return Error::invalid(fmt::format("{} is a bridge ({}): bridges and ports stay with the host",
                                      a.str(), d->driver.value_or("no driver")),
                          "name the devices below it (see `pcipass tree`)");
  if (!d->iommu_group)
    return Error::state(
        fmt::format(
            "{} has no IOMMU group: {}", a.str(),
            inv.iommu_groups_present() ? "this device cannot be isolated" : "the IOMMU is off"),
        inv.iommu_groups_present() ? "see `pcipass show " + a.str() + "`" : "see `pcipass check`");
  return {};
}

namespace {

// A group member's part in the plan. A device already on no driver, pci-stub or vfio keeps the
// group viable where it is; one on a host driver moves only when asked (itself, or --with-group).
PlanDevice plan_device(const Device& d, bool requested, const HostImpact& impact,
                       const PlanOptions& opt) {
  PlanDevice pd;
  pd.address = d.address;
  pd.title = title_of(d);
  pd.kind = d.kind();
  pd.driver = d.driver;
  pd.new_driver = d.driver;
  pd.requested = requested;
  pd.uses = impact.uses(d.address);
  if (d.is_bridge() || d.is_host_bridge()) {
    pd.action = Action::kStays;
  } else if (d.driver == opt.driver) {
    pd.action = Action::kUnchanged;
  } else if (requested || (opt.with_group && !driver_keeps_group_viable(d.driver))) {
    pd.action = Action::kBind;
    pd.new_driver = opt.driver;
  } else if (driver_keeps_group_viable(d.driver)) {
    pd.action = Action::kViable;
  } else {
    pd.action = Action::kLeftBehind;
  }
  return pd;
}

// The refusal for a group whose plan leaves endpoints on host drivers: VFIO opens a group only
// when every endpoint in it is on vfio-pci, pci-stub or no driver. It names them and the fix.
std::optional<Refusal> group_not_viable(const IommuGroup& g, const PlanGroup& pg) {
  std::vector<std::string> names, all;
  std::optional<PciAddress> first;
  for (const auto& pd : pg.devices)
    if (pd.action == Action::kLeftBehind) {
      names.push_back(fmt::format("{} ({})", pd.address.str(), pd.driver.value_or("")));
      if (!first) first = pd.address;
    }
  if (!first) return std::nullopt;
  for (const Device* d : g.endpoints()) all.push_back(d->address.str());
  return Refusal{RefusalKind::kGroupNotViable, *first,
                 fmt::format("IOMMU group {} would not be viable: {} would stay on the host", pg.id,
                             fmt::join(names, ", ")),
                 fmt::format("add --with-group to bind every endpoint of group {} ({})", pg.id,
                             fmt::join(all, ", "))};
}

// What the host loses with each device that moves, and the refusals for the ones it cannot lose
// (needed by the host, or held open by a process) unless forced. A scan that could not read what
// the host uses refuses too: "uses nothing" would be a guess, and the guess may be the root disk.
void weigh_losses(Plan& plan, const HostImpact& impact, bool force) {
  if (!force && !impact.problems().empty())
    if (auto moves = plan.moves(); !moves.empty())
      plan.refusals.push_back(
          {RefusalKind::kImpactUnknown, moves.front(),
           fmt::format("cannot tell what the host would lose: {}",
                       fmt::join(impact.problems(), "; ")),
           "make those readable (run pcipass as root), or add --force to go ahead without "
           "knowing"});
  for (const auto& g : plan.groups)
    for (const auto& d : g.devices) {
      if (d.action != Action::kBind) continue;
      for (const auto& u : d.uses) plan.losses.push_back({d.address, u});
      if (force) continue;
      std::string critical = impact.critical_reason(d.address);
      if (!critical.empty())
        plan.refusals.push_back(
            {RefusalKind::kHostCritical, d.address, fmt::format("{} {}", d.address.str(), critical),
             "the host needs it; add --force only if the host can do without it"});
      for (const auto& u : d.uses)
        if (u.kind == UseKind::kProcess)
          plan.refusals.push_back({RefusalKind::kInUse, d.address,
                                   fmt::format("{} is {}", d.address.str(), u.detail),
                                   "stop the process first, or add --force"});
    }
}

}  // namespace

Result<Plan> make_plan(const Inventory& inv, const GroupMap& groups, const HostImpact& impact,
                       const std::vector<PciAddress>& requested, const PlanOptions& opt) {
  Plan plan;
  plan.driver = opt.driver;
  std::set<PciAddress> wanted(requested.begin(), requested.end());
  std::set<int> group_ids;
  for (const auto& a : requested) {
    TRY(check_assignable(inv, a));
    group_ids.insert(*inv.find(a)->iommu_group);
  }
  for (int id : group_ids) {
    const IommuGroup* g = groups.find(id);
    if (!g) continue;
    PlanGroup pg;
    pg.id = id;
    for (const Device* d : g->devices)
      pg.devices.push_back(plan_device(*d, wanted.count(d->address) > 0, impact, opt));
    if (auto refusal = group_not_viable(*g, pg)) plan.refusals.push_back(std::move(*refusal));
    plan.groups.push_back(std::move(pg));
  }
  weigh_losses(plan, impact, opt.force);
  return plan;
}

const char* refusal_id(RefusalKind k) {
  switch (k) {
    case RefusalKind::kGroupNotViable:
      return "group-not-viable";
    case RefusalKind::kHostCritical:
      return "host-critical";
    case RefusalKind::kInUse:
      return "in-use";
    case RefusalKind::kImpactUnknown:
      return "impact-unknown";
  }
  return "?";
}

}  // namespace pcipass::assign
