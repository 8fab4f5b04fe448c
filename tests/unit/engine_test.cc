// The change engine: dry runs render each change (diff, argv, write) and write nothing; a failed
// change rolls back what came before it, programs included; a journal read back is untrusted.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "assign/assign.h"
#include "change/executor.h"
#include "change/store.h"
#include "change/validate.h"
#include "cli_harness.h"
#include "deny_fs.h"
#include "fake_kernel.h"
#include "fake_runner.h"
#include "fault_fs.h"
#include "sample_double.h"

namespace pcipass::test {
namespace {

using change::Change;

Invocation argv(std::vector<std::string> a) {
  Invocation i;
  i.argv = std::move(a);
  return i;
}

// The argv of every program the fake ran, as --dry-run shows them.
std::vector<std::string> ran(const FakeRunner& r) {
  std::vector<std::string> out;
  for (const auto& c : r.calls) out.push_back(c.text());
  return out;
}

TEST(Engine, DryRunRendersEveryChangeAndWritesNothing) {
  TempTree t;
  t.file("/etc/a.conf", "one\ntwo\n");
  t.file("/sys/x/attr", "0\n");
  FaultFs fs(t);
  FakeRunner runner;
  std::vector<Change> plan = {
      Change::file_write("/etc/a.conf", "one\nthree\n"), Change::file_write("/etc/new.conf", "x\n"),
      Change::attribute("/sys/x/attr", "8"), Change::program_run(argv({"update-grub", "a b"}))};
  change::Executor ex(fs, {nullptr, &runner, nullptr, nullptr}, true);
  ASSERT_TRUE(ex.capture(plan).ok());
  ASSERT_TRUE(ex.run(plan, nullptr).ok());
  EXPECT_EQ(fs.changes(), 0);
  EXPECT_TRUE(runner.calls.empty());
  ASSERT_EQ(ex.steps.size(), 4u);
  EXPECT_EQ(ex.steps[0].text(), "replace /etc/a.conf");
  EXPECT_EQ(ex.steps[0].diff,
            "--- a/etc/a.conf\n+++ b/etc/a.conf\n@@ -1,2 +1,2 @@\n one\n-two\n+three\n");
  EXPECT_EQ(ex.steps[1].diff, "--- /dev/null\n+++ b/etc/new.conf\n@@ -0,0 +1 @@\n+x\n");
  EXPECT_EQ(ex.steps[2].text(), "write /sys/x/attr: 8");
  EXPECT_EQ(ex.steps[3].text(), "run update-grub 'a b'");
  EXPECT_EQ(t.read("/etc/a.conf"), "one\ntwo\n");
}

// A recorder that only counts, for plans without a journal.
// An attribute whose old value cannot be read is not changed: a rollback or undo could not put
// it back (before, capture left it unknown and undo skipped it). One that is absent has no old
// value; its write will say so.
TEST(Engine, AnAttributeThatCannotBeReadIsNotChanged) {
  TempTree t;
  t.file("/sys/x/attr", "1\n");
  DenyFs fs(t, {"/sys/x/attr"});
  change::Executor ex(fs, {nullptr, nullptr, nullptr, nullptr}, false);
  std::vector<Change> plan = {Change::attribute("/sys/x/gone", "1"),
                              Change::attribute("/sys/x/attr", "0")};
  auto s = ex.capture(plan);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "cannot read /sys/x/attr before changing it: open /sys/x/attr: Permission denied");
  EXPECT_EQ(s.error().fix,
            "pcipass changes only what it can put back: run it as root; if it is, the device may "
            "have stopped answering (see `dmesg`)");
  EXPECT_EQ(t.read("/sys/x/attr"), "1\n");
  std::vector<Change> absent = {Change::attribute("/sys/x/gone", "1")};
  ASSERT_TRUE(ex.capture(absent).ok());
  EXPECT_FALSE(absent[0].before.attribute);
}

// The same for a device's driver_override: read as none, a rollback or undo would clear the
// override the device had.
TEST(Engine, ADeviceWhoseOverrideCannotBeReadIsNotMoved) {
  TempTree t;
  t.file("/sys/bus/pci/devices/0000:01:00.0/driver_override", "vfio-pci\n");
  DenyFs fs(t, {"/sys/bus/pci/devices/0000:01:00.0/driver_override"});
  change::Executor ex(fs, {nullptr, nullptr, nullptr, nullptr}, false);
  auto a = parse_address("0000:01:00.0").value();
  std::vector<Change> plan = {
      Change::device_move(a, {"vfio-pci", "vfio-pci"}, change::Procedure::kBind)};
  auto s = ex.capture(plan);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "cannot read /sys/bus/pci/devices/0000:01:00.0/driver_override before changing it: "
            "open /sys/bus/pci/devices/0000:01:00.0/driver_override: Permission denied");
}

class CountingRecord : public change::Record {
 public:
  Status begin(std::vector<change::Step>&, bool) override {
    ++begun;
    return {};
  }
  Status discard() override {
    ++discarded;
    return {};
  }
  Texts texts() const override { return {"all undone", "not discarded", "kept"}; }
  int begun = 0, discarded = 0;
};

TEST(Engine, AFailedProgramRollsBackTheFilesBeforeIt) {
  TempTree t;
  t.file("/etc/a.conf", "one\n");
  FaultFs fs(t);
  FakeRunner runner;
  runner.on({"update-grub"}, FakeRunner::failure(1, "it went wrong\n"));
  std::vector<Change> plan = {
      Change::file_write("/etc/a.conf", "two\n"),
      Change::program_run(argv({"mkinitramfs"}), argv({"mkinitramfs", "--undo"})),
      Change::file_write("/etc/b.conf", "new\n"), Change::program_run(argv({"update-grub"}))};
  change::Executor ex(fs, {nullptr, &runner, nullptr, nullptr}, false);
  ASSERT_TRUE(ex.capture(plan).ok());
  CountingRecord record;
  Status st = ex.run(plan, &record);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message,
            "update-grub exited with status 1; its error output ends:\nit went wrong");
  EXPECT_EQ(st.error().fix.find("all undone") == std::string::npos, false) << st.error().fix;
  EXPECT_EQ(t.read("/etc/a.conf"), "one\n");
  EXPECT_FALSE(fs.exists("/etc/b.conf"));
  EXPECT_EQ(ran(runner),
            (std::vector<std::string>{"mkinitramfs", "update-grub", "mkinitramfs --undo"}));
  EXPECT_EQ(record.begun, 1);
  EXPECT_EQ(record.discarded, 1);
}

// A regeneration that dropped what the plan wrote (a verify that fails) rolls everything back,
// and the regenerating program runs again only once its input file is back: update-grub's undo
// must read the old /etc/default/grub, or grub.cfg keeps the parameter that was rolled back.
TEST(Engine, AFailedVerifyRollsBackAndRegeneratesFromTheRestoredFiles) {
  TempTree t;
  t.file("/etc/default/grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n");
  t.file("/boot/grub/grub.cfg", "linux /vmlinuz quiet\n");
  FaultFs fs(t);
  FakeRunner runner;
  std::vector<std::string> input_seen;
  runner.observe = [&](const Invocation&) { input_seen.push_back(t.read("/etc/default/grub")); };
  int verified = 0;
  std::vector<Change> plan = {
      Change::file_write("/etc/default/grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet iommu\"\n"),
      Change::program_run(argv({"update-grub"}), argv({"update-grub"})),
      Change::check("/boot/grub/grub.cfg", "the default entry has iommu",
                    [&](const HostFs& f, CommandRunner* r) -> Status {
                      ++verified;
                      EXPECT_EQ(r, &runner);
                      auto cfg = TRY(f.read("/boot/grub/grub.cfg"));
                      if (cfg.find("iommu") == std::string::npos)
                        return Error::state("iommu is not in grub.cfg", "");
                      return {};
                    })};
  change::Executor ex(fs, {nullptr, &runner, nullptr, nullptr}, false);
  ASSERT_TRUE(ex.capture(plan).ok());
  CountingRecord record;
  Status st = ex.run(plan, &record);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "iommu is not in grub.cfg");
  EXPECT_EQ(verified, 1);
  EXPECT_EQ(t.read("/etc/default/grub"), "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n");
  EXPECT_EQ(input_seen, (std::vector<std::string>{"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet iommu\"\n",
                                                  "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"}));
  EXPECT_EQ(record.discarded, 1);
  std::vector<std::string> kinds;
  for (const auto& s : ex.steps) kinds.push_back(step_kind_id(s.kind));
  EXPECT_EQ(kinds, (std::vector<std::string>{"file", "run", "verify", "file", "run"}))
      << ::testing::PrintToString(kinds);
}

// A dry run shows the verification and runs nothing.
TEST(Engine, ADryRunShowsTheVerifyWithoutRunningIt) {
  TempTree t;
  FaultFs fs(t);
  int verified = 0;
  std::vector<Change> plan = {Change::check("/boot/grub/grub.cfg", "has iommu",
                                            [&](const HostFs&, CommandRunner*) -> Status {
                                              ++verified;
                                              return {};
                                            })};
  change::Executor ex(fs, {}, true);
  ASSERT_TRUE(ex.capture(plan).ok());
  ASSERT_TRUE(ex.run(plan, nullptr).ok());
  EXPECT_EQ(verified, 0);
  ASSERT_EQ(ex.steps.size(), 1u);
  EXPECT_EQ(ex.steps[0].text(), "verify /boot/grub/grub.cfg: has iommu");
}

TEST(Engine, DriverNamesAndPathsArePlain) {
  EXPECT_TRUE(change::plain_driver_name("vfio-pci"));
  EXPECT_TRUE(change::plain_driver_name("snd_hda_intel"));
  for (std::string bad : std::vector<std::string>{"", ".", "..", "../../../../tmp", "a/b",
                                                  std::string(65, 'a'), "a b"})
    EXPECT_FALSE(change::plain_driver_name(bad)) << bad;
  EXPECT_TRUE(change::path_under("/etc/modules-load.d/pcipass.conf", {"/etc/"}));
  for (std::string bad : std::vector<std::string>{"etc/x", "/etc/../root/x", "/etc//x", "/etc/./x",
                                                  "/etc/x/", "/root/x", "/etcx/y"})
    EXPECT_FALSE(change::path_under(bad, {"/etc/"})) << bad;
}

// --- the journal read back: a table of damage, each refused with nothing written.

const std::string kValidJournal = R"({
  "schema": "pcipass.journal/1", "operation": "bind", "driver": "vfio-pci", "owner": "",
  "pid": 77, "phase": "writing",
  "devices": [{"address": "0000:00:03.0", "iommu_group": 4,
               "before": {"driver": "e1000e", "driver_override": null},
               "after": {"driver": "vfio-pci", "driver_override": "vfio-pci"}}]
})";

std::string damage(std::string from, const std::string& what, const std::string& with) {
  auto at = from.find(what);
  EXPECT_NE(at, std::string::npos) << what;
  return from.replace(at, what.size(), with);
}

struct Damaged {
  const char* name;
  std::string text;
  const char* says;  // part of the message
};

// The same in journal/2: a device and an attribute in `changes`.
const std::string kValidJournalV2 = R"({
  "schema": "pcipass.journal/2", "operation": "write", "driver": "", "owner": "",
  "pid": 77, "phase": "writing",
  "changes": [{"kind": "device", "address": "0000:00:03.0", "iommu_group": 4,
               "before": {"driver": "e1000e", "driver_override": null},
               "after": {"driver": "vfio-pci", "driver_override": "vfio-pci"}},
              {"kind": "attribute", "path": "/sys/bus/pci/devices/0000:00:03.0/sriov_numvfs",
               "before": "0", "after": "4"}]
})";

std::vector<Damaged> damaged_journals_v2() {
  const std::string& v = kValidJournalV2;
  const std::string attr = "/sys/bus/pci/devices/0000:00:03.0/sriov_numvfs";
  return {
      {"v2 missing device before",
       damage(v, R"("before": {"driver": "e1000e", "driver_override": null},)", ""),
       "before is missing"},
      {"v2 missing attribute before", damage(v, R"("before": "0",)", ""), "before is missing"},
      {"v2 attribute before a number", damage(v, R"("before": "0")", R"("before": 0)"),
       "before is not a string"},
      {"v2 attribute after null", damage(v, R"("after": "4")", R"("after": null)"),
       "after is not a string"},
      {"v2 attribute value with an escape",
       damage(v, R"("after": "4")", "\"after\": \"4\\u001b[2J\""),
       "after is not an attribute value"},
      {"v2 attribute climbing out",
       damage(v, attr, "/sys/bus/pci/devices/0000:00:03.0/../../../../tmp/x"),
       "path is not /sys/bus/pci/devices/ADDRESS/NAME"},
      {"v2 attribute of another tree", damage(v, attr, "/etc/shadow"), "path is not"},
      {"v2 attribute of a bad address", damage(v, attr, "/sys/bus/pci/devices/zz/sriov_numvfs"),
       "path is not"},
      {"v2 attribute name with a newline",
       damage(v, attr, "/sys/bus/pci/devices/0000:00:03.0/sriov\\u000anumvfs"), "path is not"},
      {"v2 driver climbing out",
       damage(v, R"("driver": "e1000e")", R"("driver": "../../../../tmp")"),
       "'../../../../tmp' is not a driver name"},
      {"v2 address zz", damage(v, "\"0000:00:03.0\", \"iommu", "\"zz\", \"iommu"),
       "'zz' is not a PCI address"},
      {"v2 unknown kind", damage(v, R"("kind": "attribute")", R"("kind": "file")"),
       "kind 'file' is not device, attribute, mdev or vf"},
      {"v2 kind missing", damage(v, R"("kind": "attribute", )", ""), "kind is missing"},
      {"v2 changes not a list", damage(v, R"("changes": [)", R"("changes": 5, "x": [)"),
       "changes is not a list"},
      {"v2 pid beyond 2^30", damage(v, R"("pid": 77)", R"("pid": 99999999999)"), "outside"},
      {"v2 pid -1", damage(v, R"("pid": 77)", R"("pid": -1)"), "outside"},
      {"v2 pid beyond 64 bits", damage(v, R"("pid": 77)", R"("pid": 18446744073709551616)"),
       "is not an integer"},
      {"v2 group 2^40", damage(v, R"("iommu_group": 4)", R"("iommu_group": 1099511627776)"),
       "outside"},
      {"v2 write marked committed", damage(v, R"("phase": "writing")", R"("phase": "committed")"),
       "phase 'committed' is not a phase of a write"},
      {"v2 unknown operation", damage(v, R"("operation": "write")", R"("operation": "rm -rf")"),
       "operation 'rm -rf' is not"},
      {"v2 truncated", v.substr(0, v.size() - 20), "is damaged"},
      {"version 3", damage(v, "pcipass.journal/2", "pcipass.journal/3"),
       "schema is pcipass.journal/3, not pcipass.journal/2"},
      {"schema a number", damage(v, R"("pcipass.journal/2")", "2"), "schema is not a string"},
  };
}

std::vector<Damaged> damaged_journals() {
  const std::string& v = kValidJournal;
  auto v2 = damaged_journals_v2();
  std::vector<Damaged> v1 = {
      {"missing before",
       damage(v, R"("before": {"driver": "e1000e", "driver_override": null},)", ""),
       "before is missing"},
      {"driver climbing out", damage(v, R"("driver": "e1000e")", R"("driver": "../../../../tmp")"),
       "'../../../../tmp' is not a driver name"},
      {"override with a slash",
       damage(v, R"("driver_override": "vfio-pci")", R"("driver_override": "vfio/pci")"),
       "is not a driver name"},
      {"address zz", damage(v, "0000:00:03.0", "zz"), "'zz' is not a PCI address"},
      {"group -5", damage(v, R"("iommu_group": 4)", R"("iommu_group": -5)"), "outside"},
      {"group 1e20", damage(v, R"("iommu_group": 4)", R"("iommu_group": 1e20)"),
       "is not an integer"},
      {"group \"3\"", damage(v, R"("iommu_group": 4)", R"("iommu_group": "3")"),
       "is not an integer"},
      {"wrong schema", damage(v, "pcipass.journal/1", "pcipass.journal/9"),
       "schema is pcipass.journal/9"},
      {"unknown phase", damage(v, R"("phase": "writing")", R"("phase": "done")"), "phase"},
      {"truncated", v.substr(0, v.size() / 2), "is damaged"},
      {"not UTF-8", damage(v, R"("owner": "")", "\"owner\": \"\xff\xfe\""), "is damaged"},
      {"not an object", "[1, 2]", "is damaged"},
      {"empty", "", "is damaged"},
      {"v1 with changes, not devices", damage(v, R"("devices")", R"("changes")"),
       "devices is missing"},
  };
  v1.insert(v1.end(), v2.begin(), v2.end());
  return v1;
}

class DamagedJournal : public ::testing::Test, public SampleDouble {
 protected:
  void SetUp() override { start(); }
};

TEST_F(DamagedJournal, EveryCommandRefusesAndWritesNothing) {
  ASSERT_EQ(cli({"bind", "01:00.0", "--with-group"}).status, 0);
  for (const auto& d : damaged_journals()) {
    SCOPED_TRACE(d.name);
    t.file("/run/pcipass/journal.json", d.text);
    // The whole tree: every device, attribute, link and pcipass's own files.
    std::string before = t.state(), state = t.read("/run/pcipass/state.json");
    int writes = k->write_count();
    for (auto args : std::vector<std::vector<std::string>>{{"recover"},
                                                           {"status"},
                                                           {"release", "01:00.0", "--with-group"},
                                                           {"bind", "00:03.0"}}) {
      SCOPED_TRACE(args[0]);
      auto r = cli(args);
      EXPECT_EQ(r.status, 1);
      EXPECT_NE(r.err.find("error: /run/pcipass/journal.json is damaged"), std::string::npos)
          << r.err;
      EXPECT_NE(r.err.find(d.says), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("  fix: "), std::string::npos) << r.err;
      EXPECT_EQ(t.state(), before);
      EXPECT_EQ(k->write_count(), writes);
      EXPECT_EQ(t.read("/run/pcipass/journal.json"), d.text);
      EXPECT_EQ(t.read("/run/pcipass/state.json"), state);
    }
  }
}

TEST_F(DamagedJournal, TheValidTemplateIsAccepted) {
  auto j = assign::parse_journal(kValidJournal);
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->devices.at(0).before.driver, "e1000e");
  auto j2 = assign::parse_journal(kValidJournalV2);
  ASSERT_TRUE(j2.ok()) << j2.error().message;
  EXPECT_EQ(j2->attributes.at(0).before, "0");
  EXPECT_EQ(j2->attributes.at(0).seq, 1);
  // A null before is an attribute that could not be read: kept, not restored.
  auto j3 = assign::parse_journal(damage(kValidJournalV2, R"("before": "0")", R"("before": null)"));
  ASSERT_TRUE(j3.ok()) << j3.error().message;
  EXPECT_EQ(j3->attributes.at(0).before, std::nullopt);
}

TEST_F(DamagedJournal, ADamagedStateFileIsRefusedToo) {
  ASSERT_EQ(cli({"bind", "00:03.0"}).status, 0);
  std::string state = t.read("/run/pcipass/state.json");
  t.file("/run/pcipass/state.json", damage(state, "\"e1000e\"", "\"../e1000e\""));
  std::string before = k->snapshot();
  auto r = cli({"release", "00:03.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/run/pcipass/state.json is damaged: driver '../e1000e'"), std::string::npos)
      << r.err;
  EXPECT_EQ(k->snapshot(), before);
}

// --- manifests read back

TEST(Manifest, DamageIsRefused) {
  const std::string sha(64, 'a');
  const std::string valid = R"({"schema": "pcipass.changes/1", "id": "20261122-043512",
    "command": "setup --vfio", "time": 1795000000, "state": "applied",
    "files": [{"path": "/etc/modules-load.d/pcipass.conf", "before": {"absent": true},
               "after": {"absent": false, "sha256": ")" +
                            sha + R"("}}]})";
  ASSERT_TRUE(change::parse_manifest(valid, "m").ok());
  for (auto [what, with] : std::vector<std::pair<std::string, std::string>>{
           {"/etc/modules-load.d/pcipass.conf", "/etc/../root/.ssh/authorized_keys"},
           {"/etc/modules-load.d/pcipass.conf", "/root/x"},
           {"/etc/modules-load.d/pcipass.conf", "etc/x"},
           {"\"applied\"", "\"done\""},
           {"pcipass.changes/1", "pcipass.changes/2"},
           {"20261122-043512", "../../x"},
           {sha, "zz"},
           {"1795000000", "-1"},
           {"{\"absent\": true}", "{}"}}) {
    auto r = change::parse_manifest(damage(valid, what, with), "m");
    EXPECT_FALSE(r.ok()) << with;
    if (!r.ok()) {
      EXPECT_EQ(r.error().message.substr(0, 14), "m is damaged: ") << with;
    }
  }
}

}  // namespace
}  // namespace pcipass::test
