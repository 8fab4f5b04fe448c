#include "persist/persist.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "change/store.h"
#include "persist/unit_text.h"

namespace pcipass::persist {

namespace {

using change::Change;

std::vector<std::string> unit_dirs() {
  std::vector<std::string> out = {kInstalledUnitDir, "/usr/local/lib/systemd/system",
                                  "/usr/lib/systemd/system", "/lib/systemd/system"};
  std::vector<std::string> unique;
  for (auto& d : out)
    if (std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(d);
  return unique;
}

// The store's new bytes as a plan: its directory, then the file (nothing when it is absent and
// stays empty).
std::vector<Change> store_plan(const HostFs& fs, const Assignments& now, bool existed) {
  std::vector<Change> out;
  if (!existed && now.devices.empty()) return out;
  if (!fs.is_dir(kAssignmentsDir)) out.push_back(Change::dir_create(kAssignmentsDir, 0755));
  out.push_back(Change::file_write(kAssignmentsPath, render_assignments(now), 0644));
  return out;
}

}  // namespace

const char* unit_text() {
  return kUnitText;
}

std::optional<std::string> find_unit(const HostFs& fs) {
  if (fs.type(kEtcUnitPath, false) != FileType::kMissing) return std::string(kEtcUnitPath);
  for (const auto& d : unit_dirs()) {
    std::string p = d + "/" + kUnitName;
    if (fs.exists(p)) return p;
  }
  return std::nullopt;
}

bool unit_enabled(const HostFs& fs) {
  return fs.type(kWantsLink, false) == FileType::kLink;
}

std::vector<Change> enable_plan(const HostFs& fs) {
  std::vector<Change> out;
  auto unit = find_unit(fs);
  bool enabled = unit_enabled(fs);
  if (unit && enabled) return out;
  // The .wants directory first: it makes /etc/systemd/system too when that is missing, so a
  // rollback (last change first) removes the unit file before that directory. (Enabled, the
  // .wants directory and so /etc/systemd/system exist.)
  if (!enabled && !fs.is_dir(kWantsDir)) out.push_back(Change::dir_create(kWantsDir, 0755));
  if (!unit) {
    out.push_back(Change::file_write(kEtcUnitPath, kUnitText, 0644));
    unit = kEtcUnitPath;
  }
  if (!enabled) out.push_back(Change::link(kWantsLink, *unit));
  return out;
}

namespace {

std::vector<std::string> unit_warnings(const HostFs& fs) {
  std::vector<std::string> out;
  if (!fs.exists(kInstalledBinary))
    out.push_back(fmt::format(
        "{} runs {}, which is not there: install pcipass (`cmake --install build`) so that the "
        "devices are bound at boot",
        kUnitName, kInstalledBinary));
  return out;
}

// The store with `devices` recorded for `driver`, or removed, as a plan with the unit's.
Result<std::vector<Change>> persist_plan(const HostFs& fs, const std::vector<PciAddress>& devices,
                                         const Inventory& inv, const std::string* driver,
                                         PersistReport& report) {
  Assignments store = TRY(load_assignments(fs));
  bool existed = fs.type(kAssignmentsPath, false) != FileType::kMissing;
  report.devices.clear();
  for (const auto& a : devices) {
    const Device* d = inv.find(a);
    if (driver && d) {
      store.put(assignment_for(*d, *driver));
      report.devices.push_back(a);
    } else if (!driver && store.erase(a)) {
      report.devices.push_back(a);
    }
  }
  std::vector<Change> plan = store_plan(fs, store, existed);
  if (!driver) return plan;
  auto unit = enable_plan(fs);
  report.enabled_unit = !unit.empty();
  plan.insert(plan.end(), unit.begin(), unit.end());
  return plan;
}

}  // namespace

Result<PersistReport> bind_persist(HostFs& fs, const assign::BindRequest& req,
                                   const assign::Environment& env, const std::string& command,
                                   assign::BindReport& report) {
  PersistReport out;
  assign::DurableFiles files;
  files.plan = [&](const std::vector<PciAddress>& devices, const Inventory& inv) {
    return persist_plan(fs, devices, inv, &req.driver, out);
  };
  files.run = {command, env.process.time_now(), req.dry_run};
  assign::BindRequest r = req;
  r.durable = &files;
  report = TRY(assign::bind(fs, r, env));
  if (!report.durable.changed) out.enabled_unit = false;
  out.warnings = unit_warnings(fs);
  return out;
}

Result<PersistReport> release_persist(HostFs& fs, const assign::ReleaseRequest& req,
                                      const assign::Environment& env, const std::string& command,
                                      assign::ReleaseReport& report,
                                      const std::vector<PciAddress>& gone) {
  PersistReport out;
  if (!gone.empty()) {
    Assignments store = TRY(load_assignments(fs));
    for (const auto& a : gone)
      if (!store.find(a))
        return Error::not_found(
            fmt::format("no PCI device {} on this host, and {} does not hold it", a.str(),
                        kAssignmentsPath),
            "see `pcipass status` for what is persisted");
  }
  assign::DurableFiles files;
  files.plan = [&](std::vector<PciAddress> devices, const Inventory& inv) {
    devices.insert(devices.end(), gone.begin(), gone.end());
    return persist_plan(fs, devices, inv, nullptr, out);
  };
  files.run = {command, env.process.time_now(), req.dry_run};
  if (req.devices.empty()) {
    // Nothing on the host to release: only the store changes.
    std::vector<Change> plan = TRY(files.plan({}, Inventory()));
    change::Ports ports{env.loader, env.runner, env.sleep_ms,
                        [&env] { return env.process.time_now(); }, env.vf_links};
    auto done = TRY(change::apply_durable(fs, plan, ports, files.run));
    report.dry_run = req.dry_run;
    report.steps = std::move(done.steps);
    report.durable = {done.changed, done.id};
    return out;
  }
  assign::ReleaseRequest r = req;
  r.durable = &files;
  report = TRY(assign::release(fs, r, env));
  return out;
}

const char* outcome_id(Outcome o) {
  switch (o) {
    case Outcome::kBound:
      return "bound";
    case Outcome::kAlreadyBound:
      return "already-bound";
    case Outcome::kIdsDiffer:
      return "ids-differ";
    case Outcome::kAbsent:
      return "absent";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kFailed:
      return "failed";
  }
  return "?";
}

bool ApplyReport::ok() const {
  return std::all_of(devices.begin(), devices.end(), [](const Applied& a) {
    return a.outcome == Outcome::kBound || a.outcome == Outcome::kAlreadyBound;
  });
}

namespace {

// One bind per driver and IOMMU group: each group is its own transaction.
void apply_group(HostFs& fs, const assign::Environment& env, const Inventory& inv, bool dry,
                 std::vector<Applied*>& group, ApplyReport& report) {
  assign::BindRequest req;
  for (auto* a : group) req.devices.push_back(a->before.desired.address);
  req.driver = group.front()->before.desired.driver;
  req.dry_run = dry;
  req.inventory = &inv;
  auto r = assign::bind(fs, req, env);
  if (!r) {
    const Error& e = r.error();
    for (auto* a : group) {
      a->outcome = e.kind == ErrorKind::kRefused ? Outcome::kRefused : Outcome::kFailed;
      a->message = e.message;
      a->fix = e.fix;
    }
    return;
  }
  std::vector<PciAddress> moves = r->plan.moves();
  for (auto* a : group) {
    const auto& addr = a->before.desired.address;
    bool moved = std::find(moves.begin(), moves.end(), addr) != moves.end();
    a->outcome = moved ? Outcome::kBound : Outcome::kAlreadyBound;
  }
  for (auto& s : r->steps) report.steps.push_back(std::move(s));
  for (auto& w : r->warnings)
    if (std::find(report.warnings.begin(), report.warnings.end(), w) == report.warnings.end())
      report.warnings.push_back(std::move(w));
}

}  // namespace

Result<ApplyReport> apply(HostFs& fs, const assign::Environment& env, bool dry_run) {
  ApplyReport report;
  report.store_present = fs.type(kAssignmentsPath, false) != FileType::kMissing;
  Assignments store = TRY(load_assignments(fs));
  if (store.devices.empty()) return report;
  Inventory inv = TRY(scan_assigned(fs, store));
  std::map<std::pair<std::string, int>, std::vector<Applied*>> groups;
  report.devices.reserve(store.devices.size());
  for (auto& c : compare(inv, store)) {
    Applied& a = report.devices.emplace_back();
    a.before = std::move(c);
    if (a.before.match == Match::kAbsent || a.before.match == Match::kIdsDiffer) {
      a.outcome = a.before.match == Match::kAbsent ? Outcome::kAbsent : Outcome::kIdsDiffer;
      a.message = a.before.message;
      a.fix = a.before.fix;
      continue;
    }
    const Device* d = inv.find(a.before.desired.address);
    groups[{a.before.desired.driver, d->iommu_group.value_or(-1)}].push_back(&a);
  }
  for (auto& [key, members] : groups) apply_group(fs, env, inv, dry_run, members, report);
  return report;
}

bool DesiredState::all_match() const {
  return std::all_of(devices.begin(), devices.end(),
                     [](const Comparison& c) { return c.match == Match::kMatches; });
}

Result<DesiredState> desired_state(const HostFs& fs) {
  DesiredState out;
  out.store_present = fs.type(kAssignmentsPath, false) != FileType::kMissing;
  Assignments store = TRY(load_assignments(fs));
  if (store.devices.empty()) return out;
  Inventory inv = TRY(scan_assigned(fs, store));
  out.devices = compare(inv, store);
  return out;
}

std::vector<CheckResult> persist_checks(const HostFs& fs) {
  std::vector<CheckResult> out;
  auto state = desired_state(fs);
  if (!state) {
    out.push_back({"persisted-devices", "Persisted devices", CheckStatus::kFail,
                   state.error().message, state.error().fix});
    return out;
  }
  bool enabled = unit_enabled(fs);
  for (const auto& c : state->devices) {
    CheckResult r{"persisted-device",
                  "Persisted " + c.desired.address.str(),
                  CheckStatus::kPass,
                  c.message,
                  {}};
    if (c.match == Match::kMatches) {
      out.push_back(std::move(r));
      continue;
    }
    r.status = c.match == Match::kIdsDiffer ? CheckStatus::kFail : CheckStatus::kWarn;
    r.fix = c.fix;
    if (c.match == Match::kOtherDriver)
      r.detail += enabled ? ": pcipass apply did not run at this boot, or lost the race to the "
                            "host driver (early binding, docs/persist.md)"
                          : fmt::format(": the boot applier is not enabled (no {})", kWantsLink);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace pcipass::persist
