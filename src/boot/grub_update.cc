// GRUB on Debian and Ubuntu: GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub (or the drop-in
// under /etc/default/grub.d that sets it last), then update-grub, which writes /boot/grub/grub.cfg
// (also on UEFI: the ESP's grub.cfg only points there).
#include "boot/common.h"

namespace pcipass::boot {

namespace {

constexpr const char* kCfg = "/boot/grub/grub.cfg";

std::optional<std::string> detect(const HostFs& fs) {
  std::string tool;
  if (!fs.exists("/etc/default/grub") ||
      !any_exists(fs, {"/usr/sbin/update-grub", "/sbin/update-grub"}, &tool))
    return std::nullopt;
  return "/etc/default/grub and " + tool;
}

Result<BootPlan> plan(const HostFs& fs, const Edit& e) {
  return grub_plan(fs, e, {"update-grub"});
}

Result<std::vector<change::Change>> regenerate(const HostFs&) {
  return std::vector<change::Change>{regeneration({"update-grub"})};
}

Result<Generated> generated(const HostFs& fs) {
  return grub_generated(fs, kCfg);
}

}  // namespace

// Debian's update-grub is grub-mkconfig behind a wrapper: where it is there, it is the one used.
const Backend kUpdateGrubBackend = {LoaderKind::kUpdateGrub,
                                    "update-grub",
                                    "GRUB (update-grub)",
                                    {LoaderKind::kGrub2Mkconfig},
                                    detect,
                                    grub_configured,
                                    plan,
                                    regenerate,
                                    generated};

}  // namespace pcipass::boot
