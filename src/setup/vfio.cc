#include "setup/vfio.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>

namespace pcipass::setup {

namespace {

// modules-load.d treats '-' and '_' alike, and ignores comments.
std::string module_key(std::string_view line) {
  auto hash = line.find_first_of("#;");
  std::string s = trim(line.substr(0, hash == std::string_view::npos ? line.size() : hash));
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

bool lists(const std::string& text, const std::string& module) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (module_key(line) == module) return true;
  return false;
}

}  // namespace

std::optional<std::pair<int, int>> kernel_version(std::string_view release) {
  int major = 0, minor = 0;
  const char* p = release.data();
  const char* end = p + release.size();
  auto r = std::from_chars(p, end, major);
  if (r.ec != std::errc() || r.ptr == end || *r.ptr != '.') return std::nullopt;
  r = std::from_chars(r.ptr + 1, end, minor);
  if (r.ec != std::errc()) return std::nullopt;
  return std::pair{major, minor};
}

Result<KernelRelease> running_kernel(const HostFs& fs, std::string_view needed_for) {
  auto release = fs.read_value(kOsReleasePath);
  if (!release) {  // not "is /proc mounted?": it is, and says no
    Error e = release.error();
    e.fix = fmt::format("run pcipass as root ({})", needed_for);
    return e;
  }
  auto version = *release ? kernel_version(**release) : std::nullopt;
  if (!version)
    return Error::not_found(
        fmt::format("cannot tell the running kernel's version from {}", kOsReleasePath),
        fmt::format("is /proc mounted? ({})", needed_for));
  return KernelRelease{**release, *version};
}

Result<std::vector<std::string>> vfio_modules(const HostFs& fs) {
  KernelRelease k =
      TRY(running_kernel(fs, "pcipass needs it to know whether vfio_virqfd is a module"));
  std::vector<std::string> out = {"vfio", "vfio_iommu_type1", "vfio_pci"};
  auto [major, minor] = k.version;
  if (major < 6 || (major == 6 && minor < 2)) out.push_back("vfio_virqfd");
  return out;
}

std::string with_modules(const std::optional<std::string>& existing,
                         const std::vector<std::string>& modules) {
  std::string out = existing ? *existing
                             : "# VFIO for PCI passthrough, written by `pcipass setup --vfio`;\n"
                               "# `pcipass undo` removes it.\n";
  for (const auto& m : modules) {
    if (lists(out, m)) continue;
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += m + '\n';
  }
  return out;
}

Result<VfioReport> plan_vfio(const HostFs& fs) {
  VfioReport r;
  r.part.kind = PartKind::kModulesLoad;
  r.modules = TRY(vfio_modules(fs));
  change::FileState now = TRY(change::read_file_state(fs, r.path));
  r.created = now.absent;
  std::optional<std::string> existing;
  if (!now.absent) existing = now.bytes;
  for (const auto& m : r.modules)
    if (!existing || !lists(*existing, m)) r.added.push_back(m);
  auto& plan = r.part.changes;
  std::string dir = r.path.substr(0, r.path.rfind('/'));
  if (!fs.is_dir(dir)) plan.push_back(change::Change::dir_create(dir, 0755));
  plan.push_back(change::Change::file_write(r.path, with_modules(existing, r.modules), 0644));
  return r;
}

Result<VfioReport> setup_vfio(HostFs& fs, const change::Ports& ports,
                              const change::DurableRun& run) {
  VfioReport r = TRY(plan_vfio(fs));
  r.applied = TRY(apply_parts(fs, {std::move(r.part)}, ports, run));
  return r;
}

}  // namespace pcipass::setup
