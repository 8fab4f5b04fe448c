// A NIC's VF settings through rtnetlink: RTM_GETLINK with IFLA_EXT_MASK=RTEXT_FILTER_VF reads
// them (IFLA_VFINFO_LIST), RTM_SETLINK with one IFLA_VF_INFO sets one. The socket and the
// requests go through libmnl (dlopen'ed: mnl_lib.h); the kernel's reply is read by
// parse_vf_links / parse_ack, pure functions over its bytes that check every length (unit tests
// feed them hand-built messages, tests/fuzz/vf_netlink.cc anything).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "change/change.h"
#include "sriov/sriov.h"

namespace pcipass::sriov {

// The VFs in the reply to RTM_GETLINK for `ifname` (one or more netlink messages, as recv gave
// them). An NLMSG_ERROR is the error it carries; bytes that are not well-formed netlink are an
// error naming what is wrong. A reply without IFLA_VFINFO_LIST has no VFs.
Result<std::vector<VfLink>> parse_vf_links(std::span<const uint8_t> reply,
                                           const std::string& ifname);
// The kernel's answer to a request sent with NLM_F_ACK: an NLMSG_ERROR with error 0, or the
// error it carries (`what` names the request in the message).
Status parse_ack(std::span<const uint8_t> reply, const std::string& what);

// One VF's `field` out of `links` (what VfLinkPort::get returns).
Result<change::VfSetting> setting_of(const std::vector<VfLink>& links, const std::string& ifname,
                                     int vf, change::VfField field);

// The live host's: a netlink route socket per request.
class NetlinkVfLinks final : public VfLinkSource, public change::VfLinkPort {
 public:
  Result<std::vector<VfLink>> vfs(const std::string& ifname) const override;
  Result<change::VfSetting> get(const std::string& ifname, int vf,
                                change::VfField field) const override;
  Status set(const std::string& ifname, int vf, const change::VfSetting& s) override;
};

}  // namespace pcipass::sriov
