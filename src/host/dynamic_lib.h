// One way to load a library on first use (libkmod, libpci, libarchive): dlopen once, resolve
// each function, and, when it is missing, one shape of error that names the library, what
// pcipass needed it for, dlerror()'s reason and the package to install. Each user keeps its own
// table of functions (the types come from the library's own header, checked at build time).
#pragma once

#include <string>

#include "util/result.h"

namespace pcipass {

struct LibrarySpec {
  const char* soname;   // "libpci.so.3"
  const char* purpose;  // "to name PCI IDs"
  const char* fix;      // "install libpci: apt install libpci3 (dnf install pciutils-libs)"
};

class DynamicLib {
 public:
  // dlopen(RTLD_NOW | RTLD_LOCAL). Never closed: the functions stay valid for the process's life.
  static Result<DynamicLib> open(const LibrarySpec& spec);

  // `fn` set to the library's function `name`; an Error when it has none.
  template <typename Fn>
  Status resolve(Fn*& fn, const char* name) const {
    void* p = symbol(name);
    if (!p) return missing(spec_, std::string("it has no ") + name);
    fn = reinterpret_cast<Fn*>(p);
    return {};
  }

  // "cannot load SONAME PURPOSE: WHY", with the spec's fix.
  static Error missing(const LibrarySpec& spec, const std::string& why);

 private:
  DynamicLib(void* handle, const LibrarySpec& spec) : handle_(handle), spec_(spec) {}
  void* symbol(const char* name) const;
  void* handle_;
  LibrarySpec spec_;
};

}  // namespace pcipass
