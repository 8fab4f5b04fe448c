// Kernel parameters as they are written in a configuration file, with where each one's bytes
// are, so that an edit changes only those bytes: the GRUB defaults file's values and
// /etc/kernel/cmdline are both edited through this.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "host/cmdline.h"

namespace pcipass::boot {

// One parameter as written: its text and its bytes [begin, end) in the file. `editable` is false
// when its bytes are not one plain run of the file (an escape, a quote or a variable inside it).
struct Word {
  std::string text;
  size_t begin = 0, end = 0;
  bool editable = true;
  char quote = '\0';  // the quoting its bytes are in
  // Bytes of white space just before and just after it that belong to the same value and may go
  // with it when it is removed: [space_before, begin) and [end, space_after).
  size_t space_before = 0, space_after = 0;
};

// Where the words of one value live, and how a new parameter is inserted there.
struct Value {
  std::vector<Word> words;
  size_t insert_at = 0;       // where an added parameter goes
  std::string insert_prefix;  // written before it ("" or " ")
  std::string insert_suffix;  // after it (a closing quote when the value had none)
  char quote = '\0';          // the quoting at the insertion point: '\0', '\'' or '"'
  bool can_insert = true;
};

// Replace [begin, end) by `text`; an insertion has begin == end.
struct Splice {
  size_t begin = 0, end = 0;
  std::string text;
};
// `text` with the splices made; they must not overlap.
std::string apply_splices(const std::string& text, std::vector<Splice> splices);

// What the command line must have: each of `want` present with its value (an occurrence of its
// key with another value is contrary and goes: intel_iommu=off for intel_iommu=on), each of
// `drop` absent (a value of nullopt: every occurrence of the key).
// `also`: present as given, other values of its key kept (initcall_blacklist=, video=: a key
// that may rightly appear several times).
struct Edit {
  std::vector<KernelCmdline::Param> want;
  std::vector<KernelCmdline::Param> drop;
  std::vector<KernelCmdline::Param> also;
  bool empty() const { return want.empty() && drop.empty() && also.empty(); }
};

// "intel_iommu=on, without amd_iommu=off", for messages.
std::string describe(const Edit& e);

// Whether `p` is contrary to the edit (must go), and whether `line` already satisfies it.
bool unwanted(const Edit& e, const KernelCmdline::Param& p);
bool satisfied(const Edit& e, const KernelCmdline& line);
// The parameters of `line` that must go, as written, and those of `want` missing from it.
std::vector<std::string> to_remove(const Edit& e, const KernelCmdline& line);
std::vector<std::string> to_add(const Edit& e, const KernelCmdline& line);

// Splices for values that hold parameters: a contrary parameter is replaced in place by the
// wanted one (intel_iommu=off -> intel_iommu=on) where its quoting allows, other unwanted ones
// are removed with one space beside them, and wanted ones still missing are inserted into
// `values[target]`. `present`: what the whole command line (all values) has after removal, so a
// parameter given by another value is not added twice. Errors name a parameter that cannot be
// edited without changing other bytes.
Result<std::vector<std::vector<Splice>>> plan_splices(const std::vector<Value>& values,
                                                      size_t target, const Edit& e,
                                                      const std::string& where);

// Whether `text` can be written unchanged inside this quoting.
bool fits(const std::string& text, char quote);

}  // namespace pcipass::boot
