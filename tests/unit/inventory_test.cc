// The inventory takes the kernel's values (sysfs attributes) before the raw config bytes.
#include "pci/inventory.h"

#include <gtest/gtest.h>

#include "cli_harness.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

const std::string kBus = "/sys/devices/pci0000:00";

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

TEST(Inventory, AttributesOverrideEveryConfigField) {
  TempTree host;
  host.pci_device(kBus, "0000:02:00.0", 0x8086, 0x1533, 0x020000);
  std::string dev = kBus + "/0000:02:00.0";
  host.file(dev + "/vendor", "0x8087\n");
  host.file(dev + "/device", "0x1534\n");
  host.file(dev + "/subsystem_vendor", "0x15d9\n");
  host.file(dev + "/subsystem_device", "0x1533\n");
  host.file(dev + "/revision", "0x03\n");
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  const Device& d = inv->devices()[0];
  EXPECT_EQ(d.vendor, 0x8087);
  EXPECT_EQ(d.device, 0x1534);
  EXPECT_EQ(d.subsystem_vendor, 0x15d9);
  EXPECT_EQ(d.subsystem_device, 0x1533);
  EXPECT_EQ(d.revision, 0x03);
  EXPECT_EQ(d.class_code, 0x020000u);  // no class attribute: config space
}

// Out of range or malformed: a problem of that file, the config value is used.
TEST(Inventory, BadAttributeIsAProblemNotAValue) {
  TempTree host;
  host.pci_device(kBus, "0000:03:00.0", 0x10de, 0x1b80, 0x030000);
  std::string dev = kBus + "/0000:03:00.0";
  host.file(dev + "/vendor", "0x1ffff\n");
  host.file(dev + "/class", "banana\n");
  host.file(dev + "/revision", "-1\n");
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  const Device& d = inv->devices()[0];
  EXPECT_EQ(d.vendor, 0x10de);
  EXPECT_EQ(d.class_code, 0x030000u);
  EXPECT_EQ(d.revision, 0);
  ASSERT_EQ(inv->problems().size(), 3u);
  std::string all;
  for (const auto& p : inv->problems()) all += p + "\n";
  EXPECT_NE(all.find(dev + "/vendor: not a number up to 0xffff: '0x1ffff'"), std::string::npos)
      << all;
  EXPECT_NE(all.find(dev + "/class"), std::string::npos) << all;
  EXPECT_NE(all.find(dev + "/revision"), std::string::npos) << all;
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
  host.file(dev + "/revision", "0xe7\n");
  auto fs = make_real_host_fs(host.root());
  auto inv = Inventory::scan(*fs, nullptr);
  ASSERT_TRUE(inv.ok());
  const Device& d = inv->devices()[0];
  EXPECT_EQ(d.class_code, 0x030000u);
  EXPECT_EQ(d.subsystem_vendor, 0x1da2);
  EXPECT_EQ(d.subsystem_device, 0xe353);
  EXPECT_EQ(d.revision, 0xe7);
  EXPECT_EQ(d.driver, std::optional<std::string>("amdgpu"));  // no driver link in this tree
  EXPECT_TRUE(inv->problems().empty());
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

}  // namespace
}  // namespace pcipass::test
