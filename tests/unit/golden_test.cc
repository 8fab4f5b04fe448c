// Golden outputs: every command, human and JSON, on every host tree in tests/fixtures/hosts.
// PCIPASS_UPDATE_GOLDEN=1 rewrites tests/golden/ (review the diff before committing it).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli_harness.h"

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(source_path("tests/fixtures/hosts")))
    if (e.is_directory()) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct GoldenCase {
  std::string name;
  std::vector<std::string> args;
};

std::vector<GoldenCase> cases_for(const std::string& root) {
  std::vector<GoldenCase> cases;
  for (const char* cmd : {"check", "list", "groups", "tree"}) {
    cases.push_back({cmd, {"--root", root, cmd}});
    cases.push_back({std::string(cmd) + ".json", {"--root", root, "--json", cmd}});
  }
  std::vector<std::string> show = {"--root", root, "show"};
  for (const auto& e : fs::directory_iterator(root + "/sys/bus/pci/devices"))
    show.push_back(e.path().filename());
  std::sort(show.begin() + 3, show.end());
  if (show.size() > 3) {
    cases.push_back({"show", show});
    show.insert(show.begin() + 2, "--json");
    cases.push_back({"show.json", show});
  }
  return cases;
}

class Golden : public ::testing::TestWithParam<std::string> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Golden);

TEST_P(Golden, MatchesRecordedOutput) {
  std::string root = source_path("tests/fixtures/hosts/" + GetParam());
  fs::path dir = source_path("tests/golden/" + GetParam());
  bool update = std::getenv("PCIPASS_UPDATE_GOLDEN") != nullptr;
  if (update) fs::create_directories(dir);
  for (const auto& c : cases_for(root)) {
    CliRun r = run_cli(c.args);
    std::string got = r.out + "[exit " + std::to_string(r.status) + "]\n";
    if (!r.err.empty()) got += "[stderr]\n" + r.err;
    fs::path file = dir / c.name;
    if (update) {
      std::ofstream(file, std::ios::binary) << got;
      continue;
    }
    ASSERT_TRUE(fs::exists(file)) << file << " is missing: run with PCIPASS_UPDATE_GOLDEN=1";
    EXPECT_EQ(read_all(file), got) << "pcipass output changed for " << GetParam() << " " << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Hosts, Golden, ::testing::ValuesIn(fixture_names()), [](const auto& info) {
  std::string n = info.param;
  for (char& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

}  // namespace
}  // namespace pcipass::test
