// `pcipass attach` and `pcipass detach`: host devices into (out of) a libvirt domain through the
// Libvirt port. Before libvirt is asked anything that changes the domain: the IOMMU group and
// host-impact checks of `plan`, and the domain's PCI slot budget read from its XML.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/context.h"
#include "impact/impact.h"
#include "pci/groups.h"
#include "pci/inventory.h"
#include "vm/domain_xml.h"
#include "vm/libvirt_port.h"
#include "vm/libvirt_xml.h"

namespace pcipass::vm {

// --connect, else the process's LIBVIRT_DEFAULT_URI, else qemu:///system.
std::string libvirt_uri(const std::optional<std::string>& option, const ProcessContext& process);

struct DomainRequest {
  std::string uri, domain;
  std::vector<PciAddress> devices;
  bool with_group = false;
  bool force = false;  // attach: as bind --force, take a device the host needs
  AffectFlags flags;   // neither: live when the domain runs, else config (libvirt's "current")
  bool dry_run = false;
  XmlOptions xml;  // attach only
};

// One virDomain{Attach,Detach}DeviceFlags call: one <hostdev>, one host function.
struct DeviceCall {
  PciAddress address;
  std::string xml;
  bool done = false;
};

struct DomainReport {
  std::string uri, domain;
  DomainState state = DomainState::kOther;
  AffectFlags flags;
  std::vector<DeviceCall> calls;    // in the order made (dry run: would be made)
  std::vector<SlotBudget> budgets;  // attach: one per affected definition
  std::vector<std::string> warnings;
  bool dry_run = false;
};

// Refuses, before any change: a group the VM could not open or a host-critical device (plan's
// refusals), a device already in the domain, --live on a domain that is not running, and a
// domain with no room. A multifunction card's functions share one guest place (an empty
// pcie-root-port on q35, a free bus 0 slot on pc), function 0 attached last: QEMU exposes a
// slot to the guest when its function 0 appears. A failed call detaches what this run attached.
Result<DomainReport> attach(Libvirt& lib, const Inventory& inv, const GroupMap& groups,
                            const HostImpact& impact, const DomainRequest& req);

// Detaches the <hostdev> elements of `devices` (with_group: and the other endpoints of their
// groups that the domain has), found in the affected definitions; a device not there is an error.
Result<DomainReport> detach(Libvirt& lib, const Inventory& inv, const GroupMap& groups,
                            const DomainRequest& req);

// The slot budget of a domain for `cards` more cards (`plan --domain`): of the live definition
// when it runs, else the persistent one.
Result<SlotBudget> domain_budget(Libvirt& lib, const std::string& uri, const std::string& domain,
                                 int cards);

// pcipass's one-line diagnosis of libvirt's connection and hot-unplug errors. Errors about the
// device or the host (IOMMU off, group not viable, managed='no' on a host driver) are the doctor's
// catalog's (src/doctor/catalog.cc): the CLI asks it, so each message is known in one place.
std::optional<std::string> diagnose_libvirt_error(std::string_view message);

}  // namespace pcipass::vm
