#include "host/kmod_lib.h"

#include "host/dynamic_lib.h"

namespace pcipass {

Result<KmodLib> load_kmod_lib(const char* soname) {
  LibrarySpec spec = kKmodSpec;
  spec.soname = soname;
  DynamicLib dl = TRY(DynamicLib::open(spec));
  KmodLib lib;
#define PCIPASS_KMOD_RESOLVE(name) TRY(dl.resolve(lib.name, #name));
  PCIPASS_KMOD_FUNCTIONS(PCIPASS_KMOD_RESOLVE)
#undef PCIPASS_KMOD_RESOLVE
  return lib;
}

Result<const KmodLib*> kmod_lib() {
  static const Result<KmodLib> lib = load_kmod_lib(kKmodLibrary);
  if (!lib) return lib.error();
  return &*lib;
}

}  // namespace pcipass
