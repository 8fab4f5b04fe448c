#include "mdev/mdev.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>
#include <tuple>

#include "change/change.h"
#include "change/validate.h"
#include "pci/address.h"

namespace pcipass::mdev {

namespace {

using change::Change;

constexpr const char* kTypesFix = "see `pcipass mdev types` for the parents and their types";

std::string type_dir(const std::string& parent, const std::string& type) {
  return fmt::format("{}/{}/mdev_supported_types/{}", kParentsDir, parent, type);
}

// A parent's or type's name as sysfs shows it: it becomes part of a path.
bool plain_name(std::string s) {
  std::replace(s.begin(), s.end(), ':', '_');
  return change::plain_driver_name(s);
}

std::string text_attr(const HostFs& fs, const std::string& path) {
  auto v = fs.read(path, 4096);
  if (!v) return {};
  std::string s = *v;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// available_instances: 0..2^31-1; unreadable or out of range is a problem naming the file.
std::optional<int> count_attr(const HostFs& fs, const std::string& path,
                              std::vector<std::string>& problems) {
  auto r = fs.read_trimmed(path);
  if (!r) {
    problems.push_back(fmt::format("{}: cannot be read", path));
    return std::nullopt;
  }
  int n = 0;
  auto [end, ec] = std::from_chars(r->data(), r->data() + r->size(), n, 10);
  if (r->empty() || ec != std::errc() || end != r->data() + r->size() || n < 0) {
    problems.push_back(fmt::format("{}: '{}' is not a count", path, r->substr(0, 32)));
    return std::nullopt;
  }
  return n;
}

std::optional<int> group_number(const HostFs& fs, const std::string& dir) {
  auto name = fs.link_basename(dir + "/iommu_group");
  int g = 0;
  if (!name) return std::nullopt;
  auto [end, ec] = std::from_chars(name->data(), name->data() + name->size(), g, 10);
  if (name->empty() || ec != std::errc() || end != name->data() + name->size() || g < 0)
    return std::nullopt;
  return g;
}

Type read_type(const HostFs& fs, const std::string& dir, const std::string& id,
               std::vector<std::string>& problems) {
  Type t;
  t.id = id;
  t.name = text_attr(fs, dir + "/name");
  t.description = text_attr(fs, dir + "/description");
  t.device_api = text_attr(fs, dir + "/device_api");
  t.available = count_attr(fs, dir + "/available_instances", problems);
  for (const auto& d : list_or_problem(fs, dir + "/devices", problems))
    if (change::canonical_uuid(d)) t.devices.push_back(d);
  std::sort(t.devices.begin(), t.devices.end());
  return t;
}

// An active mdev as sysfs shows it: its type from the mdev_type link, its parent from the
// device directory it lives in (/sys/devices/.../PARENT/UUID).
std::optional<Mdev> read_active(const HostFs& fs, const std::string& uuid) {
  std::string dir = change::mdev_dir(uuid);
  auto real = fs.resolve(dir);
  auto type = fs.link_basename(dir + "/mdev_type");
  if (!real || !type) return std::nullopt;
  std::string parent_dir = real->substr(0, real->rfind('/'));
  Mdev m;
  m.uuid = uuid;
  m.parent = base_name(parent_dir);
  m.type = *type;
  m.active = true;
  if (fs.type(dir + "/driver", false) == FileType::kLink)
    m.driver = fs.link_basename(dir + "/driver");
  m.iommu_group = group_number(fs, dir);
  return m;
}

// The definition of `uuid` under `parent`, if there is one; a damaged one is a problem.
std::optional<Definition> read_definition(const HostFs& fs, const std::string& parent,
                                          const std::string& uuid,
                                          std::vector<std::string>& problems) {
  std::string path = config_path(parent, uuid);
  if (fs.type(path, false) != FileType::kFile) return std::nullopt;
  auto text = fs.read(path, 1 << 20);
  if (!text) {
    problems.push_back(text.error().message);
    return std::nullopt;
  }
  auto d = parse_config(*text, parent, uuid);
  if (!d) {
    problems.push_back(d.error().message);
    return std::nullopt;
  }
  return *d;
}

void take_definition(Mdev& m, const Definition& d) {
  m.defined = true;
  m.start = d.start;
  m.attrs = d.attrs;
}

// The definitions of one parent, by UUID: /etc/mdevctl.d/PARENT/UUID. A directory that cannot
// be read is a problem, never "no definitions" (remove --persist would leave the definition and
// say none was).
std::vector<Definition> parent_definitions(const HostFs& fs, const std::string& parent,
                                           std::vector<std::string>& problems) {
  std::vector<Definition> out;
  std::string dir = std::string(kConfigDir) + "/" + parent;
  auto files = list_or_problem(fs, dir, problems);
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    if (fs.type(dir + "/" + file, false) != FileType::kFile) continue;
    auto uuid = parse_uuid(file, "file name");
    if (!uuid) {
      problems.push_back(fmt::format("{}/{}: the name is not a UUID, skipped", dir, file));
      continue;
    }
    if (auto d = read_definition(fs, parent, file, problems)) {
      d->uuid = *uuid;
      out.push_back(std::move(*d));
    }
  }
  return out;
}

// Every definition: /etc/mdevctl.d/PARENT/UUID (scripts.d is mdevctl's, not a parent).
std::vector<Definition> definitions(const HostFs& fs, std::vector<std::string>& problems) {
  std::vector<Definition> out;
  for (const auto& parent : list_or_problem(fs, kConfigDir, problems)) {
    std::string dir = std::string(kConfigDir) + "/" + parent;
    if (parent == "scripts.d" || !fs.is_dir(dir)) continue;
    if (!plain_name(parent)) {
      problems.push_back(fmt::format("{}: not a parent's name, skipped", dir));
      continue;
    }
    for (auto& d : parent_definitions(fs, parent, problems)) out.push_back(std::move(d));
  }
  return out;
}

void sort(std::vector<Mdev>& v) {
  std::sort(v.begin(), v.end(), [](const Mdev& a, const Mdev& b) {
    return std::tie(a.parent, a.uuid) < std::tie(b.parent, b.uuid);
  });
}

// The mdev's group held open by a process (a VM): removing it would pull it from under the VM.
Status check_unused(const HostFs& fs, const Mdev& m) {
  if (!m.iommu_group) return {};
  auto users = TRY(assign::group_users(fs, *m.iommu_group));
  if (users.empty()) return {};
  std::vector<std::string> held;
  for (const auto& u : users) held.push_back(fmt::format("{}, pid {}", u.comm, u.pid));
  return Error::refused(fmt::format("refusing to remove mdev {}: /dev/vfio/{} is held by {}",
                                    m.uuid, *m.iommu_group, fmt::join(held, "; ")),
                        fmt::format("shut the VM down (or stop pid {}) first", users[0].pid));
}

Result<Report> run(HostFs& fs, std::vector<Change>& plan, size_t files, Report rep,
                   const std::string& command, const assign::Environment& env) {
  assign::RuntimeFiles durable;
  durable.count = files;
  durable.run = {command, env.process.time_now(), rep.dry_run};
  durable.outcome = &rep.durable;
  rep.steps = TRY(assign::apply_runtime(fs, plan, env, rep.dry_run, {}, &durable));
  return rep;
}

}  // namespace

const char* start_name(Start s) {
  return s == Start::kAuto ? "auto" : "manual";
}

std::string config_path(const std::string& parent, const std::string& uuid) {
  return fmt::format("{}/{}/{}", kConfigDir, parent, uuid);
}

std::string config_text(const Definition& d) {
  Json attrs = Json::array();
  for (const auto& a : d.attrs) attrs.push_back(Json{{a.name, a.value}});
  Json j{{"mdev_type", d.type}, {"start", start_name(d.start)}, {"attrs", attrs}};
  return j.dump(2, ' ', false, Json::error_handler_t::replace);
}

Result<Definition> parse_config(const std::string& text, const std::string& parent,
                                const std::string& uuid) {
  std::string path = config_path(parent, uuid);
  const char* fix = "repair or remove it (`mdevctl undefine` or `pcipass mdev remove --persist`)";
  Json j = TRY(change::parse_json(text, path, fix));
  change::Checker c(path, fix);
  Definition d;
  d.parent = parent;
  d.uuid = uuid;
  d.type = TRY(c.string(j, "mdev_type"));
  if (!plain_name(d.type)) return c.bad("mdev_type", fmt::format("'{}' is not a type", d.type));
  std::string start = TRY(c.string(j, "start"));
  if (start != "auto" && start != "manual")
    return c.bad("start", fmt::format("'{}' is not auto or manual", start));
  d.start = start == "auto" ? Start::kAuto : Start::kManual;
  if (!j.contains("attrs") || j["attrs"].is_null()) return d;
  for (const auto& a : *TRY(c.array(j, "attrs"))) {
    if (!a.is_object() || a.size() != 1 || !a.begin().value().is_string())
      return c.bad("attrs", "is not a list of {\"name\": \"value\"} objects");
    d.attrs.push_back({a.begin().key(), a.begin().value().get<std::string>()});
  }
  return d;
}

Result<std::vector<Parent>> types(const HostFs& fs, const std::optional<std::string>& parent) {
  std::vector<std::string> names;
  if (parent) {
    if (!fs.is_dir(std::string(kParentsDir) + "/" + *parent))
      return Error::not_found(fmt::format("{} is not a parent of mediated devices", *parent),
                              kTypesFix);
    names.push_back(*parent);
  } else {
    auto all = list_if_present(fs, kParentsDir);
    if (!all)  // absent: no parent driver loaded, none
      return Error::state(
          fmt::format("cannot list the parents of mediated devices: {}", all.error().describe()),
          "run pcipass as root");
    names = std::move(*all);
    std::sort(names.begin(), names.end());
  }
  std::vector<Parent> out;
  for (const auto& n : names) {
    if (!plain_name(n)) continue;
    Parent p;
    p.name = n;
    std::string dir = std::string(kParentsDir) + "/" + n + "/mdev_supported_types";
    auto ids = list_or_problem(fs, dir, p.problems);
    std::sort(ids.begin(), ids.end());
    for (const auto& id : ids)
      if (plain_name(id) && fs.is_dir(dir + "/" + id))
        p.types.push_back(read_type(fs, dir + "/" + id, id, p.problems));
    out.push_back(std::move(p));
  }
  return out;
}

Result<Listing> list(const HostFs& fs, bool defined) {
  Listing out;
  if (defined) {
    for (auto& d : definitions(fs, out.problems)) {
      Mdev m;
      m.uuid = d.uuid, m.parent = d.parent, m.type = d.type;
      take_definition(m, d);
      if (auto a = read_active(fs, d.uuid); a && a->parent == d.parent && a->type == d.type) {
        m.active = true;
        m.driver = a->driver;
        m.iommu_group = a->iommu_group;
      }
      out.mdevs.push_back(std::move(m));
    }
  } else {
    for (const auto& e : list_or_problem(fs, kDevicesDir, out.problems)) {
      if (!change::canonical_uuid(e)) {
        out.problems.push_back(
            fmt::format("{}/{}: the name is not a UUID, skipped", kDevicesDir, e));
        continue;
      }
      auto m = read_active(fs, e);
      if (!m) continue;
      if (auto d = read_definition(fs, m->parent, e, out.problems); d && d->type == m->type)
        take_definition(*m, *d);
      out.mdevs.push_back(std::move(*m));
    }
  }
  sort(out.mdevs);
  return out;
}

Result<std::optional<Mdev>> find(const HostFs& fs, const std::string& uuid) {
  if (auto m = read_active(fs, uuid)) return std::optional<Mdev>(*m);
  Listing defined = TRY(list(fs, true));
  for (auto& m : defined.mdevs)
    if (m.uuid == uuid) return std::optional<Mdev>(std::move(m));
  return std::optional<Mdev>();
}

bool looks_like_uuid(const std::string& text) {
  std::string s = text;
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return change::canonical_uuid(s);
}

Result<std::string> parse_uuid(const std::string& text, const std::string& field) {
  if (!looks_like_uuid(text))
    return Error::invalid(
        fmt::format("invalid UUID '{}' for {}", text.substr(0, 64), field),
        fmt::format(
            "give 8-4-4-4-12 hexadecimal digits, e.g. 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001{}",
            field == "--uuid" ? ", or leave it out for a random one"
                              : " (`pcipass mdev list` shows them)"));
  std::string s = text;
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

Result<std::string> random_uuid(const ProcessContext& process) {
  unsigned char b[16];
  if (!process.random || !process.random(b, sizeof b))
    return Error::state("no source of random numbers for a new mdev's UUID",
                        "give one with --uuid (e.g. from `uuidgen`)");
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4 (RFC 4122, 4.4)
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // its variant
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += fmt::format("{:02x}", b[i]);
  }
  return s;
}

Result<std::string> parse_parent(const std::string& text) {
  if (auto a = parse_address(text)) return a->str();
  if (!plain_name(text))
    return Error::invalid(fmt::format("invalid parent '{}'", text.substr(0, 64)),
                          "name it as /sys/class/mdev_bus does (a PCI address, or a name such "
                          "as mtty); see `pcipass mdev types`");
  return text;
}

Result<CreatePlanned> plan_create(const HostFs& fs, const CreateRequest& req,
                                  const assign::Environment& env) {
  if (req.autostart && !req.persist)
    return Error::invalid("--auto is the start of a definition: it needs --persist",
                          "add --persist, or leave --auto out");
  std::string parent = TRY(parse_parent(req.parent));
  if (!plain_name(req.type))
    return Error::invalid(fmt::format("invalid mdev type '{}'", req.type.substr(0, 64)), kTypesFix);
  auto parents = TRY(types(fs, parent));
  const auto& offered = parents.front().types;
  auto t =
      std::find_if(offered.begin(), offered.end(), [&](const Type& x) { return x.id == req.type; });
  if (t == offered.end()) {
    std::vector<std::string> ids;
    for (const auto& x : offered) ids.push_back(x.id);
    return Error::invalid(
        fmt::format("{} offers no mdev type '{}' (it offers: {})", parent, req.type,
                    ids.empty() ? "none" : fmt::format("{}", fmt::join(ids, ", "))),
        kTypesFix);
  }
  if (!t->available)
    return Error::state(parents.front().problems.front(),
                        "the parent driver's sysfs attributes must be readable");
  if (*t->available == 0)
    return Error::refused(
        fmt::format("no instance of {} left on {} (available_instances is 0; {} in use)", req.type,
                    parent, t->devices.size()),
        "remove one (`pcipass mdev list`) or choose another type (`pcipass mdev types`)");
  CreatePlanned out;
  Report& rep = out.report;
  rep.uuid = req.uuid ? TRY(parse_uuid(*req.uuid, "--uuid")) : TRY(random_uuid(env.process));
  rep.parent = parent, rep.type = req.type, rep.dry_run = req.dry_run;
  if (fs.exists(change::mdev_dir(rep.uuid)))
    return Error::invalid(fmt::format("an mdev with UUID {} exists already", rep.uuid),
                          "choose another --uuid, or leave it out for a random one");
  std::vector<Change>& plan = out.changes;
  if (req.persist) {
    std::string path = config_path(parent, rep.uuid);
    plan.push_back(Change::dir_create(std::string(kConfigDir) + "/" + parent));
    Definition d{parent, rep.uuid, req.type, req.autostart ? Start::kAuto : Start::kManual, {}};
    plan.push_back(Change::file_write(path, config_text(d)));
    rep.config = path;
  }
  out.files = plan.size();
  plan.push_back(Change::mdev_create(type_dir(parent, req.type), rep.uuid));
  return out;
}

Result<Report> create(HostFs& fs, const CreateRequest& req, const assign::Environment& env) {
  CreatePlanned p = TRY(plan_create(fs, req, env));
  Report rep = TRY(run(fs, p.changes, p.files, std::move(p.report), req.command, env));
  rep.active = !req.dry_run;
  return rep;
}

Result<Report> remove(HostFs& fs, const RemoveRequest& req, const assign::Environment& env) {
  std::string uuid = TRY(parse_uuid(req.uuid, "UUID"));
  Report rep;
  rep.uuid = uuid, rep.dry_run = req.dry_run;
  std::vector<std::string> problems;
  auto active = read_active(fs, uuid);
  std::optional<Mdev> defined;
  if (req.persist) {
    for (auto& d : definitions(fs, problems))
      if (d.uuid == uuid) {
        defined = Mdev{};
        defined->uuid = d.uuid, defined->parent = d.parent, defined->type = d.type;
        take_definition(*defined, d);
      }
  }

  if (!active && !defined)
    return Error::not_found(
        fmt::format("no mdev {}{}", uuid, req.persist ? " is active or defined" : " is active"),
        req.persist ? "see `pcipass mdev list` and `pcipass mdev list --defined`"
                    : "see `pcipass mdev list` (a definition alone goes with --persist)");
  const Mdev& m = active ? *active : *defined;
  rep.parent = m.parent, rep.type = m.type, rep.was_active = active.has_value();
  rep.active = active && req.dry_run;
  std::vector<Change> plan;
  if (defined) {
    rep.config = config_path(defined->parent, uuid);
    plan.push_back(Change::file_remove(*rep.config));
  }
  size_t files = plan.size();
  if (active) {
    TRY(check_unused(fs, *active));
    if (!plain_name(active->parent) || !plain_name(active->type))
      return Error::state(fmt::format("mdev {}'s parent '{}' or type '{}' is not a plain name",
                                      uuid, active->parent, active->type),
                          "remove it by hand: echo 1 > " + change::mdev_dir(uuid) + "/remove");
    plan.push_back(Change::mdev_remove(type_dir(active->parent, active->type), uuid));
  }
  return run(fs, plan, files, std::move(rep), req.command, env);
}

const char* start_result_id(StartResult r) {
  switch (r) {
    case StartResult::kStarted:
      return "started";
    case StartResult::kAlreadyActive:
      return "already-active";
    case StartResult::kConflict:
      return "conflict";
  }
  return "started";
}

size_t StartParentReport::started() const {
  return static_cast<size_t>(std::count_if(mdevs.begin(), mdevs.end(), [](const AutoStart& m) {
    return m.result == StartResult::kStarted;
  }));
}

bool StartParentReport::ok() const {
  return std::none_of(mdevs.begin(), mdevs.end(),
                      [](const AutoStart& m) { return m.result == StartResult::kConflict; });
}

namespace {

// What is active under a definition's UUID decides whether start-parent creates it.
AutoStart classify(const HostFs& fs, const Definition& d) {
  AutoStart a{d.uuid, d.type, StartResult::kStarted, {}, {}};
  auto active = read_active(fs, d.uuid);
  if (!active && !fs.exists(change::mdev_dir(d.uuid))) return a;
  if (active && active->parent == d.parent && active->type == d.type) {
    a.result = StartResult::kAlreadyActive;
    return a;
  }
  a.result = StartResult::kConflict;
  a.message = active
                  ? fmt::format("mdev {} is active as {} on {}, not as its definition's {} on {}",
                                d.uuid, active->type, active->parent, d.type, d.parent)
                  : fmt::format("mdev {} exists but its type cannot be read", d.uuid);
  a.fix = fmt::format(
      "remove it (`pcipass mdev remove {}`) and run `pcipass mdev start-parent {}` again, or "
      "correct {}",
      d.uuid, d.parent, config_path(d.parent, d.uuid));
  return a;
}

// Every type to create offered by the parent, with an instance left for each new mdev: checked
// before any write, so that a short parent refuses the whole start, naming the first that does
// not fit.
Status check_capacity(const Parent& parent, const std::vector<AutoStart>& todo) {
  std::map<std::string, int> wanted;
  for (const auto& m : todo) {
    if (m.result != StartResult::kStarted) continue;
    auto t = std::find_if(parent.types.begin(), parent.types.end(),
                          [&](const Type& x) { return x.id == m.type; });
    std::string fix = fmt::format(
        "correct {} or make it manual (`mdevctl modify --uuid {} --manual`); `pcipass mdev "
        "types {}` shows what the parent offers",
        config_path(parent.name, m.uuid), m.uuid, parent.name);
    if (t == parent.types.end())
      return Error::invalid(fmt::format("cannot start mdev {}: {} offers no mdev type '{}'", m.uuid,
                                        parent.name, m.type),
                            fix);
    if (!t->available)
      return Error::state(
          fmt::format(
              "cannot start mdev {} ({} on {}): {}", m.uuid, m.type, parent.name,
              parent.problems.empty() ? "available_instances unreadable" : parent.problems.front()),
          "the parent driver's sysfs attributes must be readable");
    if (++wanted[m.type] > *t->available)
      return Error::refused(
          fmt::format("cannot start mdev {} ({} on {}): available_instances is {} and {} "
                      "auto definitions of {} are not active",
                      m.uuid, m.type, parent.name, *t->available,
                      std::count_if(todo.begin(), todo.end(),
                                    [&](const AutoStart& x) {
                                      return x.result == StartResult::kStarted && x.type == m.type;
                                    }),
                      m.type),
          fmt::format("remove an mdev of {} (`pcipass mdev list`), or {}", m.type, fix));
  }
  return {};
}

}  // namespace

Result<StartParentReport> start_parent(HostFs& fs, const std::string& parent_text, bool dry_run,
                                       const assign::Environment& env) {
  std::string parent = TRY(parse_parent(parent_text));
  if (!fs.is_dir(std::string(kParentsDir) + "/" + parent))
    return Error::not_found(
        fmt::format("{} is not a registered parent of mediated devices (no {}/{})", parent,
                    kParentsDir, parent),
        "`pcipass mdev types` lists the parents; load the parent's driver first");
  StartParentReport rep;
  rep.parent = parent, rep.dir = std::string(kConfigDir) + "/" + parent, rep.dry_run = dry_run;
  for (const auto& d : parent_definitions(fs, parent, rep.problems)) {
    if (d.start == Start::kManual) {
      ++rep.manual;
      continue;
    }
    rep.mdevs.push_back(classify(fs, d));
  }
  if (rep.started() == 0) return rep;
  auto parents = TRY(types(fs, parent));
  TRY(check_capacity(parents.front(), rep.mdevs));
  std::vector<Change> plan;
  for (const auto& m : rep.mdevs)
    if (m.result == StartResult::kStarted)
      plan.push_back(Change::mdev_create(type_dir(parent, m.type), m.uuid));
  rep.steps = TRY(assign::apply_runtime(fs, plan, env, dry_run));
  return rep;
}

}  // namespace pcipass::mdev
