#include "desired/desired_file.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <functional>
#include <map>
#include <set>

#include "mdev/mdev.h"

namespace pcipass::desired {

namespace {

constexpr const char* kSee = " (docs/apply.md)";
constexpr size_t kMaxShown = 64;

// A value from the file as a message shows it: quoted, control bytes as '?', cut at 64 bytes
// (the file is untrusted; the CLI makes the message printable again on output).
std::string shown(const std::string& v) {
  std::string s;
  for (char c : v.substr(0, kMaxShown))
    s += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (v.size() > kMaxShown) s += "...";
  return "'" + s + "'";
}

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "empty";
    default:
      return "a value";
  }
}

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  Error error(const std::string& key, const std::string& what, const std::string& fix) const {
    return Error::invalid(fmt::format("{}: {}: {}", file_, key, what), fix + kSee);
  }

  Result<std::string> scalar(const YAML::Node& n, const std::string& key,
                             const std::string& fix) const {
    if (!n.IsScalar()) return error(key, fmt::format("is {}, not a value", node_kind(n)), fix);
    return n.Scalar();
  }

  Result<bool> boolean(const YAML::Node& n, const std::string& key) const {
    std::string v = TRY(scalar(n, key, "write true or false"));
    if (v == "true") return true;
    if (v == "false") return false;
    return error(key, fmt::format("{} is not true or false", shown(v)), "write true or false");
  }

  Result<int> number(const YAML::Node& n, const std::string& key, int min, int max) const {
    std::string fix = fmt::format("write a whole number from {} to {}", min, max);
    std::string v = TRY(scalar(n, key, fix));
    int out = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out, 10);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size() || out < min || out > max)
      return error(key, fmt::format("{} is not a number from {} to {}", shown(v), min, max), fix);
    return out;
  }

  // The keys of a mapping, each checked against `known`; `need` must all be there.
  Status keys(const YAML::Node& n, const std::string& key, const std::set<std::string>& known,
              const std::vector<std::string>& need, const std::string& fix) const {
    if (!n.IsMap()) return error(key, fmt::format("is {}, not a mapping", node_kind(n)), fix);
    std::set<std::string> seen;
    for (const auto& kv : n) {
      std::string k = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
      std::string path = key.empty() ? k : key + "." + k;
      if (!known.count(k))
        return error(path, fmt::format("unknown key {}", shown(k)),
                     fmt::format("the keys here are: {}", fmt::join(known, ", ")));
      if (!seen.insert(k).second) return error(path, "is given twice", "keep one of them");
    }
    for (const auto& k : need)
      if (!seen.count(k)) return error(key.empty() ? k : key + "." + k, "is missing", fix);
    return {};
  }

  Result<PciAddress> address(const YAML::Node& n, const std::string& key) const {
    std::string fix = "write a PCI address such as 0000:01:00.0 (see `pcipass list`)";
    std::string v = TRY(scalar(n, key, fix));
    auto a = parse_address(v);
    if (!a) return error(key, fmt::format("{} is not a PCI address", shown(v)), fix);
    return *a;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

// Each element of the list at `key` (absent: none), read by `one`.
Status each(const Reader& r, const YAML::Node& n, const std::string& key,
            const std::function<Status(const YAML::Node&, const std::string&)>& one) {
  if (!n) return {};
  if (n.IsNull()) return {};
  if (!n.IsSequence())
    return r.error(key, fmt::format("is {}, not a list", node_kind(n)),
                   fmt::format("write {} as a list of entries, each starting with '- '", key));
  for (size_t i = 0; i < n.size(); ++i) TRY(one(n[i], fmt::format("{}[{}]", key, i)));
  return {};
}

Status read_boot(const Reader& r, const YAML::Node& n, BootWant& out) {
  if (!n || n.IsNull()) return {};
  TRY(r.keys(n, "boot", {"iommu", "iommu_pt", "vfio_early"}, {},
             "write boot as a mapping of iommu, iommu_pt, vfio_early to true or false"));
  if (n["iommu"]) out.iommu = TRY(r.boolean(n["iommu"], "boot.iommu"));
  if (n["iommu_pt"]) out.iommu_pt = TRY(r.boolean(n["iommu_pt"], "boot.iommu_pt"));
  if (n["vfio_early"]) out.vfio_early = TRY(r.boolean(n["vfio_early"], "boot.vfio_early"));
  return {};
}

Result<DeviceWant> read_device(const Reader& r, const YAML::Node& n, const std::string& key) {
  std::string fix = "give each device an address, or an id (vendor:device) and a count";
  TRY(r.keys(n, key, {"address", "id", "count"}, {}, fix));
  DeviceWant d;
  d.key = key;
  if (n["address"] && n["id"])
    return r.error(key, "has both address and id", "keep one: an address, or an id with a count");
  if (n["address"]) {
    if (n["count"])
      return r.error(key + ".count", "goes with id, not address",
                     "drop count, or name the devices by id");
    d.address = TRY(r.address(n["address"], key + ".address"));
  } else if (n["id"]) {
    std::string idfix = "write vendor:device in hex, such as 10de:1b80 (see `pcipass list`)";
    std::string v = TRY(r.scalar(n["id"], key + ".id", idfix));
    auto colon = v.find(':');
    auto vendor = colon == std::string::npos ? std::nullopt : parse_hex(v.substr(0, colon), 4);
    auto device = colon == std::string::npos ? std::nullopt : parse_hex(v.substr(colon + 1), 4);
    if (!vendor || !device)
      return r.error(key + ".id", fmt::format("{} is not a vendor:device pair", shown(v)), idfix);
    d.vendor = static_cast<uint16_t>(*vendor), d.device = static_cast<uint16_t>(*device);
    if (n["count"]) d.count = TRY(r.number(n["count"], key + ".count", 1, 256));
  } else {
    return r.error(key + ".address", "is missing", fix);
  }
  return d;
}

Result<SriovWant> read_sriov(const Reader& r, const YAML::Node& n, const std::string& key) {
  TRY(r.keys(n, key, {"pf", "vfs", "bind"}, {"pf", "vfs"},
             "give each entry the PF's address (pf) and how many VFs it should have (vfs)"));
  SriovWant s;
  s.key = key;
  s.pf = TRY(r.address(n["pf"], key + ".pf"));
  s.vfs = TRY(r.number(n["vfs"], key + ".vfs", 1, 65535));
  if (n["bind"]) {
    std::string fix = "write bind: vfio-pci, or leave bind out to leave the VFs to the host";
    std::string v = TRY(r.scalar(n["bind"], key + ".bind", fix));
    if (v != "vfio-pci")
      return r.error(key + ".bind", fmt::format("{} is not vfio-pci", shown(v)), fix);
    s.bind = true;
  }
  return s;
}

Result<MdevWant> read_mdev(const Reader& r, const YAML::Node& n, const std::string& key) {
  TRY(r.keys(n, key, {"parent", "type", "uuid", "autostart"}, {"parent", "type", "uuid"},
             "give each mdev its parent, type and uuid (see `pcipass mdev types`)"));
  MdevWant m;
  m.key = key;
  std::string pfix = "write the parent as `pcipass mdev types` names it (0000:00:02.0, mtty)";
  std::string parent = TRY(r.scalar(n["parent"], key + ".parent", pfix));
  auto p = mdev::parse_parent(parent);
  if (!p)
    return r.error(key + ".parent", fmt::format("{} is not an mdev parent", shown(parent)), pfix);
  m.parent = *p;
  std::string tfix = "write a type as `pcipass mdev types` lists it (nvidia-63, mtty-2)";
  m.type = TRY(r.scalar(n["type"], key + ".type", tfix));
  std::string ufix =
      "write a UUID such as 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 (uuidgen makes one)";
  std::string uuid = TRY(r.scalar(n["uuid"], key + ".uuid", ufix));
  auto u = mdev::parse_uuid(uuid, key + ".uuid");
  if (!u) return r.error(key + ".uuid", fmt::format("{} is not a UUID", shown(uuid)), ufix);
  m.uuid = *u;
  if (n["autostart"]) m.autostart = TRY(r.boolean(n["autostart"], key + ".autostart"));
  return m;
}

// The same device twice, the same PF twice, the same UUID twice: a file that contradicts itself.
Status check_twice(const Reader& r, const State& s) {
  std::map<PciAddress, std::string> addresses;
  for (const auto& d : s.devices)
    if (d.address && !addresses.emplace(*d.address, d.key).second)
      return r.error(
          d.key + ".address",
          fmt::format("{} is named twice (also {})", d.address->str(), addresses[*d.address]),
          "name each device once");
  std::map<PciAddress, std::string> pfs;
  for (const auto& v : s.sriov)
    if (!pfs.emplace(v.pf, v.key).second)
      return r.error(v.key + ".pf",
                     fmt::format("{} is named twice (also {})", v.pf.str(), pfs[v.pf]),
                     "give each PF one entry");
  std::map<std::string, std::string> uuids;
  for (const auto& m : s.mdevs)
    if (!uuids.emplace(m.uuid, m.key).second)
      return r.error(m.key + ".uuid",
                     fmt::format("{} is named twice (also {})", m.uuid, uuids[m.uuid]),
                     "give each mdev its own UUID");
  return {};
}

Result<State> read_state(const Reader& r, const YAML::Node& root) {
  std::string fix = "start the file with `version: 1` (docs/apply.md shows a whole file)";
  if (!root.IsMap())
    return Error::invalid(
        fmt::format("{}: is {}, not a mapping of keys", r.file(), node_kind(root)), fix + kSee);
  TRY(r.keys(root, "", {"version", "boot", "devices", "sriov", "mdevs"}, {"version"}, fix));
  std::string v = TRY(r.scalar(root["version"], "version", fix));
  if (v != std::to_string(kVersion))
    return r.error(
        "version", fmt::format("{} is not a version this pcipass reads", shown(v)),
        fmt::format("write version: {} (this pcipass reads version {})", kVersion, kVersion));
  State s;
  TRY(read_boot(r, root["boot"], s.boot));
  TRY(each(r, root["devices"], "devices", [&](const YAML::Node& n, const std::string& k) -> Status {
    s.devices.push_back(TRY(read_device(r, n, k)));
    return {};
  }));
  TRY(each(r, root["sriov"], "sriov", [&](const YAML::Node& n, const std::string& k) -> Status {
    s.sriov.push_back(TRY(read_sriov(r, n, k)));
    return {};
  }));
  TRY(each(r, root["mdevs"], "mdevs", [&](const YAML::Node& n, const std::string& k) -> Status {
    s.mdevs.push_back(TRY(read_mdev(r, n, k)));
    return {};
  }));
  TRY(check_twice(r, s));
  return s;
}

}  // namespace

Result<State> parse_state(const std::string& text, const std::string& file) {
  Reader r(file);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // yaml-cpp counts lines and columns from 0.
    return Error::invalid(fmt::format("{}:{}:{}: not YAML or JSON: {}", file, e.mark.line + 1,
                                      e.mark.column + 1, e.msg),
                          std::string("fix the syntax there") + kSee);
  }
  try {
    return read_state(r, root);
  } catch (const YAML::Exception& e) {
    return Error::invalid(fmt::format("{}: not a desired-state file: {}", file, e.msg),
                          std::string("see the schema") + kSee);
  }
}

}  // namespace pcipass::desired
