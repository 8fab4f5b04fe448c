// The man pages (doc/man/*.8.scd, scdoc) against the command line: every command of the table has
// pcipass-NAME.8.scd, and every option and argument that `pcipass NAME --help` (and each
// subcommand's --help) lists is on that page, as *--option* or _ARG_. The help text is parsed, so
// a new option without a line on its page fails here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/app.h"
#include "cli_harness.h"

namespace pcipass::test {
namespace {

std::string read_page(const std::string& page) {
  std::ifstream in(source_path("doc/man/" + page), std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The lines of one section of CLI11's help ("Options:", "Positionals:", "Subcommands:"): its
// entries start with two spaces; wrapped descriptions are indented further.
std::vector<std::string> section_words(const std::string& help, const std::string& title) {
  std::vector<std::string> words;
  std::istringstream in(help);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != ' ') {
      inside = line == title;
      continue;
    }
    if (!inside || line.size() < 3 || line.compare(0, 2, "  ") != 0 || line[2] == ' ') continue;
    words.push_back(line.substr(2, line.find(' ', 2) - 2));
  }
  return words;
}

// "-h,--help" -> {"-h", "--help"}
std::vector<std::string> option_names(const std::string& help) {
  std::vector<std::string> names;
  for (const auto& word : section_words(help, "Options:")) {
    std::istringstream parts(word);
    std::string name;
    while (std::getline(parts, name, ','))
      if (!name.empty()) names.push_back(name);
  }
  return names;
}

std::string help_of(std::vector<std::string> words) {
  words.push_back("--help");
  CliRun r = run_cli(words);
  EXPECT_EQ(r.status, 0) << r.err;
  return r.out;
}

// What `words --help` lists that `page` does not have.
std::vector<std::string> missing_on_page(const std::vector<std::string>& words,
                                         const std::string& page) {
  std::string help = help_of(words), text = read_page(page);
  std::vector<std::string> missing;
  std::vector<std::string> names = option_names(help);
  EXPECT_GE(names.size(), 2u) << "no options parsed from the help of " << words.back() << ":\n"
                              << help;
  for (const auto& n : names)
    if (text.find("*" + n + "*") == std::string::npos) missing.push_back(n);
  for (const auto& p : section_words(help, "Positionals:"))
    if (text.find("_" + p + "_") == std::string::npos) missing.push_back(p);
  return missing;
}

TEST(ManPages, HelpParserFindsEveryKindOfEntry) {
  std::string help = help_of({"bind"});
  auto names = option_names(help);
  for (const char* want : {"-h", "--help", "--json", "--driver", "--owner", "--persist"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want << "\n" << help;
  EXPECT_EQ(section_words(help, "Positionals:"), std::vector<std::string>{"DEVICE"});
  auto subs = section_words(help_of({"vf"}), "Subcommands:");
  EXPECT_EQ(subs, (std::vector<std::string>{"list", "create", "remove", "set"}));
}

TEST(ManPages, EveryCommandHasAPage) {
  ASSERT_FALSE(read_page("pcipass.8.scd").empty());
  std::string main_page = read_page("pcipass.8.scd");
  for (const auto& c : cli::commands()) {
    if (cli::hidden_command(c)) continue;
    std::string page = std::string("pcipass-") + c.name + ".8.scd";
    SCOPED_TRACE(page);
    std::string text = read_page(page);
    ASSERT_FALSE(text.empty()) << "doc/man/" << page << " is missing";
    EXPECT_EQ(text.rfind(std::string("pcipass-") + c.name + "(8)\n", 0), 0u)
        << "the page's first line names another page";
    EXPECT_NE(main_page.find(std::string("*pcipass-") + c.name + "*(8)"), std::string::npos)
        << "pcipass(8) does not list it";
    for (const char* alias : c.aliases)
      EXPECT_NE(text.find(alias), std::string::npos) << "alias " << alias << " not on the page";
  }
}

TEST(ManPages, EveryOptionOfHelpIsOnItsPage) {
  EXPECT_EQ(missing_on_page({}, "pcipass.8.scd"), std::vector<std::string>{});
  for (const auto& c : cli::commands()) {
    if (cli::hidden_command(c)) continue;
    std::string page = std::string("pcipass-") + c.name + ".8.scd";
    SCOPED_TRACE(page);
    EXPECT_EQ(missing_on_page({c.name}, page), std::vector<std::string>{});
    for (const auto& sub : section_words(help_of({c.name}), "Subcommands:")) {
      SCOPED_TRACE(sub);
      EXPECT_NE(read_page(page).find("*" + sub + "*"), std::string::npos) << "not on the page";
      EXPECT_EQ(missing_on_page({c.name, sub}, page), std::vector<std::string>{});
    }
  }
}

// pcipass completion is for packages, not users: hidden from --help and the command list.
TEST(ManPages, CompletionIsHidden) {
  CliRun r = run_cli({"--help"});
  EXPECT_EQ(r.out.find("completion"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tree"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pcipass::test
