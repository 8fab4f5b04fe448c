// bind/release/recover/status against the sysfs double: the kernel's procedure, refusals,
// rollback after any failed write, recovery after a crash, the lock.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "assign/assign.h"
#include "cli_harness.h"
#include "fake_kernel.h"
#include "sample_double.h"

namespace pcipass::test {
namespace {

using assign::BindRequest;
using assign::ReleaseRequest;

PciAddress addr(const std::string& s) {
  return parse_address(s).value();
}

class Assign : public ::testing::Test, public SampleDouble {
 protected:
  void SetUp() override {
    start();
    env.impact.processes = true;
    use_env();
  }
  Result<assign::BindReport> bind(std::vector<std::string> devs, bool with_group = false,
                                  bool force = false) {
    BindRequest r;
    for (const auto& d : devs) r.devices.push_back(addr(d));
    r.with_group = with_group;
    r.force = force;
    return assign::bind(*k, r, env);
  }
  std::string journal() { return t.read("/run/pcipass/journal.json"); }
};

const std::string kNic = "/sys/bus/pci/devices/0000:00:03.0";

TEST_F(Assign, BindsByTheKernelsProcedure) {
  auto r = cli({"bind", "00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "bound 0000:00:03.0 to vfio-pci (was e1000e)\ngroup 4 is ready: /dev/vfio/4\n");
  EXPECT_EQ(loader->loaded, std::vector<std::string>{"vfio_pci"});
  EXPECT_EQ(k->writes(), (std::vector<std::string>{kNic + "/driver_override <- vfio-pci",
                                                   kNic + "/driver/unbind <- 0000:00:03.0",
                                                   "/sys/bus/pci/drivers_probe <- 0000:00:03.0"}));
  EXPECT_EQ(t.read("/sys/devices/pci0000:00/0000:00:03.0/driver_override"), "vfio-pci\n");
  EXPECT_TRUE(k->exists("/dev/vfio/4"));
  EXPECT_FALSE(k->exists("/run/pcipass/journal.json"));
  auto state = assign::load_state(*k);
  ASSERT_TRUE(state.ok());
  ASSERT_EQ(state->bindings.size(), 1u);
  EXPECT_EQ(state->bindings[0].original.driver, "e1000e");
  EXPECT_EQ(state->bindings[0].original.override, std::nullopt);
}

TEST_F(Assign, RebindingIsANoOp) {
  ASSERT_EQ(cli({"bind", "00:03.0"}).status, 0);
  int before = k->write_count();
  auto r = cli({"bind", "00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(k->write_count(), before);
  EXPECT_EQ(r.out, "0000:00:03.0 is already on vfio-pci\ngroup 4 is ready: /dev/vfio/4\n");
}

TEST_F(Assign, RefusesToLeaveAGroupNonViable) {
  std::string before = k->snapshot();
  auto r = cli({"bind", "01:00.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(
      r.err,
      "error: refusing to bind: IOMMU group 3 would not be viable: 0000:01:00.1 (snd_hda_intel) "
      "would stay "
      "on the host\n"
      "  fix: add --with-group to bind every endpoint of group 3 (0000:01:00.0, 0000:01:00.1)\n");
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_EQ(k->snapshot(), before);
}

TEST_F(Assign, WithGroupBindsEveryEndpointAndLeavesTheBridge) {
  auto r = cli({"bind", "01:00.0", "--with-group"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "bound 0000:01:00.0 to vfio-pci (was nouveau)\n"
            "bound 0000:01:00.1 to vfio-pci (was snd_hda_intel)\n"
            "group 3 is ready: /dev/vfio/3\n");
  EXPECT_NE(k->snapshot().find("0000:00:1c.0 driver=pcieport"), std::string::npos);
  EXPECT_EQ(k->write_count(), 6);
}

TEST_F(Assign, RefusesHostCriticalDevices) {
  auto r = cli({"bind", "00:02.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "error: refusing to bind: 0000:00:02.0 holds the root filesystem (/ on vda1)\n"
            "  fix: the host needs it; add --force only if the host can do without it\n");
  r = cli({"bind", "00:01.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: refusing to bind: 0000:00:01.0 carries the default route (eth0)");
  EXPECT_EQ(k->write_count(), 0);
  r = cli({"bind", "00:01.0", "--force"});
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(Assign, RefusesTheNicOfTheSshSession) {
  injected.env.impact.ssh_connection = "198.51.100.77 50000 198.51.100.5 22";
  auto r = cli({"bind", "00:03.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: refusing to bind: 0000:00:03.0 carries the SSH session in use (eth1 from "
            "198.51.100.77)");
  EXPECT_EQ(k->write_count(), 0);
}

// The session comes from the process (SSH_CONNECTION) only when the view is the live host: the
// CLI decides that from --root, here absent while the sysfs double stands in for the machine.
TEST_F(Assign, TheProcessesSshSessionCountsOnTheLiveHostOnly) {
  injected.process = [](bool live) {
    ProcessContext p;
    p.environment["SSH_CONNECTION"] = "198.51.100.77 50000 198.51.100.5 22";
    p.live = live;
    return p;
  };
  auto r = run_cli({"bind", "00:03.0"}, &injected);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: refusing to bind: 0000:00:03.0 carries the SSH session in use (eth1 from "
            "198.51.100.77)");
  EXPECT_EQ(k->write_count(), 0);
  r = cli({"plan", "00:03.0"});  // --root: a tree, whoever reads it over SSH
  EXPECT_EQ(r.out.find("SSH session"), std::string::npos) << r.out;
}

TEST_F(Assign, BridgesAreABadArgument) {
  auto r = cli({"bind", "00:1c.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "error: 0000:00:1c.0 is a bridge (pcieport): bridges and ports stay with the host\n"
            "  fix: name the devices below it (see `pcipass tree`)\n");
}

TEST_F(Assign, DryRunPrintsEveryWriteAndWritesNothing) {
  std::string before = k->snapshot();
  auto r = cli({"bind", "01:00.0", "--with-group", "--dry-run", "--owner", "libvirt-qemu:kvm"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "dry run: pcipass would make these changes, in order:\n"
            "  load module vfio_pci\n"
            "  journal /run/pcipass/journal.json (writing)\n"
            "  write /sys/bus/pci/devices/0000:01:00.0/driver_override: vfio-pci\n"
            "  write /sys/bus/pci/devices/0000:01:00.0/driver/unbind: 0000:01:00.0\n"
            "  write /sys/bus/pci/drivers_probe: 0000:01:00.0\n"
            "  write /sys/bus/pci/devices/0000:01:00.1/driver_override: vfio-pci\n"
            "  write /sys/bus/pci/devices/0000:01:00.1/driver/unbind: 0000:01:00.1\n"
            "  write /sys/bus/pci/drivers_probe: 0000:01:00.1\n"
            "  chown 64055:108 /dev/vfio/3\n"
            "  journal /run/pcipass/journal.json (committed)\n"
            "  state /run/pcipass/state.json\n"
            "nothing was changed\n");
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_TRUE(loader->loaded.empty());
  EXPECT_EQ(k->snapshot(), before);
  EXPECT_FALSE(k->exists("/run/pcipass"));
}

TEST_F(Assign, OwnerGetsTheGroupNode) {
  auto r = cli({"bind", "00:03.0", "--owner", "libvirt-qemu:kvm"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(k->chowns().at("/dev/vfio/4"), (std::pair<uid_t, gid_t>{64055, 108}));
  EXPECT_EQ(r.out,
            "bound 0000:00:03.0 to vfio-pci (was e1000e)\ngroup 4 is ready: /dev/vfio/4 (owner "
            "libvirt-qemu:kvm)\n");
}

TEST_F(Assign, OwnerWithoutGroupTakesThePrimaryGroupAndUnknownUsersAreRefused) {
  ASSERT_EQ(cli({"bind", "00:03.0", "--owner", "libvirt-qemu"}).status, 0);
  EXPECT_EQ(k->chowns().at("/dev/vfio/4"), (std::pair<uid_t, gid_t>{64055, 108}));
  auto r = cli({"bind", "01:00.0", "--with-group", "--owner", "qemu"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(
      r.err,
      "error: no user 'qemu' in /etc/passwd\n  fix: create the user, or give a numeric uid\n");
}

TEST_F(Assign, WarnsWhenMemlockIsLow) {
  t.file("/proc/self/limits",
         "Max locked memory         8388608              8388608              bytes\n");
  auto r = cli({"bind", "00:03.0"});
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.err.substr(0, r.err.find(':', 9)), "warning: the memlock limit is 8 MiB (ulimit -l)");
}

TEST_F(Assign, LockContentionRefusesAndWritesNothing) {
  ASSERT_TRUE(k->make_dirs("/run/pcipass", 0700).ok());
  auto held = k->lock("/run/pcipass/lock");
  ASSERT_TRUE(held.ok());
  auto r = cli({"bind", "00:03.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "error: another pcipass is changing the host (lock /run/pcipass/lock is held)\n"
            "  fix: wait for it to finish, then run the command again\n");
  EXPECT_EQ(k->write_count(), 0);
}

// The heart of it: fail each write of a two-device group bind in turn.
void expect_rolled_back(FakeKernel& k, int failed, const std::string& before,
                        const std::string& context) {
  SCOPED_TRACE(context);
  EXPECT_EQ(k.snapshot(), before);
  EXPECT_FALSE(k.exists("/run/pcipass/journal.json"));
  EXPECT_FALSE(k.exists("/run/pcipass/state.json"));
  // Everything written after the failure undoes something, only on devices touched before it.
  std::set<std::string> touched;
  for (int i = 0; i < failed; ++i) {
    const auto& w = k.writes()[i];
    touched.insert(w.substr(w.rfind(' ') + 1));
    if (w.find("/driver_override") != std::string::npos) touched.insert(w.substr(21, 12));
  }
  int after = 0;
  for (size_t i = failed; i < k.writes().size(); ++i, ++after) {
    const auto& w = k.writes()[i];
    EXPECT_EQ(w.find("<- vfio-pci"), std::string::npos) << w;
    std::string dev = w.find("/driver_override") != std::string::npos ? w.substr(21, 12)
                                                                      : w.substr(w.rfind(' ') + 1);
    EXPECT_TRUE(touched.count(dev)) << w;
    bool restoring = w.ends_with("driver_override <- \\n") ||
                     w.find("/driver/unbind <- ") != std::string::npos ||
                     w.starts_with("/sys/bus/pci/drivers_probe <- ");
    EXPECT_TRUE(restoring) << w;
  }
  EXPECT_LE(after, 3 * static_cast<int>(touched.size()));
}

TEST_F(Assign, AnyFailedWriteRollsEveryDeviceBack) {
  const int kWrites = 6;  // 2 devices x (driver_override, unbind, drivers_probe)
  std::vector<std::pair<std::string, FakeKernel::Fault>> faults = {
      {"EIO", {EIO, false, false}},
      {"short write", {EIO, true, false}},
      {"EBUSY after acting", {EBUSY, false, true}},
      {"ENODEV", {ENODEV, false, false}},
  };
  for (const auto& [name, fault] : faults) {
    for (int n = 1; n <= kWrites; ++n) {
      TempTree tree;
      sample_host(tree);
      FakeKernel kern(tree);
      sample_natives(kern);
      kern.register_driver("vfio-pci");
      std::string before = kern.snapshot();
      kern.fail_write(n, fault);
      BindRequest req{{addr("0000:01:00.0")}, "vfio-pci", true, false, false, ""};
      auto r = assign::bind(kern, req, env);
      std::string ctx = name + ", write " + std::to_string(n);
      ASSERT_FALSE(r.ok()) << ctx;
      EXPECT_NE(r.error().fix.find("every device was rolled back"), std::string::npos)
          << ctx << r.error().fix;
      expect_rolled_back(kern, n, before, ctx);
    }
  }
}

TEST_F(Assign, FailedWriteErrorNamesThePathAndErrno) {
  k->register_driver("vfio-pci");
  k->fail_write(2, EACCES);
  auto r = cli({"bind", "00:03.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "error: write /sys/bus/pci/devices/0000:00:03.0/driver/unbind: Permission denied\n"
            "  fix: every device was rolled back to where it was\n");
  k->fail_write(4, FakeKernel::Fault{EIO, true, false});
  r = cli({"bind", "00:03.0"});
  EXPECT_EQ(
      r.err.substr(0, r.err.find('\n')),
      "error: write /sys/bus/pci/devices/0000:00:03.0/driver_override: short write (0 of 8 bytes)");
}

TEST_F(Assign, BusyUnbindRollsBack) {
  std::string before = k->snapshot();
  k->refuse_unbind("0000:01:00.1");
  auto r = bind({"0000:01:00.0"}, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "write /sys/bus/pci/devices/0000:01:00.1/driver/unbind: Device or resource busy");
  k->refuse_unbind("0000:01:00.1", 0);
  EXPECT_EQ(k->snapshot(), before);
}

TEST_F(Assign, ADriverThatDeclinesTheDeviceRollsBack) {
  k->refuse_probe("0000:00:03.0", "vfio-pci");
  std::string before;
  k->register_driver("vfio-pci");
  before = k->snapshot();
  auto r = bind({"0000:00:03.0"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "0000:00:03.0 did not bind to vfio-pci after drivers_probe: it is on no driver");
  EXPECT_EQ(k->snapshot(), before);
}

TEST_F(Assign, AMissingGroupNodeRollsBack) {
  k->udev(false);
  k->register_driver("vfio-pci");
  std::string before = k->snapshot();
  auto r = bind({"0000:00:03.0"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "/dev/vfio/4 did not appear within 100 ms after group 4 was bound to vfio-pci");
  EXPECT_EQ(k->snapshot(), before);
}

TEST_F(Assign, ModuleLoadFailureChangesNothing) {
  loader->fail = true;
  auto r = cli({"bind", "00:03.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: load module vfio_pci: No such file or directory");
  EXPECT_EQ(k->write_count(), 0);
}

TEST_F(Assign, RecoverAfterACrashAtEveryWrite) {
  const int kWrites = 6;
  for (int n = 1; n <= kWrites; ++n) {
    SCOPED_TRACE("crash after write " + std::to_string(n));
    TempTree tree;
    sample_host(tree);
    std::string before;
    {
      FakeKernel kern(tree);
      sample_natives(kern);
      kern.register_driver("vfio-pci");
      before = kern.snapshot();
      kern.crash_after(n);
      BindRequest req{{addr("0000:01:00.0")}, "vfio-pci", true, false, false, ""};
      ASSERT_FALSE(assign::bind(kern, req, env).ok());
      ASSERT_TRUE(kern.exists("/run/pcipass/journal.json"));
      // A later bind refuses until recovered.
      FakeKernel again(tree);
      auto blocked = assign::bind(again, req, env);
      ASSERT_FALSE(blocked.ok());
      EXPECT_EQ(blocked.error().message,
                "an interrupted pcipass run left a journal (/run/pcipass/journal.json: bind of 2 "
                "devices)");
    }
    FakeKernel kern(tree);
    sample_natives(kern);
    auto rec = assign::recover(kern, env);
    ASSERT_TRUE(rec.ok()) << rec.error().message;
    EXPECT_TRUE(rec->pending);
    EXPECT_EQ(kern.snapshot(), before);
    EXPECT_FALSE(kern.exists("/run/pcipass/journal.json"));
    auto twice = assign::recover(kern, env);
    ASSERT_TRUE(twice.ok());
    EXPECT_FALSE(twice->pending);
  }
}

TEST_F(Assign, RecoverWithNothingPendingDoesNothing) {
  auto r = cli({"recover"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "nothing to recover\n");
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_FALSE(k->exists("/run/pcipass"));
}

TEST_F(Assign, RecoverFinishesACommittedRun) {
  ASSERT_TRUE(bind({"0000:00:03.0"}).ok());
  // Simulate a crash between the commit mark and the state update.
  assign::Journal j{
      "bind",      "vfio-pci",
      "",          1,
      "committed", {{addr("0000:00:03.0"), 4, {"e1000e", std::nullopt}, {"vfio-pci", "vfio-pci"}}},
      {},          {},
      {}};
  ASSERT_TRUE(k->remove("/run/pcipass/state.json").ok());
  ASSERT_TRUE(assign::save_journal(*k, j).ok());
  int writes = k->write_count();
  auto r = cli({"recover"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "the interrupted bind had finished its writes; its state is now recorded\n");
  EXPECT_EQ(k->write_count(), writes);
  EXPECT_EQ(assign::load_state(*k)->bindings.size(), 1u);
}

TEST_F(Assign, ReleaseRestoresExactlyWhatBindChanged) {
  t.file("/sys/devices/pci0000:00/0000:00:03.0/driver_override", "e1000e\n");
  std::string before = k->snapshot();
  ASSERT_EQ(cli({"bind", "00:03.0"}).status, 0);
  auto r = cli({"unbind", "00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "released 0000:00:03.0: vfio-pci -> e1000e\n");
  EXPECT_EQ(k->snapshot(), before);
  EXPECT_FALSE(k->exists("/dev/vfio/4"));
  EXPECT_TRUE(assign::load_state(*k)->bindings.empty());
  std::vector<std::string> tail(k->writes().end() - 3, k->writes().end());
  EXPECT_EQ(tail, (std::vector<std::string>{kNic + "/driver_override <- e1000e",
                                            kNic + "/driver/unbind <- 0000:00:03.0",
                                            "/sys/bus/pci/drivers_probe <- 0000:00:03.0"}));
  r = cli({"release", "00:03.0"});
  EXPECT_EQ(r.out, "0000:00:03.0 is already back on the host\n");
}

TEST_F(Assign, ReleaseClearsTheOverride) {
  ASSERT_EQ(cli({"bind", "01:00.0", "--with-group"}).status, 0);
  auto r = cli({"reattach", "01:00.0", "--with-group"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "released 0000:01:00.0: vfio-pci -> nouveau\nreleased 0000:01:00.1: vfio-pci -> "
            "snd_hda_intel\n");
  EXPECT_EQ(t.read("/sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0/driver_override"),
            "(null)\n");
  EXPECT_NE(std::find(k->writes().begin(), k->writes().end(),
                      "/sys/bus/pci/devices/0000:01:00.1/driver_override <- \\n"),
            k->writes().end());
}

TEST_F(Assign, ReleaseRefusesWhileAProcessHoldsTheGroup) {
  ASSERT_EQ(cli({"bind", "00:03.0"}).status, 0);
  k->add_process(4242, "qemu-system-x86", {"/dev/vfio/vfio", "/dev/vfio/4"});
  int writes = k->write_count();
  auto r = cli({"release", "00:03.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "error: refusing to release 0000:00:03.0: /dev/vfio/4 is held open by qemu-system-x86 "
            "(pid 4242)\n"
            "  fix: shut the VM down (or stop pid 4242), then release\n");
  EXPECT_EQ(k->write_count(), writes);
  auto s = cli({"--json", "status"});
  auto j = nlohmann::json::parse(s.out);
  EXPECT_EQ(j["bindings"][0]["users"][0]["pid"], 4242);
}

// Whether a VM holds the group is unknown when /proc cannot be listed: never "no one".
TEST_F(Assign, ReleaseAndStatusRefuseWhenProcCannotBeListed) {
  ASSERT_EQ(cli({"bind", "00:03.0"}).status, 0);
  k->deny_listing("/proc");
  int writes = k->write_count();
  auto r = cli({"release", "00:03.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "error: cannot tell whether a process holds /dev/vfio/4 open: opendir /proc: "
            "Permission denied\n"
            "  fix: mount /proc and run pcipass as root, then try again\n");
  EXPECT_EQ(k->write_count(), writes);
  EXPECT_EQ(cli({"status"}).err, r.err);
  auto plan = nlohmann::json::parse(cli({"--json", "plan", "01:00.0", "--with-group"}).out);
  nlohmann::json unknown;
  for (const auto& r : plan["refusals"])
    if (r["id"] == "impact-unknown") unknown = r;
  EXPECT_EQ(unknown["message"],
            "cannot tell what the host would lose: opendir /proc: Permission denied")
      << plan;
}

TEST_F(Assign, ReleaseRefusesBridges) {
  std::string before = k->snapshot();
  auto r = cli({"release", "00:1c.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "error: 0000:00:1c.0 is a bridge: pcipass never binds bridges\n"
            "  fix: name the devices below it (see `pcipass status`)\n");
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_EQ(k->snapshot(), before);
}

TEST_F(Assign, ReleaseFailureRebindsToVfio) {
  ASSERT_EQ(cli({"bind", "01:00.0", "--with-group"}).status, 0);
  std::string bound = k->snapshot();
  k->fail_write(k->write_count() + 5, EIO);  // the second device's unbind
  auto r = assign::release(
      *k, ReleaseRequest{{addr("0000:01:00.0"), addr("0000:01:00.1")}, false, false}, env);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(k->snapshot(), bound);
  EXPECT_EQ(assign::load_state(*k)->bindings.size(), 2u);
}

TEST_F(Assign, StatusSaysWhatIsBoundAndWhetherItHolds) {
  auto r = cli({"status"});
  EXPECT_EQ(r.out, "pcipass has bound nothing\n");
  ASSERT_EQ(cli({"bind", "00:03.0"}).status, 0);
  r = cli({"status"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out,
            "ADDRESS       GROUP  DRIVER    ORIGINAL  STATE\n"
            "0000:00:03.0  4      vfio-pci  e1000e    holds\n");
  // Someone else rebinds it behind pcipass's back.
  ASSERT_TRUE(k->write("/sys/bus/pci/devices/0000:00:03.0/driver/unbind", "0000:00:03.0").ok());
  r = cli({"--json", "status"});
  EXPECT_EQ(r.status, 3);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["bindings"][0]["holds"], false);
  EXPECT_EQ(j["bindings"][0]["problem"], "it is on no driver now, not vfio-pci");
  EXPECT_EQ(j["bindings"][0]["original_driver"], "e1000e");
}

TEST_F(Assign, PlanChangesNothingAndNamesWhatTheHostLoses) {
  std::string before = k->snapshot();
  auto r = cli({"--json", "plan", "00:01.0"});
  EXPECT_EQ(r.status, 1);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["verdict"], "refused");
  EXPECT_EQ(j["refusals"][0]["id"], "host-critical");
  ASSERT_EQ(j["host_loses"].size(), 2u);
  EXPECT_EQ(j["host_loses"][0]["kind"], "net");
  EXPECT_EQ(j["host_loses"][0]["addresses"], nlohmann::json({"192.0.2.10/24", "2001:db8::10/64"}));
  EXPECT_EQ(j["host_loses"][1]["kind"], "route");
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_EQ(k->snapshot(), before);
  EXPECT_TRUE(loader->loaded.empty());
}

TEST_F(Assign, PlanShowsTheGroup) {
  auto r = cli({"plan", "01:00.0"});
  EXPECT_EQ(r.status, 1);
  // Names come from the system's pci.ids: compare up to the DEVICE column.
  std::istringstream lines(r.out);
  std::vector<std::string> got;
  for (std::string l; std::getline(lines, l);)
    got.push_back(l.substr(0, l.find(" [") == std::string::npos ? l.size() : 57));
  ASSERT_GE(got.size(), 5u);
  EXPECT_EQ(got[0], "IOMMU group 3");
  EXPECT_EQ(got[1].substr(0, 57), "  ADDRESS       DRIVER         AFTER          ACTION     ");
  EXPECT_EQ(got[2].substr(0, 50), "  0000:00:1c.0  pcieport       pcieport       stay");
  EXPECT_EQ(got[3].substr(0, 54), "  0000:01:00.0  nouveau        vfio-pci       bind *  ");
  EXPECT_EQ(got[4].substr(0, 57), "  0000:01:00.1  snd_hda_intel  snd_hda_intel  left-behind");
  EXPECT_EQ(
      r.out.substr(r.out.find("The host")),
      "The host would lose: nothing it uses\n"
      // The GPU has no FLR and shares its bus with its audio function (no reset_method here).
      "Reset between VM starts:\n"
      "  0000:01:00.0  bus_shared: no reset of its own: only a bus reset, which also resets "
      "0000:01:00.1; QEMU does that only when all of them are assigned to the same VM\n"
      "    fix: assign 0000:01:00.1 to the same VM as this device, or expect its state to carry "
      "over from one VM start to the next\n"
      "Verdict: refused\n"
      "  IOMMU group 3 would not be viable: 0000:01:00.1 (snd_hda_intel) would stay on the host\n"
      "    fix: add --with-group to bind every endpoint of group 3 (0000:01:00.0, 0000:01:00.1)\n");
  r = cli({"--json", "plan", "01:00.0", "--with-group"});
  EXPECT_EQ(r.status, 0);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["verdict"], "ready");
  EXPECT_EQ(j["groups"][0]["devices"][2]["action"], "bind");
  EXPECT_EQ(j["groups"][0]["devices"][2]["new_driver"], "vfio-pci");
  // Both functions go to the VM: the bus reset that reaches both is QEMU's to do, nothing to fix.
  ASSERT_EQ(j["reset"].size(), 2u);
  EXPECT_EQ(j["reset"][0]["address"], "0000:01:00.0");
  EXPECT_EQ(j["reset"][0]["verdict"], "bus_shared");
  EXPECT_EQ(j["reset"][0]["bus_reset_also_resets"], nlohmann::json::array({"0000:01:00.1"}));
  EXPECT_EQ(j["reset"][0]["fix"], nullptr);
  EXPECT_EQ(j["reset"][0]["methods_source"], "config_space");
}

TEST_F(Assign, PlanNamesProcessesHoldingTheDevice) {
  const std::string gpu = "/sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0";
  t.link(gpu + "/drm/card0/device", gpu);
  t.link("/sys/class/drm/card0", gpu + "/drm/card0");
  k->add_process(812, "Xorg", {"/dev/dri/card0"});
  auto r = cli({"--json", "plan", "01:00.0", "--with-group"});
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["verdict"], "refused");
  EXPECT_EQ(j["refusals"][0]["message"],
            "0000:01:00.0 is in use by Xorg (pid 812) through /dev/dri/card0");
}

}  // namespace
}  // namespace pcipass::test
