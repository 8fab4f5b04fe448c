// pcipass snapshot -o FILE: capture the host for bug reports and test fixtures.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "snapshot/snapshot.h"

namespace pcipass::cli {

void setup_snapshot(CLI::App& app, Args& a) {
  app.add_option("-o,--output", a.output,
                 "Archive to write (.tar.gz); extract it and pass --root DIR")
      ->required();
}

int run_snapshot(Context& ctx, const Args& a) {
  SnapshotTree tree = collect_snapshot(ctx.fs());
  if (!tree.count("/sys/bus/pci/devices"))
    return fail(ctx, Error::state("no PCI devices found under " +
                                      join_path(ctx.fs().root(), "sys/bus/pci/devices"),
                                  "is sysfs mounted on /sys?"));
  if (auto s = write_snapshot(tree, a.output); !s) return fail(ctx, s.error());
  size_t files = 0, links = 0;
  for (const auto& [p, e] : tree) {
    files += e.type == SnapshotEntry::kFile;
    links += e.type == SnapshotEntry::kLink;
  }
  if (ctx.json) {
    ctx.out << Json{{"schema", "pcipass.snapshot/1"},
                    {"output", a.output},
                    {"files", files},
                    {"links", links}}
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
