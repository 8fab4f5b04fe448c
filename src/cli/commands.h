// One function pair per subcommand; the table in commands.cc ties them to names.
#pragma once

#include "assign/assign.h"
#include "cli/app.h"
#include "persist/persist.h"

namespace pcipass::cli {

#define PCIPASS_COMMAND(name)                \
  void setup_##name(CLI::App& app, Args& a); \
  int run_##name(Context& ctx, const Args& a);

PCIPASS_COMMAND(list)
PCIPASS_COMMAND(groups)
PCIPASS_COMMAND(show)
PCIPASS_COMMAND(tree)
PCIPASS_COMMAND(check)
PCIPASS_COMMAND(snapshot)
PCIPASS_COMMAND(plan)
PCIPASS_COMMAND(bind)
PCIPASS_COMMAND(release)
PCIPASS_COMMAND(status)
PCIPASS_COMMAND(recover)
PCIPASS_COMMAND(setup)
PCIPASS_COMMAND(undo)
PCIPASS_COMMAND(apply)
PCIPASS_COMMAND(xml)
PCIPASS_COMMAND(qemu_args)
PCIPASS_COMMAND(hotplug)
PCIPASS_COMMAND(unplug)
PCIPASS_COMMAND(attach)
PCIPASS_COMMAND(detach)
PCIPASS_COMMAND(doctor)
PCIPASS_COMMAND(vf)
PCIPASS_COMMAND(mdev)
PCIPASS_COMMAND(facts)
PCIPASS_COMMAND(completion)

#undef PCIPASS_COMMAND

// Options several commands share.
void add_devices(CLI::App& app, Args& a, bool required);
void add_driver_option(CLI::App& app, Args& a);
// --group N of list and groups: nullopt when not given; a number outside 0..2^31-1 (a negative
// one, "3x") is a usage error rather than a filter that is silently dropped.
Result<std::optional<int>> group_filter(const Args& a);
void add_group_option(CLI::App& app, Args& a, const std::string& help);

// Shared by the assignment commands (defined in cmd_plan.cc, cmd_bind.cc).
// Every DEVICE argument, looked up in `inv` (the one scan the command makes).
Result<std::vector<PciAddress>> resolve_devices(const Inventory& inv, const Args& a);
// What bind and release act on: the DEVICE arguments and the inventory they need. When every
// argument is an address, only those devices' IOMMU groups are read (a script's one-device call
// then costs a few devices, not the bus); otherwise, or when one is not found (the error names
// the nearest addresses), the whole bus.
struct Targets {
  Inventory inv;
  std::vector<PciAddress> devices;
};
Result<Targets> scan_targets(Context& ctx, const Args& a);
Json steps_json(const std::vector<assign::Step>& steps);
// pci_ids_json(ctx) with "names": "available", or "unavailable" and "names_unavailable":
// {message, fix} saying why (no pci.ids, or libpci not loaded).
Json pci_ids_names_json(Context& ctx);
// bind/release --persist (cmd_bind.cc): the change set's command, the "persist" JSON key and the
// text lines.
std::string persist_command(const std::string& verb, const Args& a);
Json persist_json(const persist::PersistReport& p, const assign::DurableOutcome& d);
void print_persist(Context& ctx, const persist::PersistReport& p, const assign::DurableOutcome& d,
                   const std::string& verb);
// apply FILE (cmd_apply_file.cc).
int run_apply_file(Context& ctx, const Args& a);
// "dry run: pcipass would make these changes..." lines, diffs indented below their step.
void print_steps(Context& ctx, const std::vector<assign::Step>& steps);

}  // namespace pcipass::cli
