#include "pci/ids.h"

#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "host/host_fs.h"
#include "pci/pci_lib.h"

namespace pcipass {
namespace {

// libpci calls its error handler for a malformed pci.ids ("Unknown line type at FILE, line N")
// or when memory runs out, and expects it not to return: its own exits the process, and code after
// the call may be compiled on that promise. This one records the message and jumps back to the
// lookup that called libpci (only C frames, which own no destructors, lie in between). The GNU
// attribute, not [[noreturn]], is what makes its type match libpci's pointer under clang too.
thread_local std::jmp_buf* t_jump = nullptr;
thread_local char t_message[512];

__attribute__((noreturn, format(printf, 1, 2))) void pci_error(char* msg, ...) {
  va_list ap;
  va_start(ap, msg);
  std::vsnprintf(t_message, sizeof t_message, msg, ap);
  va_end(ap);
  if (t_jump) std::longjmp(*t_jump, 1);
  std::abort();  // unreachable: every libpci call is made under a jump buffer
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
  // Without libpci there are no names, as without a pci.ids; either says why.
  if (path_.empty()) {
    unavailable_ =
        Error::not_found("no pci.ids: devices have no names",
                         "install pci.ids (apt install pci.ids), or pass --pci-ids FILE");
    return;
  }
  auto lib = pci_lib();
  if (!lib) {
    unavailable_ = lib.error();
    return;
  }
  const PciLib& L = **lib;
  access_ = L.pci_alloc();
  access_->error = pci_error;
  access_->warning = pci_quiet;
  access_->debug = pci_quiet;
  L.pci_set_name_list_path(access_, strdup(path_.c_str()), 1);
}

PciIds::~PciIds() {
  // access_ exists only if libpci was loaded. A malformed pci.ids reaches the handler after
  // libpci closed the file and stopped parsing (pci_load_name_list), with what it parsed so far
  // in its hash, which pci_cleanup frees like any other (LeakSanitizer found it left behind).
  if (access_) (*pci_lib())->pci_cleanup(access_);
}

std::string PciIds::lookup(int flags, unsigned v1, unsigned v2, unsigned v3, unsigned v4) const {
  if (!access_ || problem_) return {};
  std::array<unsigned, 5> key = {static_cast<unsigned>(flags), v1, v2, v3, v4};
  if (auto it = names_.find(key); it != names_.end()) return it->second;
  char buf[256];
  buf[0] = '\0';
  bool found = false;
  std::jmp_buf jump;
  t_jump = &jump;
  if (setjmp(jump) == 0) {
    found =
        (*pci_lib())->pci_lookup_name(access_, buf, sizeof buf, flags | kFlags, v1, v2, v3, v4) !=
        nullptr;
    t_jump = nullptr;
    return names_[key] = found ? std::string(buf) : std::string();
  }
  t_jump = nullptr;
  std::string why = t_message;
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  problem_ = fmt::format(
      "names from {} are left out: libpci says \"{}\" (pass a good pci.ids "
      "with --pci-ids FILE)",
      path_, why);
  return {};
}

std::string PciIds::vendor(uint16_t v) const {
  return lookup(PCI_LOOKUP_VENDOR, v);
}
std::string PciIds::device(uint16_t v, uint16_t d) const {
  return lookup(PCI_LOOKUP_DEVICE, v, d);
}
// The composed answer is kept too, under a key no libpci flag combination makes: a model missing
// from pci.ids (the benchmark's 700 e1000 functions) was two lookups and a format call each.
std::string PciIds::subsystem(uint16_t v, uint16_t d, uint16_t sv, uint16_t sd) const {
  if (!access_ || problem_) return {};
  constexpr int kComposed = -1;
  std::array<unsigned, 5> key = {static_cast<unsigned>(kComposed), v, d, sv, sd};
  if (auto it = names_.find(key); it != names_.end()) return it->second;
  std::string name = lookup(PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_DEVICE, v, d, sv, sd);
  if (name.empty()) {
    std::string vendor_name = lookup(PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_VENDOR, sv);
    if (!vendor_name.empty()) name = vendor_name + " Device " + fmt::format("{:04x}", sd);
  }
  if (!problem_) names_[key] = name;
  return name;
}
std::string PciIds::class_name(uint32_t c) const {
  return lookup(PCI_LOOKUP_CLASS, c >> 8);
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
