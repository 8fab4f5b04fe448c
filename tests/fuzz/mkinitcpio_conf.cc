// mkinitcpio.conf's arrays (src/initramfs/mkinitcpio_conf.*). Oracles: the round trip, print of
// the parse gives the same bytes; an edit gives a file that parses again, lists the modules, and
// a second edit leaves as it is.
#include <algorithm>
#include <string_view>

#include "fuzz_support.h"
#include "initramfs/mkinitcpio_conf.h"

using namespace pcipass;
using namespace pcipass::initramfs;

namespace {

bool lists(const ShellConf& c, const std::string& module) {
  for (const ShellArray* a : c.arrays("MODULES"))
    for (const auto& w : a->words) {
      std::string v = w.value;
      std::replace(v.begin(), v.end(), '-', '_');
      if (v == module) return true;
    }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = parse_shell_conf(text, "mkinitcpio.conf");
  if (!c) return 0;
  if (c->print() != text) fuzz::violated("print(parse(x)) is not x");
  const std::vector<std::string> modules = {"vfio", "vfio_pci"};
  for (const char* op : {"=", "+="}) {
    auto edited = with_array_words(text, "mkinitcpio.conf", "MODULES", modules, op, true);
    if (!edited) continue;
    auto again = parse_shell_conf(*edited, "mkinitcpio.conf");
    if (!again) fuzz::violated("an edit made the file unreadable");
    for (const auto& m : modules)
      if (!lists(*again, m)) fuzz::violated("an edit did not list the module");
    auto twice = with_array_words(*edited, "mkinitcpio.conf", "MODULES", modules, op, true);
    if (!twice || *twice != *edited) fuzz::violated("a second edit changed the file");
  }
  return 0;
}
