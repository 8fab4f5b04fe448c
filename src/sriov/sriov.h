// SR-IOV: physical functions and their virtual functions as sysfs shows them, and changing the
// number of VFs (optionally handing each new VF to vfio-pci) as one transaction of the change
// engine: journaled, rolled back on any failure, recovered after a crash (docs/sriov.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "assign/assign.h"
#include "impact/impact.h"
#include "impact/verdict.h"
#include "pci/groups.h"
#include "pci/inventory.h"

namespace pcipass::sriov {

// What a PF's network driver reports about one of its VFs (netlink RTM_GETLINK, IFLA_VFINFO_LIST).
struct VfLink {
  int index = 0;
  std::string mac;  // "52:54:00:12:34:56"
  int vlan = 0, qos = 0;
  std::optional<bool> spoofchk, trust;  // nullopt: the driver does not report it
};

// The port to that information; a NIC PF's interface name in, its VFs out.
class VfLinkSource {
 public:
  virtual ~VfLinkSource() = default;
  virtual Result<std::vector<VfLink>> vfs(const std::string& ifname) const = 0;
};

struct VirtualFunction {
  PciAddress address;
  int index = 0;                   // N of the PF's virtfnN link
  const Device* device = nullptr;  // null when the bus does not list it
  Assessment assessment;
  std::optional<VfLink> link;
};

struct PhysicalFunction {
  const Device* device = nullptr;
  std::optional<int> total_vfs, num_vfs;
  std::optional<bool> drivers_autoprobe;
  std::vector<std::string> interfaces;  // its network interfaces (/sys/.../net)
  std::vector<VirtualFunction> vfs;     // by index
  std::vector<std::string> problems;    // attribute files unreadable or out of range; netlink
};

// Every SR-IOV PF (sriov_totalvfs present), or only `pf`; `links` may be null (no VF MAC/VLAN).
Result<std::vector<PhysicalFunction>> list(const HostFs& fs, const Inventory& inv,
                                           const GroupMap& groups, const HostImpact& impact,
                                           const std::optional<PciAddress>& pf,
                                           const VfLinkSource* links);

struct CreateRequest {
  PciAddress pf;
  int count = 0;
  std::optional<std::string> bind;  // "vfio-pci" or "pci-stub": every new VF moved to it
  bool no_autoprobe = false;        // sriov_drivers_autoprobe=0 (implied by bind)
  bool dry_run = false;
  const Inventory* inventory = nullptr;  // the caller's scan (null: scan here)
  // Files changed in the same transaction (vf create --persist): planned for the VFs bound
  // (their addresses, predicted when they are yet to be made; none without --bind).
  const assign::DurableFiles* durable = nullptr;
};

struct RemoveRequest {
  PciAddress pf;
  bool dry_run = false;
  const Inventory* inventory = nullptr;
  const assign::DurableFiles* durable = nullptr;  // vf remove --persist: planned for no VFs
};

struct Report {
  PciAddress pf;
  int num_vfs_before = 0, num_vfs = 0;
  std::vector<PciAddress> removed;  // VFs that existed and are gone (or would be)
  std::vector<PciAddress> created;  // VFs made (predicted from sriov_offset/stride in a dry run)
  std::vector<PciAddress> bound;    // of them, moved to the bind driver
  std::string driver;               // that driver ("" without --bind)
  std::optional<bool> drivers_autoprobe;  // after
  std::vector<assign::Step> steps;
  bool dry_run = false;
  assign::DurableOutcome durable;  // the request's files
};

Result<Report> create(HostFs& fs, const CreateRequest& req, const assign::Environment& env);

// create's checks and runtime changes without running them (`pcipass apply FILE` puts them in
// its one plan); `vfs` are the VFs it leaves (predicted when they are yet to be made).
struct CreatePlanned {
  Report report;
  std::vector<change::Change> changes;
  std::vector<PciAddress> vfs;
};
Result<CreatePlanned> plan_create(const HostFs& fs, const CreateRequest& req, const Inventory& inv,
                                  const assign::Environment& env);
Result<Report> remove(HostFs& fs, const RemoveRequest& req, const assign::Environment& env);

}  // namespace pcipass::sriov
