// mkinitcpio.conf (and its drop-ins): bash that mkinitcpio sources. pcipass reads and edits only
// its array assignments, NAME=(...) and NAME+=(...), over one line or several, words quoted or
// not, comments between them; every other byte is kept as it is. The parse is a list of segments
// whose concatenation is the file again, byte for byte (the round trip tests/fuzz checks).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace pcipass::initramfs {

struct ArrayWord {
  std::string before;  // white space, newlines and comments since the previous word or '('
  std::string raw;     // as written: "vfio", 'a b', "x"y
  std::string value;   // as bash reads it: quotes and backslashes removed
};

struct ShellArray {
  std::string head;  // "MODULES=(" or "  MODULES+=("
  std::string name;  // "MODULES"
  bool append = false;
  std::vector<ArrayWord> words;
  std::string tail;  // what comes after the last word, before ')'
  int line = 0;      // where it starts, from 1
};

struct Segment {
  std::string text;                 // the bytes between arrays
  std::optional<ShellArray> array;  // or an array
  std::string print() const;
};

struct ShellConf {
  std::vector<Segment> segments;
  std::string print() const;  // the file again
  std::vector<const ShellArray*> arrays(std::string_view name) const;
  // NAME="..." assignments (the string form mkinitcpio read before arrays): their line numbers.
  std::vector<int> string_assignments(std::string_view name) const;
};

// `path` names the file in errors: an array whose quote or ')' is never closed.
Result<ShellConf> parse_shell_conf(std::string_view text, const std::string& path);

// `text` with every word of `words` that no NAME array lists yet appended to the last NAME array,
// or, where there is none, to a new line `NAME<op>(words)` at the end (op "=" or "+="). Modules
// compare with '-' and '_' alike when `modules` is set. A file already listing them is returned
// as it is.
Result<std::string> with_array_words(std::string_view text, const std::string& path,
                                     const std::string& name, const std::vector<std::string>& words,
                                     const char* op, bool modules);

}  // namespace pcipass::initramfs
