// The changes pcipass makes to a host, as data: a plan is an ordered list of them, and each one
// carries, once captured, the before-state it needs to undo itself. One executor (executor.h)
// runs a plan for real or as a dry run; bind, release, setup and undo are plans.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "host/runner.h"
#include "pci/address.h"

namespace pcipass::change {

enum class Kind {
  kAttribute,   // one write to a sysfs attribute
  kDeviceMove,  // a PCI device to another driver: override, unbind, drivers_probe, verify
  kFileWrite,   // create or replace a file (atomic, metadata kept)
  kFileRemove,
  kDirCreate,   // with any missing parents; undone by removing the ones it made, once empty
  kDirRemove,   // rmdir of an empty directory (undo's counterpart of kDirCreate)
  kOwner,       // chown of a path (a /dev/vfio node)
  kModuleLoad,  // through ModuleLoader; never undone (other users may need it)
  kProgram,     // through CommandRunner; undone only by an explicit undo program
  kWaitFor,     // until a path appears (udev creating a node); nothing to undo
  kVerify,      // reads what an earlier change produced (a generated grub.cfg, an initramfs's
                // module list) and fails the plan, so it rolls back, when it is not there
  kLink,        // a symbolic link made (to `data`) or, with `remove_link`, removed
  kFileGuard,   // a file a later program of the plan rewrites (grubby, kernelstub): nothing is
                // written; its before-state is kept as kFileWrite's is, and what the program
                // left is recorded once the plan ran, so rollback and undo put the bytes back
  kMdevCreate,  // a UUID written to a mediated device type's `create`; undone through the new
                // device's `remove`
  kMdevRemove,  // 1 written to a mediated device's `remove`; undone by creating it again with
                // the same UUID and type
  kVfLink,      // one setting of an SR-IOV VF that its PF's network driver keeps (netlink, through
                // Ports::vf_links); undone by setting the value read before
};

// The settings of a NIC's VF that `vf set` changes, one change each (a fault at the second
// restores the first).
enum class VfField { kMac, kVlan, kSpoofchk, kTrust };
const char* vf_field_name(VfField f);  // "mac", "vlan", "spoofchk", "trust"

struct VfSetting {
  VfField field = VfField::kMac;
  std::string mac;        // kMac: "52:54:00:12:34:56"
  int vlan = 0, qos = 0;  // kVlan: 0 is none
  bool on = false;        // kSpoofchk, kTrust
  bool operator==(const VfSetting&) const = default;
  std::string value() const;  // "52:54:00:12:34:56", "100", "100 qos 3", "on"
};

// How kVfLink reaches a PF's driver: netlink on a live host (src/sriov/netlink.h), a double in
// tests. `ifname` is the PF's network interface, `vf` the VF's index.
class VfLinkPort {
 public:
  virtual ~VfLinkPort() = default;
  virtual Result<VfSetting> get(const std::string& ifname, int vf, VfField field) const = 0;
  virtual Status set(const std::string& ifname, int vf, const VfSetting& s) = 0;
};

// The two things binding changes on a device.
struct DeviceState {
  std::optional<std::string> driver;    // nullopt: no driver
  std::optional<std::string> override;  // nullopt: "(null)", none set
  // Only in targets: accept whatever driver the kernel probes (release of a device pcipass
  // did not bind, whose original driver is unknown).
  bool any_driver = false;
  bool operator==(const DeviceState&) const = default;
  std::string describe() const;  // "e1000e", "no driver", "vfio-pci (driver_override vfio-pci)"
};

std::string device_dir(const PciAddress& a);    // /sys/bus/pci/devices/ADDR
std::string mdev_dir(const std::string& uuid);  // /sys/bus/mdev/devices/UUID
DeviceState read_device_state(const HostFs& fs, const PciAddress& a);

// A file as it was: absent, or its bytes and metadata.
struct FileState {
  bool absent = true;
  std::string bytes;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  // Extended attributes (user.*, security.selinux, ACLs); nullopt: not known (a change set
  // written before pcipass recorded them), so a restore keeps the ones the file has.
  std::optional<Xattrs> xattrs;
  bool operator==(const FileState&) const = default;
  // `now` is as this state says (the xattrs only when they are known).
  bool matched_by(const FileState& now) const;
};
Result<FileState> read_file_state(const HostFs& fs, const std::string& path);
// A symbolic link's target as stored; nullopt when nothing is there. Anything but a link is an
// error: pcipass replaces and removes only links where it makes links.
Result<std::optional<std::string>> read_link_state(const HostFs& fs, const std::string& path);

// How a device move gets there: bind's procedure (drivers_probe, must land on the target) or
// restore's (only what differs; falls back to the driver's bind file).
enum class Procedure { kBind, kRestore };

struct Change {
  explicit Change(Kind k) : kind(k) {}
  Kind kind;
  std::string path;  // attribute, file, directory, node; the module's name for kModuleLoad;
                     // the mdev type's directory for kMdevCreate and kMdevRemove
  std::string data;  // attribute value, file bytes; the mdev's UUID
  mode_t mode = 0644;
  std::optional<uid_t> uid;  // kOwner; kFileWrite: forced owner (undo puts it back)
  std::optional<gid_t> gid;
  bool force_mode = false;       // kFileWrite: set `mode` even on an existing file
  std::optional<Xattrs> xattrs;  // kFileWrite: exactly these (undo); nullopt: the file's own
  PciAddress address;            // kDeviceMove
  DeviceState target;            // kDeviceMove
  Procedure procedure = Procedure::kBind;
  Invocation program;  // kProgram
  std::optional<Invocation> undo_program;
  int wait_ms = 0;          // kWaitFor
  std::string wait_reason;  // kWaitFor: appended to the timeout message
  std::string registers;    // kModuleLoad: the directory loading must create
  // kVerify: the check itself; `path` names what it reads, `data` says what it expects. It is
  // run with the plan's HostFs and command runner (null in a dry run, where it is not run).
  std::function<Status(const HostFs&, CommandRunner*)> verify;
  bool remove_link = false;  // kLink: remove the link instead of making it
  int vf = 0;                // kVfLink: the VF's index; `path` is the PF's interface
  VfSetting setting;         // kVfLink: what is set

  // Captured before the plan's first write.
  struct Before {
    bool captured = false;
    FileState file;                        // kFileWrite, kFileRemove, kFileGuard, kOwner
    std::optional<std::string> attribute;  // kAttribute: trimmed old value
    DeviceState device;                    // kDeviceMove
    bool existed = false;                  // kDirCreate, kDirRemove, kOwner, kMdev*: the mdev
    std::vector<std::string> created;      // kDirCreate: the missing ones, outermost first
    std::optional<std::string> link;       // kLink: the target it had; nullopt: no entry
    std::optional<VfSetting> setting;      // kVfLink: as the driver reported it
  } before;
  bool applied = false;
  // kProgram, once run: how it ended and when (a change set's manifest records it).
  struct Ran {
    int exit_status = 0;
    int signal = 0;
    bool timed_out = false;
    int64_t time = 0;
  };
  std::optional<Ran> ran;

  static Change attribute(std::string path, std::string value);
  static Change device_move(const PciAddress& a, DeviceState target, Procedure p);
  static Change file_write(std::string path, std::string bytes, mode_t mode = 0644);
  static Change file_remove(std::string path);
  static Change dir_create(std::string path, mode_t mode = 0755);
  static Change dir_remove(std::string path, mode_t mode);  // `mode`: for putting it back
  static Change owner(std::string path, uid_t uid, gid_t gid);
  static Change module(std::string name, std::string registers = {});
  static Change program_run(Invocation run, std::optional<Invocation> undo = std::nullopt);
  static Change wait_for(std::string path, int ms, std::string reason);
  static Change check(std::string path, std::string expects,
                      std::function<Status(const HostFs&, CommandRunner*)> verify);
  // `path` made a symbolic link to `target` (nullopt: the link at `path` removed). Only links
  // are replaced or removed: anything else at `path` stops the plan at capture.
  static Change link(std::string path, std::optional<std::string> target);
  // `path` (a file, or nothing yet) kept as it is now, for a program of the plan that rewrites
  // it: the program's own undo is then these bytes, not an inverse command.
  static Change file_guard(std::string path);
  // A mediated device of the type at `type_dir` (/sys/class/mdev_bus/PARENT/
  // mdev_supported_types/TYPE) made or removed, by its UUID.
  static Change mdev_create(std::string type_dir, std::string uuid);
  static Change mdev_remove(std::string type_dir, std::string uuid);
  // One setting of VF `vf` of the PF whose interface is `ifname`.
  static Change vf_link(std::string ifname, int vf, VfSetting s);

  // Whether undoing it needs a record (journal or change set) before it is applied.
  bool recorded() const;
};

// What a step does. The ids (step_kind_id) are --json's `steps[].kind`: stable, new kinds add ids.
enum class StepKind {
  kModule,     // a kernel module loaded (path: its name)
  kWrite,      // a sysfs attribute written
  kJournal,    // the runtime journal written, committed or removed
  kChown,      // an owner changed (data: uid:gid)
  kState,      // the bindings state file written
  kFile,       // a durable file created or replaced (data: which; diff)
  kRemove,     // a file removed
  kMkdir,      // a directory made (data: its mode)
  kRmdir,      // a directory removed
  kRun,        // a program run (path: argv[0]; data: the command)
  kChangeSet,  // a change set's manifest written (path: its id; data: its state)
  kVerify,     // a check that what the next boot uses has the parameters
  kLink,       // a symlink made or removed (data: its target, "" when removed)
  kGuard,      // a file a program may change, kept to put back (data: present/absent)
  kVf,         // one setting of an SR-IOV VF, by netlink
};
const char* step_kind_id(StepKind k);

// One write pcipass makes (or, with --dry-run, would make), in order; what --json calls steps.
struct Step {
  StepKind kind;
  std::string path;  // the file written; the module name for "module"; argv[0] for "run"
  std::string data;  // what is written ("\n" clears driver_override); "uid:gid" for chown; a
                     // link's target ("" when it is removed); "present" or "absent" for guard
  std::string diff;  // files: the unified diff of the change
  std::string text() const;  // "write /sys/bus/pci/devices/0000:01:00.0/driver_override: vfio-pci"
};

}  // namespace pcipass::change
