#include "snapshot/archive_lib.h"

#include <dlfcn.h>

#include <string>

namespace pcipass {

namespace {

Error missing(const char* soname, const std::string& why) {
  return Error::state(std::string("cannot load ") + soname + " to write the snapshot: " + why,
                      "install libarchive: apt-get install libarchive13 (dnf install libarchive)");
}

}  // namespace

Result<ArchiveLib> load_archive_lib(const char* soname) {
  // Never unloaded: the functions stay valid for the life of the process.
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    return missing(soname, why ? why : "not found");
  }
  ArchiveLib lib;
#define PCIPASS_ARCHIVE_RESOLVE(name)                                      \
  lib.name = reinterpret_cast<decltype(lib.name)>(::dlsym(handle, #name)); \
  if (!lib.name) return missing(soname, "it has no " #name);
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
