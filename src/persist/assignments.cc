#include "persist/assignments.h"

#include <fmt/format.h>

#include <algorithm>

#include "change/change.h"
#include "change/validate.h"

namespace pcipass::persist {

namespace {

constexpr const char* kKnown[] = {"address",          "vendor",           "device",
                                  "subsystem_vendor", "subsystem_device", "driver"};

constexpr const char* kKnownSriov[] = {"pf",     "vendor", "device", "num_vfs", "drivers_autoprobe",
                                       "driver", "vfs"};

// Which list an entry is in: how it is named and what removing it means.
struct EntryKind {
  const char* key;      // the field naming the entry
  const char* prefix;   // "entry" / "sriov entry"
  const char* removed;  // what removing it means, and how to record it again
};
constexpr EntryKind kDeviceEntry{
    "address", "entry",
    "(the device is then not bound at boot) and run `pcipass bind --persist` for it again"};
constexpr EntryKind kSriovEntry{
    "pf", "sriov entry",
    "(its VFs are then not made at boot) and run `pcipass vf create --persist` for it again"};

// An entry's field, checked, with the error naming the file, the entry and the fix.
class EntryChecker {
 public:
  EntryChecker(const std::string& path, size_t index, const Json& entry,
               const EntryKind& kind = kDeviceEntry)
      : path_(path), entry_(entry), kind_(kind) {
    if (entry.is_object() && entry.contains(kind.key) && entry[kind.key].is_string())
      shown_ = fmt::format("{} {} ({})", kind.prefix, index, entry[kind.key].get<std::string>());
    else
      shown_ = fmt::format("{} {}", kind.prefix, index);
  }
  Error bad(const std::string& field, const std::string& why, const std::string& fix) const {
    Error e =
        Error::state(fmt::format("{} is damaged: {}: {} {}", path_, shown_, field, why),
                     fmt::format("{}; or remove the entry from {} {}", fix, path_, kind_.removed));
    e.path = path_;
    return e;
  }
  // An address in the kernel's form (0000:01:00.0).
  Result<PciAddress> address(const char* key) const {
    std::string s =
        TRY(string(key, "write the address in the kernel's form, e.g. \"0000:01:00.0\""));
    return address_of(key, s);
  }
  Result<PciAddress> address_of(const char* key, const std::string& s) const {
    auto parsed = parse_address(s);
    if (!parsed || parsed->str() != s)
      return bad(key, "is not a PCI address in the kernel's form (0000:01:00.0)",
                 "write the address as `pcipass list` shows it, with its domain");
    return *parsed;
  }
  Result<std::string> string(const char* key, const std::string& fix) const {
    if (!entry_.contains(key)) return bad(key, "is missing", fix);
    if (!entry_[key].is_string()) return bad(key, "is not a string", fix);
    return entry_[key].get<std::string>();
  }
  Result<uint16_t> id(const char* key) const {
    const std::string fix = fmt::format(
        "write {} as four lowercase hex digits without 0x, as `pcipass show {}` prints it", key,
        entry_.value(kind_.key, std::string("ADDRESS")));
    std::string s = TRY(string(key, fix));
    auto v = parse_hex(s, 4);
    bool lower = std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'F'; });
    if (s.size() != 4 || !v || !lower)
      return bad(key, fmt::format("is \"{}\", not four lowercase hex digits", printable(s)), fix);
    return static_cast<uint16_t>(*v);
  }

 private:
  static std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s.substr(0, 64))
      out += c >= 0x20 && c < 0x7f && c != '"' ? std::string(1, static_cast<char>(c))
                                               : fmt::format("\\x{:02x}", c);
    return out;
  }
  std::string path_;
  const Json& entry_;
  const EntryKind& kind_;
  std::string shown_;
};

Result<Assignment> parse_entry(const std::string& path, size_t i, const Json& e) {
  EntryChecker c(path, i, e);
  if (!e.is_object())
    return c.bad("the entry", "is not an object",
                 "each entry is {\"address\": ..., \"vendor\": ..., ...}");
  Assignment a;
  a.address = TRY(c.address("address"));
  a.ids.vendor = TRY(c.id("vendor"));
  a.ids.device = TRY(c.id("device"));
  a.ids.subsystem_vendor = TRY(c.id("subsystem_vendor"));
  a.ids.subsystem_device = TRY(c.id("subsystem_device"));
  a.driver = TRY(c.string("driver", "write \"vfio-pci\" or \"pci-stub\""));
  if (a.driver != "vfio-pci" && a.driver != "pci-stub")
    return c.bad("driver", fmt::format("is not vfio-pci or pci-stub"),
                 "write \"vfio-pci\" or \"pci-stub\"");
  for (const auto& [k, v] : e.items())
    if (std::find(std::begin(kKnown), std::end(kKnown), k) == std::end(kKnown)) a.extra[k] = v;
  return a;
}

Result<SriovEntry> parse_sriov_entry(const std::string& path, size_t i, const Json& e) {
  EntryChecker c(path, i, e, kSriovEntry);
  if (!e.is_object())
    return c.bad("the entry", "is not an object", "each entry is {\"pf\": ..., \"num_vfs\": ...}");
  SriovEntry s;
  s.pf = TRY(c.address("pf"));
  s.vendor = TRY(c.id("vendor"));
  s.device = TRY(c.id("device"));
  const char* count_fix = "write the number of VFs as a number from 1 to 65535";
  if (!e.contains("num_vfs") || !e["num_vfs"].is_number_unsigned())
    return c.bad("num_vfs", "is missing or not a whole number", count_fix);
  uint64_t n = e["num_vfs"].get<uint64_t>();
  if (n < 1 || n > 0xffff) return c.bad("num_vfs", fmt::format("is {}", n), count_fix);
  s.num_vfs = static_cast<int>(n);
  if (!e.contains("drivers_autoprobe") || !e["drivers_autoprobe"].is_boolean())
    return c.bad("drivers_autoprobe", "is missing or not true/false", "write true or false");
  s.drivers_autoprobe = e["drivers_autoprobe"].get<bool>();
  const char* driver_fix = "write \"vfio-pci\", \"pci-stub\" or null (no binding)";
  if (!e.contains("driver")) return c.bad("driver", "is missing", driver_fix);
  if (!e["driver"].is_null()) {
    s.driver = TRY(c.string("driver", driver_fix));
    if (s.driver != "vfio-pci" && s.driver != "pci-stub")
      return c.bad("driver", "is not vfio-pci, pci-stub or null", driver_fix);
  }
  const char* vfs_fix = "list the VFs' addresses, as `pcipass vf list` shows them";
  if (!e.contains("vfs") || !e["vfs"].is_array())
    return c.bad("vfs", "is missing or not a list", vfs_fix);
  for (const auto& v : e["vfs"]) {
    if (!v.is_string()) return c.bad("vfs", "holds something other than an address", vfs_fix);
    s.vfs.push_back(TRY(c.address_of("vfs", v.get<std::string>())));
  }
  if (s.vfs.size() > static_cast<size_t>(s.num_vfs))
    return c.bad("vfs", "lists more VFs than num_vfs", vfs_fix);
  if (s.driver.empty() != s.vfs.empty())
    return c.bad("vfs", "and driver disagree: VFs are listed only with a driver",
                 "give both a driver and its VFs, or neither");
  for (const auto& [k, v] : e.items())
    if (std::find(std::begin(kKnownSriov), std::end(kKnownSriov), k) == std::end(kKnownSriov))
      s.extra[k] = v;
  return s;
}

std::string hex4(uint16_t v) {
  return fmt::format("{:04x}", v);
}

}  // namespace

bool SriovEntry::same(const SriovEntry& o) const {
  return pf == o.pf && vendor == o.vendor && device == o.device && num_vfs == o.num_vfs &&
         drivers_autoprobe == o.drivers_autoprobe && driver == o.driver && vfs == o.vfs;
}

std::string SriovEntry::ids() const {
  return fmt::format("{:04x}:{:04x}", vendor, device);
}

const SriovEntry* Assignments::find_sriov(const PciAddress& pf) const {
  for (const auto& e : sriov)
    if (e.pf == pf) return &e;
  return nullptr;
}

bool Assignments::put_sriov(SriovEntry e) {
  auto it = std::lower_bound(sriov.begin(), sriov.end(), e.pf,
                             [](const SriovEntry& s, const PciAddress& x) { return s.pf < x; });
  if (it != sriov.end() && it->pf == e.pf) {
    if (it->same(e)) return false;
    e.extra = it->extra;  // what others wrote beside the entry stays
    *it = std::move(e);
    return true;
  }
  sriov.insert(it, std::move(e));
  return true;
}

bool Assignments::erase_sriov(const PciAddress& pf) {
  return std::erase_if(sriov, [&](const SriovEntry& s) { return s.pf == pf; }) > 0;
}

std::string Ids::str() const {
  return fmt::format("{:04x}:{:04x} (subsystem {:04x}:{:04x})", vendor, device, subsystem_vendor,
                     subsystem_device);
}

const Assignment* Assignments::find(const PciAddress& a) const {
  for (const auto& d : devices)
    if (d.address == a) return &d;
  return nullptr;
}

bool Assignments::put(Assignment a) {
  auto it =
      std::lower_bound(devices.begin(), devices.end(), a.address,
                       [](const Assignment& d, const PciAddress& x) { return d.address < x; });
  if (it != devices.end() && it->address == a.address) {
    if (it->ids == a.ids && it->driver == a.driver) return false;
    a.extra = it->extra;  // what others wrote beside the entry stays
    *it = std::move(a);
    return true;
  }
  devices.insert(it, std::move(a));
  return true;
}

bool Assignments::erase(const PciAddress& a) {
  return std::erase_if(devices, [&](const Assignment& d) { return d.address == a; }) > 0;
}

Assignment assignment_for(const Device& d, const std::string& driver) {
  Assignment a;
  a.address = d.address;
  a.ids = ids_of(d);
  a.driver = driver;
  return a;
}

Result<Assignments> parse_assignments(const std::string& text, const std::string& path) {
  const std::string fix = fmt::format(
      "fix the file by hand (docs/persist.md has its shape), or move it away and persist the "
      "devices again with `pcipass bind --persist`");
  Json j = TRY(change::parse_json(text, path, fix));
  change::Checker c(path, fix);
  TRY(c.schema(j, kAssignmentsSchema));
  const Json& list = *TRY(c.array(j, "devices"));
  Assignments out;
  for (size_t i = 0; i < list.size(); ++i) {
    Assignment a = TRY(parse_entry(path, i, list[i]));
    if (out.find(a.address))
      return EntryChecker(path, i, list[i])
          .bad("address", "is listed twice", "keep one entry per address");
    out.devices.push_back(std::move(a));
  }
  std::sort(out.devices.begin(), out.devices.end(),
            [](const Assignment& a, const Assignment& b) { return a.address < b.address; });
  if (j.contains("sriov")) {
    const Json& sriov = *TRY(c.array(j, "sriov"));
    for (size_t i = 0; i < sriov.size(); ++i) {
      SriovEntry e = TRY(parse_sriov_entry(path, i, sriov[i]));
      if (out.find_sriov(e.pf))
        return EntryChecker(path, i, sriov[i], kSriovEntry)
            .bad("pf", "is listed twice", "keep one entry per PF");
      out.sriov.push_back(std::move(e));
    }
    std::sort(out.sriov.begin(), out.sriov.end(),
              [](const SriovEntry& a, const SriovEntry& b) { return a.pf < b.pf; });
  }
  for (const auto& [k, v] : j.items())
    if (k != "schema" && k != "devices" && k != "sriov") out.extra[k] = v;
  return out;
}

Result<Assignments> load_assignments(const HostFs& fs) {
  change::FileState s = TRY(change::read_file_state(fs, kAssignmentsPath));
  if (s.absent) return Assignments{};
  return parse_assignments(s.bytes, kAssignmentsPath);
}

std::string render_assignments(const Assignments& a) {
  Json devices = Json::array();
  for (const auto& d : a.devices) {
    Json e{{"address", d.address.str()},
           {"vendor", hex4(d.ids.vendor)},
           {"device", hex4(d.ids.device)},
           {"subsystem_vendor", hex4(d.ids.subsystem_vendor)},
           {"subsystem_device", hex4(d.ids.subsystem_device)},
           {"driver", d.driver}};
    for (const auto& [k, v] : d.extra.items()) e[k] = v;
    devices.push_back(std::move(e));
  }
  Json j{{"schema", kAssignmentsSchema}, {"devices", devices}};
  if (!a.sriov.empty()) {
    Json sriov = Json::array();
    for (const auto& s : a.sriov) {
      Json vfs = Json::array();
      for (const auto& v : s.vfs) vfs.push_back(v.str());
      Json e{{"pf", s.pf.str()},
             {"vendor", hex4(s.vendor)},
             {"device", hex4(s.device)},
             {"num_vfs", s.num_vfs},
             {"drivers_autoprobe", s.drivers_autoprobe},
             {"driver", or_null(s.driver)},
             {"vfs", vfs}};
      for (const auto& [k, v] : s.extra.items()) e[k] = v;
      sriov.push_back(std::move(e));
    }
    j["sriov"] = std::move(sriov);
  }
  for (const auto& [k, v] : a.extra.items()) j[k] = v;
  return j.dump(2) + "\n";
}

Ids ids_of(const Device& d) {
  return {d.vendor, d.device, d.subsystem_vendor, d.subsystem_device};
}

const char* match_id(Match m) {
  switch (m) {
    case Match::kMatches:
      return "matches";
    case Match::kOtherDriver:
      return "other-driver";
    case Match::kAbsent:
      return "absent";
    case Match::kIdsDiffer:
      return "ids-differ";
  }
  return "?";
}

namespace {

Comparison compare_one(const Inventory& inv, const Assignment& want) {
  Comparison c;
  c.desired = want;
  std::string addr = want.address.str();
  const Device* dev = inv.find(want.address);
  if (!dev) {
    c.match = Match::kAbsent;
    c.message = fmt::format("{} is persisted for {} but no device is there", addr, want.driver);
    c.fix = fmt::format(
        "if the card was removed, forget it with `pcipass release --persist {}`; a VF appears "
        "only once its PF's sriov_numvfs is set",
        addr);
    return c;
  }
  c.actual = ids_of(*dev);
  c.driver = dev->driver;
  if (*c.actual != want.ids) {
    c.match = Match::kIdsDiffer;
    c.message = fmt::format(
        "{} is persisted for {} as {}, but the device there is {}: the card was moved or "
        "swapped, so pcipass does not bind it",
        addr, want.driver, want.ids.str(), c.actual->str());
    c.fix = fmt::format(
        "find where the card is now (`pcipass list --vendor {:04x}`), then `pcipass release "
        "--persist {}` and `pcipass bind --persist` the right address",
        want.ids.vendor, addr);
    return c;
  }
  if (c.driver != want.driver) {
    c.match = Match::kOtherDriver;
    c.message =
        c.driver ? fmt::format("{} is persisted for {} but {} has it", addr, want.driver, *c.driver)
                 : fmt::format("{} is persisted for {} but is on no driver", addr, want.driver);
    c.fix = fmt::format(
        "`pcipass apply` binds it now; at boot pcipass-apply.service does (`systemctl status "
        "pcipass-apply`); a host driver in the initramfs takes it first unless early binding "
        "is set up (docs/persist.md)");
    return c;
  }
  c.match = Match::kMatches;
  c.message = fmt::format("{} is on {} as persisted", addr, want.driver);
  return c;
}

}  // namespace

std::vector<Comparison> compare(const Inventory& inv, const Assignments& a) {
  std::vector<Comparison> out;
  for (const auto& d : a.devices) out.push_back(compare_one(inv, d));
  return out;
}

Result<Inventory> scan_assigned(const HostFs& fs, const Assignments& a) {
  std::vector<PciAddress> wanted;
  for (const auto& d : a.devices) wanted.push_back(d.address);
  return Inventory::scan_devices(fs, wanted, nullptr);
}

}  // namespace pcipass::persist
