// pcipass snapshot -o FILE: capture the host for bug reports and test fixtures. The read commands
// run here against a recording view of the host, so the archive holds exactly what they read.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <set>
#include <sstream>

#include "cli/commands.h"
#include "host/recording_fs.h"
#include "snapshot/snapshot.h"

namespace pcipass::cli {

void setup_snapshot(CLI::App& app, Args& a) {
  app.add_option("-o,--output", a.output,
                 "Archive to write (.tar.gz); extract it and pass --root DIR")
      ->required();
}

namespace {

// Runs the read commands on `fs`, output discarded: only what they read matters. One context
// serves them all, so the inventory, groups and host impact are read once (a 4,096-device host
// would otherwise be scanned once per plan).
class Driver {
 public:
  Driver(HostFs& fs, const assign::Environment& env, const Setup& setup)
      : ctx_(nullptr, &fs, env, setup, Term{}, true, out_, err_) {}

  // Both output forms where they may consult different files.
  void both(int (*command)(Context&, const Args&), const Args& args) {
    run(command, args, true);
    run(command, args, false);
  }
  void run(int (*command)(Context&, const Args&), const Args& args, bool json) {
    ctx_.json = json;
    command(ctx_, args);
    out_.str({});
    err_.str({});
  }

 private:
  std::ostringstream out_, err_;
  Context ctx_;
};

// Every device, up to kMaxPlans; beyond that one device per IOMMU group (a plan reads its whole
// group), in address order, up to kMaxPlans: each plan scans the inventory again, so on a
// 4,096-device host planning every device would take hours. docs/host-tree.md says what such a
// snapshot may miss.
constexpr size_t kMaxPlans = 64;

std::vector<std::string> plan_targets(const HostFs& fs, const std::vector<std::string>& devices) {
  if (devices.size() <= kMaxPlans) return devices;
  std::vector<std::string> out;
  std::set<std::string> groups;
  for (const auto& d : devices) {
    auto g = fs.link_basename(join_path(kPciDevicesDir, d) + "/iommu_group");
    if (out.size() < kMaxPlans && (!g || groups.insert(*g).second)) out.push_back(d);
  }
  return out;
}

void drive_read_commands(HostFs& fs, const assign::Environment& env, const Setup& setup) {
  Driver driver(fs, env, setup);
  Args none;
  for (auto* command : {run_check, run_list, run_groups, run_tree, run_status})
    driver.both(command, none);
  // The devices the inventory lists: an entry it skips (a dangling link, an alias) would make
  // `show` of them all fail before it reads anything.
  std::vector<std::string> devices;
  if (auto inv = Inventory::scan(fs, nullptr))
    for (const auto& d : inv->devices()) devices.push_back(d.address.str());
  if (devices.empty()) return;
  // show and plan read the same files in both forms; JSON alone keeps a large host quick.
  Args show;
  show.devices = devices;
  driver.run(run_show, show, true);
  for (const auto& d : plan_targets(fs, devices)) {  // each alone: a plan is per selection
    Args plan;
    plan.devices = {d};
    driver.run(run_plan, plan, true);
  }
}

}  // namespace

int run_snapshot(Context& ctx, const Args& a) {
  if (!ctx.fs().is_dir(kPciDevicesDir))
    return fail(ctx, Error::state("no PCI devices found under " +
                                      join_path(ctx.fs().root(), "sys/bus/pci/devices"),
                                  "is sysfs mounted on /sys?"));
  RecordingHostFs recording(ctx.fs());
  drive_read_commands(recording, ctx.env(), ctx.setup());
  read_snapshot_extras(recording);
  Snapshot snap = build_snapshot(recording, ctx.process().time_now());
  if (auto s = write_snapshot(snap, a.output); !s) return fail(ctx, s.error());
  size_t files = 0, links = 0;
  for (const auto& [p, e] : snap.tree) {
    files += e.type == SnapshotEntry::kFile;
    links += e.type == SnapshotEntry::kLink;
  }
  if (ctx.json) {
    ctx.out << dump_json(Json{{"schema", "pcipass.snapshot/1"},
                              {"output", a.output},
                              {"files", files},
                              {"links", links},
                              {"truncated", snap.manifest.truncated.size()}})
            << '\n';
  } else {
    print_line(ctx.out, fmt::format("wrote {} ({} files, {} links); read it back with:", a.output,
                                    files, links));
    print_line(
        ctx.out,
        fmt::format("  mkdir host && tar -xzf {} -C host && pcipass --root host list", a.output));
  }
  return kExitOk;
}

}  // namespace pcipass::cli
