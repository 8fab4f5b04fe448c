#include "fake_kernel.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace pcipass::test {

namespace fs = std::filesystem;

namespace {
std::string fmt_hex(uint16_t v) {
  char out[8];
  std::snprintf(out, sizeof out, "%04x", v);
  return out;
}
}  // namespace

FakeKernel::FakeKernel(TempTree& tree) : tree_(tree), real_(make_real_host_fs(tree.root())) {
  tree_.dir("/sys/bus/pci/drivers");
  for (const auto& d : real_->list("/sys/bus/pci/drivers").value_or({})) register_driver(d);
  if (!real_->exists("/sys/bus/pci/drivers_probe")) tree_.file("/sys/bus/pci/drivers_probe", "");
  tree_.file("/dev/vfio/vfio", "");
}

void FakeKernel::register_driver(const std::string& name) {
  std::string dir = "/sys/bus/pci/drivers/" + name;
  tree_.dir(dir);
  for (const char* f : {"bind", "unbind", "new_id", "remove_id"})
    if (!real_->exists(dir + "/" + f)) tree_.file(dir + "/" + f, "");
}

void FakeKernel::add_process(int pid, const std::string& comm,
                             const std::vector<std::string>& targets) {
  std::string dir = "/proc/" + std::to_string(pid);
  tree_.file(dir + "/comm", comm + "\n");
  tree_.dir(dir + "/fd");
  int fd = 3;
  for (const auto& t : targets)
    fs::create_symlink(t, tree_.real(dir + "/fd/" + std::to_string(fd++)));
}

std::string FakeKernel::dev_dir(const std::string& addr) const {
  return real_->resolve("/sys/bus/pci/devices/" + addr).value_or("");
}

std::optional<std::string> FakeKernel::driver_of(const std::string& addr) const {
  std::string dir = dev_dir(addr);
  if (real_->type(dir + "/driver", false) != FileType::kLink) return std::nullopt;
  return real_->link_basename(dir + "/driver");
}

std::optional<std::string> FakeKernel::override_of(const std::string& addr) const {
  auto o = real_->read_trimmed(dev_dir(addr) + "/driver_override");
  if (!o || *o == "(null)" || o->empty()) return std::nullopt;
  return o;
}

std::optional<std::string> FakeKernel::group_of(const std::string& addr) const {
  std::string dir = dev_dir(addr);
  if (real_->type(dir + "/iommu_group", false) != FileType::kLink) return std::nullopt;
  return real_->link_basename(dir + "/iommu_group");
}

// /dev/vfio/G exists while any device of group G is bound to vfio-pci (and udev runs).
void FakeKernel::update_node(const std::string& group) {
  bool any = false;
  for (const auto& a : real_->list("/sys/kernel/iommu_groups/" + group + "/devices").value_or({}))
    any |= driver_of(a) == "vfio-pci";
  std::string node = "/dev/vfio/" + group;
  if (any && udev_ && !real_->exists(node)) tree_.file(node, "");
  if (!any) fs::remove(tree_.real(node));
}

// The kernel writes a device's uevent when it is read (dev_uevent): DRIVER= is the driver bound
// now, first, and absent while none is. pcipass reads the driver from it, as lspci does, so the
// double keeps the file in step with the driver link.
void FakeKernel::update_uevent(const std::string& dir, const std::string& driver) {
  auto old = real_->read(dir + "/uevent");
  if (!old) return;  // a tree without uevent: readers fall back on the driver link
  std::istringstream in(*old);
  std::string text = driver.empty() ? "" : "DRIVER=" + driver + "\n", line;
  while (std::getline(in, line))
    if (!line.starts_with("DRIVER=")) text += line + "\n";
  tree_.file(dir + "/uevent", text);
}

Status FakeKernel::bind_device(const std::string& addr, const std::string& driver) {
  std::string dir = dev_dir(addr);
  if (declines_.count(addr + "/" + driver)) return {};  // probe failed: stays unbound
  tree_.link(dir + "/driver", "/sys/bus/pci/drivers/" + driver);
  tree_.link("/sys/bus/pci/drivers/" + driver + "/" + addr, dir);
  update_uevent(dir, driver);
  if (auto g = group_of(addr)) update_node(*g);
  return {};
}

Status FakeKernel::unbind_device(const std::string& addr) {
  auto d = driver_of(addr);
  fs::remove(tree_.real(dev_dir(addr) + "/driver"));
  if (d) fs::remove(tree_.real("/sys/bus/pci/drivers/" + *d + "/" + addr));
  update_uevent(dev_dir(addr), "");
  if (auto g = group_of(addr)) update_node(*g);
  return {};
}

Status FakeKernel::apply(const std::string& path, const std::string& data) {
  auto resolved = real_->resolve(path);
  if (!resolved) return Error::io("open", path, ENOENT);
  const std::string& r = *resolved;
  std::string value = data;
  if (!value.empty() && value.back() == '\n') value.pop_back();
  auto errno_error = [&](int e) -> Status { return Error::io("write", path, e); };

  if (base_name(r) == "driver_override") {
    tree_.file(r, value.empty() ? "(null)\n" : value + "\n");
    return {};
  }
  bool registered = false;
  auto is_registered = [&](const std::string& d) {
    return real_->is_dir("/sys/bus/pci/drivers/" + d);
  };
  if (r == "/sys/bus/pci/drivers_probe") {
    if (dev_dir(value).empty()) return errno_error(ENODEV);
    if (driver_of(value)) return {};
    if (auto o = override_of(value)) {
      if (is_registered(*o)) return bind_device(value, *o);
      return {};
    }
    auto n = native_.find(value);
    if (n != native_.end() && is_registered(n->second)) return bind_device(value, n->second);
    return {};
  }
  const std::string drivers = "/sys/bus/pci/drivers/";
  if (r.starts_with(drivers)) {
    std::string rest = r.substr(drivers.size());
    auto slash = rest.find('/');
    std::string driver = rest.substr(0, slash),
                file = slash == std::string::npos ? "" : rest.substr(slash + 1);
    registered = is_registered(driver);
    if (file == "unbind") {
      if (dev_dir(value).empty() || driver_of(value) != driver) return errno_error(ENODEV);
      if (auto b = busy_.find(value); b != busy_.end()) return errno_error(b->second);
      return unbind_device(value);
    }
    if (file == "bind") {
      if (dev_dir(value).empty() || !registered) return errno_error(ENODEV);
      if (driver_of(value)) return errno_error(EBUSY);
      auto o = override_of(value);
      if (o && *o != driver) return errno_error(ENODEV);
      if (!o && native_[value] != driver) return errno_error(ENODEV);
      return bind_device(value, driver);
    }
    if (file == "new_id" || file == "remove_id")
      return errno_error(EPERM);  // pcipass never uses them
  }
  if (base_name(r) == "sriov_numvfs" || base_name(r) == "sriov_drivers_autoprobe") {
    std::string pf = base_name(r.substr(0, r.rfind('/')));
    if (sriov_.count(pf))
      return base_name(r) == "sriov_numvfs" ? write_numvfs(pf, value, path)
                                            : write_autoprobe(pf, value, path);
  }
  if (base_name(r) == "create" && mdev_types_.count(r.substr(0, r.rfind('/'))))
    return write_mdev_create(r.substr(0, r.rfind('/')), data, path);
  if (base_name(r) == "remove") {
    std::string uuid = base_name(r.substr(0, r.rfind('/')));
    if (mdevs_.count(uuid)) return write_mdev_remove(uuid, value, path);
  }
  // Any other attribute of a device shows what was last written to it (sriov_numvfs,
  // reset_method), not the old bytes overwritten in place.
  if (r.starts_with("/sys/devices/") && real_->type(r, false) == FileType::kFile) {
    tree_.file(r, value + "\n");
    return {};
  }
  return real_->write(path, data);
}

void FakeKernel::sriov(const std::string& pf, Sriov s) {
  std::string dir = dev_dir(pf);
  // A tree that already has them (a second double over it, after a "crash") keeps its values.
  auto init = [&](const char* name, const std::string& v) {
    if (!real_->exists(dir + "/" + name)) tree_.file(dir + "/" + name, v + "\n");
  };
  init("sriov_totalvfs", std::to_string(s.total));
  init("sriov_numvfs", "0");
  init("sriov_drivers_autoprobe", "1");
  init("sriov_offset", std::to_string(s.offset));
  init("sriov_stride", std::to_string(s.stride));
  init("sriov_vf_device", fmt_hex(s.vf_device));
  if (!s.vf_driver.empty())
    for (const auto& e : real_->list(dir).value_or({}))
      if (e.starts_with("virtfn"))
        native_[real_->link_basename(dir + "/" + e).value_or("")] = s.vf_driver;
  sriov_[pf] = std::move(s);
}

namespace {

// A number as the kernel's kstrtou16(buf, 0, ...) takes it: decimal, 0x hex or 0 octal.
std::optional<unsigned long> kstrtou16(const std::string& v) {
  if (v.empty() || v[0] == '-' || v[0] == '+' || std::isspace(static_cast<unsigned char>(v[0])))
    return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long n = std::strtoul(v.c_str(), &end, 0);
  if (errno || *end || n > 0xffff) return std::nullopt;
  return n;
}

std::string vf_address(const std::string& pf, int offset) {
  unsigned domain = 0, bus = 0, dev = 0, fn = 0;
  std::sscanf(pf.c_str(), "%x:%x:%x.%x", &domain, &bus, &dev, &fn);
  unsigned devfn = (dev << 3 | fn) + static_cast<unsigned>(offset);
  char out[16];
  std::snprintf(out, sizeof out, "%04x:%02x:%02x.%x", domain, (bus + (devfn >> 8)) & 0xff,
                (devfn & 0xff) >> 3, devfn & 7);
  return out;
}

}  // namespace

// drivers/pci/iov.c, sriov_numvfs_store() (torvalds/linux): a value kstrtou16 rejects is EINVAL;
// above sriov_totalvfs ERANGE; the current value changes nothing; a PF without a driver ENOENT;
// 0 removes the VFs; another non-zero value while VFs exist EBUSY ("Disable before enabling").
Status FakeKernel::write_numvfs(const std::string& pf, const std::string& value,
                                const std::string& path) {
  auto n = kstrtou16(value);
  if (!n) return Error::io("write", path, EINVAL);
  if (static_cast<int>(*n) > sriov_[pf].total) return Error::io("write", path, ERANGE);
  int now = std::stoi(real_->read_trimmed(dev_dir(pf) + "/sriov_numvfs").value_or("0"));
  if (static_cast<int>(*n) == now) return {};
  if (!driver_of(pf)) return Error::io("write", path, ENOENT);
  if (*n == 0) {
    remove_vfs(pf);
  } else {
    if (now) return Error::io("write", path, EBUSY);
    create_vfs(pf, static_cast<int>(*n));
  }
  tree_.file(dev_dir(pf) + "/sriov_numvfs", std::to_string(*n) + "\n");
  // The VFs' directories were replaced behind the real HostFs, which keeps recent directories
  // open: a fresh one sees the new ones (the kernel's sysfs has no such cache to go stale).
  real_ = make_real_host_fs(tree_.root());
  return {};
}

// sriov_drivers_autoprobe_store(): kstrtobool, else EINVAL.
Status FakeKernel::write_autoprobe(const std::string& pf, const std::string& value,
                                   const std::string& path) {
  static const std::map<std::string, std::string> kBool = {{"1", "1"},  {"y", "1"},  {"Y", "1"},
                                                           {"on", "1"}, {"0", "0"},  {"n", "0"},
                                                           {"N", "0"},  {"off", "0"}};
  auto b = kBool.find(value);
  if (b == kBool.end()) return Error::io("write", path, EINVAL);
  tree_.file(dev_dir(pf) + "/sriov_drivers_autoprobe", b->second + "\n");
  return {};
}

void FakeKernel::create_vfs(const std::string& pf, int n) {
  const Sriov& s = sriov_[pf];
  std::string pf_dir = dev_dir(pf), parent = pf_dir.substr(0, pf_dir.rfind('/'));
  std::string cfg = real_->read(pf_dir + "/config", 256).value_or(std::string(256, '\0'));
  auto u16 = [&](size_t o) {
    return static_cast<uint16_t>(uint8_t(cfg[o]) | uint8_t(cfg[o + 1]) << 8);
  };
  uint32_t cls =
      uint32_t(uint8_t(cfg[11])) << 16 | uint32_t(uint8_t(cfg[10])) << 8 | uint8_t(cfg[9]);
  bool probe = real_->read_trimmed(pf_dir + "/sriov_drivers_autoprobe") == "1";
  int group = 0;
  for (const auto& g : real_->list("/sys/kernel/iommu_groups").value_or({}))
    group = std::max(group, std::stoi(g) + 1);
  for (int i = 0; i < n; ++i) {
    std::string vf = vf_address(pf, s.offset + s.stride * i), dir = parent + "/" + vf;
    tree_.pci_device(parent, vf, u16(0), s.vf_device, cls, "", group + i);
    tree_.link(dir + "/physfn", pf_dir);
    tree_.link(pf_dir + "/virtfn" + std::to_string(i), dir);
    if (s.vf_driver.empty()) continue;
    native_[vf] = s.vf_driver;
    if (probe && real_->is_dir("/sys/bus/pci/drivers/" + s.vf_driver))
      (void)bind_device(vf, s.vf_driver);
  }
}

void FakeKernel::remove_vfs(const std::string& pf) {
  std::string pf_dir = dev_dir(pf);
  for (const auto& e : real_->list(pf_dir).value_or({})) {
    if (!e.starts_with("virtfn")) continue;
    std::string vf = real_->link_basename(pf_dir + "/" + e).value_or("");
    auto group = group_of(vf);
    std::string dir = dev_dir(vf);
    (void)unbind_device(vf);
    if (group) tree_.remove("/sys/kernel/iommu_groups/" + *group);
    tree_.remove("/sys/bus/pci/devices/" + vf);
    tree_.remove(dir);
    tree_.remove(pf_dir + "/" + e);
    native_.erase(vf);
  }
}

void FakeKernel::mdev_parent(const std::string& name, const std::string& device,
                             std::vector<MdevType> types) {
  tree_.dir(device);
  if (!real_->exists(std::string("/sys/class/mdev_bus/") + name))
    tree_.link("/sys/class/mdev_bus/" + name, device);
  for (auto& t : types) {
    std::string dir = device + "/mdev_supported_types/" + t.id;
    auto init = [&](const char* file, const std::string& v) {
      if (!real_->exists(dir + "/" + file)) tree_.file(dir + "/" + file, v + "\n");
    };
    init("name", t.name);
    init("description", t.description);
    init("device_api", t.device_api);
    init("available_instances", std::to_string(t.instances));
    if (!real_->exists(dir + "/create")) tree_.file(dir + "/create", "");
    tree_.dir(dir + "/devices");
    mdev_types_[dir] = t;
  }
  // A double over a tree that has mdevs already (after a "crash") knows them.
  tree_.dir("/sys/bus/mdev/devices");
  for (const auto& uuid : real_->list("/sys/bus/mdev/devices").value_or({})) {
    std::string dir = "/sys/bus/mdev/devices/" + uuid;
    if (auto type = real_->resolve(dir + "/mdev_type")) mdevs_[uuid] = *type;
    if (auto g = real_->link_basename(dir + "/iommu_group")) mdev_groups_[uuid] = std::stoi(*g);
  }
  real_ = make_real_host_fs(tree_.root());
}

void FakeKernel::set_available(const std::string& type_dir, int delta) {
  int n = std::stoi(real_->read_trimmed(type_dir + "/available_instances").value_or("0"));
  tree_.file(type_dir + "/available_instances", std::to_string(n + delta) + "\n");
}

// linux 6.1 drivers/vfio/mdev/mdev_sysfs.c, create_store(): 36 or 37 bytes (a newline) else
// EINVAL, guid_parse() (hex digits of either case, dashes at 8-4-4-4-12) else EINVAL; then
// mdev_core.c, mdev_device_create(): a UUID in use EEXIST, none available the driver's error.
Status FakeKernel::write_mdev_create(const std::string& type_dir, const std::string& value,
                                     const std::string& path) {
  if (value.size() < 36 || value.size() > 37) return Error::io("write", path, EINVAL);
  std::string uuid = value.substr(0, 36);
  for (size_t i = 0; i < uuid.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char& c = uuid[i];
    if (dash ? c != '-' : !std::isxdigit(static_cast<unsigned char>(c)))
      return Error::io("write", path, EINVAL);
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (mdevs_.count(uuid)) return Error::io("write", path, EEXIST);
  if (real_->read_trimmed(type_dir + "/available_instances") == "0")
    return Error::io("write", path, mdev_types_[type_dir].full_err);
  std::string parent = type_dir.substr(0, type_dir.find("/mdev_supported_types/"));
  std::string dir = parent + "/" + uuid;
  int group = 0;
  if (auto g = mdev_groups_.find(uuid); g != mdev_groups_.end()) {
    group = g->second;
  } else {
    for (const auto& e : real_->list("/sys/kernel/iommu_groups").value_or({}))
      group = std::max(group, std::stoi(e) + 1);
    for (const auto& [u, g2] : mdev_groups_) group = std::max(group, g2 + 1);
    mdev_groups_[uuid] = group;
  }
  std::string gdir = "/sys/kernel/iommu_groups/" + std::to_string(group);
  tree_.file(dir + "/remove", "");
  tree_.link(dir + "/mdev_type", type_dir);
  tree_.link(dir + "/iommu_group", gdir);
  tree_.link(gdir + "/devices/" + uuid, dir);
  tree_.link("/sys/bus/mdev/devices/" + uuid, dir);
  tree_.link(type_dir + "/devices/" + uuid, dir);
  if (real_->is_dir("/sys/bus/mdev/drivers/vfio_mdev")) {
    tree_.link(dir + "/driver", "/sys/bus/mdev/drivers/vfio_mdev");
    tree_.link("/sys/bus/mdev/drivers/vfio_mdev/" + uuid, dir);
    if (udev_) tree_.file("/dev/vfio/" + std::to_string(group), "");
  }
  mdevs_[uuid] = type_dir;
  set_available(type_dir, -1);
  real_ = make_real_host_fs(tree_.root());
  return {};
}

// mdev_sysfs.c, remove_store(): kstrtoul(buf, 0) else EINVAL; non-zero removes the device.
Status FakeKernel::write_mdev_remove(const std::string& uuid, const std::string& value,
                                     const std::string& path) {
  if (value.empty() || value[0] == '-' ||
      value.find_first_not_of("0123456789xXabcdefABCDEF") != std::string::npos)
    return Error::io("write", path, EINVAL);
  char* end = nullptr;
  unsigned long v = std::strtoul(value.c_str(), &end, 0);
  if (*end) return Error::io("write", path, EINVAL);
  if (!v) return {};
  std::string type_dir = mdevs_[uuid];
  std::string dir = real_->resolve("/sys/bus/mdev/devices/" + uuid).value_or("");
  int group = mdev_groups_[uuid];
  tree_.remove("/dev/vfio/" + std::to_string(group));
  tree_.remove("/sys/kernel/iommu_groups/" + std::to_string(group));
  tree_.remove("/sys/bus/mdev/drivers/vfio_mdev/" + uuid);
  tree_.remove("/sys/bus/mdev/devices/" + uuid);
  tree_.remove(type_dir + "/devices/" + uuid);
  if (!dir.empty()) tree_.remove(dir);
  mdevs_.erase(uuid);
  set_available(type_dir, +1);
  real_ = make_real_host_fs(tree_.root());
  return {};
}

Status FakeKernel::write(const std::string& path, std::string_view data) {
  log_.push_back(path + " <- " + (data == "\n" ? std::string("\\n") : std::string(data)));
  int n = static_cast<int>(log_.size());
  if (crashed(true)) return Error::io("write", path, EIO);
  auto f = faults_.find(n);
  if (f == faults_.end()) return apply(path, std::string(data));
  if (f->second.applied) (void)apply(path, std::string(data));
  if (f->second.short_write) {
    Error e = Error::io("write", path, EIO);
    e.message = "write " + path + ": short write (0 of " + std::to_string(data.size()) + " bytes)";
    return e;
  }
  return Error::io("write", path, f->second.err);
}

Status FakeKernel::write_atomic(const std::string& path, std::string_view data, mode_t mode) {
  if (crashed()) return Error::io("create", path + ".tmp", EIO);
  TRY(file_change("create", path));
  return real_->write_atomic(path, data, mode);
}

Status FakeKernel::make_dirs(const std::string& path, mode_t mode) {
  if (crashed()) return Error::io("mkdir", path, EIO);
  TRY(file_change("mkdir", path));
  return real_->make_dirs(path, mode);
}

Status FakeKernel::remove(const std::string& path) {
  if (crashed()) return Error::io("unlink", path, EIO);
  TRY(file_change("unlink", path));
  return real_->remove(path);
}

Status FakeKernel::remove_dir(const std::string& path) {
  if (crashed()) return Error::io("rmdir", path, EIO);
  TRY(file_change("rmdir", path));
  return real_->remove_dir(path);
}

Status FakeKernel::make_link(const std::string& path, const std::string& target) {
  if (crashed()) return Error::io("symlink", path, EIO);
  TRY(file_change("symlink", path));
  return real_->make_link(path, target);
}

Status FakeKernel::file_change(const char* op, const std::string& path) {
  if (++file_count_ == fail_file_) return Error::io(op, path, EIO);
  return {};
}

Status FakeKernel::change_owner(const std::string& path, uid_t uid, gid_t gid) {
  if (crashed()) return Error::io("chown", path, EIO);
  if (!real_->exists(path)) return Error::io("chown", path, ENOENT);
  chowns_[path] = {uid, gid};
  return {};
}

Result<HostFs::Owner> FakeKernel::owner(const std::string& path) const {
  auto o = TRY(real_->owner(path));
  if (auto it = chowns_.find(path); it != chowns_.end())
    o.uid = it->second.first, o.gid = it->second.second;
  return o;
}

std::string FakeKernel::snapshot() const {
  std::ostringstream out;
  for (const auto& a : real_->list("/sys/bus/pci/devices").value_or({})) {
    out << a << " driver=" << driver_of(a).value_or("-")
        << " override=" << override_of(a).value_or("-") << '\n';
  }
  for (const auto& d : real_->list("/sys/bus/pci/drivers").value_or({}))
    for (const auto& e : real_->list("/sys/bus/pci/drivers/" + d).value_or({}))
      if (real_->type("/sys/bus/pci/drivers/" + d + "/" + e, false) == FileType::kLink)
        out << d << " <- " << e << '\n';
  for (const auto& n : real_->list("/dev/vfio").value_or({})) out << "/dev/vfio/" << n << '\n';
  return out.str();
}

Status FakeLoader::load(const std::string& module) {
  loaded.push_back(module);
  if (fail) return Error::io("load module", module, ENOENT);
  std::string driver = module;
  for (char& c : driver)
    if (c == '_') c = '-';
  k_.register_driver(driver);
  return {};
}

}  // namespace pcipass::test

namespace pcipass::test {

void sample_host(TempTree& t) {
  const std::string bus = "/sys/devices/pci0000:00";
  t.pci_device(bus, "0000:00:00.0", 0x8086, 0x29c0, 0x060000, "", 0);
  t.pci_device(bus, "0000:00:01.0", 0x8086, 0x10d3, 0x020000, "e1000e", 1);
  t.pci_device(bus, "0000:00:02.0", 0x1af4, 0x1001, 0x010000, "virtio-pci", 2);
  t.pci_device(bus, "0000:00:03.0", 0x8086, 0x10d3, 0x020000, "e1000e", 4);
  t.pci_device(bus, "0000:00:1c.0", 0x8086, 0x2448, 0x060400, "pcieport", 3);
  t.pci_device(bus + "/0000:00:1c.0", "0000:01:00.0", 0x10de, 0x1b80, 0x030000, "nouveau", 3);
  t.pci_device(bus + "/0000:00:1c.0", "0000:01:00.1", 0x10de, 0x10f0, 0x040300, "snd_hda_intel", 3);
  t.file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda1 intel_iommu=on\n");
  for (auto [addr, ifname] :
       {std::pair{"0000:00:01.0", "eth0"}, std::pair{"0000:00:03.0", "eth1"}}) {
    std::string dir = bus + "/" + addr + "/net/" + ifname;
    t.file(dir + "/operstate", "up\n");
    t.link("/sys/class/net/" + std::string(ifname), dir);
  }
  t.file("/proc/net/route",
         "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
         "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
         "eth0\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
         "eth1\t006433C6\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n");
  t.file("/proc/net/fib_trie",
         "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 192.0.2.10\n        /32 host LOCAL\n"
         "     |-- 198.51.100.5\n        /32 host LOCAL\n");
  t.file("/proc/net/if_inet6", "20010db8000000000000000000000010 02 40 00 80     eth0\n");
  std::string vda = bus + "/0000:00:02.0/virtio0/block/vda";
  t.dir(vda + "/vda1");
  t.link("/sys/class/block/vda", vda);
  t.link("/sys/class/block/vda1", vda + "/vda1");
  t.link("/sys/dev/block/254:1", vda + "/vda1");
  t.file("/proc/self/mountinfo", "22 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw\n");
  t.file("/proc/self/limits",
         "Limit                     Soft Limit           Hard Limit           Units\n"
         "Max locked memory         unlimited            unlimited            bytes\n");
  t.file("/etc/passwd",
         "root:x:0:0:root:/root:/bin/bash\n"
         "libvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\n");
  t.file("/etc/group", "root:x:0:\nkvm:x:108:\nlibvirt-qemu:x:64055:\n");
  t.dir("/run");
}

void sample_natives(FakeKernel& k) {
  k.native("0000:00:01.0", "e1000e");
  k.native("0000:00:02.0", "virtio-pci");
  k.native("0000:00:03.0", "e1000e");
  k.native("0000:00:1c.0", "pcieport");
  k.native("0000:01:00.0", "nouveau");
  k.native("0000:01:00.1", "snd_hda_intel");
}

}  // namespace pcipass::test
