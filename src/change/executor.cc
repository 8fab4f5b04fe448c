#include "change/executor.h"

#include <fmt/format.h>
#include <time.h>

#include <map>

#include "pci/groups.h"
#include "util/diff.h"

namespace pcipass::change {

namespace {

constexpr const char* kDriversProbe = "/sys/bus/pci/drivers_probe";

void default_sleep(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (::nanosleep(&ts, &ts) != 0) {
  }
}

ReplaceOptions options(mode_t mode, bool force_mode, std::optional<uid_t> uid,
                       std::optional<gid_t> gid, std::optional<Xattrs> xattrs = std::nullopt) {
  ReplaceOptions o;
  o.mode = mode;
  o.force_mode = force_mode;
  o.uid = uid;
  o.gid = gid;
  o.xattrs = std::move(xattrs);
  return o;
}

// The directories make_dirs(path) would create, outermost first.
std::vector<std::string> missing_dirs(const HostFs& fs, const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  for (const auto& part : path_components(path)) {
    cur += "/" + part;
    if (!out.empty() || !fs.is_dir(cur)) out.push_back(cur);
  }
  return out;
}

Error no_vf_links(const Change& c) {
  return Error::state(
      fmt::format("no way to reach {}'s driver here to set its VF {}", c.path, c.vf),
      "run pcipass on the host itself (not on a --root tree)");
}

std::string octal(mode_t m) {
  return fmt::format("{:04o}", m & 07777);
}

}  // namespace

// An attribute's value before the plan writes it: nullopt when there is none (no such file: the
// write will say so). Any other read error stops the plan before its first write, because the
// old value could not be put back on rollback or undo.
Result<std::optional<std::string>> Executor::attribute_before(const std::string& path) const {
  auto r = fs_.read_value(path);
  if (r) return r;
  Error e = r.error();
  e.message = fmt::format("cannot read {} before changing it: {}", path, r.error().describe());
  e.fix =
      "pcipass changes only what it can put back: run it as root; if it is, the device may "
      "have stopped answering (see `dmesg`)";
  return e;
}

Status Executor::capture(std::vector<Change>& plan) const {
  // An attribute the plan writes twice (sriov_numvfs: 0, then the new count) is, before the
  // second write, what the first wrote: undoing it must go there, not to the value on disk now
  // (the kernel refuses one non-zero VF count over another).
  std::map<std::string, std::string> written;
  std::map<PciAddress, DeviceState> moved;
  for (auto& c : plan) {
    auto& b = c.before;
    switch (c.kind) {
      case Kind::kAttribute:
        if (auto w = written.find(c.path); w != written.end())
          b.attribute = w->second;
        else
          b.attribute = TRY(attribute_before(c.path));
        written[c.path] = c.data;
        break;
      case Kind::kDeviceMove:
        // Likewise a device the plan already moved (a VF moved off before its PF's VFs are
        // remade): undoing the later move goes back to where the earlier one left it.
        if (auto m = moved.find(c.address); m != moved.end()) {
          b.device = m->second;
        } else {
          // An override that cannot be read would be recorded as none and never put back.
          TRY(attribute_before(device_dir(c.address) + "/driver_override"));
          b.device = read_device_state(fs_, c.address);
        }
        moved[c.address] = c.target;
        break;
      case Kind::kFileWrite:
      case Kind::kFileRemove:
      case Kind::kFileGuard:
        b.file = TRY(read_file_state(fs_, c.path));
        break;
      case Kind::kDirCreate:
        b.existed = fs_.is_dir(c.path);
        b.created = missing_dirs(fs_, c.path);
        break;
      case Kind::kDirRemove:
        b.existed = fs_.is_dir(c.path);
        break;
      case Kind::kOwner:
        // A node the plan itself makes the kernel create has no before: it goes with the plan.
        if (auto o = fs_.owner(c.path); o.ok()) {
          b.existed = true;
          b.file.uid = o->uid, b.file.gid = o->gid;
        }
        break;
      case Kind::kLink:
        b.link = TRY(read_link_state(fs_, c.path));
        break;
      case Kind::kMdevCreate:
      case Kind::kMdevRemove:
        b.existed = fs_.exists(mdev_dir(c.data));
        break;
      case Kind::kVfLink:
        // Read even in a dry run: a setting the driver does not report could not be undone.
        if (!ports_.vf_links) return no_vf_links(c);
        b.setting = TRY(ports_.vf_links->get(c.path, c.vf, c.setting.field));
        break;
      case Kind::kModuleLoad:
      case Kind::kProgram:
      case Kind::kWaitFor:
      case Kind::kVerify:
        break;
    }
    b.captured = true;
  }
  return {};
}

Status Executor::run(std::vector<Change>& plan, Record* record) {
  for (auto& c : plan) {
    if (!c.before.captured) {
      Error e;
      e.message = "a change was run without its before-state (capture() first)";
      return e;
    }
    if (record && !began_ && c.recorded()) {
      TRY(record->begin(steps, dry_));
      began_ = true;
    }
    c.applied = true;  // a failing change may have acted in part: undo looks at it too
    Status st = apply(c);
    if (c.ran && began_ && !dry_) {
      Status kept = record->ran(c);
      if (st && !kept) st = std::move(kept);
    }
    if (!st) {
      if (!began_ || dry_) return st;
      return fail(plan, *record, std::move(st).error());
    }
  }
  return {};
}

Error Executor::fail(std::vector<Change>& plan, Record& record, Error e) {
  Record::Texts t = record.texts();
  Status rb = roll_back(plan);
  if (!rb) {
    e.message = fmt::format("{}; rolling back failed too: {}", e.message, rb.error().message);
    e.fix = t.kept;
    return e;
  }
  if (!record.discard()) {
    e.fix = t.discard_failed;
    return e;
  }
  e.fix = e.fix.empty() ? t.restored : fmt::format("{} ({})", e.fix, t.restored);
  return e;
}

// Programs last: they regenerate from files (update-grub from /etc/default/grub, dracut from
// its conf.d), so their undo programs must see the files as they were. Durable undo
// (store.cc's undo_plan) keeps the same order.
Status Executor::roll_back(std::vector<Change>& plan) {
  std::optional<Error> first;
  for (bool programs : {false, true})
    for (auto it = plan.rbegin(); it != plan.rend(); ++it) {
      if (!it->applied || (it->kind == Kind::kProgram) != programs) continue;
      Status s = undo(*it);
      if (!s && !first) first = s.error();
      if (s) it->applied = false;
    }
  if (first) return *first;
  return {};
}

Status Executor::write(const std::string& path, const std::string& data) {
  steps.push_back({StepKind::kWrite, path, data, {}});
  if (dry_) return {};
  return fs_.write(path, data);
}

Status Executor::apply(Change& c) {
  switch (c.kind) {
    case Kind::kAttribute:
      return write(c.path, c.data);
    case Kind::kDeviceMove:
      return move(c);
    case Kind::kFileWrite:
      return replace_file(c);
    case Kind::kFileRemove: {
      const FileState& b = c.before.file;
      steps.push_back(
          {StepKind::kRemove, c.path, {}, unified_diff(b.bytes, "", c.path, b.absent, true)});
      if (dry_ || b.absent) return {};
      return fs_.remove(c.path);
    }
    case Kind::kDirCreate:
      if (c.before.existed) return {};
      steps.push_back({StepKind::kMkdir, c.path, octal(c.mode), {}});
      if (dry_) return {};
      return fs_.make_dirs(c.path, c.mode);
    case Kind::kDirRemove:
      if (!c.before.existed) return {};
      steps.push_back({StepKind::kRmdir, c.path, {}, {}});
      if (dry_) return {};
      return fs_.remove_dir(c.path);
    case Kind::kOwner:
      steps.push_back({StepKind::kChown, c.path, fmt::format("{}:{}", *c.uid, *c.gid), {}});
      if (dry_) return {};
      return fs_.change_owner(c.path, *c.uid, *c.gid);
    case Kind::kModuleLoad:
      return load_module(c);
    case Kind::kProgram:
      steps.push_back({StepKind::kRun, c.path, c.program.text(), {}});
      if (dry_) return {};
      return run_program(c);
    case Kind::kWaitFor:
      if (dry_) return {};
      return wait_for(c);
    case Kind::kVerify:
      steps.push_back({StepKind::kVerify, c.path, c.data, {}});
      if (dry_ || !c.verify) return {};
      return c.verify(fs_, ports_.runner);
    case Kind::kFileGuard:
      steps.push_back({StepKind::kGuard, c.path, c.before.file.absent ? "absent" : "present", {}});
      return {};
    case Kind::kLink: {
      std::optional<std::string> want;
      if (!c.remove_link) want = c.data;
      return put_link(c.path, c.before.link, want);
    }
    case Kind::kMdevCreate:
      return create_mdev(c);
    case Kind::kMdevRemove:
      if (!c.before.existed) return {};
      return write(mdev_dir(c.data) + "/remove", "1");
    case Kind::kVfLink:
      return set_vf(c, c.setting);
  }
  return {};
}

// A file's new contents (and mode, owner, xattrs), shown as a diff; none when it is so already.
Status Executor::replace_file(const Change& c) {
  const FileState& b = c.before.file;
  if (!b.absent && b.bytes == c.data && (!c.force_mode || b.mode == (c.mode & 07777)) &&
      (!c.uid || *c.uid == b.uid) && (!c.gid || *c.gid == b.gid) &&
      (!c.xattrs || c.xattrs == b.xattrs))
    return {};  // already so: rewriting would only touch it
  std::string diff = unified_diff(b.bytes, c.data, c.path, b.absent, false);
  steps.push_back({StepKind::kFile, c.path, b.absent ? "create" : "replace", diff});
  if (dry_) return {};
  return write_file(c.path, c.data, options(c.mode, c.force_mode, c.uid, c.gid, c.xattrs));
}

// A module loaded through the port; when the change names the driver directory it registers,
// that directory must be there afterwards (a module can load and register nothing).
Status Executor::load_module(const Change& c) {
  steps.push_back({StepKind::kModule, c.path, {}, {}});
  if (dry_) return {};
  if (!ports_.loader)
    return Error::state("no way to load module " + c.path + " here",
                        "load it by hand (modprobe " + c.path + ")");
  TRY(ports_.loader->load(c.path));
  if (!c.registers.empty() && !fs_.is_dir(c.registers))
    return Error::state(fmt::format("driver {} is not registered after loading module {}",
                                    base_name(c.registers), c.path),
                        "the kernel log (`dmesg`) has the reason");
  return {};
}

// The type's `create` is one file for all its instances: the error names which one.
Status Executor::create_mdev(const Change& c) {
  Status made = write(c.path + "/create", c.data);
  if (made) return made;
  Error e = std::move(made).error();
  e.message =
      fmt::format("cannot create mdev {} of type {}: {}", c.data, base_name(c.path), e.message);
  if (e.fix.empty())
    e.fix = "see `pcipass mdev types` (available_instances) and the kernel log (dmesg)";
  return e;
}

// One VF setting through the port, as a step first (so a dry run shows it).
Status Executor::set_vf(const Change& c, const VfSetting& s) {
  steps.push_back({StepKind::kVf,
                   c.path,
                   fmt::format("vf {} {} {}", c.vf, vf_field_name(s.field), s.value()),
                   {}});
  if (dry_) return {};
  if (!ports_.vf_links) return no_vf_links(c);
  return ports_.vf_links->set(c.path, c.vf, s);
}

Status Executor::undo(const Change& c) {
  switch (c.kind) {
    case Kind::kAttribute: {
      if (!c.before.attribute || fs_.read_trimmed(c.path) == c.before.attribute) return {};
      // driver_override reads "(null)" when unset, and is cleared by writing a newline.
      bool unset = base_name(c.path) == "driver_override" && *c.before.attribute == "(null)";
      return write(c.path, unset ? std::string("\n") : *c.before.attribute);
    }
    case Kind::kDeviceMove:
      return restore(c.address, c.before.device);
    case Kind::kFileWrite:
    case Kind::kFileRemove:
    case Kind::kFileGuard:
      return put_back_file(c.path, c.before.file);
    case Kind::kDirCreate:
      // Innermost first; one that is not empty any more is refused by remove_dir.
      for (auto it = c.before.created.rbegin(); it != c.before.created.rend(); ++it) {
        if (!fs_.is_dir(*it)) continue;
        steps.push_back({StepKind::kRmdir, *it, {}, {}});
        TRY(fs_.remove_dir(*it));
      }
      return {};
    case Kind::kDirRemove:
      if (!c.before.existed || fs_.is_dir(c.path)) return {};
      steps.push_back({StepKind::kMkdir, c.path, octal(c.mode), {}});
      return fs_.make_dirs(c.path, c.mode);
    case Kind::kOwner: {
      if (!c.before.existed || !fs_.exists(c.path)) return {};
      auto now = TRY(fs_.owner(c.path));
      if (now.uid == c.before.file.uid && now.gid == c.before.file.gid) return {};
      steps.push_back({StepKind::kChown,
                       c.path,
                       fmt::format("{}:{}", c.before.file.uid, c.before.file.gid),
                       {}});
      return fs_.change_owner(c.path, c.before.file.uid, c.before.file.gid);
    }
    case Kind::kProgram:
      if (!c.undo_program) return {};
      steps.push_back({StepKind::kRun, c.undo_program->argv.at(0), c.undo_program->text(), {}});
      if (!ports_.runner) return Error::state("no command runner to run " + c.program.text());
      TRY(ports_.runner->checked(*c.undo_program));
      return {};
    case Kind::kLink: {
      auto now = TRY(read_link_state(fs_, c.path));
      return put_link(c.path, now, c.before.link);
    }
    // Each only when the mdev is not already as it was (undo may run twice).
    case Kind::kMdevCreate:
      if (c.before.existed || !fs_.exists(mdev_dir(c.data))) return {};
      return write(mdev_dir(c.data) + "/remove", "1");
    case Kind::kMdevRemove:
      if (!c.before.existed || fs_.exists(mdev_dir(c.data))) return {};
      return write(c.path + "/create", c.data);
    case Kind::kVfLink: {
      // Only when it is not already back (undo may run twice; the driver may have refused).
      if (!c.before.setting) return {};
      if (ports_.vf_links) {
        auto now = ports_.vf_links->get(c.path, c.vf, c.setting.field);
        if (now && *now == *c.before.setting) return {};
      }
      return set_vf(c, *c.before.setting);
    }
    case Kind::kModuleLoad:
    case Kind::kWaitFor:
    case Kind::kVerify:
      return {};
  }
  return {};
}

// The link at `path` from `now` to `want` (nullopt: no entry), writing only when they differ.
Status Executor::put_link(const std::string& path, const std::optional<std::string>& now,
                          const std::optional<std::string>& want) {
  if (now == want) return {};
  steps.push_back({StepKind::kLink, path, want.value_or(""), {}});
  if (dry_) return {};
  if (!want) return fs_.remove(path);
  return fs_.make_link(path, *want);
}

Status Executor::write_file(const std::string& path, const std::string& bytes,
                            const ReplaceOptions& o) {
  return fs_.replace(path, bytes, o);
}

// A file back to `s`, writing only when it differs (so undo can run twice).
Status Executor::put_back_file(const std::string& path, const FileState& s) {
  FileState now = TRY(read_file_state(fs_, path));
  if (s.matched_by(now)) return {};
  if (s.absent) {
    steps.push_back({StepKind::kRemove, path, {}, {}});
    return fs_.remove(path);
  }
  steps.push_back({StepKind::kFile, path, "restore", {}});
  return write_file(path, s.bytes, options(s.mode, true, s.uid, s.gid, s.xattrs));
}

// Runs a program and keeps how it ended and when, failed or not, for the change set's record.
Status Executor::run_program(Change& c) {
  if (!ports_.runner) return Error::state("no command runner to run " + c.program.text());
  auto started = ports_.runner->run(c.program);
  if (!started) {
    c.applied = false;  // it never ran (not installed, refused): nothing to undo by running again
    return started.error();
  }
  CommandResult r = *started;
  c.ran = Change::Ran{r.exit_status, r.signal, r.timed_out, ports_.now ? ports_.now() : 0};
  if (!r.ok()) return CommandRunner::failure(c.program, r);
  return {};
}

Status Executor::wait_for(const Change& c) {
  auto sleep = ports_.sleep_ms ? ports_.sleep_ms : default_sleep;
  int waited = 0;
  while (!fs_.exists(c.path) && waited < c.wait_ms) {
    sleep(20);
    waited += 20;
  }
  if (fs_.exists(c.path)) return {};
  return Error::state(fmt::format("{} did not appear within {} ms{}", c.path, c.wait_ms,
                                  c.wait_reason.empty() ? "" : " " + c.wait_reason),
                      "is udev running? The kernel log (`dmesg`) may say more");
}

// Bind's procedure: driver_override, unbind, drivers_probe, verify.
Status Executor::move(const Change& c) {
  if (c.procedure == Procedure::kRestore) return restore(c.address, c.target);
  const PciAddress& a = c.address;
  const std::string& driver = *c.target.driver;
  std::string dir = device_dir(a);
  DeviceState cur = read_device_state(fs_, a);
  if (cur.override != driver) TRY(write(dir + "/driver_override", driver));
  if (cur.driver) TRY(write(dir + "/driver/unbind", a.str()));
  TRY(write(kDriversProbe, a.str()));
  if (dry_) return {};
  DeviceState now = read_device_state(fs_, a);
  if (now.driver != driver)
    return Error::state(fmt::format("{} did not bind to {} after drivers_probe: it is on {}",
                                    a.str(), driver, now.driver.value_or("no driver")),
                        "the kernel log (`dmesg`) has the driver's reason");
  return {};
}

// Bring a device to `target`, writing only what differs from its current state.
Status Executor::restore(const PciAddress& a, const DeviceState& target) {
  std::string dir = device_dir(a);
  DeviceState cur = read_device_state(fs_, a);
  if (cur.override != target.override)
    TRY(write(dir + "/driver_override", target.override ? *target.override : std::string("\n")));
  if (target.any_driver) {
    if (!cur.driver || driver_keeps_group_viable(cur.driver)) {
      if (cur.driver) TRY(write(dir + "/driver/unbind", a.str()));
      TRY(write(kDriversProbe, a.str()));
    }
  } else if (cur.driver != target.driver) {
    if (cur.driver) TRY(write(dir + "/driver/unbind", a.str()));
    if (target.driver) {
      TRY(write(kDriversProbe, a.str()));
      if (!dry_) {
        DeviceState now = read_device_state(fs_, a);
        if (now.driver != target.driver) {
          if (now.driver) TRY(write(dir + "/driver/unbind", a.str()));
          TRY(write("/sys/bus/pci/drivers/" + *target.driver + "/bind", a.str()));
        }
      }
    }
  }
  if (dry_) return {};
  DeviceState now = read_device_state(fs_, a);
  if (now.override != target.override || (!target.any_driver && now.driver != target.driver))
    return Error::state(fmt::format("{} could not be put back on {}: it is on {}", a.str(),
                                    target.describe(), now.describe()),
                        "the kernel log (`dmesg`) has the driver's reason");
  return {};
}

}  // namespace pcipass::change
