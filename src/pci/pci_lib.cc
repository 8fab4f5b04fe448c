#include "pci/pci_lib.h"

#include "host/dynamic_lib.h"

namespace pcipass {

Result<PciLib> load_pci_lib(const char* soname) {
  LibrarySpec spec = kPciSpec;
  spec.soname = soname;
  DynamicLib dl = TRY(DynamicLib::open(spec));
  PciLib lib;
#define PCIPASS_PCI_RESOLVE(name) TRY(dl.resolve(lib.name, #name));
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
