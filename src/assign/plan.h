// What assigning devices would do, computed without changing anything: the affected IOMMU groups
// with every device's current and new driver, what the host would lose, and a verdict.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "impact/impact.h"
#include "pci/groups.h"
#include "pci/inventory.h"

namespace pcipass::assign {

enum class Action {
  kBind,        // moves to the target driver
  kUnchanged,   // already on the target driver
  kStays,       // a bridge or port: stays with the host, does not affect viability
  kViable,      // another endpoint already on no driver, pci-stub or vfio: left as it is
  kLeftBehind,  // another endpoint left on a host driver: the group would not be viable
};
const char* action_id(Action a);  // "bind", "unchanged", "stays", "viable", "left-behind"

struct PlanDevice {
  PciAddress address;
  std::string title;  // "Intel Corporation 82574L Gigabit Network Connection [8086:10d3]"
  std::string kind;   // "net", "gpu", "bridge"...
  std::optional<std::string> driver;      // now
  std::optional<std::string> new_driver;  // after the bind
  Action action = Action::kViable;
  bool requested = false;
  std::vector<HostUse> uses;  // what the host uses this device for
};

struct PlanGroup {
  int id = 0;
  std::vector<PlanDevice> devices;  // by address
};

// Why a plan would not go ahead. The ids (refusal_id) are plan --json's `refusals[].id`.
enum class RefusalKind {
  kGroupNotViable,  // another endpoint of the group would stay on a host driver
  kHostCritical,    // the host needs the device (root fs, default route, console...)
  kInUse,           // a process holds a device file of it open
  kImpactUnknown,   // what the host uses the devices for could not be read (HostImpact::problems)
};
// "group-not-viable", "host-critical", "in-use", "impact-unknown"
const char* refusal_id(RefusalKind k);

struct Refusal {
  RefusalKind kind;
  PciAddress address;
  std::string message;  // "0000:00:03.0 holds the root filesystem (/ on vda1)"
  std::string fix;
};

struct Loss {
  PciAddress address;
  HostUse use;
};

struct Plan {
  std::string driver;
  std::vector<PlanGroup> groups;
  std::vector<Loss> losses;               // uses of the devices that would move
  std::vector<Refusal> refusals;          // empty: bind would go ahead
  std::vector<PciAddress> moves() const;  // devices whose driver changes, in address order
  bool nothing_to_do() const { return refusals.empty() && moves().empty(); }
  const char* verdict_id() const;  // "ready", "nothing-to-do", "refused"
  // The refusals as one error naming the devices, the reasons and the fix.
  Error refusal_error(const std::string& operation) const;
};

struct PlanOptions {
  std::string driver = "vfio-pci";
  bool with_group = false;
  bool force = false;
};

// Whether `a` is a device that can be given to a VM at all: on this host, not a bridge or the
// host bridge, in an IOMMU group. The error names it and the fix.
Status check_assignable(const Inventory& inv, const PciAddress& a);

// Errors: a requested bridge or host bridge (invalid), a device without an IOMMU group (state).
Result<Plan> make_plan(const Inventory& inv, const GroupMap& groups, const HostImpact& impact,
                       const std::vector<PciAddress>& requested, const PlanOptions& options);

}  // namespace pcipass::assign
