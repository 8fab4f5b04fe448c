// What the host would lose: found through bridges, bonds, btrfs and device-mapper.
#include "impact/impact.h"

#include <gtest/gtest.h>

#include "deny_fs.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

const std::string kBus = "/sys/devices/pci0000:00";

struct Host {
  TempTree t;
  HostImpact scan() { return scan(*make_real_host_fs(t.root())); }
  HostImpact scan(const HostFs& fs) {
    auto inv = Inventory::scan(fs, nullptr);
    EXPECT_TRUE(inv.ok());
    return HostImpact::scan(fs, *inv);
  }
  PciAddress addr(const std::string& a) { return *parse_address(a); }
};

TEST(Impact, DefaultRouteThroughABridgeReachesItsPort) {
  Host h;
  h.t.pci_device(kBus, "0000:00:1f.6", 0x8086, 0x15bc, 0x020000, "e1000e", 1);
  h.t.pci_device(kBus, "0000:00:19.0", 0x8086, 0x15bc, 0x020000, "e1000e", 2);
  h.t.dir(kBus + "/0000:00:1f.6/net/eno1");
  h.t.link("/sys/class/net/eno1", kBus + "/0000:00:1f.6/net/eno1");
  h.t.dir(kBus + "/0000:00:19.0/net/eno2");
  h.t.link("/sys/class/net/eno2", kBus + "/0000:00:19.0/net/eno2");
  h.t.dir("/sys/devices/virtual/net/vmbr0/brif");
  h.t.link("/sys/class/net/vmbr0", "/sys/devices/virtual/net/vmbr0");
  h.t.link("/sys/devices/virtual/net/vmbr0/brif/eno1", kBus + "/0000:00:1f.6/net/eno1/brport");
  h.t.file("/proc/net/route",
           "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
           "vmbr0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\n");
  HostImpact impact = h.scan();
  EXPECT_EQ(impact.critical_reason(h.addr("0000:00:1f.6")),
            "carries the default route (eno1 under vmbr0)");
  EXPECT_FALSE(impact.critical(h.addr("0000:00:19.0")));
}

// A bond's slaves are a one-line list; unreadable, it is a problem of the scan (the bond's NIC
// might carry the default route), not a bond without slaves.
TEST(Impact, DefaultRouteThroughABondReachesItsSlavesOrIsAProblem) {
  Host h;
  h.t.pci_device(kBus, "0000:00:1f.6", 0x8086, 0x15bc, 0x020000, "e1000e", 1);
  h.t.dir(kBus + "/0000:00:1f.6/net/eno1");
  h.t.link("/sys/class/net/eno1", kBus + "/0000:00:1f.6/net/eno1");
  h.t.file("/sys/devices/virtual/net/bond0/bonding/slaves", "eno1\n");
  h.t.link("/sys/class/net/bond0", "/sys/devices/virtual/net/bond0");
  h.t.file("/proc/net/route",
           "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
           "bond0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\n");
  HostImpact impact = h.scan();
  EXPECT_EQ(impact.critical_reason(h.addr("0000:00:1f.6")),
            "carries the default route (eno1 under bond0)");
  EXPECT_TRUE(impact.problems().empty());
  DenyFs deny(h.t, {"/sys/class/net/bond0/bonding"});
  HostImpact unknown = h.scan(deny);
  EXPECT_FALSE(unknown.critical(h.addr("0000:00:1f.6")));
  EXPECT_EQ(unknown.problems(), std::vector<std::string>{
                                    "open /sys/class/net/bond0/bonding/slaves: Permission denied"});
}

// The framebuffer console's device: losing it blanks the console. Its vtconsole unreadable is a
// problem, not "no console".
TEST(Impact, FramebufferConsoleIsCriticalOrAProblem) {
  Host h;
  h.t.pci_device(kBus, "0000:00:02.0", 0x8086, 0x3e92, 0x030000, "i915", 2);
  h.t.dir(kBus + "/0000:00:02.0/graphics/fb0");
  h.t.link("/sys/class/graphics/fb0", kBus + "/0000:00:02.0/graphics/fb0");
  h.t.file("/sys/devices/virtual/vtconsole/vtcon0/name", "(S) dummy device\n");
  h.t.file("/sys/devices/virtual/vtconsole/vtcon0/bind", "0\n");
  h.t.file("/sys/devices/virtual/vtconsole/vtcon1/name", "(M) frame buffer device\n");
  h.t.file("/sys/devices/virtual/vtconsole/vtcon1/bind", "1\n");
  h.t.link("/sys/class/vtconsole/vtcon0", "/sys/devices/virtual/vtconsole/vtcon0");
  h.t.link("/sys/class/vtconsole/vtcon1", "/sys/devices/virtual/vtconsole/vtcon1");
  HostImpact impact = h.scan();
  EXPECT_EQ(impact.critical_reason(h.addr("0000:00:02.0")), "drives the framebuffer console (fb0)");
  h.t.file("/sys/devices/virtual/vtconsole/vtcon1/bind", "0\n");
  EXPECT_FALSE(h.scan().critical(h.addr("0000:00:02.0")));
  h.t.file("/sys/devices/virtual/vtconsole/vtcon1/bind", "1\n");
  DenyFs deny(h.t, {"/sys/class/vtconsole/vtcon1"});
  HostImpact unknown = h.scan(deny);
  EXPECT_EQ(unknown.problems(),
            std::vector<std::string>{"open /sys/class/vtconsole/vtcon1/name: Permission denied"});
}

// A virtio disk as sysfs shows it. The mount source is /dev/root (as the kernel prints it for
// root=/dev/vda1), so only the major:minor in mountinfo leads to the disk.
TEST(Impact, RootOnAVirtioDiskFoundByMajorMinor) {
  Host h;
  h.t.pci_device(kBus, "0000:00:02.0", 0x1af4, 0x1001, 0x010000, "virtio-pci", 2);
  h.t.pci_device(kBus, "0000:00:04.0", 0x1af4, 0x1001, 0x010000, "virtio-pci", 6);
  auto disk = [&](const std::string& pci, const std::string& virtio, const std::string& name,
                  int minor_base, int parts) {
    std::string dir = kBus + "/" + pci + "/" + virtio + "/block/" + name;
    h.t.file(dir + "/dev", "254:" + std::to_string(minor_base) + "\n");
    h.t.link("/sys/block/" + name, dir);
    h.t.link("/sys/class/block/" + name, dir);
    h.t.link("/sys/dev/block/254:" + std::to_string(minor_base), dir);
    for (int p = 1; p <= parts; ++p) {
      std::string part = name + std::to_string(p), mm = "254:" + std::to_string(minor_base + p);
      h.t.file(dir + "/" + part + "/dev", mm + "\n");
      h.t.file(dir + "/" + part + "/partition", std::to_string(p) + "\n");
      h.t.link("/sys/class/block/" + part, dir + "/" + part);
      h.t.link("/sys/dev/block/" + mm, dir + "/" + part);
    }
  };
  disk("0000:00:02.0", "virtio0", "vda", 0, 2);
  disk("0000:00:04.0", "virtio1", "vdb", 16, 1);
  h.t.file("/proc/self/mountinfo",
           "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n"
           "23 22 254:2 / /boot rw,relatime shared:2 - ext4 /dev/disk/by-uuid/0b1f rw\n"
           "24 22 0:21 / /proc rw,nosuid - proc proc rw\n");
  HostImpact impact = h.scan();
  EXPECT_EQ(impact.critical_reason(h.addr("0000:00:02.0")),
            "holds the root filesystem (/ on vda1)");
  auto uses = impact.uses(h.addr("0000:00:02.0"));
  std::vector<std::string> what;
  for (const auto& u : uses) what.push_back(u.detail);
  EXPECT_EQ(what, (std::vector<std::string>{"holds the root filesystem (/ on vda1)",
                                            "vda2 is mounted on /boot"}));
  EXPECT_FALSE(impact.critical(h.addr("0000:00:04.0")));
}

TEST(Impact, BtrfsRootFoundByItsSource) {
  Host h;
  h.t.pci_device(kBus, "0000:01:00.0", 0x144d, 0xa808, 0x010802, "nvme", 3);
  std::string block = kBus + "/0000:01:00.0/nvme/nvme0/nvme0n1";
  h.t.file(block + "/dev", "259:0\n");
  h.t.file(block + "/nvme0n1p3/dev", "259:3\n");
  h.t.link("/sys/class/block/nvme0n1", block);
  h.t.link("/sys/class/block/nvme0n1p3", block + "/nvme0n1p3");
  h.t.file("/proc/self/mountinfo",
           "29 1 0:30 /root / rw,relatime shared:1 - btrfs /dev/nvme0n1p3 rw,ssd\n");
  HostImpact impact = h.scan();
  EXPECT_EQ(impact.critical_reason(h.addr("0000:01:00.0")),
            "holds the root filesystem (/ on nvme0n1p3)");
}

TEST(Impact, DeviceMapperRootReachesTheDisk) {
  Host h;
  h.t.pci_device(kBus, "0000:00:17.0", 0x8086, 0xa352, 0x010601, "ahci", 4);
  std::string sda = kBus + "/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda";
  h.t.file(sda + "/sda2/dev", "8:2\n");
  h.t.link("/sys/class/block/sda2", sda + "/sda2");
  h.t.file("/sys/devices/virtual/block/dm-0/dm/name", "vg-root\n");
  h.t.link("/sys/devices/virtual/block/dm-0/slaves/sda2", sda + "/sda2");
  h.t.link("/sys/class/block/dm-0", "/sys/devices/virtual/block/dm-0");
  h.t.file("/proc/self/mountinfo", "25 1 0:31 / / rw - xfs /dev/mapper/vg-root rw\n");
  HostImpact impact = h.scan();
  EXPECT_EQ(impact.critical_reason(h.addr("0000:00:17.0")),
            "holds the root filesystem (/ on dm-0)");
}

TEST(Impact, UnmountedDiskIsNotCritical) {
  Host h;
  h.t.pci_device(kBus, "0000:02:00.0", 0x144d, 0xa808, 0x010802, "nvme", 5);
  h.t.file("/proc/self/mountinfo", "22 1 0:21 / /proc rw - proc proc rw\n");
  EXPECT_FALSE(h.scan().critical(h.addr("0000:02:00.0")));
}

}  // namespace
}  // namespace pcipass::test
