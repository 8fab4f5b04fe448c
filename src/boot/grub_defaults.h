// The GRUB defaults: /etc/default/grub, then /etc/default/grub.d/*.cfg in name order, sourced as
// shell by grub-mkconfig (and so by update-grub). pcipass reads the assignments the way the shell
// does (quotes, escapes, $VAR and ${VAR} from earlier assignments, comments; the last assignment
// wins) and edits only the bytes of the parameters it changes: everything else in every file
// stays byte for byte (CRLF, no trailing newline, other variables, other parameters).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "boot/words.h"
#include "host/host_fs.h"

namespace pcipass::boot {

inline constexpr const char* kGrubDefaults = "/etc/default/grub";
inline constexpr const char* kGrubDropins = "/etc/default/grub.d";

// One character of a value, or a variable expanded there.
struct Piece {
  char c = '\0';
  std::string var;    // non-empty: $var / ${var}
  size_t raw = 0;     // its offset in the file
  char quote = '\0';  // '\0', '\'' or '"'
};

struct Assignment {
  std::string name;
  size_t line_begin = 0;                  // where its line starts
  size_t value_begin = 0, value_end = 0;  // the value's bytes, quotes included
  std::vector<Piece> pieces;
  // $(...), `...`, or a quote never closed: the value cannot be known or edited.
  bool opaque = false;
};

struct ShellFile {
  std::string path;
  std::string text;  // the file as read: str() of an unedited file is these bytes
  std::vector<Assignment> assignments;
  static ShellFile parse(std::string path, std::string text);
  const std::string& str() const { return text; }
};

// The values of the variables after sourcing `files` in order; a variable whose value could not
// be known (see opaque) maps to nullopt.
std::map<std::string, std::optional<std::string>> evaluate(const std::vector<ShellFile>& files);

// The parameters of one assignment's value, with their bytes (for words.h's editing).
Value value_words(const ShellFile& f, const Assignment& a);

struct GrubDefaults {
  std::vector<ShellFile> files;  // /etc/default/grub first

  static Result<GrubDefaults> read(const HostFs& fs);
  // GRUB_CMDLINE_LINUX then GRUB_CMDLINE_LINUX_DEFAULT, as grub-mkconfig puts them on the
  // default entry's linux line; an Error when one of them cannot be known.
  Result<KernelCmdline> cmdline() const;
  // Where the effective assignment of `name` is: "/etc/default/grub.d/50-cloudimg.cfg line 3".
  std::optional<std::string> where(const std::string& name) const;
  // The files `e` changes, with their new bytes (unchanged files are left out). Parameters are
  // added to the effective GRUB_CMDLINE_LINUX_DEFAULT (the last assignment, in whichever file),
  // else GRUB_CMDLINE_LINUX, else a new GRUB_CMDLINE_LINUX_DEFAULT line in /etc/default/grub;
  // unwanted ones are removed from every assignment that has them.
  Result<std::vector<std::pair<std::string, std::string>>> edit(const Edit& e) const;
};

}  // namespace pcipass::boot
