// Host readiness checks against small host trees built in a temporary directory.
#include "check/check.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "deny_fs.h"
#include "host/host_fs.h"
#include "host/modules.h"
#include "temp_tree.h"

namespace pcipass {
namespace {

constexpr const char* kRelease = "6.1.0-test";
constexpr const char* kGrub =
    "(GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot)";

// modules.dep.bin made by depmod for vfio, vfio_iommu_type1, vfio_pci, kvm_intel and kvm_amd
// (empty .ko files with a .modinfo section): lets libkmod call them available.
const char kModulesDepBin[] =
    "\xb0\x07\xf4\x57\x00\x02\x00\x01\x20\x00\x01\x08\x6d\x64\x00\x00\x00\x00\x01\x00\x00\x00"
    "\x02\x6b\x65\x72\x6e\x65\x6c\x2f\x6b\x76\x6d\x5f\x61\x6d\x64\x2e\x6b\x6f\x3a\x00\x6e\x74"
    "\x65\x6c\x00\x00\x00\x00\x01\x00\x00\x00\x03\x6b\x65\x72\x6e\x65\x6c\x2f\x6b\x76\x6d\x5f"
    "\x69\x6e\x74\x65\x6c\x2e\x6b\x6f\x3a\x00\x76\x6d\x5f\x00\x61\x69\xc0\x00\x00\x0c\x00\x00"
    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x00\xc0\x00\x00\x2a\x6f\x6d\x6d\x75\x5f\x74\x79\x70\x65\x31\x00\x00\x00\x00"
    "\x01\x00\x00\x00\x00\x6b\x65\x72\x6e\x65\x6c\x2f\x76\x66\x69\x6f\x5f\x69\x6f\x6d\x6d\x75"
    "\x5f\x74\x79\x70\x65\x31\x2e\x6b\x6f\x3a\x00\x63\x69\x00\x00\x00\x00\x01\x00\x00\x00\x01"
    "\x6b\x65\x72\x6e\x65\x6c\x2f\x76\x66\x69\x6f\x5f\x70\x63\x69\x2e\x6b\x6f\x3a\x00\x69\x70"
    "\xc0\x00\x00\x76\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x00\x00\x00\xc0\x00\x00\xa5\x66\x69\x6f\x00\x5f\x5f\x20\x00\x00\xc4\x00\x00"
    "\x00\x01\x00\x00\x00\x04\x6b\x65\x72\x6e\x65\x6c\x2f\x76\x66\x69\x6f\x2e\x6b\x6f\x3a\x00"
    "\x6b\x76\xa0\x00\x00\x4c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\xe0\x00\x00\xe6";

// A host tree (test::TempTree) that runs the checks over itself.
class HostTree : public test::TempTree {
 public:
  CheckReport check() const {
    auto fs = make_real_host_fs(root());
    auto modules = ModuleIndex::open(*fs);
    return run_checks(*fs, *modules);
  }
};

std::string cpuinfo(const std::string& vendor, const std::string& flags) {
  std::string one = "vendor_id\t: " + vendor + "\ncpu family\t: 6\nflags\t\t: " + flags +
                    "\nvmx flags\t: vnmi preemption_timer invvpid\n";
  return "processor\t: 0\n" + one + "\nprocessor\t: 1\n" + one + "\n";
}

std::string limits(const std::string& soft, const std::string& hard) {
  auto row = [](const std::string& name, const std::string& s, const std::string& h,
                const std::string& u) {
    std::string line = name;
    line.resize(26, ' ');
    std::string a = s, b = h;
    a.resize(21, ' ');
    b.resize(21, ' ');
    return line + a + b + u + "\n";
  };
  return row("Limit", "Soft Limit", "Hard Limit", "Units     ") +
         row("Max cpu time", "unlimited", "unlimited", "seconds   ") +
         row("Max locked memory", soft, hard, "bytes     ") +
         row("Max address space", "unlimited", "unlimited", "bytes     ");
}

constexpr const char* kLoadedIntel =
    "kvm_intel 380928 0 - Live 0x0000000000000000\n"
    "kvm 1142784 1 kvm_intel, Live 0x0000000000000000\n"
    "vfio_pci 16384 0 - Live 0x0000000000000000\n"
    "vfio_pci_core 94208 1 vfio_pci, Live 0x0000000000000000\n"
    "vfio_iommu_type1 45056 0 - Live 0x0000000000000000\n"
    "vfio 57344 2 vfio_pci_core,vfio_iommu_type1, Live 0x0000000000000000\n";

// An Intel workstation ready for passthrough: VT-x, VT-d in firmware and kernel, vfio loaded.
void intel_host(HostTree& t) {
  t.file("/proc/cpuinfo", cpuinfo("GenuineIntel", "fpu vme de pse tsc msr pae vmx smx est tm2"))
      .file("/proc/cmdline",
            "BOOT_IMAGE=/boot/vmlinuz-6.1.0-test root=UUID=1234 ro quiet intel_iommu=on iommu=pt\n")
      .file("/proc/sys/kernel/osrelease", std::string(kRelease) + "\n")
      .file("/proc/modules", kLoadedIntel)
      .file("/lib/modules/6.1.0-test/modules.builtin", "kernel/drivers/pci/pcie/portdrv.ko\n")
      .file("/proc/self/limits", limits("unlimited", "unlimited"))
      .file("/dev/kvm")
      .file("/dev/vfio/vfio")
      .file("/sys/firmware/acpi/tables/DMAR")
      .file("/sys/devices/virtual/iommu/dmar0/intel-iommu/ecap", "f050da\n")
      .link("/sys/class/iommu/dmar0", "/sys/devices/virtual/iommu/dmar0")
      .file("/sys/kernel/iommu_groups/0/devices/0000:00:00.0")
      .file("/sys/kernel/iommu_groups/1/devices/0000:01:00.0")
      .file("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "N\n");
}

// The same machine with the IOMMU off in the kernel.
void intel_iommu_off(HostTree& t, const std::string& cmdline) {
  intel_host(t);
  t.file("/proc/cmdline", cmdline + "\n")
      .remove("/sys/class/iommu/dmar0")
      .remove("/sys/kernel/iommu_groups/0")
      .remove("/sys/kernel/iommu_groups/1");
}

// An AMD host: IVRS, AMD-Vi on by default, nothing on the command line.
void amd_host(HostTree& t) {
  t.file("/proc/cpuinfo", cpuinfo("AuthenticAMD", "fpu vme de pse tsc msr pae svm extapic"))
      .file("/proc/cmdline", "BOOT_IMAGE=/boot/vmlinuz-6.1.0-test root=UUID=1234 ro quiet\n")
      .file("/proc/sys/kernel/osrelease", std::string(kRelease) + "\n")
      .file("/proc/modules",
            "kvm_amd 155648 0 - Live 0x0\nkvm 1142784 1 kvm_amd, Live 0x0\nvfio_pci 16384 0 - Live "
            "0x0\n"
            "vfio_iommu_type1 45056 0 - Live 0x0\nvfio 57344 2 vfio_iommu_type1, Live 0x0\n")
      .file("/lib/modules/6.1.0-test/modules.builtin", "")
      .file("/proc/self/limits", limits("unlimited", "unlimited"))
      .file("/dev/kvm")
      .file("/dev/vfio/vfio")
      .file("/sys/firmware/acpi/tables/IVRS")
      .dir("/sys/devices/pci0000:00/0000:00:00.2/iommu/ivhd0/amd-iommu")
      .link("/sys/class/iommu/ivhd0", "/sys/devices/pci0000:00/0000:00:00.2/iommu/ivhd0")
      .file("/sys/kernel/iommu_groups/0/devices/0000:00:01.0")
      .file("/sys/kernel/iommu_groups/12/devices/0000:0b:00.0");
}

const CheckResult& get(const CheckReport& r, const std::string& id) {
  const CheckResult* found = r.find(id);
  if (!found) throw std::runtime_error("no check " + id);
  return *found;
}

CheckStatus status(const CheckReport& r, const std::string& id) {
  return get(r, id).status;
}

#define EXPECT_CHECK(report, id, st, det)          \
  do {                                             \
    const CheckReport& rep_ = (report);            \
    const CheckResult& res_ = get(rep_, id);       \
    EXPECT_EQ(res_.status, CheckStatus::st) << id; \
    EXPECT_EQ(res_.detail, det) << id;             \
  } while (0)

// --- the report ---------------------------------------------------------------------------

TEST(CheckReport, WorstAndNames) {
  CheckReport r;
  EXPECT_EQ(r.worst(), CheckStatus::kPass);
  r.results.push_back({"a", "A", CheckStatus::kWarn, "", "x"});
  EXPECT_EQ(r.worst(), CheckStatus::kWarn);
  r.results.push_back({"b", "B", CheckStatus::kFail, "", "y"});
  r.results.push_back({"c", "C", CheckStatus::kPass, "", ""});
  EXPECT_EQ(r.worst(), CheckStatus::kFail);
  EXPECT_STREQ(check_status_name(CheckStatus::kPass), "PASS");
  EXPECT_STREQ(check_status_name(CheckStatus::kWarn), "WARN");
  EXPECT_STREQ(check_status_name(CheckStatus::kFail), "FAIL");
  EXPECT_EQ(r.find("b")->title, "B");
  EXPECT_EQ(r.find("zz"), nullptr);
}

TEST(Check, StableIdsInOrderAndEveryNonPassHasAFix) {
  HostTree t;  // an empty tree: nothing readable at all
  CheckReport r = t.check();
  ASSERT_EQ(r.results.size(), std::size(kCheckIds));
  for (size_t i = 0; i < r.results.size(); ++i) {
    EXPECT_EQ(r.results[i].id, kCheckIds[i]);
    EXPECT_FALSE(r.results[i].title.empty());
    if (r.results[i].status != CheckStatus::kPass) {
      EXPECT_FALSE(r.results[i].fix.empty()) << r.results[i].id;
    }
  }
  EXPECT_EQ(r.worst(), CheckStatus::kFail);
  EXPECT_CHECK(r, "cpu-virtualization", kWarn, "cannot read /proc/cpuinfo");
  EXPECT_CHECK(r, "kernel-cmdline", kWarn, "cannot read /proc/cmdline");
  EXPECT_CHECK(r, "memlock", kWarn, "cannot read Max locked memory in /proc/self/limits");
  EXPECT_CHECK(r, "iommu-firmware", kFail, "no ACPI DMAR or IVRS table");
  EXPECT_EQ(get(r, "iommu-firmware").fix,
            "enable VT-d (Intel) / AMD-Vi (IOMMU) in the firmware setup");
}

// --- Intel --------------------------------------------------------------------------------

TEST(Check, IntelWithIommuOnPassesEverything) {
  HostTree t;
  intel_host(t);
  CheckReport r = t.check();
  for (const CheckResult& c : r.results) {
    EXPECT_EQ(c.status, CheckStatus::kPass) << c.id << ": " << c.detail << " / " << c.fix;
    EXPECT_EQ(c.fix, "") << c.id;
  }
  EXPECT_EQ(r.worst(), CheckStatus::kPass);
  EXPECT_CHECK(r, "cpu-virtualization", kPass, "Intel VT-x (vmx flag)");
  EXPECT_CHECK(r, "kvm-module", kPass, "kvm_intel loaded");
  EXPECT_CHECK(r, "kvm-device", kPass, "present");
  EXPECT_CHECK(r, "iommu-firmware", kPass, "ACPI DMAR table present (VT-d)");
  EXPECT_CHECK(r, "iommu-kernel", kPass, "on: 1 unit (dmar0), 2 groups, iommu=pt");
  EXPECT_CHECK(r, "kernel-cmdline", kPass, "intel_iommu=on iommu=pt");
  EXPECT_CHECK(r, "interrupt-remapping", kPass, "supported by 1 DMAR unit");
  EXPECT_CHECK(r, "unsafe-interrupts", kPass, "not allowed");
  EXPECT_CHECK(r, "vfio-module", kPass, "module loaded");
  EXPECT_CHECK(r, "vfio-iommu-type1-module", kPass, "module loaded");
  EXPECT_CHECK(r, "vfio-pci-module", kPass, "module loaded");
  EXPECT_CHECK(r, "vfio-device", kPass, "present");
  EXPECT_CHECK(r, "memlock", kPass, "unlimited");
}

TEST(Check, IntelDmarWithoutIntelIommuOn) {
  HostTree t;
  intel_iommu_off(t, "BOOT_IMAGE=/boot/vmlinuz root=UUID=1234 ro quiet");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "iommu-firmware", kPass, "ACPI DMAR table present (VT-d)");
  EXPECT_CHECK(r, "iommu-kernel", kFail, "IOMMU is off in the kernel: no IOMMU groups");
  EXPECT_EQ(
      get(r, "iommu-kernel").fix,
      "add intel_iommu=on to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, "
      "then update-grub and reboot); iommu=pt is optional");
  EXPECT_CHECK(r, "kernel-cmdline", kPass, "no IOMMU or VFIO parameters");
  EXPECT_CHECK(r, "interrupt-remapping", kWarn, "unknown until the IOMMU is on");
  EXPECT_EQ(get(r, "interrupt-remapping").fix,
            "fix the IOMMU lines above, then run pcipass check again");
  EXPECT_EQ(r.worst(), CheckStatus::kFail);
}

TEST(Check, IntelIommuOffOnTheCommandLine) {
  HostTree t;
  intel_iommu_off(t, "root=/dev/sda1 intel_iommu=off");
  CheckReport r = t.check();
  EXPECT_EQ(status(r, "iommu-kernel"), CheckStatus::kFail);
  EXPECT_EQ(get(r, "iommu-kernel").fix,
            std::string("replace intel_iommu=off with intel_iommu=on in the kernel "
                        "command line ") +
                kGrub + "; iommu=pt is optional");
  EXPECT_CHECK(r, "kernel-cmdline", kWarn, "intel_iommu=off disables passthrough");
  EXPECT_EQ(get(r, "kernel-cmdline").fix,
            std::string("remove intel_iommu=off from the kernel command line ") + kGrub);
}

TEST(Check, IommuOffOnIntel) {
  HostTree t;
  intel_iommu_off(t, "root=/dev/sda1 iommu=off iommu=pt");
  CheckReport r = t.check();
  EXPECT_EQ(
      get(r, "iommu-kernel").fix,
      std::string("remove iommu=off and add intel_iommu=on in the kernel command line ") + kGrub);
}

TEST(Check, IntelIommuOnIgnoredByTheKernel) {
  HostTree t;
  intel_iommu_off(t, "root=/dev/sda1 intel_iommu=on");
  CheckReport r = t.check();
  EXPECT_EQ(get(r, "iommu-kernel").fix,
            "the kernel ignored intel_iommu=on: see `dmesg | grep -i -e DMAR -e IOMMU`");
}

TEST(Check, IntelWithoutDmarTable) {
  HostTree t;
  intel_iommu_off(t, "root=/dev/sda1 quiet");
  t.remove("/sys/firmware/acpi/tables/DMAR");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "iommu-firmware", kFail, "no ACPI DMAR table: VT-d is off or missing");
  EXPECT_EQ(get(r, "iommu-firmware").fix,
            "enable VT-d in the firmware setup (UEFI/BIOS), then reboot");
  EXPECT_EQ(
      get(r, "iommu-kernel").fix,
      std::string(
          "enable VT-d in the firmware setup (UEFI/BIOS), then add intel_iommu=on to the kernel "
          "command line ") +
          kGrub + "; iommu=pt is optional");

  t.file("/proc/cmdline", "root=/dev/sda1 intel_iommu=on");
  EXPECT_EQ(get(t.check(), "iommu-kernel").fix,
            "enable VT-d in the firmware setup (UEFI/BIOS), then reboot");
}

TEST(Check, IommuUnitsWithoutGroupsFail) {
  HostTree t;
  intel_host(t);
  t.remove("/sys/kernel/iommu_groups/0").remove("/sys/kernel/iommu_groups/1");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "iommu-kernel", kFail, "IOMMU units (dmar0) but no IOMMU groups");
}

TEST(Check, GroupsWithoutUnitsWarn) {
  HostTree t;
  intel_host(t);
  t.remove("/sys/class/iommu/dmar0");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "iommu-kernel", kWarn, "2 groups but no units in /sys/class/iommu");
}

TEST(Check, SystemdBootCommandLine) {
  HostTree t;
  intel_iommu_off(t, "root=/dev/sda1");
  t.file("/etc/kernel/cmdline", "root=/dev/sda1\n");
  EXPECT_EQ(get(t.check(), "iommu-kernel").fix,
            "add intel_iommu=on to the kernel command line (in /etc/kernel/cmdline, then "
            "kernel-install or "
            "proxmox-boot-tool refresh, and reboot); iommu=pt is optional");
  t.file("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"\"\n");  // GRUB wins when both are there
  EXPECT_EQ(get(t.check(), "iommu-kernel").fix,
            std::string("add intel_iommu=on to the kernel command line ") + kGrub +
                "; iommu=pt is optional");
}

// --- AMD ----------------------------------------------------------------------------------

TEST(Check, AmdWithIvrsIsOnByDefault) {
  HostTree t;
  amd_host(t);
  CheckReport r = t.check();
  for (const CheckResult& c : r.results)
    EXPECT_EQ(c.status, CheckStatus::kPass) << c.id << ": " << c.detail;
  EXPECT_CHECK(r, "cpu-virtualization", kPass, "AMD-V (svm flag)");
  EXPECT_CHECK(r, "kvm-module", kPass, "kvm_amd loaded");
  EXPECT_CHECK(r, "iommu-firmware", kPass, "ACPI IVRS table present (AMD-Vi)");
  EXPECT_CHECK(r, "iommu-kernel", kPass, "on: 1 unit (ivhd0), 2 groups");
  EXPECT_CHECK(r, "kernel-cmdline", kPass, "no IOMMU or VFIO parameters");
  EXPECT_CHECK(r, "interrupt-remapping", kPass, "on (AMD-Vi remaps interrupts)");
  EXPECT_CHECK(r, "unsafe-interrupts", kPass, "not allowed");
}

TEST(Check, AmdIommuOffOnTheCommandLine) {
  HostTree t;
  amd_host(t);
  t.remove("/sys/class/iommu/ivhd0")
      .remove("/sys/kernel/iommu_groups/0")
      .remove("/sys/kernel/iommu_groups/12");
  t.file("/proc/cmdline", "root=/dev/sda1 amd_iommu=off\n");
  EXPECT_EQ(get(t.check(), "iommu-kernel").fix,
            std::string("remove amd_iommu=off from the kernel command line ") + kGrub);
  t.file("/proc/cmdline", "root=/dev/sda1 iommu=off\n");
  EXPECT_EQ(get(t.check(), "iommu-kernel").fix,
            std::string("remove iommu=off from the kernel command line ") + kGrub);
  t.file("/proc/cmdline", "iommu=off amd_iommu=off\n");
  EXPECT_EQ(
      get(t.check(), "iommu-kernel").fix,
      std::string("remove iommu=off and amd_iommu=off from the kernel command line ") + kGrub);
  t.file("/proc/cmdline", "root=/dev/sda1\n");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "iommu-kernel", kFail, "IOMMU is off in the kernel: no IOMMU groups");
  EXPECT_EQ(get(r, "iommu-kernel").fix,
            "AMD-Vi is on by default but did not start: see `dmesg | grep -i AMD-Vi`");
}

TEST(Check, AmdWithoutIvrsTable) {
  HostTree t;
  amd_host(t);
  t.remove("/sys/firmware/acpi/tables/IVRS")
      .remove("/sys/class/iommu/ivhd0")
      .remove("/sys/kernel/iommu_groups/0")
      .remove("/sys/kernel/iommu_groups/12");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "iommu-firmware", kFail, "no ACPI IVRS table: AMD-Vi is off or missing");
  EXPECT_EQ(get(r, "iommu-firmware").fix,
            "enable AMD-Vi (IOMMU) in the firmware setup (UEFI/BIOS), then reboot");
  EXPECT_EQ(get(r, "iommu-kernel").fix,
            "enable AMD-Vi (IOMMU) in the firmware setup (UEFI/BIOS), then reboot");
}

// The listings the IOMMU's state and KVM's module are counted from: unreadable is "cannot tell",
// not "no units, no groups" (the firmware's fault) or "no KVM module" (a kernel to rebuild).
TEST(Check, UnlistableIommuAndModuleDirectoriesAreUnknownNotNone) {
  HostTree t;
  t.file("/proc/cpuinfo", cpuinfo("AuthenticAMD", "fpu vme de pse tsc msr pae hypervisor"))
      .file("/proc/sys/kernel/osrelease", "6.18.44-test\n")
      .file("/dev/kvm")
      .dir("/sys/module/kvm_pvm/parameters")
      .dir("/sys/class/iommu/ivhd0")
      .dir("/sys/kernel/iommu_groups/0");
  auto run = [&](std::vector<std::string> denied) {
    test::DenyFs deny(t, std::move(denied));
    auto modules = ModuleIndex::open(deny);
    return run_checks(deny, *modules);
  };
  for (std::string dir : {"/sys/class/iommu", "/sys/kernel/iommu_groups"}) {
    CheckReport r = run({dir});
    EXPECT_CHECK(r, "iommu-firmware", kFail,
                 "cannot tell: cannot read " + dir + ": Permission denied");
    EXPECT_CHECK(r, "iommu-kernel", kFail,
                 "cannot tell: cannot read " + dir + ": Permission denied");
  }
  EXPECT_CHECK(run({}), "kvm-module", kPass, "kvm_pvm provides KVM (kvm_amd not loaded)");
  CheckReport r = run({"/sys/module"});
  EXPECT_CHECK(r, "kvm-module", kWarn,
               "/dev/kvm exists but which module serves it is unknown (kvm_amd not loaded): "
               "opendir /sys/module: Permission denied");
  EXPECT_EQ(get(r, "kvm-module").fix, "run pcipass as root, then check again");
}

// A VM without a virtual IOMMU, as the development machine: AMD CPU, hypervisor flag, no ACPI
// IOMMU table, no /lib/modules, KVM from another backend.
TEST(Check, VirtualMachineWithoutIommu) {
  HostTree t;
  t.file("/proc/cpuinfo", cpuinfo("AuthenticAMD", "fpu vme de pse tsc msr pae hypervisor"))
      .file("/proc/cmdline", "console=ttyS0 quiet -- --init-flag\n")
      .file("/proc/sys/kernel/osrelease", "6.18.44-test\n")
      .file("/proc/self/limits", limits("8388608", "8388608"))
      .file("/dev/kvm")
      .dir("/sys/module/kvm/parameters")
      .dir("/sys/module/kvm_pvm/parameters")
      .dir("/sys/class/iommu")
      .dir("/sys/kernel/iommu_groups");
  CheckReport r = t.check();
  const std::string viommu =
      "this is a VM: give it a vIOMMU (QEMU: -M q35,kernel-irqchip=split -device "
      "intel-iommu,intremap=on)";
  EXPECT_CHECK(r, "cpu-virtualization", kWarn, "no svm flag, but /dev/kvm exists");
  EXPECT_EQ(
      get(r, "cpu-virtualization").fix,
      "this is a VM: enable nested virtualization on its host (kvm_amd nested=1, QEMU -cpu host)");
  EXPECT_CHECK(r, "kvm-module", kPass, "kvm_pvm provides KVM (kvm_amd not loaded)");
  EXPECT_CHECK(r, "kvm-device", kPass, "present");
  EXPECT_CHECK(r, "iommu-firmware", kFail, "no ACPI IVRS table: AMD-Vi is off or missing");
  EXPECT_EQ(get(r, "iommu-firmware").fix, viommu);
  EXPECT_CHECK(r, "iommu-kernel", kFail, "IOMMU is off in the kernel: no IOMMU groups");
  EXPECT_EQ(get(r, "iommu-kernel").fix, viommu);
  EXPECT_CHECK(r, "interrupt-remapping", kWarn, "unknown until the IOMMU is on");
  EXPECT_CHECK(r, "vfio-module", kFail, "not loaded; no /lib/modules/6.18.44-test");
  EXPECT_EQ(get(r, "vfio-module").fix,
            "install the running kernel's modules, or a kernel with CONFIG_VFIO");
  EXPECT_CHECK(r, "vfio-device", kFail, "missing: the kernel has no vfio");
  EXPECT_CHECK(r, "memlock", kWarn, "8 MiB: VFIO pins all guest RAM");

  t.remove("/dev/kvm");
  r = t.check();
  EXPECT_CHECK(r, "cpu-virtualization", kFail, "no svm flag in /proc/cpuinfo: AMD-V is off");
  EXPECT_CHECK(r, "kvm-device", kFail, "missing");
  EXPECT_EQ(
      get(r, "kvm-device").fix,
      "this is a VM: enable nested virtualization on its host (kvm_amd nested=1, QEMU -cpu host)");
}

TEST(Check, UnknownPlatformWithIort) {
  HostTree t;
  t.file("/proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm\n")
      .file("/sys/firmware/acpi/tables/IORT");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "iommu-firmware", kPass, "ACPI IORT table present");
  EXPECT_CHECK(r, "cpu-virtualization", kFail,
               "no vmx/svm flag in /proc/cpuinfo: VT-x/AMD-V is off");
  EXPECT_EQ(get(r, "cpu-virtualization").fix,
            "enable VT-x (Intel) / AMD-V (SVM) in the firmware setup, then reboot");
}

// --- CPU and KVM --------------------------------------------------------------------------

TEST(Check, NoVmxFlag) {
  HostTree t;
  intel_host(t);
  t.file("/proc/cpuinfo", cpuinfo("GenuineIntel", "fpu vme de pse tsc msr pae smx est"))
      .remove("/dev/kvm");
  CheckReport r = t.check();
  const std::string fix =
      "enable Intel Virtualization Technology (VT-x) in the firmware setup, then reboot";
  EXPECT_CHECK(r, "cpu-virtualization", kFail, "no vmx flag in /proc/cpuinfo: VT-x is off");
  EXPECT_EQ(get(r, "cpu-virtualization").fix, fix);
  EXPECT_CHECK(r, "kvm-device", kFail, "missing");
  EXPECT_EQ(get(r, "kvm-device").fix, fix);
}

TEST(Check, NoSvmFlag) {
  HostTree t;
  amd_host(t);
  t.file("/proc/cpuinfo", cpuinfo("AuthenticAMD", "fpu vme de pse")).remove("/dev/kvm");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "cpu-virtualization", kFail, "no svm flag in /proc/cpuinfo: AMD-V is off");
  EXPECT_EQ(get(r, "cpu-virtualization").fix,
            "enable SVM mode (AMD-V) in the firmware setup, then reboot");
}

TEST(Check, KvmModuleStates) {
  HostTree t;
  intel_host(t);
  t.file("/proc/modules", "").remove("/dev/kvm");
  CheckReport r = t.check();  // no index: nothing can be loaded
  EXPECT_CHECK(r, "kvm-module", kFail, "kvm_intel not loaded; no /lib/modules/6.1.0-test");
  EXPECT_EQ(get(r, "kvm-module").fix,
            "install the running kernel's modules, or a kernel with CONFIG_KVM_INTEL");

  t.file("/lib/modules/6.1.0-test/modules.dep.bin",
         std::string(kModulesDepBin, sizeof kModulesDepBin - 1));
  r = t.check();
  EXPECT_CHECK(r, "kvm-module", kWarn, "kvm_intel available, not loaded");
  EXPECT_EQ(get(r, "kvm-module").fix, "load it: modprobe kvm_intel");
  EXPECT_CHECK(r, "kvm-device", kFail, "missing");
  EXPECT_EQ(get(r, "kvm-device").fix, "load KVM: modprobe kvm_intel");

  t.file("/proc/modules", "kvm_intel 380928 0 - Live 0x0\n");
  r = t.check();
  EXPECT_CHECK(r, "kvm-device", kFail, "missing although kvm_intel is loaded");
  EXPECT_EQ(get(r, "kvm-device").fix,
            "create it: mknod -m 660 /dev/kvm c 10 232 && chgrp kvm /dev/kvm");

  t.file("/proc/modules", "")
      .file("/lib/modules/6.1.0-test/modules.builtin", "kernel/arch/x86/kvm/kvm-intel.ko\n");
  EXPECT_CHECK(t.check(), "kvm-module", kPass, "kvm_intel built into the kernel");
}

// --- vfio modules and /dev/vfio/vfio ------------------------------------------------------

TEST(Check, VfioMissing) {
  HostTree t;
  intel_host(t);
  t.file("/proc/modules", "kvm_intel 380928 0 - Live 0x0\n")
      .remove("/dev/vfio/vfio")
      .remove("/sys/module/vfio_iommu_type1");
  CheckReport r = t.check();
  for (const char* id : {"vfio-module", "vfio-iommu-type1-module", "vfio-pci-module"})
    EXPECT_CHECK(r, id, kFail, "not loaded; no /lib/modules/6.1.0-test");
  EXPECT_EQ(get(r, "vfio-pci-module").fix,
            "install the running kernel's modules, or a kernel with CONFIG_VFIO_PCI");
  EXPECT_CHECK(r, "vfio-device", kFail, "missing: the kernel has no vfio");
  EXPECT_EQ(get(r, "vfio-device").fix, "install a kernel with vfio (see the vfio line)");
  EXPECT_EQ(get(r, "vfio-module").title, "vfio");
  EXPECT_EQ(get(r, "vfio-iommu-type1-module").title, "vfio_iommu_type1");
  EXPECT_EQ(get(r, "vfio-pci-module").title, "vfio-pci");
}

TEST(Check, VfioBuiltIn) {
  HostTree t;
  intel_host(t);
  t.file("/proc/modules", "kvm_intel 380928 0 - Live 0x0\n")
      .file("/lib/modules/6.1.0-test/modules.builtin",
            "kernel/drivers/vfio/vfio.ko\nkernel/drivers/vfio/vfio_iommu_type1.ko\n"
            "kernel/drivers/vfio/pci/vfio-pci-core.ko\nkernel/drivers/vfio/pci/vfio-pci.ko\n");
  CheckReport r = t.check();
  for (const char* id : {"vfio-module", "vfio-iommu-type1-module", "vfio-pci-module"})
    EXPECT_CHECK(r, id, kPass, "built into the kernel");
  EXPECT_CHECK(r, "vfio-device", kPass, "present");
}

TEST(Check, VfioBuiltInSeenInSysModuleWithoutIndex) {
  HostTree t;
  intel_host(t);
  t.file("/proc/modules", "kvm_intel 380928 0 - Live 0x0\n")
      .remove("/lib/modules")
      .dir("/sys/module/vfio/parameters")
      .dir("/sys/module/vfio_pci/parameters");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "vfio-module", kPass, "built into the kernel");
  EXPECT_CHECK(r, "vfio-pci-module", kPass, "built into the kernel");
  EXPECT_CHECK(r, "vfio-iommu-type1-module", kPass, "built into the kernel");  // has parameters/
  t.file("/sys/module/vfio_pci/initstate", "live\n");
  EXPECT_CHECK(t.check(), "vfio-pci-module", kPass, "module loaded");
}

TEST(Check, VfioAvailableButNotLoaded) {
  HostTree t;
  intel_host(t);
  t.file("/proc/modules", "kvm_intel 380928 0 - Live 0x0\n")
      .remove("/dev/vfio")
      .remove("/sys/module/vfio_iommu_type1")
      .file("/lib/modules/6.1.0-test/modules.dep.bin",
            std::string(kModulesDepBin, sizeof kModulesDepBin - 1));
  CheckReport r = t.check();
  for (const char* id : {"vfio-module", "vfio-iommu-type1-module", "vfio-pci-module"})
    EXPECT_CHECK(r, id, kPass, "module available, pcipass loads it on bind");
  EXPECT_CHECK(r, "vfio-device", kPass, "appears when vfio loads (pcipass loads it)");
  EXPECT_EQ(r.worst(), CheckStatus::kPass);
}

TEST(Check, VfioLoadedButNoDeviceNode) {
  HostTree t;
  intel_host(t);
  t.remove("/dev/vfio");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "vfio-device", kFail, "missing although vfio is loaded");
  EXPECT_EQ(get(r, "vfio-device").fix,
            "create it: mkdir -p /dev/vfio && mknod -m 666 /dev/vfio/vfio c 10 196");
}

// --- interrupt remapping and unsafe interrupts --------------------------------------------

TEST(Check, UnsafeInterruptsAllowedAtRuntime) {
  HostTree t;
  intel_host(t);
  t.file("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "Y\n");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "unsafe-interrupts", kWarn, "unsafe interrupts allowed (vfio_iommu_type1)");
  EXPECT_EQ(get(r, "unsafe-interrupts").fix,
            "echo N > /sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts "
            "(vfio then needs interrupt remapping)");
  EXPECT_CHECK(r, "interrupt-remapping", kPass, "supported by 1 DMAR unit");
}

TEST(Check, UnsafeInterruptsInModprobeConfig) {
  HostTree t;
  intel_host(t);
  t.file("/etc/modprobe.d/vfio.conf",
         "# passthrough\noptions vfio-pci ids=10de:1b80\n"
         "options vfio_iommu_type1 \\\n  allow_unsafe_interrupts=1\n");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "unsafe-interrupts", kWarn,
               "unsafe interrupts allowed from the next vfio_iommu_type1 load");
  EXPECT_EQ(get(r, "unsafe-interrupts").fix,
            "remove allow_unsafe_interrupts=1 from /etc/modprobe.d/vfio.conf");

  t.file("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "Y\n");
  EXPECT_EQ(get(t.check(), "unsafe-interrupts").fix,
            "remove allow_unsafe_interrupts=1 from /etc/modprobe.d/vfio.conf, and echo N > "
            "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts (vfio then needs "
            "interrupt remapping)");

  // A later file turns it off again.
  t.remove("/sys/module/vfio_iommu_type1")
      .file("/etc/modprobe.d/zz-safe.conf", "options vfio_iommu_type1 allow_unsafe_interrupts=N\n");
  EXPECT_CHECK(t.check(), "unsafe-interrupts", kPass, "not allowed");
}

// The option may sit in a file pcipass cannot see: then "not allowed" would be a guess.
TEST(Check, UnreadableModprobeConfigLeavesUnsafeInterruptsUnknown) {
  HostTree t;
  intel_host(t);
  t.file("/etc/modprobe.d/vfio.conf", "options vfio_iommu_type1 allow_unsafe_interrupts=1\n");
  auto run = [&] {
    test::DenyFs deny(t, {"/etc/modprobe.d"});
    auto modules = ModuleIndex::open(deny);
    return run_checks(deny, *modules);
  };
  CheckReport r = run();
  EXPECT_CHECK(r, "unsafe-interrupts", kWarn,
               "not allowed now, unknown from the next load: the modprobe configuration cannot "
               "be read: opendir /etc/modprobe.d: Permission denied");
  EXPECT_EQ(get(r, "unsafe-interrupts").fix,
            "make the modprobe configuration readable (run pcipass as root), then check again");

  t.remove("/sys/module/vfio_iommu_type1");
  EXPECT_EQ(get(run(), "unsafe-interrupts").detail,
            "unknown once vfio_iommu_type1 loads: the modprobe configuration cannot be read: "
            "opendir /etc/modprobe.d: Permission denied");

  // The command line is applied after modprobe.d: it settles the question.
  t.file("/proc/cmdline",
         "root=/dev/sda1 intel_iommu=on vfio_iommu_type1.allow_unsafe_interrupts=0\n");
  EXPECT_CHECK(run(), "unsafe-interrupts", kPass, "not allowed");
}

TEST(Check, UnsafeInterruptsOnTheCommandLine) {
  HostTree t;
  intel_host(t);
  t.remove("/sys/module/vfio_iommu_type1")
      .file("/proc/cmdline",
            "root=/dev/sda1 intel_iommu=on vfio_iommu_type1.allow_unsafe_interrupts=1\n");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "unsafe-interrupts", kWarn,
               "unsafe interrupts allowed once vfio_iommu_type1 loads");
  EXPECT_EQ(get(r, "unsafe-interrupts").fix,
            std::string(
                "remove vfio_iommu_type1.allow_unsafe_interrupts=1 from the kernel command line ") +
                kGrub);
  EXPECT_CHECK(r, "kernel-cmdline", kPass,
               "intel_iommu=on vfio_iommu_type1.allow_unsafe_interrupts=1");
}

TEST(Check, InterruptRemappingOffOnTheCommandLine) {
  HostTree t;
  intel_host(t);
  t.file("/proc/cmdline", "root=/dev/sda1 intel_iommu=on intremap=off\n");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "interrupt-remapping", kFail, "off (intremap=off), vfio refuses devices");
  EXPECT_EQ(get(r, "interrupt-remapping").fix,
            std::string("remove intremap=off from the kernel command line ") + kGrub);

  t.file("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "Y\n");
  r = t.check();
  EXPECT_CHECK(r, "interrupt-remapping", kWarn, "off (intremap=off), unsafe interrupts allowed");
  EXPECT_EQ(status(r, "unsafe-interrupts"), CheckStatus::kWarn);
}

TEST(Check, InterruptRemappingMissingInHardware) {
  HostTree t;
  intel_host(t);
  t.file("/sys/devices/virtual/iommu/dmar0/intel-iommu/ecap", "f05052\n");  // bit 3 clear
  CheckReport r = t.check();
  EXPECT_CHECK(r, "interrupt-remapping", kFail, "dmar0 lacks it (ecap), vfio refuses devices");
  EXPECT_EQ(
      get(r, "interrupt-remapping").fix,
      "update the firmware or enable interrupt remapping in its setup; or, at your own risk, set "
      "vfio_iommu_type1.allow_unsafe_interrupts=1");
}

TEST(Check, InterruptRemappingOffInDmarFlags) {
  HostTree t;
  intel_iommu_off(t, "root=/dev/sda1");
  std::string dmar(48, '\0');
  dmar.replace(0, 4, "DMAR");
  dmar[36] = 38;    // host address width
  dmar[37] = 0x04;  // flags: DMA_CTRL_PLATFORM_OPT_IN, no INTR_REMAP
  t.file("/sys/firmware/acpi/tables/DMAR", dmar);
  CheckReport r = t.check();
  EXPECT_CHECK(r, "interrupt-remapping", kFail,
               "off in the firmware (DMAR flags), vfio refuses devices");
  dmar[37] = 0x05;
  t.file("/sys/firmware/acpi/tables/DMAR", dmar);
  EXPECT_CHECK(t.check(), "interrupt-remapping", kWarn, "unknown until the IOMMU is on");
}

TEST(Check, InterruptRemappingFromProcInterrupts) {
  HostTree t;
  intel_host(t);
  t.remove("/sys/devices/virtual/iommu/dmar0/intel-iommu/ecap")
      .file("/proc/interrupts",
            "            CPU0       CPU1\n"
            "   0:         20          0  IR-IO-APIC    2-edge      timer\n"
            " 122:          0          0  DMAR-MSI    0-edge      dmar0\n"
            " 125:      10233          0  IR-PCI-MSI-0000:00:17.0    0-edge      "
            "ahci[0000:00:17.0]\n");
  EXPECT_CHECK(t.check(), "interrupt-remapping", kPass, "on (IR- interrupts in /proc/interrupts)");

  t.file("/proc/interrupts",
         "            CPU0       CPU1\n"
         "   0:         20          0  IO-APIC    2-edge      timer\n"
         " 125:      10233          0  PCI-MSI 376832-edge      ahci[0000:00:17.0]\n");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "interrupt-remapping", kFail,
               "off (no IR- in /proc/interrupts), vfio refuses devices");
  EXPECT_EQ(get(r, "interrupt-remapping").fix,
            "see `dmesg | grep -i remapping` for why the kernel left it off");

  t.file("/proc/interrupts",
         "            CPU0\n");  // nothing to go by: the ecap decides, and it is gone
  EXPECT_CHECK(t.check(), "interrupt-remapping", kWarn,
               "unknown: no intel-iommu/ecap in /sys/class/iommu");
}

// --- kernel command line ------------------------------------------------------------------

TEST(Check, AcsOverrideWarns) {
  HostTree t;
  intel_host(t);
  t.file("/proc/cmdline",
         "root=/dev/sda1 intel_iommu=on iommu=pt pcie_acs_override=downstream,multifunction "
         "vfio-pci.ids=10de:1b80,10de:10f0 video=efifb:off\n");
  CheckReport r = t.check();
  EXPECT_CHECK(r, "kernel-cmdline", kWarn,
               "pcie_acs_override=downstream,multifunction: fake IOMMU isolation");
  EXPECT_EQ(get(r, "kernel-cmdline").fix,
            std::string(
                "remove pcie_acs_override=downstream,multifunction from the kernel command line ") +
                kGrub +
                " unless you accept that devices in split groups can reach each other's memory");

  t.file(
      "/proc/cmdline",
      "root=/dev/sda1 intel_iommu=on iommu=pt vfio-pci.ids=10de:1b80,10de:10f0 video=efifb:off\n");
  EXPECT_CHECK(t.check(), "kernel-cmdline", kPass,
               "intel_iommu=on iommu=pt vfio-pci.ids=10de:1b80,10de:10f0 "
               "video=efifb:off");
}

// --- memlock ------------------------------------------------------------------------------

TEST(Check, Memlock) {
  const std::string fix =
      "raise it with `ulimit -l unlimited` or LimitMEMLOCK=infinity in the service, or run QEMU "
      "through "
      "libvirt which raises it";
  HostTree t;
  intel_host(t);
  t.file("/proc/self/limits", limits("8388608", "8388608"));
  CheckReport r = t.check();
  EXPECT_CHECK(r, "memlock", kWarn, "8 MiB: VFIO pins all guest RAM");
  EXPECT_EQ(get(r, "memlock").fix, fix);

  t.file("/proc/self/limits", limits("65536", "unlimited"));
  EXPECT_CHECK(t.check(), "memlock", kWarn, "64 KiB (hard unlimited): VFIO pins all guest RAM");

  t.file("/proc/self/limits", limits("8589934592", "8589934592"))
      .file("/proc/meminfo", "MemTotal:        4028440 kB\nMemFree:          123456 kB\n");
  EXPECT_CHECK(t.check(), "memlock", kPass, "8 GiB, covers all 3.8 GiB of RAM");

  t.file("/proc/meminfo", "MemTotal:       16318012 kB\n");
  EXPECT_CHECK(t.check(), "memlock", kWarn, "8 GiB: VFIO pins all guest RAM");

  t.file("/proc/self/limits", limits("unlimited", "unlimited"));
  EXPECT_CHECK(t.check(), "memlock", kPass, "unlimited");
}

}  // namespace
}  // namespace pcipass
