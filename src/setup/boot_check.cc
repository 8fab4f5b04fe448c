#include "setup/boot_check.h"

#include <fmt/format.h>

#include "change/change.h"
#include "initramfs/initramfs.h"
#include "setup/early_bind.h"
#include "setup/selinux.h"
#include "setup/vfio.h"

namespace pcipass::setup {

namespace {

CheckResult result(std::string id, std::string title, CheckStatus s, std::string detail,
                   std::string fix = {}) {
  return {std::move(id), std::move(title), s, std::move(detail), std::move(fix)};
}

// The image the running kernel booted from (a preset's where images are not named by release).
std::optional<initramfs::Image> running_image(const HostFs& fs,
                                              const std::vector<initramfs::Image>& images) {
  auto release = fs.read_trimmed(kOsReleasePath);
  for (const auto& i : images)
    if (release && i.kernel == *release) return i;
  for (const auto& i : images)
    if (i.kernel.empty() && i.path.find("fallback") == std::string::npos) return i;
  return std::nullopt;
}

std::optional<CheckResult> check_initramfs(const HostFs& fs, const ModuleIndex& modules,
                                           CommandRunner* runner) {
  const char* id = "initramfs-vfio";
  const std::string title = "vfio-pci in the initramfs";
  auto b = initramfs::detect(fs, std::nullopt);
  if (!b) return std::nullopt;
  initramfs::Wants wants{{"vfio_pci"}, {}};
  auto planned = initramfs::plan_initramfs(fs, **b, wants);
  if (!planned)  // not "vfio-pci is not configured": that may be in what cannot be read
    return result(id, title, CheckStatus::kWarn, "unknown: " + planned.error().describe(),
                  planned.error().fix.empty()
                      ? "make it readable (run pcipass as root), then check again"
                      : planned.error().fix);
  if (planned->changed || planned->configs.empty()) return std::nullopt;
  const std::string conf = planned->configs.front();
  ModuleState s = modules.state("vfio_pci");
  if (s == ModuleState::kLoaded || s == ModuleState::kBuiltin)
    return result(id, title, CheckStatus::kPass,
                  fmt::format("in {} and {}", conf,
                              s == ModuleState::kLoaded ? "loaded" : "built into the kernel"));
  auto image = running_image(fs, planned->images);
  if (!image)
    return result(
        id, title, CheckStatus::kWarn,
        fmt::format("vfio_pci is in {} but not loaded, and this kernel has no image", conf),
        fmt::format("regenerate the images: {}", fmt::join((*b)->regenerate, " ")));
  if (!runner) return std::nullopt;
  auto listed = runner->checked(initramfs::invocation({(*b)->lister, image->path}));
  if (!listed)
    return result(id, title, CheckStatus::kWarn,
                  fmt::format("vfio_pci is in {} but not loaded; {} can't be read: {}", conf,
                              image->path, listed.error().message),
                  listed.error().fix);
  if (!initramfs::listing_has_module(listed->out, "vfio_pci"))
    return result(id, title, CheckStatus::kWarn,
                  fmt::format("vfio_pci is in {} but not in {}", conf, image->path),
                  fmt::format("regenerate the images: {}", fmt::join((*b)->regenerate, " ")));
  return result(id, title, CheckStatus::kWarn, "vfio_pci is in the initramfs but not loaded",
                fmt::format("reboot: this boot started before {} was regenerated (if it is still "
                            "not loaded after a reboot, `dmesg | grep -i vfio` says why)",
                            image->path));
}

EarlyState early_state(const HostFs& fs, const EarlyRule& rule) {
  const std::string a = rule.address.str();
  EarlyState e{rule, persist::Match::kMatches, std::nullopt, {}, {}};
  std::string dir = change::device_dir(rule.address);
  if (!fs.exists(dir)) {
    e.match = persist::Match::kAbsent;
    e.message = fmt::format("{} is set for early binding but is not on the bus", a);
    e.fix = fmt::format("`pcipass undo` the setup that added it, or edit {}", kUdevRulePath);
    return e;
  }
  auto vendor = fs.read_number(dir + "/vendor"), device = fs.read_number(dir + "/device");
  e.driver = fs.link_basename(dir + "/driver");
  if (vendor != rule.vendor || device != rule.device) {
    e.match = persist::Match::kIdsDiffer;
    e.message = fmt::format(
        "{} is set for early binding as {:04x}:{:04x} but is {:04x}:{:04x} now (a moved or "
        "swapped card): the rule leaves it alone",
        a, rule.vendor.value_or(0), rule.device.value_or(0), vendor.value_or(0),
        device.value_or(0));
    e.fix = fmt::format("pcipass setup --early-bind {} for the card there now", a);
    return e;
  }
  if (e.driver == "vfio-pci") {
    e.message = fmt::format("{} is on vfio-pci", a);
    return e;
  }
  e.match = persist::Match::kOtherDriver;
  if (!e.driver) {
    e.message =
        fmt::format("{} is set for early binding but has no driver: vfio-pci is not loaded", a);
    e.fix = "reboot, or `modprobe vfio-pci` to bind it now";
    return e;
  }
  e.message = fmt::format("{} is set for early binding but {} has it: early binding lost the race",
                          a, *e.driver);
  e.fix = fmt::format(
      "`pcipass bind {}` takes it now; for the next boot, `pcipass check` should show vfio-pci "
      "in the initramfs, {} must order {} after vfio-pci (softdep), and a {} built into the "
      "kernel can only be beaten by the udev rule in the initramfs",
      a, kModprobePath, *e.driver, *e.driver);
  return e;
}

// A device on another driver fails (the rule did not win); one absent, swapped or on no driver
// is a warning (nothing was taken from the host that should not have been).
CheckResult early_check(const EarlyState& e) {
  CheckStatus s = e.match == persist::Match::kMatches                   ? CheckStatus::kPass
                  : e.match == persist::Match::kOtherDriver && e.driver ? CheckStatus::kFail
                                                                        : CheckStatus::kWarn;
  return {"early-bind", "Early binding " + e.rule.address.str(), s, e.message, e.fix};
}

}  // namespace

std::vector<CheckResult> check_boot_setup(const HostFs& fs, const ModuleIndex& modules,
                                          CommandRunner* runner) {
  std::vector<CheckResult> out;
  if (auto s = check_selinux(fs)) out.push_back(*s);
  if (auto i = check_initramfs(fs, modules, runner)) out.push_back(*i);
  for (const auto& e : early_bind_states(fs)) out.push_back(early_check(e));
  return out;
}

std::vector<EarlyState> early_bind_states(const HostFs& fs) {
  std::vector<EarlyState> out;
  if (auto rules = fs.read(kUdevRulePath))
    for (const auto& r : parse_udev_rules(*rules)) out.push_back(early_state(fs, r));
  return out;
}

}  // namespace pcipass::setup
