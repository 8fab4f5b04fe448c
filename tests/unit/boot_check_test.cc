// check's pending line for the kernel command line: the parameter in the boot loader's file, in
// the generated grub.cfg, in /proc/cmdline.
#include <gtest/gtest.h>

#include <filesystem>

#include "check/check.h"
#include "host/host_fs.h"
#include "host/modules.h"
#include "temp_tree.h"

namespace pcipass {
namespace {

std::string iommu_fix(const test::TempTree& t) {
  auto fs = make_real_host_fs(t.root());
  auto modules = ModuleIndex::open(*fs);
  CheckReport r = run_checks(*fs, *modules);
  const CheckResult* c = r.find("iommu-kernel");
  return c ? c->fix : "(none)";
}

class Pending : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::copy(std::string(PCIPASS_SOURCE_DIR) + "/tests/fixtures/boot/debian-grub-bios",
                          t.root(), std::filesystem::copy_options::recursive);
    t.file("/sys/firmware/acpi/tables/DMAR", "DMAR");
  }
  void grub_cfg_args(const std::string& args) {
    t.file("/boot/grub/grub.cfg",
           "set default=\"0\"\nmenuentry 'Debian GNU/Linux' {\n\tlinux\t"
           "/boot/vmlinuz-6.1.0-28-amd64 root=/dev/sda1 ro " +
               args + "\n}\n");
  }
  test::TempTree t;
};

TEST_F(Pending, NotConfiguredGivesTheUsualFix) {
  EXPECT_EQ(iommu_fix(t),
            "add intel_iommu=on to the kernel command line (GRUB_CMDLINE_LINUX in "
            "/etc/default/grub, then update-grub and reboot); iommu=pt is optional");
}

TEST_F(Pending, InTheFileButNotInGrubCfg) {
  t.file("/etc/default/grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\n");
  EXPECT_EQ(iommu_fix(t),
            "intel_iommu=on is in /etc/default/grub but not in /boot/grub/grub.cfg: run "
            "update-grub");
}

TEST_F(Pending, InTheFileAndGrubCfgButNotInProcCmdline) {
  t.file("/etc/default/grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\n");
  grub_cfg_args("quiet intel_iommu=on");
  EXPECT_EQ(iommu_fix(t),
            "intel_iommu=on is in /etc/default/grub and in /boot/grub/grub.cfg but not in "
            "/proc/cmdline: reboot");
}

TEST_F(Pending, IntelIommuOffStillRunningButReplacedInTheConfiguration) {
  t.file("/proc/cmdline",
         "BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=/dev/sda1 ro intel_iommu=off\n");
  t.file("/etc/default/grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\n");
  grub_cfg_args("quiet intel_iommu=on");
  auto fs = make_real_host_fs(t.root());
  auto modules = ModuleIndex::open(*fs);
  CheckReport r = run_checks(*fs, *modules);
  const std::string pending =
      "intel_iommu=on is in /etc/default/grub and in /boot/grub/grub.cfg but not in "
      "/proc/cmdline: reboot";
  EXPECT_EQ(r.find("iommu-kernel")->fix, pending);
  EXPECT_EQ(r.find("kernel-cmdline")->fix, pending);
}

}  // namespace
}  // namespace pcipass
