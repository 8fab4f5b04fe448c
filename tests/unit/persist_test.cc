// bind --persist, release --persist and apply against the sysfs double: the store's shape and
// validation, one transaction for the devices and the files (a fault at every write leaves the
// whole tree as it was), undo of the persist change set, a moved or swapped card refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "assign/assign.h"
#include "change/executor.h"
#include "change/store.h"
#include "cli_harness.h"
#include "fake_kernel.h"
#include "host_state.h"
#include "persist/persist.h"
#include "persist/unit_text.h"

namespace pcipass::test {
namespace {

using persist::kAssignmentsPath;

constexpr int64_t kNow = 1795000000;  // 2026-11-18 11:06:40 UTC
const std::string kSet = "20261118-110640";

PciAddress addr(const std::string& s) {
  return parse_address(s).value();
}

const std::string kNicStore =
    "{\n"
    "  \"schema\": \"pcipass.assignments/1\",\n"
    "  \"devices\": [\n"
    "    {\n"
    "      \"address\": \"0000:00:03.0\",\n"
    "      \"vendor\": \"8086\",\n"
    "      \"device\": \"10d3\",\n"
    "      \"subsystem_vendor\": \"0000\",\n"
    "      \"subsystem_device\": \"0000\",\n"
    "      \"driver\": \"vfio-pci\"\n"
    "    }\n"
    "  ]\n"
    "}\n";

class Persist : public ::testing::Test {
 public:
  void SetUp() override { reset(t); }
  // A fresh sample host in `tree`, and the double over it.
  void reset(TempTree& tree) {
    sample_host(tree);
    attach(tree);
  }
  // A new double (a new process) over the tree as it is.
  void attach(TempTree& tree) {
    k = std::make_unique<FakeKernel>(tree);
    sample_natives(*k);
    k->register_driver("vfio-pci");
    loader = std::make_unique<FakeLoader>(*k);
    env.loader = loader.get();
    env.sleep_ms = [](int) {};
    env.node_wait_ms = 100;
    env.process.now = [] { return kNow; };
    injected_.fs = k.get();
    injected_.env = env;
    injected_.process = process_at(kNow);
  }
  CliRun cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", t.root()});
    return run_cli(args, &injected_);
  }
  // A reboot: /run emptied, every device back on the driver the kernel probes first.
  void reboot() {
    t.remove("/run").dir("/run");
    const std::string bus = "/sys/devices/pci0000:00/";
    for (const auto& [dev, drv] : {std::pair{bus + "0000:00:03.0", "e1000e"},
                                   std::pair{bus + "0000:00:1c.0/0000:01:00.0", "nouveau"},
                                   std::pair{bus + "0000:00:1c.0/0000:01:00.1", "snd_hda_intel"}}) {
      std::string a = base_name(dev);
      t.remove(dev + "/driver");
      t.remove("/sys/bus/pci/drivers/vfio-pci/" + a);
      t.remove(std::string("/sys/bus/pci/drivers/") + drv + "/" + a);
      t.file(dev + "/driver_override", "(null)\n");
      t.link(dev + "/driver", std::string("/sys/bus/pci/drivers/") + drv);
      t.link(std::string("/sys/bus/pci/drivers/") + drv + "/" + a, dev);
    }
    t.remove("/dev/vfio/4").remove("/dev/vfio/3");
    attach(t);
  }

  TempTree t;
  std::unique_ptr<FakeKernel> k;
  std::unique_ptr<FakeLoader> loader;
  assign::Environment env;
  cli::Injected injected_;
};

// --- the store

TEST(PersistStore, RoundTripsOrderedByAddressAndKeepsUnknownKeys) {
  std::string text = R"({"schema": "pcipass.assignments/1", "comment": "mine", "devices": [
    {"address": "0000:02:00.0", "vendor": "1002", "device": "67df", "subsystem_vendor": "1da2",
     "subsystem_device": "e353", "driver": "pci-stub", "note": {"by": "admin"}},
    {"address": "0000:01:00.0", "vendor": "10de", "device": "1b80", "subsystem_vendor": "1043",
     "subsystem_device": "8591", "driver": "vfio-pci"}]})";
  auto a = persist::parse_assignments(text, kAssignmentsPath);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_EQ(a->devices.size(), 2u);
  EXPECT_EQ(a->devices[0].address.str(), "0000:01:00.0");
  EXPECT_EQ(a->devices[0].ids.subsystem_device, 0x8591);
  // An edit of another entry keeps the admin's keys.
  persist::Assignment third;
  third.address = addr("0000:03:00.0");
  third.ids = {0x8086, 0x10d3, 0, 0};
  third.driver = "vfio-pci";
  EXPECT_TRUE(a->put(third));
  EXPECT_FALSE(a->put(third));
  EXPECT_TRUE(a->erase(addr("0000:01:00.0")));
  EXPECT_FALSE(a->erase(addr("0000:01:00.0")));
  EXPECT_EQ(persist::render_assignments(*a),
            "{\n"
            "  \"schema\": \"pcipass.assignments/1\",\n"
            "  \"devices\": [\n"
            "    {\n"
            "      \"address\": \"0000:02:00.0\",\n"
            "      \"vendor\": \"1002\",\n"
            "      \"device\": \"67df\",\n"
            "      \"subsystem_vendor\": \"1da2\",\n"
            "      \"subsystem_device\": \"e353\",\n"
            "      \"driver\": \"pci-stub\",\n"
            "      \"note\": {\n"
            "        \"by\": \"admin\"\n"
            "      }\n"
            "    },\n"
            "    {\n"
            "      \"address\": \"0000:03:00.0\",\n"
            "      \"vendor\": \"8086\",\n"
            "      \"device\": \"10d3\",\n"
            "      \"subsystem_vendor\": \"0000\",\n"
            "      \"subsystem_device\": \"0000\",\n"
            "      \"driver\": \"vfio-pci\"\n"
            "    }\n"
            "  ],\n"
            "  \"comment\": \"mine\"\n"
            "}\n");
  auto again = persist::parse_assignments(persist::render_assignments(*a), kAssignmentsPath);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(persist::render_assignments(*again), persist::render_assignments(*a));
}

// Every field of a damaged store: an error naming the file, the entry and the field, a fix.
TEST(PersistStore, EveryMalformedFieldIsRefusedWithTheFileTheEntryAndTheFix) {
  const std::string ok_entry =
      R"("address": "0000:01:00.0", "vendor": "10de", "device": "1b80", )"
      R"("subsystem_vendor": "1043", "subsystem_device": "8591", "driver": "vfio-pci")";
  auto entry = [&](const std::string& from, const std::string& to) {
    std::string e = ok_entry;
    auto at = e.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    e.replace(at, from.size(), to);
    return R"({"schema": "pcipass.assignments/1", "devices": [{)" + e + "}]}";
  };
  struct Case {
    std::string name, text, expect;
  };
  std::vector<Case> cases = {
      {"truncated", R"({"schema": "pcipass.assignments/1", "devices": [)", "is damaged: "},
      {"not UTF-8", "{\"schema\": \"pcipass.assignments/1\xff\"}", "is damaged: "},
      {"not an object", "[]", "is damaged: "},
      {"no schema", R"({"devices": []})", "schema is missing"},
      {"other schema", R"({"schema": "pcipass.assignments/2", "devices": []})",
       "schema is pcipass.assignments/2, not pcipass.assignments/1"},
      {"no devices", R"({"schema": "pcipass.assignments/1"})", "devices is missing"},
      {"devices not a list", R"({"schema": "pcipass.assignments/1", "devices": {}})",
       "devices is not a list"},
      {"entry not an object", R"({"schema": "pcipass.assignments/1", "devices": [3]})",
       "entry 0: the entry is not an object"},
      {"no address", entry(R"("address": "0000:01:00.0", )", ""), "entry 0: address is missing"},
      {"address a number", entry(R"("0000:01:00.0")", "1"), "entry 0: address is not a string"},
      {"short address", entry("0000:01:00.0", "01:00.0"),
       "entry 0 (01:00.0): address is not a PCI address in the kernel's form"},
      {"bad address", entry("0000:01:00.0", "0000:zz:00.0"),
       "entry 0 (0000:zz:00.0): address is not a PCI address"},
      {"uppercase vendor", entry(R"("10de")", R"("10DE")"),
       "entry 0 (0000:01:00.0): vendor is \"10DE\", not four lowercase hex digits"},
      {"0x vendor", entry(R"("10de")", R"("0x10de")"), "vendor is \"0x10de\", not four"},
      {"short device", entry(R"("1b80")", R"("b80")"), "device is \"b80\", not four"},
      {"device a number", entry(R"("1b80")", "7040"), "device is not a string"},
      {"no subsystem vendor", entry(R"("subsystem_vendor": "1043", )", ""),
       "subsystem_vendor is missing"},
      {"bad subsystem device", entry(R"("8591")", R"("85 1")"),
       "subsystem_device is \"85 1\", not four"},
      {"escape in an id", entry(R"("8591")", R"("\u001b[31")"),
       "subsystem_device is \"\\x1b[31\", not four"},
      {"host driver", entry(R"("vfio-pci")", R"("nouveau")"), "driver is not vfio-pci or pci-stub"},
      {"no driver", entry(R"(, "driver": "vfio-pci")", ""), "driver is missing"},
      {"twice",
       R"({"schema": "pcipass.assignments/1", "devices": [{)" + ok_entry + "}, {" + ok_entry +
           "}]}",
       "entry 1 (0000:01:00.0): address is listed twice"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = persist::parse_assignments(c.text, kAssignmentsPath);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message.rfind(std::string(kAssignmentsPath) + " is damaged", 0), 0u)
        << r.error().message;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
    EXPECT_FALSE(r.error().fix.empty());
    EXPECT_EQ(r.error().path, kAssignmentsPath);
  }
}

TEST_F(Persist, ADamagedStoreStopsEveryCommandBeforeAnyWrite) {
  t.file(kAssignmentsPath, R"({"schema": "pcipass.assignments/1", "devices": [{"address": 1}]})");
  std::string before = host_state(t);
  for (auto args : std::vector<std::vector<std::string>>{{"bind", "--persist", "00:03.0"},
                                                         {"release", "--persist", "00:03.0"},
                                                         {"apply", "--boot"},
                                                         {"status"}}) {
    SCOPED_TRACE(args[0]);
    auto r = cli(args);
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
              "error: /etc/pcipass/assignments.json is damaged: entry 0: address is not a string");
    EXPECT_EQ(k->write_count(), 0);
    EXPECT_EQ(changed_lines(before, host_state(t)), "");
  }
  auto c = cli({"--json", "check"});
  auto j = nlohmann::json::parse(c.out);
  EXPECT_EQ(j["checks"].back()["id"], "persisted-devices");
  EXPECT_EQ(j["checks"].back()["status"], "FAIL");
}

// --- bind --persist

TEST_F(Persist, BindPersistBindsRecordsAndEnablesTheBootApplier) {
  auto r = cli({"bind", "--persist", "00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "bound 0000:00:03.0 to vfio-pci (was e1000e)\n"
            "group 4 is ready: /dev/vfio/4\n"
            "change set " +
                kSet +
                ": persisted 0000:00:03.0 in /etc/pcipass/assignments.json\n"
                "enabled pcipass-apply.service "
                "(/etc/systemd/system/sysinit.target.wants/pcipass-apply.service)\n"
                "undo with `pcipass undo " +
                kSet + "`\n");
  EXPECT_EQ(t.read(kAssignmentsPath), kNicStore);
  // Not installed in this tree: the unit goes to /etc, byte for byte the installed one.
  EXPECT_EQ(t.read(persist::kEtcUnitPath), persist::unit_text());
  EXPECT_EQ(k->read_link(persist::kWantsLink).value(), persist::kEtcUnitPath);
  EXPECT_EQ(
      k->snapshot().find("0000:00:03.0 driver=vfio-pci override=vfio-pci") != std::string::npos,
      true);
  // Again: nothing to change.
  int writes = k->write_count();
  r = cli({"bind", "--persist", "00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "0000:00:03.0 is already on vfio-pci\n"
            "group 4 is ready: /dev/vfio/4\n"
            "/etc/pcipass/assignments.json already as asked: nothing to change\n");
  EXPECT_EQ(k->write_count(), writes);
}

TEST_F(Persist, AnInstalledUnitIsLinkedNotCopied) {
  std::string installed = std::string(persist::kInstalledUnitDir) + "/" + persist::kUnitName;
  t.file(installed, persist::unit_text());
  ASSERT_EQ(cli({"bind", "--persist", "00:03.0"}).status, 0);
  EXPECT_FALSE(k->exists(persist::kEtcUnitPath));
  EXPECT_EQ(k->read_link(persist::kWantsLink).value(), installed);
}

TEST_F(Persist, TheUnitIsTheInstalledOneFromOneSource) {
  std::ifstream in(source_path("data/systemd/pcipass-apply.service.in"));
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto at = text.find("@PCIPASS_BINARY_PATH@");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, std::string("@PCIPASS_BINARY_PATH@").size(), persist::kInstalledBinary);
  EXPECT_EQ(text, persist::unit_text());
  std::string unit = persist::unit_text();
  for (const char* line : {"Type=oneshot\n", "RemainAfterExit=yes\n", "DefaultDependencies=no\n",
                           "WantedBy=sysinit.target\n",
                           "Before=libvirtd.service virtqemud.service display-manager.service "
                           "systemd-user-sessions.service\n"})
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  EXPECT_NE(unit.find("ExecStart=" + std::string(persist::kInstalledBinary) + " apply --boot\n"),
            std::string::npos);
}

TEST_F(Persist, ANonViableGroupIsRefusedAsBindRefusesItAndNothingIsRecorded) {
  std::string before = host_state(t);
  auto plain = cli({"bind", "01:00.0"});
  auto r = cli({"bind", "--persist", "01:00.0"});
  EXPECT_EQ(r.status, plain.status);
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err, plain.err);
  EXPECT_EQ(changed_lines(before, host_state(t)), "");
  EXPECT_EQ(k->write_count(), 0);
}

TEST_F(Persist, WithGroupRecordsEveryDeviceItMoves) {
  auto r = cli({"--json", "bind", "--persist", "--with-group", "01:00.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["persist"]["devices"], (nlohmann::json{"0000:01:00.0", "0000:01:00.1"}));
  EXPECT_EQ(j["persist"]["change_set"], kSet);
  EXPECT_EQ(j["persist"]["unit_enabled"], true);
  auto store = persist::load_assignments(*k);
  ASSERT_TRUE(store.ok());
  ASSERT_EQ(store->devices.size(), 2u);
  EXPECT_EQ(store->devices[1].ids.device, 0x10f0);
}

TEST_F(Persist, TheGroupsOthersAlreadyOnTheDriverAreRecordedToo) {
  ASSERT_EQ(cli({"bind", "--with-group", "01:00.0"}).status, 0);
  auto r = cli({"--json", "bind", "--persist", "01:00.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["persist"]["devices"], (nlohmann::json{"0000:01:00.0", "0000:01:00.1"}));
}

TEST_F(Persist, DryRunShowsTheDiffsAndWritesNothing) {
  std::string before = host_state(t);
  auto r = cli({"bind", "--persist", "--dry-run", "00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("  change set " + kSet +
                       " (applying)\n"
                       "  journal /run/pcipass/journal.json (writing)\n"
                       "  mkdir /etc/pcipass\n"
                       "  create /etc/pcipass/assignments.json\n"
                       "    --- /dev/null\n"
                       "    +++ b/etc/pcipass/assignments.json\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  link /etc/systemd/system/sysinit.target.wants/pcipass-apply.service -> "
                       "/etc/systemd/system/pcipass-apply.service\n"),
            std::string::npos);
  EXPECT_NE(r.out.find("  write /sys/bus/pci/devices/0000:00:03.0/driver_override: vfio-pci\n"),
            std::string::npos);
  EXPECT_EQ(changed_lines(before, host_state(t)), "");
  EXPECT_EQ(k->write_count(), 0);
}

// A failed run leaves the tree as it was, or, when it failed after the journal said committed
// (only the state file was left to write), as a successful run once `recover` finished it.
size_t applied_sets(const HostFs& fs) {
  auto sets = change::list_change_sets(fs);
  EXPECT_TRUE(sets.ok());
  size_t n = 0;
  for (const auto& s : sets.value_or({}))
    if (s.state == change::SetState::kApplied) ++n;
  return n;
}

void expect_restored(Persist& p, TempTree& tree, const std::string& before,
                     const std::string& succeeded, const CliRun& r, size_t sets_before) {
  EXPECT_NE(r.status, 0);
  if (r.err.find("run `pcipass recover` to finish") != std::string::npos) {
    p.attach(tree);
    auto rec = run_cli({"--root", tree.root(), "recover"}, &p.injected_);
    EXPECT_EQ(rec.status, 0) << rec.err;
    EXPECT_EQ(changed_lines(succeeded, host_state(tree)), "") << r.err;
    return;
  }
  EXPECT_EQ(changed_lines(before, host_state(tree)), "") << r.err;
  EXPECT_EQ(applied_sets(*p.k), sets_before);  // the failed run's set is not left applied
}

// The heart of it: every sysfs write and every file change of bind --persist, failed in turn.
TEST_F(Persist, AFaultAtEveryWriteOfBindPersistRestoresTheWholeTree) {
  const std::vector<std::string> args = {"bind", "--persist", "--with-group", "01:00.0"};
  auto run = [&](TempTree& tree) {
    std::vector<std::string> a = args;
    a.insert(a.begin(), {"--root", tree.root()});
    return run_cli(a, &injected_);
  };
  int sysfs_writes, file_changes;
  std::string succeeded;
  {
    TempTree probe;
    reset(probe);
    auto r = run(probe);
    ASSERT_EQ(r.status, 0) << r.err;
    sysfs_writes = k->write_count();
    file_changes = k->file_changes();
    succeeded = host_state(probe);
  }
  ASSERT_EQ(sysfs_writes, 6);
  ASSERT_GE(file_changes, 10);
  for (int kind = 0; kind < 2; ++kind)
    for (int n = 1; n <= (kind == 0 ? sysfs_writes : file_changes); ++n) {
      SCOPED_TRACE((kind == 0 ? "sysfs write " : "file change ") + std::to_string(n));
      TempTree tree;
      reset(tree);
      std::string before = host_state(tree);
      if (kind == 0)
        k->fail_write(n);
      else
        k->fail_file_change(n);
      size_t sets = applied_sets(*k);
      expect_restored(*this, tree, before, succeeded, run(tree), sets);
    }
  attach(t);
}

TEST_F(Persist, RecoverAfterACrashAtEveryWriteOfBindPersist) {
  for (int n = 1; n <= 6; ++n) {
    SCOPED_TRACE("crash after sysfs write " + std::to_string(n));
    TempTree tree;
    reset(tree);
    std::string before = host_state(tree);
    k->crash_after(n);
    auto r = run_cli({"--root", tree.root(), "bind", "--persist", "--with-group", "01:00.0"},
                     &injected_);
    ASSERT_NE(r.status, 0);
    attach(tree);  // the process died; a new one, same tree
    auto rec = run_cli({"--root", tree.root(), "recover"}, &injected_);
    ASSERT_EQ(rec.status, 0) << rec.err;
    EXPECT_EQ(changed_lines(before, host_state(tree)), "");
  }
  attach(t);
}

// --- undo and release --persist

TEST_F(Persist, UndoOfThePersistChangeSetForgetsTheDevicesAndDisablesTheApplier) {
  std::string before = host_state(t);
  ASSERT_EQ(cli({"bind", "--persist", "00:03.0"}).status, 0);
  auto r = cli({"undo", kSet});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(k->exists(kAssignmentsPath));
  EXPECT_FALSE(k->exists("/etc/pcipass"));
  EXPECT_EQ(k->type(persist::kWantsLink, false), FileType::kMissing);
  EXPECT_FALSE(k->exists(persist::kEtcUnitPath));
  // The device itself stays bound: undo reverts files; `pcipass release` the binding.
  EXPECT_NE(k->snapshot().find("0000:00:03.0 driver=vfio-pci"), std::string::npos);
  ASSERT_EQ(cli({"release", "00:03.0"}).status, 0);
  EXPECT_EQ(t.read("/run/pcipass/state.json"),
            "{\n  \"schema\": \"pcipass.state/1\",\n  \"bindings\": []\n}\n");
  t.remove("/run/pcipass/state.json");
  EXPECT_EQ(changed_lines(before, host_state(t)), "");
}

TEST_F(Persist, UndoRefusesALinkChangedSince) {
  ASSERT_EQ(cli({"bind", "--persist", "00:03.0"}).status, 0);
  t.remove(persist::kWantsLink);
  t.link(persist::kWantsLink, "/lib/systemd/system/other.service");
  auto r = cli({"undo", kSet});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/etc/systemd/system/sysinit.target.wants/pcipass-apply.service points to "
                       "../../../../lib/systemd/system/other.service now; pcipass made it point "
                       "to /etc/systemd/system/pcipass-apply.service"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(k->exists(kAssignmentsPath));
}

TEST_F(Persist, ReleasePersistReleasesAndForgets) {
  ASSERT_EQ(cli({"bind", "--persist", "--with-group", "01:00.0"}).status, 0);
  auto r = cli({"release", "--persist", "--with-group", "01:00.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(": removed 0000:01:00.0, 0000:01:00.1 from /etc/pcipass/assignments.json"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(t.read(kAssignmentsPath),
            "{\n  \"schema\": \"pcipass.assignments/1\",\n  \"devices\": []\n}\n");
  EXPECT_NE(k->snapshot().find("0000:01:00.0 driver=nouveau"), std::string::npos);
}

TEST_F(Persist, ReleasePersistForgetsACardThatWasTakenOut) {
  ASSERT_EQ(cli({"bind", "--persist", "00:03.0"}).status, 0);
  ASSERT_EQ(cli({"release", "00:03.0"}).status, 0);
  t.remove("/sys/bus/pci/devices/0000:00:03.0");
  auto r = cli({"release", "--persist", "0000:00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(t.read(kAssignmentsPath),
            "{\n  \"schema\": \"pcipass.assignments/1\",\n  \"devices\": []\n}\n");
  r = cli({"release", "--persist", "0000:00:03.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: no PCI device 0000:00:03.0 on this host, and /etc/pcipass/assignments.json "
            "does not hold it");
}

TEST_F(Persist, AFaultAtEveryWriteOfReleasePersistRestoresTheWholeTree) {
  auto prepare = [&](TempTree& tree) {
    reset(tree);
    auto r = run_cli({"--root", tree.root(), "bind", "--persist", "--with-group", "01:00.0"},
                     &injected_);
    ASSERT_EQ(r.status, 0) << r.err;
    attach(tree);
  };
  auto run = [&](TempTree& tree) {
    return run_cli({"--root", tree.root(), "release", "--persist", "--with-group", "01:00.0"},
                   &injected_);
  };
  int sysfs_writes, file_changes;
  std::string succeeded;
  {
    TempTree probe;
    prepare(probe);
    auto r = run(probe);
    ASSERT_EQ(r.status, 0) << r.err;
    sysfs_writes = k->write_count();
    file_changes = k->file_changes();
    succeeded = host_state(probe);
  }
  ASSERT_GE(sysfs_writes, 4);
  ASSERT_GE(file_changes, 5);
  for (int kind = 0; kind < 2; ++kind)
    for (int n = 1; n <= (kind == 0 ? sysfs_writes : file_changes); ++n) {
      SCOPED_TRACE((kind == 0 ? "sysfs write " : "file change ") + std::to_string(n));
      TempTree tree;
      prepare(tree);
      std::string before = host_state(tree);
      if (kind == 0)
        k->fail_write(n);
      else
        k->fail_file_change(n);
      size_t sets = applied_sets(*k);
      expect_restored(*this, tree, before, succeeded, run(tree), sets);
    }
  attach(t);
}

// --- apply

TEST_F(Persist, AfterARebootStatusShowsDesiredAgainstActualAndApplyBindsIt) {
  ASSERT_EQ(cli({"bind", "--persist", "00:03.0"}).status, 0);
  reboot();
  auto s = cli({"status"});
  EXPECT_EQ(s.status, 3);
  EXPECT_EQ(s.out,
            "pcipass has bound nothing since boot\n"
            "persisted in /etc/pcipass/assignments.json (desired against actual):\n"
            "ADDRESS       IDS        DESIRED   ACTUAL  STATE\n"
            "0000:00:03.0  8086:10d3  vfio-pci  e1000e  other-driver\n"
            "  0000:00:03.0 is persisted for vfio-pci but e1000e has it\n"
            "    fix: `pcipass apply` binds it now; at boot pcipass-apply.service does "
            "(`systemctl status pcipass-apply`); a host driver in the initramfs takes it first "
            "unless early binding is set up (docs/persist.md)\n");
  auto c = cli({"--json", "check"});
  auto cj = nlohmann::json::parse(c.out);
  EXPECT_EQ(cj["checks"].back()["detail"],
            "0000:00:03.0 is persisted for vfio-pci but e1000e has it: pcipass apply did not run "
            "at this boot, or lost the race to the host driver (early binding, docs/persist.md)");
  EXPECT_EQ(cj["checks"].back()["status"], "WARN");
  auto r = cli({"apply", "--boot"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "bound 0000:00:03.0 to vfio-pci (was e1000e)\n");
  s = cli({"--json", "status"});
  EXPECT_EQ(s.status, 0);
  auto j = nlohmann::json::parse(s.out);
  EXPECT_EQ(j["persisted"]["devices"][0]["state"], "matches");
  EXPECT_EQ(j["persisted"]["all_match"], true);
  EXPECT_EQ(j["bindings"][0]["original_driver"], "e1000e");
  r = cli({"apply", "--boot"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "0000:00:03.0 is already bound to vfio-pci\n");
}

TEST_F(Persist, ASwappedCardIsReportedAndNotBoundWhileTheOthersAre) {
  ASSERT_EQ(cli({"bind", "--persist", "00:03.0"}).status, 0);
  ASSERT_EQ(cli({"bind", "--persist", "--with-group", "01:00.0"}).status, 0);
  reboot();
  // Another card in the NIC's slot: same address, other device ID.
  std::string store = t.read(kAssignmentsPath);
  auto at = store.find("\"10d3\"");
  ASSERT_NE(at, std::string::npos);
  store.replace(at, 6, "\"10d4\"");
  t.file(kAssignmentsPath, store);
  auto r = cli({"--json", "apply", "--boot"});
  EXPECT_EQ(r.status, 1);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["devices"][0]["result"], "ids-differ");
  EXPECT_EQ(j["devices"][0]["desired_ids"]["device"], "10d4");
  EXPECT_EQ(j["devices"][0]["actual_ids"]["device"], "10d3");
  EXPECT_EQ(j["devices"][1]["result"], "bound");
  EXPECT_EQ(j["devices"][2]["result"], "bound");
  EXPECT_EQ(j["ok"], false);
  EXPECT_NE(k->snapshot().find("0000:00:03.0 driver=e1000e override=-"), std::string::npos);
  EXPECT_NE(k->snapshot().find("0000:01:00.0 driver=vfio-pci"), std::string::npos);
  for (const auto& w : k->writes()) EXPECT_EQ(w.find("0000:00:03.0"), std::string::npos) << w;
  auto c = cli({"check"});
  EXPECT_NE(c.out.find("0000:00:03.0 is persisted for vfio-pci as 8086:10d4 (subsystem "
                       "0000:0000), but the device there is 8086:10d3 (subsystem 0000:0000): "
                       "the card was moved or swapped, so pcipass does not bind it"),
            std::string::npos)
      << c.out;
}

TEST_F(Persist, ApplyWithoutAStoreDoesNothing) {
  auto r = cli({"apply", "--boot"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "nothing persisted (/etc/pcipass/assignments.json does not exist)\n");
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_EQ(k->file_changes(), 0);
}

TEST_F(Persist, AFaultAtEveryWriteOfApplyRollsThatGroupBack) {
  ASSERT_EQ(cli({"bind", "--persist", "--with-group", "01:00.0"}).status, 0);
  reboot();
  std::string before = host_state(t);
  std::string snap_before = k->snapshot();
  for (int n = 1; n <= 6; ++n) {
    SCOPED_TRACE("sysfs write " + std::to_string(n));
    attach(t);
    k->fail_write(n);
    auto r = cli({"apply", "--boot"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("0000:01:00.0 not bound: "), std::string::npos) << r.out;
    EXPECT_EQ(changed_lines(before, host_state(t)), "");
  }
}

}  // namespace
}  // namespace pcipass::test

namespace pcipass::test {
namespace {

// The link change kind: a non-link in the way stops the plan at capture; a manifest's link
// record is validated like the rest.
TEST(LinkChange, OnlyALinkOrNothingIsReplacedAndManifestsAreChecked) {
  TempTree t;
  t.file("/etc/systemd/system/sysinit.target.wants/pcipass-apply.service", "a file\n");
  auto fs = make_real_host_fs(t.root());
  std::vector<change::Change> plan = {change::Change::link(persist::kWantsLink, "/x.service")};
  change::Executor ex(*fs, {}, false);
  auto c = ex.capture(plan);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, std::string(persist::kWantsLink) + " is not a symbolic link");
  t.remove(persist::kWantsLink);
  plan = {change::Change::link(persist::kWantsLink, "/x.service")};
  ASSERT_TRUE(ex.capture(plan).ok());
  ASSERT_TRUE(ex.run(plan, nullptr).ok());
  EXPECT_EQ(fs->read_link(persist::kWantsLink).value(), "/x.service");
  ASSERT_TRUE(ex.roll_back(plan).ok());
  EXPECT_EQ(fs->type(persist::kWantsLink, false), FileType::kMissing);

  auto manifest = [](const std::string& link) {
    return R"({"schema": "pcipass.changes/1", "id": "20261118-110640", "command": "bind",
      "time": 1, "state": "applied", "files": [{"path": "/etc/systemd/system/x.service",
      "link": true, "before": {"absent": true}, "after": )" +
           link + "}]}";
  };
  auto ok = change::parse_manifest(manifest(R"({"absent": false, "target": "/lib/x"})"), "/m");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->files[0].after_link, "/lib/x");
  for (const char* bad : {R"({"absent": false, "target": "../x"})", R"({"absent": false})",
                          R"({"absent": false, "target": "/a/../b"})", R"({"absent": "no"})"}) {
    auto r = change::parse_manifest(manifest(bad), "/m");
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().message.rfind("/m is damaged: ", 0), 0u);
    }
  }
}

}  // namespace
}  // namespace pcipass::test
