// libpci, loaded with dlopen the first time names are looked up: with its libudev and libz tail
// it would otherwise be mapped (and relocated) at every start of every command, though only
// name lookups use it. The header is still libpci-dev's, so the types are checked at build time.
#pragma once

extern "C" {
#include <pci/pci.h>
}

#include "host/dynamic_lib.h"
#include "util/result.h"

namespace pcipass {

// The libpci functions pcipass uses, resolved from libpci.so.3.
struct PciLib {
#define PCIPASS_PCI_FUNCTIONS(X) \
  X(pci_alloc)                   \
  X(pci_cleanup)                 \
  X(pci_set_name_list_path)      \
  X(pci_lookup_name)
#define PCIPASS_PCI_POINTER(name) decltype(&::name) name = nullptr;
  PCIPASS_PCI_FUNCTIONS(PCIPASS_PCI_POINTER)
#undef PCIPASS_PCI_POINTER
};

inline constexpr const char* kPciLibrary = "libpci.so.3";
inline constexpr LibrarySpec kPciSpec = {
    kPciLibrary, "to name PCI IDs",
    "install libpci: apt install libpci3 (dnf install pciutils-libs)"};

// Loads the library once per process; an Error names the library, the missing symbol or
// dlerror(), and the Debian package that provides it.
Result<const PciLib*> pci_lib();
// The same from a given soname (tests point it at a library that does not exist).
Result<PciLib> load_pci_lib(const char* soname);

}  // namespace pcipass
