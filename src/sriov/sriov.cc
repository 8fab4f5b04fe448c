#include "sriov/sriov.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>

#include "change/change.h"
#include "host/module_loader.h"

namespace pcipass::sriov {

namespace {

using change::Change;
using change::DeviceState;
using change::Procedure;

std::string attr(const PciAddress& a, const char* name) {
  return change::device_dir(a) + "/" + name;
}

// A number from a sysfs attribute, 0..max; unreadable (other than absent) or out of range is a
// problem naming the file, and the value is unknown.
std::optional<int> int_attr(const HostFs& fs, const std::string& path, int max,
                            std::vector<std::string>& problems) {
  auto r = fs.read(path, 64);
  if (!r) {
    if (r.error().err != ENOENT) problems.push_back(r.error().message);
    return std::nullopt;
  }
  std::string v = *r;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  int n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n, 10);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < 0 || n > max) {
    problems.push_back(
        fmt::format("{}: '{}' is not a number from 0 to {}", path, v.substr(0, 32), max));
    return std::nullopt;
  }
  return n;
}

// The PF's VFs by index, from its virtfnN links. A PF directory that cannot be listed is an
// error, not "no VFs": the checks before removing VFs would pass over VFs a VM holds.
Result<std::vector<std::pair<int, PciAddress>>> virtfns(const HostFs& fs, const PciAddress& pf) {
  std::vector<std::pair<int, PciAddress>> out;
  std::string dir = change::device_dir(pf);
  auto entries = fs.list(dir);
  // Gone between the inventory and now: hot-unplugged, or removed with its PF's VFs.
  if (!entries && entries.error().err == ENOENT)
    return Error::not_found(fmt::format("no PCI device {} on this host any more", pf.str()),
                            "it was removed while pcipass ran; see `pcipass vf list`");
  if (!entries)
    return Error::state(
        fmt::format("cannot list the VFs of {}: {}", pf.str(), entries.error().describe()),
        "the kernel's SR-IOV attributes must be readable (run pcipass as root)");
  for (const auto& e : *entries) {
    if (!e.starts_with("virtfn")) continue;
    std::string_view digits = std::string_view(e).substr(6);
    int i = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i, 10);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) continue;
    if (auto target = fs.link_basename(dir + "/" + e))
      if (auto a = parse_address(*target)) out.push_back({i, *a});
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct PfFacts {
  const Device* device = nullptr;
  int total = 0, num = 0;
  std::optional<bool> autoprobe;
  std::vector<std::pair<int, PciAddress>> vfs;
};

Result<PfFacts> pf_facts(const HostFs& fs, const Inventory& inv, const PciAddress& pf) {
  PfFacts f;
  f.device = inv.find(pf);
  if (!f.device)
    return Error::not_found(fmt::format("no PCI device {} on this host", pf.str()),
                            "see `pcipass vf list`");
  std::vector<std::string> problems;
  auto total = int_attr(fs, attr(pf, "sriov_totalvfs"), 0xffff, problems);
  auto num = int_attr(fs, attr(pf, "sriov_numvfs"), 0xffff, problems);
  if (!problems.empty())
    return Error::state(problems.front(), "the kernel's SR-IOV attributes must be readable");
  if (!total || !num)
    return Error::invalid(
        fmt::format("{} is not an SR-IOV physical function (no sriov_totalvfs)", pf.str()),
        "see `pcipass vf list` for the devices that have VFs");
  f.total = *total, f.num = *num;
  // Unreadable is not "unknown, set it anyway": its old value could not be put back.
  if (auto a = int_attr(fs, attr(pf, "sriov_drivers_autoprobe"), 1, problems)) f.autoprobe = *a;
  if (!problems.empty())
    return Error::state(problems.front(), "the kernel's SR-IOV attributes must be readable");
  f.vfs = TRY(virtfns(fs, pf));
  if (!f.device->driver)
    return Error::state(
        fmt::format("{} has no driver: the kernel changes a PF's VFs only through its driver",
                    pf.str()),
        fmt::format("give it back to its host driver first (pcipass release {})", pf.str()));
  return f;
}

// The VFs' current ones may go only when nothing holds them: not while a VM has one open
// through vfio (the kernel's removal would wait for it), nor when the host depends on one.
Status check_removable(const HostFs& fs, const Inventory& inv,
                       const std::vector<std::pair<int, PciAddress>>& vfs,
                       const assign::Environment& env, const std::string& what) {
  GroupMap groups = GroupMap::build(inv);
  HostImpact impact = HostImpact::scan(fs, inv, env.impact);
  Assessor assessor(groups, impact, inv.iommu_groups_present());
  std::vector<std::string> held, critical;
  int pid = 0;
  for (const auto& [i, a] : vfs) {
    const Device* d = inv.find(a);
    if (!d) continue;
    if (d->driver == "vfio-pci" && d->iommu_group)
      for (const auto& u : TRY(assign::group_users(fs, *d->iommu_group))) {
        held.push_back(fmt::format("{} (/dev/vfio/{} held by {}, pid {})", a.str(), *d->iommu_group,
                                   u.comm, u.pid));
        pid = u.pid;
      }
    Assessment as = assessor(*d, false);
    if (as.verdict == Verdict::kHostCritical)
      critical.push_back(fmt::format("{} ({})", a.str(), as.reason));
  }
  if (!held.empty())
    return Error::refused(
        fmt::format("refusing to {}: VFs in use by a VM: {}", what, fmt::join(held, ", ")),
        fmt::format("shut the VM down (or stop pid {}) first", pid));
  if (!critical.empty())
    return Error::refused(
        fmt::format("refusing to {}: the host needs VFs: {}", what, fmt::join(critical, ", ")),
        "move what the host runs over them elsewhere first");
  return {};
}

// Where the kernel will put VF i: the PF's devfn + offset + stride * i, carried into the bus
// number (drivers/pci/iov.c, pci_iov_virtfn_bus/devfn), with the offset and stride it shows.
Result<std::vector<PciAddress>> predict(const HostFs& fs, const PciAddress& pf, int n) {
  std::vector<std::string> problems;
  auto offset = int_attr(fs, attr(pf, "sriov_offset"), 0xffff, problems);
  auto stride = int_attr(fs, attr(pf, "sriov_stride"), 0xffff, problems);
  if (!offset || !stride)
    return Error::state(
        fmt::format("cannot tell where {}'s VFs will appear: {}", pf.str(),
                    problems.empty() ? "no sriov_offset/sriov_stride" : problems[0]),
        "create them without --bind, then bind each with `pcipass bind`");
  std::vector<PciAddress> out;
  unsigned devfn = static_cast<unsigned>(pf.slot) << 3 | pf.function;
  for (int i = 0; i < n; ++i) {
    unsigned v = devfn + static_cast<unsigned>(*offset + *stride * i);
    PciAddress a = pf;
    a.bus = static_cast<uint8_t>(pf.bus + (v >> 8));
    a.slot = static_cast<uint8_t>((v & 0xff) >> 3);
    a.function = static_cast<uint8_t>(v & 7);
    out.push_back(a);
  }
  return out;
}

// After sriov_numvfs: the VFs are where predict() said (else binding would miss them).
Change check_placement(const PciAddress& pf, const std::vector<PciAddress>& vfs) {
  std::string dir = change::device_dir(pf);
  return Change::check(dir + "/virtfn*", fmt::format("{} VFs from {}", vfs.size(), vfs[0].str()),
                       [dir, vfs](const HostFs& fs, CommandRunner*) -> Status {
                         for (size_t i = 0; i < vfs.size(); ++i) {
                           auto at = fs.link_basename(dir + "/virtfn" + std::to_string(i));
                           if (at == vfs[i].str()) continue;
                           return Error::state(
                               fmt::format("VF {} appeared at {}, not at {} as sriov_offset and "
                                           "sriov_stride said",
                                           i, at.value_or("no address"), vfs[i].str()),
                               "create the VFs without --bind, then bind each with `pcipass "
                               "bind`");
                         }
                         return {};
                       });
}

// After the VFs are on vfio-pci: udev made each group's /dev/vfio node (the groups are only
// known once the VFs exist, so this is a check, not bind's wait_for).
Change check_nodes(const std::vector<PciAddress>& vfs, const assign::Environment& env) {
  auto sleep = env.sleep_ms;
  int limit = env.node_wait_ms;
  return Change::check("/dev/vfio", "a node for each VF's IOMMU group",
                       [vfs, sleep, limit](const HostFs& fs, CommandRunner*) -> Status {
                         for (const auto& a : vfs) {
                           auto g = fs.link_basename(change::device_dir(a) + "/iommu_group");
                           if (!g) continue;  // no IOMMU: vfio-pci has refused it already
                           std::string node = "/dev/vfio/" + *g;
                           for (int waited = 0; !fs.exists(node) && waited < limit; waited += 20)
                             if (sleep) sleep(20);
                           if (!fs.exists(node))
                             return Error::state(
                                 fmt::format("{} did not appear within {} ms after {} was bound "
                                             "to vfio-pci",
                                             node, limit, a.str()),
                                 "is udev running? The kernel log (`dmesg`) may say more");
                         }
                         return {};
                       });
}

// Every VF with a driver or an override is moved off first: then a rollback that remakes the
// VFs can put each back where it was.
void move_off(const HostFs& fs, const std::vector<std::pair<int, PciAddress>>& vfs,
              std::vector<Change>& plan, Report& rep) {
  for (const auto& [i, a] : vfs) {
    rep.removed.push_back(a);
    DeviceState s = change::read_device_state(fs, a);
    if (s.driver || s.override) plan.push_back(Change::device_move(a, {}, Procedure::kRestore));
  }
}

// The plan run as one transaction; the durable files (planned for `vfs`) go first, as
// apply_runtime wants them. A plan with only files records nothing in the runtime journal.
Result<std::vector<assign::Step>> run_plan(HostFs& fs, std::vector<Change>& plan,
                                           const assign::DurableFiles* durable,
                                           const std::vector<PciAddress>& vfs, const Inventory& inv,
                                           const assign::Environment& env, bool dry_run,
                                           assign::RuntimeRecord record, Report& rep) {
  assign::RuntimeFiles files;
  if (durable) {
    std::vector<Change> changes = TRY(durable->plan(vfs, inv));
    if (plan.empty()) record = {};
    files = {changes.size(), durable->run, &rep.durable};
    files.run.dry_run = dry_run;
    plan.insert(plan.begin(), changes.begin(), changes.end());
  }
  if (plan.empty()) return std::vector<assign::Step>{};
  return assign::apply_runtime(fs, plan, env, dry_run, record, files.count ? &files : nullptr);
}

std::vector<PciAddress> addresses(const std::vector<std::pair<int, PciAddress>>& vfs) {
  std::vector<PciAddress> out;
  for (const auto& v : vfs) out.push_back(v.second);
  return out;
}

}  // namespace

Result<std::vector<PhysicalFunction>> list(const HostFs& fs, const Inventory& inv,
                                           const GroupMap& groups, const HostImpact& impact,
                                           const std::optional<PciAddress>& pf,
                                           const VfLinkSource* links) {
  if (pf && !inv.find(*pf))
    return Error::not_found(fmt::format("no PCI device {} on this host", pf->str()),
                            "see `pcipass vf list`");
  Assessor assessor(groups, impact, inv.iommu_groups_present());
  std::vector<PhysicalFunction> out;
  for (const auto& d : inv.devices()) {
    if ((pf && d.address != *pf) || d.physfn) continue;
    PhysicalFunction p;
    p.device = &d;
    p.total_vfs = int_attr(fs, attr(d.address, "sriov_totalvfs"), 0xffff, p.problems);
    if (!p.total_vfs && p.problems.empty()) {
      if (pf)
        return Error::invalid(
            fmt::format("{} is not an SR-IOV physical function (no sriov_totalvfs)", pf->str()),
            "`pcipass vf list` shows the devices that have VFs");
      continue;
    }
    p.num_vfs = int_attr(fs, attr(d.address, "sriov_numvfs"), 0xffff, p.problems);
    if (auto a = int_attr(fs, attr(d.address, "sriov_drivers_autoprobe"), 1, p.problems))
      p.drivers_autoprobe = *a == 1;
    // A PF without a network driver has no net/.
    p.interfaces = list_or_problem(fs, change::device_dir(d.address) + "/net", p.problems);
    std::map<int, VfLink> by_index;
    if (links && !p.interfaces.empty()) {
      if (auto r = links->vfs(p.interfaces.front()))
        for (auto& l : *r) by_index[l.index] = l;
      else
        p.problems.push_back(r.error().message);
    }
    auto vfs = virtfns(fs, d.address);
    if (!vfs) p.problems.push_back(vfs.error().describe());
    for (const auto& [i, a] : vfs.value_or({})) {
      VirtualFunction v{a, i, inv.find(a), {}, {}};
      if (v.device) v.assessment = assessor(*v.device, false);
      if (auto l = by_index.find(i); l != by_index.end()) v.link = l->second;
      p.vfs.push_back(std::move(v));
    }
    out.push_back(std::move(p));
  }
  return out;
}

Result<CreatePlanned> plan_create(const HostFs& fs, const CreateRequest& req, const Inventory& inv,
                                  const assign::Environment& env) {
  if (req.bind && *req.bind != "vfio-pci" && *req.bind != "pci-stub")
    return Error::invalid(fmt::format("unsupported driver '{}' for --bind", *req.bind),
                          "use --bind vfio-pci or --bind pci-stub");
  PfFacts f = TRY(pf_facts(fs, inv, req.pf));
  if (req.count < 1 || req.count > f.total)
    return Error::invalid(fmt::format("cannot make {} VFs on {}: its sriov_totalvfs is {}",
                                      req.count, req.pf.str(), f.total),
                          fmt::format("ask for 1 to {} (`pcipass vf remove {}` removes them)",
                                      f.total, req.pf.str()));
  bool resize = f.num != req.count;
  TRY(check_removable(fs, inv, resize ? f.vfs : decltype(f.vfs){}, env,
                      fmt::format("change {}'s VFs", req.pf.str())));
  CreatePlanned out;
  Report& rep = out.report;
  std::vector<Change>& plan = out.changes;
  rep.pf = req.pf, rep.num_vfs_before = f.num, rep.num_vfs = req.count, rep.dry_run = req.dry_run;
  rep.drivers_autoprobe = f.autoprobe;
  if ((req.bind || req.no_autoprobe) && f.autoprobe != false) {
    plan.push_back(Change::attribute(attr(req.pf, "sriov_drivers_autoprobe"), "0"));
    rep.drivers_autoprobe = false;
  }
  std::vector<PciAddress> vfs = addresses(f.vfs);
  if (resize) {
    move_off(fs, f.vfs, plan, rep);
    if (f.num) plan.push_back(Change::attribute(attr(req.pf, "sriov_numvfs"), "0"));
    plan.push_back(Change::attribute(attr(req.pf, "sriov_numvfs"), std::to_string(req.count)));
    auto predicted = predict(fs, req.pf, req.count);
    if (!predicted && req.bind) return predicted.error();
    vfs = predicted ? *predicted : std::vector<PciAddress>{};
    if (req.bind) plan.push_back(check_placement(req.pf, vfs));
  }
  if (req.bind) {
    rep.driver = *req.bind;
    std::string drivers_dir = "/sys/bus/pci/drivers/" + *req.bind;
    if (!fs.is_dir(drivers_dir))
      plan.insert(plan.begin(), Change::module(module_for_driver(*req.bind), drivers_dir));
    for (const auto& a : vfs)
      if (resize || change::read_device_state(fs, a).driver != *req.bind) {
        plan.push_back(Change::device_move(a, {*req.bind, *req.bind}, Procedure::kBind));
        rep.bound.push_back(a);
      }
    if (*req.bind == "vfio-pci" && !rep.bound.empty()) plan.push_back(check_nodes(rep.bound, env));
  }
  if (resize) rep.created = vfs;
  out.vfs = vfs;
  return out;
}

Result<Report> create(HostFs& fs, const CreateRequest& req, const assign::Environment& env) {
  if (req.bind && *req.bind != "vfio-pci" && *req.bind != "pci-stub")
    return Error::invalid(fmt::format("unsupported driver '{}' for --bind", *req.bind),
                          "use --bind vfio-pci or --bind pci-stub");
  std::optional<Inventory> own;
  if (!req.inventory) own = TRY(Inventory::scan(fs, nullptr));
  const Inventory& inv = req.inventory ? *req.inventory : *own;
  CreatePlanned p = TRY(plan_create(fs, req, inv, env));
  Report& rep = p.report;
  bool resize = rep.num_vfs_before != req.count;
  assign::RuntimeRecord record;
  if (req.bind) record = {"bind", *req.bind};
  rep.steps = TRY(run_plan(fs, p.changes, req.durable, req.bind ? p.vfs : std::vector<PciAddress>{},
                           inv, env, req.dry_run, record, rep));
  if (resize && !req.dry_run) {
    // The kernel's links; if the PF cannot be listed now, the VFs predicted from offset/stride.
    auto made = virtfns(fs, req.pf);
    rep.created = made ? addresses(*made) : p.vfs;
  }
  return std::move(rep);
}

Result<Report> remove(HostFs& fs, const RemoveRequest& req, const assign::Environment& env) {
  std::optional<Inventory> own;
  if (!req.inventory) own = TRY(Inventory::scan(fs, nullptr));
  const Inventory& inv = req.inventory ? *req.inventory : *own;
  PfFacts f = TRY(pf_facts(fs, inv, req.pf));
  Report rep;
  rep.pf = req.pf, rep.num_vfs_before = f.num, rep.dry_run = req.dry_run;
  rep.drivers_autoprobe = f.autoprobe;
  std::vector<Change> plan;
  if (f.num) {
    TRY(check_removable(fs, inv, f.vfs, env, fmt::format("remove {}'s VFs", req.pf.str())));
    move_off(fs, f.vfs, plan, rep);
    plan.push_back(Change::attribute(attr(req.pf, "sriov_numvfs"), "0"));
  }
  rep.steps = TRY(run_plan(fs, plan, req.durable, {}, inv, env, req.dry_run, {"release", ""}, rep));
  return rep;
}

}  // namespace pcipass::sriov
