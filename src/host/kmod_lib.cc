#include "host/kmod_lib.h"

#include <dlfcn.h>

#include <string>

namespace pcipass {

namespace {

Error missing(const char* soname, const std::string& why) {
  return Error::state(std::string("cannot load ") + soname + " to read kernel modules: " + why,
                      "install libkmod: apt-get install libkmod2 (dnf install kmod-libs)");
}

}  // namespace

Result<KmodLib> load_kmod_lib(const char* soname) {
  // Never unloaded: the functions stay valid for the life of the process.
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    return missing(soname, why ? why : "not found");
  }
  KmodLib lib;
#define PCIPASS_KMOD_RESOLVE(name)                                         \
  lib.name = reinterpret_cast<decltype(lib.name)>(::dlsym(handle, #name)); \
  if (!lib.name) return missing(soname, "it has no " #name);
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
