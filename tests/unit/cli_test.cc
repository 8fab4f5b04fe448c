// The command line's contract for bad input: a precise message, exit status 2, no change.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    t.gpu_workstation();
    t.file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 intel_iommu=on\n");
  }
  CliRun run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", t.root()});
    return run_cli(args);
  }
  TempTree t;
};

TEST_F(Cli, InvalidAddressIsAUsageError) {
  auto r = run({"show", "0000:zz:00.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: invalid bus number 'zz' in '0000:zz:00.0'\n"
            "  fix: write the address as DOMAIN:BUS:SLOT.FUNCTION in hex, e.g. 0000:01:00.0 (see "
            "`pcipass list`)\n");
}

TEST_F(Cli, AbsentDeviceSuggestsTheNearest) {
  auto r = run({"show", "01:00.2"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(
      r.err,
      "error: no PCI device 0000:01:00.2 on this host\n"
      "  fix: nearest devices: 0000:01:00.1, 0000:01:00.0, 0000:00:1c.0 (see `pcipass list`)\n");
}

TEST_F(Cli, AbsentIdSaysSo) {
  auto r = run({"show", "1234:5678"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: no PCI device with ID 1234:5678 on this host");
}

TEST_F(Cli, IdMatchesEveryIdenticalDevice) {
  auto r = run({"--json", "show", "8086:10d3"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["devices"].size(), 2u);
  EXPECT_EQ(j["devices"][0]["address"], "0000:00:01.0");
  EXPECT_EQ(j["devices"][1]["address"], "0000:00:02.0");
}

TEST_F(Cli, ErrorsAreJsonWithJson) {
  auto r = run({"--json", "show", "0000:01:00.9"});
  EXPECT_EQ(r.status, 2);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["error"]["kind"], "invalid-argument");
  EXPECT_EQ(j["error"]["message"], "invalid function number '9' in '0000:01:00.9'");
}

TEST_F(Cli, UnknownClassFilter) {
  auto r = run({"list", "--class", "toaster"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')), "error: unknown device class 'toaster'");
}

TEST_F(Cli, MissingRootDirectory) {
  auto r = run_cli({"--root", "/nonexistent/host", "list"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("/nonexistent/host"), std::string::npos) << r.err;
}

TEST_F(Cli, UnknownCommand) {
  auto r = run({"frobnicate"});
  EXPECT_EQ(r.status, 2);
}

TEST_F(Cli, ListVerdictsFollowTheGroupRule) {
  auto r = run({"--json", "list"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  std::map<std::string, std::string> verdict;
  for (const auto& d : j["devices"]) verdict[d["address"]] = d["passthrough"]["verdict"];
  EXPECT_EQ(verdict["0000:00:01.0"], "ready");
  EXPECT_EQ(verdict["0000:00:02.0"], "ready");
  EXPECT_EQ(verdict["0000:00:1c.0"], "bridge");
  EXPECT_EQ(verdict["0000:01:00.0"], "needs-group");
  EXPECT_EQ(verdict["0000:01:00.1"], "needs-group");
  EXPECT_EQ(j["summary"]["devices"], 6);
  EXPECT_EQ(j["summary"]["iommu_groups"], 4);
}

TEST_F(Cli, ListFilters) {
  auto r = run({"--json", "list", "--class", "gpu"});
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["devices"].size(), 1u);
  EXPECT_EQ(j["devices"][0]["address"], "0000:01:00.0");
  j = nlohmann::json::parse(run({"--json", "list", "--driver", "none"}).out);
  ASSERT_EQ(j["devices"].size(), 1u);
  EXPECT_EQ(j["devices"][0]["address"], "0000:00:00.0");
  j = nlohmann::json::parse(run({"--json", "list", "--group", "3"}).out);
  EXPECT_EQ(j["devices"].size(), 3u);
  j = nlohmann::json::parse(run({"--json", "list", "--vendor", "10de"}).out);
  EXPECT_EQ(j["devices"].size(), 2u);
}

TEST_F(Cli, GroupsNameWhatMustMove) {
  auto r = run({"--json", "groups", "--group", "3"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["groups"].size(), 1u);
  EXPECT_EQ(j["groups"][0]["viable"], false);
  EXPECT_EQ(j["groups"][0]["must_move"], nlohmann::json::array({"0000:01:00.0", "0000:01:00.1"}));
  EXPECT_EQ(j["groups"][0]["devices"][0]["role"], "stays");
  j = nlohmann::json::parse(run({"--json", "groups", "--group", "2"}).out);
  EXPECT_EQ(j["groups"][0]["viable"], true);
}

TEST_F(Cli, ShowGivesParentsAndLibvirtForms) {
  auto r = run({"--json", "show", "pci_0000_01_00_1"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto d = nlohmann::json::parse(r.out)["devices"][0];
  EXPECT_EQ(d["parents"], nlohmann::json::array({"0000:00:1c.0"}));
  EXPECT_EQ(d["libvirt"]["address_xml"],
            "<address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>");
  EXPECT_EQ(d["iommu_group_members"],
            nlohmann::json::array({"0000:00:1c.0", "0000:01:00.0", "0000:01:00.1"}));
}

}  // namespace
}  // namespace pcipass::test
