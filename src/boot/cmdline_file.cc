#include "boot/cmdline_file.h"

#include <fmt/format.h>

#include <algorithm>

namespace pcipass::boot {

// Words are split as the kernel splits them (is_cmdline_space: \v and \f too; kernel-install
// passes them through, and a fuzz finding showed an edit missing a word with a \v inside).
CmdlineFile CmdlineFile::parse(std::string text) {
  CmdlineFile f;
  f.text = std::move(text);
  const std::string& t = f.text;
  size_t i = 0;
  while (i < t.size()) {
    if (is_cmdline_space(t[i])) {
      ++i;
      continue;
    }
    Word w;
    w.begin = i;
    // As the kernel splits (lib/cmdline.c next_arg): white space inside double quotes does not.
    for (bool quoted = false; i < t.size() && (quoted || !is_cmdline_space(t[i])); ++i)
      if (t[i] == '"') quoted = !quoted;
    w.end = i;
    w.text = t.substr(w.begin, w.end - w.begin);
    w.space_before = w.begin;
    while (w.space_before > 0 && (t[w.space_before - 1] == ' ' || t[w.space_before - 1] == '\t'))
      --w.space_before;
    w.space_after = w.end;
    while (w.space_after < t.size() && (t[w.space_after] == ' ' || t[w.space_after] == '\t'))
      ++w.space_after;
    // After `--` the words are init's arguments, not the kernel's: none is edited, and a new
    // parameter goes just before the separator. The kernel strips a word's quotes before it
    // compares (lib/cmdline.c next_arg), so `"--"` ends its parameters too (found by
    // fuzz/kernel_cmdline_file: the new parameter went after it, to init).
    if (KernelCmdline::parse(w.text).has_init_separator()) {
      f.value.insert_at = w.begin;
      f.value.insert_prefix = "";
      f.value.insert_suffix = " ";
      f.init_args = true;
      break;
    }
    // kernel-install joins the lines with spaces: a parameter's quotes are the kernel's, kept.
    f.value.words.push_back(std::move(w));
  }
  if (f.init_args) {
    f.value.quote = '\'';
    return f;
  }
  f.value.insert_at = f.value.words.empty() ? 0 : f.value.words.back().end;
  f.value.insert_prefix = f.value.words.empty() ? "" : " ";
  if (t.empty()) f.value.insert_suffix = "\n";
  f.value.quote = '\'';  // no shell: anything but a quote goes in as it is
  return f;
}

KernelCmdline CmdlineFile::cmdline() const {
  return KernelCmdline::parse(text);
}

Result<std::string> CmdlineFile::edit(const Edit& e, const std::string& path) const {
  // An unclosed double quote runs to the end of the line (lib/cmdline.c next_arg): whatever is
  // appended would become part of that value, not a parameter (a fuzz finding).
  if (std::count(text.begin(), text.end(), '"') % 2 != 0)
    return Error::invalid(
        fmt::format("{} has an unclosed double quote", path),
        fmt::format("close or remove it in {}, then run pcipass setup again", path));
  auto splices = TRY(plan_splices({value}, 0, e, path));
  return apply_splices(text, splices[0]);
}

std::string cmdline_from_proc(const std::string& proc_cmdline) {
  KernelCmdline c = KernelCmdline::parse(proc_cmdline);
  std::string out;
  for (const auto& p : c.params()) {
    if (p.first == "BOOT_IMAGE" || p.first == "initrd") continue;
    out += (out.empty() ? "" : " ") + KernelCmdline::format(p);
  }
  return out + "\n";
}

}  // namespace pcipass::boot
