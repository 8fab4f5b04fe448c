// The Libvirt port over libvirt's C API, libvirt.so.0 dlopen'ed on first use as libkmod and
// libpci are (src/host/dynamic_lib.h): pcipass is linked statically and a command that never
// talks to libvirt should not map it and its glib/gnutls/libxml2 tail. Built only with
// libvirt-dev's headers (PCIPASS_LIBVIRT); without them make_libvirt() says how to get them.
#include <fmt/format.h>

#include <cstdlib>

#include "host/dynamic_lib.h"
#include "vm/libvirt_port.h"

#ifdef PCIPASS_HAVE_LIBVIRT
#include <link.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

// Defined by the linker in a dynamically linked executable only.
#pragma weak _DYNAMIC
#endif

namespace pcipass::vm {

const char* domain_state_name(DomainState s) {
  switch (s) {
    case DomainState::kRunning:
      return "running";
    case DomainState::kPaused:
      return "paused";
    case DomainState::kShutoff:
      return "shut off";
    case DomainState::kOther:
      break;
  }
  return "other";
}

Error libvirt_error(const std::string& operation, const std::string& verbatim, bool not_found) {
  std::string message = fmt::format("{}: libvirt: {}", operation, verbatim);
  return not_found ? Error::not_found(std::move(message)) : Error::state(std::move(message));
}

#ifdef PCIPASS_HAVE_LIBVIRT
namespace {

struct VirLib {
#define PCIPASS_VIR_FUNCTIONS(X) \
  X(virConnectOpen)              \
  X(virConnectClose)             \
  X(virDomainLookupByName)       \
  X(virDomainFree)               \
  X(virDomainGetXMLDesc)         \
  X(virDomainGetState)           \
  X(virDomainAttachDeviceFlags)  \
  X(virDomainDetachDeviceFlags)  \
  X(virGetLastError)             \
  X(virResetLastError)           \
  X(virSetErrorFunc)
#define PCIPASS_VIR_POINTER(name) decltype(&::name) name = nullptr;
  PCIPASS_VIR_FUNCTIONS(PCIPASS_VIR_POINTER)
#undef PCIPASS_VIR_POINTER
};

constexpr LibrarySpec kVirSpec = {"libvirt.so.0", "to talk to libvirt",
                                  "install libvirt: apt install libvirt0 (dnf install "
                                  "libvirt-libs)"};

// glibc's dlopen from a static executable does not set up thread-local storage for what it
// loads: libvirt.so.0's libssh reads a __thread variable in its constructor and the process dies
// inside dlopen (seen with Debian 12's libvirt 9.0 / libssh 0.10). Refuse before that.
bool executable_is_static() {
  const void* dynamic = _DYNAMIC;
  return dynamic == nullptr;
}

Result<const VirLib*> vir_lib() {
  static const Result<VirLib> lib = []() -> Result<VirLib> {
    if (executable_is_static())
      return Error::state(
          "this pcipass is linked statically and cannot load libvirt.so.0: glibc's static "
          "dlopen gives loaded libraries no thread-local storage, which libvirt's libssh and "
          "glib use when they load",
          "install pcipass-libvirt, the dynamically linked twin that a static pcipass hands "
          "these commands to, beside pcipass or in ../libexec/pcipass/ (built with libvirt-dev "
          "installed), or build pcipass with -DPCIPASS_STATIC=OFF");
    DynamicLib dl = TRY(DynamicLib::open(kVirSpec));
    VirLib v;
#define PCIPASS_VIR_RESOLVE(name) TRY(dl.resolve(v.name, #name));
    PCIPASS_VIR_FUNCTIONS(PCIPASS_VIR_RESOLVE)
#undef PCIPASS_VIR_RESOLVE
    // libvirt's default handler prints every error to stderr; pcipass reports them itself.
    v.virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
    return v;
  }();
  if (!lib) return lib.error();
  return &*lib;
}

Error last_error(const VirLib& v, const std::string& operation) {
  virErrorPtr e = v.virGetLastError();
  std::string text = e && e->message ? e->message : "unknown error (libvirt set none)";
  bool not_found = e && e->code == VIR_ERR_NO_DOMAIN;
  v.virResetLastError();
  return libvirt_error(operation, text, not_found);
}

unsigned int affect_bits(AffectFlags f) {
  unsigned int bits = 0;
  if (f.live) bits |= VIR_DOMAIN_AFFECT_LIVE;
  if (f.config) bits |= VIR_DOMAIN_AFFECT_CONFIG;
  return bits;
}

class CDomain final : public LibvirtDomain {
 public:
  CDomain(const VirLib& v, virDomainPtr d, std::string name) : v_(v), d_(d), name_(name) {}
  ~CDomain() override { v_.virDomainFree(d_); }
  Result<std::string> xml(bool inactive) override {
    char* s = v_.virDomainGetXMLDesc(
        d_, inactive ? static_cast<unsigned int>(VIR_DOMAIN_XML_INACTIVE) : 0u);
    if (!s) return last_error(v_, "reading domain " + name_ + "'s XML");
    std::string out(s);
    std::free(s);  // the caller frees libvirt's string (the process is dynamic: one libc)
    return out;
  }
  Result<DomainState> state() override {
    int st = 0, reason = 0;
    if (v_.virDomainGetState(d_, &st, &reason, 0) < 0)
      return last_error(v_, "reading domain " + name_ + "'s state");
    switch (st) {
      case VIR_DOMAIN_RUNNING:
        return DomainState::kRunning;
      case VIR_DOMAIN_PAUSED:
        return DomainState::kPaused;
      case VIR_DOMAIN_SHUTOFF:
        return DomainState::kShutoff;
      default:
        return DomainState::kOther;
    }
  }
  Status attach(const std::string& xml, AffectFlags f) override {
    if (v_.virDomainAttachDeviceFlags(d_, xml.c_str(), affect_bits(f)) < 0)
      return last_error(v_, "attaching to domain " + name_);
    return {};
  }
  Status detach(const std::string& xml, AffectFlags f) override {
    if (v_.virDomainDetachDeviceFlags(d_, xml.c_str(), affect_bits(f)) < 0)
      return last_error(v_, "detaching from domain " + name_);
    return {};
  }

 private:
  const VirLib& v_;
  virDomainPtr d_;
  std::string name_;
};

class CConnection final : public LibvirtConnection {
 public:
  CConnection(const VirLib& v, virConnectPtr c) : v_(v), c_(c) {}
  ~CConnection() override { v_.virConnectClose(c_); }
  Result<std::unique_ptr<LibvirtDomain>> domain(const std::string& name) override {
    virDomainPtr d = v_.virDomainLookupByName(c_, name.c_str());
    if (!d) return last_error(v_, "looking up domain " + name);
    return std::unique_ptr<LibvirtDomain>(std::make_unique<CDomain>(v_, d, name));
  }

 private:
  const VirLib& v_;
  virConnectPtr c_;
};

class CLibvirt final : public Libvirt {
 public:
  Result<std::unique_ptr<LibvirtConnection>> open(const std::string& uri) override {
    const VirLib* v = TRY(vir_lib());
    virConnectPtr c = v->virConnectOpen(uri.c_str());
    if (!c) return last_error(*v, "connecting to " + uri);
    return std::unique_ptr<LibvirtConnection>(std::make_unique<CConnection>(*v, c));
  }
};

}  // namespace

std::unique_ptr<Libvirt> make_libvirt() {
  return std::make_unique<CLibvirt>();
}
bool libvirt_built_in() {
  return true;
}

#else

namespace {
class NoLibvirt final : public Libvirt {
 public:
  Result<std::unique_ptr<LibvirtConnection>> open(const std::string&) override {
    return Error::state("this pcipass was built without libvirt (PCIPASS_LIBVIRT=OFF)",
                        "install libvirt's headers (apt install libvirt-dev) and rebuild: "
                        "scripts/build -DPCIPASS_LIBVIRT=ON");
  }
};
}  // namespace

std::unique_ptr<Libvirt> make_libvirt() {
  return std::make_unique<NoLibvirt>();
}
bool libvirt_built_in() {
  return false;
}

#endif

}  // namespace pcipass::vm
