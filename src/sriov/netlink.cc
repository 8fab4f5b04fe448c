#include "sriov/netlink.h"

#include <fmt/format.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "sriov/mnl_lib.h"

namespace pcipass::sriov {

namespace {

// The bytes of one netlink attribute or message: its type and its payload.
struct Item {
  uint16_t type = 0;
  std::span<const uint8_t> payload;
};

uint32_t u32_at(std::span<const uint8_t> b, size_t off) {
  uint32_t v = 0;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

Error malformed(const std::string& ifname, const std::string& what) {
  return Error::state(
      fmt::format("the kernel's netlink reply for {} is malformed: {}", ifname, what),
      "report it with `uname -r` and the NIC's driver (`ethtool -i`)");
}

// The attributes in `b`, each length checked: one shorter than its header or longer than what
// is left is an error, so nothing is read past the buffer and every step moves forward.
Result<std::vector<Item>> attributes(std::span<const uint8_t> b, const std::string& ifname) {
  std::vector<Item> out;
  size_t off = 0;
  while (b.size() - off >= NLA_HDRLEN) {
    uint16_t len = 0, type = 0;
    std::memcpy(&len, b.data() + off, 2);
    std::memcpy(&type, b.data() + off + 2, 2);
    if (len < NLA_HDRLEN || len > b.size() - off)
      return malformed(
          ifname, fmt::format("an attribute of {} bytes at offset {} of {}", len, off, b.size()));
    out.push_back({static_cast<uint16_t>(type & NLA_TYPE_MASK),
                   b.subspan(off + NLA_HDRLEN, len - NLA_HDRLEN)});
    off += std::min<size_t>(NLA_ALIGN(len), b.size() - off);
  }
  return out;
}

// The messages in a reply, each length checked likewise.
Result<std::vector<Item>> messages(std::span<const uint8_t> b, const std::string& ifname) {
  std::vector<Item> out;
  size_t off = 0;
  while (b.size() - off >= NLMSG_HDRLEN) {
    uint32_t len = u32_at(b, off);
    uint16_t type = 0;
    std::memcpy(&type, b.data() + off + 4, 2);
    if (len < NLMSG_HDRLEN || len > b.size() - off)
      return malformed(ifname,
                       fmt::format("a message of {} bytes at offset {} of {}", len, off, b.size()));
    out.push_back({type, b.subspan(off + NLMSG_HDRLEN, len - NLMSG_HDRLEN)});
    off += std::min<size_t>(NLMSG_ALIGN(len), b.size() - off);
  }
  if (off != b.size()) return malformed(ifname, "a truncated message header");
  return out;
}

// NLMSG_ERROR's payload: 0 (an ack) or the error, as an Error.
Status netlink_error(std::span<const uint8_t> payload, const std::string& what) {
  if (payload.size() < sizeof(int32_t)) return malformed(what, "an error message without its code");
  int32_t code = 0;
  std::memcpy(&code, payload.data(), sizeof code);
  if (code == 0) return {};
  int err = code < 0 && code > -4096 ? -code : EPROTO;
  Error e;
  e.message = fmt::format("netlink refused {}: {}", what, std::strerror(err));
  e.err = err;
  if (err == EPERM || err == EACCES)
    e.fix = "changing a VF's settings needs CAP_NET_ADMIN: run pcipass as root";
  else if (err == EOPNOTSUPP)
    e.fix = "the PF's driver does not support this VF setting";
  else if (err == ENODEV)
    e.fix = "check the interface name (`ip link`)";
  else
    e.fix = "the kernel log (`dmesg`) may have the driver's reason";
  return e;
}

// A VF's structs all begin with the VF's index (struct ifla_vf_mac, _vlan, _spoofchk, _trust).
Result<uint32_t> vf_struct(const Item& a, size_t size, const std::string& ifname,
                           const char* name) {
  if (a.payload.size() < size)
    return malformed(ifname, fmt::format("{} of {} bytes, not {}", name, a.payload.size(), size));
  uint32_t vf = u32_at(a.payload, 0);
  if (vf > 65535) return malformed(ifname, fmt::format("{} for VF {}", name, vf));
  return vf;
}

// -1 (what the kernel reports when the driver does not say) as nullopt.
std::optional<bool> setting(uint32_t v) {
  if (v == UINT32_MAX) return std::nullopt;
  return v != 0;
}

std::string mac_text(std::span<const uint8_t> b) {
  std::string s;
  for (size_t i = 0; i < b.size(); ++i) s += fmt::format("{}{:02x}", i ? ":" : "", b[i]);
  return s;
}

Status vlan_into(VfLink& l, uint32_t vlan, uint32_t qos, const std::string& ifname) {
  if (vlan > 4095 || qos > 7)
    return malformed(ifname, fmt::format("VLAN {} QoS {} for VF {}", vlan, qos, l.index));
  l.vlan = static_cast<int>(vlan), l.qos = static_cast<int>(qos);
  return {};
}

// One IFLA_VF_INFO. `mac_len`: the link's address length (IFLA_ADDRESS), 6 when not given.
Result<VfLink> vf_info(std::span<const uint8_t> b, size_t mac_len, const std::string& ifname) {
  VfLink l;
  std::optional<uint32_t> index;
  bool vlan_seen = false;
  auto same_vf = [&](uint32_t vf, const char* name) -> Status {
    if (index && *index != vf)
      return malformed(ifname, fmt::format("{} for VF {} inside VF {}'s info", name, vf, *index));
    index = vf;
    l.index = static_cast<int>(vf);
    return {};
  };
  for (const auto& a : TRY(attributes(b, ifname))) {
    switch (a.type) {
      case IFLA_VF_MAC: {
        TRY(same_vf(TRY(vf_struct(a, sizeof(ifla_vf_mac), ifname, "IFLA_VF_MAC")), "IFLA_VF_MAC"));
        l.mac = mac_text(a.payload.subspan(offsetof(ifla_vf_mac, mac), mac_len));
        break;
      }
      case IFLA_VF_VLAN: {
        TRY(same_vf(TRY(vf_struct(a, sizeof(ifla_vf_vlan), ifname, "IFLA_VF_VLAN")),
                    "IFLA_VF_VLAN"));
        TRY(vlan_into(l, u32_at(a.payload, 4), u32_at(a.payload, 8), ifname));
        vlan_seen = true;
        break;
      }
      case IFLA_VF_VLAN_LIST:
        // The 802.1ad form (a list with the protocol); IFLA_VF_VLAN, when present, says the same.
        for (const auto& v : TRY(attributes(a.payload, ifname))) {
          if (v.type != IFLA_VF_VLAN_INFO || vlan_seen) continue;
          TRY(same_vf(TRY(vf_struct(v, sizeof(ifla_vf_vlan_info), ifname, "IFLA_VF_VLAN_INFO")),
                      "IFLA_VF_VLAN_INFO"));
          TRY(vlan_into(l, u32_at(v.payload, 4), u32_at(v.payload, 8), ifname));
          vlan_seen = true;
        }
        break;
      case IFLA_VF_SPOOFCHK:
        TRY(same_vf(TRY(vf_struct(a, sizeof(ifla_vf_spoofchk), ifname, "IFLA_VF_SPOOFCHK")),
                    "IFLA_VF_SPOOFCHK"));
        l.spoofchk = setting(u32_at(a.payload, 4));
        break;
      case IFLA_VF_TRUST:
        TRY(same_vf(TRY(vf_struct(a, sizeof(ifla_vf_trust), ifname, "IFLA_VF_TRUST")),
                    "IFLA_VF_TRUST"));
        l.trust = setting(u32_at(a.payload, 4));
        break;
      default:
        break;  // rate, link state, statistics: not shown
    }
  }
  if (!index) return malformed(ifname, "a VF's info without its index");
  return l;
}

// The VFs of one RTM_NEWLINK message's payload (struct ifinfomsg, then attributes).
Status link_message(std::span<const uint8_t> payload, const std::string& ifname,
                    std::vector<VfLink>& out) {
  size_t head = NLMSG_ALIGN(sizeof(ifinfomsg));
  if (payload.size() < head) return malformed(ifname, "an RTM_NEWLINK without its ifinfomsg");
  auto attrs = TRY(attributes(payload.subspan(head), ifname));
  size_t mac_len = 6;
  for (const auto& a : attrs)
    if (a.type == IFLA_ADDRESS && !a.payload.empty() && a.payload.size() <= 32)
      mac_len = a.payload.size();
  for (const auto& a : attrs) {
    if (a.type != IFLA_VFINFO_LIST) continue;
    for (const auto& v : TRY(attributes(a.payload, ifname)))
      if (v.type == IFLA_VF_INFO) out.push_back(TRY(vf_info(v.payload, mac_len, ifname)));
  }
  return {};
}

}  // namespace

Result<std::vector<VfLink>> parse_vf_links(std::span<const uint8_t> reply,
                                           const std::string& ifname) {
  std::vector<VfLink> out;
  bool link = false;
  for (const auto& m : TRY(messages(reply, ifname))) {
    if (m.type == NLMSG_ERROR) {
      TRY(netlink_error(m.payload, "reading " + ifname + "'s VFs"));
    } else if (m.type == RTM_NEWLINK) {
      TRY(link_message(m.payload, ifname, out));
      link = true;
    }
  }
  if (!link) return malformed(ifname, "no RTM_NEWLINK message");
  std::sort(out.begin(), out.end(),
            [](const VfLink& x, const VfLink& y) { return x.index < y.index; });
  return out;
}

Status parse_ack(std::span<const uint8_t> reply, const std::string& what) {
  for (const auto& m : TRY(messages(reply, what)))
    if (m.type == NLMSG_ERROR) return netlink_error(m.payload, what);
  return malformed(what, "no acknowledgement");
}

Result<change::VfSetting> setting_of(const std::vector<VfLink>& links, const std::string& ifname,
                                     int vf, change::VfField field) {
  const VfLink* l = nullptr;
  for (const auto& x : links)
    if (x.index == vf) l = &x;
  if (!l)
    return Error::not_found(
        fmt::format("{} has no VF {} ({} VFs)", ifname, vf, links.size()),
        fmt::format("see `pcipass vf list` for {}'s VFs and their indexes", ifname));
  change::VfSetting s;
  s.field = field;
  std::optional<bool> flag;
  switch (field) {
    case change::VfField::kMac:
      s.mac = l->mac;
      return s;
    case change::VfField::kVlan:
      s.vlan = l->vlan, s.qos = l->qos;
      return s;
    case change::VfField::kSpoofchk:
      flag = l->spoofchk;
      break;
    case change::VfField::kTrust:
      flag = l->trust;
      break;
  }
  if (!flag)
    return Error::state(fmt::format("{}'s driver does not report VF {}'s {}", ifname, vf,
                                    change::vf_field_name(field)),
                        "pcipass changes only what it can put back; set it with `ip link set`");
  s.on = *flag;
  return s;
}

namespace {

constexpr size_t kReplyBytes = 1 << 20;  // room for hundreds of VFs with their statistics

// One request and its reply on a fresh NETLINK_ROUTE socket.
class Socket {
 public:
  static Result<Socket> open(const MnlLib& lib, const std::string& what) {
    mnl_socket* s = lib.mnl_socket_open(NETLINK_ROUTE);
    if (!s) return Error::io("netlink socket for " + what, "NETLINK_ROUTE", errno);
    Socket out(lib, s);
    if (lib.mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0)
      return Error::io("netlink bind for " + what, "NETLINK_ROUTE", errno);
    return out;
  }
  Socket(Socket&& o) noexcept : lib_(o.lib_), s_(o.s_) { o.s_ = nullptr; }
  Socket& operator=(Socket&&) = delete;
  ~Socket() {
    if (s_) lib_.mnl_socket_close(s_);
  }
  Result<std::vector<uint8_t>> exchange(const nlmsghdr* req, const std::string& what) {
    if (lib_.mnl_socket_sendto(s_, req, req->nlmsg_len) < 0)
      return Error::io("netlink send for " + what, "NETLINK_ROUTE", errno);
    std::vector<uint8_t> buf(kReplyBytes);
    ssize_t n = lib_.mnl_socket_recvfrom(s_, buf.data(), buf.size());
    if (n < 0) return Error::io("netlink receive for " + what, "NETLINK_ROUTE", errno);
    buf.resize(static_cast<size_t>(n));
    return buf;
  }

 private:
  Socket(const MnlLib& lib, mnl_socket* s) : lib_(lib), s_(s) {}
  const MnlLib& lib_;
  mnl_socket* s_;
};

// A request for `ifname`: the header, an ifinfomsg naming no index, and IFLA_IFNAME.
nlmsghdr* link_request(const MnlLib& lib, std::vector<char>& buf, uint16_t type, uint16_t flags,
                       const std::string& ifname) {
  nlmsghdr* nlh = lib.mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  static uint32_t seq = 0;  // one request per socket: any number tells the replies apart
  nlh->nlmsg_seq = ++seq;
  auto* ifm = static_cast<ifinfomsg*>(lib.mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  lib.mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname.c_str());
  return nlh;
}

Status check_ifname(const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= 16 || ifname.find('/') != std::string::npos)
    return Error::invalid(fmt::format("'{}' is not a network interface name", ifname),
                          "name the PF's interface as `ip link` shows it");
  return {};
}

// The MAC's bytes; `text` was checked by the caller (sriov::parse_mac).
void put_mac(const std::string& text, uint8_t* out) {
  for (size_t i = 0; i < 6 && i * 3 + 1 < text.size(); ++i)
    out[i] = static_cast<uint8_t>(std::stoi(text.substr(i * 3, 2), nullptr, 16));
}

void put_setting(const MnlLib& lib, nlmsghdr* nlh, int vf, const change::VfSetting& s) {
  auto index = static_cast<uint32_t>(vf);
  switch (s.field) {
    case change::VfField::kMac: {
      ifla_vf_mac m{};
      m.vf = index;
      put_mac(s.mac, m.mac);
      lib.mnl_attr_put(nlh, IFLA_VF_MAC, sizeof m, &m);
      return;
    }
    case change::VfField::kVlan: {
      ifla_vf_vlan v{index, static_cast<uint32_t>(s.vlan), static_cast<uint32_t>(s.qos)};
      lib.mnl_attr_put(nlh, IFLA_VF_VLAN, sizeof v, &v);
      return;
    }
    case change::VfField::kSpoofchk: {
      ifla_vf_spoofchk v{index, s.on ? 1u : 0u};
      lib.mnl_attr_put(nlh, IFLA_VF_SPOOFCHK, sizeof v, &v);
      return;
    }
    case change::VfField::kTrust: {
      ifla_vf_trust v{index, s.on ? 1u : 0u};
      lib.mnl_attr_put(nlh, IFLA_VF_TRUST, sizeof v, &v);
      return;
    }
  }
}

}  // namespace

Result<std::vector<VfLink>> NetlinkVfLinks::vfs(const std::string& ifname) const {
  TRY(check_ifname(ifname));
  const MnlLib& lib = *TRY(mnl_lib());
  std::string what = "reading " + ifname + "'s VFs";
  Socket sock = TRY(Socket::open(lib, what));
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = link_request(lib, buf, RTM_GETLINK, NLM_F_REQUEST, ifname);
  lib.mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_VF);
  auto reply = TRY(sock.exchange(nlh, what));
  return parse_vf_links(reply, ifname);
}

Result<change::VfSetting> NetlinkVfLinks::get(const std::string& ifname, int vf,
                                              change::VfField field) const {
  return setting_of(TRY(vfs(ifname)), ifname, vf, field);
}

Status NetlinkVfLinks::set(const std::string& ifname, int vf, const change::VfSetting& s) {
  TRY(check_ifname(ifname));
  const MnlLib& lib = *TRY(mnl_lib());
  std::string what = fmt::format("setting {} VF {}'s {} to {}", ifname, vf,
                                 change::vf_field_name(s.field), s.value());
  Socket sock = TRY(Socket::open(lib, what));
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = link_request(lib, buf, RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, ifname);
  nlattr* list = lib.mnl_attr_nest_start(nlh, IFLA_VFINFO_LIST);
  nlattr* info = lib.mnl_attr_nest_start(nlh, IFLA_VF_INFO);
  put_setting(lib, nlh, vf, s);
  lib.mnl_attr_nest_end(nlh, info);
  lib.mnl_attr_nest_end(nlh, list);
  auto reply = TRY(sock.exchange(nlh, what));
  return parse_ack(reply, what);
}

}  // namespace pcipass::sriov
