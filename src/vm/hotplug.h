// Hot-plugging a host device into a running QEMU over QMP (`pcipass hotplug`) and unplugging it
// (`pcipass unplug`). The guest's PCI topology comes from `query-pci`, whose reply nests bridges
// (devices[].pci_bridge.devices[]); a root port counts as free only when QOM confirms nothing is
// plugged into it, because a guest whose firmware has not run yet (QEMU -S) reports every bridge
// with secondary bus 0 and no devices below it (seen on QEMU 7.2: tests/fixtures/qmp/).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "assign/assign.h"
#include "host/host_fs.h"
#include "pci/address.h"
#include "vm/qmp.h"

namespace pcipass::vm {

enum class Machine { kQ35, kPc };
const char* machine_name(Machine m);

// What query-pci says about hot-plug room in the guest.
struct GuestSlots {
  Machine machine = Machine::kQ35;
  std::string root_bus;                 // "pcie.0" or "pci.0"
  std::vector<std::string> root_ports;  // q35: ids of every pcie-root-port, in query-pci order
  std::vector<int> used_root_slots;     // slots of bus 0 holding a device
};

// Parses a query-pci "return" value. Errors name what is malformed; any JSON is safe to pass.
Result<GuestSlots> parse_query_pci(const Json& reply);

// The free places: q35, the root ports with nothing plugged in (`occupied` says so for an id);
// pc, the root bus when one of its 32 slots is free.
struct Placement {
  std::vector<std::string> free_ports;  // q35
  int free_root_slots = 0;              // pc: 32 minus the used slots
};

struct HotplugRequest {
  std::string socket;
  PciAddress device;
  std::string id;  // empty: "pcipass-" + the address with '.' and ':' as '-'
  bool dry_run = false;
  const Inventory* inventory = nullptr;
  // As bind's: the group's other endpoints go to vfio-pci too (they stay on the host side; QEMU
  // needs the whole group viable), and devices the host needs may be taken.
  bool with_group = false, force = false;
};

struct HotplugReport {
  Machine machine = Machine::kQ35;
  std::string id, bus;
  Json device_add;             // the arguments of device_add
  std::vector<Json> commands;  // every QMP command sent (dry run: and the one not sent)
  assign::BindReport bind;     // bound first when not on vfio-pci yet
  int remaining = 0;           // hot-plug places left after this one
  std::vector<std::string> warnings;
  bool dry_run = false;
};

// Binds the device to vfio-pci (bind's engine and safety checks) when it is not on it yet, then
// device_add's it into a free place. Nothing is bound when the guest has no room.
Result<HotplugReport> hotplug(HostFs& fs, QmpConnector& connector, const ProcessContext& process,
                              const assign::Environment& env, const HotplugRequest& req,
                              QmpOptions options = {});

struct UnplugRequest {
  std::string socket;  // QMP unix socket
  std::string id;      // the device's id in the guest
  int timeout_s = 30;  // how long to wait for DEVICE_DELETED
  bool dry_run = false;
};

struct UnplugReport {
  std::string id;
  std::string type;  // QOM type of the device ("vfio-pci"); dry run only
  std::string path;  // DEVICE_DELETED's data.path
  int waited_s = 0;
  bool dry_run = false;
};

// device_del, then waits up to timeout_s for DEVICE_DELETED of that id. A guest that does not
// release it in time, or reports DEVICE_UNPLUG_GUEST_ERROR, is an error. A dry run only looks the
// id up among the guest's devices (qom-list /machine/peripheral) and sends nothing else.
Result<UnplugReport> unplug(QmpConnector& connector, const ProcessContext& process,
                            const UnplugRequest& req, QmpOptions options = {});

// The default id of a hot-plugged device: "pcipass-0000-01-00-0".
std::string default_device_id(const PciAddress& a);

}  // namespace pcipass::vm
