// pcipass snapshot -o FILE: capture the host for bug reports and test fixtures. The read commands
// run here against a recording view of the host, so the archive holds exactly what they read.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <ctime>
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

// Runs one read command on `fs`, output discarded: only what it reads matters. Both output
// forms run, since text and JSON may consult different files.
void drive(HostFs& fs, const assign::Environment& env, int (*command)(Context&, const Args&),
           const Args& args) {
  for (bool json : {true, false}) {
    std::ostringstream out, err;
    Context ctx(nullptr, &fs, env, Term{}, json, out, err);
    command(ctx, args);
  }
}

void drive_read_commands(HostFs& fs, const assign::Environment& env) {
  Args none;
  for (auto* command : {run_check, run_list, run_groups, run_tree, run_status})
    drive(fs, env, command, none);
  std::vector<std::string> devices = fs.list(kPciDevicesDir).value_or({});
  if (devices.empty()) return;
  Args show;
  show.devices = devices;
  drive(fs, env, run_show, show);
  for (const auto& d : devices) {  // each device alone: a plan is per selection
    Args plan;
    plan.devices = {d};
    drive(fs, env, run_plan, plan);
  }
}

}  // namespace

int run_snapshot(Context& ctx, const Args& a) {
  if (!ctx.fs().is_dir(kPciDevicesDir))
    return fail(ctx, Error::state("no PCI devices found under " +
                                      join_path(ctx.fs().root(), "sys/bus/pci/devices"),
                                  "is sysfs mounted on /sys?"));
  RecordingHostFs recording(ctx.fs());
  drive_read_commands(recording, ctx.env());
  read_snapshot_extras(recording);
  Snapshot snap = build_snapshot(recording, static_cast<int64_t>(std::time(nullptr)));
  if (auto s = write_snapshot(snap, a.output); !s) return fail(ctx, s.error());
  size_t files = 0, links = 0;
  for (const auto& [p, e] : snap.tree) {
    files += e.type == SnapshotEntry::kFile;
    links += e.type == SnapshotEntry::kLink;
  }
  if (ctx.json) {
    ctx.out << Json{{"schema", "pcipass.snapshot/1"},
                    {"output", a.output},
                    {"files", files},
                    {"links", links},
                    {"truncated", snap.manifest.truncated.size()}}
                   .dump(2)
            << '\n';
  } else {
    ctx.out << fmt::format("wrote {} ({} files, {} links); read it back with:\n", a.output, files,
                           links);
    ctx.out << fmt::format("  mkdir host && tar -xzf {} -C host && pcipass --root host list\n",
                           a.output);
  }
  return kExitOk;
}

}  // namespace pcipass::cli
