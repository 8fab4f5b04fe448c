// pcipass apply FILE against the sysfs double: a desired-state file (YAML or JSON) brought about as
// one plan (devices bound and persisted, VFs, mdevs and their definitions), a second run that
// changes nothing and says so, a dry run that writes nothing, bad files refused byte for byte
// with the key path and nothing changed, and a fault at every sysfs write and every file change
// that leaves the whole tree as it was.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "desired/desired_file.h"
#include "fake_kernel.h"
#include "host_state.h"
#include "mtty_double.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

constexpr int64_t kNow = 1795000000;
const std::string kBus = "/sys/devices/pci0000:00";

// sample_host, an SR-IOV NVMe PF 00:04.0 (7 VFs possible), two identical spare NICs 00:05.0 and
// 00:06.0 (igb, 8086:1533, groups 6 and 7) and mtty, linux's sample mdev parent.
struct Host {
  TempTree t;
  std::unique_ptr<FakeKernel> k;
  std::unique_ptr<FakeLoader> loader;
  assign::Environment env;
  cli::Injected injected;

  Host() {
    sample_host(t);
    t.pci_device(kBus, "0000:00:04.0", 0x1b36, 0x0010, 0x010802, "nvme", 5);
    t.pci_device(kBus, "0000:00:05.0", 0x8086, 0x1533, 0x020000, "igb", 6);
    t.pci_device(kBus, "0000:00:06.0", 0x8086, 0x1533, 0x020000, "igb", 7);
    attach();
  }
  // A new double (a new process) over the tree as it is.
  void attach() {
    k = std::make_unique<FakeKernel>(t);
    sample_natives(*k);
    k->native("0000:00:04.0", "nvme");
    k->native("0000:00:05.0", "igb");
    k->native("0000:00:06.0", "igb");
    k->sriov("0000:00:04.0", {7, 1, 1, 0x0010, "nvme"});
    mtty(*k, t);
    loader = std::make_unique<FakeLoader>(*k);
    k->register_driver("vfio-pci");
    env.loader = loader.get();
    env.sleep_ms = [](int) {};
    env.node_wait_ms = 100;
    env.process.now = [] { return kNow; };
    injected.fs = k.get();
    injected.env = env;
    injected.process = process_at(kNow);
  }
  // The file is the caller's, outside the host tree (as Ansible's temporary file is).
  std::string file(const std::string& text) {
    path = scratch.real("/desired.yaml");
    scratch.file("/desired.yaml", text);
    return path;
  }
  CliRun cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", t.root()});
    return run_cli(args, &injected);
  }
  nlohmann::json apply_json(const std::string& f, bool dry = false) {
    std::vector<std::string> args = {"--json", "apply", f};
    if (dry) args.push_back("--dry-run");
    auto r = cli(args);
    EXPECT_EQ(r.status, 0) << r.err << r.out;
    return r.status == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  }
  // The tree without pcipass's own records (host_state.h: the lock, the change sets).
  std::string state() const { return host_state(t); }
  std::optional<std::string> driver(const std::string& a) const {
    return k->link_basename("/sys/bus/pci/devices/" + a + "/driver");
  }

  TempTree scratch;
  std::string path;
};

const std::string kWhole =
    "version: 1\n"
    "devices:\n"
    "  - address: 0000:00:03.0\n"
    "  - id: \"8086:1533\"\n"
    "    count: 1\n"
    "sriov:\n"
    "  - pf: 0000:00:04.0\n"
    "    vfs: 2\n"
    "    bind: vfio-pci\n"
    "mdevs:\n"
    "  - parent: mtty\n"
    "    type: mtty-2\n"
    "    uuid: " +
    kU1 +
    "\n"
    "    autostart: true\n";

TEST(DesiredFile, YamlAndJsonAreOneSchema) {
  auto y = desired::parse_state(kWhole, "f.yaml");
  ASSERT_TRUE(y.ok()) << y.error().message;
  auto j = desired::parse_state(
      R"({"version": 1, "devices": [{"address": "0000:00:03.0"}, {"id": "8086:1533", "count": 1}],
          "sriov": [{"pf": "0000:00:04.0", "vfs": 2, "bind": "vfio-pci"}],
          "mdevs": [{"parent": "mtty", "type": "mtty-2", "uuid": ")" +
          kU1 + R"(", "autostart": true}]})",
      "f.json");
  ASSERT_TRUE(j.ok()) << j.error().message;
  for (const auto* s : {&*y, &*j}) {
    ASSERT_EQ(s->devices.size(), 2u);
    EXPECT_EQ(s->devices[0].address->str(), "0000:00:03.0");
    EXPECT_EQ(s->devices[1].vendor, 0x8086);
    EXPECT_EQ(s->devices[1].device, 0x1533);
    EXPECT_EQ(s->devices[1].count, 1);
    ASSERT_EQ(s->sriov.size(), 1u);
    EXPECT_EQ(s->sriov[0].vfs, 2);
    EXPECT_TRUE(s->sriov[0].bind);
    ASSERT_EQ(s->mdevs.size(), 1u);
    EXPECT_EQ(s->mdevs[0].uuid, kU1);
    EXPECT_TRUE(s->mdevs[0].autostart);
  }
}

TEST(DesiredFile, DeepNestingIsAnErrorNotACrash) {
  std::string deep(100000, '[');
  auto r = desired::parse_state(deep, "deep.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
}

class ApplyFile : public ::testing::Test {
 protected:
  Host h;
  // A bad file: the message byte for byte, exit status 2, nothing written.
  void expect_refused(const std::string& text, const std::string& err) {
    std::string f = h.file(text);
    std::string before = h.state();
    auto r = h.cli({"apply", f});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(r.out, "");
    std::string want = err;
    for (size_t p; (p = want.find("FILE")) != std::string::npos;) want.replace(p, 4, f);
    EXPECT_EQ(r.err, want);
    EXPECT_EQ(h.k->write_count(), 0);
    EXPECT_EQ(h.state(), before);
  }
};

TEST_F(ApplyFile, BadAddressNamesTheKeyPathTheValueAndTheFix) {
  expect_refused(
      "version: 1\ndevices:\n  - address: 0000:00:03.0\n  - address: 0000:zz:00.0\n",
      "error: FILE: devices[1].address: '0000:zz:00.0' is not a PCI address\n"
      "  fix: write a PCI address such as 0000:01:00.0 (see `pcipass list`) (docs/apply.md)\n");
}

TEST_F(ApplyFile, UnknownKeysAreErrors) {
  expect_refused("version: 1\ndevices:\n  - adress: 0000:00:03.0\n",
                 "error: FILE: devices[0].adress: unknown key 'adress'\n"
                 "  fix: the keys here are: address, count, id (docs/apply.md)\n");
  expect_refused(
      "version: 1\nbot:\n  iommu: true\n",
      "error: FILE: bot: unknown key 'bot'\n"
      "  fix: the keys here are: boot, devices, mdevs, sriov, version (docs/apply.md)\n");
}

TEST_F(ApplyFile, VersionIsRequiredAndChecked) {
  expect_refused("devices: []\n",
                 "error: FILE: version: is missing\n"
                 "  fix: start the file with `version: 1` (docs/apply.md shows a whole file) "
                 "(docs/apply.md)\n");
  expect_refused("version: 2\n",
                 "error: FILE: version: '2' is not a version this pcipass reads\n"
                 "  fix: write version: 1 (this pcipass reads version 1) (docs/apply.md)\n");
}

TEST_F(ApplyFile, BadValuesSayWhatTheyShouldBe) {
  expect_refused("version: 1\nboot:\n  iommu: yes please\n",
                 "error: FILE: boot.iommu: 'yes please' is not true or false\n"
                 "  fix: write true or false (docs/apply.md)\n");
  expect_refused("version: 1\nsriov:\n  - pf: 0000:00:04.0\n    vfs: -3\n",
                 "error: FILE: sriov[0].vfs: '-3' is not a number from 1 to 65535\n"
                 "  fix: write a whole number from 1 to 65535 (docs/apply.md)\n");
  expect_refused("version: 1\ndevices:\n  - id: 8086-1533\n",
                 "error: FILE: devices[0].id: '8086-1533' is not a vendor:device pair\n"
                 "  fix: write vendor:device in hex, such as 10de:1b80 (see `pcipass list`) "
                 "(docs/apply.md)\n");
  expect_refused("version: 1\ndevices:\n  address: 0000:00:03.0\n",
                 "error: FILE: devices: is a mapping, not a list\n"
                 "  fix: write devices as a list of entries, each starting with '- ' "
                 "(docs/apply.md)\n");
}

TEST_F(ApplyFile, SyntaxErrorsGiveLineAndColumn) {
  expect_refused("version: 1\ndevices: [\n",
                 "error: FILE:3:1: not YAML or JSON: end of sequence flow not found\n"
                 "  fix: fix the syntax there (docs/apply.md)\n");
}

TEST_F(ApplyFile, TheHostsFactsAreCheckedBeforeAnyWrite) {
  expect_refused("version: 1\ndevices:\n  - address: 0000:00:09.0\n",
                 "error: FILE: devices[0].address: no PCI device 0000:00:09.0 on this host\n"
                 "  fix: see `pcipass list` for this host's devices, and fix the address\n");
  expect_refused("version: 1\ndevices:\n  - id: 8086:1533\n    count: 3\n",
                 "error: FILE: devices[0].count: 3 devices 8086:1533 wanted, this host has 2\n"
                 "  fix: lower the count to 2 or fewer (see `pcipass list --vendor 8086`)\n");
}

TEST_F(ApplyFile, AMissingFileIsAUsageError) {
  std::string before = h.state();
  auto r = h.cli({"apply", "/nonexistent/pcipass-desired.yaml"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "error: open /nonexistent/pcipass-desired.yaml: No such file or directory\n"
            "  fix: name a readable desired-state file (docs/apply.md)\n");
  EXPECT_EQ(h.state(), before);
}

TEST_F(ApplyFile, FirstRunChangesEverythingTheSecondNothing) {
  std::string f = h.file(kWhole);
  auto first = h.apply_json(f);
  EXPECT_EQ(first["schema"], "pcipass.apply-file/1");
  EXPECT_EQ(first["changed"], true);
  EXPECT_EQ(h.driver("0000:00:03.0"), "vfio-pci");
  EXPECT_EQ(h.driver("0000:00:05.0"), "vfio-pci");  // the first 8086:1533 in address order
  EXPECT_EQ(h.driver("0000:00:06.0"), "igb");
  EXPECT_EQ(h.k->read_trimmed("/sys/bus/pci/devices/0000:00:04.0/sriov_numvfs"), "2");
  EXPECT_EQ(h.driver("0000:00:04.1"), "vfio-pci");
  EXPECT_TRUE(h.k->exists("/sys/bus/mdev/devices/" + kU1));
  EXPECT_EQ(h.t.read("/etc/mdevctl.d/mtty/" + kU1),
            "{\n  \"mdev_type\": \"mtty-2\",\n  \"start\": \"auto\",\n  \"attrs\": []\n}");
  auto store = nlohmann::json::parse(h.t.read("/etc/pcipass/assignments.json"));
  ASSERT_EQ(store["devices"].size(), 2u);
  EXPECT_EQ(store["devices"][0]["address"], "0000:00:03.0");
  EXPECT_EQ(store["devices"][1]["address"], "0000:00:05.0");
  EXPECT_EQ(store["sriov"][0]["num_vfs"], 2);
  EXPECT_TRUE(h.k->exists("/etc/systemd/system/sysinit.target.wants/pcipass-apply.service"));
  EXPECT_TRUE(first["change_set"].is_string());

  int writes = h.k->write_count();
  std::string after = h.state();
  auto second = h.apply_json(f);
  EXPECT_EQ(second["changed"], false);
  EXPECT_EQ(second["steps"].size(), 0u);
  EXPECT_EQ(second["change_set"], nullptr);
  EXPECT_EQ(h.k->write_count(), writes);
  EXPECT_EQ(h.state(), after);
  auto text = h.cli({"apply", f});
  EXPECT_EQ(text.out,
            "0000:00:04.0 already has its 2 VFs\n"
            "0000:00:03.0 is already on vfio-pci\n"
            "0000:00:05.0 is already on vfio-pci\n"
            "mdev " +
                kU1 +
                " is already there\n"
                "nothing to change: the host is as the file says\n");
}

TEST_F(ApplyFile, DryRunShowsThePlanAndWritesNothing) {
  std::string f = h.file(kWhole);
  std::string before = h.state();
  auto j = h.apply_json(f, true);
  EXPECT_EQ(j["changed"], true);
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_EQ(h.k->write_count(), 0);
  EXPECT_EQ(h.state(), before);
  std::string steps = j["steps"].dump();
  for (const char* want : {"/etc/pcipass/assignments.json", "/etc/mdevctl.d/mtty/", "sriov_numvfs",
                           "0000:00:03.0/driver_override", "mtty-2/create"})
    EXPECT_NE(steps.find(want), std::string::npos) << want << " in " << steps;
  auto text = h.cli({"apply", f, "--dry-run"});
  EXPECT_NE(text.out.find("would bind 0000:00:03.0 to vfio-pci (was e1000e)\n"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("dry run: pcipass would make these changes, in order:\n"),
            std::string::npos);
}

TEST_F(ApplyFile, ARefusedDeviceStopsThePlanBeforeAnyWrite) {
  std::string f = h.file(
      "version: 1\nsriov:\n  - pf: 0000:00:04.0\n    vfs: 2\n"
      "devices:\n  - address: 0000:00:01.0\n");
  std::string before = h.state();
  auto r = h.cli({"apply", f});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: refusing to bind: 0000:00:01.0 carries the default route (eth0)");
  EXPECT_EQ(h.k->write_count(), 0);
  EXPECT_EQ(h.state(), before);
}

// The heart of it: one plan, so a failure at any write (sysfs or file) rolls back all of it:
// the VFs, the devices, the mdev, the store, the unit and the mdev's definition.
TEST(ApplyFileFaults, AFaultAtEveryWriteRestoresTheWholeTree) {
  int sysfs_writes = 0, file_changes = 0;
  {
    Host h;
    std::string f = h.file(kWhole);
    ASSERT_EQ(h.cli({"apply", f}).status, 0);
    sysfs_writes = h.k->write_count();
    file_changes = h.k->file_changes();
  }
  ASSERT_GT(sysfs_writes, 10);
  ASSERT_GT(file_changes, 3);
  int restored = 0, finished = 0;
  for (int kind = 0; kind < 2; ++kind) {
    int n_max = kind == 0 ? sysfs_writes : file_changes;
    for (int n = 1; n <= n_max; ++n) {
      std::string ctx = (kind == 0 ? "sysfs write " : "file change ") + std::to_string(n);
      SCOPED_TRACE(ctx);
      Host h;
      std::string f = h.file(kWhole);
      std::string before = h.state();
      if (kind == 0)
        h.k->fail_write(n);
      else
        h.k->fail_file_change(n);
      auto r = h.cli({"apply", f});
      SCOPED_TRACE(r.err);
      ASSERT_EQ(r.status, 1) << r.out;
      if (r.err.find("run `pcipass recover` to finish") != std::string::npos) {
        // Only the journal's last record failed: every change is made; recover finishes it.
        ++finished;
        h.attach();
        EXPECT_EQ(h.cli({"recover"}).status, 0);
        EXPECT_EQ(h.driver("0000:00:05.0"), "vfio-pci");
        EXPECT_TRUE(h.k->exists("/etc/pcipass/assignments.json"));
        EXPECT_TRUE(h.k->exists("/sys/bus/mdev/devices/" + kU1));
        EXPECT_FALSE(h.k->exists("/run/pcipass/journal.json"));
        continue;
      }
      ++restored;
      // A file fault before the first change (the change set's own records) has nothing to
      // roll back; every later one says what was.
      if (kind == 0) {
        EXPECT_NE(r.err.find("rolled back"), std::string::npos) << r.err;
      }
      EXPECT_EQ(changed_lines(before, h.state()), "");
      EXPECT_FALSE(h.k->exists("/run/pcipass/journal.json"));
    }
  }
  // Most faults come before the plan is done: all of it is rolled back.
  EXPECT_GT(restored, sysfs_writes);
  EXPECT_EQ(restored + finished, sysfs_writes + file_changes);
}

}  // namespace
}  // namespace pcipass::test
