// The sysfs double's SR-IOV: sriov_numvfs with the kernel's rules (drivers/pci/iov.c), VFs with
// physfn and virtfnN links in their own IOMMU groups, sriov_drivers_autoprobe.
#include <gtest/gtest.h>

#include "fake_kernel.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

const std::string kBus = "/sys/devices/pci0000:00";
const std::string kPf = "/sys/bus/pci/devices/0000:00:04.0";

class FakeSriov : public ::testing::Test {
 protected:
  void SetUp() override {
    sample_host(t);
    t.pci_device(kBus, "0000:00:04.0", 0x1b36, 0x0010, 0x010802, "nvme", 5);
    k = std::make_unique<FakeKernel>(t);
    sample_natives(*k);
    k->native("0000:00:04.0", "nvme");
    k->sriov("0000:00:04.0", {7, 1, 1, 0x0010, "nvme"});
  }
  int err(const std::string& attr, const std::string& v) {
    auto s = k->write(kPf + "/" + attr, v);
    return s ? 0 : s.error().err;
  }
  TempTree t;
  std::unique_ptr<FakeKernel> k;
};

TEST_F(FakeSriov, NumvfsFollowsTheKernelsRules) {
  EXPECT_EQ(err("sriov_numvfs", "8"), ERANGE);
  EXPECT_EQ(err("sriov_numvfs", "x"), EINVAL);
  EXPECT_EQ(err("sriov_numvfs", "-1"), EINVAL);
  EXPECT_EQ(err("sriov_numvfs", "3"), 0);
  EXPECT_EQ(t.read(kBus + "/0000:00:04.0/sriov_numvfs"), "3\n");
  EXPECT_EQ(err("sriov_numvfs", "3"), 0);      // the same count: nothing to do
  EXPECT_EQ(err("sriov_numvfs", "2"), EBUSY);  // non-zero over non-zero
  EXPECT_EQ(t.read(kBus + "/0000:00:04.0/sriov_numvfs"), "3\n");
  EXPECT_EQ(err("sriov_numvfs", "0"), 0);
  EXPECT_EQ(err("sriov_numvfs", "2"), 0);
  EXPECT_EQ(err("sriov_drivers_autoprobe", "maybe"), EINVAL);
}

TEST_F(FakeSriov, VfsAppearWithLinksAndGroupsAndGo) {
  ASSERT_EQ(err("sriov_numvfs", "2"), 0);
  EXPECT_EQ(k->read_link(kBus + "/0000:00:04.0/virtfn1").value(), "../0000:00:04.2");
  EXPECT_EQ(k->link_basename("/sys/bus/pci/devices/0000:00:04.1/physfn"), "0000:00:04.0");
  EXPECT_EQ(k->link_basename("/sys/bus/pci/devices/0000:00:04.1/iommu_group"), "6");
  EXPECT_EQ(k->link_basename("/sys/bus/pci/devices/0000:00:04.2/iommu_group"), "7");
  // autoprobe 1: the host driver took them as they appeared
  EXPECT_EQ(k->link_basename("/sys/bus/pci/devices/0000:00:04.1/driver"), "nvme");
  ASSERT_EQ(err("sriov_numvfs", "0"), 0);
  EXPECT_FALSE(k->exists("/sys/bus/pci/devices/0000:00:04.1"));
  EXPECT_FALSE(k->exists(kBus + "/0000:00:04.0/virtfn0"));
  EXPECT_FALSE(k->exists("/sys/kernel/iommu_groups/6"));
  EXPECT_FALSE(k->exists("/sys/bus/pci/drivers/nvme/0000:00:04.1"));
}

TEST_F(FakeSriov, NoAutoprobeLeavesVfsWithoutDriver) {
  ASSERT_EQ(err("sriov_drivers_autoprobe", "0"), 0);
  ASSERT_EQ(err("sriov_numvfs", "1"), 0);
  EXPECT_FALSE(k->exists("/sys/bus/pci/devices/0000:00:04.1/driver"));
  // drivers_probe still finds the host driver
  ASSERT_TRUE(k->write("/sys/bus/pci/drivers_probe", "0000:00:04.1"));
  EXPECT_EQ(k->link_basename("/sys/bus/pci/devices/0000:00:04.1/driver"), "nvme");
}

TEST_F(FakeSriov, PfWithoutDriverCannotConfigure) {
  ASSERT_TRUE(k->write(kPf + "/driver/unbind", "0000:00:04.0"));
  EXPECT_EQ(err("sriov_numvfs", "1"), ENOENT);
}

TEST_F(FakeSriov, WritesCanFail) {
  k->fail_write(1, EIO);
  EXPECT_EQ(err("sriov_numvfs", "1"), EIO);
  EXPECT_FALSE(k->exists("/sys/bus/pci/devices/0000:00:04.1"));
}

}  // namespace
}  // namespace pcipass::test
