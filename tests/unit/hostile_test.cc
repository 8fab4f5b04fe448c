// Hostile and broken input (issue 8): what other users and other software control (process,
// driver and pci.ids names, sysfs and procfs values, a captured tree) never crashes pcipass,
// never hangs it, and never turns into a wrong answer. docs/hostile-input.md is the table.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include "assign/journal.h"
#include "boot/common.h"
#include "check/check.h"
#include "cli_harness.h"
#include "deny_fs.h"
#include "host/cmdline.h"
#include "host/modules.h"
#include "pci/config_space.h"
#include "setup/vfio.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

using nlohmann::json;
const std::string kBus = "/sys/devices/pci0000:00";
const std::string kFffd = "\xef\xbf\xbd";  // U+FFFD, what JSON carries for a byte not UTF-8

// The line of `check --json` with that id (null, and a failure, when there is none).
json check_line(const std::string& out, const std::string& id) {
  json doc = json::parse(out);
  for (const auto& c : doc["checks"])
    if (c["id"] == id) return c;
  ADD_FAILURE() << "no check " << id << " in " << out;
  return nullptr;
}

class Hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    t.pci_device(kBus, "0000:00:00.0", 0x8086, 0x29c0, 0x060000, "", 0);
    t.pci_device(kBus, "0000:00:01.0", 0x8086, 0x10d3, 0x020000, "e1000e", 1);
    t.pci_device(kBus, "0000:00:02.0", 0x8086, 0x10d3, 0x020000, "vfio-pci", 2);
    t.pci_device(kBus, "0000:00:1c.0", 0x8086, 0x2448, 0x060400, "pcieport", 3);
    t.pci_device(kBus + "/0000:00:1c.0", "0000:01:00.0", 0x10de, 0x1b80, 0x030000, "nouveau", 3);
    t.file("/proc/cmdline", "root=/dev/sda1 intel_iommu=on\n");
  }
  CliRun run(std::vector<std::string> args, const cli::Injected* injected = nullptr) {
    args.insert(args.begin(), {"--root", t.root()});
    return run_cli(args, injected);
  }
  // A process holding `target` open, as procfs shows it: an absolute link in /proc/PID/fd.
  void process(const std::string& pid, const std::string& comm, const std::string& target) {
    t.file("/proc/" + pid + "/comm", comm + "\n");
    t.dir("/proc/" + pid + "/fd");
    std::filesystem::create_symlink(target, t.real("/proc/" + pid + "/fd/3"));
  }
  // Moves a device to a driver of that name (any bytes).
  void driver(const std::string& dev_dir, const std::string& name) {
    t.remove(dev_dir + "/driver");
    t.dir("/sys/bus/pci/drivers/" + name);
    t.link(dev_dir + "/driver", "/sys/bus/pci/drivers/" + name);
  }
  TempTree t;
};

// --- Crashes: bytes that are not UTF-8 reaching --json --------------------------------------

TEST_F(Hostile, ProcessNameNotUtf8InShowAndPlanJson) {
  process("4242", "\xff", "/dev/vfio/2");
  for (auto args : {std::vector<std::string>{"--json", "show", "00:02.0"},
                    std::vector<std::string>{"--json", "plan", "00:02.0"}}) {
    auto r = run(args);
    SCOPED_TRACE(args[1]);
    ASSERT_NE(r.status, 134);
    auto j = json::parse(r.out);  // the whole document, not cut off
    EXPECT_NE(r.out.find("in use by " + kFffd + " (pid 4242) through /dev/vfio/2"),
              std::string::npos)
        << r.out;
  }
}

TEST_F(Hostile, DriverNameNotUtf8InListShowTreeGroupsJson) {
  driver(kBus + "/0000:00:01.0", "e1000e\xfe");
  for (const char* cmd : {"list", "tree", "groups"}) {
    auto r = run({"--json", cmd});
    ASSERT_EQ(r.status, 0) << cmd << r.err;
    EXPECT_NE(json::parse(r.out).dump().find("e1000e" + kFffd), std::string::npos) << r.out;
  }
  auto r = run({"--json", "show", "00:01.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["devices"][0]["driver"], "e1000e" + kFffd);
}

TEST_F(Hostile, DeviceArgumentNotUtf8IsAJsonError) {
  auto r = run({"--json", "show", "\xff"});
  EXPECT_EQ(r.status, 2);
  auto j = json::parse(r.out);
  EXPECT_EQ(j["error"]["kind"], "invalid-argument");
  EXPECT_NE(j["error"]["message"].get<std::string>().find(kFffd), std::string::npos) << r.out;
}

// --- Crashes: numbers out of range ------------------------------------------------------------

TEST_F(Hostile, IommuGroupBeyondIntIsAProblemOfThatLink) {
  t.remove(kBus + "/0000:00:01.0/iommu_group");
  t.link(kBus + "/0000:00:01.0/iommu_group", "/sys/kernel/iommu_groups/99999999999");
  auto r = run({"list"});
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.err,
            "warning: /sys/devices/pci0000:00/0000:00:01.0/iommu_group: '99999999999' is not an "
            "IOMMU group number up to 2147483647\n");
}

TEST_F(Hostile, BootVgaNotZeroOrOneIsAProblemNotFalse) {
  t.file(kBus + "/0000:00:1c.0/0000:01:00.0/boot_vga", "7\n");
  auto r = run({"list"});
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.err,
            "warning: /sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0/boot_vga: '7' is not a "
            "number from 0 to 1\n");
}

TEST_F(Hostile, MemlockBeyond64BitsIsReportedNotThrown) {
  t.file("/proc/self/limits",
         "Limit                     Soft Limit           Hard Limit           Units     \n"
         "Max locked memory         99999999999999999999999 unlimited         bytes     \n");
  auto r = run({"--json", "check"});
  ASSERT_NE(r.status, 70) << r.err;
  EXPECT_EQ(check_line(r.out, "memlock")["detail"],
            "Max locked memory in /proc/self/limits is '99999999999999999999999', not "
            "unlimited or a byte count up to 2^64-1");
}

TEST_F(Hostile, AttributesOutOfRangeOrFloatsAreProblemsNamingTheFile) {
  t.file(kBus + "/0000:00:01.0/irq", "99999999999\n");
  t.file(kBus + "/0000:00:01.0/numa_node", "1.5\n");
  t.file(kBus + "/0000:00:01.0/sriov_totalvfs", "70000\n");
  const std::string dev = "/sys/bus/pci/devices/0000:00:01.0";  // as show reads them
  auto r = run({"--json", "show", "00:01.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "warning: " + dev +
                       "/numa_node: '1.5' is not a number from -1 to 1023\n"
                       "warning: " +
                       dev +
                       "/irq: '99999999999' is not a number from 0 to 2147483647\n"
                       "warning: " +
                       dev + "/sriov_totalvfs: '70000' is not a number from 0 to 65535\n");
  auto d = json::parse(r.out)["devices"][0];
  EXPECT_TRUE(d["irq"].is_null());  // not 1215752191, the low 32 bits
  EXPECT_TRUE(d["numa_node"].is_null());
  EXPECT_TRUE(d["sriov"].is_null());
}

TEST_F(Hostile, KernelReleaseBeyondIntIsNoVersion) {
  t.file("/proc/sys/kernel/osrelease", "99999999999.1.0\n");
  auto fs = make_real_host_fs(t.root());
  auto r = setup::vfio_modules(*fs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "cannot tell the running kernel's version from /proc/sys/kernel/osrelease");
  DenyFs denied(t, {"/proc/sys/kernel/osrelease"});
  auto d = setup::vfio_modules(denied);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().describe(), "open /proc/sys/kernel/osrelease: Permission denied");
}

// grubenv's kernelopts is expanded once where a BLS entry says $kernelopts (older Fedora). One
// that names $kernelopts itself made check and setup --iommu loop forever (found by the
// state_files fuzz target's first look at the reader; regressions/state_files/kernelopts-self).
TEST_F(Hostile, KerneloptsNamingItselfIsExpandedOnce) {
  t.file("/boot/grub2/grubenv", "kernelopts=root=/dev/x $kernelopts ro\n");
  t.file("/boot/loader/entries/a.conf", "version 6.5\noptions $kernelopts quiet $kernelopts\n");
  auto fs = make_real_host_fs(t.root());
  auto done = std::async(std::launch::async, [&] {
    return boot::bls_entries(*fs, "/boot/loader/entries", {}, "/boot/grub2/grubenv");
  });
  if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    ADD_FAILURE() << "bls_entries still expanding $kernelopts after 5 s";
    std::abort();  // the loop cannot be stopped from here; end the suite, failed
  }
  auto g = done.get();
  ASSERT_TRUE(g.ok()) << g.error().describe();
  ASSERT_EQ(g->entries.size(), 1u);
  EXPECT_EQ(g->entries[0].cmdline.str().value(),
            "root=/dev/x $kernelopts ro quiet root=/dev/x $kernelopts ro");
}

TEST_F(Hostile, EcapBeyond64BitsIsUnknownNotSupported) {
  t.file("/sys/firmware/acpi/tables/DMAR", std::string(64, '\0'));
  t.file("/sys/class/iommu/dmar0/intel-iommu/ecap", "fffffffffffffffffff\n");
  auto r = run({"--json", "check"});
  EXPECT_EQ(check_line(r.out, "interrupt-remapping")["detail"],
            "unknown: /sys/class/iommu/dmar0/intel-iommu/ecap holds 'fffffffffffffffffff', "
            "not a 64-bit register in hex");
}

TEST_F(Hostile, ProcessDirectoryBeyondPidMaxIsNoProcess) {
  process("99999999999", "qemu", "/dev/vfio/2");
  auto r = run({"--json", "show", "00:02.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["devices"][0]["host_uses"], json::array()) << r.out;
}

// --- Crashes: a malformed pci.ids ------------------------------------------------------------

TEST_F(Hostile, MalformedPciIdsIsAWarningAndNoNames) {
  t.file("/ids/pci.ids", "8086  Intel Corporation\n\t10d3  82574L\nthis is no pci.ids line\n");
  auto r = run({"--pci-ids", t.real("/ids/pci.ids"), "list"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err, "warning: names from " + t.real("/ids/pci.ids") +
                       " are left out: libpci says \"Parse error at " + t.real("/ids/pci.ids") +
                       ", line 3\" (pass a good pci.ids with --pci-ids FILE)\n");
  EXPECT_NE(r.out.find("Vendor 8086 Device 10d3 [8086:10d3]"), std::string::npos) << r.out;
}

// --- Crashes: a parent cycle in the device tree ----------------------------------------------

TEST_F(Hostile, AliasBelowItsOwnDeviceNeitherLoopsNorDuplicates) {
  // A second entry for the bridge, named another way, whose directory lies below the bridge's own.
  t.dir(kBus + "/0000:00:1c.0/0000:00:1c.0");
  t.file(kBus + "/0000:00:1c.0/0000:00:1c.0/config", t.read(kBus + "/0000:00:1c.0/config"));
  t.link("/sys/bus/pci/devices/00:1c.0", kBus + "/0000:00:1c.0/0000:00:1c.0");
  auto r = run({"tree"});
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.err,
            "warning: skipped /sys/bus/pci/devices/00:1c.0: it is not named as the kernel names "
            "devices (0000:00:1c.0)\n");
  EXPECT_NE(r.out.find("5 devices under 1 root bus"), std::string::npos) << r.out;
  auto j = run({"--json", "tree"});
  ASSERT_EQ(j.status, 0);
  EXPECT_EQ(json::parse(j.out)["root_buses"][0]["children"].size(), 4u);
}

// --- Crashes: the last line ------------------------------------------------------------------

TEST(HostileMain, AnythingThatEscapesIsAnInternalErrorWithStatus70) {
  cli::Injected throwing;
  throwing.process = [](bool) -> ProcessContext { throw std::runtime_error("boom"); };
  auto r = run_cli({"--root", "/", "list"}, &throwing);
  EXPECT_EQ(r.status, 70);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: internal error: boom\n"
            "  fix: this is a bug in pcipass: please report it with the command line and, if you "
            "can, a snapshot (`pcipass snapshot -o host.tar.gz`)\n");
  auto j = run_cli({"--json", "list"}, &throwing);
  EXPECT_EQ(j.status, 70);
  EXPECT_EQ(json::parse(j.out)["error"]["kind"], "internal");
}

// --- Wrong answers: a permission error is never "absent" -------------------------------------

TEST_F(Hostile, StatusThatCannotReadRunPcipassSaysSo) {
  t.file("/run/pcipass/state.json", R"({"schema": "pcipass.state/1", "bindings": []})");
  DenyFs deny(t, {"/run/pcipass"});
  cli::Injected inj;
  inj.fs = &deny;
  auto r = run({"status"}, &inj);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: open /run/pcipass/journal.json: Permission denied\n"
            "  fix: /run/pcipass is root's: run pcipass as root (sudo pcipass ...)\n");
  auto j = run({"--json", "status"}, &inj);
  EXPECT_EQ(json::parse(j.out)["error"]["errno"], EACCES);
}

TEST_F(Hostile, UnreadableModuleDirectoryIsNotMissingModules) {
  t.file("/proc/sys/kernel/osrelease", "6.1.0-13-amd64\n");
  t.file("/lib/modules/6.1.0-13-amd64/modules.dep.bin", "x");
  DenyFs deny(t, {"/lib/modules/6.1.0-13-amd64"});
  cli::Injected inj;
  inj.fs = &deny;
  auto r = run({"--json", "check"}, &inj);
  auto c = check_line(r.out, "vfio-pci-module");
  EXPECT_EQ(c["status"], "WARN");
  EXPECT_EQ(c["detail"],
            "not loaded; cannot tell whether it is available: open "
            "/lib/modules/6.1.0-13-amd64/modules.dep.bin: Permission denied");
  EXPECT_EQ(c["fix"], "run `pcipass check` as root, or make /lib/modules/6.1.0-13-amd64 readable");
}

// The release and the list of built-in modules, unreadable, made vfio-pci "not loaded; no
// /lib/modules/RELEASE" (FAIL: install the kernel's modules) on a kernel that has it built in.
TEST_F(Hostile, UnreadableReleaseOrBuiltinListIsNotMissingModules) {
  t.file("/proc/sys/kernel/osrelease", "6.1.0-13-amd64\n");
  t.file("/lib/modules/6.1.0-13-amd64/modules.builtin", "kernel/drivers/vfio/pci/vfio-pci.ko\n");
  cli::Injected inj;
  EXPECT_EQ(check_line(run({"--json", "check"}, &inj).out, "vfio-pci-module")["detail"],
            "built into the kernel");
  for (std::string denied :
       {"/proc/sys/kernel/osrelease", "/lib/modules/6.1.0-13-amd64/modules.builtin"}) {
    SCOPED_TRACE(denied);
    DenyFs deny(t, {denied});
    inj.fs = &deny;
    auto c = check_line(run({"--json", "check"}, &inj).out, "vfio-pci-module");
    EXPECT_EQ(c["status"], "WARN");
    EXPECT_EQ(c["detail"], "not loaded; cannot tell whether it is available: open " + denied +
                               ": Permission denied");
    EXPECT_EQ(c["fix"], "run `pcipass check` as root, or make " +
                            denied.substr(0, denied.rfind('/')) + " readable");
  }
}

// An unreadable modalias said "modules: none match its modalias": a guess presented as a fact.
TEST_F(Hostile, UnreadableModaliasIsAProblemNotNoModule) {
  const std::string alias = "/sys/bus/pci/devices/0000:00:01.0/modalias";
  t.file(alias, "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00\n");
  DenyFs deny(t, {alias});
  cli::Injected inj;
  inj.fs = &deny;
  auto r = run({"show", "00:01.0"}, &inj);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.err.find("warning: open " + alias + ": Permission denied\n"), std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("unknown (no modalias)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("none match"), std::string::npos) << r.out;
}

TEST_F(Hostile, ProcessesThatCannotBeInspectedAreCountedNotIgnored) {
  process("4242", "qemu", "/dev/vfio/2");
  DenyFs deny(t, {"/proc/4242"});
  cli::Injected inj;
  inj.fs = &deny;
  // Every command whose verdicts rest on what processes hold, once each.
  for (auto args : {std::vector<std::string>{"show", "00:02.0"},
                    {"plan", "00:02.0"},
                    {"list"},
                    {"tree", "--format", "dot"},
                    {"groups"},
                    {"--json", "facts"}}) {
    auto r = run(args, &inj);
    EXPECT_EQ(r.err,
              "warning: cannot see the open files of 1 process of other users: devices they hold "
              "are not listed (run as root to see them)\n")
        << args[0];
  }
}

// What the host would lose, unreadable: "uses nothing" would be a guess, and the guess may be the
// root disk. Only a file that is not there (no md driver, no IPv6) means none.
TEST_F(Hostile, UnreadableImpactSourcesAreWarnedAndRefusedUnlessForced) {
  // Two mapped mounts: /sys/class/block is listed for each, its problem said once.
  t.file("/proc/self/mountinfo",
         "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
         "23 22 253:0 / /a rw - ext4 /dev/mapper/a rw\n"
         "24 22 253:1 / /b rw - ext4 /dev/mapper/b rw\n");
  t.dir("/sys/class/net");
  t.dir("/sys/class/block");
  DenyFs deny(t, {"/sys/class/net", "/sys/class/block"});
  cli::Injected inj;
  inj.fs = &deny;
  auto r = run({"--json", "plan", "00:01.0"}, &inj);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(r.err,
            "warning: cannot tell what the host uses devices for: opendir /sys/class/net: "
            "Permission denied\n"
            "warning: cannot tell what the host uses devices for: opendir /sys/class/block: "
            "Permission denied\n");
  auto j = json::parse(r.out);
  EXPECT_EQ(j["verdict"], "refused");
  ASSERT_EQ(j["refusals"].size(), 1u) << j;
  EXPECT_EQ(j["refusals"][0]["id"], "impact-unknown");
  EXPECT_EQ(j["refusals"][0]["address"], "0000:00:01.0");
  EXPECT_EQ(j["refusals"][0]["message"],
            "cannot tell what the host would lose: opendir /sys/class/net: Permission denied; "
            "opendir /sys/class/block: Permission denied");
  EXPECT_EQ(j["refusals"][0]["fix"],
            "make those readable (run pcipass as root), or add --force to go ahead without "
            "knowing");
  auto bind = run({"bind", "00:01.0", "--dry-run"}, &inj);
  EXPECT_NE(bind.status, 0);
  EXPECT_NE(bind.err.find("refusing to bind: cannot tell what the host would lose"),
            std::string::npos)
      << bind.err;
  auto forced = run({"--json", "plan", "00:01.0", "--force"}, &inj);
  EXPECT_EQ(json::parse(forced.out)["verdict"], "ready") << forced.out;
  // Absent, not unreadable: no refusal, no warning.
  t.remove("/sys/class/block");
  auto absent = run({"--json", "plan", "00:01.0"});
  EXPECT_EQ(absent.err, "");
  EXPECT_EQ(json::parse(absent.out)["verdict"], "ready") << absent.out;
}

// --- Wrong answers: entries of /sys/bus/pci/devices that are no device ------------------------

TEST_F(Hostile, DanglingLinkPlainFileAndAliasAreSkippedWithAWarning) {
  t.link("/sys/bus/pci/devices/0000:00:05.0", kBus + "/0000:00:05.0");  // dangling
  t.file("/sys/bus/pci/devices/0000:00:06.0", "");                      // a plain file
  t.link("/sys/bus/pci/devices/0000:00:07.0", kBus + "/0000:00:01.0");  // another's directory
  auto r = run({"--json", "list"});
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.err,
            "warning: skipped /sys/bus/pci/devices/0000:00:05.0: it is a dangling link\n"
            "warning: skipped /sys/bus/pci/devices/0000:00:06.0: it is not a directory\n"
            "warning: skipped /sys/bus/pci/devices/0000:00:07.0: it leads to "
            "/sys/devices/pci0000:00/0000:00:01.0, another device's directory\n");
  auto j = json::parse(r.out);
  EXPECT_EQ(j["summary"]["devices"], 5);
  for (const auto& d : j["devices"]) EXPECT_NE(d["vendor_id"], "0000") << d;
}

TEST_F(Hostile, UnreadableDeviceDirectoryIsSkippedWithAWarning) {
  t.pci_device(kBus, "0000:00:08.0", 0x8086, 0x1234, 0x020000);
  DenyFs deny(t, {kBus + "/0000:00:08.0"});
  cli::Injected inj;
  inj.fs = &deny;
  auto r = run({"list"}, &inj);
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.err,
            "warning: skipped /sys/bus/pci/devices/0000:00:08.0: cannot read it: opendir "
            "/sys/devices/pci0000:00/0000:00:08.0: Permission denied\n");
  EXPECT_EQ(r.out.find("00:08.0"), std::string::npos) << r.out;
}

// --- Wrong answers: filters that were dropped -------------------------------------------------

TEST_F(Hostile, NegativeGroupFilterIsRejected) {
  for (const char* cmd : {"list", "groups"}) {
    auto r = run({cmd, "--group", "-7"});
    EXPECT_EQ(r.status, 2) << cmd;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err,
              "error: invalid IOMMU group '-7' for --group\n"
              "  fix: IOMMU groups are numbered from 0 (see `pcipass groups`)\n");
  }
  EXPECT_EQ(run({"list", "--group", "3x"}).status, 2);
  EXPECT_EQ(run({"list", "--group", ""}).status, 2);
  EXPECT_EQ(run({"list", "--group", "0"}).status, 0);
}

// --- Wrong answers: control characters and escape sequences reach no terminal -----------------

TEST_F(Hostile, ControlCharactersFromTheHostAreEscapedInHumanOutput) {
  driver(kBus + "/0000:00:01.0", "e1000e\x1b]0;owned\x07");
  process("4242", "qemu\x1b[2J\n", "/dev/vfio/2");
  t.file("/ids/pci.ids",
         "8086  Intel\x1b[8m hidden\n\t10d3  NIC\xe2\x80\xae"
         "cba\n");
  for (auto args : {std::vector<std::string>{"list"},
                    {"tree", "--format", "dot"},
                    {"groups"},
                    {"show", "00:01.0", "00:02.0"},
                    {"plan", "00:02.0"}}) {
    args.insert(args.begin(), {"--pci-ids", t.real("/ids/pci.ids")});
    auto r = run(args);
    SCOPED_TRACE(args[2]);
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find('\x07'), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("\xe2\x80\xae"), std::string::npos) << r.out;
  }
  auto r = run({"--pci-ids", t.real("/ids/pci.ids"), "show", "00:01.0", "00:02.0"});
  EXPECT_NE(r.out.find("e1000e\\x1b]0;owned\\x07"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Intel\\x1b[8m hidden NIC\\u202ecba [8086:10d3]"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("in use by qemu\\x1b[2J (pid 4242)"), std::string::npos) << r.out;
}

TEST_F(Hostile, ErrorsEscapeTheArgumentTheyQuote) {
  auto r = run({"show", "\x1b[2J"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
}

// --- Messages that mislead --------------------------------------------------------------------

TEST_F(Hostile, SysThatIsNotADirectoryIsNotTheFirmware) {
  t.remove("/sys").file("/sys", "");
  auto r = run({"--json", "check"});
  for (const char* id : {"iommu-firmware", "iommu-kernel"}) {
    auto c = check_line(r.out, id);
    EXPECT_EQ(c["status"], "FAIL") << id;
    EXPECT_EQ(c["detail"], "cannot tell: /sys is not a directory") << id;
    EXPECT_EQ(c["fix"],
              "pcipass reads the IOMMU's state from sysfs: mount it on /sys (mount -t sysfs "
              "sysfs /sys), or pass --root DIR of a captured host tree");
  }
}

TEST_F(Hostile, UnknownCommandIsNamed) {
  auto r = run({"frobnicate"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: unknown command 'frobnicate'\n"
            "  fix: use one of: check, list, groups, show, tree, snapshot, plan, bind, release, "
            "status, recover, setup, undo, apply, facts, xml, qemu-args, hotplug, unplug, attach, "
            "detach, doctor, vf, "
            "mdev (`pcipass --help` says what each does)\n");
}

TEST_F(Hostile, CommandLineErrorsUnderJsonAreJson) {
  auto r = run({"--json", "frobnicate"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(json::parse(r.out)["error"]["message"], "unknown command 'frobnicate'");
  r = run({"list", "--json", "--bogus"});
  EXPECT_EQ(r.status, 2);
  auto j = json::parse(r.out);
  EXPECT_EQ(j["error"]["kind"], "invalid-argument");
  EXPECT_EQ(j["error"]["message"], "The following argument was not expected: --bogus");
  r = run({"--json", "show"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(json::parse(r.out)["error"]["message"], "DEVICE is required");
}

// A user or driver name that is not UTF-8 (a user in /etc/passwd given as --owner, a driver on a
// hostile host) in the journal or the state file: nlohmann's dump() threw, "internal error" (exit
// 70). Now an error naming the file, which is not written; replacing the bytes would record a
// name that is not the host's.
TEST_F(Hostile, AJournalOrStateWithANameNotUtf8IsAnErrorNotACrash) {
  auto fs = make_real_host_fs(t.root());
  auto refused = [&](const Status& s, const std::string& path) {
    ASSERT_FALSE(s.ok()) << path;
    EXPECT_EQ(s.error().message, path +
                                     " cannot be written: a name in it is not UTF-8, which JSON "
                                     "cannot carry faithfully");
    EXPECT_FALSE(std::filesystem::exists(t.real(path)));
  };
  assign::Journal j;
  j.operation = "bind", j.driver = "vfio-pci", j.owner = "q\xff";
  refused(assign::save_journal(*fs, j), "/run/pcipass/journal.json");
  assign::StateFile state;
  assign::Binding b;
  b.address = *parse_address("0000:00:01.0");
  b.driver = "vfio-pci";
  b.original.driver = "e1000\xfe";
  state.put(b);
  refused(assign::save_state(*fs, state), "/run/pcipass/state.json");
}

// `--json --json=0` printed text (CLI11 let the second turn the flag off) while a usage error on
// the same line came out as JSON: --json takes no value, so the form never depends on which came
// last (found by the command_line fuzz target).
TEST_F(Hostile, JsonTakesNoValue) {
  for (const char* off : {"--json=0", "--json=false", "--json=no"}) {
    SCOPED_TRACE(off);
    auto r = run({"--json", "list", off});
    EXPECT_EQ(r.status, 2);
    ASSERT_TRUE(json::accept(r.out)) << r.out;
    EXPECT_EQ(json::parse(r.out)["error"]["kind"], "invalid-argument");
    EXPECT_EQ(json::parse(r.out)["error"]["message"],
              std::string("--json takes no value, got '") + off + "'");
    r = run({off, "list"});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, std::string("error: --json takes no value, got '") + off +
                         "'\n  fix: write --json alone for JSON, or leave it out for text\n");
  }
  EXPECT_TRUE(json::accept(run({"list", "--json"}).out));
}

// CLI11, like getopt, takes the word after an option that needs a value, whatever it is: `--qmp
// --json` connected to a socket named "--json" and printed text, `--owner --dry-run` dropped the
// dry run. One of the command's own options is never taken as a value (found by the command_line
// fuzz target: regressions/command_line/qmp-then-json).
TEST_F(Hostile, AnOptionIsNotAnotherOptionsValue) {
  auto r = run({"unplug", "gpu0", "--qmp", "--json"});
  EXPECT_EQ(r.status, 2);
  ASSERT_TRUE(json::accept(r.out)) << r.out;
  EXPECT_EQ(json::parse(r.out)["error"]["message"], "--qmp needs a value, not the option '--json'");
  r = run({"bind", "00:01.0", "--owner", "--dry-run"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: --owner needs a value, not the option '--dry-run'\n"
            "  fix: write its value after --owner (`pcipass bind --help` says what it takes)\n");
  r = run({"vf", "set", "0000:00:01.0", "0", "--mac", "-h"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "error: --mac needs a value, not the option '-h'\n"
            "  fix: write its value after --mac (`pcipass vf set --help` says what it takes)\n");
  // A global option's value too; a value that only begins with '-' is still a value.
  r = run({"--pci-ids", "--json", "list"});
  EXPECT_EQ(r.status, 2);
  ASSERT_TRUE(json::accept(r.out)) << r.out;
  EXPECT_EQ(json::parse(r.out)["error"]["message"],
            "--pci-ids needs a value, not the option '--json'");
  r = run({"list", "--vendor", "-x"});
  EXPECT_EQ(r.err.find("needs a value"), std::string::npos) << r.err;
}

TEST_F(Hostile, ShowNamesEachDeviceOnce) {
  auto r = run({"--json", "show", "00:01.0", "0000:00:01.0", "pci_0000_00_01_0", "8086:10d3"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto d = json::parse(r.out)["devices"];
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0]["address"], "0000:00:01.0");
  EXPECT_EQ(d[1]["address"], "0000:00:02.0");
}

std::string header(size_t size) {
  std::string c(size, '\0');
  c[0] = static_cast<char>(0x86), c[1] = static_cast<char>(0x80);
  c[6] = 0x10;  // capability list
  c[0x34] = 0x40;
  return c;
}

TEST(HostileConfigSpace, SixtyFiveBytesSaysTruncated) {
  auto r = parse_config_space(header(65));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_EQ(r->problems[0],
            "config space is truncated: 65 bytes, too few for the capability at 0x40");
}

TEST(HostileConfigSpace, TruncatedCapabilitiesEachGetAProblemLine) {
  // PCI Express at 0x40, then SR-IOV at 0x100 cut off after its first 0x10 bytes.
  std::string c = header(0x110);
  c[0x40] = 0x10, c[0x41] = 0;
  c[0x100] = 0x10, c[0x101] = 0, c[0x102] = 0x01, c[0x103] = 0;
  auto r = parse_config_space(c);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->sriov);
  EXPECT_EQ(r->problems, std::vector<std::string>{"SR-IOV capability at 0x100 is truncated"});
  // MSI at the very end of a 0x43-byte space.
  std::string m = header(0x43);
  m[0x40] = 0x05;
  auto msi = parse_config_space(m);
  EXPECT_EQ(msi->problems, std::vector<std::string>{"MSI capability at 0x40 is truncated"});
}

TEST(HostileCmdline, KeyWithAQuoteAndASpaceIsRefusedNotMiswritten) {
  KernelCmdline c;
  c.add("a\"b c", "x");
  c.add("quiet", std::nullopt);
  auto s = c.str();
  ASSERT_FALSE(s.ok()) << *s;
  EXPECT_EQ(s.error().message,
            "kernel parameter 'a\"b c=x' cannot be written on a command line: the kernel's "
            "quoting cannot carry it");
  // What the kernel's syntax can carry reads back the same, quotes inside words included.
  for (const char* line :
       {R"(a"b c"=x quiet)", R"("k=a b" k2="x y" k3="" plain)", R"(quiet x="a"b)"}) {
    auto parsed = KernelCmdline::parse(line);
    auto again = parsed.str();
    ASSERT_TRUE(again.ok()) << line;
    EXPECT_EQ(KernelCmdline::parse(*again).params(), parsed.params()) << line << " -> " << *again;
  }
}

}  // namespace
}  // namespace pcipass::test
