#include "assign/assign.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "assign/accounts.h"
#include "change/executor.h"
#include "change/store.h"
#include "host/limits.h"
#include "pci/groups.h"

namespace pcipass::assign {

namespace {

using change::Change;
using change::Procedure;

// The runtime record: the journal under /run/pcipass, written before the first device moves.
class JournalRecord : public change::Record {
 public:
  JournalRecord(HostFs& fs, const Journal& j) : fs_(fs), j_(j) {}
  Status begin(std::vector<Step>& steps, bool dry) override {
    steps.push_back({change::StepKind::kJournal, kJournalPath, "writing", {}});
    if (dry) return {};
    return save_journal(fs_, j_);
  }
  Status discard() override { return fs_.remove(kJournalPath); }
  Texts texts() const override {
    return {"every device was rolled back to where it was",
            "the devices were rolled back, but the journal could not be removed: run `pcipass "
            "recover`",
            "run `pcipass recover` once the cause is fixed (the journal in /run/pcipass knows the "
            "original drivers)"};
  }

 private:
  HostFs& fs_;
  const Journal& j_;
};

change::Ports ports(const Environment& env, ModuleLoader* loader) {
  return {loader, env.runner, env.sleep_ms, [&env] { return env.process.time_now(); },
          env.vf_links};
}

// The inventory the caller scanned, or one scanned here.
Result<const Inventory*> inventory(const HostFs& fs, const Inventory* given,
                                   std::optional<Inventory>& own) {
  if (given) return given;
  own = TRY(Inventory::scan(fs, nullptr));
  return &*own;
}

Error pending_error(const Journal& j) {
  return Error::state(
      fmt::format("an interrupted pcipass run left a journal ({}: {})", kJournalPath, j.summary()),
      "run `pcipass recover` to put the devices back first");
}

// Lock and refuse while a journal is pending (not for dry runs: they write nothing).
Result<std::unique_ptr<HostFs::Lock>> begin(HostFs& fs, bool dry) {
  if (dry) return std::unique_ptr<HostFs::Lock>();
  TRY(fs.make_dirs(kRunDir, 0700));
  auto lock = TRY(fs.lock(kLockPath));
  auto pending = TRY(load_journal(fs));
  if (pending) return pending_error(*pending);
  return lock;
}

// The state file after a journal's operation succeeded.
Status apply_to_state(HostFs& fs, const Journal& j) {
  StateFile state = TRY(load_state(fs));
  for (const auto& d : j.devices) {
    if (j.operation == "bind") {
      if (d.after.driver != j.driver) {  // a VF moved off before its PF's VFs were remade
        state.erase(d.address);
        continue;
      }
      if (const Binding* old = state.find(d.address); old && old->driver == j.driver) continue;
      state.put({d.address, d.group, j.driver, d.before, j.owner});
    } else {
      state.erase(d.address);
    }
  }
  return save_state(fs, state);
}

// Commit: mark the journal done, update the state, drop the journal.
Status commit(HostFs& fs, const Journal& j, std::vector<Step>& steps, bool dry) {
  steps.push_back({change::StepKind::kJournal, kJournalPath, "committed", {}});
  steps.push_back({change::StepKind::kState, kStatePath, "", {}});
  if (dry) return {};
  Journal done = j;
  done.phase = "committed";
  TRY(save_journal(fs, done));
  TRY(apply_to_state(fs, j));
  TRY(fs.remove(kJournalPath));
  return {};
}

std::string mib(uint64_t bytes) {
  if (bytes >= (1ULL << 30) && bytes % (1ULL << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  if (bytes >= (1ULL << 20)) return fmt::format("{} MiB", bytes >> 20);
  return fmt::format("{} KiB", bytes >> 10);
}

}  // namespace

Result<std::vector<ProcessHold>> group_users(const HostFs& fs, int group) {
  std::string node = "/dev/vfio/" + std::to_string(group);
  auto users = find_holders(fs, [&](const std::string& t) { return t == node; });
  if (!users)
    return Error::state(fmt::format("cannot tell whether a process holds {} open: {}", node,
                                    users.error().describe()),
                        "mount /proc and run pcipass as root, then try again");
  return users;
}

std::string memlock_warning(const HostFs& fs) {
  auto memlock = read_memlock_limit(fs);
  if (!memlock || !memlock->soft || *memlock->soft >= (1ULL << 30)) return {};
  return fmt::format(
      "the memlock limit is {} (ulimit -l): QEMU pins all guest memory for a VFIO device, so a "
      "VM "
      "started with this limit fails to map its RAM; raise it for the VM's user (LimitMEMLOCK= "
      "in its "
      "systemd unit, memlock in /etc/security/limits.conf; libvirt raises it itself)",
      mib(*memlock->soft));
}

namespace {

// bind's plan: the driver's module when it is missing, each device moved, then per group the
// node udev creates and its owner.
std::vector<Change> bind_plan(const HostFs& fs, const BindRequest& req, const Plan& plan,
                              const std::vector<PciAddress>& moves,
                              const std::optional<Account>& owner, const Environment& env) {
  std::vector<Change> out;
  std::string drivers_dir = "/sys/bus/pci/drivers/" + req.driver;
  if (!moves.empty() && !fs.is_dir(drivers_dir))
    out.push_back(Change::module(module_for_driver(req.driver), drivers_dir));
  for (const auto& a : moves)
    out.push_back(Change::device_move(a, {req.driver, req.driver}, Procedure::kBind));
  if (req.driver != "vfio-pci") return out;
  for (const auto& g : plan.groups) {
    std::string node = "/dev/vfio/" + std::to_string(g.id);
    out.push_back(Change::wait_for(node, env.node_wait_ms,
                                   fmt::format("after group {} was bound to vfio-pci", g.id)));
    if (owner) out.push_back(Change::owner(node, owner->uid, owner->gid));
  }
  return out;
}

// The devices a bind --persist records: the requested ones, every one it moves, and the group's
// others already on the driver (at boot the group is viable only if they are bound too).
std::vector<PciAddress> durable_devices(const Plan& plan, const std::vector<PciAddress>& moves) {
  std::set<PciAddress> out(moves.begin(), moves.end());
  for (const auto& g : plan.groups)
    for (const auto& d : g.devices)
      if (d.requested || ((d.action == Action::kViable || d.action == Action::kUnchanged) &&
                          d.driver == plan.driver))
        out.insert(d.address);
  return {out.begin(), out.end()};
}

// The durable half of a plan whose first `n` changes are `durable`'s files: a change set when
// they change anything (they leave the plan when they don't), begun before `journal` (when
// the plan also moves devices).
struct DurablePart {
  std::unique_ptr<change::DurableSet> set;
  change::Record* record = nullptr;  // the one the executor is given
};

DurablePart durable_part(HostFs& fs, const DurableFiles* durable, std::vector<Change>& changes,
                         size_t n, bool dry, bool moves, change::Record& journal) {
  DurablePart out;
  out.record = &journal;
  if (!durable) return out;
  change::DurableRun run = durable->run;
  run.dry_run = dry;
  out.set = std::make_unique<change::DurableSet>(fs, changes, run);
  if (!out.set->changed()) {
    changes.erase(changes.begin(), changes.begin() + static_cast<std::ptrdiff_t>(n));
    out.set.reset();
    return out;
  }
  out.record = &out.set->record(moves ? &journal : nullptr);
  return out;
}

// Once the plan ran: the change set is applied; a failure to say so rolls everything back.
Status finish_durable(DurablePart& part, change::Executor& ex, std::vector<Change>& changes,
                      DurableOutcome& outcome) {
  if (!part.set) return {};
  outcome.changed = true;
  Status m = part.set->mark_applied(ex.steps, ex.dry_run());
  if (!m) return ex.fail(changes, *part.record, std::move(m).error());
  if (!ex.dry_run()) outcome.id = part.set->id();
  return {};
}

// The loader the plan needs: the caller's, or libkmod's when a module is to be loaded for real.
ModuleLoader* loader_for(const HostFs& fs, const std::vector<Change>& plan, bool dry,
                         const Environment& env, std::unique_ptr<ModuleLoader>& own) {
  if (env.loader || dry) return env.loader;
  for (const auto& c : plan)
    if (c.kind == change::Kind::kModuleLoad) return (own = make_kmod_loader(env.process, fs)).get();
  return nullptr;
}

}  // namespace

Result<BindPlanned> plan_bind(const HostFs& fs, const BindRequest& req, const Inventory& inv,
                              const Environment& env) {
  if (req.driver != "vfio-pci" && req.driver != "pci-stub")
    return Error::invalid(fmt::format("unsupported driver '{}'", req.driver),
                          "use --driver vfio-pci or pci-stub");
  if (req.devices.empty())
    return Error::invalid("no device named", "name a device: pcipass bind 0000:01:00.0");
  std::optional<Account> owner;
  if (!req.owner.empty()) {
    if (req.driver != "vfio-pci")
      return Error::invalid("--owner applies to /dev/vfio/GROUP, which only vfio-pci creates",
                            "drop --owner, or bind to vfio-pci");
    owner = TRY(resolve_owner(fs, req.owner));
  }
  GroupMap groups = GroupMap::build(inv);
  HostImpact impact = HostImpact::scan(fs, inv, env.impact);
  BindPlanned out;
  BindReport& report = out.report;
  report.dry_run = req.dry_run;
  report.plan =
      TRY(make_plan(inv, groups, impact, req.devices, {req.driver, req.with_group, req.force}));
  const Plan& plan = report.plan;
  if (!plan.refusals.empty()) return plan.refusal_error("bind");
  if (req.driver == "vfio-pci")
    if (auto w = memlock_warning(fs); !w.empty()) report.warnings.push_back(w);
  for (const auto& g : plan.groups)
    for (const auto& d : g.devices)
      if (d.action == Action::kUnchanged && d.requested) report.unchanged.push_back(d.address);
  out.moves = plan.moves();
  out.changes = bind_plan(fs, req, plan, out.moves, owner, env);
  report.devices = durable_devices(plan, out.moves);
  return out;
}

Result<BindReport> bind(HostFs& fs, const BindRequest& req, const Environment& env) {
  if (req.driver != "vfio-pci" && req.driver != "pci-stub")
    return Error::invalid(fmt::format("unsupported driver '{}'", req.driver),
                          "use --driver vfio-pci or pci-stub");
  if (req.devices.empty())
    return Error::invalid("no device named", "name a device: pcipass bind 0000:01:00.0");
  auto lock = TRY(begin(fs, req.dry_run));
  std::optional<Inventory> own_inv;
  const Inventory& inv = *TRY(inventory(fs, req.inventory, own_inv));
  BindPlanned planned = TRY(plan_bind(fs, req, inv, env));
  BindReport report = std::move(planned.report);
  const Plan& plan = report.plan;
  const std::vector<PciAddress>& moves = planned.moves;
  std::vector<Change>& changes = planned.changes;
  size_t files = 0;
  if (req.durable) {
    auto durable = TRY(req.durable->plan(report.devices, inv));
    files = durable.size();
    changes.insert(changes.begin(), durable.begin(), durable.end());
  }
  std::unique_ptr<ModuleLoader> own_loader;
  change::Executor ex(fs, ports(env, loader_for(fs, changes, req.dry_run, env, own_loader)),
                      req.dry_run);
  TRY(ex.capture(changes));
  Journal j;
  j.operation = "bind";
  j.driver = req.driver;
  j.owner = req.owner;
  j.pid = static_cast<int>(::getpid());
  j.add(changes, [&](const PciAddress& a) { return inv.find(a)->iommu_group; });
  JournalRecord record(fs, j);
  DurablePart part =
      durable_part(fs, req.durable, changes, files, req.dry_run, !moves.empty(), record);
  TRY(ex.run(changes, part.record));
  TRY(finish_durable(part, ex, changes, report.durable));
  for (const auto& g : plan.groups) report.groups.push_back(g.id);
  if (!req.dry_run) report.bound = moves;
  if (!moves.empty()) {
    Status c = commit(fs, j, ex.steps, req.dry_run);
    if (!c) {
      auto on_disk = load_journal(fs);
      if (on_disk.ok() && on_disk->has_value() && (*on_disk)->phase != "committed") {
        report.bound.clear();
        report.durable = {};
        return ex.fail(changes, *part.record, std::move(c).error());
      }
      Error e = std::move(c).error();
      e.fix = "the devices are bound; run `pcipass recover` to finish recording them";
      return e;
    }
  }
  report.steps = std::move(ex.steps);
  return report;
}

namespace {

// The devices a release acts on: those named and, with --with-group, the others of their groups
// that pcipass bound. Refuses an unknown device and a bridge.
Result<std::set<PciAddress>> release_set(const Inventory& inv, const StateFile& state,
                                         const ReleaseRequest& req) {
  std::set<PciAddress> wanted;
  for (const auto& a : req.devices) {
    const Device* d = inv.find(a);
    if (!d)
      return Error::not_found(fmt::format("no PCI device {} on this host", a.str()),
                              "see `pcipass status`");
    if (d->is_bridge() || d->is_host_bridge())
      return Error::invalid(fmt::format("{} is a bridge: pcipass never binds bridges", a.str()),
                            "name the devices below it (see `pcipass status`)");
    wanted.insert(a);
    if (req.with_group && d->iommu_group)
      for (const auto& b : state.bindings)
        if (b.group == d->iommu_group && inv.find(b.address)) wanted.insert(b.address);
  }
  return wanted;
}

// Where a device goes back to: the state pcipass found it in, or, when pcipass did not bind it, a
// vfio/pci-stub override cleared (any other kept) and the kernel's pick of the host driver.
// nullopt: it is back already (listed in report.unchanged; a binding is erased from `state`).
std::optional<JournalEntry> release_target(const HostFs& fs, const Inventory& inv,
                                           const PciAddress& a, StateFile& state,
                                           ReleaseReport& report, bool& state_changed) {
  DeviceState cur = read_device_state(fs, a);
  const Binding* b = state.find(a);
  DeviceState target;
  if (b && cur == b->original) {
    report.unchanged.push_back(a);
    state.erase(a);
    state_changed = true;
    return std::nullopt;
  }
  if (b) {
    target = b->original;
  } else {
    target.any_driver = true;
    if (cur.override && !driver_keeps_group_viable(cur.override)) target.override = cur.override;
    if (cur.driver && !driver_keeps_group_viable(cur.driver)) {
      report.unchanged.push_back(a);
      return std::nullopt;
    }
  }
  return JournalEntry{a, inv.find(a)->iommu_group, cur, target};
}

// Refuses while a process holds a group's /dev/vfio node open: the VM still uses the devices.
Status refuse_held_groups(const HostFs& fs, const std::vector<JournalEntry>& moves) {
  std::set<int> groups;
  for (const auto& d : moves)
    if (d.group) groups.insert(*d.group);
  for (int g : groups) {
    auto users = TRY(group_users(fs, g));
    if (users.empty()) continue;
    std::vector<std::string> who, in_group;
    for (const auto& u : users) who.push_back(fmt::format("{} (pid {})", u.comm, u.pid));
    for (const auto& d : moves)
      if (d.group == g) in_group.push_back(d.address.str());
    return Error::refused(
        fmt::format("refusing to release {}: /dev/vfio/{} is held open by {}",
                    fmt::join(in_group, ", "), g, fmt::join(who, ", ")),
        fmt::format("shut the VM down (or stop pid {}), then release", users.front().pid));
  }
  return {};
}

// After the devices moved: the state file saved and the journal committed. A failure before the
// journal says committed rolls the devices back now (`recover` would do it later).
Status commit_release(HostFs& fs, const StateFile& state, bool state_changed, const Journal& j,
                      change::Executor& ex, std::vector<Change>& changes, DurablePart& part,
                      ReleaseReport& report) {
  bool moves = !j.devices.empty();
  Status c = state_changed ? save_state(fs, state) : Status();
  if (c && moves) c = commit(fs, j, ex.steps, false);
  if (c) return c;
  auto on_disk = load_journal(fs);
  if (moves && on_disk.ok() && on_disk->has_value() && (*on_disk)->phase != "committed") {
    report.durable = {};
    return ex.fail(changes, *part.record, std::move(c).error());
  }
  Error e = std::move(c).error();
  e.fix = "the devices are back on the host; run `pcipass recover` to finish updating the state";
  return e;
}

}  // namespace

Result<ReleaseReport> release(HostFs& fs, const ReleaseRequest& req, const Environment& env) {
  if (req.devices.empty())
    return Error::invalid("no device named", "name a device: pcipass release 0000:01:00.0");
  auto lock = TRY(begin(fs, req.dry_run));
  std::optional<Inventory> own_inv;
  const Inventory& inv = *TRY(inventory(fs, req.inventory, own_inv));
  StateFile state = TRY(load_state(fs));
  std::set<PciAddress> wanted = TRY(release_set(inv, state, req));

  ReleaseReport report;
  report.dry_run = req.dry_run;
  report.devices.assign(wanted.begin(), wanted.end());
  Journal j;
  j.operation = "release";
  j.pid = static_cast<int>(::getpid());
  bool state_changed = false;
  for (const auto& a : wanted)
    if (auto e = release_target(fs, inv, a, state, report, state_changed))
      j.devices.push_back(std::move(*e));
  TRY(refuse_held_groups(fs, j.devices));

  std::vector<Change> changes;
  if (req.durable) changes = TRY(req.durable->plan(report.devices, inv));
  size_t files = changes.size();
  if (j.devices.empty() && changes.empty()) {
    if (state_changed && !req.dry_run) TRY(save_state(fs, state));
    return report;
  }
  for (const auto& d : j.devices)
    changes.push_back(Change::device_move(d.address, d.after, Procedure::kRestore));
  bool moves = !j.devices.empty();
  change::Executor ex(fs, ports(env, env.loader), req.dry_run);
  TRY(ex.capture(changes));
  j.devices.clear();
  j.add(changes, [&](const PciAddress& a) { return inv.find(a)->iommu_group; });
  JournalRecord record(fs, j);
  DurablePart part = durable_part(fs, req.durable, changes, files, req.dry_run, moves, record);
  TRY(ex.run(changes, part.record));
  TRY(finish_durable(part, ex, changes, report.durable));
  if (req.dry_run) {
    if (moves) TRY(commit(fs, j, ex.steps, true));
    for (const auto& d : j.devices) report.released.push_back({d.address, d.before, d.after});
  } else {
    TRY(commit_release(fs, state, state_changed, j, ex, changes, part, report));
    for (const auto& d : j.devices)
      report.released.push_back({d.address, d.before, read_device_state(fs, d.address)});
  }
  report.steps = std::move(ex.steps);
  return report;
}

namespace {

std::optional<int> group_of(const HostFs& fs, const PciAddress& a) {
  auto name = fs.link_basename(device_dir(a) + "/iommu_group");
  int g = 0;
  if (!name || name->empty() || name->size() > 9 ||
      name->find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  for (char ch : *name) g = g * 10 + (ch - '0');
  return g;
}

}  // namespace

Result<std::vector<Step>> apply_runtime(HostFs& fs, std::vector<Change>& plan,
                                        const Environment& env, bool dry_run,
                                        const RuntimeRecord& kind, const RuntimeFiles* files) {
  auto lock = TRY(begin(fs, dry_run));
  std::unique_ptr<ModuleLoader> own_loader;
  change::Executor ex(fs, ports(env, loader_for(fs, plan, dry_run, env, own_loader)), dry_run);
  TRY(ex.capture(plan));
  Journal j;
  j.operation = kind.operation;
  j.driver = kind.driver;
  j.pid = static_cast<int>(::getpid());
  j.add(plan, [&](const PciAddress& a) { return group_of(fs, a); });
  JournalRecord record(fs, j);
  DurablePart part;
  part.record = &record;
  bool runtime = true;  // the plan has changes for the journal, not only files
  if (files && files->count) {
    DurableFiles durable{nullptr, files->run};
    runtime = std::any_of(plan.begin() + static_cast<std::ptrdiff_t>(files->count), plan.end(),
                          [](const Change& c) { return c.recorded(); });
    part = durable_part(fs, &durable, plan, files->count, dry_run, runtime, record);
  }
  TRY(ex.run(plan, part.record));
  DurableOutcome ignored;
  TRY(finish_durable(part, ex, plan, files && files->outcome ? *files->outcome : ignored));
  if (kind.operation != "write" && ex.began()) {
    for (auto& d : j.devices)
      if (!dry_run) d.group = group_of(fs, d.address);
    Status c = commit(fs, j, ex.steps, dry_run);
    if (!c) {
      auto on_disk = load_journal(fs);
      // The pair's record: a durable set marked applied is discarded with the rest.
      if (on_disk.ok() && on_disk->has_value() && (*on_disk)->phase != "committed")
        return ex.fail(plan, *part.record, std::move(c).error());
      Error e = std::move(c).error();
      e.fix = "the changes are made; run `pcipass recover` to finish recording them";
      return e;
    }
    return std::move(ex.steps);
  }
  if (ex.began() && (runtime || !part.set)) {
    ex.steps.push_back({change::StepKind::kJournal, kJournalPath, "removed", {}});
    if (!dry_run) {
      Status done = fs.remove(kJournalPath);
      if (!done) return ex.fail(plan, *part.record, std::move(done).error());
    }
  }
  return std::move(ex.steps);
}

namespace {

Status recover_runtime(HostFs& fs, const Environment& env, RecoverReport& report) {
  if (!fs.is_dir(kRunDir)) return {};
  auto lock = TRY(fs.lock(kLockPath));
  auto pending = TRY(load_journal(fs));
  if (!pending) return {};
  Journal j = std::move(*pending);
  report.pending = true;
  report.operation = j.operation;
  report.phase = j.phase;
  report.devices = j.devices;
  report.attributes = j.attributes;
  change::Executor ex(fs, ports(env, env.loader), false);
  if (j.phase == "committed") {
    TRY(apply_to_state(fs, j));
    ex.steps.push_back({change::StepKind::kState, kStatePath, "", {}});
  } else {
    std::vector<Change> changes = j.changes();
    Status rb = ex.roll_back(changes);
    if (!rb) {
      Error e = std::move(rb).error();
      e.fix = "fix the cause and run `pcipass recover` again; the journal is kept";
      return e;
    }
  }
  TRY(fs.remove(kJournalPath));
  report.steps = std::move(ex.steps);
  return {};
}

}  // namespace

Result<RecoverReport> recover(HostFs& fs, const Environment& env) {
  RecoverReport report;
  TRY(recover_runtime(fs, env, report));
  report.change_sets = TRY(change::recover_durable(fs, ports(env, env.loader)));
  return report;
}

Result<StatusReport> status(const HostFs& fs) {
  StatusReport report;
  report.pending = TRY(load_journal(fs));
  StateFile state = TRY(load_state(fs));
  for (const auto& b : state.bindings) {
    StatusEntry e;
    e.binding = b;
    e.present = fs.exists(device_dir(b.address));
    DeviceState cur = read_device_state(fs, b.address);
    e.driver = cur.driver;
    if (b.group) {
      e.node = fs.exists("/dev/vfio/" + std::to_string(*b.group));
      e.users = TRY(group_users(fs, *b.group));
    }
    if (!e.present)
      e.problem = "the device is gone (hot-unplugged or SR-IOV VFs removed)";
    else if (cur.driver != b.driver)
      e.problem =
          fmt::format("it is on {} now, not {}", cur.driver.value_or("no driver"), b.driver);
    else if (b.driver == "vfio-pci" && b.group && !e.node)
      e.problem = fmt::format("/dev/vfio/{} is missing", *b.group);
    e.holds = e.problem.empty();
    report.entries.push_back(std::move(e));
  }
  return report;
}

}  // namespace pcipass::assign
