// pcipass doctor: each known message, from realistic logs (tests/fixtures/doctor), explained
// with the evidence of a host tree; logs as hostile input; the command line's answers.
#include "doctor/doctor.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "cli_harness.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

const std::string kBus = "/sys/devices/pci0000:00";
const std::string kPort = kBus + "/0000:00:01.0";

std::string fixture(const std::string& name) {
  std::ifstream in(source_path("tests/fixtures/doctor/" + name), std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_FALSE(s.str().empty()) << name;
  return s.str();
}

// A GPU (01:00.0, vfio-pci) whose audio function (01:00.1) is still on snd_hda_intel, both in
// group 3 with their port; IOMMU on.
void gpu_host(TempTree& t) {
  t.pci_device(kBus, "0000:00:01.0", 0x8086, 0x1901, 0x060400, "pcieport", 3);
  t.pci_device(kPort, "0000:01:00.0", 0x10de, 0x1b80, 0x030000, "vfio-pci", 3);
  t.pci_device(kPort, "0000:01:00.1", 0x10de, 0x10f0, 0x040300, "snd_hda_intel", 3);
  t.file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 intel_iommu=on\n");
}

struct Diagnosed {
  doctor::Report report;
  doctor::Finding only() const {
    EXPECT_EQ(report.findings.size(), 1u);
    return report.findings.at(0);
  }
};

Diagnosed diagnose(TempTree& t, const std::string& text, const std::string& source = "/x.log") {
  auto fs = make_real_host_fs(t.root());
  return {doctor::diagnose_text(*fs, {text, source, false}, doctor::read_kernel_log(*fs))};
}

bool has_evidence(const doctor::Finding& f, const std::string& source, const std::string& detail) {
  for (const auto& e : f.evidence)
    if (e.source == source && e.detail == detail) return true;
  ADD_FAILURE() << "no evidence " << source << ": " << detail;
  return false;
}

TEST(Doctor, GroupNotViableNamesTheMemberOnAHostDriverInTheLastStart) {
  TempTree t;
  gpu_host(t);
  auto d = diagnose(t, fixture("group-not-viable-libvirt.log"), "/var/log/libvirt/qemu/win10.log");
  EXPECT_EQ(d.report.first_line, 13u);  // the second "starting up": the first start succeeded
  const auto& f = d.only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("group_not_viable"));
  EXPECT_TRUE(f.confirmed);
  EXPECT_EQ(f.where, "/var/log/libvirt/qemu/win10.log:22");
  EXPECT_EQ(f.device->str(), "0000:01:00.0");
  has_evidence(f, "/sys/kernel/iommu_groups/3/devices/0000:01:00.1",
               "driver snd_hda_intel: keeps the group from the VM");
  has_evidence(f, "/sys/kernel/iommu_groups/3/devices/0000:01:00.0", "driver vfio-pci");
  has_evidence(f, "/sys/kernel/iommu_groups/3/devices/0000:00:01.0", "driver pcieport");
  EXPECT_EQ(f.explanation,
            "IOMMU group 3 is not viable: 0000:01:00.1 still on a host driver; VFIO gives a VM a "
            "whole group or nothing");
  EXPECT_EQ(f.fix,
            "`pcipass bind --with-group 0000:01:00.0` (or `pcipass bind 0000:01:00.1`), after "
            "`pcipass plan` shows what the host loses");
}

// QEMU's own stderr, as QEMU 7.2 wrote it in the tests/vm guest (scenario doctor-vfio).
TEST(Doctor, GroupNotViableFromQemusStderr) {
  TempTree t;
  t.pci_device(kBus, "0000:00:04.0", 0x1b36, 0x000c, 0x060400, "pcieport", 5);
  const std::string port = kBus + "/0000:00:04.0";
  t.pci_device(port, "0000:02:00.0", 0x1234, 0x1111, 0x030000, "vfio-pci", 6);
  t.pci_device(port, "0000:02:00.1", 0x8086, 0x293e, 0x040300, "snd_hda_intel", 6);
  auto d = diagnose(t, fixture("group-not-viable-qemu.log"), "/tmp/qemu-doctor/err");
  EXPECT_EQ(d.report.first_line, 1u);
  const auto& f = d.only();
  EXPECT_EQ(f.where, "/tmp/qemu-doctor/err:1");
  EXPECT_EQ(f.explanation,
            "IOMMU group 6 is not viable: 0000:02:00.1 still on a host driver; VFIO gives a VM a "
            "whole group or nothing");
  EXPECT_EQ(f.evidence.size(), 2u);
}

TEST(Doctor, AGroupThisHostLacksIsSaidSo) {
  TempTree t;
  const auto& f = diagnose(t, fixture("group-not-viable-qemu.log")).only();
  EXPECT_FALSE(f.confirmed);
  has_evidence(f, "/sys/kernel/iommu_groups/6/devices",
               "missing: no such IOMMU group on this host now");
  EXPECT_EQ(f.explanation,
            "a member of IOMMU group 6 was still on a host driver when the VM started; this host "
            "does not show which");
}

TEST(Doctor, AViableGroupNowIsNotConfirmed) {
  TempTree t;
  gpu_host(t);
  t.remove(kPort + "/0000:01:00.1/driver");
  const auto& f = diagnose(t, fixture("group-not-viable-libvirt.log")).only();
  EXPECT_FALSE(f.confirmed);
  has_evidence(f, "/sys/kernel/iommu_groups/3/devices/0000:01:00.1", "no driver");
}

TEST(Doctor, IommuOffShowsTheEmptyGroupsTheCmdlineAndTheKernelLog) {
  TempTree t;
  t.dir("/sys/kernel/iommu_groups");
  t.file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 quiet\n");
  t.file("/var/log/kern.log",
         "Nov 22 18:00:00 ws kernel: [    0.000000] Linux version 6.1.0-13-amd64\n"
         "Nov 22 18:00:00 ws kernel: [    0.012000] ACPI: DMAR 0x000000007A3F5000 0000A8\n");
  auto d = diagnose(t, fixture("iommu-off-virsh.log"), "command line");
  const auto& f = d.only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("iommu_off"));
  EXPECT_TRUE(f.confirmed);
  EXPECT_EQ(f.where, "command line");
  EXPECT_EQ(d.report.kernel_log, "/var/log/kern.log");
  has_evidence(f, "/sys/kernel/iommu_groups", "empty: the kernel runs without an IOMMU");
  has_evidence(f, "/proc/cmdline", "no intel_iommu= or amd_iommu= parameter");
  has_evidence(f, "/var/log/kern.log",
               "Nov 22 18:00:00 ws kernel: [    0.012000] ACPI: DMAR 0x000000007A3F5000 0000A8");
  EXPECT_EQ(f.fix,
            "`pcipass setup --iommu` and reboot: the firmware describes an IOMMU (the DMAR or "
            "AMD-Vi lines) that the kernel did not turn on");
}

TEST(Doctor, IommuOffWithoutFirmwareLinesIsTheFirmwares) {
  TempTree t;
  t.dir("/sys/kernel/iommu_groups");
  t.file("/var/log/kern.log", "Nov 22 18:00:00 ws kernel: [    0.0] Linux version 6.1.0\n");
  const auto& f = diagnose(t, fixture("iommu-off-virsh.log")).only();
  EXPECT_TRUE(f.confirmed);
  has_evidence(f, "/var/log/kern.log",
               "no DMAR or AMD-Vi line: the firmware described no IOMMU to the kernel, or it is "
               "switched off");
  EXPECT_EQ(f.fix,
            "turn on VT-d (Intel) or AMD-Vi/IOMMU (AMD) in the firmware setup, then run "
            "`pcipass setup --iommu` and reboot; `pcipass check` shows what is still missing");
}

// QEMU's own stderr on a kernel booted with intel_iommu=off (scenario doctor-iommu-off).
TEST(Doctor, NoIommuGroupFromQemuWithTheIommuOffOnTheCommandLine) {
  TempTree t;
  t.dir("/sys/kernel/iommu_groups");
  t.file("/proc/cmdline", "console=ttyS0 panic=-1 intel_iommu=off\n");
  t.file("/var/log/kern.log", "Nov 22 21:40:00 guest kernel: DMAR: Host address width 39\n");
  const auto& f = diagnose(t, fixture("iommu-off-qemu.log")).only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("iommu_off"));
  EXPECT_EQ(f.device->str(), "0000:00:02.0");
  EXPECT_TRUE(f.confirmed);
  has_evidence(f, "/proc/cmdline", "has intel_iommu=off");
  EXPECT_EQ(f.explanation, "the kernel runs without an IOMMU: its command line turns it off");
  EXPECT_EQ(f.fix,
            "`pcipass setup --iommu` (it replaces the parameter that turns the IOMMU off) and "
            "reboot");
}

TEST(Doctor, IommuOnNowSaysTheMessageIsFromAnotherBoot) {
  TempTree t;
  gpu_host(t);
  const auto& f = diagnose(t, fixture("iommu-off-virsh.log")).only();
  EXPECT_FALSE(f.confirmed);
  has_evidence(f, "/sys/kernel/iommu_groups", "1 groups: the IOMMU is on");
  has_evidence(f, "/proc/cmdline", "has intel_iommu=on");
}

TEST(Doctor, VfioUnsupportedNamesTheMissingModules) {
  TempTree t;
  gpu_host(t);
  t.dir("/sys/module/vfio");
  const auto& f = diagnose(t, fixture("vfio-unsupported-virsh.log")).only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("vfio_unsupported"));
  EXPECT_TRUE(f.confirmed);
  has_evidence(f, "/sys/module/vfio", "loaded");
  has_evidence(f, "/sys/module/vfio_pci", "not loaded");
  has_evidence(f, "/dev/vfio/vfio", "missing");
  EXPECT_EQ(f.explanation, "the VFIO modules are not loaded (vfio_iommu_type1, vfio_pci)");
  EXPECT_EQ(f.fix,
            "`modprobe vfio-pci` now, and `pcipass setup --vfio` to load VFIO at every boot");
}

TEST(Doctor, ContainerRefusedWithoutInterruptRemapping) {
  TempTree t;
  t.file("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "N\n");
  t.file("/var/log/kern.log",
         "Nov 22 19:00:01 ws kernel: [ 88.1] vfio_iommu_type1_attach_group: No interrupt "
         "remapping support.  Use the module param \"allow_unsafe_interrupts\" to enable VFIO "
         "IOMMU support on this platform\n");
  const auto& f = diagnose(t, fixture("interrupt-remapping-qemu.log")).only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("interrupt_remapping"));
  EXPECT_TRUE(f.confirmed);
  EXPECT_EQ(f.device->str(), "0000:03:00.0");
  has_evidence(f, "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "N");
  EXPECT_NE(f.fix.find("allow_unsafe_interrupts=1"), std::string::npos);
  EXPECT_NE(f.fix.find("risk: a guest can then send the host forged interrupts"),
            std::string::npos);
}

TEST(Doctor, TheSameRefusalWithAnRmrrLineIsTheRmrr) {
  TempTree t;
  t.file("/var/log/kern.log", fixture("rmrr-kern.log"));
  const auto& f = diagnose(t, fixture("interrupt-remapping-qemu.log")).only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("rmrr"));
  EXPECT_TRUE(f.confirmed);
  EXPECT_EQ(f.evidence.at(0).source, "/var/log/kern.log");
}

TEST(Doctor, RmrrPastedFromTheKernelLog) {
  TempTree t;
  const auto& f = diagnose(t, fixture("rmrr-kern.log")).only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("rmrr"));
  EXPECT_FALSE(f.confirmed);  // this host's kernel log has no such line
  EXPECT_EQ(f.device->str(), "0000:03:00.0");
}

TEST(Doctor, MemlockOnceForBothLinesWithTheKernelsLimit) {
  TempTree t;
  t.file("/var/log/kern.log",
         "Nov 22 19:20:00 ws kernel: [ 9.1] vfio_pin_pages_remote: RLIMIT_MEMLOCK (65536) "
         "exceeded\n");
  const auto& f = diagnose(t, fixture("memlock-qemu.log")).only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("memlock"));
  has_evidence(f, "/var/log/kern.log",
               "Nov 22 19:20:00 ws kernel: [ 9.1] vfio_pin_pages_remote: RLIMIT_MEMLOCK (65536) "
               "exceeded");
  EXPECT_NE(f.fix.find("<memtune><hard_limit>"), std::string::npos);
  EXPECT_NE(f.fix.find("ulimit -l"), std::string::npos);
}

TEST(Doctor, BootFramebufferInsideTheGpusBar) {
  TempTree t;
  gpu_host(t);
  std::string zero = "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
  t.file(kPort + "/0000:01:00.0/resource",
         "0x00000000f6000000 0x00000000f6ffffff 0x0000000000040200\n"
         "0x00000000e0000000 0x00000000efffffff 0x000000000014220c\n" +
             zero + zero + zero + zero);
  t.file("/proc/iomem",
         "00000000-00000fff : Reserved\n"
         "e0000000-f1ffffff : PCI Bus 0000:01\n"
         "  e0000000-efffffff : 0000:01:00.0\n"
         "    e0000000-e07e8fff : BOOTFB\n"
         "  f6000000-f6ffffff : 0000:01:00.0\n");
  const auto& f = diagnose(t, fixture("bar-efifb-kern.log")).only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("boot_framebuffer"));
  EXPECT_TRUE(f.confirmed);
  has_evidence(f, kBus.substr(0, 0) + "/sys/bus/pci/devices/0000:01:00.0/resource",
               "BAR 1: 0xe0000000-0xefffffff");
  has_evidence(f, "/proc/iomem", "e0000000-e07e8fff : BOOTFB");
  EXPECT_NE(f.fix.find("pcipass setup --hide-boot-framebuffer"), std::string::npos);
}

TEST(Doctor, AFramebufferElsewhereIsNotTheCause) {
  TempTree t;
  gpu_host(t);
  t.file(kPort + "/0000:01:00.0/resource", "0x00000000e0000000 0x00000000efffffff 0x0\n");
  t.file("/proc/iomem", "c0000000-c07e8fff : efifb\n");
  const auto& f = diagnose(t, fixture("bar-efifb-kern.log")).only();
  EXPECT_FALSE(f.confirmed);
}

TEST(Doctor, D3coldShowsThePowerState) {
  TempTree t;
  gpu_host(t);
  t.file(kPort + "/0000:01:00.0/power_state", "D3cold\n");
  t.file(kPort + "/0000:01:00.0/d3cold_allowed", "1\n");
  const auto& f = diagnose(t, fixture("d3cold-kern.log")).only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("power_state"));
  EXPECT_TRUE(f.confirmed);
  has_evidence(f, "/sys/bus/pci/devices/0000:01:00.0/power_state", "D3cold");
  has_evidence(f, "/sys/bus/pci/devices/0000:01:00.0/d3cold_allowed", "1");
  EXPECT_NE(f.fix.find("echo 0 > /sys/bus/pci/devices/0000:01:00.0/d3cold_allowed"),
            std::string::npos);
}

TEST(Doctor, UnmanagedDeviceNamesItsDriver) {
  TempTree t;
  t.pci_device(kBus, "0000:02:00.0", 0x8086, 0x1533, 0x020000, "igb", 7);
  const auto& f = diagnose(t, fixture("unmanaged-virsh.log")).only();
  EXPECT_EQ(doctor::cause_id(f.cause), std::string("unmanaged_device"));
  EXPECT_TRUE(f.confirmed);
  has_evidence(f, "/sys/bus/pci/devices/0000:02:00.0/driver", "igb");
  EXPECT_EQ(f.fix,
            "`pcipass bind 0000:02:00.0` before starting (`pcipass bind --persist 0000:02:00.0` "
            "for every boot), or managed='yes' to let libvirt move it");
}

TEST(Doctor, MonitorResetPointsAtQemusOwnMessage) {
  TempTree t;
  auto d = diagnose(t, fixture("monitor-reset.log"));
  // The section is the last start; the virsh lines before it are not in it.
  ASSERT_EQ(d.report.findings.size(), 1u);
  const auto& rom = d.report.findings[0];
  EXPECT_EQ(doctor::cause_id(rom.cause), std::string("romfile"));
  has_evidence(rom, "/var/lib/libvirt/vbios/gtx1080.rom", "missing");
  EXPECT_TRUE(rom.confirmed);
}

TEST(Doctor, MonitorResetWithTheLogBesideItExplainsBoth) {
  TempTree t;
  std::string log = fixture("monitor-reset.log");
  auto start = log.find("2026-11-22 18:40:02.001");
  std::string text = log.substr(0, start) + log.substr(log.find("2026-11-22T18:40"));
  auto d = diagnose(t, text);
  ASSERT_EQ(d.report.findings.size(), 2u);
  EXPECT_EQ(doctor::cause_id(d.report.findings[0].cause), std::string("monitor_reset"));
  EXPECT_EQ(d.report.findings[0].explanation,
            "QEMU exited while libvirt was talking to it; this message is libvirt's, the reason "
            "is what QEMU wrote before it died; here QEMU's reason is romfile, explained below");
  EXPECT_EQ(doctor::cause_id(d.report.findings[1].cause), std::string("romfile"));
}

TEST(Doctor, RomfileByNameIsLookedUpInQemusDirectory) {
  TempTree t;
  t.file("/usr/share/qemu/gtx1080.rom", "rom");
  const auto& f =
      diagnose(t,
               "qemu-system-x86_64: -device vfio-pci,host=01:00.0,romfile=gtx1080.rom: failed "
               "to find romfile \"gtx1080.rom\"")
          .only();
  has_evidence(f, "/usr/share/qemu/gtx1080.rom", "exists");
  EXPECT_FALSE(f.confirmed);
  EXPECT_EQ(f.device->str(), "0000:01:00.0");
}

TEST(Doctor, NoKnownCauseShowsTheLinesLookedAt) {
  TempTree t;
  auto d = diagnose(t, fixture("unknown-qemu.log"));
  EXPECT_FALSE(d.report.explained());
  ASSERT_EQ(d.report.looked_at.size(), 1u);
  EXPECT_EQ(d.report.looked_at[0].substr(0, 31), "qemu-system-x86_64: -drive file");
}

TEST(Doctor, KernelLinesAboutTheLogsDeviceAreExplainedToo) {
  TempTree t;
  gpu_host(t);
  t.file(kPort + "/0000:01:00.0/power_state", "D3cold\n");
  t.file("/var/log/kern.log", fixture("d3cold-kern.log"));
  auto d = diagnose(t, fixture("group-not-viable-libvirt.log"));
  ASSERT_EQ(d.report.findings.size(), 2u);
  EXPECT_EQ(doctor::cause_id(d.report.findings[1].cause), std::string("power_state"));
  EXPECT_EQ(d.report.findings[1].where, "/var/log/kern.log");
}

TEST(Doctor, AddressesStandAlone) {
  EXPECT_EQ(doctor::address_in("vfio 0000:01:00.0: group")->str(), "0000:01:00.0");
  EXPECT_EQ(doctor::address_in("host=03:00.1,id=x")->str(), "0000:03:00.1");
  EXPECT_FALSE(doctor::address_in("2026-11-22 18:03:12.125+0000: shutting down"));
  EXPECT_FALSE(doctor::address_in("2026-11-22T18:03:12.018844Z"));
  EXPECT_FALSE(doctor::address_in("10000:01:00.0"));
}

TEST(Doctor, KmsgRecordsBecomeLines) {
  EXPECT_EQ(doctor::kmsg_lines("6,1024,5301,-;vfio-pci 0000:01:00.0: enabling device\n"
                               " SUBSYSTEM=pci\n"
                               " DEVICE=+pci:0000:01:00.0\n"
                               "4,1025,5302,-;DMAR: no RMRR\n"),
            (std::vector<std::string>{"vfio-pci 0000:01:00.0: enabling device", "DMAR: no RMRR"}));
}

// A captured tree's /dev/kmsg is never read as the kernel's: only character device 1:11 is.
TEST(Doctor, AKmsgFileInATreeIsNotTheKernelLog) {
  TempTree t;
  t.file("/dev/kmsg", "6,1,1,-;DMAR: from the tree\n");
  t.file("/var/log/kern.log", "Nov 22 18:00:00 ws kernel: DMAR: from kern.log\n");
  auto fs = make_real_host_fs(t.root());
  auto kmsg = fs->read_kmsg(4096);
  ASSERT_FALSE(kmsg.ok());
  EXPECT_EQ(kmsg.error().err, ENOTSUP);
  auto k = doctor::read_kernel_log(*fs);
  EXPECT_EQ(k.source, "/var/log/kern.log");
  EXPECT_EQ(k.lines, std::vector<std::string>{"Nov 22 18:00:00 ws kernel: DMAR: from kern.log"});
}

TEST(Doctor, HostileLogsNeitherCrashNorStall) {
  TempTree t;
  gpu_host(t);
  std::string text(3 << 20, 'a');  // one 3 MiB line, then the message past its first 64 KiB
  text += " group 3 is not viable\n";
  text += std::string("\0\xff\xfe group 3 is not viable\n", 26);
  text += "vfio 0000:01:00.0: group 99999999999999999999 is not viable\n";
  text += std::string(1 << 20, 'b') + "\n";
  auto d = diagnose(t, text);
  ASSERT_EQ(d.report.findings.size(), 2u);
  EXPECT_EQ(d.report.findings[0].line, std::string("\0\xff\xfe group 3 is not viable", 25));
  EXPECT_EQ(d.report.findings[0].where, "/x.log:2");
  // The group number out of range: the device's own group link instead.
  EXPECT_EQ(d.report.findings[1].explanation.substr(0, 28), "IOMMU group 3 is not viable:");
}

TEST(Doctor, OnlyALogsTailIsRead) {
  TempTree t;
  gpu_host(t);
  std::string head = "2026-11-20 10:00:00.000+0000: starting up libvirt\n";
  std::string old = "vfio 0000:01:00.0: group 3 is not viable\n";
  std::string filler;
  while (filler.size() < (2u << 20)) filler += "char device redirected to /dev/pts/1\n";
  t.file("/var/log/libvirt/qemu/big.log", head + old + filler + fixture("unknown-qemu.log"));
  auto fs = make_real_host_fs(t.root());
  auto r = doctor::diagnose(*fs, {doctor::Mode::kDomain, {}, {}, "big"});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_TRUE(r->truncated);
  EXPECT_FALSE(r->explained());  // the old start fell outside the tail
}

TEST(Doctor, TheNewestLogIsTheLastStart) {
  TempTree t;
  gpu_host(t);
  t.file("/var/log/libvirt/qemu/old.log",
         "2026-11-01 10:00:00.000+0000: starting up libvirt\nerror: Unmanaged PCI device "
         "0000:01:00.0 must be manually detached from the host\n");
  t.file("/var/log/libvirt/qemu/win10.log", fixture("group-not-viable-libvirt.log"));
  auto fs = make_real_host_fs(t.root());
  auto r = doctor::diagnose(*fs, {});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->source, "/var/log/libvirt/qemu/win10.log");
}

// The command line: one mode at a time, exit statuses, and byte-for-byte errors.
TEST(DoctorCli, ExplainedIsZeroUnknownIsThree) {
  TempTree t;
  gpu_host(t);
  auto ok = run_cli({"--root", t.root(), "doctor", "group 3 is not viable"});
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_NE(ok.out.find("group_not_viable: IOMMU group 3 is not viable"), std::string::npos)
      << ok.out;
  auto unknown = run_cli({"--root", t.root(), "doctor", "--json", "something else"});
  EXPECT_EQ(unknown.status, 3);
  EXPECT_NE(unknown.out.find("\"explained\": false"), std::string::npos) << unknown.out;
  EXPECT_NE(unknown.out.find("\"looked_at\": [\n    \"something else\"\n  ]"), std::string::npos)
      << unknown.out;
}

TEST(DoctorCli, BadInputIsAClearUsageError) {
  TempTree t;
  auto both = run_cli({"--root", t.root(), "doctor", "--domain", "x", "msg"});
  EXPECT_EQ(both.status, 2);
  EXPECT_EQ(both.err,
            "error: doctor takes one of MESSAGE, --domain DOMAIN and --log FILE\n"
            "  fix: give the message, or the domain, or the log\n");
  auto bad = run_cli({"--root", t.root(), "doctor", "--domain", "../../etc/shadow"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_EQ(bad.err,
            "error: '../../etc/shadow' is not a libvirt domain name\n"
            "  fix: give the name `virsh list --all` shows, e.g. --domain win10\n");
  auto empty = run_cli({"--root", t.root(), "doctor", " "});
  EXPECT_EQ(empty.status, 2);
  EXPECT_EQ(empty.err,
            "error: the message to explain is empty\n"
            "  fix: give the error as the VM manager printed it, in quotes, or use --domain "
            "DOMAIN or --log FILE\n");
  auto missing = run_cli({"--root", t.root(), "doctor", "--log", "/qemu.log"});
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(missing.err,
            "error: open /qemu.log: No such file or directory\n"
            "  fix: name a readable QEMU or libvirt log (libvirt's are in /var/log/libvirt/qemu, "
            "root's to read)\n");
  auto none = run_cli({"--root", t.root(), "doctor"});
  EXPECT_EQ(none.status, 1);
  EXPECT_NE(none.err.find("/var/log/libvirt/qemu"), std::string::npos) << none.err;
}

// The tests/vm guest's real failed starts (tests/fixtures/doctor/vm/README.md): libvirt refused
// these before it ran QEMU, so the domain's log holds one line and the reason is only in
// libvirt's error. Found on the real kernel: `doctor --domain` said nothing useful.
TEST(Doctor, ALogOfAStartLibvirtStoppedBeforeQemuSaysWhereTheReasonIs) {
  TempTree t;
  gpu_host(t);
  for (const char* name : {"vm/unmanaged-bound.qemu.log", "vm/iommu-off.qemu.log"}) {
    auto d = diagnose(t, fixture(name), "/var/log/libvirt/qemu/pt.log");
    EXPECT_FALSE(d.report.explained()) << name;
    EXPECT_EQ(d.report.fix, doctor::kBeforeQemuFix) << name;
  }
  auto d = diagnose(t, "some line QEMU printed\n", "/var/log/libvirt/qemu/pt.log");
  EXPECT_EQ(d.report.fix, doctor::kUnknownFix);
}

TEST(Doctor, LibvirtsRealErrorsFromTheGuestAreExplained) {
  TempTree t;
  gpu_host(t);
  EXPECT_EQ(diagnose(t, fixture("vm/unmanaged-bound.error")).only().cause,
            doctor::Cause::kUnmanagedDevice);
  EXPECT_EQ(diagnose(t, fixture("vm/iommu-off.error")).only().cause, doctor::Cause::kIommuOff);
  EXPECT_EQ(diagnose(t, fixture("vm/group-not-viable.qemu.log")).only().cause,
            doctor::Cause::kGroupNotViable);
}

}  // namespace
}  // namespace pcipass::test
