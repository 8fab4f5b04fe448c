#include "snapshot/archive_lib.h"

#include "host/dynamic_lib.h"

namespace pcipass {

Result<ArchiveLib> load_archive_lib(const char* soname) {
  LibrarySpec spec = kArchiveSpec;
  spec.soname = soname;
  DynamicLib dl = TRY(DynamicLib::open(spec));
  ArchiveLib lib;
#define PCIPASS_ARCHIVE_RESOLVE(name) TRY(dl.resolve(lib.name, #name));
  PCIPASS_ARCHIVE_FUNCTIONS(PCIPASS_ARCHIVE_RESOLVE)
#undef PCIPASS_ARCHIVE_RESOLVE
  return lib;
}

Result<const ArchiveLib*> archive_lib() {
  static const Result<ArchiveLib> lib = load_archive_lib(kArchiveLibrary);
  if (!lib) return lib.error();
  return &*lib;
}

}  // namespace pcipass
