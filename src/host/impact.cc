#include "host/impact.h"

#include <fmt/format.h>

#include <set>
#include <sstream>

namespace pcipass {

std::optional<PciAddress> owning_pci_device(const std::string& sysfs_path) {
  std::optional<PciAddress> found;
  std::istringstream in(sysfs_path);
  std::string part;
  while (std::getline(in, part, '/'))
    if (auto a = parse_address(part); a.ok() && part == a->str()) found = *a;
  return found;
}

namespace {

std::vector<std::string> lines_of(const HostFs& fs, const std::string& path) {
  std::vector<std::string> out;
  auto text = fs.read(path, 8 << 20);
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

std::vector<std::string> fields(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  std::string f;
  while (in >> f) out.push_back(f);
  return out;
}

class Scanner {
 public:
  Scanner(const HostFs& fs, HostImpact& out) : fs_(fs), out_(out) {}

  void run() {
    scan_net();
    scan_mounts();
    scan_swaps();
    scan_md();
    scan_console();
  }

 private:
  std::optional<PciAddress> owner_of(const std::string& cls_path) {
    auto real = fs_.resolve(cls_path);
    return real ? owning_pci_device(*real) : std::nullopt;
  }

  // Every block device a (possibly stacked) block device rests on, itself included.
  void physical_blocks(const std::string& name, std::set<std::string>& seen, std::vector<std::string>& out) {
    if (!seen.insert(name).second) return;
    std::string dir = "/sys/class/block/" + name;
    auto slaves = fs_.list(dir + "/slaves");
    if (slaves && !slaves->empty()) {
      for (const auto& s : *slaves) physical_blocks(s, seen, out);
      return;
    }
    out.push_back(name);
  }

  void add_block_use(const std::string& block, HostUse use) {
    std::set<std::string> seen;
    std::vector<std::string> leaves;
    physical_blocks(block, seen, leaves);
    for (const auto& leaf : leaves)
      if (auto a = owner_of("/sys/class/block/" + leaf)) out_.add(*a, use);
  }

  void scan_net() {
    std::set<std::string> default_ifs;
    for (const auto& line : lines_of(fs_, "/proc/net/route")) {
      auto f = fields(line);
      if (f.size() > 7 && f[1] == "00000000" && f[7] == "00000000") default_ifs.insert(f[0]);
    }
    for (const auto& line : lines_of(fs_, "/proc/net/ipv6_route")) {
      auto f = fields(line);
      if (f.size() == 10 && f[0] == std::string(32, '0') && f[1] == "00" && f[9] != "lo")
        default_ifs.insert(f[9]);
    }
    for (const auto& ifname : fs_.list("/sys/class/net").value_or({})) {
      auto a = owner_of("/sys/class/net/" + ifname);
      if (!a) continue;
      std::string state = fs_.read_trimmed("/sys/class/net/" + ifname + "/operstate").value_or("unknown");
      out_.add(*a, {"net", ifname, fmt::format("network interface {} ({})", ifname, state), false});
      if (default_ifs.count(ifname))
        out_.add(*a, {"route", ifname, fmt::format("carries the default route ({})", ifname), true});
    }
  }

  void scan_mounts() {
    for (const auto& line : lines_of(fs_, "/proc/self/mountinfo")) {
      auto f = fields(line);
      if (f.size() < 5) continue;
      const std::string& majmin = f[2];
      const std::string& mountpoint = f[4];
      if (majmin.starts_with("0:")) continue;  // virtual filesystems
      auto real = fs_.resolve("/sys/dev/block/" + majmin);
      if (!real) continue;
      std::string block = base_name(*real);
      bool root = mountpoint == "/";
      std::string what = root ? fmt::format("holds the root filesystem (/ on {})", block)
                              : fmt::format("{} is mounted on {}", block, mountpoint);
      add_block_use(block, {root ? "root-fs" : "mount", mountpoint, what, true});
    }
  }

  void scan_swaps() {
    auto lines = lines_of(fs_, "/proc/swaps");
    for (size_t i = 1; i < lines.size(); ++i) {
      auto f = fields(lines[i]);
      if (f.empty() || !f[0].starts_with("/dev/")) continue;
      std::string block = base_name(f[0]);
      if (fs_.exists("/sys/class/block/" + block))
        add_block_use(block, {"swap", f[0], fmt::format("{} is in use as swap", f[0]), true});
    }
  }

  void scan_md() {
    for (const auto& line : lines_of(fs_, "/proc/mdstat")) {
      auto f = fields(line);
      if (f.size() < 4 || f[1] != ":" || f[2] != "active") continue;
      for (size_t i = 3; i < f.size(); ++i) {
        auto bracket = f[i].find('[');
        if (bracket == std::string::npos) continue;
        std::string member = f[i].substr(0, bracket);
        add_block_use(member, {"md", f[0], fmt::format("{} is a member of RAID array {}", member, f[0]), true});
      }
    }
  }

  void scan_console() {
    bool fbcon = false;
    for (const auto& vt : fs_.list("/sys/class/vtconsole").value_or({})) {
      std::string name = fs_.read_trimmed("/sys/class/vtconsole/" + vt + "/name").value_or("");
      if (name.find("frame buffer") != std::string::npos &&
          fs_.read_number("/sys/class/vtconsole/" + vt + "/bind").value_or(0) == 1)
        fbcon = true;
    }
    for (const auto& fb : fs_.list("/sys/class/graphics").value_or({})) {
      if (!fb.starts_with("fb")) continue;
      auto a = owner_of("/sys/class/graphics/" + fb);
      if (!a) continue;
      out_.add(*a, {"console", fb,
                    fbcon ? fmt::format("drives the framebuffer console ({})", fb)
                          : fmt::format("has framebuffer {}", fb),
                    fbcon});
    }
  }

  const HostFs& fs_;
  HostImpact& out_;
};

}  // namespace

HostImpact HostImpact::scan(const HostFs& fs, const Inventory& inv) {
  (void)inv;
  HostImpact impact;
  Scanner(fs, impact).run();
  return impact;
}

const std::vector<HostUse>& HostImpact::uses(const PciAddress& a) const {
  static const std::vector<HostUse> kNone;
  auto it = uses_.find(a);
  return it == uses_.end() ? kNone : it->second;
}

bool HostImpact::critical(const PciAddress& a) const { return !critical_reason(a).empty(); }

std::string HostImpact::critical_reason(const PciAddress& a) const {
  for (const auto& u : uses(a))
    if (u.critical) return u.detail;
  return {};
}

}  // namespace pcipass
