#include "snapshot/snapshot.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstdio>
#include <ctime>

#include "pci/inventory.h"

namespace pcipass {
namespace {

constexpr const char* kDeviceAttributes[] = {"vendor",
                                             "device",
                                             "subsystem_vendor",
                                             "subsystem_device",
                                             "class",
                                             "revision",
                                             "boot_vga",
                                             "driver_override",
                                             "modalias",
                                             "numa_node",
                                             "irq",
                                             "reset_method",
                                             "current_link_speed",
                                             "current_link_width",
                                             "max_link_speed",
                                             "max_link_width",
                                             "enable",
                                             "sriov_totalvfs",
                                             "sriov_numvfs",
                                             "sriov_drivers_autoprobe",
                                             "local_cpulist",
                                             "d3cold_allowed",
                                             "config"};

constexpr const char* kModules[] = {"vfio",     "vfio_pci", "vfio_pci_core", "vfio_iommu_type1",
                                    "pci_stub", "kvm",      "kvm_intel",     "kvm_amd",
                                    "mdev"};

constexpr const char* kProcFiles[] = {
    "/proc/cmdline",        "/proc/modules",        "/proc/sys/kernel/osrelease",
    "/proc/self/mountinfo", "/proc/self/limits",    "/proc/swaps",
    "/proc/net/route",      "/proc/net/ipv6_route", "/proc/mdstat",
    "/proc/interrupts",     "/proc/meminfo",        "/etc/default/grub",
    "/etc/kernel/cmdline"};

constexpr const char* kModuleIndexes[] = {"modules.builtin", "modules.builtin.bin",
                                          "modules.dep.bin", "modules.alias.bin",
                                          "modules.softdep", "modules.builtin.alias.bin"};

class Collector {
 public:
  explicit Collector(const HostFs& fs) : fs_(fs) {}

  SnapshotTree run() {
    pci_devices();
    iommu();
    drivers_and_modules();
    classes();
    proc_and_dev();
    module_indexes();
    return std::move(tree_);
  }

 private:
  void dir(const std::string& path) {
    for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
      std::string prefix = path.substr(0, slash);
      tree_.try_emplace(prefix, SnapshotEntry{SnapshotEntry::kDir, {}});
      if (slash == std::string::npos) break;
    }
  }
  void parent_dir(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash > 0) dir(path.substr(0, slash));
  }
  void file(const std::string& path, size_t limit = 1 << 20) {
    auto data = fs_.read(path, limit);
    if (!data) return;
    parent_dir(path);
    tree_[path] = {SnapshotEntry::kFile, std::move(*data)};
  }
  void empty_file_if_exists(const std::string& path) {
    if (!fs_.exists(path)) return;
    parent_dir(path);
    tree_[path] = {SnapshotEntry::kFile, {}};
  }
  // Copies a link and makes sure the directory it leads to exists in the tree.
  std::optional<std::string> link(const std::string& path) {
    auto target = fs_.read_link(path);
    if (!target) return std::nullopt;
    parent_dir(path);
    tree_[path] = {SnapshotEntry::kLink, *target};
    auto real = fs_.resolve(path);
    if (!real) return std::nullopt;
    if (fs_.is_dir(*real)) dir(*real);
    return *real;
  }
  void files_in(const std::string& d) {
    for (const auto& n : fs_.list(d).value_or({}))
      if (fs_.type(d + "/" + n, false) == FileType::kFile) file(d + "/" + n, 64 * 1024);
  }

  void pci_devices() {
    for (const auto& name : fs_.list(kPciDevicesDir).value_or({})) {
      auto real = link(std::string(kPciDevicesDir) + "/" + name);
      if (!real) continue;
      for (const char* attr : kDeviceAttributes) file(*real + "/" + attr, 4096);
      for (const char* l : {"driver", "iommu_group", "physfn"}) link(*real + "/" + l);
      for (const auto& entry : fs_.list(*real).value_or({}))
        if (entry.starts_with("virtfn")) link(*real + "/" + entry);
    }
  }

  void iommu() {
    const std::string groups = "/sys/kernel/iommu_groups";
    dir(groups);
    for (const auto& g : fs_.list(groups).value_or({})) {
      file(groups + "/" + g + "/type", 256);
      dir(groups + "/" + g + "/devices");
      for (const auto& d : fs_.list(groups + "/" + g + "/devices").value_or({}))
        link(groups + "/" + g + "/devices/" + d);
    }
    dir("/sys/class/iommu");
    for (const auto& unit : fs_.list("/sys/class/iommu").value_or({})) {
      auto real = link("/sys/class/iommu/" + unit);
      if (!real) continue;
      for (const char* sub : {"/intel-iommu", "/amd-iommu"}) files_in(*real + sub);
    }
    for (const char* t : {"DMAR", "IVRS"})
      empty_file_if_exists(std::string("/sys/firmware/acpi/tables/") + t);
  }

  // Write-only attributes (bind, uevent...) are kept as empty files: they mark that the driver or
  // module exists, and keep the directory when the tree is stored in git.
  void presence(const std::string& path) {
    parent_dir(path);
    tree_[path] = {SnapshotEntry::kFile, {}};
  }

  void drivers_and_modules() {
    dir("/sys/bus/pci/drivers");
    for (const auto& drv : fs_.list("/sys/bus/pci/drivers").value_or({}))
      for (const char* attr : {"bind", "unbind", "new_id", "remove_id"})
        if (fs_.exists("/sys/bus/pci/drivers/" + drv + "/" + attr))
          presence("/sys/bus/pci/drivers/" + drv + "/" + attr);
    for (const char* attr : {"drivers_probe", "rescan"})
      if (fs_.exists(std::string("/sys/bus/pci/") + attr))
        presence(std::string("/sys/bus/pci/") + attr);
    for (const auto& m : fs_.list("/sys/module").value_or({}))
      presence("/sys/module/" + m + "/uevent");
    for (const char* m : kModules) {
      std::string base = std::string("/sys/module/") + m;
      if (!fs_.is_dir(base)) continue;
      files_in(base + "/parameters");
      file(base + "/initstate", 64);
    }
  }

  void classes() {
    for (const char* cls : {"/sys/class/net", "/sys/class/block", "/sys/class/graphics"}) {
      dir(cls);
      for (const auto& n : fs_.list(cls).value_or({})) {
        auto real = link(std::string(cls) + "/" + n);
        if (!real) continue;
        for (const char* attr : {"operstate", "dev", "type"}) file(*real + "/" + attr, 256);
        for (const auto& s : fs_.list(*real + "/slaves").value_or({})) link(*real + "/slaves/" + s);
        for (const auto& e : fs_.list(*real).value_or({}))
          if (e.starts_with("lower_")) link(*real + "/" + e);
        for (const auto& e : fs_.list(*real + "/brif").value_or({})) link(*real + "/brif/" + e);
        file(*real + "/bonding/slaves", 4096);
        file(*real + "/dm/name", 256);
        link(*real + "/device");
      }
    }
    dir("/sys/dev/block");
    for (const auto& n : fs_.list("/sys/dev/block").value_or({})) link("/sys/dev/block/" + n);
    for (const auto& vt : fs_.list("/sys/class/vtconsole").value_or({})) {
      auto real = link("/sys/class/vtconsole/" + vt);
      if (real) {
        file(*real + "/name", 256);
        file(*real + "/bind", 16);
      }
    }
  }

  void proc_and_dev() {
    for (const char* p : kProcFiles) file(p);
    for (const char* d :
         {"/etc/modprobe.d", "/run/modprobe.d", "/lib/modprobe.d", "/usr/lib/modprobe.d"})
      for (const auto& n : fs_.list(d).value_or({}))
        if (n.ends_with(".conf")) file(std::string(d) + "/" + n, 256 * 1024);
    // One processor's block says the vendor and flags; the rest only repeats it.
    if (auto cpu = fs_.read("/proc/cpuinfo", 4 << 20)) {
      auto end = cpu->find("\n\n");
      tree_["/proc/cpuinfo"] = {SnapshotEntry::kFile,
                                cpu->substr(0, end == std::string::npos ? cpu->size() : end + 1)};
    }
    empty_file_if_exists("/dev/kvm");
    dir("/dev/vfio");
    for (const auto& n : fs_.list("/dev/vfio").value_or({})) empty_file_if_exists("/dev/vfio/" + n);
    dir("/run");
  }

  void module_indexes() {
    auto release = fs_.read_trimmed("/proc/sys/kernel/osrelease");
    if (!release) return;
    for (const char* f : kModuleIndexes) file("/lib/modules/" + *release + "/" + f, 16 << 20);
  }

  const HostFs& fs_;
  SnapshotTree tree_;
};

}  // namespace

SnapshotTree collect_snapshot(const HostFs& fs) {
  return Collector(fs).run();
}

Status write_snapshot(const SnapshotTree& tree, const std::string& output) {
  std::string tmp = output + ".tmp." + std::to_string(::getpid());
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_filename(a, tmp.c_str()) != ARCHIVE_OK) {
    Error e = Error::io("create", output, archive_errno(a) ? archive_errno(a) : EIO);
    archive_write_free(a);
    return e;
  }
  archive_entry* e = archive_entry_new();
  time_t now = std::time(nullptr);
  bool ok = true;
  for (const auto& [path, entry] : tree) {
    archive_entry_clear(e);
    archive_entry_set_pathname(e, path.c_str() + 1);  // relative names inside the archive
    archive_entry_set_mtime(e, now, 0);
    switch (entry.type) {
      case SnapshotEntry::kDir:
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, 0755);
        break;
      case SnapshotEntry::kLink:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_perm(e, 0777);
        archive_entry_set_symlink(e, entry.data.c_str());
        break;
      case SnapshotEntry::kFile:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, static_cast<la_int64_t>(entry.data.size()));
        break;
    }
    ok = archive_write_header(a, e) == ARCHIVE_OK;
    if (ok && entry.type == SnapshotEntry::kFile && !entry.data.empty())
      ok = archive_write_data(a, entry.data.data(), entry.data.size()) ==
           static_cast<la_ssize_t>(entry.data.size());
    if (!ok) break;
  }
  archive_entry_free(e);
  ok = archive_write_close(a) == ARCHIVE_OK && ok;
  int err = archive_errno(a);
  archive_write_free(a);
  if (!ok) {
    std::remove(tmp.c_str());
    return Error::io("write", output, err ? err : EIO);
  }
  if (std::rename(tmp.c_str(), output.c_str()) != 0) {
    int rerr = errno;
    std::remove(tmp.c_str());
    return Error::io("rename", output, rerr);
  }
  return {};
}

}  // namespace pcipass
