// VF settings: the netlink reply parser fed hand-built messages (every field, the kernel's "not
// reported", each truncation and each lying length), and `vf set` as a plan of the change
// engine against a double of the PF's driver: a fault at every setting restores the ones made
// before it, a failed rollback is left for `recover`, and bad input is refused byte for byte.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <array>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "sample_double.h"
#include "sriov/mnl_lib.h"
#include "sriov/netlink.h"
#include "sriov/vf_set.h"

namespace pcipass::test {
namespace {

using Bytes = std::vector<uint8_t>;

template <typename T>
Bytes bytes_of(const T& v) {
  Bytes b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes attr(uint16_t type, const Bytes& payload) {
  nlattr h{static_cast<uint16_t>(NLA_HDRLEN + payload.size()), type};
  Bytes out = cat({bytes_of(h), payload});
  out.resize(NLA_ALIGN(out.size()), 0);
  return out;
}

Bytes message(uint16_t type, const Bytes& payload) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + payload.size());
  h.nlmsg_type = type;
  Bytes out = cat({bytes_of(h), payload});
  out.resize(NLMSG_ALIGN(out.size()), 0);
  return out;
}

Bytes newlink(const Bytes& attrs) {
  ifinfomsg ifm{};
  return message(RTM_NEWLINK, cat({bytes_of(ifm), attrs}));
}

Bytes vf_info(uint32_t vf, std::array<uint8_t, 6> mac, uint32_t vlan, uint32_t qos,
              uint32_t spoofchk, uint32_t trust) {
  ifla_vf_mac m{};
  m.vf = vf;
  std::memcpy(m.mac, mac.data(), 6);
  return attr(IFLA_VF_INFO | NLA_F_NESTED,
              cat({attr(IFLA_VF_MAC, bytes_of(m)),
                   attr(IFLA_VF_VLAN, bytes_of(ifla_vf_vlan{vf, vlan, qos})),
                   attr(IFLA_VF_SPOOFCHK, bytes_of(ifla_vf_spoofchk{vf, spoofchk})),
                   attr(IFLA_VF_TRUST, bytes_of(ifla_vf_trust{vf, trust}))}));
}

// The shape of a real reply: the link's name and address, then the VF list.
Bytes two_vfs() {
  return newlink(
      cat({attr(IFLA_IFNAME, {'e', 'n', 'p', '1', 0}), attr(IFLA_ADDRESS, {0x52, 0x54, 0, 0, 0, 1}),
           attr(IFLA_VFINFO_LIST | NLA_F_NESTED,
                cat({vf_info(1, {2, 0, 0, 0, 0, 0xbb}, 0, 0, UINT32_MAX, UINT32_MAX),
                     vf_info(0, {0x52, 0x54, 0, 0x12, 0x34, 0x56}, 100, 3, 1, 0)}))}));
}

Result<std::vector<sriov::VfLink>> parse(const Bytes& b) {
  return sriov::parse_vf_links(b, "enp1");
}

TEST(VfNetlink, ParsesEveryVfSettingInIndexOrder) {
  auto r = parse(two_vfs());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  const auto& a = (*r)[0];
  EXPECT_EQ(a.index, 0);
  EXPECT_EQ(a.mac, "52:54:00:12:34:56");
  EXPECT_EQ(a.vlan, 100);
  EXPECT_EQ(a.qos, 3);
  EXPECT_EQ(a.spoofchk, true);
  EXPECT_EQ(a.trust, false);
  const auto& b = (*r)[1];
  EXPECT_EQ(b.index, 1);
  EXPECT_EQ(b.mac, "02:00:00:00:00:bb");
  EXPECT_EQ(b.vlan, 0);
  // -1: the driver does not say.
  EXPECT_FALSE(b.spoofchk.has_value());
  EXPECT_FALSE(b.trust.has_value());
}

TEST(VfNetlink, TheVlanListServesWhenThereIsNoPlainVlan) {
  ifla_vf_vlan_info info{};
  info.vf = 2, info.vlan = 42, info.qos = 1, info.vlan_proto = htons(0x8100);
  auto list = attr(IFLA_VF_VLAN_LIST | NLA_F_NESTED, attr(IFLA_VF_VLAN_INFO, bytes_of(info)));
  auto r = parse(newlink(attr(IFLA_VFINFO_LIST, attr(IFLA_VF_INFO, list))));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].index, 2);
  EXPECT_EQ((*r)[0].vlan, 42);
  EXPECT_EQ((*r)[0].qos, 1);
}

TEST(VfNetlink, ALinkWithoutVfsHasNone) {
  auto r = parse(newlink(attr(IFLA_IFNAME, {'l', 'o', 0})));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->empty());
}

TEST(VfNetlink, AKernelErrorIsTheErrorItCarries) {
  nlmsgerr e{};
  e.error = -ENODEV;
  auto r = parse(message(NLMSG_ERROR, bytes_of(e)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "netlink refused reading enp1's VFs: No such device");
  EXPECT_EQ(r.error().fix, "check the interface name (`ip link`)");
  e.error = -EPERM;
  auto st = sriov::parse_ack(message(NLMSG_ERROR, bytes_of(e)), "setting enp1 VF 0's trust to on");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message,
            "netlink refused setting enp1 VF 0's trust to on: Operation not permitted");
  e.error = 0;
  EXPECT_TRUE(sriov::parse_ack(message(NLMSG_ERROR, bytes_of(e)), "x").ok());
  EXPECT_FALSE(sriov::parse_ack({}, "x").ok());
}

// Every prefix of a reply is either parsed or refused with a message; none reads past its end
// (ASan in build-asan/ and the fuzz target see to the reading).
TEST(VfNetlink, EveryTruncationIsAnErrorOrFewerVfs) {
  Bytes whole = two_vfs();
  for (size_t n = 0; n < whole.size(); ++n) {
    Bytes cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = parse(cut);
    if (!r)
      EXPECT_FALSE(r.error().message.empty()) << n;
    else
      EXPECT_LE(r->size(), 2u) << n;
  }
}

TEST(VfNetlink, LyingLengthsAreRefused) {
  Bytes m = two_vfs();
  // The message says it is longer than what came.
  Bytes longer = m;
  uint32_t len = static_cast<uint32_t>(m.size() + 8);
  std::memcpy(longer.data(), &len, 4);
  auto r = parse(longer);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "the kernel's netlink reply for enp1 is malformed: a message of " +
                                   std::to_string(len) + " bytes at offset 0 of " +
                                   std::to_string(m.size()));
  // An attribute shorter than its own header.
  Bytes shorter = m;
  uint16_t tiny = 2;
  std::memcpy(shorter.data() + NLMSG_HDRLEN + sizeof(ifinfomsg), &tiny, 2);
  EXPECT_FALSE(parse(shorter).ok());
  // A VF struct too short for its fields.
  auto small = attr(IFLA_VFINFO_LIST, attr(IFLA_VF_INFO, attr(IFLA_VF_TRUST, {1, 0, 0, 0})));
  auto s = parse(newlink(small));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "the kernel's netlink reply for enp1 is malformed: IFLA_VF_TRUST of 4 bytes, not 8");
  // Settings of two VFs inside one VF's info.
  auto mixed =
      attr(IFLA_VFINFO_LIST,
           attr(IFLA_VF_INFO, cat({attr(IFLA_VF_TRUST, bytes_of(ifla_vf_trust{0, 1})),
                                   attr(IFLA_VF_SPOOFCHK, bytes_of(ifla_vf_spoofchk{1, 1}))})));
  EXPECT_FALSE(parse(newlink(mixed)).ok());
  // A VLAN the kernel cannot have.
  auto vlan = attr(IFLA_VFINFO_LIST,
                   attr(IFLA_VF_INFO, attr(IFLA_VF_VLAN, bytes_of(ifla_vf_vlan{0, 5000, 0}))));
  EXPECT_FALSE(parse(newlink(vlan)).ok());
}

TEST(VfNetlink, AMissingLibmnlIsNamedWithItsPackage) {
  auto r = sriov::load_mnl_lib("libmnl-does-not-exist.so.0");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().message.starts_with(
      "cannot load libmnl-does-not-exist.so.0 to read and set a NIC's VF settings (netlink)"))
      << r.error().message;
  EXPECT_EQ(r.error().fix, "install libmnl: apt install libmnl0 (dnf install libmnl)");
}

// The PF's driver as netlink shows it: VF settings kept per index, and a refusal at the Nth set.
class FakeDriver : public sriov::VfLinkSource, public change::VfLinkPort {
 public:
  Result<std::vector<sriov::VfLink>> vfs(const std::string& ifname) const override {
    if (ifname != "enp0s4") return Error::io("RTM_GETLINK", ifname, ENODEV);
    std::vector<sriov::VfLink> out;
    for (const auto& [i, l] : links) out.push_back(l);
    return out;
  }
  Result<change::VfSetting> get(const std::string& ifname, int vf,
                                change::VfField field) const override {
    return sriov::setting_of(TRY(vfs(ifname)), ifname, vf, field);
  }
  Status set(const std::string& ifname, int vf, const change::VfSetting& s) override {
    ++sets;
    if (fail_from && sets >= fail_from && (!fail_to || sets <= fail_to))
      return Error::state("netlink refused " + ifname + ": Operation not supported");
    auto& l = links.at(vf);
    switch (s.field) {
      case change::VfField::kMac:
        l.mac = s.mac;
        break;
      case change::VfField::kVlan:
        l.vlan = s.vlan, l.qos = s.qos;
        break;
      case change::VfField::kSpoofchk:
        l.spoofchk = s.on;
        break;
      case change::VfField::kTrust:
        l.trust = s.on;
        break;
    }
    return {};
  }
  std::map<int, sriov::VfLink> links{{0, {0, "52:54:00:00:00:01", 0, 0, true, false}},
                                     {1, {1, "52:54:00:00:00:02", 7, 2, true, false}}};
  int sets = 0, fail_from = 0, fail_to = 0;
};

bool same(const std::map<int, sriov::VfLink>& a, const std::map<int, sriov::VfLink>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [i, l] : a) {
    const auto& m = b.at(i);
    if (l.mac != m.mac || l.vlan != m.vlan || l.qos != m.qos || l.spoofchk != m.spoofchk ||
        l.trust != m.trust)
      return false;
  }
  return true;
}

const std::string kBus = "/sys/devices/pci0000:00";

class VfSet : public ::testing::Test, public SampleDouble {
 protected:
  void SetUp() override {
    t.pci_device(kBus, "0000:00:04.0", 0x8086, 0x10c9, 0x020000, "igb", 5);
    t.file(kBus + "/0000:00:04.0/sriov_totalvfs", "7\n");
    t.file(kBus + "/0000:00:04.0/sriov_numvfs", "2\n");
    t.file(kBus + "/0000:00:04.0/net/enp0s4/operstate", "up\n");
    for (int i : {0, 1}) {
      std::string vf = "0000:00:04." + std::to_string(i + 1);
      t.pci_device(kBus, vf, 0x8086, 0x10ca, 0x020000, "", 6 + i);
      t.link(kBus + "/0000:00:04.0/virtfn" + std::to_string(i), kBus + "/" + vf);
      t.link(kBus + "/" + vf + "/physfn", kBus + "/0000:00:04.0");
    }
    start();
    k->native("0000:00:04.0", "igb");
    env.vf_links = &driver;
    use_env();
  }
  sriov::SetRequest three() {
    sriov::SetRequest r;
    r.pf = parse_address("0000:00:04.0").value();
    r.index = 1;
    using change::VfField;
    r.settings = {{VfField::kMac, "02:00:00:00:00:aa", 0, 0, false},
                  {VfField::kVlan, {}, 100, 0, false},
                  {VfField::kTrust, {}, 0, 0, true}};
    return r;
  }
  FakeDriver driver;
};

TEST_F(VfSet, SetsEachSettingAndReportsWhatItWas) {
  auto r = sriov::set(*k, three(), env);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->ifname, "enp0s4");
  EXPECT_EQ(driver.links[1].mac, "02:00:00:00:00:aa");
  EXPECT_EQ(driver.links[1].vlan, 100);
  EXPECT_EQ(driver.links[1].qos, 0);
  EXPECT_EQ(driver.links[1].trust, true);
  ASSERT_EQ(r->settings.size(), 3u);
  EXPECT_EQ(r->settings[1].before.value(), "7 qos 2");
  EXPECT_EQ(r->settings[1].after.value(), "100");
  EXPECT_FALSE(k->exists("/run/pcipass/journal.json"));
}

TEST_F(VfSet, AFaultAtEverySettingRestoresTheOnesBeforeIt) {
  auto before = driver.links;
  for (int n = 1; n <= 3; ++n) {
    driver.sets = 0;
    driver.fail_from = n;
    driver.fail_to = n;
    auto r = sriov::set(*k, three(), env);
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_NE(r.error().fix.find("rolled back"), std::string::npos) << r.error().fix;
    EXPECT_TRUE(same(driver.links, before)) << "fault at setting " << n;
    // The settings before the fault, then their undo, last first.
    EXPECT_EQ(driver.sets, 2 * n - 1) << n;
    EXPECT_FALSE(k->exists("/run/pcipass/journal.json")) << n;
  }
}

TEST_F(VfSet, AFailedRollbackIsLeftInTheJournalForRecover) {
  auto before = driver.links;
  driver.fail_from = 2;  // the VLAN and everything after it, the undo of the MAC too
  auto r = sriov::set(*k, three(), env);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(same(driver.links, before));
  auto j = assign::parse_journal(t.read("/run/pcipass/journal.json"));
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->summary(), "write of 3 VF settings");
  driver.fail_from = 0;
  auto rec = assign::recover(*k, env);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_TRUE(same(driver.links, before));
  EXPECT_FALSE(k->exists("/run/pcipass/journal.json"));
}

TEST_F(VfSet, ADryRunReadsButSetsNothing) {
  auto req = three();
  req.dry_run = true;
  auto r = sriov::set(*k, req, env);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(driver.sets, 0);
  std::vector<std::string> texts;
  for (const auto& s : r->steps)
    if (s.kind == change::StepKind::kVf) texts.push_back(s.text());
  EXPECT_EQ(texts,
            (std::vector<std::string>{"set enp0s4 vf 1 mac 02:00:00:00:00:aa",
                                      "set enp0s4 vf 1 vlan 100", "set enp0s4 vf 1 trust on"}));
}

TEST_F(VfSet, CliSetsAndListShowsTheColumns) {
  auto r = cli({"vf", "set", "00:04.0", "1", "--mac", "02:00:00:00:00:AA", "--spoofchk", "off"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "enp0s4 VF 1: mac 02:00:00:00:00:aa (was 52:54:00:00:00:02)\n"
            "enp0s4 VF 1: spoofchk off (was on)\n");
  auto j = cli({"vf", "set", "00:04.0", "0", "--vlan", "12", "--json"});
  ASSERT_EQ(j.status, 0) << j.err;
  auto js = nlohmann::json::parse(j.out);
  EXPECT_EQ(js["schema"], "pcipass.vf-set/1");
  EXPECT_EQ(js["settings"][0]["before"], (nlohmann::json{{"vlan", 0}, {"qos", 0}}));
  EXPECT_EQ(js["settings"][0]["after"], (nlohmann::json{{"vlan", 12}, {"qos", 0}}));
  auto list = cli({"vf", "list", "00:04.0", "--json"});
  ASSERT_EQ(list.status, 0) << list.err;
  auto l = nlohmann::json::parse(list.out);
  EXPECT_EQ(l["pfs"][0]["interfaces"], nlohmann::json::array({"enp0s4"}));
  ASSERT_EQ(l["pfs"][0]["vfs"].size(), 2u) << list.out;
  EXPECT_EQ(l["pfs"][0]["vfs"][1]["net"], (nlohmann::json{{"mac", "02:00:00:00:00:aa"},
                                                          {"vlan", 7},
                                                          {"qos", 2},
                                                          {"spoofchk", false},
                                                          {"trust", false}}));
  EXPECT_EQ(l["pfs"][0]["vfs"][0]["net"]["vlan"], 12);
  auto human = cli({"vf", "list", "00:04.0"});
  ASSERT_EQ(human.status, 0) << human.err;
  EXPECT_NE(human.out.find("SPOOFCHK"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("02:00:00:00:00:aa"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("7 qos 2"), std::string::npos) << human.out;
}

TEST_F(VfSet, CliRefusesBadInputByteForByte) {
  auto mac = cli({"vf", "set", "00:04.0", "1", "--mac", "52:54:00:zz:00:01"});
  EXPECT_EQ(mac.status, 2);
  EXPECT_EQ(mac.err,
            "error: --mac '52:54:00:zz:00:01' is not a MAC address\n"
            "  fix: give six hex bytes separated by colons, e.g. --mac 52:54:00:12:34:56\n");
  auto multicast = cli({"vf", "set", "00:04.0", "1", "--mac", "01:00:5e:00:00:01"});
  EXPECT_EQ(multicast.err,
            "error: --mac '01:00:5e:00:00:01' is a multicast address, not one a VF can have (its "
            "first byte must be even)\n"
            "  fix: give six hex bytes separated by colons, e.g. --mac 52:54:00:12:34:56\n");
  auto vlan = cli({"vf", "set", "00:04.0", "1", "--vlan", "4096"});
  EXPECT_EQ(vlan.status, 2);
  EXPECT_EQ(vlan.err,
            "error: --vlan '4096' is not a VLAN ID\n"
            "  fix: give a number from 1 to 4095, or 0 for no VLAN\n");
  auto index = cli({"vf", "set", "00:04.0", "1x", "--trust", "on"});
  EXPECT_EQ(index.err,
            "error: VF index '1x' is not a number from 0 to 65535\n"
            "  fix: give the VF's index as `pcipass vf list` shows it (column VF)\n");
  auto range = cli({"vf", "set", "00:04.0", "5", "--trust", "on"});
  EXPECT_EQ(range.err,
            "error: VF index 5 is out of range: 0000:00:04.0 has 2 VFs (0 to 1)\n"
            "  fix: see `pcipass vf list 0000:00:04.0` for its VFs and their indexes\n");
  auto nothing = cli({"vf", "set", "00:04.0", "1"});
  EXPECT_EQ(nothing.err,
            "error: nothing to set on VF 1\n"
            "  fix: give one or more of --mac, --vlan, --spoofchk, --trust\n");
  EXPECT_EQ(driver.sets, 0);
}

TEST_F(VfSet, APfWithoutANetworkInterfaceIsRefused) {
  t.remove(kBus + "/0000:00:04.0/net");
  auto r = cli({"vf", "set", "00:04.0", "1", "--trust", "on"});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err,
            "error: 0000:00:04.0 has no network interface: VF settings (MAC, VLAN, spoof check, "
            "trust) are a NIC's, set through its PF's interface\n"
            "  fix: bind 0000:00:04.0 to its network driver first; a PF that is not a NIC has "
            "none of these settings\n");
  EXPECT_EQ(driver.sets, 0);
}

// Unlistable is not "no interface": the message says what could not be read.
TEST_F(VfSet, APfWhoseInterfacesCannotBeListedSaysSo) {
  k->deny_listing("/sys/bus/pci/devices/0000:00:04.0/net");
  auto r = cli({"vf", "set", "00:04.0", "1", "--trust", "on"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "error: cannot list the network interfaces of 0000:00:04.0: opendir "
            "/sys/bus/pci/devices/0000:00:04.0/net: Permission denied\n"
            "  fix: run pcipass as root\n");
  EXPECT_EQ(driver.sets, 0);
}

}  // namespace
}  // namespace pcipass::test
