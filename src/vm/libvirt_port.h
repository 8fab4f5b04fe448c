// The few libvirt calls pcipass makes, as a port: `attach` and `detach` (src/vm/attach.h) talk to
// this interface, the executable to libvirt's C API (libvirt.so.0, dlopen'ed on first use:
// src/vm/libvirt_lib.cc), the unit tests to tests/unit/fake_libvirt.h. libvirt's own error message
// is kept verbatim in every Error's message (LibvirtError below), never reworded.
#pragma once

#include <memory>
#include <string>

#include "util/result.h"

namespace pcipass::vm {

// virDomainState, the values pcipass tells apart.
enum class DomainState { kRunning, kPaused, kShutoff, kOther };
const char* domain_state_name(DomainState s);  // "running", "paused", "shut off", "other"

// VIR_DOMAIN_AFFECT_LIVE / _CONFIG, as a set.
struct AffectFlags {
  bool live = false, config = false;
};

class LibvirtDomain {
 public:
  virtual ~LibvirtDomain() = default;
  // virDomainGetXMLDesc; `inactive`: the persistent definition (VIR_DOMAIN_XML_INACTIVE).
  virtual Result<std::string> xml(bool inactive) = 0;
  virtual Result<DomainState> state() = 0;                               // virDomainGetState
  virtual Status attach(const std::string& xml, AffectFlags flags) = 0;  // ...AttachDeviceFlags
  virtual Status detach(const std::string& xml, AffectFlags flags) = 0;  // ...DetachDeviceFlags
};

class LibvirtConnection {
 public:
  virtual ~LibvirtConnection() = default;
  // virDomainLookupByName: an Error (kNotFound for VIR_ERR_NO_DOMAIN) when there is none.
  virtual Result<std::unique_ptr<LibvirtDomain>> domain(const std::string& name) = 0;
};

class Libvirt {
 public:
  virtual ~Libvirt() = default;
  // virConnectOpen(uri).
  virtual Result<std::unique_ptr<LibvirtConnection>> open(const std::string& uri) = 0;
};

// The C API through libvirt.so.0 when pcipass was built with libvirt's headers (PCIPASS_LIBVIRT),
// else a Libvirt whose open() says how to get it.
std::unique_ptr<Libvirt> make_libvirt();
bool libvirt_built_in();

// An Error carrying libvirt's message verbatim: "libvirt: MESSAGE" for `operation`.
Error libvirt_error(const std::string& operation, const std::string& verbatim, bool not_found);

// The URI libvirt is asked for: --connect, else LIBVIRT_DEFAULT_URI, else qemu:///system.
inline constexpr const char* kDefaultLibvirtUri = "qemu:///system";

}  // namespace pcipass::vm
