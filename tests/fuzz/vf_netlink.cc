// The rtnetlink reply reader of `vf list` and `vf set` (src/sriov/netlink.cc: parse_vf_links,
// parse_ack): the bytes come from the kernel, but a driver's bug or a hostile process in another
// network namespace must not crash or hang pcipass. The input is the whole reply. Oracles: no
// crash, every failure an Error with a message, and every VF parsed within the kernel's ranges.
#include <span>

#include "fuzz_support.h"
#include "sriov/netlink.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto links = sriov::parse_vf_links(bytes, "fuzz0");
  if (!links && links.error().message.empty()) fuzz::violated("parse_vf_links: empty error");
  if (links)
    for (const auto& l : *links) {
      if (l.index < 0 || l.index > 65535) fuzz::violated("VF index out of range");
      if (l.vlan < 0 || l.vlan > 4095 || l.qos < 0 || l.qos > 7)
        fuzz::violated("VLAN or QoS out of range");
      if (l.mac.size() > 32 * 3) fuzz::violated("MAC longer than IFLA_VF_MAC holds");
    }
  auto ack = sriov::parse_ack(bytes, "fuzz");
  if (!ack && ack.error().message.empty()) fuzz::violated("parse_ack: empty error");
  return 0;
}
