// The kernel command line (/proc/cmdline, or a boot loader's GRUB_CMDLINE_LINUX), split the way
// the kernel splits it (lib/cmdline.c next_arg, kernel/params.c parse_args):
//   - parameters are separated by white space; leading and trailing space is ignored;
//   - double quotes group: `key="a b"` has the value `a b`, `"key=a b"` too; a quote in the
//     middle of a word stays part of it;
//   - `key=value` has a value (possibly empty: `key=`), `key` alone has none;
//   - a bare `--` ends the kernel's parameters: what follows is handed to init.
// Every occurrence is kept in order; lookups use the last one, as the kernel's own parameters do.
// Keys with a dot (module parameters such as `vfio-pci.ids`) compare with '-' and '_' equal, as
// the kernel compares them; other keys compare exactly.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace pcipass {

class KernelCmdline {
 public:
  using Param = std::pair<std::string, std::optional<std::string>>;

  static KernelCmdline parse(std::string_view text);

  // Kernel parameters in order (those before `--`).
  const std::vector<Param>& params() const { return params_; }
  // Arguments after `--` for init, each as written ("--flag", "key=value").
  const std::vector<std::string>& init_args() const { return init_args_; }
  // True when the line had a `--`, even with nothing after it.
  bool has_init_separator() const { return separator_; }
  bool empty() const { return params_.empty() && !separator_; }

  // Any occurrence of `key`, with or without a value.
  bool has(std::string_view key) const;
  // The last occurrence of `key`; nullptr when absent.
  const Param* last(std::string_view key) const;
  // The value of the last occurrence; nullopt when absent or when it has no value (`key`).
  std::optional<std::string> get(std::string_view key) const;
  // Values of every occurrence that has one, in order.
  std::vector<std::string> values(std::string_view key) const;
  // Comma-separated items of every value of `key`, in order
  // ("intel_iommu=on,igfx_off intel_iommu=sm_on" -> on, igfx_off, sm_on).
  std::vector<std::string> options(std::string_view key) const;

  // Editing (for boot loader command lines). set() replaces every occurrence with one at the
  // place of the first (appended when absent); add() appends; remove() drops every occurrence
  // (or those with the given value) and says how many went.
  void set(std::string_view key, std::optional<std::string> value);
  void add(std::string key, std::optional<std::string> value);
  size_t remove(std::string_view key);
  size_t remove(std::string_view key, std::string_view value);

  // The line again, one space between parameters; values with white space are quoted
  // (`key="a b"`). parse(str()) gives the same parameters back; a parameter that no spelling can
  // carry (the kernel's quotes cannot: a key with a quote before white space, `a"b c`) is an
  // Error naming it rather than a line that reads back differently.
  Result<std::string> str() const;
  // One parameter as it would be written: "key", "key=value", "key=\"a b\"". For display: when
  // no spelling reads back as `p` (see spell), the plainest one.
  static std::string format(const Param& p);
  // The first of the usual spellings that parse() reads back as exactly `p`, also when other
  // parameters follow it unless it is the `last`; nullopt when none does.
  static std::optional<std::string> spell(const Param& p, bool last = false);

  // Key comparison as described above.
  static bool key_equal(std::string_view a, std::string_view b);

 private:
  std::vector<Param> params_;
  std::vector<std::string> init_args_;
  bool separator_ = false;
};

// The kernel's kstrtobool: y/Y/1/on -> true, n/N/0/off -> false (first characters decide, as
// in the kernel); nullopt for anything else.
std::optional<bool> parse_kernel_bool(std::string_view s);

// White space as the kernel splits its command line (lib/cmdline.c next_arg, isspace()): \v and
// \f too. Every editor of a file that becomes a command line splits with this.
bool is_cmdline_space(char c);

// What the IOMMU-related parameters ask of an x86 kernel, following the kernel's own parsing
// of intel_iommu=, amd_iommu=, iommu=, intremap= and nointremap.
struct IommuCmdline {
  std::optional<bool> intel_iommu;  // last of intel_iommu=on / intel_iommu=off, if any
  bool amd_iommu_off = false;       // amd_iommu=off anywhere (the kernel never re-enables)
  bool iommu_off = false;           // iommu=off anywhere: no IOMMU at all
  std::optional<bool> iommu_pt;     // last of iommu=pt / iommu=nopt (iommu.passthrough=1/0)
  bool intremap_off = false;        // interrupt remapping disabled (intremap=off, nointremap)
  std::string intremap_off_param;   // which parameter disabled it, as written
};
IommuCmdline iommu_settings(const KernelCmdline& cmdline);

}  // namespace pcipass
