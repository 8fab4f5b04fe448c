// libkmod, loaded with dlopen the first time a module index is opened or a module loaded: with
// its libcrypto, libzstd and liblzma tail it would otherwise be mapped (and relocated) at every
// start of every command. The header is still libkmod-dev's, so the types are checked at build
// time.
#pragma once

#include <libkmod.h>

#include "host/dynamic_lib.h"
#include "util/result.h"

namespace pcipass {

// The libkmod functions pcipass uses, resolved from libkmod.so.2. kmod_list_next is here
// because libkmod's kmod_list_foreach macro calls it: loops use the table's pointer instead.
struct KmodLib {
#define PCIPASS_KMOD_FUNCTIONS(X)    \
  X(kmod_new)                        \
  X(kmod_unref)                      \
  X(kmod_set_log_priority)           \
  X(kmod_load_resources)             \
  X(kmod_list_next)                  \
  X(kmod_module_new_from_name)       \
  X(kmod_module_new_from_lookup)     \
  X(kmod_module_get_module)          \
  X(kmod_module_get_name)            \
  X(kmod_module_get_path)            \
  X(kmod_module_probe_insert_module) \
  X(kmod_module_unref)               \
  X(kmod_module_unref_list)
#define PCIPASS_KMOD_POINTER(name) decltype(&::name) name = nullptr;
  PCIPASS_KMOD_FUNCTIONS(PCIPASS_KMOD_POINTER)
#undef PCIPASS_KMOD_POINTER
};

inline constexpr const char* kKmodLibrary = "libkmod.so.2";
inline constexpr LibrarySpec kKmodSpec = {
    kKmodLibrary, "to read kernel modules",
    "install libkmod: apt install libkmod2 (dnf install kmod-libs)"};

// Loads the library once per process; an Error names the library, the missing symbol or
// dlerror(), and the Debian package that provides it.
Result<const KmodLib*> kmod_lib();
// The same from a given soname (tests point it at a library that does not exist).
Result<KmodLib> load_kmod_lib(const char* soname);

}  // namespace pcipass
