// What the host would lose: found through bridges, bonds, btrfs and device-mapper.
#include "impact/impact.h"

#include <gtest/gtest.h>

#include "temp_tree.h"

namespace pcipass::test {
namespace {

const std::string kBus = "/sys/devices/pci0000:00";

struct Host {
  TempTree t;
  HostImpact scan() {
    auto fs = make_real_host_fs(t.root());
    auto inv = Inventory::scan(*fs, nullptr);
    EXPECT_TRUE(inv.ok());
    return HostImpact::scan(*fs, *inv);
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
