#include "setup/selinux.h"

#include <fmt/format.h>

#include "initramfs/initramfs.h"

namespace pcipass::setup {

namespace {

std::string boolean_path(const std::string& name) {
  return std::string(kSelinuxDir) + "/booleans/" + name;
}

// A boolean file reads "CURRENT PENDING": "0 0", "1 1". nullopt: this policy lacks it.
Result<std::optional<bool>> boolean_value(const HostFs& fs, const std::string& name) {
  auto text = TRY(fs.read_value(boolean_path(name)));
  if (!text || text->empty()) return std::optional<bool>();
  return std::optional<bool>((*text)[0] == '1');
}

}  // namespace

// A file of selinuxfs that cannot be read is an error, not "SELinux off" or "no such boolean":
// either would pass over the denials QEMU is about to meet.
Result<SelinuxState> read_selinux(const HostFs& fs) {
  SelinuxState s;
  auto enforce = TRY(fs.read_value(std::string(kSelinuxDir) + "/enforce"));
  if (!enforce) return s;
  s.enabled = true;
  s.enforcing = *enforce == "1";
  for (const char* name : {"virt_use_sysfs", "virt_manage_sysfs"})
    if (auto v = TRY(boolean_value(fs, name))) {
      s.boolean = name;
      s.on = *v;
      break;
    }
  return s;
}

std::string selinux_fix(const SelinuxState& s) {
  return fmt::format("setsebool -P {} 1 (or `pcipass setup --selinux`)",
                     s.boolean.value_or("virt_use_sysfs"));
}

std::optional<CheckResult> check_selinux(const HostFs& fs) {
  auto state = read_selinux(fs);
  CheckResult r;
  r.id = "selinux-virt-sysfs";
  r.title = "SELinux and device sysfs";
  if (!state) {
    r.status = CheckStatus::kWarn;
    r.detail = "cannot tell whether SELinux lets QEMU use the device: " + state.error().describe();
    r.fix = "run pcipass check as root";
    return r;
  }
  const SelinuxState& s = *state;
  if (!s.enabled) return std::nullopt;
  const char* mode = s.enforcing ? "enforcing" : "permissive";
  if (!s.boolean) {
    r.detail = fmt::format(
        "SELinux {}; the policy has neither virt_use_sysfs nor "
        "virt_manage_sysfs",
        mode);
    return r;
  }
  if (s.on) {
    r.detail = fmt::format("SELinux {}; {} is on", mode, *s.boolean);
    return r;
  }
  if (!s.enforcing) {
    r.detail = fmt::format("SELinux permissive; {} is off (denials are only logged)", *s.boolean);
    return r;
  }
  r.status = CheckStatus::kWarn;
  r.detail = fmt::format(
      "SELinux enforcing and {} is off: QEMU may not reset or read the "
      "device's sysfs files",
      *s.boolean);
  r.fix = selinux_fix(s);
  return r;
}

Result<SelinuxReport> plan_selinux(const HostFs& fs) {
  SelinuxReport r;
  r.part.kind = PartKind::kSelinux;
  r.state = TRY(read_selinux(fs));
  if (!r.state.enabled) return r;
  if (!r.state.boolean)
    return Error::not_found(
        "this SELinux policy has neither virt_use_sysfs nor virt_manage_sysfs",
        "install the policy's virtualization module (selinux-policy-targeted), or leave out "
        "--selinux");
  if (r.state.on) return r;
  r.needed = true;
  const std::string name = *r.state.boolean;
  r.part.changes.push_back(
      change::Change::program_run(initramfs::invocation({"setsebool", "-P", name, "1"}),
                                  initramfs::invocation({"setsebool", "-P", name, "0"})));
  std::string path = boolean_path(name);
  r.part.changes.push_back(change::Change::check(
      path, "reads 1", [path, name](const HostFs& f, CommandRunner*) -> Status {
        auto v = f.read_trimmed(path);
        if (v && !v->empty() && (*v)[0] == '1') return {};
        return Error::state(
            fmt::format("{} is still off after setsebool ({} reads '{}')", name, path,
                        v.value_or("nothing")),
            "every change was rolled back; `getsebool " + name + "` and the audit log say more");
      }));
  return r;
}

}  // namespace pcipass::setup
