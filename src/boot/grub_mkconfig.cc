// GRUB with grub2-mkconfig (openSUSE, RHEL/Fedora without BLS, Arch's grub-mkconfig alike): the
// GRUB defaults, then `grub2-mkconfig -o` the grub.cfg the firmware's GRUB really reads.
//
// Which grub.cfg: a BIOS boot (no /sys/firmware/efi) reads /boot/grub2/grub.cfg. A UEFI boot
// reads the grub.cfg beside the GRUB image on the ESP (/boot/efi/EFI/<vendor>/grub.cfg); when
// that file is only a stub that hands over to /boot (`configfile`, as Fedora 34+ writes it) or
// there is none, the real one is /boot/grub2/grub.cfg. Writing the stub's place with a full
// config would break the hand-over, writing /boot/grub2 on a host whose ESP holds the full
// config would change nothing the firmware reads: so the ESP file's content decides.
#include <fmt/format.h>

#include <cerrno>

#include "boot/common.h"

namespace pcipass::boot {

namespace {

constexpr const char* kBiosCfg = "/boot/grub2/grub.cfg";

std::string tool(const HostFs& fs) {
  std::string t = "grub2-mkconfig";
  if (!fs.exists("/usr/sbin/grub2-mkconfig") && !fs.exists("/sbin/grub2-mkconfig") &&
      (fs.exists("/usr/sbin/grub-mkconfig") || fs.exists("/usr/bin/grub-mkconfig")))
    t = "grub-mkconfig";
  return t;
}

// An ESP listing or a grub.cfg there that cannot be read is an error, not "no ESP config": the
// BIOS path written instead would leave the file the firmware's GRUB reads unchanged.
Result<std::string> cfg_path(const HostFs& fs) {
  if (!fs.is_dir("/sys/firmware/efi")) return std::string(kBiosCfg);
  for (const auto& vendor : TRY(list_if_present(fs, "/boot/efi/EFI"))) {
    std::string p = "/boot/efi/EFI/" + vendor + "/grub.cfg";
    auto text = fs.read(p, 8 << 20);
    if (!text && text.error().err == ENOENT) continue;
    if (!text) return std::move(text).error();
    bool stub = text->find("configfile") != std::string::npos &&
                text->find("menuentry") == std::string::npos &&
                text->find("blscfg") == std::string::npos;
    if (!stub) return p;
  }
  return std::string(kBiosCfg);
}

std::optional<std::string> detect(const HostFs& fs) {
  std::string found;
  if (!fs.exists("/etc/default/grub") ||
      !any_exists(fs,
                  {"/usr/sbin/grub2-mkconfig", "/sbin/grub2-mkconfig", "/usr/sbin/grub-mkconfig",
                   "/usr/bin/grub-mkconfig"},
                  &found))
    return std::nullopt;
  return "/etc/default/grub and " + found;
}

Result<BootPlan> plan(const HostFs& fs, const Edit& e) {
  return grub_plan(fs, e, {tool(fs), "-o", TRY(cfg_path(fs))});
}

Result<std::vector<change::Change>> regenerate(const HostFs& fs) {
  return std::vector<change::Change>{regeneration({tool(fs), "-o", TRY(cfg_path(fs))})};
}

Result<Generated> generated(const HostFs& fs) {
  return grub_generated(fs, TRY(cfg_path(fs)));
}

}  // namespace

const Backend kGrub2MkconfigBackend = {LoaderKind::kGrub2Mkconfig,
                                       "grub2-mkconfig",
                                       "GRUB (grub2-mkconfig)",
                                       {},
                                       detect,
                                       grub_configured,
                                       plan,
                                       regenerate,
                                       generated};

}  // namespace pcipass::boot
