#include "impact/impact.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <set>
#include <sstream>

namespace pcipass {

std::optional<PciAddress> owning_pci_device(const std::string& sysfs_path) {
  auto chain = addresses_in_path(sysfs_path);
  return chain.empty() ? std::nullopt : std::optional<PciAddress>(chain.back());
}

namespace {

// "0100A8C0" as /proc/net/route prints it (host byte order, little-endian) -> 192.168.0.1 as a
// number whose most significant byte is the first octet.
std::optional<uint32_t> route_hex(const std::string& s) {
  auto v = parse_hex(s, 8);
  if (!v || s.size() != 8) return std::nullopt;
  uint32_t x = *v;
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >> 8) & 0xff00) | (x >> 24);
}

std::optional<uint32_t> parse_ipv4(const std::string& s) {
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string ipv4_text(uint32_t v) {
  return fmt::format("{}.{}.{}.{}", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

// "fe800000000000000000000000000001" -> "fe80::1"
std::optional<std::string> ipv6_from_hex(const std::string& hex) {
  if (hex.size() != 32) return std::nullopt;
  in6_addr a{};
  for (size_t i = 0; i < 16; ++i) {
    auto b = parse_hex(hex.substr(i * 2, 2), 2);
    if (!b) return std::nullopt;
    a.s6_addr[i] = static_cast<uint8_t>(*b);
  }
  char buf[INET6_ADDRSTRLEN];
  if (!::inet_ntop(AF_INET6, &a, buf, sizeof buf)) return std::nullopt;
  return std::string(buf);
}

// /proc/net/tcp6 prints each 32-bit word in host (little-endian) order.
std::optional<std::string> ipv6_from_proc_hex(const std::string& hex) {
  if (hex.size() != 32) return std::nullopt;
  std::string fixed;
  for (size_t w = 0; w < 4; ++w)
    for (int b = 3; b >= 0; --b) fixed += hex.substr(w * 8 + static_cast<size_t>(b) * 2, 2);
  return ipv6_from_hex(fixed);
}

std::string normalize_ip(std::string ip) {
  if (ip.starts_with("::ffff:") && ip.find('.') != std::string::npos) ip = ip.substr(7);
  in6_addr a{};
  if (ip.find(':') != std::string::npos && ::inet_pton(AF_INET6, ip.c_str(), &a) == 1) {
    char buf[INET6_ADDRSTRLEN];
    if (::inet_ntop(AF_INET6, &a, buf, sizeof buf)) return buf;
  }
  return ip;
}

std::string before_slash(const std::string& s) {
  return s.substr(0, s.find('/'));
}

class Scanner {
 public:
  Scanner(const HostFs& fs, HostImpact& out, const ImpactOptions& opt)
      : fs_(fs), out_(out), opt_(opt) {}

  void run() {
    scan_net();
    scan_mounts();
    scan_swaps();
    scan_md();
    scan_console();
    if (opt_.processes) scan_processes();
  }

 private:
  // A file's lines and a directory's entries. One that is not there has none (no IPv6 routes, no
  // md driver, a captured tree without it); any other error is a problem of the scan: what the
  // host uses a device for is then unknown, not nothing (plan refuses unless forced).
  std::vector<std::string> lines(const std::string& path) {
    std::vector<std::string> out;
    auto text = fs_.read(path, 8 << 20);
    if (!text) {
      note(text.error());
      return out;
    }
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  std::vector<std::string> entries(const std::string& dir) {
    auto names = fs_.list(dir);
    if (!names) {
      note(names.error());
      return {};
    }
    return std::move(*names);
  }
  // A one-line attribute (a bond's slaves, a console's name): "" when absent, as lines() does.
  std::string text(const std::string& path) {
    auto t = fs_.read_value(path);
    if (!t) {
      note(t.error());
      return {};
    }
    return t->value_or("");
  }
  // Once each: a directory such as /sys/class/block is listed once per mapped mount.
  void note(const Error& e) {
    if (e.err == ENOENT) return;
    std::string p = e.describe();
    const auto& known = out_.problems();
    if (std::find(known.begin(), known.end(), p) == known.end()) out_.add_problem(std::move(p));
  }

  std::optional<PciAddress> owner_of(const std::string& cls_path) {
    auto real = fs_.resolve(cls_path);
    return real ? owning_pci_device(*real) : std::nullopt;
  }

  // Every block device a (possibly stacked) block device rests on, itself included.
  void physical_blocks(const std::string& name, std::set<std::string>& seen,
                       std::vector<std::string>& out) {
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

  // Interfaces below `upper`, recursively: bridge ports, bond slaves, a VLAN's parent.
  std::set<std::string> lower_interfaces(const std::string& upper) {
    std::set<std::string> out;
    std::vector<std::string> todo{upper};
    while (!todo.empty()) {
      std::string cur = todo.back();
      todo.pop_back();
      std::string dir = "/sys/class/net/" + cur;
      std::vector<std::string> next;
      for (const auto& e : entries(dir))
        if (e.starts_with("lower_")) next.push_back(e.substr(6));
      for (const auto& e : entries(dir + "/brif")) next.push_back(e);
      std::istringstream slaves(text(dir + "/bonding/slaves"));
      for (std::string s; slaves >> s;) next.push_back(s);
      for (auto& n : next)
        if (n != upper && out.insert(n).second) todo.push_back(n);
    }
    return out;
  }

  void scan_net() {
    std::set<std::string> default_ifs;
    const auto ipv4_routes = lines("/proc/net/route");
    for (const auto& line : ipv4_routes) {
      auto f = split_words(line);
      if (f.size() > 7 && f[1] == "00000000" && f[7] == "00000000") default_ifs.insert(f[0]);
    }
    for (const auto& line : lines("/proc/net/ipv6_route")) {
      auto f = split_words(line);
      if (f.size() == 10 && f[0] == std::string(32, '0') && f[1] == "00" && f[9] != "lo")
        default_ifs.insert(f[9]);
    }
    auto addresses = interface_addresses(ipv4_routes);
    auto ssh = ssh_interfaces(addresses);
    // A bridge, bond or VLAN carrying the route or the SSH session passes it to the NICs below.
    std::map<std::string, std::string> via;
    for (const auto& upper : default_ifs)
      for (const auto& lower : lower_interfaces(upper)) via.emplace(lower, upper);
    for (const auto& [ifname, name] : via) default_ifs.insert(ifname);
    std::map<std::string, std::string> ssh_lowers;
    for (const auto& [upper, text] : ssh)
      for (const auto& lower : lower_interfaces(upper))
        ssh_lowers.emplace(lower, text + " (through " + upper + ")");
    ssh.insert(ssh_lowers.begin(), ssh_lowers.end());
    for (const auto& ifname : entries("/sys/class/net")) {
      auto a = owner_of("/sys/class/net/" + ifname);
      if (!a) continue;
      std::string state =
          fs_.read_trimmed("/sys/class/net/" + ifname + "/operstate").value_or("unknown");
      HostUse net{UseKind::kNet,
                  ifname,
                  fmt::format("network interface {} ({})", ifname, state),
                  false,
                  {}};
      if (auto it = addresses.find(ifname); it != addresses.end()) net.addresses = it->second;
      out_.add(*a, std::move(net));
      if (default_ifs.count(ifname))
        out_.add(*a, {UseKind::kRoute,
                      ifname,
                      via.count(ifname) ? fmt::format("carries the default route ({} under {})",
                                                      ifname, via[ifname])
                                        : fmt::format("carries the default route ({})", ifname),
                      true,
                      {}});
      if (auto it = ssh.find(ifname); it != ssh.end())
        out_.add(*a, {UseKind::kSsh, ifname, it->second, true, {}});
    }
  }

  // IPv4 addresses from /proc/net/fib_trie (local /32 entries) matched to the interface whose link
  // route covers them (/proc/net/route); IPv6 addresses from /proc/net/if_inet6.
  std::map<std::string, std::vector<std::string>> interface_addresses(
      const std::vector<std::string>& ipv4_routes) {
    std::map<std::string, std::vector<std::string>> out;
    struct LinkRoute {
      std::string ifname;
      uint32_t dest, mask;
    };
    std::vector<LinkRoute> routes;
    for (const auto& line : ipv4_routes) {
      auto f = split_words(line);
      if (f.size() < 8 || f[0] == "Iface") continue;
      auto dest = route_hex(f[1]), gw = route_hex(f[2]), mask = route_hex(f[7]);
      if (dest && gw && mask && *gw == 0 && *mask != 0) routes.push_back({f[0], *dest, *mask});
    }
    std::set<uint32_t> local;
    std::string last;
    for (const auto& line : lines("/proc/net/fib_trie")) {
      auto f = split_words(line);
      if (f.size() == 2 && f[0] == "|--")
        last = f[1];
      else if (f.size() >= 3 && f[0] == "/32" && f[1] == "host" && f[2] == "LOCAL" && !last.empty())
        if (auto ip = parse_ipv4(last)) local.insert(*ip);
    }
    for (uint32_t ip : local) {
      const LinkRoute* best = nullptr;
      for (const auto& r : routes)
        if ((ip & r.mask) == r.dest && (!best || r.mask > best->mask)) best = &r;
      if (!best) continue;
      auto& v = out[best->ifname];
      std::string text = fmt::format("{}/{}", ipv4_text(ip), __builtin_popcount(best->mask));
      if (std::find(v.begin(), v.end(), text) == v.end()) v.push_back(text);
    }
    for (const auto& line : lines("/proc/net/if_inet6")) {
      auto f = split_words(line);
      if (f.size() < 6) continue;
      auto ip = ipv6_from_hex(f[0]);
      auto len = parse_hex(f[2], 2);
      if (ip && len) out[f[5]].push_back(fmt::format("{}/{}", *ip, *len));
    }
    return out;
  }

  // Interfaces carrying SSH: the session in use (SSH_CONNECTION's server address) and any
  // established connection to local port 22 (/proc/net/tcp, /proc/net/tcp6).
  std::map<std::string, std::string> ssh_interfaces(
      const std::map<std::string, std::vector<std::string>>& addrs) {
    std::map<std::string, std::string> out;
    auto iface_of = [&](const std::string& ip) -> std::string {
      std::string want = normalize_ip(ip);
      for (const auto& [ifname, list] : addrs)
        for (const auto& a : list)
          if (normalize_ip(before_slash(a)) == want) return ifname;
      return {};
    };
    const std::optional<std::string>& conn = opt_.ssh_connection;
    if (conn) {
      auto f = split_words(*conn);
      if (f.size() == 4) {
        std::string ifname = iface_of(f[2]);
        if (!ifname.empty())
          out[ifname] = fmt::format("carries the SSH session in use ({} from {})", ifname,
                                    normalize_ip(f[0]));
      }
    }
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
      for (const auto& line : lines(table)) {
        auto f = split_words(line);
        if (f.size() < 4 || f[3] != "01") continue;  // ESTABLISHED
        auto colon = f[1].find(':'), rcolon = f[2].find(':');
        if (colon == std::string::npos || rcolon == std::string::npos) continue;
        if (f[1].substr(colon + 1) != "0016") continue;  // local port 22
        std::string lhex = f[1].substr(0, colon), rhex = f[2].substr(0, rcolon);
        std::optional<std::string> local, remote;
        if (lhex.size() == 8) {
          auto l = route_hex(lhex), r = route_hex(rhex);
          if (l) local = ipv4_text(*l);
          if (r) remote = ipv4_text(*r);
        } else {
          local = ipv6_from_proc_hex(lhex);
          remote = ipv6_from_proc_hex(rhex);
        }
        if (!local) continue;
        std::string ifname = iface_of(*local);
        if (!ifname.empty() && !out.count(ifname))
          out[ifname] = fmt::format("carries an SSH connection ({} from {})", ifname,
                                    remote ? normalize_ip(*remote) : std::string("?"));
      }
    }
    return out;
  }

  void scan_processes() {
    size_t hidden = 0;
    auto holds = find_holders(
        fs_,
        [](const std::string& t) {
          return t.starts_with("/dev/vfio/") || t.starts_with("/dev/dri/") ||
                 t.starts_with("/sys/devices/");
        },
        &hidden);
    out_.set_hidden_processes(hidden);
    if (!holds) return note(holds.error());
    for (const auto& h : *holds) {
      std::vector<PciAddress> devs;
      if (h.path.starts_with("/dev/vfio/")) {
        std::string group = h.path.substr(10);
        for (const auto& n : entries("/sys/kernel/iommu_groups/" + group + "/devices"))
          if (auto a = parse_address(n)) devs.push_back(*a);
      } else if (h.path.starts_with("/dev/dri/")) {
        if (auto a = owner_of("/sys/class/drm/" + base_name(h.path) + "/device"))
          devs.push_back(*a);
      } else if (auto a = owning_pci_device(h.path)) {
        devs.push_back(*a);
      }
      for (const auto& a : devs)
        out_.add(a, {UseKind::kProcess,
                     std::to_string(h.pid),
                     fmt::format("in use by {} (pid {}) through {}", h.comm, h.pid, h.path),
                     false,
                     {}});
    }
  }

  // The block device a mountinfo line is on: its major:minor, or for filesystems that report
  // an anonymous device (btrfs: 0:30) the mount source, /dev/mapper names included.
  std::optional<std::string> mounted_block(const std::vector<std::string>& f) {
    if (!f[2].starts_with("0:"))
      if (auto real = fs_.resolve("/sys/dev/block/" + f[2])) return base_name(*real);
    auto dash = std::find(f.begin() + 5, f.end(), "-");
    if (dash == f.end() || dash + 2 >= f.end()) return std::nullopt;
    const std::string& source = *(dash + 2);
    if (!source.starts_with("/dev/")) return std::nullopt;
    if (source.starts_with("/dev/mapper/")) {
      std::string name = source.substr(12);
      for (const auto& b : entries("/sys/class/block"))
        if (b.starts_with("dm-") && fs_.read_trimmed("/sys/class/block/" + b + "/dm/name") == name)
          return b;
      return std::nullopt;
    }
    std::string block = base_name(source);
    return fs_.exists("/sys/class/block/" + block) ? std::optional<std::string>(block)
                                                   : std::nullopt;
  }

  void scan_mounts() {
    for (const auto& line : lines("/proc/self/mountinfo")) {
      auto f = split_words(line);
      if (f.size() < 5) continue;
      const std::string& mountpoint = f[4];
      auto block = mounted_block(f);
      if (!block) continue;
      bool root = mountpoint == "/";
      std::string what = root ? fmt::format("holds the root filesystem (/ on {})", *block)
                              : fmt::format("{} is mounted on {}", *block, mountpoint);
      add_block_use(*block,
                    {root ? UseKind::kRootFs : UseKind::kMount, mountpoint, what, true, {}});
    }
  }

  void scan_swaps() {
    auto swaps = lines("/proc/swaps");
    for (size_t i = 1; i < swaps.size(); ++i) {
      auto f = split_words(swaps[i]);
      if (f.empty() || !f[0].starts_with("/dev/")) continue;
      std::string block = base_name(f[0]);
      if (fs_.exists("/sys/class/block/" + block))
        add_block_use(block,
                      {UseKind::kSwap, f[0], fmt::format("{} is in use as swap", f[0]), true});
    }
  }

  void scan_md() {
    for (const auto& line : lines("/proc/mdstat")) {
      auto f = split_words(line);
      if (f.size() < 4 || f[1] != ":" || f[2] != "active") continue;
      for (size_t i = 3; i < f.size(); ++i) {
        auto bracket = f[i].find('[');
        if (bracket == std::string::npos) continue;
        std::string member = f[i].substr(0, bracket);
        add_block_use(member, {UseKind::kMd, f[0],
                               fmt::format("{} is a member of RAID array {}", member, f[0]), true});
      }
    }
  }

  void scan_console() {
    bool fbcon = false;
    for (const auto& vt : entries("/sys/class/vtconsole")) {
      std::string dir = "/sys/class/vtconsole/" + vt;
      if (text(dir + "/name").find("frame buffer") != std::string::npos &&
          text(dir + "/bind") == "1")
        fbcon = true;
    }
    for (const auto& fb : entries("/sys/class/graphics")) {
      if (!fb.starts_with("fb")) continue;
      auto a = owner_of("/sys/class/graphics/" + fb);
      if (!a) continue;
      out_.add(*a, {UseKind::kConsole, fb,
                    fbcon ? fmt::format("drives the framebuffer console ({})", fb)
                          : fmt::format("has framebuffer {}", fb),
                    fbcon});
    }
  }

  const HostFs& fs_;
  HostImpact& out_;
  const ImpactOptions& opt_;
};

}  // namespace

Result<std::vector<ProcessHold>> find_holders(const HostFs& fs,
                                              const std::function<bool(const std::string&)>& match,
                                              size_t* hidden) {
  std::vector<ProcessHold> out;
  auto pids = list_if_present(fs, "/proc");
  if (!pids) return std::move(pids).error();
  for (const auto& pid : *pids) {
    // Process directories are named by a pid up to 2^22 (pid_max); other names are not processes.
    int pid_number = 0;
    auto [end, ec] = std::from_chars(pid.data(), pid.data() + pid.size(), pid_number, 10);
    if (pid.empty() || ec != std::errc() || end != pid.data() + pid.size() || pid_number <= 0)
      continue;
    std::string fd_dir = "/proc/" + pid + "/fd";
    auto fds = fs.list(fd_dir);
    if (!fds) {  // gone since listed (ENOENT), or another user's (EACCES)
      if (hidden && (fds.error().err == EACCES || fds.error().err == EPERM)) ++*hidden;
      continue;
    }
    std::set<std::string> seen;
    for (const auto& fd : *fds) {
      auto target = fs.read_link(fd_dir + "/" + fd);
      if (!target || !match(*target) || !seen.insert(*target).second) continue;
      out.push_back({pid_number, fs.read_trimmed("/proc/" + pid + "/comm").value_or("?"), *target});
    }
  }
  std::sort(out.begin(), out.end(), [](const ProcessHold& a, const ProcessHold& b) {
    return a.pid != b.pid ? a.pid < b.pid : a.path < b.path;
  });
  return out;
}

ImpactOptions ImpactOptions::for_process(const ProcessContext& process) {
  ImpactOptions o;
  if (process.live) o.ssh_connection = process.env("SSH_CONNECTION");
  return o;
}

HostImpact HostImpact::scan(const HostFs& fs, const Inventory& inv) {
  return scan(fs, inv, ImpactOptions{});
}

HostImpact HostImpact::scan(const HostFs& fs, const Inventory& inv, const ImpactOptions& options) {
  (void)inv;
  HostImpact impact;
  Scanner(fs, impact, options).run();
  return impact;
}

const char* use_kind_id(UseKind k) {
  switch (k) {
    case UseKind::kNet:
      return "net";
    case UseKind::kRoute:
      return "route";
    case UseKind::kSsh:
      return "ssh";
    case UseKind::kMount:
      return "mount";
    case UseKind::kRootFs:
      return "root-fs";
    case UseKind::kSwap:
      return "swap";
    case UseKind::kMd:
      return "md";
    case UseKind::kConsole:
      return "console";
    case UseKind::kProcess:
      return "process";
  }
  return "?";
}

const std::vector<HostUse>& HostImpact::uses(const PciAddress& a) const {
  static const std::vector<HostUse> kNone;
  auto it = uses_.find(a);
  return it == uses_.end() ? kNone : it->second;
}

bool HostImpact::critical(const PciAddress& a) const {
  return !critical_reason(a).empty();
}

std::string HostImpact::critical_reason(const PciAddress& a) const {
  for (const auto& u : uses(a))
    if (u.critical) return u.detail;
  return {};
}

}  // namespace pcipass
