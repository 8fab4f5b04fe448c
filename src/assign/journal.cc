#include "assign/journal.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace pcipass::assign {

using Json = nlohmann::ordered_json;

std::string DeviceState::describe() const {
  std::string s = any_driver ? "its host driver" : driver ? *driver : "no driver";
  if (override) s += fmt::format(" (driver_override {})", *override);
  return s;
}

std::string device_dir(const PciAddress& a) {
  return "/sys/bus/pci/devices/" + a.str();
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

namespace {

Json opt(const std::optional<std::string>& s) {
  return s ? Json(*s) : Json(nullptr);
}
std::optional<std::string> opt_str(const Json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return j[key].get<std::string>();
}

Json state_json(const DeviceState& s) {
  Json j{{"driver", opt(s.driver)}, {"driver_override", opt(s.override)}};
  if (s.any_driver) j["any_driver"] = true;
  return j;
}
DeviceState state_from(const Json& j) {
  DeviceState s;
  s.driver = opt_str(j, "driver");
  s.override = opt_str(j, "driver_override");
  s.any_driver = j.value("any_driver", false);
  return s;
}

Result<Json> read_json(const HostFs& fs, const std::string& path, bool& missing) {
  missing = false;
  if (!fs.exists(path)) {
    missing = true;
    return Json();
  }
  auto text = fs.read(path);
  if (!text) return std::move(text).error();
  try {
    return Json::parse(*text);
  } catch (const std::exception& e) {
    return Error::state(
        fmt::format("{} is damaged: {}", path, e.what()),
        "inspect it; remove it only after checking `pcipass status` against the devices' drivers");
  }
}

Result<PciAddress> address_from(const Json& j, const std::string& path) {
  auto a = parse_address(j.value("address", std::string()));
  if (!a) return Error::state(path + " names an invalid device: " + a.error().message);
  return *a;
}

Status ensure_dir(HostFs& fs) {
  return fs.make_dirs(kRunDir, 0700);
}

}  // namespace

Result<std::optional<Journal>> load_journal(const HostFs& fs) {
  bool missing;
  Json j = TRY(read_json(fs, kJournalPath, missing));
  if (missing) return std::optional<Journal>();
  try {
    Journal out;
    out.operation = j.at("operation").get<std::string>();
    out.driver = j.value("driver", std::string());
    out.owner = j.value("owner", std::string());
    out.pid = j.value("pid", 0);
    out.phase = j.value("phase", std::string("writing"));
    for (const auto& d : j.at("devices")) {
      JournalEntry e;
      e.address = TRY(address_from(d, kJournalPath));
      if (d.contains("iommu_group") && !d["iommu_group"].is_null())
        e.group = d["iommu_group"].get<int>();
      e.before = state_from(d.at("before"));
      e.after = state_from(d.at("after"));
      out.devices.push_back(std::move(e));
    }
    return std::optional<Journal>(std::move(out));
  } catch (const std::exception& e) {
    return Error::state(fmt::format("{} is damaged: {}", kJournalPath, e.what()),
                        "inspect it and restore the devices by hand, then remove it");
  }
}

Status save_journal(HostFs& fs, const Journal& j) {
  TRY(ensure_dir(fs));
  Json devs = Json::array();
  for (const auto& d : j.devices)
    devs.push_back({{"address", d.address.str()},
                    {"iommu_group", d.group ? Json(*d.group) : Json(nullptr)},
                    {"before", state_json(d.before)},
                    {"after", state_json(d.after)}});
  Json out{{"schema", "pcipass.journal/1"},
           {"operation", j.operation},
           {"driver", j.driver},
           {"owner", j.owner},
           {"pid", j.pid},
           {"phase", j.phase},
           {"devices", devs}};
  return fs.write_atomic(kJournalPath, out.dump(2) + "\n", 0600);
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
  bool missing;
  Json j = TRY(read_json(fs, kStatePath, missing));
  StateFile s;
  if (missing) return s;
  try {
    for (const auto& d : j.at("bindings")) {
      Binding b;
      b.address = TRY(address_from(d, kStatePath));
      if (d.contains("iommu_group") && !d["iommu_group"].is_null())
        b.group = d["iommu_group"].get<int>();
      b.driver = d.at("driver").get<std::string>();
      b.original = state_from(d.at("original"));
      b.owner = d.value("owner", std::string());
      s.put(std::move(b));
    }
  } catch (const std::exception& e) {
    return Error::state(fmt::format("{} is damaged: {}", kStatePath, e.what()),
                        "inspect it; `pcipass release` needs it to know the original drivers");
  }
  return s;
}

Status save_state(HostFs& fs, const StateFile& s) {
  TRY(ensure_dir(fs));
  Json list = Json::array();
  for (const auto& b : s.bindings)
    list.push_back({{"address", b.address.str()},
                    {"iommu_group", b.group ? Json(*b.group) : Json(nullptr)},
                    {"driver", b.driver},
                    {"original", state_json(b.original)},
                    {"owner", b.owner}});
  return fs.write_atomic(
      kStatePath, Json{{"schema", "pcipass.state/1"}, {"bindings", list}}.dump(2) + "\n", 0600);
}

}  // namespace pcipass::assign
