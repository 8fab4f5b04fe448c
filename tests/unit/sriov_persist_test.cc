// vf create/remove --persist and apply's SR-IOV half against the sysfs double: the store's
// "sriov" list, one transaction for the PF and /etc (a fault at every sysfs write and every file
// change leaves both as they were), a reboot brought back by `apply --boot` with no VF ever on a
// host driver, a second apply that writes nothing, a changed card reported and left alone, a PF
// without a driver reported after its module was loaded by modalias.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "change/store.h"
#include "cli_harness.h"
#include "fake_kernel.h"
#include "host_state.h"
#include "persist/persist.h"

namespace pcipass::test {
namespace {

using persist::kAssignmentsPath;

constexpr int64_t kNow = 1795000000;  // 2026-11-18 11:06:40 UTC
const std::string kBus = "/sys/devices/pci0000:00";
const std::string kPf = "/sys/bus/pci/devices/0000:00:04.0";
const std::vector<std::string> kCreate = {"vf",     "create",   "00:04.0",  "7",
                                          "--bind", "vfio-pci", "--persist"};

// A freshly booted host: sample_host plus the SR-IOV NVMe PF 00:04.0 (nvme, group 5, 7 VFs
// possible at 00:04.1..00:04.7, which nvme would drive), no VFs, vfio-pci not loaded.
struct Host {
  TempTree t;
  std::unique_ptr<FakeKernel> k;
  std::unique_ptr<FakeLoader> loader;
  assign::Environment env;
  cli::Injected injected;

  Host() {
    sample_host(t);
    t.pci_device(kBus, "0000:00:04.0", 0x1b36, 0x0010, 0x010802, "nvme", 5);
    attach();
  }
  // A new double (a new process) over the tree as it is.
  void attach() {
    k = std::make_unique<FakeKernel>(t);
    sample_natives(*k);
    k->native("0000:00:04.0", "nvme");
    k->sriov("0000:00:04.0", {7, 1, 1, 0x0010, "nvme"});
    loader = std::make_unique<FakeLoader>(*k);
    env.loader = loader.get();
    env.sleep_ms = [](int) {};
    env.node_wait_ms = 100;
    env.process.now = [] { return kNow; };
    injected.fs = k.get();
    injected.env = env;
    injected.process = process_at(kNow);
  }
  CliRun cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", t.root()});
    return run_cli(args, &injected);
  }
  // The host after a reboot: the same /etc, nothing else of what ran.
  std::unique_ptr<Host> reboot() const {
    auto next = std::make_unique<Host>();
    next->t.file(kAssignmentsPath, t.read(kAssignmentsPath));
    return next;
  }
  std::string numvfs() const { return k->read_trimmed(kPf + "/sriov_numvfs").value_or("?"); }
  std::optional<std::string> driver(const std::string& a) const {
    return k->link_basename("/sys/bus/pci/devices/" + a + "/driver");
  }
  nlohmann::json store() const { return nlohmann::json::parse(t.read(kAssignmentsPath)); }
};

std::vector<std::string> vf_addresses() {
  std::vector<std::string> out;
  for (int f = 1; f <= 7; ++f) out.push_back("0000:00:04." + std::to_string(f));
  return out;
}

TEST(SriovPersist, CreateRecordsCountAutoprobeAndBindingsAndEnablesTheApplier) {
  Host h;
  auto r = h.cli(kCreate);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(h.numvfs(), "7");
  for (const auto& a : vf_addresses()) EXPECT_EQ(h.driver(a), "vfio-pci") << a;
  auto s = h.store();
  EXPECT_EQ(s["schema"], "pcipass.assignments/1");
  EXPECT_EQ(s["devices"], nlohmann::json::array());
  ASSERT_EQ(s["sriov"].size(), 1u);
  auto e = s["sriov"][0];
  EXPECT_EQ(e["pf"], "0000:00:04.0");
  EXPECT_EQ(e["vendor"], "1b36");
  EXPECT_EQ(e["device"], "0010");
  EXPECT_EQ(e["num_vfs"], 7);
  EXPECT_EQ(e["drivers_autoprobe"], false);
  EXPECT_EQ(e["driver"], "vfio-pci");
  EXPECT_EQ(e["vfs"], nlohmann::json(vf_addresses()));
  EXPECT_NE(r.out.find("change set 20261118-110640: persisted 0000:00:04.0 in "
                       "/etc/pcipass/assignments.json\n"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(persist::unit_enabled(*h.k));
  // The same again: the PF and the store already as asked.
  h.attach();
  auto again = h.cli(kCreate);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(h.k->write_count(), 0);
  EXPECT_NE(again.out.find("already as asked: nothing to change"), std::string::npos) << again.out;
}

TEST(SriovPersist, WithoutBindOnlyTheCountAndAutoprobeAreRecorded) {
  Host h;
  auto r = h.cli({"vf", "create", "00:04.0", "2", "--no-autoprobe", "--persist", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["persist"]["devices"], nlohmann::json({"0000:00:04.0"}));
  EXPECT_EQ(j["persist"]["changed"], true);
  EXPECT_EQ(j["persist"]["unit_enabled"], true);
  auto e = h.store()["sriov"][0];
  EXPECT_EQ(e["num_vfs"], 2);
  EXPECT_EQ(e["drivers_autoprobe"], false);
  EXPECT_EQ(e["driver"], nullptr);
  EXPECT_EQ(e["vfs"], nlohmann::json::array());
}

TEST(SriovPersist, DryRunShowsTheFileDiffAndTheSysfsWritesAndWritesNothing) {
  Host h;
  std::string before = host_state(h.t);
  std::vector<std::string> args = kCreate;
  args.push_back("--dry-run");
  auto r = h.cli(args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("+++ b/etc/pcipass/assignments.json"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("+      \"num_vfs\": 7,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(kPf + "/sriov_numvfs: 7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0000:00:04.7/driver_override: vfio-pci"), std::string::npos) << r.out;
  EXPECT_EQ(h.k->write_count(), 0);
  EXPECT_EQ(h.k->file_changes(), 0);
  EXPECT_EQ(changed_lines(before, host_state(h.t)), "");
}

size_t applied_sets(const HostFs& fs) {
  auto sets = change::list_change_sets(fs);
  EXPECT_TRUE(sets.ok());
  size_t n = 0;
  for (const auto& s : sets.value_or({}))
    if (s.state == change::SetState::kApplied) ++n;
  return n;
}

// The heart of it: every sysfs write and every file change of vf create --bind --persist, failed
// in turn (each kind of fault for the sysfs writes): the PF, its VFs and /etc as they were.
TEST(SriovPersist, AFaultAtEveryWriteOfCreatePersistRestoresThePfAndEtc) {
  int sysfs_writes = 0, file_changes = 0;
  {
    Host probe;
    ASSERT_EQ(probe.cli(kCreate).status, 0);
    sysfs_writes = probe.k->write_count();
    file_changes = probe.k->file_changes();
  }
  // autoprobe, numvfs, 7 x (override, probe)
  ASSERT_EQ(sysfs_writes, 16);
  ASSERT_GE(file_changes, 4);
  std::vector<std::pair<std::string, FakeKernel::Fault>> faults = {
      {"EIO", {EIO, false, false}},
      {"short write", {EIO, true, false}},
      {"EBUSY after acting", {EBUSY, false, true}},
  };
  int runs = 0;
  // vfio-pci loaded before: a module load is not undone (bind's rule), the rest must be.
  auto host = [] {
    auto h = std::make_unique<Host>();
    h->k->register_driver("vfio-pci");
    return h;
  };
  auto check = [&](Host& h, const std::string& before, bool sysfs) {
    auto r = h.cli(kCreate);
    ++runs;
    EXPECT_NE(r.status, 0);
    if (r.err.find("run `pcipass recover` to finish") != std::string::npos) {
      // Only the journal's removal failed: every change is made and recorded; recover ends it.
      h.attach();
      EXPECT_EQ(h.cli({"recover"}).status, 0);
      EXPECT_EQ(h.numvfs(), "7");
      EXPECT_TRUE(h.k->exists(kAssignmentsPath));
      return;
    }
    if (sysfs) {
      EXPECT_NE(r.err.find("rolled back"), std::string::npos) << r.err;
    }
    EXPECT_EQ(changed_lines(before, host_state(h.t)), "") << r.err;
    EXPECT_EQ(applied_sets(*h.k), 0u) << r.err;
    EXPECT_FALSE(h.k->exists(kAssignmentsPath));
  };
  for (const auto& [name, fault] : faults)
    for (int n = 1; n <= sysfs_writes; ++n) {
      SCOPED_TRACE(name + " at sysfs write " + std::to_string(n));
      auto h = host();
      std::string before = host_state(h->t);
      h->k->fail_write(n, fault);
      check(*h, before, true);
    }
  for (int n = 1; n <= file_changes; ++n) {
    SCOPED_TRACE("file change " + std::to_string(n));
    auto h = host();
    std::string before = host_state(h->t);
    h->k->fail_file_change(n);
    check(*h, before, false);
  }
  EXPECT_EQ(runs, 3 * sysfs_writes + file_changes);
}

TEST(SriovPersist, ApplyAfterARebootMakesAndBindsTheVfsAndTheSecondApplyWritesNothing) {
  Host first;
  ASSERT_EQ(first.cli(kCreate).status, 0);
  auto h = first.reboot();
  EXPECT_EQ(h->numvfs(), "0");
  auto r = h->cli({"apply", "--boot", "--json"});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["sriov"].size(), 1u);
  auto s = j["sriov"][0];
  EXPECT_EQ(s["result"], "configured");
  EXPECT_EQ(s["num_vfs_before"], 0);
  EXPECT_EQ(s["bound"], nlohmann::json(vf_addresses()));
  EXPECT_EQ(s["actual_ids"]["device"], "0010");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(h->numvfs(), "7");
  for (const auto& a : vf_addresses()) EXPECT_EQ(h->driver(a), "vfio-pci") << a;
  // Autoprobe off before the VFs exist, and no VF was ever on nvme: nothing unbound them.
  ASSERT_GE(h->k->writes().size(), 2u);
  EXPECT_EQ(h->k->writes()[0], kPf + "/sriov_drivers_autoprobe <- 0");
  EXPECT_EQ(h->k->writes()[1], kPf + "/sriov_numvfs <- 7");
  for (const auto& w : h->k->writes()) EXPECT_EQ(w.find("/driver/unbind"), std::string::npos) << w;
  EXPECT_EQ(h->loader->loaded, std::vector<std::string>{"vfio_pci"});

  int writes = h->k->write_count(), files = h->k->file_changes();
  auto again = h->cli({"apply", "--boot"});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.out, "0000:00:04.0 already has its 7 VFs as persisted\n");
  EXPECT_EQ(h->k->write_count(), writes);
  EXPECT_EQ(h->k->file_changes(), files);
}

TEST(SriovPersist, ApplyFromAnotherNonZeroCountGoesThroughZero) {
  Host first;
  ASSERT_EQ(first.cli(kCreate).status, 0);
  auto h = first.reboot();
  ASSERT_EQ(h->cli({"vf", "create", "00:04.0", "3"}).status, 0);
  h->attach();
  auto r = h->cli({"apply", "--boot"});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  EXPECT_EQ(r.out, "configured 0000:00:04.0: 7 VFs (was 3), 7 bound to vfio-pci\n");
  std::vector<std::string> w = h->k->writes();
  std::vector<std::string> numvfs;
  for (const auto& x : w)
    if (x.starts_with(kPf + "/sriov_numvfs")) numvfs.push_back(x);
  EXPECT_EQ(numvfs,
            (std::vector<std::string>{kPf + "/sriov_numvfs <- 0", kPf + "/sriov_numvfs <- 7"}));
  EXPECT_EQ(h->numvfs(), "7");
}

TEST(SriovPersist, AChangedCardIsReportedAndNotConfigured) {
  Host first;
  ASSERT_EQ(first.cli(kCreate).status, 0);
  auto h = first.reboot();
  std::string store = h->t.read(kAssignmentsPath);
  auto at = store.find("\"0010\"");
  ASSERT_NE(at, std::string::npos);
  store.replace(at, 6, "\"0011\"");
  h->t.file(kAssignmentsPath, store);
  auto r = h->cli({"apply", "--boot", "--json"});
  EXPECT_EQ(r.status, 1);
  auto s = nlohmann::json::parse(r.out)["sriov"][0];
  EXPECT_EQ(s["result"], "ids-differ");
  EXPECT_EQ(s["desired_ids"]["device"], "0011");
  EXPECT_EQ(s["actual_ids"]["device"], "0010");
  EXPECT_EQ(h->k->write_count(), 0);
  EXPECT_EQ(h->numvfs(), "0");
  auto text = h->cli({"apply", "--boot"});
  EXPECT_EQ(text.out,
            "0000:00:04.0 not configured: 0000:00:04.0 is persisted with 7 VFs as 1b36:0011, but "
            "the device there is 1b36:0010: the card was moved or swapped, so pcipass does not "
            "configure it\n"
            "      fix: if the card was taken out or changed, drop the PF's entry from the "
            "\"sriov\" list of /etc/pcipass/assignments.json (or run `pcipass vf remove --persist "
            "0000:00:04.0` while it is there)\n");
}

TEST(SriovPersist, AnAbsentPfIsReported) {
  Host first;
  ASSERT_EQ(first.cli(kCreate).status, 0);
  auto h = first.reboot();
  std::string store = h->t.read(kAssignmentsPath);
  auto at = store.find("\"pf\": \"0000:00:04.0\"");
  ASSERT_NE(at, std::string::npos);
  store.replace(at, 20, "\"pf\": \"0000:00:09.0\"");
  h->t.file(kAssignmentsPath, store);
  auto r = h->cli({"apply", "--boot", "--json"});
  EXPECT_EQ(r.status, 1);
  auto s = nlohmann::json::parse(r.out)["sriov"][0];
  EXPECT_EQ(s["result"], "absent");
  EXPECT_EQ(s["message"], "0000:00:09.0 is persisted with 7 VFs but no device is there");
  EXPECT_EQ(h->k->write_count(), 0);
}

// A PF whose driver is not loaded at boot: its module is loaded by modalias through the loader
// port; when the PF still has no driver (or the load fails) it is reported, never skipped.
TEST(SriovPersist, APfWithoutADriverGetsItsModuleByModaliasOrIsReported) {
  Host first;
  ASSERT_EQ(first.cli(kCreate).status, 0);
  const std::string alias = "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02";
  for (bool fail : {false, true}) {
    SCOPED_TRACE(fail ? "the load fails" : "the module loads");
    auto h = first.reboot();
    h->t.file(kBus + "/0000:00:04.0/modalias", alias + "\n");
    ASSERT_TRUE(h->k->write(kPf + "/driver/unbind", "0000:00:04.0"));
    h->attach();
    h->loader->fail = fail;
    auto r = h->cli({"apply", "--boot", "--json"});
    EXPECT_EQ(r.status, 1);
    auto s = nlohmann::json::parse(r.out)["sriov"][0];
    EXPECT_EQ(s["result"], "failed");
    EXPECT_EQ(s["pf_driver_before"], nullptr);
    EXPECT_EQ(s["module_loaded"], alias);
    EXPECT_EQ(h->loader->loaded, std::vector<std::string>{alias});
    std::string msg = s["message"];
    if (fail)
      EXPECT_TRUE(
          msg.starts_with("0000:00:04.0 has no driver, and loading the module for its "
                          "modalias " +
                          alias + " failed: "))
          << msg;
    else
      EXPECT_EQ(msg, "0000:00:04.0 still has no driver after the module for its modalias " + alias +
                         " was loaded: the kernel makes a PF's VFs only through its driver");
    EXPECT_EQ(h->k->write_count(), 0);
  }
}

TEST(SriovPersist, RemovePersistDropsTheEntryAndNothingComesBack) {
  Host h;
  ASSERT_EQ(h.cli(kCreate).status, 0);
  h.attach();
  auto r = h.cli({"vf", "remove", "00:04.0", "--persist"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("removed 0000:00:04.0 from /etc/pcipass/assignments.json"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(h.numvfs(), "0");
  EXPECT_FALSE(h.store().contains("sriov"));
  auto booted = h.reboot();
  auto a = booted->cli({"apply", "--boot"});
  EXPECT_EQ(a.status, 0);
  EXPECT_EQ(a.out, "nothing persisted (/etc/pcipass/assignments.json lists no device)\n");
  EXPECT_EQ(booted->k->write_count(), 0);
  // Without VFs on the host the entry is still dropped (only the file changes).
  Host other;
  ASSERT_EQ(other.cli(kCreate).status, 0);
  ASSERT_EQ(other.cli({"vf", "remove", "00:04.0"}).status, 0);
  other.attach();
  auto only_file = other.cli({"vf", "remove", "00:04.0", "--persist"});
  ASSERT_EQ(only_file.status, 0) << only_file.err;
  EXPECT_EQ(other.k->write_count(), 0);
  EXPECT_FALSE(other.store().contains("sriov"));
}

TEST(SriovPersist, AFaultAtEveryFileChangeOfRemovePersistKeepsTheVfsAndTheEntry) {
  for (int n = 1;; ++n) {
    SCOPED_TRACE("write " + std::to_string(n));
    Host h;
    ASSERT_EQ(h.cli(kCreate).status, 0);
    h.attach();
    std::string before = host_state(h.t);
    h.k->fail_write(n, {EIO, false, false});
    auto r = h.cli({"vf", "remove", "00:04.0", "--persist"});
    if (r.status == 0) {
      EXPECT_GT(n, 14);  // 7 x (override, unbind) + numvfs
      break;
    }
    EXPECT_EQ(changed_lines(before, host_state(h.t)), "") << r.err;
  }
}

TEST(SriovPersistStore, EveryMalformedSriovFieldIsRefusedWithTheFileTheEntryAndTheFix) {
  auto with = [](const std::string& entry) {
    return "{\"schema\": \"pcipass.assignments/1\", \"devices\": [], \"sriov\": [" + entry + "]}";
  };
  const std::string good =
      "\"pf\": \"0000:00:04.0\", \"vendor\": \"1b36\", \"device\": \"0010\", "
      "\"drivers_autoprobe\": "
      "false, \"driver\": \"vfio-pci\", \"vfs\": [\"0000:00:04.1\"]";
  auto ok = persist::parse_assignments(with("{" + good + ", \"num_vfs\": 1, \"x\": 1}"), "F");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  ASSERT_EQ(ok->sriov.size(), 1u);
  EXPECT_EQ(ok->sriov[0].vfs[0].str(), "0000:00:04.1");
  // Unknown keys stay when it is written back.
  EXPECT_NE(persist::render_assignments(*ok).find("\"x\": 1"), std::string::npos);
  auto bad = persist::parse_assignments(with("{" + good + ", \"num_vfs\": 0}"), "F");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "F is damaged: sriov entry 0 (0000:00:04.0): num_vfs is 0");
  EXPECT_EQ(bad.error().fix,
            "write the number of VFs as a number from 1 to 65535; or remove the entry from F "
            "(its VFs are then not made at boot) and run `pcipass vf create --persist` for it "
            "again");
  auto twice = persist::parse_assignments(
      with("{" + good + ", \"num_vfs\": 1}, {" + good + ", \"num_vfs\": 2}"), "F");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().message,
            "F is damaged: sriov entry 1 (0000:00:04.0): pf is listed twice");
  auto no_driver = persist::parse_assignments(
      with("{\"pf\": \"0000:00:04.0\", \"vendor\": \"1b36\", \"device\": \"0010\", "
           "\"drivers_autoprobe\": true, \"driver\": null, \"vfs\": [\"0000:00:04.1\"], "
           "\"num_vfs\": 1}"),
      "F");
  ASSERT_FALSE(no_driver.ok());
  EXPECT_EQ(no_driver.error().message,
            "F is damaged: sriov entry 0 (0000:00:04.0): vfs and driver disagree: VFs are listed "
            "only with a driver");
  auto addr = persist::parse_assignments(
      with("{\"pf\": \"4.0\", \"vendor\": \"1b36\", \"device\": \"0010\", \"num_vfs\": 1, "
           "\"drivers_autoprobe\": true, \"driver\": null, \"vfs\": []}"),
      "F");
  ASSERT_FALSE(addr.ok());
  EXPECT_EQ(addr.error().message,
            "F is damaged: sriov entry 0 (4.0): pf is not a PCI address in the kernel's form "
            "(0000:01:00.0)");
}

}  // namespace
}  // namespace pcipass::test
