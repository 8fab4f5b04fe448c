// Shell completion: the scripts `pcipass completion bash|zsh` prints, driven the way the shells
// drive them (bash: COMP_WORDS and COMP_CWORD set by hand, then the function `complete -p` names;
// zsh: words and CURRENT, with compadd and _describe replaced by functions that print what they
// are given). The expected words come from the command table and from the fixture trees.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/app.h"
#include "cli_harness.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;
using Words = std::vector<std::string>;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `script` with `shell` and returns its stdout, one word a line, sorted.
Words run_shell(const std::string& shell, const std::string& script) {
  TempTree t;
  t.file("/driver", script);
  std::string cmd =
      shell + " " + t.real("/driver") + " > " + t.real("/out") + " 2> " + t.real("/err");
  int status = std::system(cmd.c_str());
  std::ifstream out(t.real("/out")), err(t.real("/err"));
  std::stringstream e;
  e << err.rdbuf();
  EXPECT_EQ(status, 0) << e.str();
  EXPECT_EQ(e.str(), "") << script;
  Words words;
  for (std::string line; std::getline(out, line);)
    if (!line.empty()) words.push_back(line);
  std::sort(words.begin(), words.end());
  return words;
}

class Completion : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* shell : {"bash", "zsh"}) {
      CliRun r = run_cli({"completion", shell});
      ASSERT_EQ(r.status, 0) << r.err;
      scripts_[shell] = r.out;
    }
  }
  // The words bash completes for `line` (the last word is the one under the cursor), with
  // COMP_WORDS split as bash splits it: at spaces and at ':' (COMP_WORDBREAKS).
  Words bash(const Words& line) {
    std::string words = "pcipass", script;
    for (const auto& w : line) {
      std::string rest = w;
      words += " ";
      for (size_t at; (at = rest.find(':')) != std::string::npos; rest = rest.substr(at + 1))
        words += shell_quote(rest.substr(0, at)) + " : ";
      // bash makes no empty word after a trailing ':' (0000:00: is 0000 : 00 :)
      if (!rest.empty() || rest == w) words += shell_quote(rest);
    }
    script =
        scripts_["bash"] +
        "COMP_WORDBREAKS=$' \\t\\n\"\\'><=;|&(:'\n"
        "COMP_WORDS=(" +
        words +
        ")\nCOMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
        "[[ $(complete -p pcipass) == 'complete -F _pcipass pcipass' ]] || echo NOT-REGISTERED\n"
        "fn=$(complete -p pcipass | sed 's/.*-F \\([^ ]*\\).*/\\1/')\n"
        "$fn pcipass\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n";
    return run_shell("bash", script);
  }
  Words zsh(const Words& line) {
    std::string words = "pcipass";
    for (const auto& w : line) words += " " + shell_quote(w);
    std::string script =
        "compadd() { local a; [[ $1 == -a ]] && { for a in ${(P)2}; do print -r -- $a; done; "
        "return; }; }\n"
        "_describe() { local a; for a in ${(P)4}; do print -r -- ${a%%:*}; done; }\n"
        "_files() { print -r -- FILES $*; }\n"
        "words=(pcipass); CURRENT=2\n" +
        scripts_["zsh"] + "\n} >/dev/null\n" +  // the script's own last line runs _pcipass once
        "words=(" + words + ")\nCURRENT=${#words}\n_pcipass\n";
    // The output of the script's own first call (at load) is thrown away.
    script = "{\n" + script;
    return run_shell("zsh -f", script);
  }

  static std::map<std::string, std::string> scripts_;
};
std::map<std::string, std::string> Completion::scripts_;

Words fixture_addresses(const std::string& host, const std::string& prefix = "",
                        const std::string& needs = "") {
  Words out;
  for (const auto& e : fs::directory_iterator(
           source_path("tests/fixtures/hosts/" + host + "/sys/bus/pci/devices"))) {
    std::string name = e.path().filename();
    if (!needs.empty() && !fs::exists(e.path() / needs)) continue;
    if (name.starts_with(prefix)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Words visible_commands(const std::string& prefix) {
  Words out;
  for (const auto& c : cli::commands()) {
    if (cli::hidden_command(c)) continue;
    if (std::string(c.name).starts_with(prefix)) out.push_back(c.name);
    for (const char* a : c.aliases)
      if (std::string(a).starts_with(prefix)) out.push_back(a);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(Completion, BashScriptParses) {
  EXPECT_EQ(run_shell("bash -n", scripts_["bash"]), Words{});
}

TEST_F(Completion, BashCompletesCommands) {
  EXPECT_EQ(bash({""}), visible_commands(""));
  EXPECT_GE(bash({""}).size(), 20u);
  EXPECT_EQ(bash({"re"}), visible_commands("re"));
  EXPECT_EQ(bash({"--json", "gr"}), Words{"groups"});
}

TEST_F(Completion, BashCompletesOptions) {
  EXPECT_EQ(bash({"bind", "--w"}), Words{"--with-group"});
  EXPECT_EQ(bash({"ls", "--cl"}), Words{"--class"});  // an alias
  EXPECT_EQ(bash({"--r"}), Words{"--root"});
  EXPECT_EQ(bash({"tree", "--format", ""}), (Words{"dot", "svg", "text"}));
  EXPECT_EQ(bash({"--color", "n"}), Words{"never"});
  EXPECT_EQ(bash({"vf", ""}), (Words{"create", "list", "remove", "set"}));
  EXPECT_EQ(bash({"vf", "create", "--b"}), Words{"--bind"});
  EXPECT_EQ(bash({"mdev", "create", "--a"}), Words{"--auto"});
}

TEST_F(Completion, BashCompletesAddressesOfTheRootTyped) {
  std::string root = source_path("tests/fixtures/hosts/qemu-q35-iommu-on");
  Words all = fixture_addresses("qemu-q35-iommu-on");
  ASSERT_GE(all.size(), 3u);
  EXPECT_EQ(bash({"--root", root, "show", ""}), all);
  EXPECT_EQ(bash({"--root", root, "bind", "--with-group", all[0], ""}), all);  // DEVICE...
  // After "0000:00:" bash replaces only what follows the last ':'.
  Words tails;
  for (const auto& a : fixture_addresses("qemu-q35-iommu-on", "0000:00:"))
    tails.push_back(a.substr(8));
  ASSERT_FALSE(tails.empty());
  EXPECT_EQ(bash({"--root", root, "plan", "0000:00:"}), tails);
  // Another tree, other addresses; an option's value is not a positional.
  std::string sriov = source_path("tests/fixtures/hosts/sriov-server");
  EXPECT_EQ(bash({"--root", sriov, "setup", "--early-bind", ""}),
            fixture_addresses("sriov-server"));
  EXPECT_EQ(bash({"--root", sriov, "vf", "create", ""}),
            fixture_addresses("sriov-server", "", "sriov_totalvfs"));
  EXPECT_EQ(bash({"--root", sriov, "vf", "create",
                  fixture_addresses("sriov-server", "", "sriov_totalvfs")[0], ""}),
            Words{});                                        // N: nothing to offer
  EXPECT_EQ(bash({"--root", root, "attach", ""}), Words{});  // DOMAIN first
}

TEST_F(Completion, BashCompletesMdevUuids) {
  TempTree t;
  t.dir("/sys/bus/pci/devices/0000:00:02.0");
  t.dir("/sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001");
  EXPECT_EQ(bash({"--root", t.root(), "mdev", "remove", ""}),
            Words{"83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"});
  EXPECT_EQ(bash({"--root", t.root(), "xml", ""}),
            (Words{"0000:00:02.0", "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"}));
}

bool have_zsh() {
  return std::system("command -v zsh >/dev/null 2>&1") == 0;
}

TEST_F(Completion, Zsh) {
  if (!have_zsh()) GTEST_SKIP() << "zsh is not installed (apt install zsh; scripts/install-deps)";
  EXPECT_EQ(run_shell("zsh -n", scripts_["zsh"]), Words{});
  EXPECT_EQ(scripts_["zsh"].rfind("#compdef pcipass\n", 0), 0u);
  EXPECT_EQ(zsh({""}), visible_commands(""));
  Words opts = zsh({"bind", "-"});
  EXPECT_NE(std::find(opts.begin(), opts.end(), "--with-group"), opts.end());
  EXPECT_EQ(zsh({"tree", "--format", ""}), (Words{"dot", "svg", "text"}));
  std::string root = source_path("tests/fixtures/hosts/qemu-q35-iommu-on");
  EXPECT_EQ(zsh({"--root", root, "show", ""}), fixture_addresses("qemu-q35-iommu-on"));
  EXPECT_EQ(zsh({"--root", root, "vf", ""}), (Words{"create", "list", "remove", "set"}));
}

}  // namespace
}  // namespace pcipass::test
