// What pcipass reads from a libvirt domain's XML (virDomainGetXMLDesc): its machine, the guest
// PCI places its devices use, its root ports, and its host devices; and from that the guest's
// slot budget for `attach` and `plan --domain`. The XML comes from libvirt, but it is still input:
// the reader is a small, bounded parser of elements and attributes (no DTDs, no entities beyond
// the five predefined and numeric ones), and any malformed document is an Error, never a crash.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pci/address.h"
#include "util/result.h"
#include "vm/hotplug.h"
#include "vm/libvirt_xml.h"

namespace pcipass::vm {

struct XmlElement {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<XmlElement> children;
  std::string text;  // character data directly inside, concatenated

  const std::string* attribute(std::string_view name) const;
  const XmlElement* child(std::string_view name) const;
};

// The root element. Limits: 16 MiB of text, 64 levels of nesting.
Result<XmlElement> parse_xml(std::string_view text);

// A root port (<controller type='pci' model='pcie-root-port'>): its bus is its index.
struct RootPort {
  int index = 0;
  bool hotplug = true;    // <target hotplug='off'/> makes it cold-plug only
  bool occupied = false;  // a device's <address> is on its bus
};

struct DomainHostdev {
  PciAddress host;
  bool managed = true;
  std::optional<GuestAddress> guest;
};

struct DomainPci {
  std::string name;
  std::string machine_type;  // <os><type machine='pc-q35-7.2'>
  Machine machine = Machine::kQ35;
  std::set<int> root_slots;  // slots of bus 0 in use (slot 0, the host bridge, always)
  std::vector<RootPort> root_ports;
  std::vector<DomainHostdev> hostdevs;  // <hostdev type='pci'> in document order
};

// Errors (kInvalid) name what is malformed: not XML, not a <domain>, an address out of range.
Result<DomainPci> parse_domain_xml(std::string_view xml);

// The slots i440fx's bus 0 has, and what a free place is on each machine.
inline constexpr int kPcRootSlots = 32;

enum class Affect { kLive, kConfig };
const char* affect_name(Affect a);  // "live", "config"

// Room for `cards` more hot-pluggable (live) or defined (config) cards.
struct SlotBudget {
  Machine machine = Machine::kQ35;
  Affect affect = Affect::kConfig;
  int free = 0;                  // q35: empty hot-pluggable root ports; pc: free slots on bus 0
  int needed = 0;                // one place per card
  int remaining = 0;             // free - needed, at least 0
  bool libvirt_adds = false;     // config: libvirt adds root ports (q35) or a pci-bridge (pc)
  std::vector<int> free_places;  // q35: root port indexes (buses); pc: bus 0 slots, ascending
  bool refused() const;
  std::string describe() const;  // "3 free pcie-root-ports, 1 needed: 2 left"
};
SlotBudget slot_budget(const DomainPci& d, Affect affect, int cards);

// The refusal when the budget says none is left, else nothing; the warnings when few are left.
Status check_budget(const SlotBudget& b, const std::string& domain);
std::vector<std::string> budget_warnings(const SlotBudget& b, const std::string& domain);

}  // namespace pcipass::vm
