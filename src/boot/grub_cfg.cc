#include "boot/grub_cfg.h"

#include <fmt/format.h>

#include <charconv>
#include <sstream>

namespace pcipass::boot {

namespace {

// GRUB's words: white space separates, '...' and "..." group, a backslash escapes.
std::vector<std::string> grub_words(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\r') {
      if (in_word) out.push_back(cur), cur.clear(), in_word = false;
      continue;
    }
    if (c == '#' && !in_word) break;
    in_word = true;
    if (c == '\\' && i + 1 < line.size()) {
      cur += line[++i];
    } else if (c == '\'' || c == '"') {
      size_t close = line.find(c, i + 1);
      if (close == std::string::npos) close = line.size();
      cur += line.substr(i + 1, close - i - 1);
      i = close;
    } else {
      cur += c;
    }
  }
  if (in_word) out.push_back(cur);
  return out;
}

MenuEntry header(const std::vector<std::string>& w) {
  MenuEntry e;
  e.submenu = w[0] == "submenu";
  if (w.size() > 1) e.title = w[1];
  for (size_t i = 2; i + 1 < w.size(); ++i)
    if (w[i] == "$menuentry_id_option" || w[i] == "${menuentry_id_option}" || w[i] == "--id")
      e.id = w[i + 1];
  return e;
}

const MenuEntry* find(const std::vector<MenuEntry>& list, const std::string& key) {
  size_t n = 0;
  auto r = std::from_chars(key.data(), key.data() + key.size(), n);
  if (r.ec == std::errc() && r.ptr == key.data() + key.size())
    return n < list.size() ? &list[n] : nullptr;
  for (const auto& e : list)
    if (e.title == key || (!e.id.empty() && e.id == key)) return &e;
  return nullptr;
}

}  // namespace

GrubCfg GrubCfg::parse(const std::string& text) {
  GrubCfg cfg;
  std::vector<std::vector<MenuEntry>*> lists = {&cfg.entries};
  std::vector<bool> is_menu;  // one per open block: a menuentry or submenu, or other
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto w = grub_words(line);
    if (w.empty()) continue;
    if (w[0] == "}") {
      if (!is_menu.empty()) {
        if (is_menu.back() && lists.size() > 1) lists.pop_back();
        is_menu.pop_back();
      }
      continue;
    }
    if (w[0] == "blscfg") cfg.blscfg = true;
    if ((w[0] == "menuentry" || w[0] == "submenu") && w.back() == "{") {
      lists.back()->push_back(header(w));
      MenuEntry& e = lists.back()->back();
      lists.push_back(&e.children);
      is_menu.push_back(true);
      continue;
    }
    if (w.back() == "{") {
      is_menu.push_back(false);
      continue;
    }
    if ((w[0] == "linux" || w[0] == "linuxefi" || w[0] == "linux16") && lists.size() > 1 &&
        w.size() >= 2) {
      // The entry is the one whose children list is on top: find it through the list below.
      MenuEntry& e = lists[lists.size() - 2]->back();
      if (!e.has_linux) {
        e.has_linux = true;
        size_t at = line.find(w[1]);
        e.linux_args = at == std::string::npos ? "" : line.substr(at + w[1].size());
      }
      continue;
    }
    if (w[0] == "set" && w.size() >= 2 && w[1].starts_with("default=")) {
      std::string v = w[1].substr(8);
      if (v != "${next_entry}" && v != "$next_entry") cfg.default_value = v;
    }
  }
  return cfg;
}

Result<const MenuEntry*> GrubCfg::default_entry(const std::optional<std::string>& saved) const {
  bool from_env = default_value == "${saved_entry}" || default_value == "$saved_entry";
  std::string key = from_env ? saved.value_or(std::string()) : default_value;
  if (key.empty()) key.push_back('0');  // (not `= "0"`: g++ 12 -O2 warns -Wrestrict on it)
  const std::vector<MenuEntry>* list = &entries;
  const MenuEntry* e = nullptr;
  std::string rest = key;
  while (true) {
    size_t gt = rest.find('>');
    e = find(*list, rest.substr(0, gt));
    if (!e)
      return Error::not_found(fmt::format("grub.cfg has no menu entry '{}' (its default)", key));
    if (gt == std::string::npos) break;
    list = &e->children;
    rest = rest.substr(gt + 1);
  }
  if (e->submenu) {
    if (e->children.empty())
      return Error::not_found(fmt::format("grub.cfg's default '{}' is an empty submenu", key));
    e = &e->children.front();
  }
  return e;
}

std::optional<std::string> grubenv_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(key + "=")) return line.substr(key.size() + 1);
  return std::nullopt;
}

}  // namespace pcipass::boot
