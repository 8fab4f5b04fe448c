// setup --early-bind (by address: a udev rule, the rule in the initramfs, softdep ordering),
// setup --selinux, and the lines `check` adds for them: on the sample host (fake_kernel.cc), whose
// 0000:00:01.0 and 0000:00:03.0 are identical NICs (8086:10d3), with Debian's initramfs-tools.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "deny_fs.h"
#include "fake_kernel.h"
#include "fake_runner.h"
#include "fault_fs.h"
#include "setup/boot_check.h"
#include "setup/host_setup.h"

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;
using Argv = std::vector<std::string>;

constexpr int64_t kNow = 1795000000;
const std::string kRule = "/etc/udev/rules.d/05-pcipass-vfio.rules";
const std::string kModprobe = "/etc/modprobe.d/pcipass.conf";
const std::string kBus = "/sys/devices/pci0000:00";

PciAddress addr(const std::string& s) {
  return parse_address(s).value();
}

// Every file but pcipass's own records (/run, /var): path, mode, bytes or link target.
std::string host_files(const TempTree& t) {
  std::vector<std::string> lines;
  for (const auto& e : fs::recursive_directory_iterator(t.root())) {
    std::string rel = e.path().string().substr(t.root().size());
    if (rel.starts_with("/var") || rel.starts_with("/run")) continue;
    std::string line = rel;
    if (e.is_symlink())
      line += " -> " + fs::read_symlink(e.path()).string();
    else if (e.is_regular_file())
      line += " [" + t.read(rel) + "]";
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::string image_listing(bool with_rule) {
  std::string d = "usr/lib/modules/6.1.0-28-amd64/kernel/drivers/vfio/";
  std::string s = d + "vfio.ko\n" + d + "vfio_iommu_type1.ko\n" + d + "vfio_virqfd.ko\n" + d +
                  "pci/vfio-pci.ko\n";
  if (with_rule) s += "etc/udev/rules.d/05-pcipass-vfio.rules\n";
  return s;
}

class EarlyBind : public ::testing::Test {
 protected:
  void SetUp() override {
    sample_host(t);
    fs::copy(source_path("tests/fixtures/initramfs/debian-initramfs-tools"), t.root(),
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    t.file("/proc/modules",
           "nouveau 2629632 0 - Live 0x0\nsnd_hda_intel 61440 0 - Live 0x0\n"
           "e1000e 348160 0 - Live 0x0\n");
    for (auto [a, v, d] : {std::tuple{"0000:00:01.0", "0x8086", "0x10d3"},
                           std::tuple{"0000:00:03.0", "0x8086", "0x10d3"},
                           std::tuple{"0000:01:00.0", "0x10de", "0x1b80"}}) {
      std::string dir =
          std::string(a).starts_with("0000:01") ? kBus + "/0000:00:1c.0/" + a : kBus + "/" + a;
      t.file(dir + "/vendor", std::string(v) + "\n");
      t.file(dir + "/device", std::string(d) + "\n");
    }
    runner.on_program("lsinitramfs", FakeRunner::success(image_listing(true)));
    env.runner = &runner;
  }
  CliRun cli(HostFs& f, std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", args_root.empty() ? t.root() : args_root});
    cli::Injected i;
    i.fs = &f;
    i.env = env;
    i.process = process_at(kNow);
    return run_cli(args, &i);
  }
  TempTree t;
  std::string args_root;  // --root: t's unless set
  FakeRunner runner;
  assign::Environment env;
};

// Identical cards: the rule names the one address asked for, with its IDs; the other card's
// address is nowhere in it.
TEST_F(EarlyBind, IdenticalCardsAreToldApartByAddress) {
  FaultFs f(t);
  auto r = cli(f, {"setup", "--vfio", "--early-bind", "0000:00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string rule = t.read(kRule);
  EXPECT_NE(rule.find("ACTION==\"add\", SUBSYSTEM==\"pci\", KERNEL==\"0000:00:03.0\", "
                      "ATTR{vendor}==\"0x8086\", ATTR{device}==\"0x10d3\", "
                      "ATTR{driver_override}=\"vfio-pci\"\n"),
            std::string::npos)
      << rule;
  EXPECT_EQ(rule.find("0000:00:01.0"), std::string::npos);
  auto parsed = setup::parse_udev_rules(rule);
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].address, addr("0000:00:03.0"));
  EXPECT_EQ(parsed[0].vendor, 0x8086);
  EXPECT_EQ(parsed[0].device, 0x10d3);
  EXPECT_EQ(t.read(kModprobe),
            "# Written by `pcipass setup --early-bind`; `pcipass undo` removes it.\n"
            "# vfio-pci loads before these drivers, so it claims the devices set for it first.\n"
            "softdep e1000e pre: vfio-pci\n");
  // The rule goes into the initramfs through a hook, and the image is checked for it.
  EXPECT_NE(t.read("/etc/initramfs-tools/hooks/pcipass").find("cp -p " + kRule), std::string::npos);
  EXPECT_EQ(runner.argvs(),
            (std::vector<Argv>{{"update-initramfs", "-u", "-k", "all"},
                               {"lsinitramfs", "/boot/initrd.img-6.1.0-27-amd64"},
                               {"lsinitramfs", "/boot/initrd.img-6.1.0-28-amd64"}}));
  EXPECT_EQ(r.out,
            "change set 20261118-110640:\n"
            "  created /etc/modules-load.d/pcipass.conf (vfio, vfio_iommu_type1, vfio_pci, "
            "vfio_virqfd now load at boot)\n"
            "  0000:00:03.0 set for early binding to vfio-pci (" +
                kRule + ", " + kModprobe +
                ")\n"
                "  initramfs-tools: /boot/initrd.img-6.1.0-27-amd64, "
                "/boot/initrd.img-6.1.0-28-amd64 regenerated and checked (vfio, "
                "vfio_iommu_type1, vfio_pci, vfio_virqfd)\n"
                "undo with `pcipass undo 20261118-110640`\n");
}

// The Debian package's initramfs-tools hook (data/initramfs-tools/pcipass, installed in
// /usr/share/initramfs-tools/hooks) copies the rule itself: pcipass writes no hook in /etc, and
// the image is still regenerated and checked for the rule.
const std::string kPackagedHook = "/usr/share/initramfs-tools/hooks/pcipass";

TEST_F(EarlyBind, ThePackagedInitramfsHookReplacesTheOneInEtc) {
  const std::string hook = read_all(source_path("data/initramfs-tools/pcipass"));
  ASSERT_NE(hook.find(kRule), std::string::npos) << "the packaged hook must copy " << kRule;
  t.file(kPackagedHook, hook);
  FaultFs f(t);
  auto r = cli(f, {"setup", "--early-bind", "0000:00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs::exists(t.real("/etc/initramfs-tools/hooks/pcipass")));
  EXPECT_NE(t.read(kRule).find("KERNEL==\"0000:00:03.0\""), std::string::npos);
  EXPECT_EQ(runner.argvs(),
            (std::vector<Argv>{{"update-initramfs", "-u", "-k", "all"},
                               {"lsinitramfs", "/boot/initrd.img-6.1.0-27-amd64"},
                               {"lsinitramfs", "/boot/initrd.img-6.1.0-28-amd64"}}));
}

// A packaged hook that does not name the rule (another version of the package) gets the /etc
// hook written as without one.
TEST_F(EarlyBind, APackagedHookWithoutTheRuleGetsTheOneInEtc) {
  t.file(kPackagedHook, "#!/bin/sh\n# copies something else\n");
  FaultFs f(t);
  auto r = cli(f, {"setup", "--early-bind", "0000:00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(t.read("/etc/initramfs-tools/hooks/pcipass").find("cp -p " + kRule), std::string::npos);
}

// The image lacks the rule: the set rolls back, every file as before.
TEST_F(EarlyBind, AnImageWithoutTheRuleRollsBack) {
  std::string before = host_files(t);
  FakeRunner dropped;
  dropped.on_program("lsinitramfs", FakeRunner::success(image_listing(false)));
  env.runner = &dropped;
  FaultFs f(t);
  auto r = cli(f, {"setup", "--early-bind", "0000:00:03.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("lacks " + kRule), std::string::npos) << r.err;
  EXPECT_EQ(host_files(t), before);
  EXPECT_FALSE(fs::exists(t.real(kRule)));
  EXPECT_FALSE(fs::exists(t.real(kModprobe)));
}

TEST_F(EarlyBind, RefusesAGroupThatWouldNotBeViableAndIdsForAddresses) {
  std::string before = t.state();
  FaultFs f(t);
  auto r = cli(f, {"setup", "--early-bind", "0000:01:00.0"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("refusing to set up early binding"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("0000:01:00.1"), std::string::npos) << r.err;
  auto ids = cli(f, {"setup", "--early-bind", "10de:1b80"});
  EXPECT_EQ(ids.status, 2);
  EXPECT_NE(ids.err.find("--early-bind 10de:1b80: not a PCI address"), std::string::npos);
  EXPECT_EQ(f.changes(), 0);
  EXPECT_EQ(t.state(), before);
  // The whole group is fine: both functions, softdeps for both host drivers.
  auto both = cli(f, {"setup", "--early-bind", "0000:01:00.0", "0000:01:00.1"});
  ASSERT_EQ(both.status, 0) << both.err;
  std::string m = t.read(kModprobe);
  EXPECT_NE(m.find("softdep nouveau pre: vfio-pci\nsoftdep snd_hda_intel pre: vfio-pci\n"),
            std::string::npos)
      << m;
}

TEST_F(EarlyBind, IsRefusedWhileTheIommuIsOffWithTheWayOn) {
  fs::remove_all(t.real("/sys/kernel/iommu_groups"));
  for (const auto& e : fs::recursive_directory_iterator(t.real("/sys/devices")))
    if (e.path().filename() == "iommu_group") fs::remove(e.path());
  std::string before = t.state();
  FaultFs f(t);
  auto r = cli(f, {"setup", "--early-bind", "0000:00:03.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "error: cannot set up early binding while the IOMMU is off: without IOMMU groups "
            "pcipass cannot tell what else a device would take with it\n"
            "  fix: turn the IOMMU on first (`pcipass setup --iommu`), reboot, then run `pcipass "
            "setup --early-bind` again\n");
  EXPECT_EQ(f.changes(), 0);
  EXPECT_EQ(t.state(), before);
}

TEST_F(EarlyBind, ABuiltInHostDriverIsSaid) {
  t.file("/proc/modules", "nouveau 2629632 0 - Live 0x0\n");
  t.file("/lib/modules/6.1.0-28-amd64/modules.builtin",
         "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko\n");
  FaultFs f(t);
  auto r = cli(f, {"--json", "setup", "--early-bind", "0000:00:03.0", "--dry-run"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "pcipass.setup/1");
  EXPECT_EQ(j["early_bind"]["devices"][0]["builtin"], nlohmann::json::array({"e1000e"}));
  EXPECT_EQ(j["early_bind"]["devices"][0]["softdep"], nlohmann::json::array());
  EXPECT_EQ(j["initramfs"]["system"], "initramfs-tools");
  ASSERT_EQ(j["notes"].size(), 1u);
  EXPECT_NE(j["notes"][0].get<std::string>().find("built into the kernel, so only the udev rule"),
            std::string::npos);
}

TEST_F(EarlyBind, CheckSaysWhenEarlyBindingLostTheRace) {
  t.file(kRule, setup::udev_rule_line(addr("0000:00:03.0"), 0x8086, 0x10d3) + "\n");
  FaultFs f(t);
  auto mods = ModuleIndex::open(f);
  auto results = setup::check_boot_setup(f, *mods, &runner);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].id, "early-bind");
  EXPECT_EQ(results[0].status, CheckStatus::kFail);
  EXPECT_EQ(results[0].detail,
            "0000:00:03.0 is set for early binding but e1000e has it: early binding lost the race");
  EXPECT_NE(results[0].fix.find("pcipass bind 0000:00:03.0"), std::string::npos);
}

// status shows the devices the rule names, desired against actual, as it shows persisted ones:
// exit 3 while one is not on vfio-pci.
TEST_F(EarlyBind, StatusShowsEarlyBoundDevicesDesiredAgainstActual) {
  t.file(kRule, setup::udev_rule_line(addr("0000:00:03.0"), 0x8086, 0x10d3) + "\n");
  FaultFs f(t);
  auto r = cli(f, {"status"});
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_EQ(r.out,
            "pcipass has bound nothing since boot\n"
            "set for early binding in /etc/udev/rules.d/05-pcipass-vfio.rules (desired against "
            "actual):\n"
            "ADDRESS       IDS        DESIRED   ACTUAL  STATE\n"
            "0000:00:03.0  8086:10d3  vfio-pci  e1000e  other-driver\n"
            "  0000:00:03.0 is set for early binding but e1000e has it: early binding lost the "
            "race\n"
            "    fix: `pcipass bind 0000:00:03.0` takes it now; for the next boot, `pcipass check` "
            "should show vfio-pci in the initramfs, /etc/modprobe.d/pcipass.conf must order "
            "e1000e after vfio-pci (softdep), and a e1000e built into the kernel can only be "
            "beaten by the udev rule in the initramfs\n");
  std::string dev = t.real(kBus + "/0000:00:03.0/driver");
  fs::remove(dev);
  fs::create_symlink("../../../bus/pci/drivers/vfio-pci", dev);
  auto j = cli(f, {"status", "--json"});
  EXPECT_EQ(j.status, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["all_hold"], true);
  EXPECT_EQ(doc["early_bind"]["rule"], kRule);
  ASSERT_EQ(doc["early_bind"]["devices"].size(), 1u);
  const auto& d = doc["early_bind"]["devices"][0];
  EXPECT_EQ(d["address"], "0000:00:03.0");
  EXPECT_EQ(d["desired_ids"], "8086:10d3");
  EXPECT_EQ(d["current_driver"], "vfio-pci");
  EXPECT_EQ(d["state"], "matches");
  EXPECT_EQ(d["fix"], nullptr);
}

TEST_F(EarlyBind, CheckSaysVfioPciIsInTheInitramfsButNotLoaded) {
  t.file("/etc/initramfs-tools/modules", "vfio\nvfio_iommu_type1\nvfio_pci\n");
  FaultFs f(t);
  auto mods = ModuleIndex::open(f);
  auto results = setup::check_boot_setup(f, *mods, &runner);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].detail, "vfio_pci is in the initramfs but not loaded");
  EXPECT_EQ(runner.argvs(),
            (std::vector<Argv>{{"lsinitramfs", "/boot/initrd.img-6.1.0-28-amd64"}}));
  FakeRunner none;
  none.not_found("lsinitramfs");
  results = setup::check_boot_setup(f, *mods, &none);
  EXPECT_NE(results[0].detail.find("lsinitramfs: program not found"), std::string::npos)
      << results[0].detail;
  t.file("/proc/modules", "vfio_pci 16384 0 - Live 0x0\n");
  auto loaded = ModuleIndex::open(f);
  results = setup::check_boot_setup(f, *loaded, &runner);
  EXPECT_EQ(results[0].status, CheckStatus::kPass);
}

TEST_F(EarlyBind, SelinuxBooleanIsCheckedAndSet) {
  t.file("/sys/fs/selinux/enforce", "1");
  t.file("/sys/fs/selinux/booleans/virt_use_sysfs", "0 0");
  FaultFs f(t);
  auto mods = ModuleIndex::open(f);
  auto results = setup::check_boot_setup(f, *mods, &runner);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, CheckStatus::kWarn);
  EXPECT_EQ(results[0].fix, "setsebool -P virt_use_sysfs 1 (or `pcipass setup --selinux`)");
  // setsebool, as the fake runs it, turns the boolean on.
  runner.observe = [&](const Invocation& i) {
    if (i.argv[0] == "setsebool")
      t.file("/sys/fs/selinux/booleans/virt_use_sysfs", i.argv[3] + " " + i.argv[3]);
  };
  auto r = cli(f, {"setup", "--selinux"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(runner.argvs(), (std::vector<Argv>{{"setsebool", "-P", "virt_use_sysfs", "1"}}));
  EXPECT_EQ(cli(f, {"setup", "--selinux"}).out,
            "nothing to change: the host is already set up as asked\n");
  auto u = cli(f, {"undo"});
  ASSERT_EQ(u.status, 0) << u.err;
  EXPECT_EQ(runner.argvs().back(), (Argv{"setsebool", "-P", "virt_use_sysfs", "0"}));
  // setsebool that leaves it off fails the set (and turns it back off).
  runner.observe = nullptr;
  t.file("/sys/fs/selinux/booleans/virt_use_sysfs", "0 0");
  auto failed = cli(f, {"setup", "--selinux"});
  EXPECT_EQ(failed.status, 1);
  EXPECT_NE(failed.err.find("virt_use_sysfs is still off after setsebool"), std::string::npos);
}

// A boolean that cannot be read is neither off nor missing from the policy: check cannot tell,
// and setup --selinux refuses before running setsebool.
TEST_F(EarlyBind, AnUnreadableSelinuxBooleanIsNotTakenForOffOrMissing) {
  t.file("/sys/fs/selinux/enforce", "1");
  t.file("/sys/fs/selinux/booleans/virt_use_sysfs", "1 1");
  DenyFs f(t, {"/sys/fs/selinux/booleans/virt_use_sysfs"});
  auto mods = ModuleIndex::open(f);
  auto results = setup::check_boot_setup(f, *mods, &runner);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, CheckStatus::kWarn);
  EXPECT_EQ(results[0].detail,
            "cannot tell whether SELinux lets QEMU use the device: open "
            "/sys/fs/selinux/booleans/virt_use_sysfs: Permission denied");
  auto r = cli(f, {"setup", "--selinux"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("virt_use_sysfs: Permission denied"), std::string::npos) << r.err;
  EXPECT_TRUE(runner.argvs().empty());
}

// A fault at every write of `setup --vfio --early-bind`, then a failure of every command it
// runs: every file stays as it was.
TEST_F(EarlyBind, AFaultAtEveryWriteAndCommandLeavesEveryFileAsItWas) {
  const std::vector<std::string> args = {"setup", "--vfio", "--early-bind", "0000:00:03.0"};
  int writes, commands;
  {
    TempTree probe;
    fs::copy(t.root(), probe.root(), fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    FaultFs f(probe);
    FakeRunner r;
    r.on_program("lsinitramfs", FakeRunner::success(image_listing(true)));
    env.runner = &r;
    args_root = probe.root();
    ASSERT_EQ(cli(f, args).status, 0);
    writes = f.changes();
    commands = static_cast<int>(r.calls.size());
    args_root.clear();
  }
  ASSERT_GE(writes, 8);
  ASSERT_EQ(commands, 3);
  std::string before = host_files(t);
  for (int n = 1; n <= writes; ++n) {
    SCOPED_TRACE("write " + std::to_string(n));
    FaultFs f(t);
    f.fail_at(n);
    env.runner = &runner;
    EXPECT_NE(cli(f, args).status, 0);
    EXPECT_EQ(host_files(t), before);
  }
  for (int n = 0; n < commands; ++n) {
    SCOPED_TRACE("command " + std::to_string(n + 1));
    FakeRunner r;
    r.on_program("lsinitramfs", FakeRunner::success(image_listing(true)));
    // The n-th command fails: the regeneration, or the listing of one image.
    if (n == 0)
      r.on_program("update-initramfs", FakeRunner::failure(1, "E: boom"));
    else
      r.on(Argv{"lsinitramfs",
                n == 1 ? "/boot/initrd.img-6.1.0-27-amd64" : "/boot/initrd.img-6.1.0-28-amd64"},
           FakeRunner::failure(1, "E: boom"));
    env.runner = &r;
    FaultFs f(t);
    EXPECT_EQ(cli(f, args).status, 1);
    EXPECT_EQ(host_files(t), before);
  }
}

}  // namespace
}  // namespace pcipass::test
