#include "setup/early_bind.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <sstream>

#include "assign/plan.h"
#include "change/change.h"

namespace pcipass::setup {

namespace {

constexpr const char* kRuleHeader =
    "# Written by `pcipass setup --early-bind`; `pcipass undo` removes it.\n"
    "# Each line hands one PCI device, by address and only while it has these IDs, to vfio-pci\n"
    "# before its host driver loads (here and in the initramfs).\n";
constexpr const char* kModprobeHeader =
    "# Written by `pcipass setup --early-bind`; `pcipass undo` removes it.\n"
    "# vfio-pci loads before these drivers, so it claims the devices set for it first.\n";

// The value of KEY=="VALUE" in a rule line.
std::optional<std::string> match_value(const std::string& line, const std::string& key) {
  auto at = line.find(key + "==\"");
  if (at == std::string::npos) return std::nullopt;
  at += key.size() + 3;
  auto end = line.find('"', at);
  if (end == std::string::npos) return std::nullopt;
  return line.substr(at, end - at);
}

std::optional<uint16_t> hex_id(const std::optional<std::string>& s) {
  if (!s || !s->starts_with("0x")) return std::nullopt;
  uint16_t v = 0;
  auto r = std::from_chars(s->data() + 2, s->data() + s->size(), v, 16);
  if (r.ec != std::errc() || r.ptr != s->data() + s->size()) return std::nullopt;
  return v;
}

bool is_vfio(const std::string& module) {
  return module.starts_with("vfio") || module == "pci_stub";
}

// The modules that would drive the device: those matching its modalias, and the module of the
// driver it has now (an out-of-tree one may match by a dynamic id instead).
std::vector<std::string> host_drivers(const HostFs& fs, const HostView& host, const Device& d,
                                      std::vector<std::string>& builtin) {
  std::vector<std::string> out;
  auto add = [&out](const std::string& m) {
    std::string n = ModuleIndex::normalize(m);
    if (!is_vfio(n) && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  };
  std::string dir = change::device_dir(d.address);
  if (auto alias = fs.read_trimmed(dir + "/modalias"); alias && !alias->empty())
    for (const auto& m : host.modules.modules_for_alias(*alias)) add(m);
  // The driver it has now: its module, or, without a module link or a module of its name that
  // is loaded or installed, a driver built into the kernel.
  if (d.driver && !is_vfio(ModuleIndex::normalize(*d.driver))) {
    auto module = fs.link_basename("/sys/bus/pci/drivers/" + *d.driver + "/module");
    std::string name = ModuleIndex::normalize(module.value_or(*d.driver));
    ModuleState st = host.modules.state(name);
    if (module || st == ModuleState::kLoaded || st == ModuleState::kAvailable)
      add(name);
    else if (std::find(builtin.begin(), builtin.end(), name) == builtin.end())
      builtin.push_back(name);
  }
  std::vector<std::string> loadable;
  for (const auto& m : out) {
    if (host.modules.state(m) == ModuleState::kBuiltin) {
      if (std::find(builtin.begin(), builtin.end(), m) == builtin.end()) builtin.push_back(m);
    } else {
      loadable.push_back(m);
    }
  }
  return loadable;
}

std::vector<std::string> softdep_modules(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto w = split_words(line.substr(0, line.find('#')));
    if (w.size() >= 4 && w[0] == "softdep" && w[2] == "pre:" &&
        std::any_of(w.begin() + 3, w.end(),
                    [](const std::string& m) { return ModuleIndex::normalize(m) == "vfio_pci"; }))
      out.push_back(ModuleIndex::normalize(w[1]));
  }
  return out;
}

std::string with_line(std::string text, const std::string& line) {
  if (!text.empty() && text.back() != '\n') text += '\n';
  return text + line + '\n';
}

void plan_file(const HostFs& fs, std::vector<change::Change>& plan, const std::string& path,
               std::string bytes) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (!fs.is_dir(dir)) plan.push_back(change::Change::dir_create(dir, 0755));
  plan.push_back(change::Change::file_write(path, std::move(bytes), 0644));
}

Status viable_at_boot(const HostView& host, const std::vector<PciAddress>& devices) {
  assign::Plan p = TRY(assign::make_plan(host.inv, host.groups, host.impact, devices, {}));
  // What holds a device open now is bind's concern: at boot nothing does yet.
  std::erase_if(p.refusals,
                [](const assign::Refusal& r) { return r.kind == assign::RefusalKind::kInUse; });
  if (!p.refusals.empty()) return p.refusal_error("set up early binding");
  return {};
}

}  // namespace

// The rule sets the attribute itself (ATTR{driver_override}="vfio-pci") rather than running a
// pcipass applier: udev applies ATTR assignments while processing the "add" event, before
// 80-drivers.rules loads the driver module for that event, and the rule works unchanged inside
// any initramfs (no pcipass binary, libraries or state file to ship there). Matching the address
// (KERNEL) tells identical cards apart; matching the IDs too makes a moved or swapped card in that
// slot stay with its host driver instead of being taken.
std::string udev_rule_line(const PciAddress& a, uint16_t vendor, uint16_t device) {
  return fmt::format(
      "ACTION==\"add\", SUBSYSTEM==\"pci\", KERNEL==\"{}\", ATTR{{vendor}}==\"0x{:04x}\", "
      "ATTR{{device}}==\"0x{:04x}\", ATTR{{driver_override}}=\"vfio-pci\"",
      a.str(), vendor, device);
}

std::vector<EarlyRule> parse_udev_rules(const std::string& text) {
  std::vector<EarlyRule> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t.find("driver_override") == std::string::npos) continue;
    auto kernel = match_value(t, "KERNEL");
    if (!kernel) continue;
    auto address = parse_address(*kernel);
    if (!address) continue;
    out.push_back(
        {*address, hex_id(match_value(t, "ATTR{vendor}")), hex_id(match_value(t, "ATTR{device}"))});
  }
  return out;
}

Result<EarlyBindReport> plan_early_bind(const HostFs& fs, const HostView& host,
                                        const std::vector<PciAddress>& devices) {
  if (devices.empty())
    return Error::invalid("--early-bind names no device",
                          "name devices by address: pcipass setup --early-bind 0000:01:00.0");
  // Without groups no device's viability can be judged; one reboot with the IOMMU on first.
  if (host.groups.groups().empty())
    return Error::state(
        "cannot set up early binding while the IOMMU is off: without IOMMU groups pcipass cannot "
        "tell what else a device would take with it",
        "turn the IOMMU on first (`pcipass setup --iommu`), reboot, then run `pcipass setup "
        "--early-bind` again");
  TRY(viable_at_boot(host, devices));
  EarlyBindReport r;
  r.part.kind = PartKind::kEarlyBind;
  std::string rules = TRY(change::read_file_state(fs, kUdevRulePath)).bytes;
  std::vector<EarlyRule> have = parse_udev_rules(rules);
  if (rules.empty()) rules = kRuleHeader;
  auto modprobe_state = TRY(change::read_file_state(fs, kModprobePath));
  std::string modprobe = modprobe_state.absent ? kModprobeHeader : modprobe_state.bytes;
  std::vector<std::string> ordered = softdep_modules(modprobe);
  for (const auto& a : devices) {
    const Device* d = host.inv.find(a);
    if (!d) return Error::not_found(a.str() + " is not on the PCI bus", "see `pcipass list`");
    EarlyDevice e{a, d->vendor, d->device, d->driver, {}, {}};
    e.softdeps = host_drivers(fs, host, *d, e.builtin);
    bool named = std::any_of(have.begin(), have.end(), [&](const EarlyRule& h) {
      return h.address == a && h.vendor == d->vendor && h.device == d->device;
    });
    if (!named) {
      rules = with_line(rules, udev_rule_line(a, d->vendor, d->device));
      r.added.push_back(a.str());
    }
    for (const auto& m : e.softdeps)
      if (std::find(ordered.begin(), ordered.end(), m) == ordered.end()) {
        modprobe = with_line(modprobe, fmt::format("softdep {} pre: vfio-pci", m));
        ordered.push_back(m);
      }
    for (const auto& b : e.builtin)
      r.notes.push_back(fmt::format(
          "{}: its host driver {} is built into the kernel, so only the udev rule (in the "
          "initramfs too) can win, by setting driver_override before the device is probed; "
          "`pcipass check` after a reboot says whether it did",
          a.str(), b));
    r.devices.push_back(std::move(e));
  }
  plan_file(fs, r.part.changes, kUdevRulePath, rules);
  if (!ordered.empty() || !modprobe_state.absent)
    plan_file(fs, r.part.changes, kModprobePath, modprobe);
  return r;
}

}  // namespace pcipass::setup
