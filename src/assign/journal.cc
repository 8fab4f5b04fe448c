#include "assign/journal.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "change/validate.h"
#include "util/json_text.h"

namespace pcipass::assign {

using change::Checker;

namespace {

constexpr const char* kJournalFix =
    "inspect it and compare with the devices' drivers (`pcipass status`); put the devices back "
    "by hand, then remove it";
constexpr const char* kOperations[] = {"bind", "release", "write"};
constexpr const char* kStateFix =
    "inspect it; `pcipass release` needs it to know the original drivers: repair it or remove "
    "it after putting the devices back by hand";

Json state_json(const DeviceState& s) {
  Json j{{"driver", or_null(s.driver)}, {"driver_override", or_null(s.override)}};
  if (s.any_driver) j["any_driver"] = true;
  return j;
}

// A driver name or null: a name that could climb out of /sys/bus/pci/drivers is refused.
Result<std::optional<std::string>> driver_field(const Checker& c, const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return c.bad(key, "is missing");
  if (j[key].is_null()) return std::optional<std::string>();
  std::string s = TRY(c.string(j, key));
  if (!change::plain_driver_name(s)) return c.bad(key, fmt::format("'{}' is not a driver name", s));
  return std::optional<std::string>(s);
}

Result<DeviceState> state_from(const Checker& c, const Json& parent, const char* key) {
  const Json& j = *TRY(c.object(parent, key));
  DeviceState s;
  s.driver = TRY(driver_field(c, j, "driver"));
  s.override = TRY(driver_field(c, j, "driver_override"));
  if (j.contains("any_driver")) s.any_driver = TRY(c.boolean(j, "any_driver"));
  return s;
}

Result<PciAddress> address_from(const Checker& c, const Json& j) {
  std::string s = TRY(c.string(j, "address"));
  auto a = parse_address(s);
  if (!a || a->str() != s) return c.bad("address", fmt::format("'{}' is not a PCI address", s));
  return *a;
}

Result<std::optional<int>> group_from(const Checker& c, const Json& j) {
  if (!j.contains("iommu_group")) return c.bad("iommu_group", "is missing");
  if (j["iommu_group"].is_null()) return std::optional<int>();
  return std::optional<int>(static_cast<int>(TRY(c.integer(j, "iommu_group", 0, 1 << 20))));
}

// Absent (ENOENT) is "nothing recorded"; any other failure (a user other than root cannot read
// /run/pcipass) is an error, never "absent": status would say "bound nothing", recover "nothing
// to recover".
Result<std::optional<std::string>> read_if_present(const HostFs& fs, const std::string& path) {
  auto text = fs.read(path);
  if (text) return std::optional<std::string>(std::move(*text));
  if (text.error().err == ENOENT) return std::optional<std::string>();
  Error e = std::move(text).error();
  if (e.err == EACCES || e.err == EPERM)
    e.fix = fmt::format("{} is root's: run pcipass as root (sudo pcipass ...)", kRunDir);
  return e;
}

Result<JournalEntry> device_from(const Checker& c, const Json& d, int seq) {
  JournalEntry e;
  e.address = TRY(address_from(c, d));
  e.group = TRY(group_from(c, d));
  e.before = TRY(state_from(c, d, "before"));
  e.after = TRY(state_from(c, d, "after"));
  if (e.before.any_driver) return c.bad("before", "cannot be 'any driver'");
  e.seq = seq;
  return e;
}

// What sysfs shows or takes: at most 4 KiB, no control bytes but a newline.
bool attribute_value(const std::string& s) {
  if (s.size() > 4096) return false;
  for (unsigned char ch : s)
    if ((ch < 0x20 && ch != '\n') || ch == 0x7f) return false;
  return true;
}

Result<AttributeEntry> attribute_from(const Checker& c, const Json& d, int seq) {
  AttributeEntry e;
  e.seq = seq;
  e.path = TRY(c.string(d, "path"));
  if (!journal_attribute_path(e.path))
    return c.bad("path", "is not /sys/bus/pci/devices/ADDRESS/NAME with a plain NAME");
  if (!d.contains("before")) return c.bad("before", "is missing");
  if (!d["before"].is_null()) {
    e.before = TRY(c.string(d, "before"));
    if (!attribute_value(*e.before)) return c.bad("before", "is not an attribute value");
  }
  e.after = TRY(c.string(d, "after"));
  if (!attribute_value(e.after)) return c.bad("after", "is not an attribute value");
  return e;
}

Result<MdevEntry> mdev_from(const Checker& c, const Json& d, int seq) {
  MdevEntry e;
  e.seq = seq;
  std::string action = TRY(c.string(d, "action"));
  if (action != "create" && action != "remove")
    return c.bad("action", fmt::format("'{}' is not create or remove", action));
  e.remove = action == "remove";
  e.type_dir = TRY(c.string(d, "type_dir"));
  if (!change::mdev_type_dir(e.type_dir))
    return c.bad("type_dir", "is not /sys/class/mdev_bus/PARENT/mdev_supported_types/TYPE");
  e.uuid = TRY(c.string(d, "uuid"));
  if (!change::canonical_uuid(e.uuid)) return c.bad("uuid", "is not a lowercase UUID");
  e.existed = TRY(c.boolean(d, "existed"));
  return e;
}

// What the kernel takes as an interface name (IFNAMSIZ, no '/', blank or control byte).
bool interface_name(const std::string& s) {
  if (s.empty() || s.size() > 15 || s == "." || s == "..") return false;
  for (unsigned char ch : s)
    if (ch <= 0x20 || ch == '/' || ch == ':' || ch >= 0x7f) return false;
  return true;
}

bool mac_text(const std::string& s) {
  if (s.size() != 17) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (i % 3 == 2 ? s[i] != ':' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

Json setting_json(const change::VfSetting& s) {
  switch (s.field) {
    case change::VfField::kMac:
      return {{"mac", s.mac}};
    case change::VfField::kVlan:
      return {{"vlan", s.vlan}, {"qos", s.qos}};
    case change::VfField::kSpoofchk:
    case change::VfField::kTrust:
      break;
  }
  return {{"on", s.on}};
}

Result<change::VfSetting> setting_from(const Checker& c, const Json& parent, const char* key,
                                       change::VfField field) {
  const Json& j = *TRY(c.object(parent, key));
  change::VfSetting s;
  s.field = field;
  switch (field) {
    case change::VfField::kMac:
      s.mac = TRY(c.string(j, "mac"));
      if (!mac_text(s.mac)) return c.bad("mac", fmt::format("'{}' is not a MAC address", s.mac));
      break;
    case change::VfField::kVlan:
      s.vlan = static_cast<int>(TRY(c.integer(j, "vlan", 0, 4095)));
      s.qos = static_cast<int>(TRY(c.integer(j, "qos", 0, 7)));
      break;
    case change::VfField::kSpoofchk:
    case change::VfField::kTrust:
      s.on = TRY(c.boolean(j, "on"));
      break;
  }
  return s;
}

Result<VfLinkEntry> vf_link_from(const Checker& c, const Json& d, int seq) {
  VfLinkEntry e;
  e.seq = seq;
  e.ifname = TRY(c.string(d, "ifname"));
  if (!interface_name(e.ifname))
    return c.bad("ifname", fmt::format("'{}' is not an interface name", e.ifname));
  e.vf = static_cast<int>(TRY(c.integer(d, "vf", 0, 65535)));
  std::string name = TRY(c.string(d, "field"));
  std::optional<change::VfField> field;
  for (auto f : {change::VfField::kMac, change::VfField::kVlan, change::VfField::kSpoofchk,
                 change::VfField::kTrust})
    if (name == change::vf_field_name(f)) field = f;
  if (!field) return c.bad("field", fmt::format("'{}' is not mac, vlan, spoofchk or trust", name));
  e.before = TRY(setting_from(c, d, "before", *field));
  e.after = TRY(setting_from(c, d, "after", *field));
  return e;
}

Status ensure_dir(HostFs& fs) {
  return fs.make_dirs(kRunDir, 0700);
}

}  // namespace

Result<Journal> parse_journal(const std::string& text) {
  Json j = TRY(change::parse_json(text, kJournalPath, kJournalFix));
  Checker c(kJournalPath, kJournalFix);
  std::string schema = TRY(c.string(j, "schema"));
  if (schema != kJournalSchema && schema != kJournalSchemaV1)
    return c.bad("schema", fmt::format("is {}, not {} (or {} from an older pcipass)", schema,
                                       kJournalSchema, kJournalSchemaV1));
  Journal out;
  out.operation = TRY(c.string(j, "operation"));
  if (std::find(std::begin(kOperations), std::end(kOperations), out.operation) ==
      std::end(kOperations))
    return c.bad("operation", fmt::format("'{}' is not bind, release or write", out.operation));
  out.driver = TRY(c.string(j, "driver"));
  if (!out.driver.empty() && !change::plain_driver_name(out.driver))
    return c.bad("driver", fmt::format("'{}' is not a driver name", out.driver));
  out.owner = TRY(c.string(j, "owner"));
  out.pid = static_cast<int>(TRY(c.integer(j, "pid", 0, 1 << 30)));
  out.phase = TRY(c.string(j, "phase"));
  if (out.phase != "writing" && out.phase != "committed")
    return c.bad("phase", fmt::format("'{}' is not writing or committed", out.phase));
  // Only bind and release have a state file to record once their writes are done.
  if (out.operation == "write" && out.phase == "committed")
    return c.bad("phase", "'committed' is not a phase of a write");
  if (schema == kJournalSchemaV1) {
    for (const auto& d : *TRY(c.array(j, "devices")))
      out.devices.push_back(TRY(device_from(c, d, static_cast<int>(out.devices.size()))));
    return out;
  }
  int seq = 0;
  for (const auto& e : *TRY(c.array(j, "changes"))) {
    std::string kind = TRY(c.string(e, "kind"));
    if (kind == "device")
      out.devices.push_back(TRY(device_from(c, e, seq++)));
    else if (kind == "attribute")
      out.attributes.push_back(TRY(attribute_from(c, e, seq++)));
    else if (kind == "mdev")
      out.mdevs.push_back(TRY(mdev_from(c, e, seq++)));
    else if (kind == "vf")
      out.vf_links.push_back(TRY(vf_link_from(c, e, seq++)));
    else
      return c.bad("kind", fmt::format("'{}' is not device, attribute, mdev or vf", kind));
  }
  return out;
}

bool journal_attribute_path(const std::string& path) {
  const std::string prefix = "/sys/bus/pci/devices/";
  if (!path.starts_with(prefix)) return false;
  std::string rest = path.substr(prefix.size());
  auto slash = rest.find('/');
  if (slash == std::string::npos) return false;
  std::string addr = rest.substr(0, slash);
  auto a = parse_address(addr);
  return a && a->str() == addr && change::plain_driver_name(rest.substr(slash + 1));
}

std::string Journal::summary() const {
  auto count = [](size_t n, const char* what) {
    return fmt::format("{} {}{}", n, what, n == 1 ? "" : "s");
  };
  std::vector<std::string> parts;
  if (!devices.empty() || (attributes.empty() && mdevs.empty() && vf_links.empty()))
    parts.push_back(count(devices.size(), "device"));
  if (!attributes.empty()) parts.push_back(count(attributes.size(), "attribute"));
  if (!mdevs.empty()) parts.push_back(count(mdevs.size(), "mdev"));
  if (!vf_links.empty()) parts.push_back(count(vf_links.size(), "VF setting"));
  std::string s = operation + " of " + parts[0];
  for (size_t i = 1; i < parts.size(); ++i)
    s += (i + 1 == parts.size() ? " and " : ", ") + parts[i];
  return s;
}

std::vector<change::Change> Journal::changes() const {
  std::vector<std::pair<int, change::Change>> out;
  for (const auto& d : devices) {
    auto c = change::Change::device_move(d.address, d.after, change::Procedure::kRestore);
    c.before.device = d.before;
    out.emplace_back(d.seq, std::move(c));
  }
  for (const auto& a : attributes) {
    auto c = change::Change::attribute(a.path, a.after);
    c.before.attribute = a.before;
    out.emplace_back(a.seq, std::move(c));
  }
  for (const auto& m : mdevs) {
    auto c = m.remove ? change::Change::mdev_remove(m.type_dir, m.uuid)
                      : change::Change::mdev_create(m.type_dir, m.uuid);
    c.before.existed = m.existed;
    out.emplace_back(m.seq, std::move(c));
  }
  for (const auto& v : vf_links) {
    auto c = change::Change::vf_link(v.ifname, v.vf, v.after);
    c.before.setting = v.before;
    out.emplace_back(v.seq, std::move(c));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<change::Change> plan;
  for (auto& [seq, c] : out) {
    c.before.captured = true;
    c.applied = true;
    plan.push_back(std::move(c));
  }
  return plan;
}

void Journal::add(const std::vector<change::Change>& plan,
                  const std::function<std::optional<int>(const PciAddress&)>& group) {
  int seq = static_cast<int>(devices.size() + attributes.size() + mdevs.size() + vf_links.size());
  for (const auto& c : plan) {
    if (c.kind == change::Kind::kDeviceMove)
      devices.push_back({c.address, group(c.address), c.before.device, c.target, seq++});
    else if (c.kind == change::Kind::kAttribute)
      attributes.push_back({c.path, c.before.attribute, c.data, seq++});
    else if (c.kind == change::Kind::kMdevCreate || c.kind == change::Kind::kMdevRemove)
      mdevs.push_back(
          {c.kind == change::Kind::kMdevRemove, c.path, c.data, c.before.existed, seq++});
    else if (c.kind == change::Kind::kVfLink && c.before.setting)
      vf_links.push_back({c.path, c.vf, *c.before.setting, c.setting, seq++});
  }
}

Result<std::optional<Journal>> load_journal(const HostFs& fs) {
  auto text = TRY(read_if_present(fs, kJournalPath));
  if (!text) return std::optional<Journal>();
  return std::optional<Journal>(TRY(parse_journal(*text)));
}

Status save_journal(HostFs& fs, const Journal& j) {
  TRY(ensure_dir(fs));
  std::vector<std::pair<int, Json>> entries;
  for (const auto& d : j.devices)
    entries.emplace_back(d.seq, Json{{"kind", "device"},
                                     {"address", d.address.str()},
                                     {"iommu_group", or_null(d.group)},
                                     {"before", state_json(d.before)},
                                     {"after", state_json(d.after)}});
  for (const auto& a : j.attributes)
    entries.emplace_back(a.seq, Json{{"kind", "attribute"},
                                     {"path", a.path},
                                     {"before", or_null(a.before)},
                                     {"after", a.after}});
  for (const auto& m : j.mdevs)
    entries.emplace_back(m.seq, Json{{"kind", "mdev"},
                                     {"action", m.remove ? "remove" : "create"},
                                     {"type_dir", m.type_dir},
                                     {"uuid", m.uuid},
                                     {"existed", m.existed}});
  for (const auto& v : j.vf_links)
    entries.emplace_back(v.seq, Json{{"kind", "vf"},
                                     {"ifname", v.ifname},
                                     {"vf", v.vf},
                                     {"field", change::vf_field_name(v.after.field)},
                                     {"before", setting_json(v.before)},
                                     {"after", setting_json(v.after)}});
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  Json changes = Json::array();
  for (auto& e : entries) changes.push_back(std::move(e.second));
  Json out{{"schema", kJournalSchema},
           {"operation", j.operation},
           {"driver", j.driver},
           {"owner", j.owner},
           {"pid", j.pid},
           {"phase", j.phase},
           {"changes", changes}};
  return fs.write_atomic(kJournalPath, TRY(json_file_text(out, kJournalPath)), 0600);
}

const Binding* StateFile::find(const PciAddress& a) const {
  for (const auto& b : bindings)
    if (b.address == a) return &b;
  return nullptr;
}

void StateFile::put(Binding b) {
  erase(b.address);
  bindings.push_back(std::move(b));
  std::sort(bindings.begin(), bindings.end(),
            [](const Binding& x, const Binding& y) { return x.address < y.address; });
}

void StateFile::erase(const PciAddress& a) {
  std::erase_if(bindings, [&](const Binding& b) { return b.address == a; });
}

Result<StateFile> load_state(const HostFs& fs) {
  auto text = TRY(read_if_present(fs, kStatePath));
  StateFile s;
  if (!text) return s;
  Json j = TRY(change::parse_json(*text, kStatePath, kStateFix));
  Checker c(kStatePath, kStateFix);
  TRY(c.schema(j, "pcipass.state/1"));
  for (const auto& d : *TRY(c.array(j, "bindings"))) {
    Binding b;
    b.address = TRY(address_from(c, d));
    b.group = TRY(group_from(c, d));
    auto driver = TRY(driver_field(c, d, "driver"));
    if (!driver) return c.bad("driver", "is null");
    b.driver = *driver;
    b.original = TRY(state_from(c, d, "original"));
    b.owner = TRY(c.string(d, "owner"));
    s.put(std::move(b));
  }
  return s;
}

Status save_state(HostFs& fs, const StateFile& s) {
  TRY(ensure_dir(fs));
  Json list = Json::array();
  for (const auto& b : s.bindings)
    list.push_back({{"address", b.address.str()},
                    {"iommu_group", or_null(b.group)},
                    {"driver", b.driver},
                    {"original", state_json(b.original)},
                    {"owner", b.owner}});
  return fs.write_atomic(
      kStatePath,
      TRY(json_file_text(Json{{"schema", "pcipass.state/1"}, {"bindings", list}}, kStatePath)),
      0600);
}

}  // namespace pcipass::assign
