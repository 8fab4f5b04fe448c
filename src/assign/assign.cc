#include "assign/assign.h"

#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "assign/accounts.h"
#include "host/limits.h"
#include "pci/groups.h"

namespace pcipass::assign {

std::string Step::text() const {
  if (kind == "module") return "load module " + path;
  if (kind == "chown") return fmt::format("chown {} {}", data, path);
  if (kind == "journal") return fmt::format("journal {} ({})", path, data);
  if (kind == "state") return "state " + path;
  std::string shown = data == "\n" ? std::string("\\n") : data;
  return fmt::format("write {}: {}", path, shown);
}

namespace {

constexpr const char* kDriversProbe = "/sys/bus/pci/drivers_probe";

void default_sleep(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (::nanosleep(&ts, &ts) != 0) {
  }
}

// Every change goes through here: recorded in order, made unless this is a dry run.
class Txn {
 public:
  Txn(HostFs& fs, bool dry) : fs_(fs), dry_(dry) {}

  Status write(const std::string& path, const std::string& data) {
    steps.push_back({"write", path, data});
    if (dry_) return {};
    return fs_.write(path, data);
  }

  // Bind one device to `driver`: driver_override, unbind, drivers_probe, verify.
  Status bind(const PciAddress& a, const std::string& driver) {
    std::string dir = device_dir(a);
    DeviceState cur = read_device_state(fs_, a);
    if (cur.override != driver) TRY(write(dir + "/driver_override", driver));
    if (cur.driver) TRY(write(dir + "/driver/unbind", a.str()));
    TRY(write(kDriversProbe, a.str()));
    if (dry_) return {};
    DeviceState now = read_device_state(fs_, a);
    if (now.driver != driver)
      return Error::state(fmt::format("{} did not bind to {} after drivers_probe: it is on {}",
                                      a.str(), driver, now.driver.value_or("no driver")),
                          "the kernel log (`dmesg`) has the driver's reason");
    return {};
  }

  // Bring a device to `target`, writing only what differs from its current state.
  Status restore(const PciAddress& a, const DeviceState& target) {
    std::string dir = device_dir(a);
    DeviceState cur = read_device_state(fs_, a);
    if (cur.override != target.override)
      TRY(write(dir + "/driver_override", target.override ? *target.override : std::string("\n")));
    if (target.any_driver) {
      if (!cur.driver || driver_keeps_group_viable(cur.driver)) {
        if (cur.driver) TRY(write(dir + "/driver/unbind", a.str()));
        TRY(write(kDriversProbe, a.str()));
      }
    } else if (cur.driver != target.driver) {
      if (cur.driver) TRY(write(dir + "/driver/unbind", a.str()));
      if (target.driver) {
        TRY(write(kDriversProbe, a.str()));
        if (!dry_) {
          DeviceState now = read_device_state(fs_, a);
          if (now.driver != target.driver) {
            if (now.driver) TRY(write(dir + "/driver/unbind", a.str()));
            TRY(write("/sys/bus/pci/drivers/" + *target.driver + "/bind", a.str()));
          }
        }
      }
    }
    if (dry_) return {};
    DeviceState now = read_device_state(fs_, a);
    if (now.override != target.override || (!target.any_driver && now.driver != target.driver))
      return Error::state(fmt::format("{} could not be put back on {}: it is on {}", a.str(),
                                      target.describe(), now.describe()),
                          "the kernel log (`dmesg`) has the driver's reason");
    return {};
  }

  // Every journal device back to its `before` state, last first; the first error is returned
  // after trying them all.
  Status roll_back(const Journal& j) {
    std::optional<Error> first;
    for (auto it = j.devices.rbegin(); it != j.devices.rend(); ++it) {
      Status s = restore(it->address, it->before);
      if (!s && !first) first = s.error();
    }
    if (first) return *first;
    return {};
  }

  std::vector<Step> steps;

 private:
  HostFs& fs_;
  bool dry_;
};

Error pending_error(const Journal& j) {
  return Error::state(
      fmt::format("an interrupted pcipass run left a journal ({}: {} of {} device{})", kJournalPath,
                  j.operation, j.devices.size(), j.devices.size() == 1 ? "" : "s"),
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
      if (const Binding* old = state.find(d.address); old && old->driver == j.driver) continue;
      state.put({d.address, d.group, j.driver, d.before, j.owner});
    } else {
      state.erase(d.address);
    }
  }
  return save_state(fs, state);
}

// Commit: mark the journal done, update the state, drop the journal.
Status commit(HostFs& fs, const Journal& j, std::vector<Step>& steps) {
  Journal done = j;
  done.phase = "committed";
  TRY(save_journal(fs, done));
  steps.push_back({"journal", kJournalPath, "committed"});
  TRY(apply_to_state(fs, j));
  steps.push_back({"state", kStatePath, ""});
  TRY(fs.remove(kJournalPath));
  return {};
}

// A failed operation: roll back and say so, or keep the journal for `pcipass recover`.
Error fail_and_roll_back(HostFs& fs, Txn& txn, const Journal& j, Error e) {
  Status rb = txn.roll_back(j);
  if (rb) {
    Status rm = fs.remove(kJournalPath);
    if (!rm) {
      e.fix =
          "the devices were rolled back, but the journal could not be removed: run `pcipass "
          "recover`";
      return e;
    }
    if (e.fix.empty())
      e.fix = "every device was rolled back to where it was";
    else
      e.fix += " (every device was rolled back to where it was)";
    return e;
  }
  Error out = e;
  out.message = fmt::format("{}; rolling back failed too: {}", e.message, rb.error().message);
  out.fix =
      "run `pcipass recover` once the cause is fixed (the journal in /run/pcipass knows the "
      "original drivers)";
  return out;
}

std::string mib(uint64_t bytes) {
  if (bytes >= (1ULL << 30) && bytes % (1ULL << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  if (bytes >= (1ULL << 20)) return fmt::format("{} MiB", bytes >> 20);
  return fmt::format("{} KiB", bytes >> 10);
}

}  // namespace

std::vector<ProcessHold> group_users(const HostFs& fs, int group) {
  std::string node = "/dev/vfio/" + std::to_string(group);
  return find_holders(fs, [&](const std::string& t) { return t == node; });
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

Result<BindReport> bind(HostFs& fs, const BindRequest& req, const Environment& env) {
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
  auto lock = TRY(begin(fs, req.dry_run));
  Inventory inv = TRY(Inventory::scan(fs, nullptr));
  GroupMap groups = GroupMap::build(inv);
  HostImpact impact = HostImpact::scan(fs, inv, env.impact);
  BindReport report;
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

  Txn txn(fs, req.dry_run);
  std::vector<PciAddress> moves = plan.moves();
  std::string drivers_dir = "/sys/bus/pci/drivers/" + req.driver;
  if (!moves.empty() && !fs.is_dir(drivers_dir)) {
    std::string module = module_for_driver(req.driver);
    txn.steps.push_back({"module", module, ""});
    if (!req.dry_run) {
      std::unique_ptr<ModuleLoader> own;
      ModuleLoader* loader = env.loader;
      if (!loader) loader = (own = make_kmod_loader(fs)).get();
      TRY(loader->load(module));
      if (!fs.is_dir(drivers_dir))
        return Error::state(
            fmt::format("driver {} is not registered after loading module {}", req.driver, module),
            "the kernel log (`dmesg`) has the reason");
    }
  }

  Journal j;
  j.operation = "bind";
  j.driver = req.driver;
  j.owner = req.owner;
  j.pid = static_cast<int>(::getpid());
  for (const auto& a : moves)
    j.devices.push_back(
        {a, inv.find(a)->iommu_group, read_device_state(fs, a), {req.driver, req.driver}});

  Status st;
  if (!moves.empty()) {
    txn.steps.push_back({"journal", kJournalPath, "writing"});
    if (!req.dry_run) TRY(save_journal(fs, j));
    for (const auto& a : moves) {
      st = txn.bind(a, req.driver);
      if (!st) break;
      report.bound.push_back(a);
    }
  }
  if (st && req.driver == "vfio-pci") {
    auto sleep = env.sleep_ms ? env.sleep_ms : default_sleep;
    for (const auto& g : plan.groups) {
      std::string node = "/dev/vfio/" + std::to_string(g.id);
      if (!req.dry_run) {
        int waited = 0;
        while (!fs.exists(node) && waited < env.node_wait_ms) {
          sleep(20);
          waited += 20;
        }
        if (!fs.exists(node)) {
          st = Error::state(
              fmt::format("{} did not appear within {} ms after group {} was bound to vfio-pci",
                          node, env.node_wait_ms, g.id),
              "is udev running? The kernel log (`dmesg`) may say more");
          break;
        }
      }
      if (owner) {
        txn.steps.push_back({"chown", node, fmt::format("{}:{}", owner->uid, owner->gid)});
        if (!req.dry_run) {
          st = fs.change_owner(node, owner->uid, owner->gid);
          if (!st) break;
        }
      }
      report.groups.push_back(g.id);
    }
  } else if (st) {
    for (const auto& g : plan.groups) report.groups.push_back(g.id);
  }
  if (req.dry_run) {
    if (!moves.empty()) {
      txn.steps.push_back({"journal", kJournalPath, "committed"});
      txn.steps.push_back({"state", kStatePath, ""});
    }
    report.steps = std::move(txn.steps);
    return report;
  }
  if (!st) {
    if (moves.empty()) return std::move(st).error();
    report.bound.clear();
    return fail_and_roll_back(fs, txn, j, std::move(st).error());
  }
  if (!moves.empty()) {
    Status c = commit(fs, j, txn.steps);
    if (!c) {
      auto on_disk = load_journal(fs);
      if (on_disk.ok() && on_disk->has_value() && (*on_disk)->phase != "committed")
        return fail_and_roll_back(fs, txn, j, std::move(c).error());
      Error e = std::move(c).error();
      e.fix = "the devices are bound; run `pcipass recover` to finish recording them";
      return e;
    }
  }
  report.steps = std::move(txn.steps);
  return report;
}

Result<ReleaseReport> release(HostFs& fs, const ReleaseRequest& req, const Environment& env) {
  (void)env;
  if (req.devices.empty())
    return Error::invalid("no device named", "name a device: pcipass release 0000:01:00.0");
  auto lock = TRY(begin(fs, req.dry_run));
  Inventory inv = TRY(Inventory::scan(fs, nullptr));
  StateFile state = TRY(load_state(fs));
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

  ReleaseReport report;
  report.dry_run = req.dry_run;
  Journal j;
  j.operation = "release";
  j.pid = static_cast<int>(::getpid());
  std::set<int> groups;
  bool state_changed = false;
  for (const auto& a : wanted) {
    DeviceState cur = read_device_state(fs, a);
    const Binding* b = state.find(a);
    DeviceState target;
    if (b) {
      target = b->original;
    } else {
      // Not bound by pcipass: clear a vfio/pci-stub override, keep any other, and let the
      // kernel pick the host driver.
      target.any_driver = true;
      if (cur.override && !driver_keeps_group_viable(cur.override)) target.override = cur.override;
      if (cur.driver && !driver_keeps_group_viable(cur.driver)) {
        report.unchanged.push_back(a);
        continue;
      }
    }
    if (b && cur == b->original) {
      report.unchanged.push_back(a);
      state.erase(a);
      state_changed = true;
      continue;
    }
    auto group = inv.find(a)->iommu_group;
    if (group) groups.insert(*group);
    j.devices.push_back({a, group, cur, target});
  }
  for (int g : groups) {
    auto users = group_users(fs, g);
    if (users.empty()) continue;
    std::vector<std::string> who, in_group;
    for (const auto& u : users) who.push_back(fmt::format("{} (pid {})", u.comm, u.pid));
    for (const auto& d : j.devices)
      if (d.group == g) in_group.push_back(d.address.str());
    return Error::refused(
        fmt::format("refusing to release {}: /dev/vfio/{} is held open by {}",
                    fmt::join(in_group, ", "), g, fmt::join(who, ", ")),
        fmt::format("shut the VM down (or stop pid {}), then release", users.front().pid));
  }

  Txn txn(fs, req.dry_run);
  if (j.devices.empty()) {
    if (state_changed && !req.dry_run) TRY(save_state(fs, state));
    return report;
  }
  txn.steps.push_back({"journal", kJournalPath, "writing"});
  if (!req.dry_run) TRY(save_journal(fs, j));
  Status st;
  for (const auto& d : j.devices) {
    st = txn.restore(d.address, d.after);
    if (!st) break;
  }
  if (req.dry_run) {
    txn.steps.push_back({"journal", kJournalPath, "committed"});
    txn.steps.push_back({"state", kStatePath, ""});
    report.steps = std::move(txn.steps);
    for (const auto& d : j.devices) report.released.push_back({d.address, d.before, d.after});
    return report;
  }
  if (!st) return fail_and_roll_back(fs, txn, j, std::move(st).error());
  if (state_changed) TRY(save_state(fs, state));
  Status c = commit(fs, j, txn.steps);
  if (!c) {
    Error e = std::move(c).error();
    e.fix = "the devices are back on the host; run `pcipass recover` to finish updating the state";
    return e;
  }
  for (const auto& d : j.devices)
    report.released.push_back({d.address, d.before, read_device_state(fs, d.address)});
  report.steps = std::move(txn.steps);
  return report;
}

Result<RecoverReport> recover(HostFs& fs, const Environment& env) {
  (void)env;
  RecoverReport report;
  if (!fs.is_dir(kRunDir)) return report;
  auto lock = TRY(fs.lock(kLockPath));
  auto pending = TRY(load_journal(fs));
  if (!pending) return report;
  Journal j = std::move(*pending);
  report.pending = true;
  report.operation = j.operation;
  report.phase = j.phase;
  report.devices = j.devices;
  Txn txn(fs, false);
  if (j.phase == "committed") {
    TRY(apply_to_state(fs, j));
    txn.steps.push_back({"state", kStatePath, ""});
  } else {
    Status rb = txn.roll_back(j);
    if (!rb) {
      Error e = std::move(rb).error();
      e.fix = "fix the cause and run `pcipass recover` again; the journal is kept";
      return e;
    }
  }
  TRY(fs.remove(kJournalPath));
  report.steps = std::move(txn.steps);
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
      e.users = group_users(fs, *b.group);
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
