// QEMU -device arguments and Proxmox VE configuration lines for a Selection (`pcipass qemu-args`).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "vm/selection.h"

namespace pcipass::vm {

enum class Machine { kQ35, kPc };

struct QemuOptions {
  Machine machine = Machine::kQ35;
  bool x_vga = false;
  bool rom_bar_off = false;
  std::string romfile;  // qemu: an absolute path; Proxmox: a name under /usr/share/kvm/
};

// --x-vga needs a VGA function among the cards; the error names the devices and the fix.
Status check_x_vga(const Selection& s);

// QEMU's argv: on q35 one pcie-root-port per card (id rpN, chassis N, slot N from 1) and the
// card's functions at addr 00.F of it, multifunction=on on function 0; on pc the cards on the
// root bus pci.0 from slot 0x10 up (kFirstGuestSlot). x-vga=on on VGA functions, rombar and
// romfile on each card's first function.
Result<std::vector<std::string>> qemu_argv(const Selection& s, const QemuOptions& o);
// -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/UUID for each mediated device (validated UUIDs):
// QEMU opens an mdev by its sysfs directory, not by a host PCI address.
std::vector<std::string> qemu_mdev_argv(const std::vector<std::string>& uuids);
// One "-device VALUE" per line, joined with " \" as a shell reads a continued command; values
// with characters a shell would interpret are single-quoted.
std::string shell_lines(const std::vector<std::string>& argv);

// KVM's legacy device assignment is gone: the error `qemu-args --pci-assign` reports.
Error pci_assign_removed();

// Proxmox VE. The hostpci property string is PVE::QemuServer::PCI's `pve-qm-hostpci` format
// (qemu-server, PVE/QemuServer/PCI.pm, $hostpci_fmt): the default key `host` first, "bus:dev.func"
// or "bus:dev" for every function of a device, then the other keys in the sorted order in which
// PVE::JSONSchema::print_property_string writes them (pcie, rombar, romfile, x-vga). At most
// $MAX_HOSTPCI_DEVICES = 16 entries. romfile is a file name that Proxmox looks up under
// /usr/share/kvm/ ("romfile=/usr/share/kvm/$d->{romfile}" in print_hostpci_devices).
inline constexpr const char* kProxmoxRomDir = "/usr/share/kvm/";
inline constexpr size_t kProxmoxMaxHostpci = 16;
struct ConfigLine {
  std::string key, value;  // "hostpci0", "0000:01:00,pcie=1,x-vga=1"
};
struct MappingEntry;
// With `mapped` (proxmox_mapping's entries for the same Selection), each entry names its mapping
// ("mapping=ID", PVE 8) instead of the host address.
Result<std::vector<ConfigLine>> proxmox_hostpci(const Selection& s, const QemuOptions& o,
                                                const std::vector<MappingEntry>* mapped = nullptr);
// The host path of a Proxmox romfile name (no '/', ',' or ';': Proxmox's pattern [^,;]+ and
// its /usr/share/kvm/ prefix).
Result<std::string> proxmox_rom_path(const std::string& name);

// A PVE 8 resource mapping (/etc/pve/mapping/pci.cfg, pve-guest-common PVE/Mapping/PCI.pm): one
// section per card, named "pcipass-DDDD-BB-SS[-F]", with one `map` property string holding the
// keys Proxmox's assert_valid checks at VM start (id, iommugroup, subsystem-id) plus node and
// path, keys sorted as print_property_string writes them.
struct MappingEntry {
  std::string id;   // section name, a pve-configid
  std::string map;  // "id=10de:1b80,iommugroup=1,node=pve,path=0000:01:00,subsystem-id=..."
  std::string path;
  int iommu_group = 0;
};
std::vector<MappingEntry> proxmox_mapping(const Selection& s, const std::string& node);
// The sections as Proxmox's SectionConfig writes them: "ID\n\tmap VALUE\n", a blank line between.
std::string mapping_text(const std::vector<MappingEntry>& entries);
// The Proxmox node name: `given`, else the host's /etc/hostname up to its first dot (Proxmox's
// nodename is the short host name); it must be a pve-node name.
Result<std::string> proxmox_node(const HostFs& fs, const std::optional<std::string>& given);

}  // namespace pcipass::vm
