#include "pci/inventory.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "host/modules.h"

namespace pcipass {

std::string Device::kind() const {
  return class_kind(class_code);
}
std::string Device::id_pair() const {
  return fmt::format("{:04x}:{:04x}", vendor, device);
}

namespace {


uint16_t u16_at(const std::string& b, size_t o) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[o]) | (static_cast<uint8_t>(b[o + 1]) << 8));
}

// The 64-byte header gives IDs, class and revision in one read; attribute files are the
// fallback for trees captured without config space.
void read_ids(const HostFs& fs, const std::string& dir, Device& d) {
  if (auto cfg = fs.read(dir + "/config", 64); cfg.ok() && cfg->size() == 64) {
    const std::string& b = *cfg;
    d.vendor = u16_at(b, 0);
    d.device = u16_at(b, 2);
    d.revision = static_cast<uint8_t>(b[8]);
    d.class_code = u16_at(b, 10) << 8 | static_cast<uint8_t>(b[9]);
    d.header_type = static_cast<uint8_t>(b[0x0e]);
    if ((d.header_type & 0x7f) == 0) {
      d.subsystem_vendor = u16_at(b, 0x2c);
      d.subsystem_device = u16_at(b, 0x2e);
    } else {  // bridges keep them in a capability, which the kernel has already decoded
      d.subsystem_vendor =
          static_cast<uint16_t>(fs.read_number(dir + "/subsystem_vendor").value_or(0));
      d.subsystem_device =
          static_cast<uint16_t>(fs.read_number(dir + "/subsystem_device").value_or(0));
    }
    // SR-IOV VFs read 0xffff as their IDs in config space; the kernel's attributes have the real
    // ones.
    if (d.vendor == 0xffff) {
      d.vendor = static_cast<uint16_t>(fs.read_number(dir + "/vendor").value_or(0xffff));
      d.device = static_cast<uint16_t>(fs.read_number(dir + "/device").value_or(0xffff));
    }
    return;
  }
  auto num = [&](const char* attr) { return fs.read_number(dir + "/" + attr).value_or(0); };
  d.vendor = static_cast<uint16_t>(num("vendor"));
  d.device = static_cast<uint16_t>(num("device"));
  d.subsystem_vendor = static_cast<uint16_t>(num("subsystem_vendor"));
  d.subsystem_device = static_cast<uint16_t>(num("subsystem_device"));
  d.revision = static_cast<uint8_t>(num("revision"));
  d.class_code = static_cast<uint32_t>(num("class"));
  if ((d.class_code >> 8) == 0x0604 || (d.class_code >> 8) == 0x0609) d.header_type = 1;
}

// The canonical path of a device: its bus link's target made absolute. sysfs directories below
// /sys/devices are never links, so lexical normalisation is exact and costs one readlink instead
// of realpath's one per component (bench/list-vs-lspci).
Result<std::string> device_path(const HostFs& fs, const std::string& link) {
  auto target = fs.read_link(link);
  if (!target) return fs.resolve(link);
  std::filesystem::path p = std::filesystem::path(link).parent_path() / *target;
  std::string normal = p.lexically_normal().string();
  if (!normal.starts_with("/sys/devices/")) return fs.resolve(link);
  return normal;
}

Result<Device> read_device(const HostFs& fs, const std::string& name, const PciIds* ids) {
  Device d;
  d.address = TRY(parse_address(name));
  std::string dir = std::string(kPciDevicesDir) + "/" + name;
  d.sysfs_path = TRY(device_path(fs, dir));
  auto chain = addresses_in_path(d.sysfs_path);
  if (!chain.empty() && chain.back() == d.address) chain.pop_back();
  d.parents = std::move(chain);
  read_ids(fs, dir, d);
  d.driver = fs.link_basename(dir + "/driver");
  if (auto g = fs.link_basename(dir + "/iommu_group");
      g && !g->empty() && g->find_first_not_of("0123456789") == std::string::npos)
    d.iommu_group = std::stoi(*g);
  if (auto pf = fs.link_basename(dir + "/physfn"))
    if (auto a = parse_address(*pf)) d.physfn = *a;
  if (fs.exists(dir + "/sriov_numvfs")) {
    for (const auto& entry : fs.list(dir).value_or({}))
      if (entry.starts_with("virtfn"))
        if (auto target = fs.link_basename(dir + "/" + entry))
          if (auto a = parse_address(*target)) d.virtfns.push_back(*a);
    std::sort(d.virtfns.begin(), d.virtfns.end());
  }
  if ((d.class_code >> 16) == 0x03) d.boot_vga = fs.read_number(dir + "/boot_vga").value_or(0) == 1;
  if (ids) {
    d.vendor_name = ids->vendor(d.vendor);
    d.device_name = ids->device(d.vendor, d.device);
    d.class_name = ids->class_name(d.class_code);
    if (d.subsystem_vendor)
      d.subsystem_name = ids->subsystem(d.vendor, d.device, d.subsystem_vendor, d.subsystem_device);
  }
  return d;
}

}  // namespace

Result<Inventory> Inventory::scan(const HostFs& fs, const PciIds* ids) {
  auto names = fs.list(kPciDevicesDir);
  if (!names) return names.error();  // the caller knows whether this is the live host
  Inventory inv;
  for (const auto& name : *names) {
    auto d = read_device(fs, name, ids);
    if (!d) {  // e.g. unplugged mid-scan: report it, list the rest
      inv.problems_.push_back(fmt::format("skipped {}: {}", name, d.error().message));
      continue;
    }
    inv.groups_present_ |= d->iommu_group.has_value();
    inv.devices_.push_back(std::move(*d));
  }
  std::sort(inv.devices_.begin(), inv.devices_.end(),
            [](const Device& a, const Device& b) { return a.address < b.address; });
  for (size_t i = 0; i < inv.devices_.size(); ++i) inv.index_[inv.devices_[i].address] = i;
  return inv;
}

const Device* Inventory::find(const PciAddress& a) const {
  auto it = index_.find(a);
  return it == index_.end() ? nullptr : &devices_[it->second];
}

Device* Inventory::find(const PciAddress& a) {
  auto it = index_.find(a);
  return it == index_.end() ? nullptr : &devices_[it->second];
}

std::vector<const Device*> Inventory::children(const PciAddress& bridge) const {
  std::vector<const Device*> out;
  for (const auto& d : devices_)
    if (!d.parents.empty() && d.parents.back() == bridge) out.push_back(&d);
  return out;
}

namespace {

// Up to three existing addresses closest to a missing one, for "did you mean".
std::string nearest(const std::vector<Device>& devices, const PciAddress& want) {
  auto key = [](const PciAddress& a) {
    return (int64_t(a.domain) << 16) | (a.bus << 8) | (a.slot << 3) | a.function;
  };
  std::vector<std::pair<int64_t, std::string>> scored;
  for (const auto& d : devices)
    scored.emplace_back(std::llabs(key(d.address) - key(want)), d.address.str());
  std::sort(scored.begin(), scored.end());
  std::string out;
  for (size_t i = 0; i < scored.size() && i < 3; ++i) out += (i ? ", " : "") + scored[i].second;
  return out;
}

}  // namespace

Result<std::vector<const Device*>> Inventory::select(const std::string& argument) const {
  auto sel = TRY(parse_selector(argument));
  std::vector<const Device*> out;
  if (auto* a = std::get_if<PciAddress>(&sel)) {
    if (const Device* d = find(*a)) return std::vector<const Device*>{d};
    std::string fix = devices_.empty()
                          ? "this host has no PCI devices"
                          : "nearest devices: " + nearest(devices_, *a) + " (see `pcipass list`)";
    return Error::not_found(fmt::format("no PCI device {} on this host", a->str()), fix);
  }
  const auto& id = std::get<IdPattern>(sel);
  for (const auto& d : devices_)
    if (id.matches(d.vendor, d.device)) out.push_back(&d);
  if (out.empty())
    return Error::not_found(fmt::format("no PCI device with ID {} on this host", id.str()),
                            "`pcipass list` shows every device with its [vendor:device] IDs");
  return out;
}

void Inventory::load_details(const HostFs& fs, Device& d, const ModuleIndex* modules) const {
  Device::Details x;
  std::string dir = std::string(kPciDevicesDir) + "/" + d.address.str();
  if (auto o = fs.read_trimmed(dir + "/driver_override"); o && !o->empty() && *o != "(null)")
    x.driver_override = *o;
  x.modalias = fs.read_trimmed(dir + "/modalias").value_or("");
  if (modules) x.modules = modules->modules_for_alias(x.modalias);
  std::sort(x.modules.begin(), x.modules.end());
  x.modules.erase(std::unique(x.modules.begin(), x.modules.end()), x.modules.end());
  if (auto n = fs.read_number(dir + "/numa_node"); n && *n >= 0) x.numa_node = static_cast<int>(*n);
  if (auto n = fs.read_number(dir + "/irq")) x.irq = static_cast<int>(*n);
  if (auto r = fs.read_trimmed(dir + "/reset_method")) {
    std::istringstream in(*r);
    std::string m;
    while (in >> m) x.reset_methods.push_back(m);
  }
  x.link_speed = fs.read_trimmed(dir + "/current_link_speed");
  x.link_width = fs.read_trimmed(dir + "/current_link_width");
  x.max_link_speed = fs.read_trimmed(dir + "/max_link_speed");
  x.max_link_width = fs.read_trimmed(dir + "/max_link_width");
  if (auto n = fs.read_number(dir + "/sriov_totalvfs")) x.sriov_totalvfs = static_cast<int>(*n);
  if (auto n = fs.read_number(dir + "/sriov_numvfs")) x.sriov_numvfs = static_cast<int>(*n);
  if (auto cfg = fs.read(dir + "/config", 4096); cfg.ok()) {
    if (auto cs = parse_config_space(*cfg))
      x.config = std::move(*cs);
    else
      x.config_error = cs.error().message;
  } else {
    x.config_error = cfg.error().message;
  }
  d.details = std::move(x);
}

}  // namespace pcipass
