#include "host/dynamic_lib.h"

#include <dlfcn.h>

namespace pcipass {

Result<DynamicLib> DynamicLib::open(const LibrarySpec& spec) {
  void* handle = ::dlopen(spec.soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    return missing(spec, why ? why : "not found");
  }
  return DynamicLib(handle, spec);
}

void* DynamicLib::symbol(const char* name) const {
  return ::dlsym(handle_, name);
}

Error DynamicLib::missing(const LibrarySpec& spec, const std::string& why) {
  Error e = Error::state(
      std::string("cannot load ") + spec.soname + " " + spec.purpose + ": " + why, spec.fix);
  return e;
}

}  // namespace pcipass
