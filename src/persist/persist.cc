#include "persist/persist.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "change/store.h"
#include "host/module_loader.h"
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
  if (!existed && now.empty()) return out;
  if (!fs.is_dir(kAssignmentsDir)) out.push_back(Change::dir_create(kAssignmentsDir, 0755));
  out.push_back(Change::file_write(kAssignmentsPath, render_assignments(now), 0644));
  return out;
}

}  // namespace

std::vector<Change> store_changes(const HostFs& fs, const Assignments& store) {
  bool existed = fs.type(kAssignmentsPath, false) != FileType::kMissing;
  std::vector<Change> plan = store_plan(fs, store, existed);
  if (store.empty()) return plan;
  auto unit = enable_plan(fs);
  plan.insert(plan.end(), unit.begin(), unit.end());
  return plan;
}

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

// The store with the PF's "sriov" entry put (`entry`) or dropped (null), as a plan with the
// unit's when it is put.
Result<std::vector<Change>> sriov_plan(const HostFs& fs, const PciAddress& pf,
                                       const SriovEntry* entry, PersistReport& report) {
  Assignments store = TRY(load_assignments(fs));
  bool existed = fs.type(kAssignmentsPath, false) != FileType::kMissing;
  report.devices.clear();
  bool changed = entry ? store.put_sriov(*entry) : store.erase_sriov(pf);
  if (!entry && !changed) return std::vector<Change>{};
  report.devices.push_back(pf);
  std::vector<Change> plan = store_plan(fs, store, existed);
  if (!entry) return plan;
  auto unit = enable_plan(fs);
  report.enabled_unit = !unit.empty();
  plan.insert(plan.end(), unit.begin(), unit.end());
  return plan;
}

}  // namespace

Result<PersistReport> vf_create_persist(HostFs& fs, const sriov::CreateRequest& req,
                                        const assign::Environment& env, const std::string& command,
                                        sriov::Report& report) {
  PersistReport out;
  assign::DurableFiles files;
  files.plan = [&](const std::vector<PciAddress>& vfs,
                   const Inventory& inv) -> Result<std::vector<Change>> {
    const Device* pf = inv.find(req.pf);
    if (!pf) return Error::not_found(fmt::format("no PCI device {}", req.pf.str()), "");
    SriovEntry e;
    e.pf = req.pf;
    e.vendor = pf->vendor;
    e.device = pf->device;
    e.num_vfs = req.count;
    e.drivers_autoprobe = !req.bind && !req.no_autoprobe;
    e.driver = req.bind.value_or("");
    e.vfs = vfs;
    return sriov_plan(fs, req.pf, &e, out);
  };
  files.run = {command, env.process.time_now(), req.dry_run};
  sriov::CreateRequest r = req;
  r.durable = &files;
  report = TRY(sriov::create(fs, r, env));
  if (!report.durable.changed) out.enabled_unit = false;
  out.warnings = unit_warnings(fs);
  return out;
}

Result<PersistReport> vf_remove_persist(HostFs& fs, const sriov::RemoveRequest& req,
                                        const assign::Environment& env, const std::string& command,
                                        sriov::Report& report) {
  PersistReport out;
  assign::DurableFiles files;
  files.plan = [&](const std::vector<PciAddress>&, const Inventory&) {
    return sriov_plan(fs, req.pf, nullptr, out);
  };
  files.run = {command, env.process.time_now(), req.dry_run};
  sriov::RemoveRequest r = req;
  r.durable = &files;
  report = TRY(sriov::remove(fs, r, env));
  return out;
}

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
    case Outcome::kConfigured:
      return "configured";
    case Outcome::kAlreadyConfigured:
      return "already-configured";
  }
  return "?";
}

bool ApplyReport::ok() const {
  return std::all_of(devices.begin(), devices.end(),
                     [](const Applied& a) {
                       return a.outcome == Outcome::kBound || a.outcome == Outcome::kAlreadyBound;
                     }) &&
         std::all_of(sriov.begin(), sriov.end(), [](const SriovApplied& a) {
           return a.outcome == Outcome::kConfigured || a.outcome == Outcome::kAlreadyConfigured;
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

void failed(SriovApplied& a, Outcome o, std::string message, std::string fix) {
  a.outcome = o;
  a.message = std::move(message);
  a.fix = std::move(fix);
}

// A PF with no driver at boot (its module not loaded yet, so no sriov_configure): its driver is
// loaded by the PF's modalias, as udev's coldplug would, and the kernel probes the PF. True when
// the PF has a driver afterwards; otherwise `a` says why not.
bool load_pf_driver(HostFs& fs, const assign::Environment& env, bool dry, SriovApplied& a,
                    ApplyReport& report) {
  std::string pf = a.desired.pf.str();
  std::string path = change::device_dir(a.desired.pf) + "/modalias";
  auto alias = fs.read(path, 256);
  std::string fix = fmt::format(
      "load the PF's driver (`modprobe` its module; `pcipass show {}` names it), then run "
      "`pcipass apply`",
      pf);
  if (!alias) {
    failed(a, Outcome::kFailed,
           fmt::format("{} has no driver and its modalias is unreadable ({}): its VFs cannot be "
                       "made",
                       pf, alias.error().message),
           fix);
    return false;
  }
  std::string m = *alias;
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  a.module = m;
  if (dry) {
    failed(a, Outcome::kFailed,
           fmt::format("{} has no driver: apply loads the module for its modalias {} first; a "
                       "dry run loads nothing, so the VF changes that follow are not shown",
                       pf, m),
           "run `pcipass apply` without --dry-run");
    return false;
  }
  std::unique_ptr<ModuleLoader> own;
  ModuleLoader* loader = env.loader;
  if (!loader) loader = (own = make_kmod_loader(env.process, fs)).get();
  Status loaded = loader->load(m);
  if (!loaded) {
    failed(a, Outcome::kFailed,
           fmt::format("{} has no driver, and loading the module for its modalias {} failed: {}",
                       pf, m, loaded.error().message),
           fix);
    return false;
  }
  report.steps.push_back({change::StepKind::kModule, m, {}, {}});
  if (fs.exists(change::device_dir(a.desired.pf) + "/driver")) return true;
  failed(a, Outcome::kFailed,
         fmt::format("{} still has no driver after the module for its modalias {} was loaded: "
                     "the kernel makes a PF's VFs only through its driver",
                     pf, m),
         fmt::format("bind the PF to its driver (`echo {} > /sys/bus/pci/drivers_probe`), then "
                     "run `pcipass apply`",
                     pf));
  return false;
}

// One recorded PF: the card checked, its driver loaded if need be, then vf create's
// transaction (autoprobe off, sriov_numvfs through 0, each VF bound by address).
void apply_sriov_entry(HostFs& fs, const assign::Environment& env, bool dry, SriovApplied& a,
                       ApplyReport& report) {
  const SriovEntry& want = a.desired;
  std::string pf = want.pf.str();
  auto inv = Inventory::scan(fs, nullptr);
  if (!inv) return failed(a, Outcome::kFailed, inv.error().message, inv.error().fix);
  const Device* d = inv->find(want.pf);
  std::string forget = fmt::format(
      "if the card was taken out or changed, drop the PF's entry from the \"sriov\" list of {} "
      "(or run `pcipass vf remove --persist {}` while it is there)",
      kAssignmentsPath, pf);
  if (!d)
    return failed(
        a, Outcome::kAbsent,
        fmt::format("{} is persisted with {} VFs but no device is there", pf, want.num_vfs),
        forget);
  a.actual = std::pair{d->vendor, d->device};
  a.pf_driver = d->driver;
  if (d->vendor != want.vendor || d->device != want.device)
    return failed(
        a, Outcome::kIdsDiffer,
        fmt::format("{} is persisted with {} VFs as {}, but the device there is {:04x}:{:04x}: "
                    "the card was moved or swapped, so pcipass does not configure it",
                    pf, want.num_vfs, want.ids(), d->vendor, d->device),
        forget);
  if (!d->driver) {
    if (!load_pf_driver(fs, env, dry, a, report)) return;
    inv = Inventory::scan(fs, nullptr);
    if (!inv) return failed(a, Outcome::kFailed, inv.error().message, inv.error().fix);
  }
  sriov::CreateRequest req;
  req.pf = want.pf;
  req.count = want.num_vfs;
  if (!want.driver.empty()) req.bind = want.driver;
  req.no_autoprobe = !want.drivers_autoprobe;
  req.dry_run = dry;
  req.inventory = &*inv;
  auto r = sriov::create(fs, req, env);
  if (!r) {
    const Error& e = r.error();
    return failed(a, e.kind == ErrorKind::kRefused ? Outcome::kRefused : Outcome::kFailed,
                  e.message, e.fix);
  }
  a.num_vfs_before = r->num_vfs_before;
  a.bound = r->bound;
  a.outcome = r->steps.empty() ? Outcome::kAlreadyConfigured : Outcome::kConfigured;
  if (!want.driver.empty() && r->num_vfs_before != r->num_vfs && r->created != want.vfs)
    report.warnings.push_back(fmt::format(
        "{}'s VFs appeared at other addresses than recorded; they are bound to {} where they are",
        pf, want.driver));
  for (auto& s : r->steps) report.steps.push_back(std::move(s));
}

}  // namespace

Result<ApplyReport> apply(HostFs& fs, const assign::Environment& env, bool dry_run) {
  ApplyReport report;
  report.store_present = fs.type(kAssignmentsPath, false) != FileType::kMissing;
  Assignments store = TRY(load_assignments(fs));
  // The PFs first: the VFs they make may be what the devices list names.
  for (const auto& e : store.sriov) {
    SriovApplied& a = report.sriov.emplace_back();
    a.desired = e;
    apply_sriov_entry(fs, env, dry_run, a, report);
  }
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
