// Names come from the pci.ids inside the host tree when it has one (so fixtures are stable).
#include "pci/ids.h"

#include <gtest/gtest.h>

#include "cli_harness.h"
#include "host/host_fs.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

TEST(PciIds, ReadsTheTreesOwnDatabase) {
  TempTree t;
  t.file("/usr/share/misc/pci.ids",
         "10de  NVIDIA Corporation\n"
         "\t1b80  GP104 [GeForce GTX 1080]\n"
         "\t\t1458 3702  GeForce GTX 1080 G1 Gaming\n"
         "1458  Gigabyte Technology Co., Ltd\n"
         "C 03  Display controller\n"
         "\t00  VGA compatible controller\n");
  auto fs = make_real_host_fs(t.root());
  auto local = make_real_host_fs("/");
  auto choice = choose_pci_ids(*fs, *local, std::nullopt, kNoSystemPciIds).value();
  EXPECT_EQ(choice.source, PciIdsSource::kTree);
  EXPECT_EQ(choice.path, "/usr/share/misc/pci.ids");
  PciIds ids(choice.local);
  EXPECT_EQ(ids.database(), t.root() + "/usr/share/misc/pci.ids");
  EXPECT_EQ(ids.vendor(0x10de), "NVIDIA Corporation");
  EXPECT_EQ(ids.device(0x10de, 0x1b80), "GP104 [GeForce GTX 1080]");
  EXPECT_EQ(ids.subsystem(0x10de, 0x1b80, 0x1458, 0x3702), "GeForce GTX 1080 G1 Gaming");
  // Unknown subsystem of a known vendor: the vendor's name and the ID.
  EXPECT_EQ(ids.subsystem(0x10de, 0x1b80, 0x1458, 0x1234),
            "Gigabyte Technology Co., Ltd Device 1234");
  EXPECT_EQ(ids.class_name(0x030000), "VGA compatible controller");
  EXPECT_EQ(ids.vendor(0x1234), "");
  EXPECT_EQ(ids.device(0x10de, 0xffff), "");
}

TEST(PciIds, ClassKinds) {
  EXPECT_EQ(class_kind(0x030000), "gpu");
  EXPECT_EQ(class_kind(0x030200), "gpu");
  EXPECT_EQ(class_kind(0x040300), "audio");
  EXPECT_EQ(class_kind(0x040100), "audio");
  EXPECT_EQ(class_kind(0x040000), "other");  // video capture
  EXPECT_EQ(class_kind(0x020000), "net");
  EXPECT_EQ(class_kind(0x0d8000), "net");
  EXPECT_EQ(class_kind(0x010802), "storage");
  EXPECT_EQ(class_kind(0x0c0330), "usb");
  EXPECT_EQ(class_kind(0x0c0500), "serial");
  EXPECT_EQ(class_kind(0x060400), "bridge");
  EXPECT_EQ(class_kind(0x120000), "accel");
  EXPECT_EQ(class_kind(0xff0000), "other");
}

TEST(PciIds, ListShowsNamesFromTheFixture) {
  auto r = run_cli(
      {"--root", source_path("tests/fixtures/hosts/intel-workstation"), "list", "--class", "gpu"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("NVIDIA Corporation GP104 [GeForce GTX 1080] [10de:1b80]"),
            std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace pcipass::test
