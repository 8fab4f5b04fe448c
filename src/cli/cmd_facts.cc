// pcipass facts: Ansible local facts (an executable /etc/ansible/facts.d/pcipass.fact runs it):
// readiness, IOMMU groups and devices with their verdicts, as one JSON document,
// pcipass.facts/1 (docs/json.md). Always JSON: fact gathering reads nothing else.
#include <fmt/format.h>

#include <map>

#include "check/check.h"
#include "cli/commands.h"
#include "persist/persist.h"
#include "setup/boot_check.h"

namespace pcipass::cli {

namespace {

Json readiness_json(Context& ctx) {
  CheckReport report = run_checks(ctx.fs(), ctx.modules());
  for (auto& r : setup::check_boot_setup(ctx.fs(), ctx.modules(), ctx.env().runner))
    report.results.push_back(std::move(r));
  for (auto& r : persist::persist_checks(ctx.fs())) report.results.push_back(std::move(r));
  // Keyed by check id, so that a play can say `when: ansible_local.pcipass.checks.iommu_kernel
  // == "pass"`; fixes stay with `pcipass check`.
  // A check that comes once per thing (persisted-device) keeps its worst status.
  std::map<std::string, CheckStatus> worst_of;
  for (const auto& r : report.results) {
    auto [it, fresh] = worst_of.emplace(r.id, r.status);
    if (!fresh && r.status > it->second) it->second = r.status;
  }
  Json checks = Json::object();
  for (const auto& r : report.results)
    if (!checks.contains(r.id)) checks[r.id] = check_status_name(worst_of[r.id]);
  CheckStatus worst = report.worst();
  return {{"ready", worst != CheckStatus::kFail},
          {"readiness", check_status_name(worst)},
          {"checks", checks}};
}

Json groups_json(const GroupMap& groups, const HostImpact& impact) {
  Json out = Json::array();
  for (const auto& g : groups.groups()) {
    Json devices = Json::array(), must = Json::array();
    bool critical = false;
    for (const Device* d : g.devices) {
      devices.push_back(d->address.str());
      critical |= !d->is_bridge() && impact.critical(d->address);
    }
    for (const Device* d : g.blocking()) must.push_back(d->address.str());
    out.push_back({{"id", g.id},
                   {"viable", must.empty()},
                   {"host_critical", critical},
                   {"must_move", must},
                   {"devices", devices}});
  }
  return out;
}

Json devices_json(const Inventory& inv, Assessor& assessor) {
  Json out = Json::array();
  for (const auto& d : inv.devices()) {
    Assessment as = assessor(d);  // with the companions, which list leaves to show
    Json companions = Json::array();
    for (const auto& c : as.companions) companions.push_back(c.str());
    out.push_back({{"address", d.address.str()},
                   {"id", d.id_pair()},
                   {"kind", d.kind()},
                   {"name", device_title(d)},
                   {"driver", or_null(d.driver)},
                   {"iommu_group", or_null(d.iommu_group)},
                   {"verdict", verdict_id(as.verdict)},
                   {"reason", as.reason},
                   {"companions", companions}});
  }
  return out;
}

}  // namespace

int run_facts(Context& ctx, const Args&) {
  ctx.json = true;
  auto inv = ctx.inventory();
  if (!inv) return fail(ctx, inv.error());
  bool iommu = (*inv)->iommu_groups_present();
  Assessor assessor(ctx.groups(), ctx.impact(), iommu);
  Json facts{{"schema", "pcipass.facts/1"}, {"pcipass_version", PCIPASS_VERSION}};
  facts.update(readiness_json(ctx));
  facts["iommu_groups_present"] = iommu;
  facts["groups"] = groups_json(ctx.groups(), ctx.impact());
  facts["devices"] = devices_json(**inv, assessor);
  ctx.out << dump_json(facts) << '\n';
  return kExitOk;
}

}  // namespace pcipass::cli
