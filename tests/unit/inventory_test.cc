// The inventory takes the kernel's values (sysfs attributes) before the raw config bytes.
#include "pci/inventory.h"

#include <gtest/gtest.h>

#include "cli_harness.h"
#include "fake_kernel.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

const std::string kBus = "/sys/devices/pci0000:00";

// Every field a scan fills, as text, to compare two scans' devices.
std::string device_fields(const Device& d) {
  std::string out = d.address.str() + " " + d.sysfs_path + " " + d.id_pair() + " " +
                    std::to_string(d.subsystem_vendor) + ":" + std::to_string(d.subsystem_device) +
                    " " + std::to_string(d.revision) + " " + std::to_string(d.class_code) + " " +
                    d.driver.value_or("-") + " " +
                    (d.iommu_group ? std::to_string(*d.iommu_group) : "-") + " " +
                    std::to_string(d.header_type);
  for (const auto& p : d.parents) out += " " + p.str();
  for (const auto& v : d.virtfns) out += " vf" + v.str();
  if (d.physfn) out += " pf" + d.physfn->str();
  return out;
}

// A kernel class fixup: config space says "unclassified device" (0x000000), the kernel made it a
// VGA controller (as quirk_... does for some boards); lspci and the modalias show the kernel's.
TEST(Inventory, KernelClassFixupWins) {
  TempTree host;
  host.pci_device(kBus, "0000:01:00.0", 0x1002, 0x67df, 0x000000);
  std::string dev = kBus + "/0000:01:00.0";
  host.file(dev + "/class", "0x030000\n");
  host.file(dev + "/vendor", "0x1002\n");
  host.file(dev + "/device", "0x67df\n");
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  ASSERT_EQ(inv->devices().size(), 1u);
  EXPECT_EQ(inv->devices()[0].class_code, 0x030000u);
  EXPECT_EQ(inv->devices()[0].kind(), "gpu");
  EXPECT_TRUE(inv->problems().empty());
  auto list = run_cli({"--root", host.root(), "--json", "list"});
  EXPECT_NE(list.out.find("\"class\":\"030000\""), std::string::npos) << list.out;
}

TEST(Inventory, AttributesOverrideEveryConfigIdField) {
  TempTree host;
  host.pci_device(kBus, "0000:02:00.0", 0x8086, 0x1533, 0x020000);
  std::string dev = kBus + "/0000:02:00.0";
  host.file(dev + "/vendor", "0x8087\n");
  host.file(dev + "/device", "0x1534\n");
  host.file(dev + "/subsystem_vendor", "0x15d9\n");
  host.file(dev + "/subsystem_device", "0x1533\n");
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  const Device& d = inv->devices()[0];
  EXPECT_EQ(d.vendor, 0x8087);
  EXPECT_EQ(d.device, 0x1534);
  EXPECT_EQ(d.subsystem_vendor, 0x15d9);
  EXPECT_EQ(d.subsystem_device, 0x1533);
  EXPECT_EQ(d.class_code, 0x020000u);  // no class attribute: config space
}

// Out of range or malformed: a problem of that file, the config value is used.
TEST(Inventory, BadAttributeIsAProblemNotAValue) {
  TempTree host;
  host.pci_device(kBus, "0000:03:00.0", 0x10de, 0x1b80, 0x030000);
  std::string dev = kBus + "/0000:03:00.0";
  host.file(dev + "/vendor", "0x1ffff\n");
  host.file(dev + "/class", "banana\n");
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  const Device& d = inv->devices()[0];
  EXPECT_EQ(d.vendor, 0x10de);
  EXPECT_EQ(d.class_code, 0x030000u);
  ASSERT_EQ(inv->problems().size(), 2u);
  std::string all;
  for (const auto& p : inv->problems()) all += p + "\n";
  EXPECT_NE(all.find(dev + "/vendor: not a number up to 0xffff: '0x1ffff'"), std::string::npos)
      << all;
  EXPECT_NE(all.find(dev + "/class"), std::string::npos) << all;
}

// The revision is config space's byte 8, which the kernel's `revision` attribute copies at
// enumeration; the attribute is read only where config space is missing, and checked there.
TEST(Inventory, RevisionFromConfigSpaceElseTheAttribute) {
  TempTree host;
  host.pci_device(kBus, "0000:03:00.0", 0x10de, 0x1b80, 0x030000);
  std::string cfg(256, '\0');
  cfg[0] = '\xde', cfg[1] = '\x10', cfg[8] = '\xa1', cfg[11] = '\x03';
  host.file(kBus + "/0000:03:00.0/config", cfg);
  host.file(kBus + "/0000:03:00.0/revision", "0x07\n");  // not read: config space has it
  host.dir(kBus + "/0000:04:00.0");
  host.link("/sys/bus/pci/devices/0000:04:00.0", kBus + "/0000:04:00.0");
  host.file(kBus + "/0000:04:00.0/vendor", "0x8086\n");  // no config: the attributes, then
  host.file(kBus + "/0000:04:00.0/revision", "-1\n");    // read, and refused
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  ASSERT_EQ(inv->devices().size(), 2u);
  EXPECT_EQ(inv->devices()[0].revision, 0xa1);
  EXPECT_EQ(inv->devices()[1].revision, 0);
  std::string all;
  for (const auto& p : inv->problems()) all += p + "\n";
  EXPECT_NE(all.find(kBus + "/0000:04:00.0/revision: not a number"), std::string::npos) << all;
}

// A live kernel's uevent: the kernel's IDs, class and driver in one file (PCI_CLASS unpadded,
// IDs upper case), used before the single attributes.
TEST(Inventory, UeventCarriesTheKernelsValues) {
  TempTree host;
  host.pci_device(kBus, "0000:07:00.0", 0x1002, 0x67df, 0x000000);
  std::string dev = kBus + "/0000:07:00.0";
  host.file(dev + "/uevent",
            "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:67DF\nPCI_SUBSYS_ID=1DA2:E353\n"
            "PCI_SLOT_NAME=0000:07:00.0\nMODALIAS=pci:"
            "v00001002d000067DFsv00001DA2sd0000E353bc03sc00i00\n");
  host.file(dev + "/class", "0x000000\n");  // never consulted: uevent has it
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  const Device& d = inv->devices()[0];
  EXPECT_EQ(d.class_code, 0x030000u);
  EXPECT_EQ(d.subsystem_vendor, 0x1da2);
  EXPECT_EQ(d.subsystem_device, 0xe353);
  EXPECT_EQ(d.driver, std::optional<std::string>("amdgpu"));  // no driver link in this tree
  EXPECT_TRUE(inv->problems().empty());
}

// bind and release read only the named devices and their groups: the same devices, read the same
// way as by a whole scan, and nothing of other groups.
TEST(Inventory, ScanDevicesReadsTheNamedGroupsOnly) {
  TempTree host;
  host.pci_device(kBus, "0000:01:00.0", 0x10de, 0x1b80, 0x030000, "nouveau", 1);
  host.pci_device(kBus, "0000:01:00.1", 0x10de, 0x10f0, 0x040300, "snd_hda_intel", 1);
  host.pci_device(kBus, "0000:02:00.0", 0x8086, 0x1533, 0x020000, "igb", 2);
  host.pci_device(kBus, "0000:03:00.0", 0x144d, 0xa808, 0x010802, "nvme");  // no group
  auto fs = make_real_host_fs(host.root());
  auto all = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(all.ok());
  auto some = Inventory::scan_devices(*fs, {*parse_address("0000:01:00.1")}, nullptr);
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->devices().size(), 2u);
  for (const auto& d : some->devices()) {
    const Device* same = all->find(d.address);
    ASSERT_NE(same, nullptr);
    EXPECT_EQ(device_fields(d), device_fields(*same));
  }
  EXPECT_EQ(some->find(*parse_address("0000:02:00.0")), nullptr);
  EXPECT_TRUE(some->iommu_groups_present());
  // A device without a group on a host with groups; an address that is not there at all.
  auto lone = Inventory::scan_devices(*fs, {*parse_address("0000:03:00.0")}, nullptr);
  ASSERT_TRUE(lone.ok());
  ASSERT_EQ(lone->devices().size(), 1u);
  EXPECT_TRUE(lone->iommu_groups_present());
  auto none = Inventory::scan_devices(*fs, {*parse_address("0000:09:00.0")}, nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->devices().empty());
  EXPECT_TRUE(none->problems().empty());
}

TEST(Inventory, BadUeventIsAProblem) {
  TempTree host;
  host.pci_device(kBus, "0000:08:00.0", 0x8086, 0x1533, 0x020000);
  std::string dev = kBus + "/0000:08:00.0";
  host.file(dev + "/uevent", "PCI_CLASS=1000000\nPCI_ID=8086:zz\n");
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->devices()[0].class_code, 0x020000u);  // config space
  EXPECT_EQ(inv->devices()[0].vendor, 0x8086);
  EXPECT_EQ(inv->problems().size(), 2u);
}

TEST(Inventory, OldTreeWithoutConfigUsesAttributes) {
  TempTree host;
  std::string dev = kBus + "/0000:04:00.0";
  host.file(dev + "/vendor", "0x1af4\n");
  host.file(dev + "/device", "0x1042\n");
  host.file(dev + "/class", "0x010000\n");
  host.link("/sys/bus/pci/devices/0000:04:00.0", dev);
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->devices()[0].id_pair(), "1af4:1042");
  EXPECT_EQ(inv->devices()[0].kind(), "storage");
}

// A VF's physfn comes from its PF's virtfn links, or from its own link when no PF claims it.
TEST(Inventory, VirtualFunctionsKnowTheirPhysicalFunction) {
  TempTree host;
  host.pci_device(kBus, "0000:05:00.0", 0x8086, 0x1572, 0x020000);
  host.pci_device(kBus, "0000:05:02.0", 0xffff, 0xffff, 0x020000);
  host.pci_device(kBus, "0000:06:02.0", 0xffff, 0xffff, 0x020000);
  host.file(kBus + "/0000:05:00.0/sriov_numvfs", "1\n");
  host.link(kBus + "/0000:05:00.0/virtfn0", kBus + "/0000:05:02.0");
  host.link(kBus + "/0000:05:02.0/physfn", kBus + "/0000:05:00.0");
  host.link(kBus + "/0000:06:02.0/physfn", kBus + "/0000:05:00.0");  // unclaimed
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  ASSERT_EQ(inv->devices().size(), 3u);
  EXPECT_EQ(inv->devices()[0].virtfns, std::vector<PciAddress>{*parse_address("0000:05:02.0")});
  EXPECT_EQ(inv->devices()[1].physfn, parse_address("0000:05:00.0").value());
  EXPECT_EQ(inv->devices()[2].physfn, parse_address("0000:05:00.0").value());
}

// Listings that fail make the inventory partial, and it says so: a PF's VFs (its attributes
// readable, its directory not, as under an LSM that denies readdir), a group's members, whether
// there are groups at all ("no IOMMU" would send the user to the
// firmware).
TEST(Inventory, UnlistableDirectoriesAreProblemsNotNone) {
  TempTree host;
  host.pci_device(kBus, "0000:05:00.0", 0x8086, 0x1572, 0x020000, "", 1);
  host.pci_device(kBus, "0000:05:02.0", 0xffff, 0xffff, 0x020000, "", 1);
  host.pci_device(kBus, "0000:03:00.0", 0x144d, 0xa808, 0x010802, "nvme");  // no group
  host.file(kBus + "/0000:05:00.0/sriov_numvfs", "1\n");
  host.link(kBus + "/0000:05:00.0/virtfn0", kBus + "/0000:05:02.0");
  host.link(kBus + "/0000:05:02.0/physfn", kBus + "/0000:05:00.0");
  FakeKernel k(host);
  k.deny_listing(kBus + "/0000:05:00.0");
  k.deny_listing("/sys/kernel/iommu_groups/1/devices");
  k.deny_listing("/sys/kernel/iommu_groups");
  auto inv = Inventory::scan(k, nullptr);
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->problems(),
            std::vector<std::string>{"opendir " + kBus + "/0000:05:00.0: Permission denied"});
  auto group = Inventory::scan_devices(k, {*parse_address("0000:05:02.0")}, nullptr);
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(
      group->problems(),
      std::vector<std::string>{"opendir /sys/kernel/iommu_groups/1/devices: Permission denied"});
  auto lone = Inventory::scan_devices(k, {*parse_address("0000:03:00.0")}, nullptr);
  ASSERT_TRUE(lone.ok());
  EXPECT_FALSE(lone->iommu_groups_present());
  EXPECT_EQ(lone->problems(),
            std::vector<std::string>{"opendir /sys/kernel/iommu_groups: Permission denied"});
}

}  // namespace
}  // namespace pcipass::test
