#include "sriov/vf_set.h"

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <charconv>

namespace pcipass::sriov {

namespace {

std::optional<int> decimal(const std::string& text, int max) {
  int n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n, 10);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < 0 || n > max)
    return std::nullopt;
  return n;
}

// What the user typed, quoted and cut short: a hostile argument stays one readable line.
std::string shown(const std::string& text) {
  std::string s;
  for (unsigned char ch : text.substr(0, 40)) s += ch < 0x20 || ch == 0x7f ? '?' : char(ch);
  return "'" + s + (text.size() > 40 ? "...'" : "'");
}

std::optional<int> int_attr(const HostFs& fs, const std::string& path) {
  auto v = fs.read_trimmed(path);
  if (!v) return std::nullopt;
  return decimal(*v, 0xffff);
}

// The PF's interface, after checking that it is a PF with a VF `index`.
Result<std::string> pf_interface(const HostFs& fs, const Inventory& inv, const PciAddress& pf,
                                 int index) {
  const Device* d = inv.find(pf);
  if (!d)
    return Error::not_found(fmt::format("no PCI device {} on this host", pf.str()),
                            "see `pcipass vf list`");
  std::string dir = change::device_dir(pf);
  auto num = int_attr(fs, dir + "/sriov_numvfs");
  if (!int_attr(fs, dir + "/sriov_totalvfs") || !num)
    return Error::invalid(
        fmt::format("{} is not an SR-IOV physical function (no sriov_totalvfs)", pf.str()),
        "`pcipass vf list` shows the devices that have VFs");
  auto listed = list_if_present(fs, dir + "/net");
  if (!listed)  // absent: no network driver, said below
    return Error::state(fmt::format("cannot list the network interfaces of {}: {}", pf.str(),
                                    listed.error().describe()),
                        "run pcipass as root");
  const auto& net = *listed;
  if (net.empty())
    return Error::refused(
        fmt::format("{} has no network interface: VF settings (MAC, VLAN, spoof check, trust) "
                    "are a NIC's, set through its PF's interface",
                    pf.str()),
        fmt::format("bind {} to its network driver first; a PF that is not a NIC has none of "
                    "these settings",
                    pf.str()));
  if (index >= *num)
    return Error::invalid(
        fmt::format("VF index {} is out of range: {} has {} VFs{}", index, pf.str(), *num,
                    *num ? fmt::format(" (0 to {})", *num - 1) : ""),
        fmt::format("see `pcipass vf list {}` for its VFs and their indexes", pf.str()));
  return net.front();
}

}  // namespace

Result<SetReport> set(HostFs& fs, const SetRequest& req, const assign::Environment& env) {
  if (req.settings.empty())
    return Error::invalid(fmt::format("nothing to set on VF {}", req.index),
                          "give one or more of --mac, --vlan, --spoofchk, --trust");
  SetReport rep;
  rep.index = req.index;
  rep.dry_run = req.dry_run;
  if (req.ifname) {
    rep.ifname = *req.ifname;
  } else {
    std::optional<Inventory> own;
    const Inventory* inv = req.inventory;
    if (!inv) {
      own = TRY(Inventory::scan(fs, nullptr));
      inv = &*own;
    }
    rep.ifname = TRY(pf_interface(fs, *inv, req.pf, req.index));
  }
  std::vector<change::Change> plan;
  for (const auto& s : req.settings)
    plan.push_back(change::Change::vf_link(rep.ifname, req.index, s));
  rep.steps = TRY(assign::apply_runtime(fs, plan, env, req.dry_run));
  for (const auto& c : plan)
    rep.settings.push_back({c.before.setting.value_or(c.setting), c.setting});
  return rep;
}

Result<std::string> parse_mac(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error::invalid(fmt::format("--mac {} {}", shown(text), why),
                          "give six hex bytes separated by colons, e.g. --mac 52:54:00:12:34:56");
  };
  if (text.size() != 17) return bad("is not a MAC address");
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    auto ch = static_cast<unsigned char>(text[i]);
    if (i % 3 == 2 ? ch != ':' : !std::isxdigit(ch)) return bad("is not a MAC address");
    out += static_cast<char>(std::tolower(ch));
  }
  // The group bit: a multicast address cannot be a port's own.
  if (std::stoi(out.substr(0, 2), nullptr, 16) & 1)
    return bad("is a multicast address, not one a VF can have (its first byte must be even)");
  return out;
}

Result<int> parse_vlan(const std::string& text) {
  auto v = decimal(text, 4095);
  if (!v)
    return Error::invalid(fmt::format("--vlan {} is not a VLAN ID", shown(text)),
                          "give a number from 1 to 4095, or 0 for no VLAN");
  return *v;
}

Result<int> parse_vf_index(const std::string& text) {
  auto v = decimal(text, 65535);
  if (!v)
    return Error::invalid(fmt::format("VF index {} is not a number from 0 to 65535", shown(text)),
                          "give the VF's index as `pcipass vf list` shows it (column VF)");
  return *v;
}

}  // namespace pcipass::sriov
