// The GRUB defaults file (src/boot/grub_defaults.*) and grub.cfg reader. Oracles: parse then print
// gives the same bytes; every editable parameter's bytes are exactly its text; an edit that
// succeeds reads back (parsed again, evaluated as the shell would) as asking for what was edited.
#include <string_view>

#include "boot/grub_cfg.h"
#include "boot/grub_defaults.h"
#include "fuzz_support.h"

using namespace pcipass;
using namespace pcipass::boot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  ShellFile f = ShellFile::parse(kGrubDefaults, text);
  if (f.str() != text) fuzz::violated("parse then print changed the bytes");
  for (const auto& a : f.assignments) {
    if (a.value_begin > a.value_end || a.value_end > text.size())
      fuzz::violated("a value's bytes lie outside the file");
    for (const auto& w : value_words(f, a).words)
      if (w.editable && text.substr(w.begin, w.end - w.begin) != w.text)
        fuzz::violated("an editable parameter's bytes are not its text");
  }
  (void)evaluate({f});
  GrubDefaults g{{f}};
  const Edit edits[] = {{{{"intel_iommu", "on"}}, {{"iommu", "off"}}, {}},
                        {{}, {{"amd_iommu", "off"}}, {{"video", "efifb:off"}}}};
  for (const Edit& e : edits)
    if (auto r = g.edit(e); r && !r->empty()) {
      GrubDefaults after{{ShellFile::parse(kGrubDefaults, r->front().second)}};
      auto line = after.cmdline();
      if (!line || !satisfied(e, *line)) fuzz::violated("an edit does not read back as asked");
    }
  GrubCfg cfg = GrubCfg::parse(text);
  (void)cfg.default_entry(std::nullopt);
  (void)grubenv_value(text, "saved_entry");
  return 0;
}
