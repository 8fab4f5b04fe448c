// A host tree's state for fault-injection tests: equal states mean the host is as it was.
#pragma once

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "temp_tree.h"

namespace pcipass::test {

// The whole tree but pcipass's own records (change sets under /var, the lock under /run/pcipass):
// every entry, one line each, a file with its mode and bytes (newlines shown as '|'), a link with
// its target.
inline std::string host_state(const TempTree& t) {
  namespace fs = std::filesystem;
  std::vector<std::string> lines;
  for (auto it = fs::recursive_directory_iterator(t.root());
       it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = it->path().string().substr(t.root().size());
    if (rel == "/var" || rel == "/run/pcipass/lock") {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (rel == "/run/pcipass") continue;  // the lock's directory
    auto st = it->symlink_status();
    std::string content = fs::is_regular_file(st) ? t.read(rel) : std::string();
    std::replace(content.begin(), content.end(), '\n', '|');
    if (fs::is_symlink(st))
      lines.push_back(rel + " -> " + fs::read_symlink(it->path()).string());
    else if (fs::is_directory(st))
      lines.push_back(rel + "/");
    else
      lines.push_back(rel + " " + std::to_string(static_cast<int>(st.permissions())) + " [" +
                      content + "]");
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// The lines only one of two states has ("" when they are equal), for short failure messages.
inline std::string changed_lines(const std::string& before, const std::string& after) {
  auto lines = [](const std::string& s) {
    std::set<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.insert(l.substr(0, 160));
    return out;
  };
  auto a = lines(before), b = lines(after);
  std::string out;
  for (const auto& l : a)
    if (!b.count(l)) out += "- " + l + "\n";
  for (const auto& l : b)
    if (!a.count(l)) out += "+ " + l + "\n";
  return out;
}

}  // namespace pcipass::test
