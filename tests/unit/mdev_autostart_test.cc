// mdev start-parent (what pcipass's udev rule runs when a parent registers) against the sysfs
// double: only "auto" definitions that are not active are created, a second run changes
// nothing, a fault at every write leaves no new mdev, refusals are byte for byte; and the rule
// file cmake installs holds the match keys and the guard against mdevctl's own rule.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "host_state.h"
#include "mdev/mdev.h"
#include "mtty_double.h"
#include "sample_double.h"

namespace pcipass::test {
namespace {

const std::string kU3 = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1003";
const std::string kU4 = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1004";

// A definition file as mdevctl 1.2 writes it.
void define(TempTree& t, const std::string& uuid, const std::string& type, const char* start,
            const std::string& parent = "mtty") {
  t.file(fmt::format("/etc/mdevctl.d/{}/{}", parent, uuid),
         fmt::format("{{\n  \"mdev_type\": \"{}\",\n  \"start\": \"{}\",\n  \"attrs\": []\n}}",
                     type, start));
}

class MdevStart : public ::testing::Test, public SampleDouble {
 protected:
  void SetUp() override {
    start();
    mtty(*k, t);
    env.process.now = [] { return int64_t{1700000000}; };
    use_env();
  }
  // An active mdev made as the kernel makes it (not through pcipass).
  void make(const std::string& type, const std::string& uuid, FakeKernel* kern = nullptr) {
    ASSERT_TRUE((kern ? *kern : *k).write(kTypes + "/" + type + "/create", uuid));
  }
  std::string create_write(const std::string& type, const std::string& uuid) {
    return kTypes + "/" + type + "/create <- " + uuid;
  }
};

TEST_F(MdevStart, CreatesOnlyAutoDefinitionsThatAreNotActive) {
  define(t, kU1, "mtty-1", "auto");
  define(t, kU2, "mtty-2", "auto");
  define(t, kU3, "mtty-1", "manual");
  define(t, kU4, "mtty-1", "auto");
  make("mtty-1", kU4);
  int before = k->write_count();
  auto r = cli({"mdev", "start-parent", "mtty", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> made(k->writes().begin() + before, k->writes().end());
  EXPECT_EQ(made,
            (std::vector<std::string>{create_write("mtty-1", kU1), create_write("mtty-2", kU2)}));
  EXPECT_TRUE(k->exists("/sys/bus/mdev/devices/" + kU1));
  EXPECT_TRUE(k->exists("/sys/bus/mdev/devices/" + kU2));
  EXPECT_FALSE(k->exists("/sys/bus/mdev/devices/" + kU3));
  EXPECT_FALSE(k->exists("/run/pcipass/journal.json"));
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "pcipass.mdev-start-parent/1");
  EXPECT_EQ(j["parent"], "mtty");
  EXPECT_EQ(j["definitions"], "/etc/mdevctl.d/mtty");
  EXPECT_EQ(j["manual"], 1);
  EXPECT_EQ(j["started"], 2);
  EXPECT_EQ(j["changed"], true);
  EXPECT_EQ(j["ok"], true);
  ASSERT_EQ(j["mdevs"].size(), 3u);
  EXPECT_EQ(j["mdevs"][0]["uuid"], kU1);
  EXPECT_EQ(j["mdevs"][0]["result"], "started");
  EXPECT_EQ(j["mdevs"][1]["uuid"], kU2);
  EXPECT_EQ(j["mdevs"][1]["type"], "mtty-2");
  EXPECT_EQ(j["mdevs"][2]["uuid"], kU4);
  EXPECT_EQ(j["mdevs"][2]["result"], "already-active");
}

TEST_F(MdevStart, ASecondRunChangesNothingAndSaysSo) {
  define(t, kU1, "mtty-1", "auto");
  define(t, kU2, "mtty-2", "auto");
  auto first = cli({"mdev", "start-parent", "mtty"});
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(first.out, fmt::format("started mdev {} (mtty-1 on mtty)\n"
                                   "started mdev {} (mtty-2 on mtty)\n",
                                   kU1, kU2));
  std::string state = host_state(t);
  int writes = k->write_count();
  auto again = cli({"mdev", "start-parent", "mtty"});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(
      again.out,
      fmt::format("mdev {} (mtty-1 on mtty) is already active\n"
                  "mdev {} (mtty-2 on mtty) is already active\n"
                  "nothing to start: every auto definition in /etc/mdevctl.d/mtty is active\n",
                  kU1, kU2));
  EXPECT_EQ(again.err, "");
  EXPECT_EQ(k->write_count(), writes);
  EXPECT_EQ(host_state(t), state);
  auto j = nlohmann::json::parse(cli({"mdev", "start-parent", "mtty", "--json"}).out);
  EXPECT_EQ(j["changed"], false);
  EXPECT_EQ(j["started"], 0);
  EXPECT_EQ(j["steps"], nlohmann::json::array());
}

TEST_F(MdevStart, NoDefinitionsIsNothingToDo) {
  std::string state = host_state(t);
  auto r = cli({"mdev", "start-parent", "mtty"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "nothing to start: no auto definitions in /etc/mdevctl.d/mtty\n");
  define(t, kU3, "mtty-1", "manual");
  state = host_state(t);
  auto manual = cli({"mdev", "start-parent", "mtty"});
  EXPECT_EQ(manual.out, "nothing to start: no auto definitions in /etc/mdevctl.d/mtty\n");
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_EQ(host_state(t), state);
}

TEST_F(MdevStart, DryRunPrintsTheCreatesAndMakesNone) {
  define(t, kU1, "mtty-1", "auto");
  std::string state = host_state(t);
  auto r = cli({"mdev", "start-parent", "mtty", "--dry-run", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_EQ(host_state(t), state);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_EQ(j["changed"], false);
  EXPECT_EQ(j["mdevs"][0]["result"], "started");
  bool write = false;
  for (const auto& s : j["steps"])
    write |= s["kind"] == "write" && s["path"] == kTypes + "/mtty-1/create" && s["data"] == kU1;
  EXPECT_TRUE(write) << r.out;
}

TEST_F(MdevStart, APciParentIsNamedByItsAddressAsUdevGivesIt) {
  const std::string dev = "/sys/devices/pci0000:00/0000:00:02.0";
  k->mdev_parent("0000:00:02.0", dev, {{"i915-GVTg_V5_4", "", "", "vfio-pci", 1, EUSERS}});
  define(t, kU1, "i915-GVTg_V5_4", "auto", "0000:00:02.0");
  define(t, kU2, "mtty-1", "auto");  // another parent's: not started
  auto r = cli({"mdev", "start-parent", "0000:00:02.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "started mdev " + kU1 + " (i915-GVTg_V5_4 on 0000:00:02.0)\n");
  EXPECT_EQ(
      k->writes(),
      std::vector<std::string>{
          "/sys/class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4/create <- " + kU1});
  EXPECT_FALSE(k->exists("/sys/bus/mdev/devices/" + kU2));
}

// Errors, byte for byte, each before any write.
TEST_F(MdevStart, RefusalsNameTheThingAndTheFix) {
  auto none = cli({"mdev", "start-parent", "nosuch"});
  EXPECT_EQ(none.status, 2);
  EXPECT_EQ(none.out, "");
  EXPECT_EQ(none.err,
            "error: nosuch is not a registered parent of mediated devices (no "
            "/sys/class/mdev_bus/nosuch)\n"
            "  fix: `pcipass mdev types` lists the parents; load the parent's driver first\n");
  auto bad = cli({"mdev", "start-parent", "../etc"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_EQ(bad.err,
            "error: invalid parent '../etc'\n"
            "  fix: name it as /sys/class/mdev_bus does (a PCI address, or a name such as mtty); "
            "see `pcipass mdev types`\n");

  define(t, kU1, "mtty-2", "auto");
  define(t, kU2, "mtty-2", "auto");
  std::string state = host_state(t);
  auto full = cli({"mdev", "start-parent", "mtty"});
  EXPECT_EQ(full.status, 1);  // a refusal, as mdev create's when no instance is left
  EXPECT_EQ(full.err,
            "error: cannot start mdev " + kU2 +
                " (mtty-2 on mtty): available_instances is 1 and 2 auto definitions of mtty-2 "
                "are not active\n"
                "  fix: remove an mdev of mtty-2 (`pcipass mdev list`), or correct "
                "/etc/mdevctl.d/mtty/" +
                kU2 + " or make it manual (`mdevctl modify --uuid " + kU2 +
                " --manual`); `pcipass mdev types mtty` shows what the parent offers\n");
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_EQ(host_state(t), state);

  define(t, kU2, "mtty-9", "auto");
  auto missing = cli({"mdev", "start-parent", "mtty"});
  EXPECT_EQ(missing.status, 2);
  EXPECT_EQ(missing.err.substr(0, missing.err.find('\n')),
            "error: cannot start mdev " + kU2 + ": mtty offers no mdev type 'mtty-9'");
  EXPECT_EQ(k->write_count(), 0);
}

// An active mdev of the definition's UUID but another type is left alone, reported by UUID;
// the other definitions still start, and the exit status says not all is as defined.
TEST_F(MdevStart, AnActiveMdevOfAnotherTypeIsAConflictByUuid) {
  define(t, kU1, "mtty-2", "auto");
  define(t, kU2, "mtty-1", "auto");
  make("mtty-1", kU1);
  auto r = cli({"mdev", "start-parent", "mtty"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "mdev " + kU1 +
                       " is active as mtty-1 on mtty, not as its definition's mtty-2 on mtty\n"
                       "      fix: remove it (`pcipass mdev remove " +
                       kU1 +
                       "`) and run `pcipass mdev start-parent mtty` again, or correct "
                       "/etc/mdevctl.d/mtty/" +
                       kU1 + "\nstarted mdev " + kU2 + " (mtty-1 on mtty)\n");
  EXPECT_TRUE(k->exists("/sys/bus/mdev/devices/" + kU2));
  auto j = nlohmann::json::parse(cli({"mdev", "start-parent", "mtty", "--json"}).out);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["mdevs"][0]["result"], "conflict");
}

// A fault at every write (the creates and the journal's file changes), each kind of fault: no
// new mdev, and the error names the UUID and type that failed and says it was rolled back.
TEST_F(MdevStart, AFaultAtEveryWriteLeavesNoNewMdev) {
  std::vector<std::pair<std::string, FakeKernel::Fault>> faults = {
      {"EIO", {EIO, false, false}},
      {"short write", {EIO, true, false}},
      {"EBUSY after acting", {EBUSY, false, true}},
  };
  auto host = [&](TempTree& tree, FakeKernel& kern) {
    sample_host(tree);
    mtty(kern, tree);
    define(tree, kU1, "mtty-1", "auto");
    define(tree, kU2, "mtty-1", "auto");
    define(tree, kU3, "mtty-2", "auto");
  };
  const std::vector<std::string> order = {kU1, kU2, kU3};
  const std::vector<std::string> types = {"mtty-1", "mtty-1", "mtty-2"};
  for (const auto& [name, fault] : faults)
    for (int n = 1; n <= 3; ++n) {
      SCOPED_TRACE(fmt::format("{} at create {}", name, n));
      TempTree tree;
      FakeKernel kern(tree);
      host(tree, kern);
      std::string before = host_state(tree);
      kern.fail_write(n, fault);
      auto r = mdev::start_parent(kern, "mtty", false, env);
      ASSERT_FALSE(r.ok());
      const size_t i = static_cast<size_t>(n - 1);
      EXPECT_EQ(r.error().message.substr(0, r.error().message.find(": write")),
                fmt::format("cannot create mdev {} of type {}", order[i], types[i]));
      EXPECT_NE(r.error().fix.find("available_instances"), std::string::npos) << r.error().fix;
      EXPECT_NE(r.error().fix.find("rolled back"), std::string::npos) << r.error().fix;
      EXPECT_EQ(host_state(tree), before);
      EXPECT_TRUE(kern.list("/sys/bus/mdev/devices").value_or({}).empty());
    }
  for (int n = 1;; ++n) {
    SCOPED_TRACE("file change " + std::to_string(n) + " fails");
    TempTree tree;
    FakeKernel kern(tree);
    host(tree, kern);
    std::string before = host_state(tree);
    kern.fail_file_change(n);
    auto r = mdev::start_parent(kern, "mtty", false, env);
    if (r.ok()) {
      EXPECT_GT(n, 1);  // the journal is written before the first create
      break;
    }
    EXPECT_EQ(host_state(tree), before);
    EXPECT_TRUE(kern.list("/sys/bus/mdev/devices").value_or({}).empty());
  }
}

// --- the shipped udev rule (as cmake configured it: what `cmake --install` installs)

std::string rules_text() {
  std::ifstream in(PCIPASS_MDEV_RULES);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One rule: its keys in order, "KEY OP VALUE" split (udev's syntax: KEY{ATTR}OP"VALUE", comma
// separated).
struct Key {
  std::string name, op, value;
};

std::vector<std::vector<Key>> parse_rules(const std::string& text) {
  std::vector<std::vector<Key>> rules;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<Key> keys;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
      size_t op = line.find_first_of("=!+", i);
      size_t quote = line.find('"', op);
      size_t end = line.find('"', quote + 1);
      if (op == std::string::npos || quote == std::string::npos || end == std::string::npos) break;
      keys.push_back({line.substr(i, op - i), line.substr(op, quote - op),
                      line.substr(quote + 1, end - quote - 1)});
      i = end + 1;
    }
    rules.push_back(keys);
  }
  return rules;
}

// What udev does with one event: the RUN of every rule whose match keys all hold. `files`: the
// absolute paths that exist; `device_files`: those relative to the event's device. A key this
// evaluator does not know fails the test (it would otherwise be taken as matching).
struct Event {
  std::string action, kernel;
  std::map<std::string, std::string> env;
};

std::vector<std::string> runs(const std::vector<std::vector<Key>>& rules, const Event& ev,
                              const std::set<std::string>& files,
                              const std::set<std::string>& device_files) {
  std::vector<std::string> out;
  for (const auto& rule : rules) {
    bool match = true;
    std::string run;
    for (const auto& k : rule) {
      auto value = k.value;
      for (size_t p; (p = value.find("$kernel")) != std::string::npos;)
        value.replace(p, 7, ev.kernel);
      bool eq = k.op == "==";
      if (k.name == "ACTION") {
        match &= (ev.action == value) == eq;
      } else if (k.name.rfind("ENV{", 0) == 0) {
        auto it = ev.env.find(k.name.substr(4, k.name.size() - 5));
        match &= (it != ev.env.end() && it->second == value) == eq;
      } else if (k.name == "TEST") {
        bool there = value[0] == '/' ? files.count(value) : device_files.count(value);
        match &= there == eq;
      } else if (k.name == "RUN" && k.op == "+=") {
        run = value;
        for (size_t p; (p = run.find("%k")) != std::string::npos;) run.replace(p, 2, ev.kernel);
      } else {
        ADD_FAILURE() << "a key the test does not evaluate: " << k.name << k.op;
        match = false;
      }
    }
    if (match && !run.empty()) out.push_back(run);
  }
  return out;
}

TEST(MdevRule, RunsStartParentWhenAParentRegistersUnlessMdevctlsRuleIsInstalled) {
  std::string text = rules_text();
  ASSERT_FALSE(text.empty()) << PCIPASS_MDEV_RULES;
  auto rules = parse_rules(text);
  ASSERT_EQ(rules.size(), 2u) << text;
  const std::string cmd = std::string(PCIPASS_BINARY_PATH) + " mdev start-parent mtty";
  const Event registered{"change", "mtty", {{"MDEV_STATE", "registered"}}};
  const Event unregistered{"change", "mtty", {{"MDEV_STATE", "unregistered"}}};
  const Event coldplug{"add", "mtty", {}};
  const std::set<std::string> defs = {"/etc/mdevctl.d/mtty"};
  const std::set<std::string> is_parent = {"mdev_supported_types"};
  using V = std::vector<std::string>;

  EXPECT_EQ(runs(rules, registered, defs, {}), V{cmd});
  EXPECT_EQ(runs(rules, unregistered, defs, {}), V{});
  EXPECT_EQ(runs(rules, {"change", "mtty", {}}, defs, {}), V{});  // any other change
  EXPECT_EQ(runs(rules, registered, {}, {}), V{});                // no definitions for it
  // Coldplug: only a device already registered as a parent.
  EXPECT_EQ(runs(rules, coldplug, defs, is_parent), V{cmd});
  EXPECT_EQ(runs(rules, coldplug, defs, {}), V{});
  EXPECT_EQ(runs(rules, {"remove", "mtty", {}}, defs, is_parent), V{});
  // mdevctl's rule installed (either place): mdevctl starts them, pcipass does nothing.
  for (const char* mdevctl :
       {"/usr/lib/udev/rules.d/60-mdevctl.rules", "/lib/udev/rules.d/60-mdevctl.rules"}) {
    SCOPED_TRACE(mdevctl);
    std::set<std::string> with = defs;
    with.insert(mdevctl);
    EXPECT_EQ(runs(rules, registered, with, {}), V{});
    EXPECT_EQ(runs(rules, coldplug, with, is_parent), V{});
  }
  // A PCI parent: %k is its address, the directory mdevctl and pcipass name.
  const Event pci{"change", "0000:00:02.0", {{"MDEV_STATE", "registered"}}};
  EXPECT_EQ(runs(rules, pci, {"/etc/mdevctl.d/0000:00:02.0"}, {}),
            V{std::string(PCIPASS_BINARY_PATH) + " mdev start-parent 0000:00:02.0"});
}

}  // namespace
}  // namespace pcipass::test
