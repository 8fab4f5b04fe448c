#include "pci/pci_lib.h"

#include <dlfcn.h>

#include <string>

namespace pcipass {

namespace {

Error missing(const char* soname, const std::string& why) {
  return Error::state(std::string("cannot load ") + soname + " to name PCI IDs: " + why,
                      "install libpci: apt-get install libpci3 (dnf install pciutils-libs)");
}

}  // namespace

Result<PciLib> load_pci_lib(const char* soname) {
  // Never unloaded: the functions stay valid for the life of the process.
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    return missing(soname, why ? why : "not found");
  }
  PciLib lib;
#define PCIPASS_PCI_RESOLVE(name)                                          \
  lib.name = reinterpret_cast<decltype(lib.name)>(::dlsym(handle, #name)); \
  if (!lib.name) return missing(soname, "it has no " #name);
  PCIPASS_PCI_FUNCTIONS(PCIPASS_PCI_RESOLVE)
#undef PCIPASS_PCI_RESOLVE
  return lib;
}

Result<const PciLib*> pci_lib() {
  static const Result<PciLib> lib = load_pci_lib(kPciLibrary);
  if (!lib) return lib.error();
  return &*lib;
}

}  // namespace pcipass
