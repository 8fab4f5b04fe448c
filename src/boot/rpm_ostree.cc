// rpm-ostree hosts (Fedora Silverblue, CoreOS): the kernel arguments belong to a deployment and
// change only through `rpm-ostree kargs`, which stages a new deployment. pcipass never edits
// them: it says which command to run.
#include <fmt/format.h>

#include "boot/common.h"

namespace pcipass::boot {

namespace {

constexpr const char* kEntries = "/boot/loader/entries";

std::optional<std::string> detect(const HostFs& fs) {
  if (!fs.exists("/run/ostree-booted")) return std::nullopt;
  return std::string("/run/ostree-booted");
}

Result<Generated> generated(const HostFs& fs) {
  return bls_entries(fs, kEntries, {}, std::nullopt);
}

Result<Configured> configured(const HostFs& fs) {
  Generated g = TRY(generated(fs));
  if (g.entries.empty()) return Error::not_found(fmt::format("no ostree entries in {}", kEntries));
  return Configured{kEntries + std::string("/") + g.entries.front().name,
                    g.entries.front().cmdline};
}

Result<BootPlan> plan(const HostFs& fs, const Edit& e) {
  Configured c = TRY(configured(fs));
  std::string cmd = "rpm-ostree kargs";
  for (const auto& r : to_remove(e, c.cmdline)) cmd += " --delete=" + r;
  for (const auto& a : to_add(e, c.cmdline)) cmd += " --append=" + a;
  BootPlan p;
  if (cmd != "rpm-ostree kargs") p.manual = cmd;
  return p;
}

Result<std::vector<change::Change>> regenerate(const HostFs&) {
  return std::vector<change::Change>{};
}

}  // namespace

const Backend kRpmOstreeBackend = {
    LoaderKind::kRpmOstree,
    "rpm-ostree",
    "rpm-ostree kargs (reported, not edited)",
    {LoaderKind::kUpdateGrub, LoaderKind::kGrub2Mkconfig, LoaderKind::kGrubby,
     LoaderKind::kSystemdBoot, LoaderKind::kKernelstub, LoaderKind::kProxmox,
     LoaderKind::kProxmoxGrub},
    detect,
    configured,
    plan,
    regenerate,
    generated};

}  // namespace pcipass::boot
