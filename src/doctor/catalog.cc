#include "doctor/catalog.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "pci/groups.h"

namespace pcipass::doctor {
namespace {

constexpr size_t kMaxLogEvidence = 5;  // kernel log lines quoted per finding

std::string device_dir(const PciAddress& a) {
  return "/sys/bus/pci/devices/" + a.str();
}

// Kernel log lines containing every one of `words` (case-insensitive), the last few; with a
// device, only lines naming it.
std::vector<Evidence> kernel_lines(const Probe& p, std::initializer_list<std::string_view> words,
                                   const std::optional<PciAddress>& device = std::nullopt) {
  std::vector<Evidence> out;
  for (const auto& l : p.kernel.lines) {
    bool all =
        std::all_of(words.begin(), words.end(), [&](std::string_view w) { return matches(l, w); });
    if (all && (!device || l.find(device->str()) != std::string::npos))
      out.push_back({p.kernel.source, l.substr(0, 300)});
  }
  if (out.size() > kMaxLogEvidence) out.erase(out.begin(), out.end() - kMaxLogEvidence);
  return out;
}

void append(std::vector<Evidence>& to, std::vector<Evidence> from) {
  to.insert(to.end(), from.begin(), from.end());
}

// The number after `word` in the line ("group 12" -> 12).
std::optional<int> number_after(std::string_view line, std::string_view word) {
  for (size_t at = 0; at < line.size();) {
    auto it = std::search(line.begin() + static_cast<long>(at), line.end(), word.begin(),
                          word.end(), [](char a, char b) {
                            return std::tolower(static_cast<unsigned char>(a)) ==
                                   std::tolower(static_cast<unsigned char>(b));
                          });
    if (it == line.end()) return std::nullopt;
    size_t pos = static_cast<size_t>(it - line.begin()) + word.size();
    int v = 0;
    auto [end, ec] = std::from_chars(line.data() + pos, line.data() + line.size(), v);
    if (ec == std::errc() && end != line.data() + pos && v >= 0) return v;
    at = pos;
  }
  return std::nullopt;
}

std::string kernel_log_name(const Probe& p) {
  return p.kernel.source.empty() ? "no kernel log (/dev/kmsg is root's; no /var/log/kern.log)"
                                 : p.kernel.source;
}

// --- IOMMU off ---------------------------------------------------------------------------

std::optional<size_t> iommu_group_count(const HostFs& fs, Finding& f) {
  auto groups = fs.list("/sys/kernel/iommu_groups");
  if (!groups) {
    f.evidence.push_back({"/sys/kernel/iommu_groups", "missing: this kernel has no IOMMU support"});
    return std::nullopt;
  }
  f.evidence.push_back({"/sys/kernel/iommu_groups",
                        groups->empty()
                            ? "empty: the kernel runs without an IOMMU"
                            : fmt::format("{} groups: the IOMMU is on", groups->size())});
  return groups->size();
}

// The IOMMU parameters of /proc/cmdline, as evidence; true when one turns it off.
bool cmdline_evidence(const HostFs& fs, Finding& f) {
  auto cmdline = fs.read_trimmed("/proc/cmdline");
  if (!cmdline) return false;
  std::vector<std::string> iommu;
  bool off = false;
  for (const auto& w : split_words(*cmdline))
    if (w.starts_with("intel_iommu=") || w.starts_with("amd_iommu=") || w.starts_with("iommu=")) {
      iommu.push_back(w);
      off = off || w == "intel_iommu=off" || w == "amd_iommu=off";
    }
  f.evidence.push_back({"/proc/cmdline", iommu.empty()
                                             ? "no intel_iommu= or amd_iommu= parameter"
                                             : fmt::format("has {}", fmt::join(iommu, " "))});
  return off;
}

void examine_iommu_off(const Probe& p, Finding& f) {
  auto groups = iommu_group_count(p.fs, f);
  bool cmdline_off = cmdline_evidence(p.fs, f);
  auto dmar = kernel_lines(p, {"DMAR"});
  append(dmar, kernel_lines(p, {"AMD-Vi"}));
  bool firmware = !dmar.empty();
  if (!firmware)
    f.evidence.push_back({kernel_log_name(p),
                          "no DMAR or AMD-Vi line: the firmware described no IOMMU to the kernel, "
                          "or it is switched off"});
  append(f.evidence, std::move(dmar));
  f.confirmed = !groups || *groups == 0;
  f.explanation = !f.confirmed ? "this host has IOMMU groups now: the message is from another boot"
                  : cmdline_off
                      ? "the kernel runs without an IOMMU: its command line turns it off"
                      : "the kernel runs without an IOMMU, so no device can be given to a VM";
  if (cmdline_off)
    f.fix =
        "`pcipass setup --iommu` (it replaces the parameter that turns the IOMMU off) and "
        "reboot";
  else if (firmware && f.confirmed)
    f.fix =
        "`pcipass setup --iommu` and reboot: the firmware describes an IOMMU (the DMAR or "
        "AMD-Vi lines) that the kernel did not turn on";
  else
    f.fix =
        "turn on VT-d (Intel) or AMD-Vi/IOMMU (AMD) in the firmware setup, then run "
        "`pcipass setup --iommu` and reboot; `pcipass check` shows what is still missing";
}

// --- QEMU died under libvirt -------------------------------------------------------------

void examine_monitor(const Probe&, Finding& f) {
  f.confirmed = true;
  f.explanation =
      "QEMU exited while libvirt was talking to it; this message is libvirt's, the "
      "reason is what QEMU wrote before it died";
  f.fix =
      "read QEMU's own message: `pcipass doctor --domain DOMAIN` reads "
      "/var/log/libvirt/qemu/DOMAIN.log and explains it";
}

// --- VFIO not available ------------------------------------------------------------------

void examine_vfio_unsupported(const Probe& p, Finding& f) {
  auto groups = iommu_group_count(p.fs, f);
  std::vector<std::string> missing;
  for (const char* m : {"vfio", "vfio_iommu_type1", "vfio_pci"}) {
    bool loaded = p.fs.is_dir(std::string("/sys/module/") + m);
    f.evidence.push_back({std::string("/sys/module/") + m, loaded ? "loaded" : "not loaded"});
    if (!loaded) missing.push_back(m);
  }
  bool node = p.fs.exists("/dev/vfio/vfio");
  f.evidence.push_back({"/dev/vfio/vfio", node ? "present" : "missing"});
  bool no_iommu = !groups || *groups == 0;
  f.confirmed = no_iommu || !missing.empty() || !node;
  if (no_iommu) {
    f.explanation = "the kernel runs without an IOMMU, so VFIO has nothing to assign with";
    f.fix =
        "turn on VT-d or AMD-Vi in the firmware setup, then `pcipass setup --iommu --vfio` "
        "and reboot";
  } else if (!missing.empty() || !node) {
    f.explanation = fmt::format(
        "the VFIO modules are not loaded ({})",
        missing.empty() ? "no /dev/vfio/vfio" : fmt::format("{}", fmt::join(missing, ", ")));
    f.fix = "`modprobe vfio-pci` now, and `pcipass setup --vfio` to load VFIO at every boot";
  } else {
    f.explanation = "VFIO is loaded and the IOMMU is on now: the message is from another boot";
    f.fix = "start the VM again; `pcipass check` confirms the host is ready";
  }
}

// --- group not viable --------------------------------------------------------------------

std::optional<int> group_of(const Probe& p, const Finding& f) {
  if (auto n = number_after(p.line, "group ")) return n;
  if (!f.device) return std::nullopt;
  auto link = p.fs.link_basename(device_dir(*f.device) + "/iommu_group");
  int v = 0;
  if (!link || std::from_chars(link->data(), link->data() + link->size(), v).ec != std::errc())
    return std::nullopt;
  return v;
}

// The members of `group` on a host driver; nullopt when this host has no such group.
std::optional<std::vector<std::string>> blocking_members(const Probe& p, int group, Finding& f) {
  std::string dir = fmt::format("/sys/kernel/iommu_groups/{}/devices", group);
  auto members = p.fs.list(dir);
  if (!members) {
    f.evidence.push_back({dir, "missing: no such IOMMU group on this host now"});
    return std::nullopt;
  }
  std::vector<std::string> blocking;
  for (const auto& m : *members) {
    auto driver = p.fs.link_basename("/sys/bus/pci/devices/" + m + "/driver");
    bool ok = driver_keeps_group_viable(driver) || driver == "pcieport";
    f.evidence.push_back({dir + "/" + m, (driver ? "driver " + *driver : "no driver") +
                                             (ok ? "" : ": keeps the group from the VM")});
    if (!ok) blocking.push_back(m);
  }
  return blocking;
}

void group_unknown(Finding& f, std::string what) {
  f.explanation = fmt::format(
      "a member of {} was still on a host driver when the VM started; "
      "this host does not show which",
      what);
  f.fix =
      "`pcipass groups` shows this host's groups; `pcipass bind --with-group DEVICE` moves "
      "one whole";
}

void examine_group(const Probe& p, Finding& f) {
  auto group = group_of(p, f);
  if (!group) return group_unknown(f, "the device's IOMMU group");
  auto blocking = blocking_members(p, *group, f);
  if (!blocking) return group_unknown(f, fmt::format("IOMMU group {}", *group));
  f.confirmed = !blocking->empty();
  std::string device = f.device ? f.device->str() : blocking->empty() ? "DEVICE" : (*blocking)[0];
  if (blocking->empty()) {
    f.explanation = fmt::format(
        "every member of IOMMU group {} is on vfio-pci, pci-stub or no driver now: the group "
        "was not viable when the VM started",
        *group);
    f.fix = "start the VM again";
    return;
  }
  f.explanation = fmt::format(
      "IOMMU group {} is not viable: {} still on a host driver; VFIO gives a VM a whole group or "
      "nothing",
      *group, fmt::join(*blocking, ", "));
  f.fix = fmt::format(
      "`pcipass bind --with-group {}` (or `pcipass bind {}`), after `pcipass plan` shows what "
      "the host loses",
      device, fmt::join(*blocking, " "));
}

// --- container refused: RMRR or interrupt remapping -------------------------------------

void examine_rmrr(const Probe& p, Finding& f) {
  auto lines = kernel_lines(p, {"RMRR"}, f.device);
  f.confirmed = !lines.empty();
  if (lines.empty())
    f.evidence.push_back({kernel_log_name(p), "no RMRR line for the device in this boot"});
  append(f.evidence, std::move(lines));
  f.explanation =
      "the firmware reserves memory for this device (an RMRR) and the kernel refuses "
      "to attach it to any VM's IOMMU domain";
  f.fix =
      "move the card to another slot (RMRRs usually cover onboard devices and the first "
      "slot), update the firmware or turn off its feature that uses the device (HP: \"HP "
      "Shared Memory features\"); no kernel option lifts this";
}

void examine_container(const Probe& p, Finding& f) {
  if (!kernel_lines(p, {"RMRR"}, f.device).empty() && f.device) {
    f.cause = Cause::kRmrr;
    return examine_rmrr(p, f);
  }
  auto lines = kernel_lines(p, {"remapping"});
  const std::string param = "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts";
  auto unsafe = p.fs.read_trimmed(param);
  f.evidence.push_back({param, unsafe ? *unsafe : "unreadable (vfio_iommu_type1 not loaded)"});
  bool enabled = std::any_of(lines.begin(), lines.end(), [](const Evidence& e) {
    return matches(e.detail, "Enabled IRQ remapping") ||
           matches(e.detail, "Interrupt remapping enabled");
  });
  if (lines.empty()) f.evidence.push_back({kernel_log_name(p), "no interrupt remapping line"});
  append(f.evidence, std::move(lines));
  f.confirmed = !enabled && unsafe != "Y";
  f.explanation = enabled ? "interrupt remapping is on in this boot: the container was refused "
                            "for another reason (the kernel log has it)"
                          : "the platform has no interrupt remapping, and vfio_iommu_type1 "
                            "refuses to assign devices without it";
  f.fix =
      "turn on interrupt remapping in the firmware (VT-d or AMD-Vi with x2APIC); only if that "
      "is impossible, `options vfio_iommu_type1 allow_unsafe_interrupts=1` in "
      "/etc/modprobe.d/ — risk: a guest can then send the host forged interrupts (MSI "
      "injection) and may take it over";
}

// --- memlock -----------------------------------------------------------------------------

// QEMU's -m as libvirt logs the command line ("-m 4096", "-m size=4194304k").
std::optional<std::string> guest_memory(const Probe& p) {
  for (auto l : p.section) {
    size_t at = l.starts_with("-m ") ? 0 : l.find(" -m ");
    if (at == std::string_view::npos) continue;
    auto words = split_words(l.substr(at + (at == 0 ? 3 : 4), 64));
    if (!words.empty()) return words[0];
  }
  return std::nullopt;
}

void examine_memlock(const Probe& p, Finding& f) {
  auto lines = kernel_lines(p, {"RLIMIT_MEMLOCK"});
  f.confirmed = true;
  if (auto m = guest_memory(p)) f.evidence.push_back({"QEMU command line", "-m " + *m});
  if (lines.empty()) f.evidence.push_back({kernel_log_name(p), "no RLIMIT_MEMLOCK line"});
  append(f.evidence, std::move(lines));
  f.explanation =
      "VFIO pins all of the guest's memory, and QEMU's locked-memory limit "
      "(RLIMIT_MEMLOCK) is smaller than the guest's RAM";
  f.fix =
      "libvirt sets the limit itself unless the domain has <memtune><hard_limit>: remove it "
      "or make it the guest's memory plus 1 GiB; QEMU started by hand: `ulimit -l "
      "unlimited` (or the guest's RAM plus 1 GiB in KiB) in its shell, or a memlock line in "
      "/etc/security/limits.d/ for its user";
}

// --- boot framebuffer on the GPU's BAR ---------------------------------------------------

struct Range {
  uint64_t start = 0, end = 0;
};

std::optional<Range> parse_range(std::string_view s, char sep) {
  auto dash = s.find(sep);
  if (dash == std::string_view::npos) return std::nullopt;
  auto hex = [](std::string_view h, uint64_t& v) {
    if (h.starts_with("0x")) h.remove_prefix(2);
    auto [e, ec] = std::from_chars(h.data(), h.data() + h.size(), v, 16);
    return ec == std::errc() && e == h.data() + h.size() && !h.empty();
  };
  Range r;
  if (!hex(trim(s.substr(0, dash)), r.start) || !hex(trim(s.substr(dash + 1)), r.end))
    return std::nullopt;
  return r;
}

// The device's BARs from sysfs `resource` ("start end flags" per line; index 0-5 are BARs).
std::vector<std::pair<int, Range>> bars(const Probe& p, const PciAddress& a, Finding& f) {
  std::vector<std::pair<int, Range>> out;
  auto text = p.fs.read(device_dir(a) + "/resource", 4096);
  if (!text) return out;
  int index = 0;
  for (const auto& line : split_lines(*text)) {
    auto w = split_words(line);
    if (index < 6 && w.size() >= 2)
      if (auto r = parse_range(w[0] + "-" + w[1], '-'); r && r->end > r->start) {
        out.push_back({index, *r});
        f.evidence.push_back({device_dir(a) + "/resource",
                              fmt::format("BAR {}: {:#x}-{:#x}", index, r->start, r->end)});
      }
    ++index;
  }
  return out;
}

bool framebuffer_name(std::string_view name) {
  for (const char* fb : {"efifb", "simpledrm", "vesafb", "BOOTFB", "simple-framebuffer",
                         "vesa-framebuffer", "EFI framebuffer"})
    if (matches(name, fb)) return true;
  return false;
}

void examine_framebuffer(const Probe& p, Finding& f) {
  std::vector<std::pair<int, Range>> dev_bars;
  if (f.device) dev_bars = bars(p, *f.device, f);
  auto iomem = p.fs.read("/proc/iomem", 1 << 20);
  bool zeros = true;
  if (iomem)
    for (const auto& line : split_lines(*iomem)) {
      auto colon = line.find(" : ");
      if (colon == std::string::npos) continue;
      auto r = parse_range(line.substr(0, colon), '-');
      if (!r) continue;
      zeros = zeros && r->start == 0 && r->end == 0;
      if (!framebuffer_name(line.substr(colon + 3))) continue;
      bool inside = dev_bars.empty() || std::any_of(dev_bars.begin(), dev_bars.end(), [&](auto& b) {
                      return r->start <= b.second.end && b.second.start <= r->end;
                    });
      if (inside) {
        f.evidence.push_back({"/proc/iomem", trim(line)});
        f.confirmed = true;
      }
    }
  if (iomem && zeros) f.evidence.push_back({"/proc/iomem", "all addresses read as 0: run as root"});
  append(f.evidence, kernel_lines(p, {"can't reserve"}, f.device));
  f.explanation = f.confirmed ? "the firmware's boot framebuffer still claims the GPU's memory "
                                "(BAR), so vfio-pci cannot reserve or map it"
                              : "vfio-pci could not reserve the GPU's BAR; no boot framebuffer "
                                "holds it in /proc/iomem now";
  f.fix =
      "`pcipass setup --hide-boot-framebuffer` (initcall_blacklist=sysfb_init, or "
      "video=efifb:off on older kernels) and reboot; the host then has no console on that GPU";
}

// --- D3cold ------------------------------------------------------------------------------

void examine_power(const Probe& p, Finding& f) {
  if (f.device) {
    for (const char* attr : {"power_state", "d3cold_allowed"}) {
      std::string path = device_dir(*f.device) + "/" + attr;
      auto v = p.fs.read_trimmed(path);
      f.evidence.push_back({path, v ? *v : "unreadable"});
      if (v && *v == "D3cold") f.confirmed = true;
    }
  }
  auto lines = kernel_lines(p, {"D3cold"}, f.device);
  f.confirmed = f.confirmed || !lines.empty();
  append(f.evidence, std::move(lines));
  std::string dev = f.device ? f.device->str() : "DEVICE";
  f.explanation = "the device went to D3cold (powered off) while idle and did not come back";
  f.fix = fmt::format(
      "`echo 0 > /sys/bus/pci/devices/{}/d3cold_allowed` before starting the VM, "
      "and `options vfio-pci disable_idle_d3=1` in /etc/modprobe.d/ for every "
      "boot; a device that stays in D3cold needs a power cycle of the host",
      dev);
}

// --- unmanaged device --------------------------------------------------------------------

void examine_unmanaged(const Probe& p, Finding& f) {
  std::string dev = f.device ? f.device->str() : "DEVICE";
  if (f.device) {
    auto driver = p.fs.link_basename(device_dir(*f.device) + "/driver");
    f.evidence.push_back({device_dir(*f.device) + "/driver", driver ? *driver : "no driver"});
    f.confirmed = driver != "vfio-pci";
  }
  f.explanation =
      "the domain says managed='no', so libvirt expects the device on vfio-pci "
      "before the VM starts, and it is not";
  f.fix = fmt::format(
      "`pcipass bind {}` before starting (`pcipass bind --persist {}` for every "
      "boot), or managed='yes' to let libvirt move it",
      dev, dev);
}

// --- romfile -----------------------------------------------------------------------------

std::string quoted_after(std::string_view line, std::string_view word) {
  auto at = line.find(word);
  if (at == std::string_view::npos) return {};
  auto open = line.find('"', at);
  auto close = open == std::string_view::npos ? open : line.find('"', open + 1);
  if (close == std::string_view::npos) return {};
  return std::string(line.substr(open + 1, close - open - 1));
}

void examine_romfile(const Probe& p, Finding& f) {
  std::string name = quoted_after(p.line, "failed to find romfile");
  std::vector<std::string> tried;
  if (!name.empty() && name.front() == '/') tried.push_back(name);
  if (!name.empty() && name.find('/') == std::string::npos)
    tried.push_back("/usr/share/qemu/" + name);
  for (const auto& path : tried) {
    bool there = p.fs.type(path) == FileType::kFile;
    f.evidence.push_back({path, there ? "exists" : "missing"});
    f.confirmed = f.confirmed || !there;
  }
  f.explanation = name.empty() ? "QEMU did not find the ROM image given with romfile="
                               : fmt::format("QEMU did not find the ROM image \"{}\"", name);
  f.fix =
      "give romfile= (libvirt: <rom file=...>) an absolute path that exists and the QEMU "
      "user can read, e.g. in /usr/share/qemu/ (a relative name is looked up there); under "
      "AppArmor or SELinux, other places may be hidden from QEMU";
}

}  // namespace

const std::vector<Entry>& catalog() {
  static const std::vector<Entry> table = {
      {Cause::kIommuOff,
       {"host doesn't support passthrough of host PCI devices", "no iommu_group found",
        "IOMMU not found"},
       examine_iommu_off},
      {Cause::kVfioUnsupported,
       {"VFIO device assignment is currently not supported", "/dev/vfio/vfio*No such file"},
       examine_vfio_unsupported},
      {Cause::kGroupNotViable, {"group * is not viable"}, examine_group},
      {Cause::kInterruptRemapping,
       {"Failed to set iommu for container", "No interrupt remapping support"},
       examine_container},
      {Cause::kMemlock,
       {"VFIO_MAP_DMA*Cannot allocate memory", "RLIMIT_MEMLOCK", "vfio_dma_map*Cannot allocate"},
       examine_memlock},
      {Cause::kBootFramebuffer,
       {"BAR * can't reserve", "Failed to mmap * BAR"},
       examine_framebuffer},
      {Cause::kPowerState, {"Unable to change power state from D3cold"}, examine_power},
      {Cause::kRmrr, {"ineligible for IOMMU domain attach due to platform RMRR"}, examine_rmrr},
      {Cause::kUnmanagedDevice,
       {"Unmanaged PCI device * must be manually detached"},
       examine_unmanaged},
      {Cause::kRomFile, {"failed to find romfile"}, examine_romfile},
      {Cause::kMonitorReset,
       {"Unable to read from monitor*Connection reset by peer",
        "qemu unexpectedly closed the monitor"},
       examine_monitor},
  };
  return table;
}

}  // namespace pcipass::doctor
