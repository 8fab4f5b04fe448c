#include "vm/qemu_args.h"

#include <fmt/format.h>

#include <algorithm>

#include "vm/libvirt_xml.h"

namespace pcipass::vm {
namespace {

// QEMU's option parser ends a value at ','; a literal comma is written twice.
std::string qemu_escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == ',' ? std::string(",,") : std::string(1, c);
  return out;
}

std::string function_props(const Card& c, const Device& d, const QemuOptions& o) {
  std::string p;
  if (c.multifunction() && d.address.function == 0) p += ",multifunction=on";
  if (o.x_vga && is_vga(d)) p += ",x-vga=on";
  if (&d == c.functions.front()) {
    if (o.rom_bar_off) p += ",rombar=0";
    if (!o.romfile.empty()) p += ",romfile=" + qemu_escape(o.romfile);
  }
  return p;
}

bool shell_safe(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("-_=,.:/+@%").find(c) != std::string_view::npos;
  });
}

std::string shell_quote(const std::string& s) {
  if (shell_safe(s)) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// pve-node (PVE::JSONSchema): letters, digits and inner dashes.
bool valid_node(const std::string& n) {
  if (n.empty() || n.front() == '-' || n.back() == '-') return false;
  return std::all_of(n.begin(), n.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-'; });
}

std::string hex4(uint16_t v) {
  return fmt::format("{:04x}", v);
}

}  // namespace

Status check_x_vga(const Selection& s) {
  std::vector<std::string> names;
  for (const Card& c : s.cards) {
    if (c.has_vga()) return {};
    for (const Device* d : c.functions) names.push_back(d->address.str());
  }
  return Error::invalid(
      fmt::format("--x-vga applies to a VGA function (class 0300), and {} {} not one",
                  fmt::join(names, ", "), names.size() == 1 ? "is" : "are"),
      "name the GPU's VGA function (see `pcipass list`), or leave out --x-vga");
}

Result<std::vector<std::string>> qemu_argv(const Selection& s, const QemuOptions& o) {
  if (o.machine == Machine::kPc && s.cards.size() > 0x20u - kFirstGuestSlot)
    return Error::invalid(
        fmt::format("too many cards for the pc machine's root bus: {} named, slots 0x{:02x}-0x1f "
                    "hold {}",
                    s.cards.size(), kFirstGuestSlot, 0x20 - kFirstGuestSlot),
        "use --machine q35 (a root port per card), or pass fewer cards");
  std::vector<std::string> argv;
  int n = 0;
  for (const Card& c : s.cards) {
    ++n;
    std::string bus;
    if (o.machine == Machine::kQ35) {
      bus = fmt::format("rp{}", n);
      argv.push_back("-device");
      argv.push_back(fmt::format("pcie-root-port,id={},chassis={},slot={}", bus, n, n));
    }
    for (const Device* d : c.functions) {
      std::string addr = o.machine == Machine::kQ35
                             ? fmt::format("bus={},addr=00.{:x}", bus, c.guest_function(*d))
                             : fmt::format("bus=pci.0,addr={:x}.{:x}", kFirstGuestSlot + n - 1,
                                           c.guest_function(*d));
      argv.push_back("-device");
      argv.push_back(
          fmt::format("vfio-pci,host={},{}{}", d->address.str(), addr, function_props(c, *d, o)));
    }
  }
  return argv;
}

std::string shell_lines(const std::vector<std::string>& argv) {
  std::string out;
  for (size_t i = 0; i + 1 < argv.size(); i += 2) {
    out += argv[i] + " " + shell_quote(argv[i + 1]);
    out += i + 2 < argv.size() ? " \\\n" : "\n";
  }
  return out;
}

Error pci_assign_removed() {
  return Error::invalid(
      "-device pci-assign (KVM's legacy device assignment) no longer exists: it was removed "
      "from QEMU in 2.12 and from Linux in 4.12",
      "use vfio-pci: `pcipass qemu-args DEVICE...` prints its -device vfio-pci arguments (the "
      "device must be on vfio-pci: `pcipass bind DEVICE`)");
}

Result<std::string> proxmox_rom_path(const std::string& name) {
  if (name.empty() || name.find_first_of("/,;") != std::string::npos)
    return Error::invalid(
        fmt::format("Proxmox romfile '{}' must be a file name without '/', ',' or ';'", name),
        fmt::format("copy the ROM image into {} and give its name", kProxmoxRomDir));
  return kProxmoxRomDir + name;
}

Result<std::vector<ConfigLine>> proxmox_hostpci(const Selection& s, const QemuOptions& o,
                                                const std::vector<MappingEntry>* mapped) {
  if (s.cards.size() > kProxmoxMaxHostpci)
    return Error::invalid(fmt::format("Proxmox VE takes at most {} hostpci entries, and {} "
                                      "cards were named",
                                      kProxmoxMaxHostpci, s.cards.size()),
                          "pass fewer devices to this VM");
  std::vector<ConfigLine> out;
  for (const Card& c : s.cards) {
    std::string v = mapped ? "mapping=" + (*mapped)[out.size()].id : c.host_name();
    if (o.machine == Machine::kQ35) v += ",pcie=1";
    if (o.rom_bar_off) v += ",rombar=0";
    if (!o.romfile.empty()) v += ",romfile=" + o.romfile;
    if (o.x_vga && c.has_vga()) v += ",x-vga=1";
    out.push_back({fmt::format("hostpci{}", out.size()), v});
  }
  return out;
}

std::vector<MappingEntry> proxmox_mapping(const Selection& s, const std::string& node) {
  std::vector<MappingEntry> out;
  for (const Card& c : s.cards) {
    const Device& d = c.first();  // a whole card is checked by its function 0, as Proxmox does
    MappingEntry e;
    e.path = c.host_name();
    e.iommu_group = c.iommu_group;
    e.id = "pcipass-" + e.path;
    std::replace_if(
        e.id.begin(), e.id.end(), [](char ch) { return ch == ':' || ch == '.'; }, '-');
    e.map = fmt::format("id={}:{},iommugroup={},node={},path={}", hex4(d.vendor), hex4(d.device),
                        c.iommu_group, node, e.path);
    if (d.subsystem_vendor || d.subsystem_device)
      e.map +=
          fmt::format(",subsystem-id={}:{}", hex4(d.subsystem_vendor), hex4(d.subsystem_device));
    out.push_back(std::move(e));
  }
  return out;
}

std::string mapping_text(const std::vector<MappingEntry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    if (!out.empty()) out += '\n';
    out += fmt::format("{}\n\tmap {}\n", e.id, e.map);
  }
  return out;
}

Result<std::string> proxmox_node(const HostFs& fs, const std::optional<std::string>& given) {
  std::string node;
  if (given) {
    node = *given;
  } else {
    auto name = fs.read_trimmed("/etc/hostname");
    if (!name || name->empty())
      return Error::not_found("cannot read this host's name from /etc/hostname",
                              "give the Proxmox node name with --node NAME");
    node = name->substr(0, name->find('.'));
  }
  if (!valid_node(node))
    return Error::invalid(
        fmt::format("'{}' is not a Proxmox node name (letters, digits and inner dashes)", node),
        "give the node's name as `pvecm nodes` shows it with --node NAME");
  return node;
}

std::vector<std::string> qemu_mdev_argv(const std::vector<std::string>& uuids) {
  std::vector<std::string> argv;
  for (const auto& u : uuids) {
    argv.push_back("-device");
    argv.push_back("vfio-pci,sysfsdev=/sys/bus/mdev/devices/" + u);
  }
  return argv;
}

}  // namespace pcipass::vm
