// libmnl, loaded with dlopen the first time a VF's settings are read or set (as libkmod and
// libvirt are: src/host/dynamic_lib.h), so that pcipass runs where libmnl0 is absent and only
// `vf list`'s netlink columns and `vf set` say so. The header is libmnl-dev's, so the types are
// checked at build time.
#pragma once

#include <libmnl/libmnl.h>

#include "host/dynamic_lib.h"
#include "util/result.h"

namespace pcipass::sriov {

struct MnlLib {
#define PCIPASS_MNL_FUNCTIONS(X) \
  X(mnl_socket_open)             \
  X(mnl_socket_bind)             \
  X(mnl_socket_close)            \
  X(mnl_socket_sendto)           \
  X(mnl_socket_recvfrom)         \
  X(mnl_nlmsg_put_header)        \
  X(mnl_nlmsg_put_extra_header)  \
  X(mnl_attr_put)                \
  X(mnl_attr_put_u32)            \
  X(mnl_attr_put_strz)           \
  X(mnl_attr_nest_start)         \
  X(mnl_attr_nest_end)
#define PCIPASS_MNL_POINTER(name) decltype(&::name) name = nullptr;
  PCIPASS_MNL_FUNCTIONS(PCIPASS_MNL_POINTER)
#undef PCIPASS_MNL_POINTER
};

inline constexpr const char* kMnlLibrary = "libmnl.so.0";
inline constexpr LibrarySpec kMnlSpec = {
    kMnlLibrary, "to read and set a NIC's VF settings (netlink)",
    "install libmnl: apt install libmnl0 (dnf install libmnl)"};

// Loads the library once per process; an Error names it, the missing symbol or dlerror(), and
// the package that provides it.
Result<const MnlLib*> mnl_lib();
// The same from a given soname (tests point it at a library that does not exist).
Result<MnlLib> load_mnl_lib(const char* soname);

}  // namespace pcipass::sriov
