// A sysfs double: a HostFs over a TempTree whose writes to the kernel's PCI control files behave
// like the kernel's (driver links, driver_override, drivers_probe, bind/unbind, /dev/vfio nodes),
// with fault injection. Reads go to the tree, which the double keeps in the kernel's shape.
#pragma once

#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "host/module_loader.h"
#include "temp_tree.h"

namespace pcipass::test {

class FakeKernel : public HostFs {
 public:
  // Registers every driver directory already in the tree (gives it bind/unbind files) and
  // creates /sys/bus/pci/drivers_probe and /dev/vfio/vfio.
  explicit FakeKernel(TempTree& tree);

  // --- the kernel being modelled
  void register_driver(const std::string& name);
  // The driver drivers_probe binds `addr` to when no driver_override is set.
  void native(const std::string& addr, const std::string& driver) { native_[addr] = driver; }
  // Unbinding `addr` from its driver fails with `err` (EBUSY: "device in use").
  void refuse_unbind(const std::string& addr, int err = EBUSY) { busy_[addr] = err; }
  // `driver` declines `addr` at probe time (the probe function fails): the device stays unbound.
  void refuse_probe(const std::string& addr, const std::string& driver) {
    declines_.insert(addr + "/" + driver);
  }
  void udev(bool creates_nodes) { udev_ = creates_nodes; }
  // Makes the device at `pf` (already in the tree) an SR-IOV physical function: sriov_totalvfs,
  // sriov_numvfs 0, sriov_drivers_autoprobe 1, sriov_offset/stride/vf_device. Writing
  // sriov_numvfs creates VFs next to it (each in a new IOMMU group), with physfn and virtfnN
  // links; `vf_driver` is what probes them (at creation when autoprobe is 1, and drivers_probe).
  struct Sriov {
    int total = 7;
    int offset = 1, stride = 1;
    uint16_t vf_device = 0;
    std::string vf_driver;
  };
  void sriov(const std::string& pf, Sriov s);
  // Makes `device` (a directory under /sys/devices, created when missing) a parent of mediated
  // devices named `name` in /sys/class/mdev_bus, offering `types`. Writing a UUID to a type's
  // `create` makes /sys/bus/mdev/devices/UUID (mdev_type link, `remove`, its own IOMMU group,
  // bound to vfio_mdev when that driver is registered in /sys/bus/mdev/drivers); writing 1 to
  // `remove` takes it away. available_instances follows.
  struct MdevType {
    std::string id, name, description, device_api = "vfio-pci";
    int instances = 2;
    // What a create beyond available_instances fails with: EUSERS from the mdev core for a
    // driver that counts in the core (linux 6.1 mdev_core.c, mdev_device_create), ENOSPC from
    // mtty's own count (samples/vfio-mdev/mtty.c).
    int full_err = ENOSPC;
  };
  void mdev_parent(const std::string& name, const std::string& device, std::vector<MdevType> types);

  // --- faults
  struct Fault {
    int err = EIO;
    bool short_write = false;  // report a short write (0 bytes) instead of errno
    bool applied = false;      // the kernel acted on it, then the write reported the error
  };
  void fail_write(int n, Fault f) { faults_[n] = f; }
  void fail_write(int n, int err = EIO) { faults_[n] = Fault{err, false, false}; }
  // The process "dies" after write n: every later write, atomic write, removal and chown fails.
  void crash_after(int n) { crash_after_ = n; }
  // The n-th change to a file (atomic write, mkdir, remove, rmdir, link) fails with EIO;
  // file_changes() counts them.
  void fail_file_change(int n) { fail_file_ = n; }
  int file_changes() const { return file_count_; }
  // Listing `dir` fails with `err`: EACCES as /proc does under a hardened mount or an LSM,
  // ENOENT as a device's directory does once it is unplugged.
  void deny_listing(const std::string& dir, int err = EACCES) { unlistable_[dir] = err; }
  // Reading `path` fails with `err` (EACCES, or EIO as a device's attribute does when it stops
  // answering); writes still reach it.
  void deny_read(const std::string& path, int err = EACCES) { unreadable_[path] = err; }

  // --- observation
  const std::vector<std::string>& writes() const {
    return log_;
  }  // "PATH <- DATA" of every write() call
  int write_count() const { return static_cast<int>(log_.size()); }
  // Drivers, overrides, back links and /dev/vfio nodes of every device, one line each.
  std::string snapshot() const;
  const std::map<std::string, std::pair<uid_t, gid_t>>& chowns() const { return chowns_; }
  // A process with descriptors open on `targets` (absolute links in /proc/PID/fd).
  void add_process(int pid, const std::string& comm, const std::vector<std::string>& targets);

  // --- HostFs
  Result<std::string> read(const std::string& path, size_t limit) const override {
    if (auto it = unreadable_.find(path); it != unreadable_.end())
      return Error::io("open", path, it->second);
    return real_->read(path, limit);
  }
  Result<std::string> read_link(const std::string& path) const override {
    return real_->read_link(path);
  }
  Result<std::string> resolve(const std::string& path) const override {
    return real_->resolve(path);
  }
  Result<std::vector<std::string>> list(const std::string& dir) const override {
    if (auto it = unlistable_.find(dir); it != unlistable_.end())
      return Error::io("opendir", dir, it->second);
    return real_->list(dir);
  }
  FileType type(const std::string& path, bool follow) const override {
    return real_->type(path, follow);
  }
  Result<Owner> owner(const std::string& path) const override;
  Status write(const std::string& path, std::string_view data) override;
  Status write_atomic(const std::string& path, std::string_view data, mode_t mode) override;
  Status make_dirs(const std::string& path, mode_t mode) override;
  Status remove(const std::string& path) override;
  Status remove_dir(const std::string& path) override;
  Status make_link(const std::string& path, const std::string& target) override;
  Result<Xattrs> xattrs(const std::string& path) const override { return real_->xattrs(path); }
  Status change_owner(const std::string& path, uid_t uid, gid_t gid) override;
  Result<std::unique_ptr<Lock>> lock(const std::string& path) override { return real_->lock(path); }
  std::string root() const override { return real_->root(); }
  std::optional<std::string> local_path(const std::string& path) const override {
    return real_->local_path(path);
  }

 private:
  // Writes after the n-th fail; so does every other change once n writes were made.
  bool crashed(bool is_write = false) const {
    return crash_after_ >= 0 && static_cast<int>(log_.size()) > crash_after_ - (is_write ? 0 : 1);
  }
  Status apply(const std::string& path, const std::string& data);
  Status file_change(const char* op, const std::string& path);
  Status bind_device(const std::string& addr, const std::string& driver);
  Status unbind_device(const std::string& addr);
  void update_uevent(const std::string& dir, const std::string& driver);
  std::string dev_dir(const std::string& addr) const;  // canonical device directory
  std::optional<std::string> driver_of(const std::string& addr) const;
  std::optional<std::string> override_of(const std::string& addr) const;
  std::optional<std::string> group_of(const std::string& addr) const;
  void update_node(const std::string& group);
  Status write_numvfs(const std::string& pf, const std::string& value, const std::string& path);
  Status write_autoprobe(const std::string& pf, const std::string& value, const std::string& path);
  void create_vfs(const std::string& pf, int n);
  void remove_vfs(const std::string& pf);
  Status write_mdev_create(const std::string& type_dir, const std::string& value,
                           const std::string& path);
  Status write_mdev_remove(const std::string& uuid, const std::string& value,
                           const std::string& path);
  void set_available(const std::string& type_dir, int delta);

  TempTree& tree_;
  std::unique_ptr<HostFs> real_;
  std::map<std::string, std::string> native_;
  std::map<std::string, int> busy_;
  std::set<std::string> declines_;
  bool udev_ = true;
  std::map<int, Fault> faults_;
  int crash_after_ = -1;
  int fail_file_ = -1, file_count_ = 0;
  std::map<std::string, int> unlistable_;  // directory -> errno
  std::map<std::string, int> unreadable_;  // file -> errno
  std::vector<std::string> log_;
  std::map<std::string, std::pair<uid_t, gid_t>> chowns_;
  std::map<std::string, Sriov> sriov_;          // by PF address
  std::map<std::string, MdevType> mdev_types_;  // by the type's real directory
  std::map<std::string, std::string> mdevs_;    // UUID -> the type's real directory
  std::map<std::string, int> mdev_groups_;      // UUID -> its IOMMU group, kept for a re-create
};

// Loads a "module" by registering its driver in the double.
class FakeLoader : public ModuleLoader {
 public:
  explicit FakeLoader(FakeKernel& k) : k_(k) {}
  Status load(const std::string& module) override;
  std::vector<std::string> loaded;
  bool fail = false;

 private:
  FakeKernel& k_;
};

}  // namespace pcipass::test

namespace pcipass::test {

// A small host: host bridge 00:00.0; NIC 00:01.0 (e1000e, eth0, default route, group 1); root
// disk 00:02.0 (virtio-pci, vda1 on /, group 2); spare NIC 00:03.0 (e1000e, eth1, group 4); root
// port 00:1c.0 (pcieport) with a GPU 01:00.0 (nouveau) and its audio 01:00.1 (snd_hda_intel), all
// three in group 3. vfio-pci is not loaded. Users root and libvirt-qemu, group kvm.
void sample_host(TempTree& t);
// The drivers drivers_probe picks for sample_host's devices.
void sample_natives(FakeKernel& k);

}  // namespace pcipass::test
