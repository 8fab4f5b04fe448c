// The generated grub.cfg, read for what the next boot uses: its menu entries (inside submenus
// too) and the default one, from `set default=` as 00_header writes it (a number, "1>2", a
// title or an id, or ${saved_entry} from grubenv), and that entry's `linux` line.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace pcipass::boot {

struct MenuEntry {
  std::string title;
  std::string id;  // --id or $menuentry_id_option
  bool submenu = false;
  std::string linux_args;  // the `linux` line after the kernel's path; entries only
  bool has_linux = false;
  std::vector<MenuEntry> children;  // submenus only
};

struct GrubCfg {
  std::vector<MenuEntry> entries;
  std::string default_value = "0";  // as written, before ${saved_entry} is resolved
  bool blscfg = false;              // entries come from /boot/loader/entries (Fedora)
  static GrubCfg parse(const std::string& text);
  // The default entry; `saved` is grubenv's saved_entry. An error names what could not be found.
  Result<const MenuEntry*> default_entry(const std::optional<std::string>& saved) const;
};

// saved_entry= (or any key) of a grubenv file's text.
std::optional<std::string> grubenv_value(const std::string& text, const std::string& key);

}  // namespace pcipass::boot
