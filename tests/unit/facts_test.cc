// pcipass facts: Ansible local facts say what check, groups and list say, on every fixture host,
// in one JSON document whatever --json says.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_harness.h"

namespace pcipass::test {
namespace {

using nlohmann::json;

json run_json(const std::vector<std::string>& args) {
  auto r = run_cli(args);
  EXPECT_TRUE(r.status == 0 || r.status == 1 || r.status == 3) << r.err;
  return json::parse(r.out);
}

class Facts : public ::testing::TestWithParam<std::string> {};

TEST_P(Facts, SayWhatCheckGroupsAndListSay) {
  std::string root = source_path("tests/fixtures/hosts/" + GetParam());
  auto r = run_cli({"--root", root, "facts"});
  ASSERT_EQ(r.status, 0) << r.err;
  json f = json::parse(r.out);
  EXPECT_EQ(f["schema"], "pcipass.facts/1");
  EXPECT_EQ(run_cli({"--root", root, "--json", "facts"}).out, r.out);

  json check = run_json({"--root", root, "--json", "check"});
  EXPECT_EQ(f["readiness"], check["worst"]);
  EXPECT_EQ(f["ready"], check["worst"] != "FAIL");
  // Each check id with its worst status (persisted-device comes once per device).
  std::map<std::string, std::string> worst;
  auto rank = [](const std::string& s) { return s == "FAIL" ? 2 : s == "WARN" ? 1 : 0; };
  for (const auto& c : check["checks"]) {
    std::string id = c["id"], st = c["status"];
    if (!worst.count(id) || rank(st) > rank(worst[id])) worst[id] = st;
  }
  ASSERT_EQ(f["checks"].size(), worst.size());
  for (const auto& [id, st] : worst) EXPECT_EQ(f["checks"][id], st) << id;

  json list = run_json({"--root", root, "--json", "list"});
  ASSERT_EQ(f["devices"].size(), list["devices"].size());
  for (size_t i = 0; i < list["devices"].size(); ++i) {
    const auto& l = list["devices"][i];
    const auto& d = f["devices"][i];
    EXPECT_EQ(d["address"], l["address"]);
    EXPECT_EQ(d["driver"], l["driver"]);
    EXPECT_EQ(d["iommu_group"], l["iommu_group"]);
    EXPECT_EQ(d["verdict"], l["passthrough"]["verdict"]) << d["address"];
  }

  json groups = run_json({"--root", root, "--json", "groups"});
  ASSERT_EQ(f["groups"].size(), groups["groups"].size());
  for (size_t i = 0; i < groups["groups"].size(); ++i) {
    EXPECT_EQ(f["groups"][i]["id"], groups["groups"][i]["id"]);
    EXPECT_EQ(f["groups"][i]["viable"], groups["groups"][i]["viable"]);
    EXPECT_EQ(f["groups"][i]["must_move"], groups["groups"][i]["must_move"]);
  }
}

std::vector<std::string> hosts() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(source_path("tests/fixtures/hosts")))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

INSTANTIATE_TEST_SUITE_P(Hosts, Facts, ::testing::ValuesIn(hosts()), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});

}  // namespace
}  // namespace pcipass::test
