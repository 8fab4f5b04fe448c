// Binding devices to vfio-pci (or pci-stub) and giving them back, as transactions:
// lock, journal, the kernel's writes, verification; any failure rolls every device back.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "assign/journal.h"
#include "assign/plan.h"
#include "change/change.h"
#include "change/store.h"
#include "host/context.h"
#include "host/host_fs.h"
#include "host/module_loader.h"
#include "host/runner.h"
#include "impact/impact.h"

namespace pcipass::assign {

// What the operations need besides HostFs; tests replace all of it.
struct Environment {
  ModuleLoader* loader = nullptr;          // null: libkmod on the live host (make_kmod_loader)
  std::function<void(int ms)> sleep_ms;    // null: nanosleep
  int node_wait_ms = 5000;                 // how long to wait for udev to create /dev/vfio/GROUP
  ImpactOptions impact;                    // SSH session override, process scan
  CommandRunner* runner = nullptr;         // programs a plan runs (none yet for bind/release)
  ProcessContext process;                  // live host or tree; the clock for change set ids
  change::VfLinkPort* vf_links = nullptr;  // VF settings (netlink); null: none here
};

using change::Step;  // one change made (or, with --dry-run, that would be), in order

// Files that change with the devices' moves, as one transaction (bind --persist): a durable
// change set begun before the journal, rolled back with the devices on any failure, and left
// for `pcipass undo` once done.
struct DurableFiles {
  // The file changes for these devices (bind: the requested ones and every one it moves;
  // release: the ones released), looked up in `inv`.
  std::function<Result<std::vector<change::Change>>(const std::vector<PciAddress>& devices,
                                                    const Inventory& inv)>
      plan;
  change::DurableRun run;  // its command and time; dry_run is the request's
};

// What happened to the files of a DurableFiles.
struct DurableOutcome {
  bool changed = false;           // false: every file was already as wanted
  std::optional<std::string> id;  // the change set (nullopt when unchanged or a dry run)
};

struct BindRequest {
  std::vector<PciAddress> devices;
  std::string driver = "vfio-pci";
  bool with_group = false, force = false, dry_run = false;
  std::string owner;                      // USER[:GROUP] for /dev/vfio/GROUP, "" for none
  const Inventory* inventory = nullptr;   // the caller's scan (null: scan here)
  const DurableFiles* durable = nullptr;  // files changed with the devices (bind --persist)
};

struct BindReport {
  Plan plan;
  std::vector<Step> steps;            // made (or planned, with dry_run)
  std::vector<PciAddress> bound;      // devices moved to the driver
  std::vector<PciAddress> unchanged;  // devices already on it
  std::vector<int> groups;            // groups now usable (nodes checked for vfio-pci)
  std::vector<std::string> warnings;  // memlock...
  bool dry_run = false;
  std::vector<PciAddress> devices;  // what `durable` got: requested, moved, and the group's others
                                    // already on the driver
  DurableOutcome durable;
};

Result<BindReport> bind(HostFs& fs, const BindRequest& req, const Environment& env);

// bind's checks and changes without running them (`pcipass apply FILE` puts them in its one
// plan): `report` has the plan, the requested devices already bound, the devices a persist
// records and the warnings; `changes` the module load, the moves and the /dev/vfio nodes.
struct BindPlanned {
  BindReport report;
  std::vector<change::Change> changes;
  std::vector<PciAddress> moves;
};
Result<BindPlanned> plan_bind(const HostFs& fs, const BindRequest& req, const Inventory& inv,
                              const Environment& env);

struct ReleaseRequest {
  std::vector<PciAddress> devices;
  bool with_group = false;  // also every other device of their groups that pcipass bound
  bool dry_run = false;
  const Inventory* inventory = nullptr;   // the caller's scan (null: scan here)
  const DurableFiles* durable = nullptr;  // files changed with the devices (release --persist)
};

struct Released {
  PciAddress address;
  DeviceState before, after;  // after: what the device is bound to now
};

struct ReleaseReport {
  std::vector<Step> steps;
  std::vector<Released> released;
  std::vector<PciAddress> unchanged;  // already back on the host
  bool dry_run = false;
  std::vector<PciAddress> devices;  // every device named (with --with-group, its group's too)
  DurableOutcome durable;
};

Result<ReleaseReport> release(HostFs& fs, const ReleaseRequest& req, const Environment& env);

// A plan of runtime changes (sysfs attribute writes such as sriov_numvfs or reset_method, device
// moves) as one transaction: the lock, refused while a journal is pending, every change's
// before-state journaled (operation "write") before the first write, rolled back after a failure,
// and rolled back by `recover` after a crash. bind and release are this plus their state file.
// Returns the steps made (or, with dry_run, that would be made).
// `record`: what the journal says the plan is. "write" (the default) leaves the state file alone;
// "bind" (with its driver: vf create --bind) records every device the plan moved to that driver,
// with its IOMMU group as it is once the plan ran (a VF has none before it exists), and drops
// the ones it moved elsewhere; "release" drops every device it moved (vf remove).
struct RuntimeRecord {
  std::string operation = "write";
  std::string driver;
};
// The plan's first `count` changes are files (mdev create --persist's definition), made as one
// durable change set (`run`) begun before the journal, rolled back with the rest and left for
// `pcipass undo`; what became of it goes to `outcome`.
struct RuntimeFiles {
  size_t count = 0;
  change::DurableRun run;
  DurableOutcome* outcome = nullptr;
};
Result<std::vector<Step>> apply_runtime(HostFs& fs, std::vector<change::Change>& plan,
                                        const Environment& env, bool dry_run,
                                        const RuntimeRecord& record = {},
                                        const RuntimeFiles* files = nullptr);

struct RecoverReport {
  bool pending = false;   // false: there was nothing to recover
  std::string operation;  // of the interrupted run
  std::string phase;
  std::vector<JournalEntry> devices;
  std::vector<AttributeEntry> attributes;  // restored to their journaled before-values
  std::vector<Step> steps;
  std::vector<std::string> change_sets;  // durable change sets rolled back or finished
};

// Rolls back an interrupted bind or release (the runtime journal), then finishes durable change
// sets a crash left half-applied or half-undone (change/store.h).
Result<RecoverReport> recover(HostFs& fs, const Environment& env);

struct StatusEntry {
  Binding binding;
  bool present = false;               // the device still exists
  std::optional<std::string> driver;  // bound to now
  bool node = false;                  // /dev/vfio/GROUP exists (vfio-pci)
  bool holds = false;                 // the state still holds
  std::string problem;                // why not, when it does not
  std::vector<ProcessHold> users;     // processes holding /dev/vfio/GROUP
};

struct StatusReport {
  std::vector<StatusEntry> entries;
  std::optional<Journal> pending;  // an interrupted run: `pcipass recover`
};

Result<StatusReport> status(const HostFs& fs);

// "memlock limit is 8 MiB..." when /proc/self/limits has a soft limit below 1 GiB; "" otherwise.
std::string memlock_warning(const HostFs& fs);

// Processes holding /dev/vfio/GROUP open. An error when /proc cannot be listed: whether a VM uses
// the group is then unknown, and what would take the group from it must not go on.
Result<std::vector<ProcessHold>> group_users(const HostFs& fs, int group);

}  // namespace pcipass::assign
