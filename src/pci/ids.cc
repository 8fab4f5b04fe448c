#include "pci/ids.h"

#include <cstdarg>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "host/host_fs.h"
#include "pci/pci_lib.h"

namespace pcipass {
namespace {

// libpci's default error handler exits the process; the library must never do that.
// The GNU spelling: libpci declares the pointer noreturn through its type, which clang checks.
__attribute__((noreturn)) void pci_error(char* msg, ...) {
  (void)msg;
  std::abort();
}
void pci_quiet(char*, ...) {}

constexpr int kFlags = PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB;

}  // namespace

const char* pci_ids_source_id(PciIdsSource s) {
  switch (s) {
    case PciIdsSource::kOption:
      return "option";
    case PciIdsSource::kTree:
      return "tree";
    case PciIdsSource::kSystem:
      return "system";
    case PciIdsSource::kNone:
      return "none";
  }
  return "none";
}

Result<PciIdsChoice> choose_pci_ids(const HostFs& tree, const HostFs& local,
                                    const std::optional<std::string>& option,
                                    const std::string& system) {
  if (option) {
    if (local.type(*option) != FileType::kFile)
      return Error::invalid("--pci-ids " + *option + " is not a regular file",
                            "pass a pci.ids file (Debian: /usr/share/misc/pci.ids)");
    return PciIdsChoice{PciIdsSource::kOption, *option, local.local_path(*option).value_or("")};
  }
  for (const char* candidate : {"/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"})
    if (tree.type(candidate) == FileType::kFile)
      if (auto file = tree.local_path(candidate))
        return PciIdsChoice{PciIdsSource::kTree, candidate, *file};
  if (!system.empty() && local.type(system) == FileType::kFile)
    if (auto file = local.local_path(system))
      return PciIdsChoice{PciIdsSource::kSystem, system, *file};
  return PciIdsChoice{};
}

PciIds::PciIds(std::string file) : path_(std::move(file)) {
  // Without libpci there are no names, as without a pci.ids.
  auto lib = pci_lib();
  if (path_.empty() || !lib) return;
  const PciLib& L = **lib;
  access_ = L.pci_alloc();
  access_->error = pci_error;
  access_->warning = pci_quiet;
  access_->debug = pci_quiet;
  L.pci_set_name_list_path(access_, strdup(path_.c_str()), 1);
}

PciIds::~PciIds() {
  // access_ exists only if libpci was loaded.
  if (access_) (*pci_lib())->pci_cleanup(access_);
}

static std::string lookup(pci_access* a, int flags, unsigned v1, unsigned v2 = 0, unsigned v3 = 0,
                          unsigned v4 = 0) {
  if (!a) return {};
  char buf[256];
  const char* r = (*pci_lib())->pci_lookup_name(a, buf, sizeof buf, flags | kFlags, v1, v2, v3, v4);
  return r ? std::string(r) : std::string();
}

std::string PciIds::vendor(uint16_t v) const {
  return lookup(access_, PCI_LOOKUP_VENDOR, v);
}
std::string PciIds::device(uint16_t v, uint16_t d) const {
  return lookup(access_, PCI_LOOKUP_DEVICE, v, d);
}
std::string PciIds::subsystem(uint16_t v, uint16_t d, uint16_t sv, uint16_t sd) const {
  std::string name = lookup(access_, PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_DEVICE, v, d, sv, sd);
  if (!name.empty()) return name;
  std::string vendor_name = lookup(access_, PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_VENDOR, sv);
  return vendor_name.empty() ? name : vendor_name + " Device " + fmt::format("{:04x}", sd);
}
std::string PciIds::class_name(uint32_t c) const {
  return lookup(access_, PCI_LOOKUP_CLASS, c >> 8);
}

static const char* const kKinds[] = {"gpu",    "audio",  "net",    "storage", "usb",
                                     "serial", "crypto", "bridge", "memory",  "sensor",
                                     "accel",  "other",  nullptr};

const char* const* class_kinds() {
  return kKinds;
}

std::string class_kind(uint32_t class_code) {
  uint8_t base = class_code >> 16, sub = (class_code >> 8) & 0xff;
  switch (base) {
    case 0x01:
      return "storage";
    case 0x02:
      return "net";
    case 0x03:
      return "gpu";
    case 0x04:
      return (sub == 0x01 || sub == 0x03) ? "audio" : "other";
    case 0x05:
      return "memory";
    case 0x06:
      return "bridge";
    case 0x07:
      return "serial";
    case 0x0c:
      return sub == 0x03 ? "usb" : "serial";
    case 0x0d:
      return "net";  // wireless
    case 0x10:
      return "crypto";
    case 0x11:
      return "sensor";
    case 0x12:
      return "accel";
    case 0x00:
      return sub == 0x01 ? "gpu" : "other";  // pre-2.0 VGA-compatible device
  }
  return "other";
}

}  // namespace pcipass
