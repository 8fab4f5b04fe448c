#include "vm/hotplug.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace pcipass::vm {
namespace {

constexpr int kRootSlots = 32;  // one PCI bus: 32 device numbers
// QEMU answers device_add of vfio-pci after pinning and mapping all guest memory for DMA.
constexpr int kDeviceAddTimeoutS = 300;

// Host bridges that tell the machine type apart ("id" of bus 0, slot 0).
constexpr int kIntelVendor = 0x8086, kQ35HostBridge = 0x29c0, kI440fxHostBridge = 0x1237;
// Root ports QEMU can hot-plug into: pcie-root-port (1b36:000c) and ioh3420 (8086:3420).
bool is_root_port(int vendor, int device) {
  return (vendor == 0x1b36 && device == 0x000c) || (vendor == kIntelVendor && device == 0x3420);
}

const char* kRootPortFix =
    "root ports cannot be hot-added: start the guest with one more root port per card you want "
    "to hot-plug (QEMU: -device pcie-root-port,id=pcipass-rp1,chassis=11,slot=11,bus=pcie.0; "
    "libvirt: <controller type='pci' model='pcie-root-port'/>)";

int int_field(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return -1;
  auto v = it->get<int64_t>();
  return v < 0 || v > 0xffff ? -1 : static_cast<int>(v);
}

std::string string_field(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Error malformed(const std::string& what) {
  return Error::state("malformed query-pci reply: " + what,
                      "report it with the QEMU version (`query-version`)");
}

// Every root port below `devices` (nested bridges included; depth bounded: hostile input).
Status collect_ports(const Json& devices, std::vector<std::string>& ports, int depth) {
  if (!devices.is_array()) return malformed("\"devices\" is not a list");
  if (depth > 16) return malformed("bridges nested more than 16 deep");
  for (const auto& d : devices) {
    if (!d.is_object()) return malformed("a device is not an object");
    auto id = d.find("id");
    if (id != d.end() && id->is_object() &&
        is_root_port(int_field(*id, "vendor"), int_field(*id, "device")) &&
        !string_field(d, "qdev_id").empty())
      ports.push_back(string_field(d, "qdev_id"));
    auto bridge = d.find("pci_bridge");
    if (bridge == d.end() || !bridge->is_object()) continue;
    auto below = bridge->find("devices");
    if (below != bridge->end()) TRY(collect_ports(*below, ports, depth + 1));
  }
  return {};
}

Result<Machine> machine_of(const Json& root_devices) {
  for (const auto& d : root_devices) {
    if (!d.is_object() || int_field(d, "slot") != 0 || int_field(d, "function") != 0) continue;
    auto id = d.find("id");
    if (id == d.end() || !id->is_object()) break;
    int vendor = int_field(*id, "vendor"), device = int_field(*id, "device");
    if (vendor == kIntelVendor && device == kQ35HostBridge) return Machine::kQ35;
    if (vendor == kIntelVendor && device == kI440fxHostBridge) return Machine::kPc;
    return Error::state(fmt::format("the guest's host bridge {:04x}:{:04x} is neither q35's nor "
                                    "pc's (i440fx)",
                                    vendor & 0xffff, device & 0xffff),
                        "pcipass hot-plugs into -machine q35 and pc guests");
  }
  return malformed("no host bridge at 00.0 of bus 0");
}

// True when QOM lists a device plugged into root port `port` (its bus is named after its id).
Result<bool> port_occupied(QmpClient& qmp, const std::string& port) {
  auto props = TRY(qmp.execute("qom-list", {{"path", "/machine/peripheral/" + port + "/" + port}}));
  if (!props.is_array()) return malformed("qom-list of root port " + port + " is not a list");
  for (const auto& p : props)
    if (p.is_object() && string_field(p, "name").rfind("child[", 0) == 0) return true;
  return false;
}

Result<Placement> find_places(QmpClient& qmp, const GuestSlots& slots,
                              std::vector<Json>& commands) {
  Placement out;
  if (slots.machine == Machine::kPc) {
    out.free_root_slots = kRootSlots - static_cast<int>(slots.used_root_slots.size());
    return out;
  }
  for (const auto& port : slots.root_ports) {
    commands.push_back({{"execute", "qom-list"},
                        {"arguments", {{"path", "/machine/peripheral/" + port + "/" + port}}}});
    if (!TRY(port_occupied(qmp, port))) out.free_ports.push_back(port);
  }
  return out;
}

Status check_room(const std::string& socket, const GuestSlots& slots, const Placement& p) {
  if (slots.machine == Machine::kPc && p.free_root_slots <= 0)
    return Error::state(fmt::format("QMP socket {}: every one of the 32 slots of the pc guest's "
                                    "root bus is taken",
                                    socket),
                        "remove a device from the guest (`pcipass unplug`), or start it with "
                        "fewer devices");
  if (slots.machine == Machine::kQ35 && slots.root_ports.empty())
    return Error::state(
        fmt::format("QMP socket {}: the q35 guest has no pcie-root-port to hot-plug into", socket),
        kRootPortFix);
  if (slots.machine == Machine::kQ35 && p.free_ports.empty())
    return Error::state(
        fmt::format("QMP socket {}: every pcie-root-port of the q35 guest is in use ({})", socket,
                    fmt::join(slots.root_ports, ", ")),
        kRootPortFix);
  return {};
}

Result<assign::BindReport> bind_first(HostFs& fs, const assign::Environment& env,
                                      const HotplugRequest& req) {
  assign::BindRequest b;
  b.devices = {req.device};
  b.dry_run = req.dry_run;
  b.with_group = req.with_group;
  b.force = req.force;
  b.inventory = req.inventory;
  return assign::bind(fs, b, env);
}

void add_budget_warnings(HotplugReport& r) {
  if (r.remaining == 0 && r.machine == Machine::kQ35)
    r.warnings.push_back(std::string(r.dry_run ? "this would take" : "this took") +
                         " the guest's last free root port: " + kRootPortFix);
  else if (r.remaining <= 3 && r.machine == Machine::kPc)
    r.warnings.push_back(fmt::format(
        "the pc guest has {} free slot{} left on its root bus (32 in all, paravirtual and "
        "assigned devices together)",
        r.remaining, r.remaining == 1 ? "" : "s"));
}

bool event_for(const Json& e, const char* name, const std::string& id) {
  if (!e.is_object() || string_field(e, "event") != name) return false;
  auto data = e.find("data");
  return data != e.end() && data->is_object() && string_field(*data, "device") == id;
}

// "paused (prelaunch)" / "running", for the timeout message; empty when QEMU does not say.
std::string guest_status(QmpClient& qmp) {
  auto s = qmp.execute("query-status");
  if (!s || !s->is_object()) return {};
  auto running = s->find("running");
  std::string status = string_field(*s, "status");
  if (running != s->end() && running->is_boolean() && !running->get<bool>())
    return "; the guest is not running (status " + status + ")";
  return {};
}

// The QOM type of the guest device `id` ("vfio-pci"): QEMU names user devices by id under
// /machine/peripheral as "child<TYPE>" properties.
Result<std::string> peripheral_type(QmpClient& qmp, const std::string& socket,
                                    const std::string& id) {
  auto props = TRY(qmp.execute("qom-list", {{"path", "/machine/peripheral"}}));
  if (!props.is_array())
    return Error::state("malformed qom-list reply: not a list",
                        "report it with the QEMU version (`query-version`)");
  std::vector<std::string> ids;
  for (const auto& p : props) {
    std::string type = string_field(p, "type");
    if (!p.is_object() || type.rfind("child<", 0) != 0 || type.back() != '>') continue;
    if (string_field(p, "name") == id) return type.substr(6, type.size() - 7);
    ids.push_back(string_field(p, "name"));
  }
  return Error::state(
      fmt::format("QMP socket {}: the guest has no device with id {} (ids: {})", socket, id,
                  ids.empty() ? std::string("none") : fmt::format("{}", fmt::join(ids, ", "))),
      "give the id that `pcipass hotplug` printed (its --json: \"id\")");
}

}  // namespace

const char* machine_name(Machine m) {
  return m == Machine::kQ35 ? "q35" : "pc";
}

std::string default_device_id(const PciAddress& a) {
  std::string s = "pcipass-" + a.str();
  std::replace(s.begin(), s.end(), ':', '-');
  std::replace(s.begin(), s.end(), '.', '-');
  return s;
}

Result<GuestSlots> parse_query_pci(const Json& reply) {
  if (!reply.is_array() || reply.empty()) return malformed("not a non-empty list of buses");
  const Json& root = reply.front();
  if (!root.is_object() || !root.contains("devices")) return malformed("bus 0 has no \"devices\"");
  const Json& devices = root["devices"];
  if (!devices.is_array()) return malformed("\"devices\" is not a list");
  GuestSlots out;
  out.machine = TRY(machine_of(devices));
  out.root_bus = out.machine == Machine::kQ35 ? "pcie.0" : "pci.0";
  std::set<int> used;
  for (const auto& d : devices)
    if (d.is_object() && int_field(d, "slot") >= 0 && int_field(d, "slot") < kRootSlots)
      used.insert(int_field(d, "slot"));
  out.used_root_slots.assign(used.begin(), used.end());
  for (const auto& bus : reply) {
    if (!bus.is_object()) return malformed("a bus is not an object");
    auto it = bus.find("devices");
    if (it != bus.end()) TRY(collect_ports(*it, out.root_ports, 0));
  }
  return out;
}

Result<HotplugReport> hotplug(HostFs& fs, QmpConnector& connector, const ProcessContext& process,
                              const assign::Environment& env, const HotplugRequest& req,
                              QmpOptions options) {
  auto qmp = TRY(QmpClient::open(connector, req.socket, process, options));
  HotplugReport r;
  r.dry_run = req.dry_run;
  r.id = req.id.empty() ? default_device_id(req.device) : req.id;
  r.commands.push_back({{"execute", "query-pci"}});
  auto slots = TRY(parse_query_pci(TRY(qmp->execute("query-pci"))));
  r.machine = slots.machine;
  auto places = TRY(find_places(*qmp, slots, r.commands));
  TRY(check_room(req.socket, slots, places));
  r.bind = TRY(bind_first(fs, env, req));
  for (const auto& w : r.bind.warnings) r.warnings.push_back(w);
  r.bus = slots.machine == Machine::kQ35 ? places.free_ports.front() : slots.root_bus;
  r.remaining = slots.machine == Machine::kQ35 ? static_cast<int>(places.free_ports.size()) - 1
                                               : places.free_root_slots - 1;
  r.device_add = {{"driver", "vfio-pci"}, {"host", req.device.str()}, {"id", r.id}, {"bus", r.bus}};
  r.commands.push_back({{"execute", "device_add"}, {"arguments", r.device_add}});
  add_budget_warnings(r);
  if (!req.dry_run) TRY(qmp->execute("device_add", r.device_add, kDeviceAddTimeoutS));
  return r;
}

namespace {

// What device_del can name: a QEMU id ([A-Za-z][A-Za-z0-9._-]*, QEMU's id_wellformed) or a QOM
// path (/machine/peripheral-anon/device[0]); both printable ASCII. Checked before anything is
// sent: a byte that is not UTF-8 cannot even be written as JSON.
Status check_device_id(const std::string& id) {
  bool printable =
      !id.empty() && std::all_of(id.begin(), id.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (printable) return {};
  return Error::invalid(fmt::format("invalid device id '{}' for unplug: QEMU names a device by "
                                    "letters, digits, '-', '.' and '_', or by its QOM path",
                                    id),
                        "give the id hotplug printed ('as pcipass-0000-01-00-0'), or see the "
                        "guest's ids with `pcipass unplug --qmp SOCKET ID --dry-run`");
}

}  // namespace

Result<UnplugReport> unplug(QmpConnector& connector, const ProcessContext& process,
                            const UnplugRequest& req, QmpOptions options) {
  const std::string& socket = req.socket;
  const std::string& id = req.id;
  TRY(check_device_id(id));
  const int timeout_s = req.timeout_s;
  auto qmp = TRY(QmpClient::open(connector, socket, process, options));
  if (req.dry_run) {
    UnplugReport out;
    out.id = id;
    out.dry_run = true;
    out.type = TRY(peripheral_type(*qmp, socket, id));
    return out;
  }
  int64_t start = qmp->now();
  auto del = qmp->execute("device_del", {{"id", id}});
  // QEMU refuses a second device_del while the first waits for the guest: wait on with it.
  if (!del && del.error().message.find("already in the process of unplug") == std::string::npos)
    return std::move(del).error();
  auto event = TRY(qmp->wait_event(
      [&](const Json& e) {
        return event_for(e, "DEVICE_DELETED", id) || event_for(e, "DEVICE_UNPLUG_GUEST_ERROR", id);
      },
      start + timeout_s));
  if (!event)
    return Error::state(
        fmt::format("QMP socket {}: the guest did not release {} within {} s (no "
                    "DEVICE_DELETED event){}",
                    socket, id, timeout_s, guest_status(*qmp)),
        "unplugging needs the guest OS to cooperate: a paused guest, one still booting, or one "
        "without ACPI hotplug (pc) or PCIe native hotplug (q35) never lets go. Resume it "
        "(`cont`, `virsh resume`) and run `pcipass unplug` again to wait longer, or stop the "
        "guest: QEMU frees the device when it exits");
  if (string_field(*event, "event") == "DEVICE_UNPLUG_GUEST_ERROR")
    return Error::state(fmt::format("QMP socket {}: the guest refused to release {} "
                                    "(DEVICE_UNPLUG_GUEST_ERROR)",
                                    socket, id),
                        "the guest OS failed the unplug: see its kernel log; stop using the "
                        "device in the guest and run `pcipass unplug` again");
  UnplugReport out;
  out.id = id;
  out.path = string_field((*event)["data"], "path");
  out.waited_s = static_cast<int>(qmp->now() - start);
  return out;
}

}  // namespace pcipass::vm
