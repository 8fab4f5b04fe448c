#include "pci/inventory.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdint>
#include <set>
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

// The kernel's own values first: it applies quirks (class fixups, IDs of SR-IOV VFs, which read
// 0xffff in config space) and lspci and the modalias show them. `uevent` has the kernel's IDs,
// class and driver in one file (PCI_ID, PCI_SUBSYS_ID, PCI_CLASS, DRIVER); the single attributes
// stand in where it is missing (captured trees), then config space. Config space gives the
// header type. sriov_numvfs rides along: it exists on SR-IOV physical functions only, and one
// lookup in the same call is cheaper than a stat of its own (bench/list-vs-lspci).
enum Attr { kVendor, kDevice, kSubVendor, kSubDevice, kClass, kRevision, kIdCount };
const char* const kAttrNames[] = {"vendor",           "device", "subsystem_vendor",
                                  "subsystem_device", "class",  "revision"};
constexpr uint32_t kAttrMax[] = {0xffff, 0xffff, 0xffff, 0xffff, 0xffffff, 0xff};
// Two calls, because one limit applies to all files of a call: config space is read no further
// than its 64-byte header (each dword is a config cycle on real hardware), uevent is longer.
// The revision is the header's byte 8: the kernel's `revision` attribute is that byte as read at
// enumeration (pci_setup_device; no quirk rewrites it, unlike the class), so its own file is read
// only where config space is missing, which saves four calls a device.
enum HeaderFile { kConfig, kUevent, kNumVfs };
const std::vector<std::string> kShortFiles = {"config"};
const std::vector<std::string> kLongFiles = {"uevent", "sriov_numvfs"};
const std::vector<std::string> kUeventOnly = {"uevent"};

// "0x10de\n" (as the kernel writes them) or decimal, at most `max`; nullopt when malformed.
std::optional<uint32_t> parse_attr(std::string_view s, uint32_t max, int base = 0) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2), base = 16;
  if (base == 0) base = 10;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > max) return std::nullopt;
  return static_cast<uint32_t>(v);
}

struct IdValues {
  std::optional<uint32_t> v[kIdCount];
  bool uevent = false;  // the driver below is known
  std::optional<std::string> driver;
};

void bad_value(std::vector<std::string>& problems, const std::string& file, uint32_t max,
               std::string_view text) {
  problems.push_back(
      fmt::format("{}: not a number up to {:#x}: '{}'", file, max, trim(text.substr(0, 32))));
}

// "PCI_ID=8086:15B8" -> both halves, hexadecimal as the kernel prints them.
void id_pair(std::string_view value, std::optional<uint32_t>& hi, std::optional<uint32_t>& lo) {
  auto colon = value.find(':');
  if (colon == std::string_view::npos) return;
  hi = parse_attr(value.substr(0, colon), 0xffff, 16);
  lo = parse_attr(value.substr(colon + 1), 0xffff, 16);
}

// `dir` names the file in problems only: its path is put together when a value is bad.
void from_uevent(const std::string& text, const std::string& dir, IdValues& out,
                 std::vector<std::string>& problems) {
  auto file = [&](const char* key) { return dir + "/uevent " + key; };
  out.uevent = true;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "DRIVER") {
      out.driver = std::string(value);
    } else if (key == "PCI_CLASS") {
      out.v[kClass] = parse_attr(value, kAttrMax[kClass], 16);
      if (!out.v[kClass]) bad_value(problems, file("PCI_CLASS"), kAttrMax[kClass], value);
    } else if (key == "PCI_ID") {
      id_pair(value, out.v[kVendor], out.v[kDevice]);
      if (!out.v[kVendor] || !out.v[kDevice]) bad_value(problems, file("PCI_ID"), 0xffff, value);
    } else if (key == "PCI_SUBSYS_ID") {
      id_pair(value, out.v[kSubVendor], out.v[kSubDevice]);
      if (!out.v[kSubVendor] || !out.v[kSubDevice])
        bad_value(problems, file("PCI_SUBSYS_ID"), 0xffff, value);
    }
  }
}

void attribute(const Result<std::string>& r, int i, const std::string& dir, IdValues& out,
               std::vector<std::string>& problems) {
  if (!r) return;  // missing in older trees: config space has it
  out.v[i] = parse_attr(*r, kAttrMax[i]);
  if (!out.v[i]) bad_value(problems, dir + "/" + kAttrNames[i], kAttrMax[i], *r);
}

IdValues kernel_values(const HostFs& fs, const std::string& dir,
                       const std::vector<Result<std::string>>& files,
                       std::vector<std::string>& problems) {
  IdValues out;
  if (files[kUevent]) from_uevent(*files[kUevent], dir, out, problems);
  bool have_config = files[kConfig] && files[kConfig]->size() == 64;
  int wanted = have_config ? kRevision : kIdCount;
  std::vector<std::string> missing;
  for (int i = 0; i < wanted; ++i)
    if (!out.v[i]) missing.push_back(kAttrNames[i]);
  if (missing.empty()) return out;
  auto more = fs.read_each(dir, missing, 64);
  for (size_t m = 0, i = 0; i < static_cast<size_t>(wanted); ++i)
    if (!out.v[i] && m < more.size()) attribute(more[m++], static_cast<int>(i), dir, out, problems);
  return out;
}

// An integer attribute in [min, max] ("0x1a" or decimal); nullopt when absent, and when
// unreadable or out of range, which is recorded in `problems` naming the file.
std::optional<int> int_attr(const HostFs& fs, const std::string& path, int64_t min, int64_t max,
                            std::vector<std::string>& problems) {
  auto text = fs.read(path, 64);
  if (!text) {
    if (text.error().err != ENOENT) problems.push_back(text.error().describe());
    return std::nullopt;
  }
  std::string s = trim(*text);
  bool negative = s.starts_with('-');
  std::string_view digits = std::string_view(s).substr(negative ? 1 : 0);
  int base = 10;
  if (digits.starts_with("0x") || digits.starts_with("0X")) digits.remove_prefix(2), base = 16;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  bool parsed = !digits.empty() && ec == std::errc() && end == digits.data() + digits.size() &&
                v <= (uint64_t(1) << 32);
  int64_t n = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  if (!parsed || n < min || n > max) {
    problems.push_back(
        fmt::format("{}: '{}' is not a number from {} to {}", path, s.substr(0, 32), min, max));
    return std::nullopt;
  }
  return static_cast<int>(n);
}

// What read_ids learnt beyond the Device fields.
struct IdFacts {
  bool maybe_vf = false;       // config space reads vendor 0xffff, as a VF's does, or is missing
  bool sriov_capable = false;  // sriov_numvfs exists
  bool driver_known = false;   // from uevent: no need for the driver link
};

IdFacts read_ids(const HostFs& fs, const std::string& dir, Device& d,
                 std::vector<std::string>& problems) {
  auto files = fs.read_each(dir, kShortFiles, 64);
  // A VF (its config space reads vendor 0xffff) has no SR-IOV capability of its own (PCIe
  // base spec, 9.3.3): no sriov_numvfs to look for. On a host with thousands of VFs that is
  // one lookup a device less.
  bool vf_config =
      files[kConfig] && files[kConfig]->size() >= 2 && u16_at(*files[kConfig], 0) == 0xffff;
  // Nor has a bridge (header type 1 or 2): the kernel gives SR-IOV to endpoints only
  // (sriov_init: PCI_EXP_TYPE_ENDPOINT or RC_END).
  int header = files[kConfig] && files[kConfig]->size() == 64 ? (*files[kConfig])[0x0e] & 0x7f : 0;
  bool bridge_config = header == 1 || header == 2;
  for (auto& r : fs.read_each(dir, vf_config || bridge_config ? kUeventOnly : kLongFiles, 1024))
    files.push_back(std::move(r));
  IdFacts facts;
  facts.sriov_capable =
      files.size() > kNumVfs && (files[kNumVfs].ok() || files[kNumVfs].error().err != ENOENT);
  IdValues a = kernel_values(fs, dir, files, problems);
  if (a.uevent) {
    facts.driver_known = true;
    d.driver = a.driver;
  }
  auto pick = [&](int i, uint32_t fallback) { return a.v[i].value_or(fallback); };
  if (files[kConfig] && files[kConfig]->size() == 64) {
    const std::string& b = *files[kConfig];
    d.header_type = static_cast<uint8_t>(b[0x0e]);
    bool type0 = (d.header_type & 0x7f) == 0;  // bridges keep subsystem IDs in a capability
    d.vendor = static_cast<uint16_t>(pick(kVendor, u16_at(b, 0)));
    d.device = static_cast<uint16_t>(pick(kDevice, u16_at(b, 2)));
    d.revision = static_cast<uint8_t>(pick(kRevision, static_cast<uint8_t>(b[8])));
    d.class_code = pick(kClass, u16_at(b, 10) << 8 | static_cast<uint8_t>(b[9]));
    d.subsystem_vendor = static_cast<uint16_t>(pick(kSubVendor, type0 ? u16_at(b, 0x2c) : 0));
    d.subsystem_device = static_cast<uint16_t>(pick(kSubDevice, type0 ? u16_at(b, 0x2e) : 0));
    facts.maybe_vf = u16_at(b, 0) == 0xffff;
    return facts;
  }
  facts.maybe_vf = true;
  d.vendor = static_cast<uint16_t>(pick(kVendor, 0));
  d.device = static_cast<uint16_t>(pick(kDevice, 0));
  d.subsystem_vendor = static_cast<uint16_t>(pick(kSubVendor, 0));
  d.subsystem_device = static_cast<uint16_t>(pick(kSubDevice, 0));
  d.revision = static_cast<uint8_t>(pick(kRevision, 0));
  d.class_code = pick(kClass, 0);
  if ((d.class_code >> 8) == 0x0604 || (d.class_code >> 8) == 0x0609) d.header_type = 1;
  return facts;
}

// `target` (a link's text) read from directory `dir`, normalised without touching the disk.
std::string lexically_joined(std::string_view dir, std::string_view target) {
  std::vector<std::string_view> parts;
  parts.reserve(16);  // /sys/bus/pci/devices and a device's depth: one allocation, not five
  auto walk = [&](std::string_view path) {
    while (!path.empty()) {
      size_t slash = path.find('/');
      std::string_view part = path.substr(0, slash);
      path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
      if (part == "..") {
        if (!parts.empty()) parts.pop_back();
      } else if (!part.empty() && part != ".") {
        parts.push_back(part);
      }
    }
  };
  if (!target.starts_with('/')) walk(dir);
  walk(target);
  std::string out;
  out.reserve(dir.size() + target.size() + 1);  // never longer: one allocation, not four
  for (auto p : parts) (out += '/') += p;
  return out.empty() ? "/" : out;
}

// The canonical path of a device: its bus link's target made absolute. sysfs directories below
// /sys/devices are never links, so lexical normalisation is exact and costs one readlink instead
// of realpath's one per component (bench/list-vs-lspci).
Result<std::string> device_path(const HostFs& fs, const std::string& dir, const std::string& name) {
  std::string link = dir + "/" + name;
  auto target = fs.read_link(link);
  if (!target) return fs.resolve(link);
  std::string normal = lexically_joined(dir, *target);
  if (!normal.starts_with("/sys/devices/")) return fs.resolve(link);
  return normal;
}

void read_links(const HostFs& fs, const std::string& dir, Device& d, bool driver_known,
                std::vector<std::string>& problems) {
  if (!driver_known) d.driver = fs.link_basename(dir + "/driver");
  if (auto g = fs.link_basename(dir + "/iommu_group")) {
    auto n = g->find_first_not_of("0123456789") == std::string::npos ? parse_attr(*g, INT32_MAX, 10)
                                                                     : std::nullopt;
    if (n)
      d.iommu_group = static_cast<int>(*n);
    else  // listed without a group, which is not the same as the IOMMU being off: say so
      problems.push_back(fmt::format("{}/iommu_group: '{}' is not an IOMMU group number up to {}",
                                     dir, g->substr(0, 32), INT32_MAX));
  }
}

void read_virtfns(const HostFs& fs, const std::string& dir, Device& d,
                  std::vector<std::string>& problems) {
  for (const auto& entry : list_or_problem(fs, dir, problems))
    if (entry.starts_with("virtfn"))
      if (auto target = fs.link_basename(dir + "/" + entry))
        if (auto a = parse_address(*target)) d.virtfns.push_back(*a);
  std::sort(d.virtfns.begin(), d.virtfns.end());
}

void read_names(const PciIds& ids, Device& d) {
  d.vendor_name = ids.vendor(d.vendor);
  d.device_name = ids.device(d.vendor, d.device);
  d.class_name = ids.class_name(d.class_code);
  if (d.subsystem_vendor)
    d.subsystem_name = ids.subsystem(d.vendor, d.device, d.subsystem_vendor, d.subsystem_device);
}

// Files are read in the canonical directory: no bus link to follow on every lookup. A VF's
// physfn link is left to scan(), which knows it from its PF's virtfn links.
Result<Device> read_device(const HostFs& fs, const std::string& name, const PciIds* ids,
                           std::vector<std::string>& problems, bool& maybe_vf) {
  Device d;
  d.address = TRY(parse_address(name));
  d.sysfs_path = TRY(device_path(fs, kPciDevicesDir, name));
  const std::string& dir = d.sysfs_path;
  auto chain = addresses_in_path(dir);
  if (!chain.empty() && chain.back() == d.address) chain.pop_back();
  d.parents = std::move(chain);
  IdFacts facts = read_ids(fs, dir, d, problems);
  maybe_vf = facts.maybe_vf;
  read_links(fs, dir, d, facts.driver_known, problems);
  if (facts.sriov_capable) read_virtfns(fs, dir, d, problems);
  if ((d.class_code >> 16) == 0x03)
    d.boot_vga = int_attr(fs, dir + "/boot_vga", 0, 1, problems).value_or(0) == 1;
  if (ids) read_names(*ids, d);
  return d;
}

// physfn of each VF: from its PF's virtfn links, read anyway; a device that looks like a VF but
// that no PF claims reads its own link.
void link_virtual_functions(const HostFs& fs, std::vector<Device>& devices,
                            const std::vector<bool>& maybe_vf,
                            const std::map<PciAddress, size_t>& index) {
  std::vector<bool> claimed(devices.size());
  for (const auto& pf : devices)
    for (const auto& vf : pf.virtfns)
      if (auto it = index.find(vf); it != index.end()) {
        devices[it->second].physfn = pf.address;
        claimed[it->second] = true;
      }
  for (size_t i = 0; i < devices.size(); ++i) {
    if (claimed[i] || !maybe_vf[i]) continue;
    if (auto pf = fs.link_basename(devices[i].sysfs_path + "/physfn"))
      if (auto a = parse_address(*pf)) devices[i].physfn = *a;
  }
}

// Why an entry of /sys/bus/pci/devices is no device, or nullopt. The kernel names each entry by
// its address and links it to a directory of that name; anything else (a file, a dangling link,
// an alias under a second name or to another device's directory) would be listed as a device
// that does not exist, or twice.
std::optional<std::string> not_a_device_entry(const std::string& name, const Device& d) {
  if (name != d.address.str())
    return fmt::format("it is not named as the kernel names devices ({})", d.address.str());
  if (base_name(d.sysfs_path) != name)
    return fmt::format("it leads to {}, another device's directory", d.sysfs_path);
  return std::nullopt;
}

// Vendor 0000 is no PCI vendor: it is what a device reads as when none of its ID files could be
// read. Only then is the entry looked at again, to say why (no cost for the others).
std::optional<std::string> unreadable_entry(const HostFs& fs, const std::string& name,
                                            const Device& d) {
  if (d.vendor != 0) return std::nullopt;
  std::string entry = std::string(kPciDevicesDir) + "/" + name;
  switch (fs.type(entry)) {
    case FileType::kMissing:
      return fs.type(entry, false) == FileType::kLink ? "it is a dangling link"
                                                      : "it vanished while being read";
    case FileType::kDir:
      break;
    default:
      return "it is not a directory";
  }
  if (auto files = fs.list(d.sysfs_path); !files)
    return "cannot read it: " + files.error().describe();
  if (auto config = fs.read(d.sysfs_path + "/config", 64); !config)
    return "cannot read its config space: " + config.error().describe();
  return std::nullopt;
}

}  // namespace

Result<Inventory> Inventory::scan(const HostFs& fs, const PciIds* ids) {
  auto names = fs.list(kPciDevicesDir);
  if (!names) return names.error();  // the caller knows whether this is the live host
  Inventory inv;
  std::vector<std::pair<Device, bool>> read;  // device, maybe a VF
  read.reserve(names->size());
  for (const auto& name : *names) inv.add(fs, name, ids, read);
  inv.assemble(fs, std::move(read));
  if (ids && ids->problem()) inv.problems_.push_back(*ids->problem());
  return inv;
}

Result<Inventory> Inventory::scan_devices(const HostFs& fs, const std::vector<PciAddress>& wanted,
                                          const PciIds* ids) {
  auto bus = fs.type(kPciDevicesDir);
  if (bus != FileType::kDir) return scan(fs, ids);  // the same error as a whole scan
  Inventory inv;
  std::vector<std::pair<Device, bool>> read;
  std::set<std::string> done;
  auto add = [&](const std::string& name) {
    if (done.insert(name).second && fs.type(join_path(kPciDevicesDir, name)) != FileType::kMissing)
      inv.add(fs, name, ids, read);
  };
  for (const auto& a : wanted) add(a.str());
  std::set<int> groups;
  for (const auto& [d, vf] : read)
    if (d.iommu_group) groups.insert(*d.iommu_group);
  for (int g : groups)
    for (const auto& name :
         list_or_problem(fs, fmt::format("/sys/kernel/iommu_groups/{}/devices", g), inv.problems_))
      if (parse_address(name)) add(name);
  // Whether this host has groups at all, also when no named device has one.
  if (!inv.groups_present_)
    inv.groups_present_ = !list_or_problem(fs, "/sys/kernel/iommu_groups", inv.problems_).empty();
  inv.assemble(fs, std::move(read));
  return inv;
}

void Inventory::add(const HostFs& fs, const std::string& name, const PciIds* ids,
                    std::vector<std::pair<Device, bool>>& read) {
  bool maybe_vf = false;
  // Its attributes' problems count only if it is kept: a skipped entry's one line says why.
  std::vector<std::string> problems;
  auto d = read_device(fs, name, ids, problems, maybe_vf);
  if (!d) {  // e.g. unplugged mid-scan: report it, list the rest
    problems_.push_back(fmt::format("skipped {}: {}", name, d.error().message));
    return;
  }
  auto why = not_a_device_entry(name, *d);
  if (!why) why = unreadable_entry(fs, name, *d);
  if (why) {
    problems_.push_back(fmt::format("skipped {}/{}: {}", kPciDevicesDir, name, *why));
    return;
  }
  problems_.insert(problems_.end(), problems.begin(), problems.end());
  groups_present_ |= d->iommu_group.has_value();
  read.emplace_back(std::move(*d), maybe_vf);
}

void Inventory::assemble(const HostFs& fs, std::vector<std::pair<Device, bool>> read) {
  // The bus directory lists devices in address order already: a Device is ~20 members to move.
  auto by_address = [](const auto& a, const auto& b) { return a.first.address < b.first.address; };
  if (!std::is_sorted(read.begin(), read.end(), by_address))
    std::sort(read.begin(), read.end(), by_address);
  std::vector<bool> maybe_vf;
  devices_.reserve(devices_.size() + read.size());
  maybe_vf.reserve(read.size());
  for (auto& [d, vf] : read) {
    devices_.push_back(std::move(d));
    maybe_vf.push_back(vf);
  }
  for (size_t i = 0; i < devices_.size(); ++i) index_[devices_[i].address] = i;
  link_virtual_functions(fs, devices_, maybe_vf, index_);
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
  if (auto alias = fs.read_value(dir + "/modalias"); !alias)
    x.problems.push_back(alias.error().describe());  // "no module matches" would be a guess
  else if (*alias)
    x.modalias = **alias;
  if (modules) x.modules = modules->modules_for_alias(x.modalias);
  std::sort(x.modules.begin(), x.modules.end());
  x.modules.erase(std::unique(x.modules.begin(), x.modules.end()), x.modules.end());
  // -1: no NUMA node; beyond the kernel's MAX_NUMNODES (1024) is a problem of the file.
  if (auto n = int_attr(fs, dir + "/numa_node", -1, 1023, x.problems); n && *n >= 0)
    x.numa_node = n;
  x.irq = int_attr(fs, dir + "/irq", 0, INT32_MAX, x.problems);
  if (auto r = fs.read_trimmed(dir + "/reset_method")) {
    std::istringstream in(*r);
    std::string m;
    while (in >> m) x.reset_methods.push_back(m);
  }
  x.link_speed = fs.read_trimmed(dir + "/current_link_speed");
  x.link_width = fs.read_trimmed(dir + "/current_link_width");
  x.max_link_speed = fs.read_trimmed(dir + "/max_link_speed");
  x.max_link_width = fs.read_trimmed(dir + "/max_link_width");
  // The SR-IOV capability's counts are 16 bits wide.
  x.sriov_totalvfs = int_attr(fs, dir + "/sriov_totalvfs", 0, 0xffff, x.problems);
  x.sriov_numvfs = int_attr(fs, dir + "/sriov_numvfs", 0, 0xffff, x.problems);
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
