// pcipass apply FILE: the host brought to a desired-state file's state as one plan
// (src/desired, docs/apply.md); --json is pcipass.apply-file/1 (docs/json.md).
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "desired/desired.h"

namespace pcipass::cli {

namespace {

// The file is the caller's input, not the host's: read from this machine even under --root
// (an Ansible module writes it to a temporary file), through HostFs so that a FIFO cannot
// block and a huge file is refused.
Result<std::string> read_desired(const std::string& name) {
  if (name.empty()) return Error::invalid("apply: FILE is empty", "name a desired-state file");
  std::string path = std::filesystem::absolute(name).lexically_normal().string();
  auto local = make_real_host_fs("/");
  auto text = local->read(path, 1 << 20);
  if (!text) {
    // Bad input like a bad key: exit status 2, nothing changed.
    Error e = std::move(text).error();
    e.kind = ErrorKind::kInvalid;
    if (e.fix.empty()) e.fix = "name a readable desired-state file (docs/apply.md)";
    return e;
  }
  return text;
}

Json report_json(const desired::Report& r, const desired::State& s, const std::string& file) {
  Json devices = Json::array(), sriov = Json::array(), mdevs = Json::array();
  for (const auto& d : r.devices)
    devices.push_back({{"key", d.key},
                       {"address", d.address.str()},
                       {"driver_before", or_null(d.driver)},
                       {"bind", d.bind}});
  for (const auto& v : r.sriov) {
    Json bound = Json::array();
    for (const auto& a : v.bound) bound.push_back(a.str());
    sriov.push_back({{"key", v.key},
                     {"pf", v.pf.str()},
                     {"vfs_before", v.vfs_before},
                     {"vfs", v.vfs},
                     {"bound", bound},
                     {"change", v.change}});
  }
  for (const auto& m : r.mdevs)
    mdevs.push_back({{"key", m.key},
                     {"uuid", m.uuid},
                     {"parent", m.parent},
                     {"type", m.type},
                     {"create", m.create},
                     {"define", m.define}});
  return {{"schema", "pcipass.apply-file/1"},
          {"file", file},
          {"version", desired::kVersion},
          {"dry_run", r.dry_run},
          {"changed", r.changed},
          {"boot",
           {{"iommu", s.boot.iommu},
            {"iommu_pt", s.boot.iommu_pt},
            {"vfio_early", s.boot.vfio_early},
            {"change", r.boot.change},
            {"notes", r.boot.notes}}},
          {"devices", devices},
          {"store_change", r.store_change},
          {"sriov", sriov},
          {"mdevs", mdevs},
          {"steps", steps_json(r.steps)},
          {"change_set", or_null(r.change_set)},
          {"warnings", r.warnings}};
}

void print_report(Context& ctx, const desired::Report& r) {
  bool dry = r.dry_run;
  for (const auto& n : r.boot.notes) print_line(ctx.out, "note: " + n);
  if (r.boot.asked)
    print_line(ctx.out, r.boot.change ? fmt::format("boot: {}", dry ? "would change" : "changed")
                                      : "boot: already as the file says");
  for (const auto& v : r.sriov)
    print_line(ctx.out, v.change ? fmt::format("{} {}: {} VFs (was {})",
                                               dry ? "would configure" : "configured", v.pf.str(),
                                               v.vfs, v.vfs_before)
                                 : fmt::format("{} already has its {} VFs", v.pf.str(), v.vfs));
  for (const auto& d : r.devices)
    print_line(ctx.out,
               d.bind ? fmt::format("{} {} to vfio-pci (was {})", dry ? "would bind" : "bound",
                                    d.address.str(), d.driver.value_or("no driver"))
                      : fmt::format("{} is already on vfio-pci", d.address.str()));
  for (const auto& m : r.mdevs) {
    std::string what = m.create ? (dry ? "would create" : "created")
                                : (m.define ? (dry ? "would define" : "defined") : "");
    print_line(ctx.out, what.empty()
                            ? fmt::format("mdev {} is already there", m.uuid)
                            : fmt::format("{} mdev {} ({} of {})", what, m.uuid, m.type, m.parent));
  }
  if (dry && !r.steps.empty()) print_steps(ctx, r.steps);
  if (!r.changed) print_line(ctx.out, "nothing to change: the host is as the file says");
  if (r.change_set)
    print_line(ctx.out, fmt::format("change set {} (`pcipass undo {}` reverts the files)",
                                    *r.change_set, *r.change_set));
}

}  // namespace

int run_apply_file(Context& ctx, const Args& a) {
  const std::string& file = *a.desired_file;
  auto text = read_desired(file);
  if (!text) return fail(ctx, text.error());
  auto state = desired::parse_state(*text, file);
  if (!state) return fail(ctx, state.error());
  desired::Options o{a.dry_run, "apply " + file, file};
  auto r = desired::apply_state(ctx.fs(), *state, ctx.env(), o);
  if (!r) return fail(ctx, r.error());
  for (const auto& w : r->warnings) print_warning(ctx.err, ctx.term, w);
  if (ctx.json)
    ctx.out << dump_json(report_json(*r, *state, file)) << '\n';
  else
    print_report(ctx, *r);
  return kExitOk;
}

}  // namespace pcipass::cli
