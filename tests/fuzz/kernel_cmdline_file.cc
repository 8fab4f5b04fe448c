// /etc/kernel/cmdline (src/boot/cmdline_file.*). Oracles: parse then print gives the same bytes;
// each parameter's bytes are its text; an edit that succeeds reads back as asking for the edit.
#include <string_view>

#include "boot/cmdline_file.h"
#include "fuzz_support.h"

using namespace pcipass;
using namespace pcipass::boot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  CmdlineFile f = CmdlineFile::parse(text);
  if (f.str() != text) fuzz::violated("parse then print changed the bytes");
  for (const auto& w : f.value.words)
    if (text.substr(w.begin, w.end - w.begin) != w.text)
      fuzz::violated("a parameter's bytes are not its text");
  const Edit edits[] = {{{{"intel_iommu", "on"}, {"iommu", "pt"}}, {{"iommu", "off"}}, {}},
                        {{}, {{"amd_iommu", "off"}}, {{"initcall_blacklist", "sysfb_init"}}}};
  for (const Edit& e : edits)
    if (auto r = f.edit(e, kKernelCmdlineFile))
      if (!satisfied(e, CmdlineFile::parse(*r).cmdline()))
        fuzz::violated("an edit does not read back as asked");
  (void)cmdline_from_proc(text);
  return 0;
}
