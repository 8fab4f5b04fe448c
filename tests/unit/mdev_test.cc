// mdev types/list/create/remove against the sysfs double: available_instances checked before
// create, UUIDs validated or drawn from the process's randomness port, the writes the kernel
// takes, refusals while a VM holds the mdev's group, mdevctl's definition files, and a fault at
// every write (and a crash after it) of create and remove leaving the host as it was.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "assign/journal.h"
#include "deny_fs.h"
#include "host_state.h"
#include "mdev/mdev.h"
#include "mtty_double.h"
#include "sample_double.h"

namespace pcipass::test {
namespace {

class Mdev : public ::testing::Test, public SampleDouble {
 protected:
  void SetUp() override {
    start();
    mtty(*k, t);
    env.process.now = [] { return int64_t{1700000000}; };
    use_env();
  }
  Result<mdev::Report> create(const std::string& type, std::optional<std::string> uuid,
                              bool persist = false, FakeKernel* kern = nullptr) {
    mdev::CreateRequest r;
    r.parent = "mtty";
    r.type = type;
    r.uuid = std::move(uuid);
    r.persist = persist;
    r.command = "mdev create";
    return mdev::create(kern ? *kern : *k, r, env);
  }
  Result<mdev::Report> remove(const std::string& uuid, bool persist = false,
                              FakeKernel* kern = nullptr) {
    return mdev::remove(kern ? *kern : *k, {uuid, false, persist, "mdev remove"}, env);
  }
};

TEST_F(Mdev, TypesShowWhatTheParentOffers) {
  auto r = cli({"mdev", "types", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "pcipass.mdev-types/1");
  ASSERT_EQ(j["parents"].size(), 1u);
  EXPECT_EQ(j["parents"][0]["parent"], "mtty");
  auto t = j["parents"][0]["types"][1];
  EXPECT_EQ(t["type"], "mtty-2");
  EXPECT_EQ(t["name"], "Dual port serial");
  EXPECT_EQ(t["device_api"], "vfio-pci");
  EXPECT_EQ(t["available_instances"], 1);
  EXPECT_EQ(j["mdevctl"][0]["mtty"][1]["mtty-2"]["available_instances"], 1);
  auto none = cli({"mdev", "types", "nosuch"});
  EXPECT_EQ(none.status, 2);
  EXPECT_NE(none.err.find("nosuch is not a parent of mediated devices"), std::string::npos)
      << none.err;
}

TEST_F(Mdev, CreateWritesTheUuidToCreateAndTheDeviceAppears) {
  auto r = create("mtty-1", kU1);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(k->writes(), std::vector<std::string>{kTypes + "/mtty-1/create <- " + kU1});
  EXPECT_TRUE(k->exists("/sys/bus/mdev/devices/" + kU1));
  EXPECT_EQ(k->read_trimmed(kTypes + "/mtty-1/available_instances"), "1");
  EXPECT_FALSE(k->exists("/run/pcipass/journal.json"));
  auto l = mdev::list(*k, false);
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->mdevs.size(), 1u);
  EXPECT_EQ(l->mdevs[0].parent, "mtty");
  EXPECT_EQ(l->mdevs[0].type, "mtty-1");
  EXPECT_EQ(l->mdevs[0].driver, "vfio_mdev");
  EXPECT_TRUE(l->mdevs[0].iommu_group);
}

TEST_F(Mdev, NoneAvailableIsRefusedBeforeAnyWrite) {
  ASSERT_TRUE(create("mtty-2", kU1).ok());
  auto r = create("mtty-2", kU2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "no instance of mtty-2 left on mtty (available_instances is 0; 1 in use)");
  EXPECT_EQ(k->write_count(), 1);
  auto other = create("mtty-9", kU2);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().message, "mtty offers no mdev type 'mtty-9' (it offers: mtty-1, mtty-2)");
}

TEST_F(Mdev, TheKernelRefusesWhatTheLibraryWouldNot) {
  // The double's own rules, as linux 6.1's create_store and mdev_device_create have them.
  EXPECT_EQ(k->write(kTypes + "/mtty-1/create", "not-a-uuid").error().err, EINVAL);
  ASSERT_TRUE(k->write(kTypes + "/mtty-2/create", kU1 + "\n"));
  EXPECT_EQ(k->write(kTypes + "/mtty-1/create", kU1).error().err, EEXIST);
  EXPECT_EQ(k->write(kTypes + "/mtty-2/create", kU2).error().err, ENOSPC);
  EXPECT_EQ(k->write("/sys/bus/mdev/devices/" + kU1 + "/remove", "x").error().err, EINVAL);
  ASSERT_TRUE(k->write("/sys/bus/mdev/devices/" + kU1 + "/remove", "1"));
  EXPECT_EQ(k->read_trimmed(kTypes + "/mtty-2/available_instances"), "1");
}

TEST_F(Mdev, UuidsAreValidatedAndLowercased) {
  auto bad = cli({"mdev", "create", "mtty", "mtty-1", "--uuid", "1234"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("invalid UUID '1234' for --uuid"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("8-4-4-4-12 hexadecimal digits"), std::string::npos) << bad.err;
  EXPECT_EQ(k->write_count(), 0);
  std::string upper = "83B8F4F2-509F-382F-3C1E-E6BFE0FA1001";
  auto r = create("mtty-1", upper);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->uuid, kU1);
  auto again = create("mtty-1", kU1);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, "an mdev with UUID " + kU1 + " exists already");
}

TEST_F(Mdev, ARandomUuidComesFromTheProcessPort) {
  auto none = create("mtty-1", std::nullopt);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().fix, "give one with --uuid (e.g. from `uuidgen`)");
  env.process.random = [](unsigned char* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>(0xa0 + i);
    return true;
  };
  auto r = create("mtty-1", std::nullopt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->uuid, "a0a1a2a3-a4a5-46a7-a8a9-aaabacadaeaf");  // version 4, RFC 4122 variant
}

TEST_F(Mdev, DryRunShowsTheWriteAndMakesNone) {
  std::string before = host_state(t);
  auto r =
      cli({"mdev", "create", "mtty", "mtty-1", "--uuid", kU1, "--persist", "--dry-run", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_EQ(host_state(t), before);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "pcipass.mdev-create/1");
  EXPECT_EQ(j["dry_run"], true);
  bool write = false, file = false;
  for (const auto& s : j["steps"]) {
    write |= s["kind"] == "write" && s["path"] == kTypes + "/mtty-1/create" && s["data"] == kU1;
    file |= s["kind"] == "file" && s["path"] == "/etc/mdevctl.d/mtty/" + kU1;
  }
  EXPECT_TRUE(write) << r.out;
  EXPECT_TRUE(file) << r.out;
}

TEST_F(Mdev, PersistWritesMdevctlsFileAndRemoveDeletesIt) {
  auto r = cli({"mdev", "create", "mtty", "mtty-2", "--uuid", kU1, "--persist", "--auto"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(t.read("/etc/mdevctl.d/mtty/" + kU1),
            "{\n  \"mdev_type\": \"mtty-2\",\n  \"start\": \"auto\",\n  \"attrs\": []\n}");
  auto defined = cli({"mdev", "list", "--defined", "--json"});
  ASSERT_EQ(defined.status, 0) << defined.err;
  auto j = nlohmann::json::parse(defined.out);
  EXPECT_EQ(j["mdevs"][0]["active"], true);
  EXPECT_EQ(j["mdevctl"][0]["mtty"][0][kU1]["start"], "auto");
  EXPECT_EQ(j["mdevctl"][0]["mtty"][0][kU1]["mdev_type"], "mtty-2");
  auto gone = cli({"mdev", "remove", kU1, "--persist"});
  ASSERT_EQ(gone.status, 0) << gone.err;
  EXPECT_FALSE(k->exists("/etc/mdevctl.d/mtty/" + kU1));
  EXPECT_FALSE(k->exists("/sys/bus/mdev/devices/" + kU1));
}

TEST_F(Mdev, ADefinitionAloneIsRemovedWithPersistOnly) {
  t.file("/etc/mdevctl.d/mtty/" + kU2,
         "{\n  \"mdev_type\": \"mtty-1\",\n  \"start\": \"manual\",\n  \"attrs\": [\n    {\n"
         "      \"a\": \"1\"\n    }\n  ]\n}");
  auto l = mdev::list(*k, true);
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->mdevs.size(), 1u);
  EXPECT_FALSE(l->mdevs[0].active);
  ASSERT_EQ(l->mdevs[0].attrs.size(), 1u);
  EXPECT_EQ(l->mdevs[0].attrs[0].name, "a");
  auto plain = remove(kU2);
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.error().fix.find("--persist"), std::string::npos);
  auto r = remove(kU2, true);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(k->exists("/etc/mdevctl.d/mtty/" + kU2));
  EXPECT_EQ(k->write_count(), 0);
}

TEST_F(Mdev, DamagedDefinitionsAreProblemsNotCrashes) {
  const std::vector<std::string> bad = {
      "not json",
      "{\"mdev_type\": \"../x\", \"start\": \"auto\", \"attrs\": []}",
      "{\"mdev_type\": \"mtty-1\", \"start\": \"sometimes\", \"attrs\": []}",
      "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [1]}",
      "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"a\": 1}]}",
      "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"a\": \"1\", \"b\": "
      "\"2\"}]}"};
  for (const auto& text : bad) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(mdev::parse_config(text, "mtty", kU1).ok());
    t.file("/etc/mdevctl.d/mtty/" + kU1, text);
    auto l = mdev::list(*k, true);
    ASSERT_TRUE(l.ok());
    EXPECT_TRUE(l->mdevs.empty());
    EXPECT_EQ(l->problems.size(), 1u);
  }
}

// A read error is never "none defined": listing /etc/mdevctl.d that cannot be read is a problem.
TEST_F(Mdev, UnreadableDefinitionsAreAProblemNotNone) {
  t.dir("/etc/mdevctl.d/mtty");
  DenyFs deny(t, {"/etc/mdevctl.d"});
  auto l = mdev::list(deny, true);
  ASSERT_TRUE(l.ok()) << l.error().describe();
  EXPECT_TRUE(l->mdevs.empty());
  EXPECT_EQ(l->problems, std::vector<std::string>{"opendir /etc/mdevctl.d: Permission denied"});
  t.remove("/etc/mdevctl.d");  // not there: none, and no problem
  auto none = mdev::list(*k, true);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->problems.empty());
}

// sysfs listings that fail are partial answers, said so; absent ones (no parent driver) are none.
TEST_F(Mdev, UnlistableSysfsIsAProblemNotNone) {
  ASSERT_TRUE(create("mtty-2", kU1).ok());
  k->deny_listing(mdev::kDevicesDir);
  auto l = mdev::list(*k, false);
  ASSERT_TRUE(l.ok()) << l.error().describe();
  EXPECT_EQ(l->problems,
            std::vector<std::string>{"opendir /sys/bus/mdev/devices: Permission denied"});
  std::string types_dir = "/sys/class/mdev_bus/mtty/mdev_supported_types";
  k->deny_listing(types_dir);
  auto types = mdev::types(*k, std::nullopt);
  ASSERT_TRUE(types.ok()) << types.error().describe();
  EXPECT_EQ((*types)[0].problems,
            std::vector<std::string>{"opendir " + types_dir + ": Permission denied"});
  k->deny_listing(mdev::kParentsDir);
  auto parents = cli({"mdev", "types"});
  EXPECT_EQ(parents.status, 1);
  EXPECT_EQ(parents.err,
            "error: cannot list the parents of mediated devices: opendir /sys/class/mdev_bus: "
            "Permission denied\n"
            "  fix: run pcipass as root\n");
}

TEST_F(Mdev, RemoveIsRefusedWhileAVmHoldsTheGroup) {
  auto made = create("mtty-1", kU1);
  ASSERT_TRUE(made.ok());
  auto l = mdev::list(*k, false);
  int group = *l->mdevs.at(0).iommu_group;
  k->add_process(4242, "qemu-system-x86", {"/dev/vfio/" + std::to_string(group)});
  std::string before = host_state(t);
  auto r = remove(kU1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, fmt::format("refusing to remove mdev {}: /dev/vfio/{} is held by "
                                           "qemu-system-x86, pid 4242",
                                           kU1, group));
  EXPECT_EQ(host_state(t), before);
}

// A fault at every write of create (--persist: and every file change), each kind of fault:
// the host as it was, with the error saying it was rolled back.
TEST_F(Mdev, AFaultAtEveryWriteOfCreateLeavesTheHostAsItWas) {
  std::vector<std::pair<std::string, FakeKernel::Fault>> faults = {
      {"EIO", {EIO, false, false}},
      {"short write", {EIO, true, false}},
      {"EBUSY after acting", {EBUSY, false, true}},
  };
  for (bool persist : {false, true})
    for (const auto& [name, fault] : faults) {
      SCOPED_TRACE(name + (persist ? " with --persist" : ""));
      TempTree tree;
      sample_host(tree);
      FakeKernel kern(tree);
      mtty(kern, tree);
      std::string before = host_state(tree);
      kern.fail_write(1, fault);
      auto r = create("mtty-1", kU1, persist, &kern);
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.error().fix.find("rolled back"), std::string::npos) << r.error().fix;
      EXPECT_EQ(host_state(tree), before);
    }
  for (int n = 1;; ++n) {
    SCOPED_TRACE("file change " + std::to_string(n) + " fails");
    TempTree tree;
    sample_host(tree);
    FakeKernel kern(tree);
    mtty(kern, tree);
    std::string before = host_state(tree);
    kern.fail_file_change(n);
    auto r = create("mtty-1", kU1, true, &kern);
    if (r.ok()) {
      EXPECT_GT(n, 3);
      break;
    }
    std::string after = host_state(tree);
    EXPECT_EQ(after, before);
  }
}

TEST_F(Mdev, AFaultAtEveryWriteOfRemoveLeavesTheMdevAsItWas) {
  std::vector<std::pair<std::string, FakeKernel::Fault>> faults = {
      {"EIO", {EIO, false, false}},
      {"EBUSY after acting", {EBUSY, false, true}},
  };
  for (bool persist : {false, true})
    for (const auto& [name, fault] : faults) {
      SCOPED_TRACE(name + (persist ? " with --persist" : ""));
      TempTree tree;
      sample_host(tree);
      FakeKernel kern(tree);
      mtty(kern, tree);
      ASSERT_TRUE(create("mtty-1", kU1, persist, &kern).ok());
      std::string before = host_state(tree);
      kern.fail_write(kern.write_count() + 1, fault);
      auto r = remove(kU1, persist, &kern);
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.error().fix.find("rolled back"), std::string::npos) << r.error().fix;
      EXPECT_EQ(host_state(tree), before);
    }
}

TEST_F(Mdev, RecoverAfterACrashAtTheWriteOfCreateOrRemove) {
  for (bool removing : {false, true}) {
    SCOPED_TRACE(removing ? "remove" : "create");
    TempTree tree;
    sample_host(tree);
    std::string before;
    {
      FakeKernel kern(tree);
      mtty(kern, tree);
      if (removing) {
        ASSERT_TRUE(create("mtty-1", kU1, false, &kern).ok());
      }
      before = host_state(tree);
      // The write is made, then the process dies before it could say so.
      kern.fail_write(kern.write_count() + 1, FakeKernel::Fault{EIO, false, true});
      kern.crash_after(kern.write_count() + 1);
      auto r = removing ? remove(kU1, false, &kern) : create("mtty-1", kU1, false, &kern);
      ASSERT_FALSE(r.ok());
      ASSERT_TRUE(kern.exists("/run/pcipass/journal.json"));
      auto j = assign::load_journal(kern);
      ASSERT_TRUE(j.ok()) << j.error().message;
      ASSERT_EQ((*j)->mdevs.size(), 1u);
      EXPECT_EQ((*j)->summary(), "write of 1 mdev");
    }
    FakeKernel kern(tree);
    mtty(kern, tree);
    auto rec = assign::recover(kern, env);
    ASSERT_TRUE(rec.ok()) << rec.error().message;
    EXPECT_EQ(host_state(tree), before);
  }
}

TEST_F(Mdev, AJournalsMdevEntriesAreValidated) {
  auto journal = [](const std::string& type_dir, const std::string& uuid) {
    return nlohmann::json{{"schema", "pcipass.journal/2"},
                          {"operation", "write"},
                          {"driver", ""},
                          {"owner", ""},
                          {"pid", 1},
                          {"phase", "writing"},
                          {"changes",
                           {{{"kind", "mdev"},
                             {"action", "create"},
                             {"type_dir", type_dir},
                             {"uuid", uuid},
                             {"existed", false}}}}}
        .dump();
  };
  EXPECT_TRUE(assign::parse_journal(journal(kTypes + "/mtty-1", kU1)).ok());
  EXPECT_FALSE(assign::parse_journal(journal("/sys/class/mdev_bus/../../etc", kU1)).ok());
  EXPECT_FALSE(assign::parse_journal(journal(kTypes + "/../x", kU1)).ok());
  EXPECT_FALSE(assign::parse_journal(journal(kTypes + "/mtty-1", "../../x")).ok());
}

TEST_F(Mdev, ListMatchesMdevctlsShape) {
  ASSERT_TRUE(create("mtty-1", kU2).ok());
  ASSERT_TRUE(create("mtty-1", kU1).ok());
  auto r = cli({"mdev", "list", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "pcipass.mdev-list/1");
  auto want = nlohmann::json::parse(
      "[{\"mtty\": [{\"" + kU1 +
      "\": {\"mdev_type\": \"mtty-1\", \"start\": \"manual\", \"attrs\": []}}, {\"" + kU2 +
      "\": {\"mdev_type\": \"mtty-1\", \"start\": \"manual\", \"attrs\": []}}]}]");
  EXPECT_EQ(j["mdevctl"], want);
  auto text = cli({"mdev", "list"});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find(kU1), std::string::npos);
  auto empty = cli({"mdev", "list", "--defined", "--json"});
  EXPECT_EQ(nlohmann::json::parse(empty.out)["mdevctl"], nlohmann::json::array());
}

}  // namespace
}  // namespace pcipass::test

namespace pcipass::test {
namespace {

class MdevVm : public Mdev {};

TEST_F(MdevVm, XmlAndQemuArgsTakeAnMdevUuid) {
  ASSERT_TRUE(create("mtty-1", kU1).ok());
  auto xml = cli({"xml", kU1});
  ASSERT_EQ(xml.status, 0) << xml.err;
  EXPECT_EQ(xml.out,
            "<hostdev mode='subsystem' type='mdev' model='vfio-pci'>\n  <source>\n    <address "
            "uuid='" +
                kU1 + "'/>\n  </source>\n</hostdev>\n");
  auto args = cli({"qemu-args", kU1});
  ASSERT_EQ(args.status, 0) << args.err;
  EXPECT_EQ(args.out, "-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/" + kU1 + "\n");
  auto j = nlohmann::json::parse(cli({"qemu-args", kU1, "--json"}).out);
  EXPECT_EQ(j["argv"][1], "vfio-pci,sysfsdev=/sys/bus/mdev/devices/" + kU1);
  EXPECT_EQ(j["mdevs"][0]["parent"], "mtty");
  auto missing = cli({"xml", kU2});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("no mdev " + kU2), std::string::npos) << missing.err;
  auto mixed = cli({"xml", kU1, "00:03.0"});
  EXPECT_EQ(mixed.status, 2);
  auto rom = cli({"qemu-args", kU1, "--x-vga"});
  EXPECT_EQ(rom.status, 2);
}

TEST_F(MdevVm, ADefinedMdevIsAWarningNotAnError) {
  t.file("/etc/mdevctl.d/mtty/" + kU2,
         "{\n  \"mdev_type\": \"mtty-1\",\n  \"start\": \"manual\",\n  \"attrs\": []\n}");
  auto xml = cli({"xml", kU2});
  ASSERT_EQ(xml.status, 0) << xml.err;
  EXPECT_NE(xml.err.find("defined but not active"), std::string::npos) << xml.err;
}

}  // namespace
}  // namespace pcipass::test
