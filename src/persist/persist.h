// Assignments that survive a reboot: `bind --persist` and `release --persist` change the devices
// and the desired-state store (assignments.h) as one transaction, the store and the boot unit's
// enablement kept as a durable change set (`pcipass undo` reverts it); `apply` (at boot, from
// pcipass-apply.service) binds what the store says, refusing a card whose IDs changed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "assign/assign.h"
#include "check/check.h"
#include "persist/assignments.h"
#include "sriov/sriov.h"

namespace pcipass::persist {

inline constexpr const char* kUnitName = "pcipass-apply.service";
inline constexpr const char* kEtcUnitPath = "/etc/systemd/system/pcipass-apply.service";
inline constexpr const char* kWantsDir = "/etc/systemd/system/sysinit.target.wants";
inline constexpr const char* kWantsLink =
    "/etc/systemd/system/sysinit.target.wants/pcipass-apply.service";

// The unit's text, byte for byte what `cmake --install` installs (data/systemd/).
const char* unit_text();
// Where the unit is (the administrator's /etc copy first, then the installed ones), nullopt
// when it is nowhere.
std::optional<std::string> find_unit(const HostFs& fs);
// Whether sysinit.target wants the unit (the link `systemctl enable` makes).
bool unit_enabled(const HostFs& fs);
// The changes that make the boot applier run at every boot: the unit written to /etc when it is
// not installed, and the .wants link; none when it is already so.
std::vector<change::Change> enable_plan(const HostFs& fs);

// The store written as `store` says (its directory, then the file; nothing when it is absent
// and stays empty) and, when it lists anything, the boot applier enabled: `pcipass apply FILE`'s
// share of its plan. A write of the bytes already there is dropped by the change set.
std::vector<change::Change> store_changes(const HostFs& fs, const Assignments& store);

struct PersistReport {
  std::vector<PciAddress> devices;  // recorded in (bind) or removed from (release) the store
  bool enabled_unit = false;        // the plan enabled the boot applier
  std::vector<std::string> warnings;
};

// bind, and the devices (requested and every one it moves) recorded in the store, the boot
// applier enabled; one transaction. `command` names the change set ("bind --persist ...").
Result<PersistReport> bind_persist(HostFs& fs, const assign::BindRequest& req,
                                   const assign::Environment& env, const std::string& command,
                                   assign::BindReport& report);
// release, and the devices removed from the store; one transaction. `gone` are addresses with
// no device on the host any more (a card taken out): only removed from the store, and an error
// when the store does not hold them. `req.devices` may then be empty.
Result<PersistReport> release_persist(HostFs& fs, const assign::ReleaseRequest& req,
                                      const assign::Environment& env, const std::string& command,
                                      assign::ReleaseReport& report,
                                      const std::vector<PciAddress>& gone = {});

// vf create, and the PF's VF count, autoprobe choice and VF bindings recorded in the store's
// "sriov" list, the boot applier enabled; one transaction (runtime and durable), so a failure at
// any write leaves the PF and /etc as they were. `report.devices` is {the PF}.
Result<PersistReport> vf_create_persist(HostFs& fs, const sriov::CreateRequest& req,
                                        const assign::Environment& env, const std::string& command,
                                        sriov::Report& report);
// vf remove, and the PF's entry dropped from the store; one transaction.
Result<PersistReport> vf_remove_persist(HostFs& fs, const sriov::RemoveRequest& req,
                                        const assign::Environment& env, const std::string& command,
                                        sriov::Report& report);

enum class Outcome {
  kBound,
  kAlreadyBound,
  kIdsDiffer,
  kAbsent,
  kRefused,
  kFailed,
  kConfigured,         // an SR-IOV PF: its VFs made and bound as recorded
  kAlreadyConfigured,  // an SR-IOV PF already as recorded: nothing written
};
const char* outcome_id(Outcome o);  // "bound", "already-bound", "ids-differ", ...

// One "sriov" entry at apply.
struct SriovApplied {
  SriovEntry desired;
  Outcome outcome = Outcome::kConfigured;
  std::optional<std::pair<uint16_t, uint16_t>> actual;  // the PF's vendor:device; nullopt: absent
  std::optional<std::string> pf_driver;                 // before apply
  std::optional<std::string> module;  // loaded (by the PF's modalias) because it had no driver
  int num_vfs_before = 0;
  std::vector<PciAddress> bound;  // VFs moved to the recorded driver
  std::string message, fix;       // for every outcome but configured and already-configured
};

struct Applied {
  Comparison before;  // desired against actual before apply
  Outcome outcome = Outcome::kBound;
  std::string message, fix;  // for every outcome but bound and already-bound
};

struct ApplyReport {
  bool store_present = false;
  std::vector<SriovApplied> sriov;  // by PF address, applied before `devices`
  std::vector<Applied> devices;     // by address
  std::vector<change::Step> steps;
  std::vector<std::string> warnings;
  bool ok() const;  // every device bound or already bound, every PF configured
};

// First the store's SR-IOV PFs (each checked for its recorded vendor:device, its driver loaded
// by modalias when it has none, its VFs made and bound through vf create's transaction), then
// binds every device of the store whose IDs still match, one transaction per IOMMU group (a
// failure in one group leaves the others bound); a moved or swapped card is reported, never
// bound.
Result<ApplyReport> apply(HostFs& fs, const assign::Environment& env, bool dry_run);

struct DesiredState {
  bool store_present = false;
  std::vector<Comparison> devices;
  bool all_match() const;
};
Result<DesiredState> desired_state(const HostFs& fs);

// `check`'s lines for persisted devices: none without a store, one per device otherwise (or
// one FAIL for a store that does not parse).
std::vector<CheckResult> persist_checks(const HostFs& fs);

}  // namespace pcipass::persist
