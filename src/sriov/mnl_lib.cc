#include "sriov/mnl_lib.h"

namespace pcipass::sriov {

Result<MnlLib> load_mnl_lib(const char* soname) {
  LibrarySpec spec = kMnlSpec;
  spec.soname = soname;
  DynamicLib dl = TRY(DynamicLib::open(spec));
  MnlLib lib;
#define PCIPASS_MNL_RESOLVE(name) TRY(dl.resolve(lib.name, #name));
  PCIPASS_MNL_FUNCTIONS(PCIPASS_MNL_RESOLVE)
#undef PCIPASS_MNL_RESOLVE
  return lib;
}

Result<const MnlLib*> mnl_lib() {
  static const Result<MnlLib> lib = load_mnl_lib(kMnlLibrary);
  if (!lib) return lib.error();
  return &*lib;
}

}  // namespace pcipass::sriov
