// The runtime journal (pcipass.journal/2) records every runtime change, sysfs attribute writes as
// well as device moves, before the first write: a fault at every write rolls all of it back, and
// `recover` after a crash at every write puts every attribute and every device back. A journal/1
// left by an older pcipass is still recovered.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "assign/assign.h"
#include "cli_harness.h"
#include "fake_kernel.h"

namespace pcipass::test {
namespace {

using change::Change;

const std::string kNic = "/sys/bus/pci/devices/0000:00:03.0";
const std::string kAudio = "/sys/bus/pci/devices/0000:01:00.1";
const std::string kNicDir = "/sys/devices/pci0000:00/0000:00:03.0";

PciAddress addr(const std::string& s) {
  return parse_address(s).value();
}

// The tree without pcipass's own files under /run (the lock stays after a run).
std::string host_state(const TempTree& t) {
  std::string out;
  std::istringstream in(t.state());
  for (std::string line; std::getline(in, line);)
    if (!line.starts_with("/run")) out += line + "\n";
  return out;
}

// The same once a kernel double was made over it (it adds its drivers' files).
std::string host_state(const FakeKernel&, const TempTree& t) {
  return host_state(t);
}

// Attributes around a device move: reset_method and sriov_numvfs of the NIC (written before and
// after it moves to vfio-pci) and the audio function's driver_override.
std::vector<Change> mixed_plan() {
  return {
      Change::attribute(kNic + "/reset_method", "bus"),
      Change::device_move(addr("0000:00:03.0"), {"vfio-pci", "vfio-pci"}, change::Procedure::kBind),
      Change::attribute(kNic + "/sriov_numvfs", "4"),
      Change::attribute(kAudio + "/driver_override", "pci-stub")};
}

class RuntimeJournal : public ::testing::Test {
 protected:
  void SetUp() override {
    env.sleep_ms = [](int) {};
    env.node_wait_ms = 100;
  }
  // A fresh sample host with the NIC's extra attributes and vfio-pci loaded.
  static void host(TempTree& t) {
    sample_host(t);
    t.file(kNicDir + "/reset_method", "flr bus\n");
    t.file(kNicDir + "/sriov_numvfs", "0\n");
  }
  static std::unique_ptr<FakeKernel> kernel(TempTree& t) {
    auto k = std::make_unique<FakeKernel>(t);
    sample_natives(*k);
    k->register_driver("vfio-pci");
    return k;
  }
  int clean_writes() {
    TempTree t;
    host(t);
    auto k = kernel(t);
    auto plan = mixed_plan();
    auto r = assign::apply_runtime(*k, plan, env, false);
    EXPECT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(t.read(kNicDir + "/sriov_numvfs"), "4\n");
    EXPECT_EQ(t.read(kNicDir + "/reset_method"), "bus\n");
    EXPECT_FALSE(k->exists("/run/pcipass/journal.json"));
    return k->write_count();
  }
  assign::Environment env;
};

TEST_F(RuntimeJournal, EveryAttributeIsJournaledBeforeTheFirstWrite) {
  TempTree t;
  host(t);
  auto k = kernel(t);
  k->crash_after(1);  // dies after the first sysfs write: the journal was written before it
  auto plan = mixed_plan();
  ASSERT_FALSE(assign::apply_runtime(*k, plan, env, false).ok());
  auto j = nlohmann::json::parse(t.read("/run/pcipass/journal.json"));
  EXPECT_EQ(j["schema"], "pcipass.journal/2");
  EXPECT_EQ(j["operation"], "write");
  ASSERT_EQ(j["changes"].size(), 4u);
  EXPECT_EQ(j["changes"][0], nlohmann::json({{"kind", "attribute"},
                                             {"path", kNic + "/reset_method"},
                                             {"before", "flr bus"},
                                             {"after", "bus"}}));
  EXPECT_EQ(j["changes"][1]["kind"], "device");
  EXPECT_EQ(j["changes"][1]["before"]["driver"], "e1000e");
  EXPECT_EQ(j["changes"][1]["iommu_group"], 4);
  EXPECT_EQ(j["changes"][2]["before"], "0");
  EXPECT_EQ(j["changes"][3]["before"], "(null)");
}

TEST_F(RuntimeJournal, AFaultAtEveryWriteRollsAttributesAndDevicesBack) {
  const int writes = clean_writes();
  ASSERT_EQ(writes, 6);  // reset_method, override, unbind, drivers_probe, sriov_numvfs, override
  for (int n = 1; n <= writes; ++n) {
    SCOPED_TRACE("fault at write " + std::to_string(n));
    TempTree t;
    host(t);
    auto k = kernel(t);
    std::string before = host_state(t);
    k->fail_write(n, EIO);
    auto plan = mixed_plan();
    auto r = assign::apply_runtime(*k, plan, env, false);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().fix.find("rolled back"), std::string::npos) << r.error().fix;
    EXPECT_EQ(host_state(t), before);
    EXPECT_FALSE(k->exists("/run/pcipass/journal.json"));
  }
}

TEST_F(RuntimeJournal, RecoverAfterACrashAtEveryWriteRestoresAttributesAndDevices) {
  const int writes = clean_writes();
  for (int n = 1; n <= writes; ++n) {
    SCOPED_TRACE("crash after write " + std::to_string(n));
    TempTree t;
    host(t);
    std::string before = host_state(*kernel(t), t);
    {
      auto k = kernel(t);
      k->crash_after(n);
      auto plan = mixed_plan();
      ASSERT_FALSE(assign::apply_runtime(*k, plan, env, false).ok());
      ASSERT_TRUE(k->exists("/run/pcipass/journal.json"));
      ASSERT_NE(host_state(t), before);
      // Nothing else changes the host until it is recovered.
      auto again = FakeKernel(t);
      auto other = mixed_plan();
      auto blocked = assign::apply_runtime(again, other, env, false);
      ASSERT_FALSE(blocked.ok());
      EXPECT_EQ(blocked.error().message,
                "an interrupted pcipass run left a journal (/run/pcipass/journal.json: write of 1 "
                "device and 3 attributes)");
    }
    auto k = kernel(t);
    auto rec = assign::recover(*k, env);
    ASSERT_TRUE(rec.ok()) << rec.error().message;
    EXPECT_TRUE(rec->pending);
    EXPECT_EQ(rec->attributes.size(), 3u);
    EXPECT_EQ(host_state(t), before);
    // An unset driver_override reads "(null)" but is cleared with "\n": the kernel would take
    // "(null)" as the name of a driver.
    for (const auto& w : k->writes()) EXPECT_EQ(w.find("<- (null)"), std::string::npos) << w;
    EXPECT_FALSE(k->exists("/run/pcipass/journal.json"));
    auto twice = assign::recover(*k, env);
    ASSERT_TRUE(twice.ok());
    EXPECT_FALSE(twice->pending);
  }
}

TEST_F(RuntimeJournal, RecoverSaysWhatEachAttributeIsNow) {
  TempTree t;
  host(t);
  {
    auto k = kernel(t);
    k->crash_after(5);
    auto plan = mixed_plan();
    ASSERT_FALSE(assign::apply_runtime(*k, plan, env, false).ok());
  }
  auto k = kernel(t);
  cli::Injected injected;
  injected.fs = k.get();
  injected.env = env;
  auto status = run_cli({"--root", t.root(), "--json", "status"}, &injected);
  EXPECT_EQ(status.status, 1);
  auto s = nlohmann::json::parse(status.out);
  EXPECT_EQ(s["pending"]["operation"], "write");
  EXPECT_EQ(s["pending"]["devices"], nlohmann::json({"0000:00:03.0"}));
  EXPECT_EQ(s["pending"]["attributes"],
            nlohmann::json(
                {kNic + "/reset_method", kNic + "/sriov_numvfs", kAudio + "/driver_override"}));
  auto r = run_cli({"--root", t.root(), "recover"}, &injected);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "rolled back an interrupted write:\n"
            "  0000:00:03.0 is on e1000e\n"
            "  " +
                kNic + "/reset_method is flr bus\n  " + kNic + "/sriov_numvfs is 0\n  " + kAudio +
                "/driver_override is (null)\n");
}

TEST_F(RuntimeJournal, DryRunShowsTheJournalAndWritesNothing) {
  TempTree t;
  host(t);
  auto k = kernel(t);
  std::string before = t.state();
  auto plan = mixed_plan();
  auto r = assign::apply_runtime(*k, plan, env, true);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(t.state(), before);
  EXPECT_EQ(k->write_count(), 0);
  ASSERT_GE(r->size(), 3u);
  EXPECT_EQ(r->front().text(), "journal /run/pcipass/journal.json (writing)");
  EXPECT_EQ((*r)[1].text(), "write " + kNic + "/reset_method: bus");
}

// A journal written by an older pcipass (devices only) is still rolled back.
TEST_F(RuntimeJournal, AJournalOneFromAnOlderPcipassIsRecovered) {
  TempTree t;
  host(t);
  std::string before = host_state(*kernel(t), t);
  {
    auto k = kernel(t);
    k->crash_after(3);  // the NIC is on vfio-pci when it dies
    assign::BindRequest req{{addr("0000:00:03.0")}, "vfio-pci", false, false, false, ""};
    ASSERT_FALSE(assign::bind(*k, req, env).ok());
  }
  ASSERT_NE(host_state(t), before);
  t.file("/run/pcipass/journal.json", R"({
  "schema": "pcipass.journal/1", "operation": "bind", "driver": "vfio-pci", "owner": "",
  "pid": 77, "phase": "writing",
  "devices": [{"address": "0000:00:03.0", "iommu_group": 4,
               "before": {"driver": "e1000e", "driver_override": null},
               "after": {"driver": "vfio-pci", "driver_override": "vfio-pci"}}]
})");
  auto k = kernel(t);
  auto rec = assign::recover(*k, env);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_TRUE(rec->pending);
  EXPECT_EQ(host_state(t), before);
  EXPECT_FALSE(k->exists("/run/pcipass/journal.json"));
}

TEST(JournalAttributePath, OnlyAPlainAttributeOfADevice) {
  EXPECT_TRUE(assign::journal_attribute_path(kNic + "/sriov_numvfs"));
  for (std::string bad : std::vector<std::string>{
           "/sys/bus/pci/devices/0000:00:03.0", "/sys/bus/pci/devices/0000:00:03.0/",
           "/sys/bus/pci/devices/0000:00:03.0/../../../../tmp/x",
           "/sys/bus/pci/devices/0000:00:03.0/..", "/sys/bus/pci/devices/00:03.0/sriov_numvfs",
           "/sys/bus/pci/devices/0000:00:03.0/power/control", "/tmp/sriov_numvfs",
           "/sys/bus/pci/devices/0000:00:03.0/a\x1b[2Jb", "/sys/bus/pci/drivers_probe"})
    EXPECT_FALSE(assign::journal_attribute_path(bad)) << bad;
}

}  // namespace
}  // namespace pcipass::test
