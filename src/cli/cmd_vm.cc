// pcipass xml and qemu-args: a device as a VM definition takes it (docs/vm.md). The library
// (src/vm) builds the elements and arguments; this file parses options and prints.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "mdev/mdev.h"
#include "vm/libvirt_xml.h"
#include "vm/qemu_args.h"

namespace pcipass::cli {
namespace {

Result<vm::Selection> vm_selection(Context& ctx, const Args& a) {
  Inventory* inv = TRY(ctx.inventory());
  auto devices = TRY(resolve_devices(*inv, a));
  return vm::select_for_vm(*inv, ctx.groups(), devices, a.with_group);
}

Json cards_json(const vm::Selection& s) {
  Json cards = Json::array();
  for (const auto& c : s.cards) {
    Json functions = Json::array();
    for (const Device* d : c.functions) functions.push_back(d->address.str());
    cards.push_back({{"host", c.host_name()},
                     {"whole", c.whole},
                     {"multifunction", c.multifunction()},
                     {"iommu_group", c.iommu_group},
                     {"functions", functions}});
  }
  return cards;
}

Json hostdev_json(const vm::Hostdev& h) {
  Json guest = nullptr;
  if (h.guest)
    guest = {{"bus", h.guest->bus},
             {"slot", h.guest->slot},
             {"function", h.guest->function},
             {"multifunction", h.guest->multifunction}};
  return {{"address", h.host.str()},
          {"iommu_group", h.iommu_group},
          {"managed", h.managed},
          {"rom_bar", h.rom_bar_off ? Json("off") : Json(nullptr)},
          {"rom_file", or_null(h.rom_file)},
          {"guest_address", guest}};
}

Json lines_json(const std::vector<vm::ConfigLine>& lines) {
  Json out = Json::array();
  for (const auto& l : lines) out.push_back({{"key", l.key}, {"value", l.value}});
  return out;
}

// The warning goes to stderr so that stdout stays what a file takes; --json carries it too.
Json warn_host_critical(Context& ctx, const vm::Selection& s) {
  Json list = Json::array();
  for (const auto& c : vm::host_critical(s, ctx.impact())) {
    print_warning(ctx.err, ctx.term,
                  fmt::format("{} {}: a VM started with it takes it from the host (see `pcipass "
                              "plan {}`)",
                              c.address.str(), c.reason, c.address.str()));
    list.push_back({{"address", c.address.str()}, {"reason", c.reason}});
  }
  return list;
}

// Mediated devices named by UUID instead of PCI devices: every DEVICE argument a UUID (nullopt:
// none is), each active or defined; one not active yet is a warning, the VM start would fail.
Result<std::optional<std::vector<mdev::Mdev>>> mdev_arguments(Context& ctx, const Args& a) {
  size_t n = 0;
  for (const auto& d : a.devices) n += mdev::looks_like_uuid(d);
  if (n == 0) return std::optional<std::vector<mdev::Mdev>>();
  if (n != a.devices.size())
    return Error::invalid("PCI devices and mdev UUIDs in one command",
                          "name the PCI devices and the mdevs in two commands");
  if (a.with_group || a.x_vga || !a.rom_file.empty() || a.rom_bar == "off" || a.format != "qemu")
    return Error::invalid(
        "--with-group, --x-vga, --rom-bar, --rom-file and --format apply to "
        "PCI cards, not to mediated devices",
        "leave them out for mdev UUIDs");
  std::vector<mdev::Mdev> out;
  for (const auto& d : a.devices) {
    std::string uuid = TRY(mdev::parse_uuid(d, "DEVICE"));
    auto m = TRY(mdev::find(ctx.fs(), uuid));
    if (!m)
      return Error::not_found(fmt::format("no mdev {} (active or defined)", uuid),
                              "create it first: pcipass mdev create PARENT TYPE --uuid " + uuid);
    if (!m->active)
      print_warning(ctx.err, ctx.term,
                    fmt::format("mdev {} is defined but not active: the VM will not start "
                                "until it is (pcipass mdev create {} {} --uuid {})",
                                uuid, m->parent, m->type, uuid));
    out.push_back(std::move(*m));
  }
  return std::optional<std::vector<mdev::Mdev>>(std::move(out));
}

Json mdevs_json(const std::vector<mdev::Mdev>& mdevs) {
  Json out = Json::array();
  for (const auto& m : mdevs)
    out.push_back({{"uuid", m.uuid},
                   {"parent", m.parent},
                   {"type", m.type},
                   {"active", m.active},
                   {"sysfsdev", "/sys/bus/mdev/devices/" + m.uuid}});
  return out;
}

std::vector<std::string> uuids(const std::vector<mdev::Mdev>& mdevs) {
  std::vector<std::string> out;
  for (const auto& m : mdevs) out.push_back(m.uuid);
  return out;
}

int run_mdev_xml(Context& ctx, const std::vector<mdev::Mdev>& mdevs) {
  std::string xml = vm::libvirt_mdev_xml(uuids(mdevs));
  if (!ctx.json) {
    ctx.out << xml;
    return kExitOk;
  }
  ctx.out << dump_json({{"schema", "pcipass.xml/1"},
                        {"xml", xml},
                        {"hostdevs", Json::array()},
                        {"mdevs", mdevs_json(mdevs)},
                        {"cards", Json::array()},
                        {"host_critical", Json::array()}})
          << '\n';
  return kExitOk;
}

int run_mdev_qemu_args(Context& ctx, const Args& a, const std::vector<mdev::Mdev>& mdevs) {
  auto argv = vm::qemu_mdev_argv(uuids(mdevs));
  if (!ctx.json) {
    ctx.out << vm::shell_lines(argv);
    return kExitOk;
  }
  ctx.out << dump_json({{"schema", "pcipass.qemu-args/1"},
                        {"format", a.format},
                        {"machine", a.machine},
                        {"argv", argv},
                        {"mdevs", mdevs_json(mdevs)},
                        {"cards", Json::array()},
                        {"host_critical", Json::array()}})
          << '\n';
  return kExitOk;
}

void print_config_lines(Context& ctx, const std::vector<vm::ConfigLine>& lines) {
  for (const auto& l : lines) ctx.out << l.key << ": " << l.value << '\n';
}

void add_rom_options(CLI::App& app, Args& a) {
  app.add_option("--rom-bar", a.rom_bar, "off: hide the card's ROM BAR from the guest")
      ->check(CLI::IsMember({"on", "off"}));
}

}  // namespace

void setup_xml(CLI::App& app, Args& a) {
  add_devices(app, a, true);
  app.add_flag("--with-group", a.with_group,
               "Pass every endpoint of the devices' IOMMU groups (bridges stay)");
  app.add_option("--managed", a.managed,
                 "yes (default): libvirt binds the devices to vfio-pci at VM start and gives them "
                 "back after; no: for hosts that bind them at boot with `pcipass bind --persist`")
      ->check(CLI::IsMember({"yes", "no"}));
  add_rom_options(app, a);
  app.add_option("--rom-file,--romfile", a.rom_file,
                 "ROM image for the card (an absolute path that must exist)");
}

int run_xml(Context& ctx, const Args& a) {
  auto mdevs = mdev_arguments(ctx, a);
  if (!mdevs) return fail(ctx, mdevs.error());
  if (*mdevs) return run_mdev_xml(ctx, **mdevs);
  auto sel = vm_selection(ctx, a);
  if (!sel) return fail(ctx, sel.error());
  if (!a.rom_file.empty())
    if (auto ok = vm::check_rom_file(ctx.fs(), a.rom_file, *sel); !ok) return fail(ctx, ok.error());
  Json critical = warn_host_critical(ctx, *sel);
  auto hostdevs = vm::libvirt_hostdevs(*sel, {a.managed == "yes", a.rom_bar == "off", a.rom_file});
  if (!hostdevs) return fail(ctx, hostdevs.error());
  std::string xml = vm::libvirt_xml(*hostdevs);
  if (!ctx.json) {
    ctx.out << xml;
    return kExitOk;
  }
  Json list = Json::array();
  for (const auto& h : *hostdevs) list.push_back(hostdev_json(h));
  Json j{{"schema", "pcipass.xml/1"},
         {"xml", xml},
         {"hostdevs", list},
         {"cards", cards_json(*sel)},
         {"host_critical", critical}};
  ctx.out << dump_json(j) << '\n';
  return kExitOk;
}

void setup_qemu_args(CLI::App& app, Args& a) {
  add_devices(app, a, false);
  app.add_flag("--with-group", a.with_group,
               "Pass every endpoint of the devices' IOMMU groups (bridges stay)");
  app.add_option("--machine", a.machine, "q35 (default: a pcie-root-port per card) or pc")
      ->check(CLI::IsMember({"q35", "pc"}));
  app.add_flag("--x-vga", a.x_vga,
               "The GPU is the guest's primary VGA (x-vga on its VGA function)");
  add_rom_options(app, a);
  app.add_option("--romfile,--rom-file", a.rom_file,
                 "ROM image: an absolute path for qemu; for proxmox a file name in "
                 "/usr/share/kvm/, where Proxmox looks it up");
  app.add_option("--format", a.format,
                 "qemu (default): -device arguments; proxmox: hostpciN lines for "
                 "/etc/pve/qemu-server/VMID.conf; proxmox-mapping: /etc/pve/mapping/pci.cfg")
      ->check(CLI::IsMember({"qemu", "proxmox", "proxmox-mapping"}));
  app.add_option_function<std::string>(
         "--node", [&a](const std::string& v) { a.node = v; },
         "Proxmox node for proxmox-mapping (default: this host's name from /etc/hostname)")
      ->option_text("NAME");
  app.add_option("--driver", a.driver, "vfio-pci, the only way QEMU assigns host devices");
  app.add_flag("--pci-assign", a.pci_assign,
               "Explain what replaced -device pci-assign (removed from QEMU and Linux)");
}

namespace {

// Only vfio-pci assigns devices now: pci-assign (and its kvm- spelling) gets the explanation.
Status check_driver(const Args& a) {
  if (a.pci_assign || a.driver.find("pci-assign") != std::string::npos)
    return vm::pci_assign_removed();
  if (a.driver != "vfio-pci")
    return Error::invalid(fmt::format("qemu-args knows no driver '{}'", a.driver),
                          "leave out --driver: QEMU assigns host devices with vfio-pci");
  return {};
}

Result<vm::QemuOptions> qemu_options(Context& ctx, const Args& a, const vm::Selection& s) {
  vm::QemuOptions o{a.machine == "pc" ? vm::Machine::kPc : vm::Machine::kQ35, a.x_vga,
                    a.rom_bar == "off", a.rom_file};
  if (a.x_vga) TRY(vm::check_x_vga(s));
  if (a.rom_file.empty()) return o;
  std::string path = a.rom_file;
  if (a.format != "qemu") path = TRY(vm::proxmox_rom_path(a.rom_file));
  TRY(vm::check_rom_file(ctx.fs(), path, s));
  return o;
}

int print_qemu(Context& ctx, const Args& a, const vm::Selection& s, const vm::QemuOptions& o,
               Json& j) {
  auto argv = vm::qemu_argv(s, o);
  if (!argv) return fail(ctx, argv.error());
  j["machine"] = a.machine;
  j["argv"] = *argv;
  if (!ctx.json) ctx.out << vm::shell_lines(*argv);
  return kExitOk;
}

int print_proxmox(Context& ctx, const Args& a, const vm::Selection& s, const vm::QemuOptions& o,
                  Json& j) {
  auto lines = vm::proxmox_hostpci(s, o);
  if (!lines) return fail(ctx, lines.error());
  j["machine"] = a.machine;
  j["lines"] = lines_json(*lines);
  if (!ctx.json) print_config_lines(ctx, *lines);
  return kExitOk;
}

int print_mapping(Context& ctx, const Args& a, const vm::Selection& s, const vm::QemuOptions& o,
                  Json& j) {
  auto node = vm::proxmox_node(ctx.fs(), a.node);
  if (!node) return fail(ctx, node.error());
  auto entries = vm::proxmox_mapping(s, *node);
  auto lines = vm::proxmox_hostpci(s, o, &entries);
  if (!lines) return fail(ctx, lines.error());
  Json maps = Json::array();
  for (const auto& e : entries)
    maps.push_back(
        {{"id", e.id}, {"path", e.path}, {"iommu_group", e.iommu_group}, {"map", e.map}});
  std::string text = vm::mapping_text(entries);
  j["machine"] = a.machine;
  j["node"] = *node;
  j["mappings"] = maps;
  j["text"] = text;
  j["lines"] = lines_json(*lines);
  if (!ctx.json) ctx.out << text;
  return kExitOk;
}

}  // namespace

int run_qemu_args(Context& ctx, const Args& a) {
  if (auto ok = check_driver(a); !ok) return fail(ctx, ok.error());
  if (a.devices.empty())
    return fail(ctx, Error::invalid("qemu-args needs at least one DEVICE",
                                    "name the device, e.g. `pcipass qemu-args 01:00.0`"));
  auto mdevs = mdev_arguments(ctx, a);
  if (!mdevs) return fail(ctx, mdevs.error());
  if (*mdevs) return run_mdev_qemu_args(ctx, a, **mdevs);
  auto sel = vm_selection(ctx, a);
  if (!sel) return fail(ctx, sel.error());
  auto o = qemu_options(ctx, a, *sel);
  if (!o) return fail(ctx, o.error());
  Json critical = warn_host_critical(ctx, *sel);
  Json j{{"schema", "pcipass.qemu-args/1"}, {"format", a.format}};
  int status = a.format == "qemu"      ? print_qemu(ctx, a, *sel, *o, j)
               : a.format == "proxmox" ? print_proxmox(ctx, a, *sel, *o, j)
                                       : print_mapping(ctx, a, *sel, *o, j);
  if (status != kExitOk) return status;
  j["cards"] = cards_json(*sel);
  j["host_critical"] = critical;
  if (ctx.json) ctx.out << dump_json(j) << '\n';
  return kExitOk;
}

}  // namespace pcipass::cli
