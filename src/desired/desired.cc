#include "desired/desired.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "mdev/mdev.h"
#include "persist/persist.h"
#include "setup/setup.h"
#include "sriov/sriov.h"

namespace pcipass::desired {

namespace {

using change::Change;
using change::Kind;

// Whether durable changes would change anything: a file's bytes, a link, a directory, a program.
// (The change set drops the writes that would not; this says so before the plan is run, per part.)
bool would_change(const HostFs& fs, const std::vector<Change>& changes) {
  for (const auto& c : changes) {
    switch (c.kind) {
      case Kind::kFileWrite: {
        auto now = change::read_file_state(fs, c.path);
        if (!now || now->absent || now->bytes != c.data) return true;
        break;
      }
      case Kind::kFileRemove:
        if (fs.type(c.path, false) != FileType::kMissing) return true;
        break;
      case Kind::kDirCreate:
        if (!fs.is_dir(c.path)) return true;
        break;
      case Kind::kLink: {
        auto now = change::read_link_state(fs, c.path);
        auto want = c.remove_link ? std::nullopt : std::optional(c.data);
        if (!now || *now != want) return true;
        break;
      }
      case Kind::kProgram:
        return true;
      default:
        break;
    }
  }
  return false;
}

void append(std::vector<Change>& to, std::vector<Change> from) {
  for (auto& c : from) to.push_back(std::move(c));
}

// The plan being built: the durable changes (run first, as one change set) and the runtime ones.
struct Plan {
  std::vector<Change> durable, runtime;
  bool binds = false;  // a device or VF moves to vfio-pci: the journal records it as bind's
};

Status plan_boot(const HostFs& fs, const BootWant& want, Plan& plan, Report& rep) {
  if (!want.any()) return {};
  setup::Request req;
  req.vfio = want.vfio_early;
  req.cmdline.iommu = want.iommu;
  req.cmdline.iommu_pt = want.iommu_pt;
  setup::SetupPlan p = TRY(setup::plan_setup(fs, req, nullptr));
  std::vector<Change> changes = setup::ordered_changes(std::move(p.parts));
  rep.boot.asked = true;
  rep.boot.notes = std::move(p.report.notes);
  rep.boot.change = would_change(fs, changes);
  if (rep.boot.change) append(plan.durable, std::move(changes));
  return {};
}

// The devices the `devices` entries name: addresses as given, ids as the first `count` devices
// with those IDs in address order.
Result<std::vector<std::pair<std::string, PciAddress>>> resolve(const Inventory& inv,
                                                                const std::vector<DeviceWant>& w,
                                                                const std::string& file) {
  std::vector<std::pair<std::string, PciAddress>> out;
  std::vector<PciAddress> sorted;
  for (const auto& d : inv.devices()) sorted.push_back(d.address);
  std::sort(sorted.begin(), sorted.end());
  for (const auto& d : w) {
    if (d.address) {
      if (!inv.find(*d.address))
        return Error::not_found(fmt::format("{}: {}.address: no PCI device {} on this host", file,
                                            d.key, d.address->str()),
                                "see `pcipass list` for this host's devices, and fix the address");
      out.emplace_back(d.key, *d.address);
      continue;
    }
    std::vector<PciAddress> found;
    for (const auto& a : sorted) {
      const Device* dev = inv.find(a);
      if (dev->vendor == d.vendor && dev->device == d.device) found.push_back(a);
    }
    if (static_cast<int>(found.size()) < d.count)
      return Error::not_found(
          fmt::format("{}: {}.count: {} devices {:04x}:{:04x} wanted, this host has {}", file,
                      d.key, d.count, d.vendor, d.device, found.size()),
          fmt::format("lower the count to {} or fewer (see `pcipass list --vendor {:04x}`)",
                      found.size(), d.vendor));
    for (int i = 0; i < d.count; ++i) out.emplace_back(d.key, found[static_cast<size_t>(i)]);
  }
  return out;
}

Status plan_devices(const HostFs& fs, const State& s, const Inventory& inv,
                    const assign::Environment& env, const std::string& file,
                    persist::Assignments& store, Plan& plan, Report& rep) {
  if (s.devices.empty()) return {};
  auto named = TRY(resolve(inv, s.devices, file));
  assign::BindRequest req;
  std::set<PciAddress> seen;
  for (const auto& [key, a] : named)
    if (seen.insert(a).second) {
      req.devices.push_back(a);
      rep.devices.push_back({key, a, inv.find(a)->driver, false});
    }
  std::sort(rep.devices.begin(), rep.devices.end(),
            [](const auto& x, const auto& y) { return x.address < y.address; });
  std::sort(req.devices.begin(), req.devices.end());
  assign::BindPlanned b = TRY(assign::plan_bind(fs, req, inv, env));
  for (auto& w : b.report.warnings) rep.warnings.push_back(std::move(w));
  for (auto& d : rep.devices)
    d.bind = std::find(b.moves.begin(), b.moves.end(), d.address) != b.moves.end();
  for (const auto& a : b.report.devices)
    if (const Device* d = inv.find(a)) store.put(persist::assignment_for(*d, "vfio-pci"));
  if (b.moves.empty()) return {};
  plan.binds = true;
  append(plan.runtime, std::move(b.changes));
  return {};
}

Status plan_sriov(const HostFs& fs, const State& s, const Inventory& inv,
                  const assign::Environment& env, persist::Assignments& store, Plan& plan,
                  Report& rep) {
  for (const auto& w : s.sriov) {
    sriov::CreateRequest req;
    req.pf = w.pf;
    req.count = w.vfs;
    if (w.bind) req.bind = "vfio-pci";
    sriov::CreatePlanned p = TRY(sriov::plan_create(fs, req, inv, env));
    const Device* pf = inv.find(w.pf);
    persist::SriovEntry e;
    e.pf = w.pf, e.vendor = pf->vendor, e.device = pf->device, e.num_vfs = w.vfs;
    e.drivers_autoprobe = !w.bind;
    if (w.bind) e.driver = "vfio-pci", e.vfs = p.vfs;
    store.put_sriov(e);
    SriovResult r{w.key, w.pf, p.report.num_vfs_before, w.vfs, p.report.bound, !p.changes.empty()};
    if (!p.report.bound.empty()) plan.binds = true;
    append(plan.runtime, std::move(p.changes));
    rep.sriov.push_back(std::move(r));
  }
  return {};
}

Status plan_mdevs(const HostFs& fs, const State& s, const assign::Environment& env, Plan& plan,
                  Report& rep) {
  for (const auto& w : s.mdevs) {
    MdevResult r{w.key, w.uuid, w.parent, w.type, false, false};
    auto now = TRY(mdev::find(fs, w.uuid));
    if (now && now->active && (now->parent != w.parent || now->type != w.type))
      return Error::refused(
          fmt::format("mdev {} ({}) is there as type {} of {}, not {} of {}", w.uuid, w.key,
                      now->type, now->parent, w.type, w.parent),
          fmt::format("remove it first (`pcipass mdev remove {}`), or give this one another "
                      "UUID",
                      w.uuid));
    if (!now || !now->active) {
      mdev::CreateRequest req;
      req.parent = w.parent, req.type = w.type, req.uuid = w.uuid;
      mdev::CreatePlanned p = TRY(mdev::plan_create(fs, req, env));
      append(plan.runtime, std::move(p.changes));
      r.create = true;
    }
    mdev::Definition d{
        w.parent, w.uuid, w.type, w.autostart ? mdev::Start::kAuto : mdev::Start::kManual, {}};
    std::vector<Change> files;
    std::string dir = std::string(mdev::kConfigDir) + "/" + w.parent;
    if (!fs.is_dir(dir)) files.push_back(Change::dir_create(dir));
    files.push_back(Change::file_write(mdev::config_path(w.parent, w.uuid), mdev::config_text(d)));
    r.define = would_change(fs, files);
    if (r.define) append(plan.durable, std::move(files));
    rep.mdevs.push_back(std::move(r));
  }
  return {};
}

}  // namespace

Result<Report> apply_state(HostFs& fs, const State& state, const assign::Environment& env,
                           const Options& options) {
  Report rep;
  rep.dry_run = options.dry_run;
  Plan plan;
  TRY(plan_boot(fs, state.boot, plan, rep));
  // The bus and the store only when the file names devices or PFs: a file of boot settings
  // alone works on a host whose /sys pcipass cannot read (a chroot, an image being prepared).
  if (!state.devices.empty() || !state.sriov.empty()) {
    Inventory inv = TRY(Inventory::scan(fs, nullptr));
    persist::Assignments store = TRY(persist::load_assignments(fs));
    TRY(plan_sriov(fs, state, inv, env, store, plan, rep));
    TRY(plan_devices(fs, state, inv, env, options.file, store, plan, rep));
    std::vector<Change> store_plan = persist::store_changes(fs, store);
    rep.store_change = would_change(fs, store_plan);
    if (rep.store_change) append(plan.durable, std::move(store_plan));
  }
  TRY(plan_mdevs(fs, state, env, plan, rep));
  rep.changed = !plan.durable.empty() || !plan.runtime.empty();
  if (!rep.changed) return rep;
  std::vector<Change> changes = std::move(plan.durable);
  assign::DurableOutcome outcome;
  assign::RuntimeFiles files{
      changes.size(), {options.command, env.process.time_now(), options.dry_run}, &outcome};
  append(changes, std::move(plan.runtime));
  assign::RuntimeRecord record;
  if (plan.binds) record = {"bind", "vfio-pci"};
  rep.steps = TRY(assign::apply_runtime(fs, changes, env, options.dry_run, record,
                                        files.count ? &files : nullptr));
  rep.change_set = outcome.id;
  return rep;
}

}  // namespace pcipass::desired
