// The ports stay the only doors: programs are started only by the runner (src/host/runner.cc),
// and the environment is read only where the process context is built. Scans src/ as text.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;

// Comments and string literals can name a call without making it.
std::string code_only(const std::string& line) {
  std::string s;
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '/' && i + 1 < line.size() && line[i + 1] == '/') break;
    if (c == '"') in_string = true;
    s += c;
  }
  return s;
}

// "src/x.cc:12: line" for every call matching `pattern` outside the allowed files.
std::vector<std::string> calls(const std::regex& pattern, const std::set<std::string>& allowed) {
  std::vector<std::string> found;
  fs::path src = fs::path(PCIPASS_SOURCE_DIR) / "src";
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    auto ext = e.path().extension();
    if (!e.is_regular_file() || (ext != ".cc" && ext != ".h")) continue;
    std::string rel = fs::relative(e.path(), PCIPASS_SOURCE_DIR).generic_string();
    if (allowed.count(rel)) continue;
    std::ifstream in(e.path());
    std::string line;
    bool in_comment = false;
    for (int n = 1; std::getline(in, line); ++n) {
      if (in_comment) {
        auto end = line.find("*/");
        if (end == std::string::npos) continue;
        line = line.substr(end + 2), in_comment = false;
      }
      if (auto start = line.find("/*"); start != std::string::npos) {
        in_comment = line.find("*/", start) == std::string::npos;
        line = line.substr(0, start);
      }
      if (std::regex_search(code_only(line), pattern))
        found.push_back(rel + ":" + std::to_string(n) + ": " + line);
    }
  }
  return found;
}

std::string joined(const std::vector<std::string>& v) {
  std::ostringstream s;
  for (const auto& l : v) s << "\n  " << l;
  return s.str();
}

TEST(Architecture, OnlyTheRunnerStartsPrograms) {
  std::regex start_program(
      R"((^|[^A-Za-z0-9_.>])(system|popen|fork|vfork|clone|execl|execlp|execle|execv|execvp|)"
      R"(execvpe|execve|execveat|fexecve|posix_spawn\w*)\s*\()");
  // main.cc is the process, not the library: it replaces itself (execv) with its dynamically
  // linked twin for the commands that reach libvirt, before anything is read (docs/vm.md).
  auto found = calls(start_program, {"src/host/runner.cc", "src/cli/main.cc"});
  EXPECT_TRUE(found.empty()) << "programs are run through CommandRunner (src/host/runner.h):"
                             << joined(found);
}

TEST(Architecture, OnlyTheProcessContextReadsTheEnvironment) {
  std::regex read_env(R"((^|[^A-Za-z0-9_.>])(secure_getenv|getenv)\s*\()");
  auto found = calls(read_env, {
                                   "src/cli/main.cc",
                                   "src/host/context.cc",
                               });
  EXPECT_TRUE(found.empty()) << "the environment arrives in ProcessContext (src/host/context.h):"
                             << joined(found);
}

// The scanner itself: a call is found, a comment or string naming one is not.
TEST(Architecture, ScannerSeesCallsNotMentions) {
  std::regex r(R"((^|[^A-Za-z0-9_.>])(system|popen|fork)\s*\()");
  EXPECT_TRUE(std::regex_search(code_only("  int rc = ::system(cmd);"), r));
  EXPECT_TRUE(std::regex_search(code_only("pid_t p = fork ();"), r));
  EXPECT_FALSE(std::regex_search(code_only("  // never call system() here"), r));
  EXPECT_FALSE(std::regex_search(code_only("  log(\"popen(x) failed\");"), r));
  EXPECT_FALSE(std::regex_search(code_only("  std::filesystem::path p;"), r));
  EXPECT_FALSE(std::regex_search(code_only("  h.system(1);"), r));
}

}  // namespace
}  // namespace pcipass::test
