#include "change/change.h"

#include <fmt/format.h>

namespace pcipass::change {

std::string DeviceState::describe() const {
  std::string s = any_driver ? "its host driver" : driver ? *driver : "no driver";
  if (override) s += fmt::format(" (driver_override {})", *override);
  return s;
}

std::string device_dir(const PciAddress& a) {
  return "/sys/bus/pci/devices/" + a.str();
}

std::string mdev_dir(const std::string& uuid) {
  return "/sys/bus/mdev/devices/" + uuid;
}

DeviceState read_device_state(const HostFs& fs, const PciAddress& a) {
  DeviceState s;
  std::string dir = device_dir(a);
  if (fs.type(dir + "/driver", false) == FileType::kLink)
    s.driver = fs.link_basename(dir + "/driver");
  auto o = fs.read_trimmed(dir + "/driver_override");
  if (o && !o->empty() && *o != "(null)") s.override = *o;
  return s;
}

Result<FileState> read_file_state(const HostFs& fs, const std::string& path) {
  FileState s;
  FileType t = fs.type(path, false);
  if (t == FileType::kMissing) return s;
  if (t != FileType::kFile)
    return Error::state(path + " is not a regular file",
                        "pcipass changes only regular files; move it aside first");
  s.absent = false;
  s.bytes = TRY(fs.read(path, 16 << 20));
  auto o = TRY(fs.owner(path));
  s.mode = o.mode & 07777;
  s.uid = o.uid;
  s.gid = o.gid;
  s.xattrs = TRY(fs.xattrs(path));
  return s;
}

Result<std::optional<std::string>> read_link_state(const HostFs& fs, const std::string& path) {
  FileType t = fs.type(path, false);
  if (t == FileType::kMissing) return std::optional<std::string>();
  if (t != FileType::kLink)
    return Error::state(path + " is not a symbolic link",
                        "pcipass makes and removes only links there; move it aside first");
  return std::optional<std::string>(TRY(fs.read_link(path)));
}

bool FileState::matched_by(const FileState& now) const {
  return absent == now.absent && bytes == now.bytes && mode == now.mode && uid == now.uid &&
         gid == now.gid && (!xattrs || xattrs == now.xattrs);
}

Change Change::attribute(std::string path, std::string value) {
  Change c(Kind::kAttribute);
  c.path = std::move(path);
  c.data = std::move(value);
  return c;
}

Change Change::device_move(const PciAddress& a, DeviceState target, Procedure p) {
  Change c(Kind::kDeviceMove);
  c.path = device_dir(a);
  c.address = a;
  c.target = std::move(target);
  c.procedure = p;
  return c;
}

Change Change::file_write(std::string path, std::string bytes, mode_t mode) {
  Change c(Kind::kFileWrite);
  c.path = std::move(path);
  c.data = std::move(bytes);
  c.mode = mode;
  return c;
}

Change Change::file_remove(std::string path) {
  Change c(Kind::kFileRemove);
  c.path = std::move(path);
  return c;
}

Change Change::dir_create(std::string path, mode_t mode) {
  Change c(Kind::kDirCreate);
  c.path = std::move(path);
  c.mode = mode;
  return c;
}

Change Change::dir_remove(std::string path, mode_t mode) {
  Change c(Kind::kDirRemove);
  c.path = std::move(path);
  c.mode = mode;
  return c;
}

Change Change::owner(std::string path, uid_t uid, gid_t gid) {
  Change c(Kind::kOwner);
  c.path = std::move(path);
  c.uid = uid;
  c.gid = gid;
  return c;
}

Change Change::module(std::string name, std::string registers) {
  Change c(Kind::kModuleLoad);
  c.path = std::move(name);
  c.registers = std::move(registers);
  return c;
}

Change Change::program_run(Invocation run, std::optional<Invocation> undo) {
  Change c(Kind::kProgram);
  c.path = run.argv.empty() ? std::string() : run.argv[0];
  c.program = std::move(run);
  c.undo_program = std::move(undo);
  return c;
}

Change Change::wait_for(std::string path, int ms, std::string reason) {
  Change c(Kind::kWaitFor);
  c.path = std::move(path);
  c.wait_ms = ms;
  c.wait_reason = std::move(reason);
  return c;
}

Change Change::check(std::string path, std::string expects,
                     std::function<Status(const HostFs&, CommandRunner*)> verify) {
  Change c(Kind::kVerify);
  c.path = std::move(path);
  c.data = std::move(expects);
  c.verify = std::move(verify);
  return c;
}

Change Change::link(std::string path, std::optional<std::string> target) {
  Change c(Kind::kLink);
  c.path = std::move(path);
  c.remove_link = !target;
  c.data = target.value_or("");
  return c;
}

Change Change::file_guard(std::string path) {
  Change c(Kind::kFileGuard);
  c.path = std::move(path);
  return c;
}

Change Change::mdev_create(std::string type_dir, std::string uuid) {
  Change c(Kind::kMdevCreate);
  c.path = std::move(type_dir);
  c.data = std::move(uuid);
  return c;
}

Change Change::mdev_remove(std::string type_dir, std::string uuid) {
  Change c(Kind::kMdevRemove);
  c.path = std::move(type_dir);
  c.data = std::move(uuid);
  return c;
}

Change Change::vf_link(std::string ifname, int vf, VfSetting s) {
  Change c(Kind::kVfLink);
  c.path = std::move(ifname);
  c.vf = vf;
  c.setting = std::move(s);
  return c;
}

const char* vf_field_name(VfField f) {
  switch (f) {
    case VfField::kMac:
      return "mac";
    case VfField::kVlan:
      return "vlan";
    case VfField::kSpoofchk:
      return "spoofchk";
    case VfField::kTrust:
      return "trust";
  }
  return "?";
}

std::string VfSetting::value() const {
  switch (field) {
    case VfField::kMac:
      return mac;
    case VfField::kVlan:
      return qos ? fmt::format("{} qos {}", vlan, qos) : std::to_string(vlan);
    case VfField::kSpoofchk:
    case VfField::kTrust:
      break;
  }
  return on ? "on" : "off";
}

bool Change::recorded() const {
  switch (kind) {
    case Kind::kAttribute:
    case Kind::kDeviceMove:
    case Kind::kFileWrite:
    case Kind::kFileRemove:
    case Kind::kDirCreate:
    case Kind::kDirRemove:
    case Kind::kProgram:
    case Kind::kLink:
    case Kind::kFileGuard:
    case Kind::kMdevCreate:
    case Kind::kMdevRemove:
    case Kind::kVfLink:
      return true;
    case Kind::kOwner:  // the nodes it changes are the kernel's and vanish with the binding
    case Kind::kModuleLoad:
    case Kind::kWaitFor:
    case Kind::kVerify:
      return false;
  }
  return true;
}

const char* step_kind_id(StepKind k) {
  switch (k) {
    case StepKind::kModule:
      return "module";
    case StepKind::kWrite:
      return "write";
    case StepKind::kJournal:
      return "journal";
    case StepKind::kChown:
      return "chown";
    case StepKind::kState:
      return "state";
    case StepKind::kFile:
      return "file";
    case StepKind::kRemove:
      return "remove";
    case StepKind::kMkdir:
      return "mkdir";
    case StepKind::kRmdir:
      return "rmdir";
    case StepKind::kRun:
      return "run";
    case StepKind::kChangeSet:
      return "change-set";
    case StepKind::kVerify:
      return "verify";
    case StepKind::kLink:
      return "link";
    case StepKind::kGuard:
      return "guard";
    case StepKind::kVf:
      return "vf";
  }
  return "?";
}

std::string Step::text() const {
  switch (kind) {
    case StepKind::kModule:
      return "load module " + path;
    case StepKind::kChown:
      return fmt::format("chown {} {}", data, path);
    case StepKind::kJournal:
      return fmt::format("journal {} ({})", path, data);
    case StepKind::kState:
      return "state " + path;
    case StepKind::kChangeSet:
      return fmt::format("change set {} ({})", path, data);
    case StepKind::kFile:
      return fmt::format("{} {}", data, path);
    case StepKind::kRemove:
      return "remove " + path;
    case StepKind::kMkdir:
      return "mkdir " + path;
    case StepKind::kRmdir:
      return "rmdir " + path;
    case StepKind::kRun:
      return "run " + data;
    case StepKind::kVerify:
      return fmt::format("verify {}: {}", path, data);
    case StepKind::kGuard:
      return data == "absent"
                 ? fmt::format("guard {} (absent now: undo removes it if created)", path)
                 : fmt::format("guard {} (undo puts its bytes back)", path);
    case StepKind::kVf:
      return fmt::format("set {} {}", path, data);
    case StepKind::kLink:
      return data.empty() ? "remove link " + path : fmt::format("link {} -> {}", path, data);
    case StepKind::kWrite:
      break;
  }
  std::string shown = data == "\n" ? std::string("\\n") : data;
  return fmt::format("write {}: {}", path, shown);
}

}  // namespace pcipass::change
