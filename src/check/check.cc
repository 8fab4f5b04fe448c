#include "check/check.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>

#include "boot/loader.h"
#include "host/cmdline.h"
#include "host/kmod_lib.h"
#include "host/limits.h"
#include "pci/pci_lib.h"

namespace pcipass {

const char* check_status_name(CheckStatus s) {
  switch (s) {
    case CheckStatus::kPass:
      return "PASS";
    case CheckStatus::kWarn:
      return "WARN";
    case CheckStatus::kFail:
      return "FAIL";
  }
  return "?";
}

CheckStatus CheckReport::worst() const {
  CheckStatus w = CheckStatus::kPass;
  for (const CheckResult& r : results)
    if (static_cast<int>(r.status) > static_cast<int>(w)) w = r.status;
  return w;
}

const CheckResult* CheckReport::find(const std::string& id) const {
  for (const CheckResult& r : results)
    if (r.id == id) return &r;
  return nullptr;
}

namespace {

// ---------------------------------------------------------------------------------------------
// What the checks read, gathered once.

enum class Platform { kIntel, kAmd, kOther };

struct Cpu {
  bool read = false;
  std::string vendor_id;
  Platform platform = Platform::kOther;
  bool vmx = false, svm = false, hypervisor = false;
};

struct Names {             // the platform's words for things
  const char* cpu_virt;    // "VT-x"
  const char* cpu_flag;    // "vmx"
  const char* iommu;       // "VT-d"
  const char* table;       // "DMAR"
  const char* kvm_module;  // "kvm_intel"
};

Names names_for(Platform p) {
  switch (p) {
    case Platform::kIntel:
      return {"VT-x", "vmx", "VT-d", "DMAR", "kvm_intel"};
    case Platform::kAmd:
      return {"AMD-V", "svm", "AMD-Vi", "IVRS", "kvm_amd"};
    case Platform::kOther:
      break;
  }
  return {"VT-x/AMD-V", "vmx/svm", "IOMMU", "DMAR/IVRS", "kvm"};
}

Cpu read_cpu(const HostFs& fs) {
  Cpu cpu;
  auto text = fs.read("/proc/cpuinfo", 256 * 1024);
  if (!text) return cpu;
  cpu.read = true;
  bool have_flags = false;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line) && (cpu.vendor_id.empty() || !have_flags)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = trim(line.substr(0, colon));
    std::string value = trim(line.substr(colon + 1));
    if (key == "vendor_id" && cpu.vendor_id.empty()) {
      cpu.vendor_id = value;
    } else if (key == "flags" && !have_flags) {  // not "vmx flags"
      have_flags = true;
      for (const std::string& f : split_words(value)) {
        if (f == "vmx") cpu.vmx = true;
        if (f == "svm") cpu.svm = true;
        if (f == "hypervisor") cpu.hypervisor = true;
      }
    }
  }
  if (cpu.vendor_id == "GenuineIntel")
    cpu.platform = Platform::kIntel;
  else if (cpu.vendor_id == "AuthenticAMD" || cpu.vendor_id == "HygonGenuine")
    cpu.platform = Platform::kAmd;
  else if (cpu.vmx)
    cpu.platform = Platform::kIntel;  // VIA/Zhaoxin: VT-x and VT-d
  else if (cpu.svm)
    cpu.platform = Platform::kAmd;
  return cpu;
}

// Module state, also when the module index is missing: /sys/module/NAME exists for modules the
// running kernel has, loaded (with an initstate file) or built in.
ModuleState module_state(const HostFs& fs, const ModuleIndex& mods, const std::string& name) {
  ModuleState s = mods.state(name);
  if (s == ModuleState::kMissing || s == ModuleState::kAvailable) {
    std::string dir = "/sys/module/" + ModuleIndex::normalize(name);
    if (fs.is_dir(dir))
      return fs.exists(dir + "/initstate") ? ModuleState::kLoaded : ModuleState::kBuiltin;
  }
  return s;
}

bool present(ModuleState s) {
  return s == ModuleState::kLoaded || s == ModuleState::kBuiltin;
}

std::string list_some(const std::vector<std::string>& names, size_t max = 3) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > max) out += ", ...";
  return out;
}

std::string plural(size_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

std::string human_bytes(uint64_t b) {
  static const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (b < 1024) return fmt::format("{} bytes", b);
  double v = static_cast<double>(b) / 1024;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  uint64_t unit = uint64_t{1024} << (10 * u);
  if (b % unit == 0) return fmt::format("{} {}", b / unit, units[u]);
  return fmt::format("{:.1f} {}", v, units[u]);
}

// Where the kernel command line is edited on this host.
std::string cmdline_where(const HostFs& fs) {
  if (!fs.exists("/etc/default/grub") && fs.exists("/etc/kernel/cmdline"))
    return "(in /etc/kernel/cmdline, then kernel-install or proxmox-boot-tool refresh, and reboot)";
  return "(GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot)";
}

// vfio_iommu_type1.allow_unsafe_interrupts: live value and where it is configured.
struct UnsafeInterrupts {
  std::optional<bool> live;        // the loaded module's parameter
  std::optional<bool> configured;  // what the next load gets (modprobe.d, then the command line)
  std::string source;              // where `configured` comes from, for messages
  std::string source_param;        // the setting as written there
  // Why the next load's value is not known: modprobe configuration that cannot be read.
  std::vector<std::string> unreadable;
  bool allowed() const { return live ? *live : configured.value_or(false); }
};

struct ModprobeOption {
  bool value;
  std::string file;
  std::string text;
};

// Last `options vfio_iommu_type1 allow_unsafe_interrupts=...` in the modprobe configuration, read
// in modprobe's order. A directory or file that cannot be read is a problem: the option may be
// in it.
std::optional<ModprobeOption> modprobe_unsafe_option(const HostFs& fs,
                                                     std::vector<std::string>& problems) {
  ModprobeConfig config = modprobe_config(fs);
  problems = std::move(config.problems);
  std::optional<ModprobeOption> found;
  for (const auto& path : config.files) {
    auto text = fs.read(path);
    if (!text) {
      problems.push_back(text.error().describe());
      continue;
    }
    std::string joined;  // continuation lines joined
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\\') {
        joined += line.substr(0, line.size() - 1) + " ";
        continue;
      }
      joined += line;
      std::vector<std::string> w = split_words(joined);
      joined.clear();
      if (w.size() < 3 || w[0] != "options" || ModuleIndex::normalize(w[1]) != "vfio_iommu_type1")
        continue;
      for (size_t i = 2; i < w.size(); ++i) {
        std::string key = w[i].substr(0, w[i].find('='));
        if (ModuleIndex::normalize(key) != "allow_unsafe_interrupts") continue;
        std::optional<bool> v = true;  // a bare bool parameter means Y
        if (w[i].find('=') != std::string::npos)
          v = parse_kernel_bool(w[i].substr(w[i].find('=') + 1));
        if (v) found = ModprobeOption{*v, path, w[i]};
      }
    }
  }
  return found;
}

struct Facts {
  const HostFs& fs;
  const ModuleIndex& mods;
  Cpu cpu;
  Names n;
  // The IOMMU's platform follows the firmware's table, not the CPU: a VM on an AMD host can
  // have an emulated Intel VT-d (QEMU -device intel-iommu), and then needs intel_iommu=on.
  Platform iommu = Platform::kOther;
  Names in;
  std::optional<KernelCmdline> cmdline;  // nullopt when /proc/cmdline is unreadable
  IommuCmdline ic;
  bool dmar = false, ivrs = false, iort = false, viot = false;
  std::optional<uint8_t> dmar_flags;  // when the DMAR table is readable (root) and complete
  std::vector<std::string> iommu_units;
  // Why /sys cannot be read (not a directory, unreadable): then the IOMMU's state is unknown,
  // and "no ACPI table" or "no IOMMU groups" would send the user to the firmware for nothing.
  std::optional<std::string> sys_broken;
  size_t iommu_groups = 0;
  UnsafeInterrupts unsafe;
  std::string where;  // how to edit the kernel command line

  Facts(const HostFs& f, const ModuleIndex& m) : fs(f), mods(m) {}
  bool iommu_on() const { return !iommu_units.empty() && iommu_groups > 0; }
  bool table() const {
    switch (iommu) {
      case Platform::kIntel:
        return dmar;
      case Platform::kAmd:
        return ivrs;
      case Platform::kOther:
        break;
    }
    return dmar || ivrs || iort || viot;
  }
  std::string release() const { return mods.release().empty() ? "RELEASE" : mods.release(); }
};

std::optional<std::string> sysfs_problem(const HostFs& fs) {
  FileType t = fs.type("/sys");
  if (t != FileType::kDir && t != FileType::kMissing) return "/sys is not a directory";
  // Absent is a tree captured without it, as good as empty; unreadable is not.
  // So is a directory the IOMMU's state is counted from: no units or groups would be a guess.
  for (const char* dir : {"/sys", "/sys/class/iommu", "/sys/kernel/iommu_groups"})
    if (auto entries = list_if_present(fs, dir); !entries)
      return fmt::format("cannot read {}: {}", dir, std::strerror(entries.error().err));
  return std::nullopt;
}

Facts gather(const HostFs& fs, const ModuleIndex& mods) {
  Facts f(fs, mods);
  f.cpu = read_cpu(fs);
  f.n = names_for(f.cpu.platform);
  if (auto text = fs.read("/proc/cmdline", 64 * 1024)) {
    f.cmdline = KernelCmdline::parse(*text);
    f.ic = iommu_settings(*f.cmdline);
  }
  const std::string tables = "/sys/firmware/acpi/tables/";
  f.dmar = fs.exists(tables + "DMAR");
  f.ivrs = fs.exists(tables + "IVRS");
  f.iort = fs.exists(tables + "IORT");
  f.viot = fs.exists(tables + "VIOT");
  f.iommu = f.dmar ? Platform::kIntel : f.ivrs ? Platform::kAmd : f.cpu.platform;
  f.in = names_for(f.iommu);
  if (f.dmar) {
    // ACPI DMAR: 36-byte header, host address width, then flags (bit 0: INTR_REMAP).
    auto raw = fs.read(tables + "DMAR", 64);
    if (raw && raw->size() >= 38 && raw->compare(0, 4, "DMAR") == 0)
      f.dmar_flags = static_cast<uint8_t>((*raw)[37]);
  }
  f.sys_broken = sysfs_problem(fs);  // these listings failing makes it say so
  f.iommu_units = fs.list("/sys/class/iommu").value_or(std::vector<std::string>{});
  if (auto groups = fs.list("/sys/kernel/iommu_groups")) f.iommu_groups = groups->size();
  f.where = cmdline_where(fs);

  auto live = fs.read_trimmed("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts");
  if (live) f.unsafe.live = parse_kernel_bool(*live);
  if (module_state(fs, mods, "vfio_iommu_type1") != ModuleState::kBuiltin) {
    if (auto o = modprobe_unsafe_option(fs, f.unsafe.unreadable)) {
      f.unsafe.configured = o->value;
      f.unsafe.source = o->file;
      f.unsafe.source_param = o->text;
    }
  }
  if (f.cmdline) {
    if (const auto* p = f.cmdline->last("vfio_iommu_type1.allow_unsafe_interrupts")) {
      std::optional<bool> v = p->second ? parse_kernel_bool(*p->second) : std::optional<bool>(true);
      if (v) {
        f.unsafe.configured = *v;
        f.unsafe.unreadable.clear();  // the command line is applied last
        f.unsafe.source = "the kernel command line";
        f.unsafe.source_param = KernelCmdline::format(*p);
      }
    }
  }
  return f;
}

CheckResult result(const char* id, std::string title, CheckStatus s, std::string detail,
                   std::string fix = {}) {
  return CheckResult{id, std::move(title), s, std::move(detail), std::move(fix)};
}

// The module index exists but cannot be read: whether the module is there is unknown, which is
// a warning, not "missing".
CheckResult unreadable_modules(const char* id, std::string title, const std::string& lead,
                               const Error& e) {
  return result(
      id, std::move(title), CheckStatus::kWarn,
      lead + "cannot tell whether it is available: " + e.describe(),
      "run `pcipass check` as root, or make " + e.path.substr(0, e.path.rfind('/')) + " readable");
}

// ---------------------------------------------------------------------------------------------
// The checks.

std::string cpu_fix(const Facts& f) {
  if (f.cpu.hypervisor)
    return fmt::format(
        "this is a VM: enable nested virtualization on its host ({} nested=1, QEMU -cpu host)",
        f.cpu.platform == Platform::kAmd ? "kvm_amd" : "kvm_intel");
  switch (f.cpu.platform) {
    case Platform::kIntel:
      return "enable Intel Virtualization Technology (VT-x) in the firmware setup, then reboot";
    case Platform::kAmd:
      return "enable SVM mode (AMD-V) in the firmware setup, then reboot";
    case Platform::kOther:
      break;
  }
  return "enable VT-x (Intel) / AMD-V (SVM) in the firmware setup, then reboot";
}

CheckResult check_cpu(const Facts& f) {
  const char* id = "cpu-virtualization";
  std::string title = "CPU virtualization";
  if (!f.cpu.read)
    return result(id, title, CheckStatus::kWarn, "cannot read /proc/cpuinfo",
                  "run `grep -c -w -e vmx -e svm /proc/cpuinfo` on the host: 0 means it is off");
  if (f.cpu.vmx) return result(id, title, CheckStatus::kPass, "Intel VT-x (vmx flag)");
  if (f.cpu.svm) return result(id, title, CheckStatus::kPass, "AMD-V (svm flag)");
  if (f.fs.exists("/dev/kvm"))  // a paravirtual KVM (kvm_pvm) runs without the flag
    return result(id, title, CheckStatus::kWarn,
                  fmt::format("no {} flag, but /dev/kvm exists", f.n.cpu_flag), cpu_fix(f));
  return result(id, title, CheckStatus::kFail,
                fmt::format("no {} flag in /proc/cpuinfo: {} is off", f.n.cpu_flag, f.n.cpu_virt),
                cpu_fix(f));
}

CheckResult check_kvm_module(const Facts& f) {
  const char* id = "kvm-module";
  std::string title = "KVM module";
  std::string name = f.n.kvm_module;
  ModuleState s = module_state(f.fs, f.mods, name);
  if (s == ModuleState::kLoaded) return result(id, title, CheckStatus::kPass, name + " loaded");
  if (s == ModuleState::kBuiltin)
    return result(id, title, CheckStatus::kPass, name + " built into the kernel");
  // Another KVM backend (kvm_pvm, ...) may serve /dev/kvm.
  if (f.fs.exists("/dev/kvm")) {
    auto loaded = list_if_present(f.fs, "/sys/module");
    if (!loaded)
      return result(id, title, CheckStatus::kWarn,
                    fmt::format("/dev/kvm exists but which module serves it is unknown ({} not "
                                "loaded): {}",
                                name, loaded.error().describe()),
                    "run pcipass as root, then check again");
    for (const std::string& m : *loaded)
      if (m.starts_with("kvm_") && m != name)
        return result(id, title, CheckStatus::kPass,
                      fmt::format("{} provides KVM ({} not loaded)", m, name));
  }
  if (s == ModuleState::kAvailable)
    return result(id, title, CheckStatus::kWarn, name + " available, not loaded",
                  "load it: modprobe " + name);
  std::string config = name == "kvm_intel" ? "CONFIG_KVM_INTEL"
                       : name == "kvm_amd" ? "CONFIG_KVM_AMD"
                                           : "CONFIG_KVM";
  if (auto e = f.mods.index_error())
    return unreadable_modules(id, title, name + " not loaded; ", *e);
  if (!f.mods.has_index() && f.mods.library_error())
    return result(id, title, CheckStatus::kWarn,
                  "not loaded; the module index can't be read: " + f.mods.library_error()->message,
                  f.mods.library_error()->fix);
  if (!f.mods.has_index())
    return result(id, title, CheckStatus::kFail,
                  fmt::format("{} not loaded; no /lib/modules/{}", name, f.release()),
                  fmt::format("install the running kernel's modules, or a kernel with {}", config));
  return result(
      id, title, CheckStatus::kFail, fmt::format("{} is not in this kernel", name),
      fmt::format("install a kernel built with {} (Debian's standard kernel has it)", config));
}

CheckResult check_kvm_device(const Facts& f) {
  const char* id = "kvm-device";
  std::string title = "/dev/kvm";
  FileType t = f.fs.type("/dev/kvm");
  if (t == FileType::kCharDevice || t == FileType::kFile)
    return result(id, title, CheckStatus::kPass, "present");
  std::string detail = t == FileType::kMissing ? "missing" : "not a device node";
  if (f.cpu.read && !f.cpu.vmx && !f.cpu.svm)
    return result(id, title, CheckStatus::kFail, detail, cpu_fix(f));
  std::string name = f.n.kvm_module;
  ModuleState s = module_state(f.fs, f.mods, name);
  if (s == ModuleState::kAvailable)
    return result(id, title, CheckStatus::kFail, detail, "load KVM: modprobe " + name);
  if (present(s))
    return result(id, title, CheckStatus::kFail, detail + " although " + name + " is loaded",
                  "create it: mknod -m 660 /dev/kvm c 10 232 && chgrp kvm /dev/kvm");
  return result(id, title, CheckStatus::kFail, detail,
                "install a kernel with KVM (see the KVM module line)");
}

// "enable VT-d in the firmware setup (UEFI/BIOS)": the first step when the ACPI table is missing.
std::string firmware_step(const Facts& f) {
  if (f.cpu.hypervisor)
    return "this is a VM: give it a vIOMMU (QEMU: -M q35,kernel-irqchip=split -device "
           "intel-iommu,intremap=on)";
  switch (f.iommu) {
    case Platform::kIntel:
      return "enable VT-d in the firmware setup (UEFI/BIOS)";
    case Platform::kAmd:
      return "enable AMD-Vi (IOMMU) in the firmware setup (UEFI/BIOS)";
    case Platform::kOther:
      break;
  }
  return "enable VT-d (Intel) / AMD-Vi (IOMMU) in the firmware setup";
}

// The IOMMU's state comes from /sys: when /sys is unusable it is unknown, and the fix is sysfs.
std::optional<CheckResult> sysfs_unusable(const char* id, const std::string& title,
                                          const Facts& f) {
  if (!f.sys_broken) return std::nullopt;
  return result(id, title, CheckStatus::kFail, "cannot tell: " + *f.sys_broken,
                "pcipass reads the IOMMU's state from sysfs: mount it on /sys (mount -t sysfs "
                "sysfs /sys), or pass --root DIR of a captured host tree");
}

CheckResult check_iommu_firmware(const Facts& f) {
  const char* id = "iommu-firmware";
  std::string title = "IOMMU in firmware";
  if (auto r = sysfs_unusable(id, title, f)) return *r;
  if (f.table()) {
    if (f.iommu != Platform::kOther)
      return result(id, title, CheckStatus::kPass,
                    fmt::format("ACPI {} table present ({})", f.in.table, f.in.iommu));
    const char* t = f.dmar ? "DMAR" : f.ivrs ? "IVRS" : f.iort ? "IORT" : "VIOT";
    return result(id, title, CheckStatus::kPass, fmt::format("ACPI {} table present", t));
  }
  if (f.iommu_on())
    return result(id, title, CheckStatus::kPass,
                  fmt::format("no ACPI {} table, but IOMMU units run ({})", f.in.table,
                              list_some(f.iommu_units, 2)));
  std::string detail =
      f.iommu == Platform::kOther
          ? std::string("no ACPI DMAR or IVRS table")
          : fmt::format("no ACPI {} table: {} is off or missing", f.in.table, f.in.iommu);
  std::string fix = firmware_step(f);
  if (!f.cpu.hypervisor && f.iommu != Platform::kOther) fix += ", then reboot";
  return result(id, title, CheckStatus::kFail, detail, fix);
}

// Parameters as written on the command line whose option list contains one starting with `opt`.
std::vector<std::string> params_with_option(const KernelCmdline& c, std::string_view key,
                                            std::string_view opt) {
  std::vector<std::string> out;
  for (const auto& p : c.params()) {
    if (p.first != key || !p.second) continue;
    std::string v = *p.second;
    size_t b = 0;
    while (b <= v.size()) {
      size_t e = std::min(v.find(',', b), v.size());
      if (std::string_view(v).substr(b, e - b).starts_with(opt)) {
        out.push_back(KernelCmdline::format(p));
        break;
      }
      b = e + 1;
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// What `pcipass setup --iommu` asks of the kernel command line on this platform.
boot::Edit iommu_edit(const Facts& f) {
  boot::Edit e;
  e.drop.push_back({"iommu", "off"});
  if (f.iommu == Platform::kIntel) e.want.push_back({"intel_iommu", "on"});
  if (f.iommu == Platform::kAmd) e.drop.push_back({"amd_iommu", "off"});
  return e;
}

// The edit of the kernel command line that turns the IOMMU on, in words ("" when none would):
// iommu=off and amd_iommu=off removed, intel_iommu=on added or put in place of intel_iommu=off.
std::string iommu_cmdline_edit(const Facts& f) {
  std::vector<std::string> remove, add;
  std::string replace_from;  // intel_iommu=off -> intel_iommu=on
  if (f.cmdline) {
    for (const std::string& p : params_with_option(*f.cmdline, "iommu", "off")) remove.push_back(p);
    if (f.iommu == Platform::kIntel) {
      if (f.ic.intel_iommu == false) {
        auto offs = params_with_option(*f.cmdline, "intel_iommu", "off");
        replace_from = offs.empty() ? "intel_iommu=off" : offs.back();
      } else if (!f.ic.intel_iommu) {
        add.push_back("intel_iommu=on");
      }
    } else if (f.iommu == Platform::kAmd) {
      for (const std::string& p : params_with_option(*f.cmdline, "amd_iommu", "off"))
        remove.push_back(p);
    }
  } else if (f.iommu == Platform::kIntel) {
    add.push_back("intel_iommu=on");
  }
  std::string edit;
  if (!replace_from.empty()) {
    edit = "replace " + replace_from + " with intel_iommu=on";
    if (!remove.empty()) edit = "remove " + join(remove, " and ") + ", " + edit;
    edit += " in the kernel command line";
  } else if (!remove.empty() && !add.empty()) {
    edit =
        "remove " + join(remove, " and ") + " and add " + join(add) + " in the kernel command line";
  } else if (!remove.empty()) {
    edit = "remove " + join(remove, " and ") + " from the kernel command line";
  } else if (!add.empty()) {
    edit = "add " + join(add) + " to the kernel command line";
  }
  bool adds_intel_on = !add.empty() || !replace_from.empty();
  if (!edit.empty()) edit += " " + f.where;
  if (adds_intel_on && !f.ic.iommu_pt) edit += "; iommu=pt is optional";
  return edit;
}

CheckResult check_iommu_kernel(const Facts& f) {
  const char* id = "iommu-kernel";
  std::string title = "IOMMU in the kernel";
  if (auto r = sysfs_unusable(id, title, f)) return *r;
  if (f.iommu_on()) {
    std::string detail =
        fmt::format("on: {} ({}), {}", plural(f.iommu_units.size(), "unit", "units"),
                    list_some(f.iommu_units, 2), plural(f.iommu_groups, "group", "groups"));
    if (f.ic.iommu_pt.value_or(false)) detail += ", iommu=pt";
    return result(id, title, CheckStatus::kPass, detail);
  }
  if (f.iommu_groups > 0)
    return result(id, title, CheckStatus::kWarn,
                  fmt::format("{} but no units in /sys/class/iommu",
                              plural(f.iommu_groups, "group", "groups")),
                  "if vfio refuses a device, see `dmesg | grep -i iommu`");

  std::string detail =
      f.iommu_units.empty()
          ? std::string("IOMMU is off in the kernel: no IOMMU groups")
          : fmt::format("IOMMU units ({}) but no IOMMU groups", list_some(f.iommu_units, 2));

  std::string edit = iommu_cmdline_edit(f);

  // The boot loader may already ask for the change: then what is left is a regeneration or a
  // reboot, not an edit.
  if (!edit.empty() && f.cmdline)
    if (auto p = boot::pending(f.fs, iommu_edit(f), *f.cmdline)) edit = *p;

  std::string fix;
  if (!f.table()) {
    fix = firmware_step(f);
    if (!edit.empty())
      fix += ", then " + edit;
    else if (!f.cpu.hypervisor && f.iommu != Platform::kOther)
      fix += ", then reboot";
  } else if (!edit.empty()) {
    fix = edit;
  } else if (f.iommu == Platform::kIntel) {
    fix = "the kernel ignored intel_iommu=on: see `dmesg | grep -i -e DMAR -e IOMMU`";
  } else if (f.iommu == Platform::kAmd) {
    fix = "AMD-Vi is on by default but did not start: see `dmesg | grep -i AMD-Vi`";
  } else {
    fix = "see `dmesg | grep -i iommu`: the kernel may lack IOMMU support";
  }
  return result(id, title, CheckStatus::kFail, detail, fix);
}

bool relevant_param(const std::string& key, const std::optional<std::string>& value) {
  static const char* keys[] = {
      "intel_iommu",
      "amd_iommu",
      "amd_iommu_intr",
      "iommu",
      "iommu.passthrough",
      "iommu.strict",
      "intremap",
      "nointremap",
      "vfio-pci.ids",
      "vfio-pci.disable_vga",
      "vfio_iommu_type1.allow_unsafe_interrupts",
      "vfio.enable_unsafe_noiommu_mode",
      "pcie_acs_override",
      "rd.driver.pre",
      "rd.driver.blacklist",
      "modprobe.blacklist",
      "module_blacklist",
      "vfio-pci.disable_idle_d3",
  };
  for (const char* k : keys)
    if (KernelCmdline::key_equal(key, k)) return true;
  // video=efifb:off, video=vesafb:off, video=simplefb:off keep the boot framebuffer off a GPU.
  return key == "video" && value && value->find("fb:off") != std::string::npos;
}

CheckResult check_cmdline(const Facts& f) {
  const char* id = "kernel-cmdline";
  std::string title = "Kernel command line";
  if (!f.cmdline)
    return result(id, title, CheckStatus::kWarn, "cannot read /proc/cmdline",
                  "run `cat /proc/cmdline` on the host to see the IOMMU parameters");
  std::vector<std::string> found, acs;
  for (const auto& p : f.cmdline->params()) {
    if (!relevant_param(p.first, p.second)) continue;
    found.push_back(KernelCmdline::format(p));
    if (p.first == "pcie_acs_override") acs.push_back(found.back());
  }
  if (!acs.empty())
    return result(id, title, CheckStatus::kWarn, acs.back() + ": fake IOMMU isolation",
                  fmt::format("remove {} from the kernel command line {} unless you accept that "
                              "devices in split groups can reach each other's memory",
                              join(acs, " and "), f.where));
  if (found.empty()) return result(id, title, CheckStatus::kPass, "no IOMMU or VFIO parameters");
  std::vector<std::string> off;
  if (f.ic.intel_iommu == false) off.push_back("intel_iommu=off");
  if (f.ic.amd_iommu_off) off.push_back("amd_iommu=off");
  if (f.ic.iommu_off) off.push_back("iommu=off");
  if (f.ic.intremap_off) off.push_back(f.ic.intremap_off_param);
  if (!off.empty()) {
    std::string fix =
        fmt::format("remove {} from the kernel command line {}", join(off, " and "), f.where);
    if (auto p = boot::pending(f.fs, iommu_edit(f), *f.cmdline)) fix = *p;
    return result(id, title, CheckStatus::kWarn, join(off, " and ") + " disables passthrough", fix);
  }
  return result(id, title, CheckStatus::kPass, join(found));
}

enum class Tri { kYes, kNo, kUnknown };

struct Remapping {
  Tri state = Tri::kUnknown;
  std::string why;              // for the detail
  std::string fix;              // when kNo or kUnknown
  bool hardware_lacks = false;  // no way to turn it on
};

Remapping interrupt_remapping(const Facts& f) {
  // /proc/interrupts shows what the kernel did: remapped chips are named IR-IO-APIC, IR-PCI-MSI...
  bool ir_chip = false, plain_chip = false;
  if (auto text = f.fs.read("/proc/interrupts", 4 << 20)) {
    for (const std::string& w : split_words(*text)) {
      if (w.starts_with("IR-"))
        ir_chip = true;
      else if (w.starts_with("PCI-MSI") || w == "IO-APIC")
        plain_chip = true;
    }
  }
  if (ir_chip) return {Tri::kYes, "on (IR- interrupts in /proc/interrupts)", {}, false};
  if (f.ic.intremap_off)
    return {Tri::kNo, "off (" + f.ic.intremap_off_param + ")",
            "remove " + f.ic.intremap_off_param + " from the kernel command line " + f.where,
            false};

  std::string vm_fix =
      "this is a VM: use -device intel-iommu,intremap=on with -machine kernel-irqchip=split";
  std::string hw_fix =
      f.cpu.hypervisor ? vm_fix : "update the firmware or enable interrupt remapping in its setup";
  if (f.iommu == Platform::kIntel && f.dmar_flags && !(*f.dmar_flags & 1))
    return {Tri::kNo, "off in the firmware (DMAR flags)", hw_fix, true};
  if (!f.iommu_on())
    return {Tri::kUnknown, "unknown until the IOMMU is on",
            "fix the IOMMU lines above, then run pcipass check again", false};
  if (plain_chip)
    return {Tri::kNo, "off (no IR- in /proc/interrupts)",
            "see `dmesg | grep -i remapping` for why the kernel left it off", false};
  if (f.iommu == Platform::kIntel) {
    // VT-d extended capability register, bit 3: interrupt remapping. Every unit must have it.
    size_t read = 0;
    std::string lacking;
    for (const std::string& u : f.iommu_units) {
      auto ecap = f.fs.read_trimmed("/sys/class/iommu/" + u + "/intel-iommu/ecap");
      if (!ecap || ecap->empty()) continue;
      uint64_t v = 0;
      auto [end, ec] = std::from_chars(ecap->data(), ecap->data() + ecap->size(), v, 16);
      if (ec != std::errc() || end != ecap->data() + ecap->size())
        return {Tri::kUnknown,
                fmt::format("unknown: /sys/class/iommu/{}/intel-iommu/ecap holds '{}', not a "
                            "64-bit register in hex",
                            u, ecap->substr(0, 32)),
                "if vfio says \"No interrupt remapping support\", see `dmesg | grep -i remapping`",
                false};
      ++read;
      if (!(v & 0x8) && lacking.empty()) lacking = u;
    }
    if (!lacking.empty()) return {Tri::kNo, lacking + " lacks it (ecap)", hw_fix, true};
    if (read > 0)
      return {Tri::kYes,
              fmt::format("supported by {} {}", read, read == 1 ? "DMAR unit" : "DMAR units"),
              {},
              false};
    return {Tri::kUnknown, "unknown: no intel-iommu/ecap in /sys/class/iommu",
            "if vfio says \"No interrupt remapping support\", see `dmesg | grep -i remapping`",
            false};
  }
  if (f.iommu == Platform::kAmd && f.ivrs)
    return {Tri::kYes, "on (AMD-Vi remaps interrupts)", {}, false};
  return {Tri::kUnknown, "unknown on this platform",
          "if vfio says \"No interrupt remapping support\", see `dmesg | grep -i remapping`",
          false};
}

CheckResult check_interrupt_remapping(const Facts& f) {
  const char* id = "interrupt-remapping";
  std::string title = "Interrupt remapping";
  Remapping r = interrupt_remapping(f);
  switch (r.state) {
    case Tri::kYes:
      return result(id, title, CheckStatus::kPass, r.why);
    case Tri::kUnknown:
      return result(id, title, CheckStatus::kWarn, r.why, r.fix);
    case Tri::kNo:
      break;
  }
  if (f.unsafe.allowed())
    return result(id, title, CheckStatus::kWarn, r.why + ", unsafe interrupts allowed", r.fix);
  std::string fix = r.fix;
  if (r.hardware_lacks && !f.cpu.hypervisor)
    fix += "; or, at your own risk, set vfio_iommu_type1.allow_unsafe_interrupts=1";
  return result(id, title, CheckStatus::kFail, r.why + ", vfio refuses devices", fix);
}

CheckResult check_unsafe_interrupts(const Facts& f) {
  const char* id = "unsafe-interrupts";
  std::string title = "Unsafe interrupts";
  const std::string param = "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts";
  std::string off_now = "echo N > " + param;
  std::string drop =
      f.unsafe.source == "the kernel command line"
          ? "remove " + f.unsafe.source_param + " from the kernel command line " + f.where
          : "remove " + f.unsafe.source_param + " from " + f.unsafe.source;
  bool configured = f.unsafe.configured.value_or(false);
  if (f.unsafe.live.value_or(false)) {
    std::string fix = configured ? drop + ", and " + off_now : off_now;
    return result(id, title, CheckStatus::kWarn, "unsafe interrupts allowed (vfio_iommu_type1)",
                  fix + " (vfio then needs interrupt remapping)");
  }
  if (configured) {
    std::string when = f.unsafe.live ? "allowed from the next vfio_iommu_type1 load"
                                     : "allowed once vfio_iommu_type1 loads";
    return result(id, title, CheckStatus::kWarn, "unsafe interrupts " + when, drop);
  }
  if (!f.unsafe.unreadable.empty())
    return result(id, title, CheckStatus::kWarn,
                  std::string(f.unsafe.live ? "not allowed now, unknown from the next load"
                                            : "unknown once vfio_iommu_type1 loads") +
                      ": the modprobe configuration cannot be read: " + f.unsafe.unreadable.front(),
                  "make the modprobe configuration readable (run pcipass as root), then check "
                  "again");
  return result(id, title, CheckStatus::kPass, "not allowed");
}

CheckResult check_module(const Facts& f, const char* id, const std::string& name, const char* title,
                         const char* config) {
  ModuleState s = module_state(f.fs, f.mods, name);
  switch (s) {
    case ModuleState::kLoaded:
      return result(id, title, CheckStatus::kPass, "module loaded");
    case ModuleState::kBuiltin:
      return result(id, title, CheckStatus::kPass, "built into the kernel");
    case ModuleState::kAvailable:
      return result(id, title, CheckStatus::kPass, "module available, pcipass loads it on bind");
    case ModuleState::kMissing:
      break;
  }
  if (name == "vfio_iommu_type1") {
    // Kernels with IOMMUFD_VFIO_CONTAINER serve /dev/vfio/vfio from iommufd instead.
    ModuleState fd = module_state(f.fs, f.mods, "iommufd");
    if (fd != ModuleState::kMissing && f.fs.exists("/dev/vfio/vfio"))
      return result(id, title, CheckStatus::kPass, "missing; iommufd serves /dev/vfio/vfio");
  }
  if (auto e = f.mods.index_error()) return unreadable_modules(id, title, "not loaded; ", *e);
  if (!f.mods.has_index() && f.mods.library_error())
    return result(id, title, CheckStatus::kWarn,
                  "not loaded; the module index can't be read: " + f.mods.library_error()->message,
                  f.mods.library_error()->fix);
  if (!f.mods.has_index())
    return result(id, title, CheckStatus::kFail,
                  fmt::format("not loaded; no /lib/modules/{}", f.release()),
                  fmt::format("install the running kernel's modules, or a kernel with {}", config));
  return result(
      id, title, CheckStatus::kFail, "missing from the kernel and its modules",
      fmt::format("install a kernel built with {} (Debian's standard kernel has it)", config));
}

CheckResult check_vfio_device(const Facts& f) {
  const char* id = "vfio-device";
  std::string title = "/dev/vfio/vfio";
  FileType t = f.fs.type("/dev/vfio/vfio");
  if (t == FileType::kCharDevice || t == FileType::kFile)
    return result(id, title, CheckStatus::kPass, "present");
  ModuleState s = module_state(f.fs, f.mods, "vfio");
  if (s == ModuleState::kAvailable)
    return result(id, title, CheckStatus::kPass, "appears when vfio loads (pcipass loads it)");
  if (present(s))
    return result(id, title, CheckStatus::kFail, "missing although vfio is loaded",
                  "create it: mkdir -p /dev/vfio && mknod -m 666 /dev/vfio/vfio c 10 196");
  return result(id, title, CheckStatus::kFail, "missing: the kernel has no vfio",
                "install a kernel with vfio (see the vfio line)");
}

CheckResult check_memlock(const Facts& f) {
  const char* id = "memlock";
  std::string title = "Locked memory limit";
  const std::string fix =
      "raise it with `ulimit -l unlimited` or LimitMEMLOCK=infinity in the service, "
      "or run QEMU through libvirt which raises it";
  auto memlock = read_memlock_limit(f.fs);
  if (!memlock)
    return result(id, title, CheckStatus::kWarn, memlock.error().message,
                  "check `ulimit -l`: QEMU must be able to lock all guest RAM");
  auto show = [](const std::optional<uint64_t>& b) {
    return b ? human_bytes(*b) : std::string("unlimited");
  };
  if (!memlock->soft) return result(id, title, CheckStatus::kPass, "unlimited");
  uint64_t limit = *memlock->soft;
  // All guest RAM must be lockable; a limit that covers the host's RAM covers any guest.
  std::optional<uint64_t> ram;
  if (auto text = f.fs.read("/proc/meminfo", 64 * 1024)) {
    std::istringstream in(*text);
    std::string key, unit;
    uint64_t kib = 0;
    while (in >> key >> kib) {
      std::getline(in, unit);
      if (key == "MemTotal:") {
        if (kib <= UINT64_MAX / 1024) ram = kib * 1024;  // else unknown, not wrapped round
        break;
      }
    }
  }
  if (ram && limit >= *ram)
    return result(id, title, CheckStatus::kPass,
                  fmt::format("{}, covers all {} of RAM", human_bytes(limit), human_bytes(*ram)));
  std::string detail = human_bytes(limit);
  if (memlock->hard != memlock->soft) detail += " (hard " + show(memlock->hard) + ")";
  detail += ": VFIO pins all guest RAM";
  return result(id, title, CheckStatus::kWarn, detail, fix);
}

// Without libkmod modules can't be looked up or loaded; without libpci devices have no names.
CheckResult check_libraries(const Libraries& libs) {
  std::vector<const Error*> missing;
  for (const auto& e : {&libs.kmod, &libs.pci})
    if (*e) missing.push_back(&**e);
  if (missing.empty()) {
    std::vector<std::string> parts;
    parts.push_back(
        libs.kmod_needed
            ? fmt::format("{} loads", kKmodLibrary)
            : fmt::format("{} not needed: every module is loaded or built in", kKmodLibrary));
    if (libs.pci_needed) parts.push_back(fmt::format("{} loads", kPciLibrary));
    return result("libraries", "Libraries", CheckStatus::kPass, join(parts, "; "));
  }
  std::vector<std::string> details, fixes;
  for (const Error* e : missing) details.push_back(e->message), fixes.push_back(e->fix);
  return result("libraries", "Libraries", CheckStatus::kWarn, join(details, "; "),
                join(fixes, "; "));
}

CheckReport run_before_libraries(const HostFs& fs, const ModuleIndex& modules) {
  Facts f = gather(fs, modules);
  CheckReport report;
  auto& r = report.results;
  r.push_back(check_cpu(f));
  r.push_back(check_kvm_module(f));
  r.push_back(check_kvm_device(f));
  r.push_back(check_iommu_firmware(f));
  r.push_back(check_iommu_kernel(f));
  r.push_back(check_cmdline(f));
  r.push_back(check_interrupt_remapping(f));
  r.push_back(check_unsafe_interrupts(f));
  r.push_back(check_module(f, "vfio-module", "vfio", "vfio", "CONFIG_VFIO"));
  r.push_back(check_module(f, "vfio-iommu-type1-module", "vfio_iommu_type1", "vfio_iommu_type1",
                           "CONFIG_VFIO_IOMMU_TYPE1"));
  r.push_back(check_module(f, "vfio-pci-module", "vfio_pci", "vfio-pci", "CONFIG_VFIO_PCI"));
  r.push_back(check_vfio_device(f));
  r.push_back(check_memlock(f));
  return report;
}

}  // namespace

CheckReport run_checks(const HostFs& fs, const ModuleIndex& modules) {
  CheckReport report = run_before_libraries(fs, modules);
  Libraries libs;
  libs.kmod = modules.library_error();
  libs.kmod_needed = modules.library_tried();
  libs.pci_needed = false;
  report.results.push_back(check_libraries(libs));
  return report;
}

CheckReport run_checks(const HostFs& fs, const ModuleIndex& modules, const Libraries& libs) {
  CheckReport report = run_before_libraries(fs, modules);
  report.results.push_back(check_libraries(libs));
  return report;
}

}  // namespace pcipass
