// libarchive, loaded with dlopen the first time a snapshot is written: with its libxml2, libicu
// and libcrypto tail it would otherwise be mapped (and relocated) at every start of every command.
// The header is still libarchive-dev's, so the types and constants are checked at build time.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "host/dynamic_lib.h"
#include "util/result.h"

namespace pcipass {

// The few libarchive functions pcipass uses, resolved from libarchive.so.13.
struct ArchiveLib {
#define PCIPASS_ARCHIVE_FUNCTIONS(X)         \
  X(archive_write_new)                       \
  X(archive_write_add_filter_gzip)           \
  X(archive_write_set_format_pax_restricted) \
  X(archive_write_open_filename)             \
  X(archive_write_header)                    \
  X(archive_write_data)                      \
  X(archive_write_close)                     \
  X(archive_write_free)                      \
  X(archive_errno)                           \
  X(archive_entry_new)                       \
  X(archive_entry_clear)                     \
  X(archive_entry_free)                      \
  X(archive_entry_set_pathname)              \
  X(archive_entry_set_filetype)              \
  X(archive_entry_set_perm)                  \
  X(archive_entry_set_size)                  \
  X(archive_entry_set_symlink)               \
  X(archive_entry_set_mtime)                 \
  X(archive_entry_set_uid)                   \
  X(archive_entry_set_gid)
#define PCIPASS_ARCHIVE_POINTER(name) decltype(&::name) name = nullptr;
  PCIPASS_ARCHIVE_FUNCTIONS(PCIPASS_ARCHIVE_POINTER)
#undef PCIPASS_ARCHIVE_POINTER
};

inline constexpr const char* kArchiveLibrary = "libarchive.so.13";
inline constexpr LibrarySpec kArchiveSpec = {
    kArchiveLibrary, "to write the snapshot",
    "install libarchive: apt install libarchive13 (dnf install libarchive)"};

// Loads the library once per process; an Error names the library, the missing symbol or
// dlerror(), and the Debian package that provides it.
Result<const ArchiveLib*> archive_lib();
// The same from a given soname (tests point it at a library that does not exist).
Result<ArchiveLib> load_archive_lib(const char* soname);

}  // namespace pcipass
