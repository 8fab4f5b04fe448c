// pcipass groups: every IOMMU group with its viability.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>

#include "cli/commands.h"

namespace pcipass::cli {

void setup_groups(CLI::App& app, Args& a) {
  add_group_option(app, a, "Only this IOMMU group");
}

namespace {

// What a device's role is in making its group usable by a VM.
struct Role {
  const char* id;
  std::string text;
  Style style;
};

Role role_of(const Device& d, const HostImpact& impact) {
  if (d.is_bridge()) return {"stays", "stays (bridge)", Style::kDim};
  if (impact.critical(d.address))
    return {"host-critical", impact.critical_reason(d.address), Style::kBad};
  if (driver_keeps_group_viable(d.driver))
    return {"ok", d.driver ? "ok" : "ok (no driver)", Style::kGood};
  return {"must-move", "must move to vfio-pci", Style::kWarn};
}

// Endpoints a VM could want: host bridges are endpoints to the kernel but never assigned.
size_t assignable_count(const IommuGroup& g) {
  size_t n = 0;
  for (const Device* d : g.endpoints()) n += !d->is_host_bridge();
  return n;
}

// A group's devices with their roles, what blocks it, and whether a VM could have it.
Json group_json(const IommuGroup& g, const std::vector<const Device*>& blocking,
                const HostImpact& impact, bool critical) {
  Json devs = Json::array(), must = Json::array();
  for (const Device* d : g.devices) {
    Role r = role_of(*d, impact);
    devs.push_back({{"address", d->address.str()},
                    {"kind", d->kind()},
                    {"driver", or_null(d->driver)},
                    {"bridge", d->is_bridge()},
                    {"role", r.id},
                    {"name", device_title(*d)}});
  }
  for (const Device* d : blocking) must.push_back(d->address.str());
  return {{"id", g.id},
          {"viable", blocking.empty()},
          {"assignable", !critical && assignable_count(g) > 0},
          {"must_move", must},
          {"devices", devs}};
}

// The group's head line: whether a VM can use it now, and if not, why.
void print_group(Context& ctx, const IommuGroup& g, const std::vector<const Device*>& blocking,
                 const HostImpact& impact, bool critical, bool zero_domain) {
  std::string state;
  Style style = Style::kGood;
  if (assignable_count(g) == 0) {
    state = "nothing to assign: bridges only";
    style = Style::kDim;
  } else if (blocking.empty()) {
    state = "viable: a VM can use it now";
  } else if (critical) {
    state = "not assignable: it holds a device the host needs";
    style = Style::kBad;
  } else {
    state = fmt::format("not viable until {} device{} move{} to vfio-pci", blocking.size(),
                        blocking.size() == 1 ? "" : "s", blocking.size() == 1 ? "s" : "");
    style = Style::kWarn;
  }
  ctx.out << ctx.term.paint(Style::kBold, fmt::format("IOMMU group {}", g.id)) << "  "
          << ctx.term.paint(style, state) << '\n';
  Table t({"ADDRESS", "CLASS", "DRIVER", "ROLE", "DEVICE"});
  for (const Device* d : g.devices) {
    Role r = role_of(*d, impact);
    t.add({{short_address(d->address, zero_domain)},
           {d->kind()},
           {d->driver.value_or("-")},
           {r.text, r.style},
           {device_title(*d)}});
  }
  t.print(ctx.out, ctx.term, 2);
}

}  // namespace

int run_groups(Context& ctx, const Args& a) {
  auto filter = group_filter(a);
  if (!filter) return fail(ctx, filter.error());
  auto inv = ctx.inventory();
  if (!inv) return fail(ctx, inv.error());
  const auto& groups = ctx.groups();
  const auto& impact = ctx.impact();
  if (*filter && !groups.find(**filter))
    return fail(ctx,
                Error::not_found(fmt::format("no IOMMU group {} on this host", **filter),
                                 groups.groups().empty() ? "the IOMMU is off: see `pcipass check`"
                                                         : "`pcipass groups` lists them all"));
  Json out = Json::array();
  size_t viable = 0, shown = 0;
  for (const auto& g : groups.groups()) {
    if (*filter && g.id != **filter) continue;
    ++shown;
    bool critical = std::any_of(g.devices.begin(), g.devices.end(), [&](const Device* d) {
      return !d->is_bridge() && impact.critical(d->address);
    });
    auto blocking = g.blocking();  // once: the JSON or the table, and the count
    viable += blocking.empty();
    if (ctx.json)
      out.push_back(group_json(g, blocking, impact, critical));
    else
      print_group(ctx, g, blocking, impact, critical, (*inv)->single_domain_zero());
  }
  if (ctx.json) {
    ctx.out << dump_json(Json{{"schema", "pcipass.groups/1"},
                              {"iommu_enabled", !groups.groups().empty()},
                              {"groups", out},
                              {"pci_ids", pci_ids_json(ctx)}})
            << '\n';
    return kExitOk;
  }
  if (groups.groups().empty())
    ctx.out << "No IOMMU groups: the IOMMU is off in the firmware or the kernel (see `pcipass "
               "check`)\n";
  else
    ctx.out << fmt::format("{} IOMMU group{}, {} viable for a VM now\n", shown,
                           shown == 1 ? "" : "s", viable);
  return kExitOk;
}

}  // namespace pcipass::cli
