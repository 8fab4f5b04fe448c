// mkinitcpio.conf's arrays: the round trip (parse then print gives the same bytes), the edits,
// malformed arrays refused; and the initramfs helpers: detection, image listings.
#include <gtest/gtest.h>

#include "initramfs/initramfs.h"
#include "initramfs/mkinitcpio_conf.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

using initramfs::parse_shell_conf;
using initramfs::with_array_words;

const std::vector<std::string> kVfio = {"vfio", "vfio_iommu_type1", "vfio_pci"};

TEST(MkinitcpioConf, RoundTripsAwkwardFilesByteForByte) {
  for (std::string text : {
           std::string("MODULES=()\n"),
           std::string("# c\r\nMODULES=(a 'b c' \"d\\\"e\")\r\nHOOKS=(base)"),
           std::string("MODULES=(\n  ext4 # root\n  \"crc32c-intel\" \\\n)\nFILES=(\"/x (y)\")\n"),
           std::string("X=\"multi\nMODULES=(not an array)\"\nMODULES+=(a)\n"),
           std::string(""),
           std::string("no newline"),
       }) {
    auto c = parse_shell_conf(text, "/etc/mkinitcpio.conf");
    ASSERT_TRUE(c.ok()) << text;
    EXPECT_EQ(c->print(), text);
  }
}

TEST(MkinitcpioConf, ReadsWordsAsBashDoes) {
  auto c = parse_shell_conf("MODULES=(a 'b c' \"d\\\"e\" f\\ g) # x\nMODULES+=(h)\n", "f");
  ASSERT_TRUE(c.ok());
  auto arrays = c->arrays("MODULES");
  ASSERT_EQ(arrays.size(), 2u);
  std::vector<std::string> values;
  for (const auto& w : arrays[0]->words) values.push_back(w.value);
  EXPECT_EQ(values, (std::vector<std::string>{"a", "b c", "d\"e", "f g"}));
  EXPECT_TRUE(arrays[1]->append);
  // A multi-line string's lines are not assignments.
  auto s = parse_shell_conf("X=\"multi\nMODULES=(no)\"\n", "f");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->arrays("MODULES").empty());
}

TEST(MkinitcpioConf, AddsToTheLastArrayKeepingEverythingElse) {
  auto r = with_array_words("MODULES=(i915)  # x\nMODULES=(\n  ext4 # root\n)\nHOOKS=(base)", "f",
                            "MODULES", kVfio, "=", true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r,
            "MODULES=(i915)  # x\nMODULES=(\n  ext4 vfio vfio_iommu_type1 vfio_pci # root\n)\n"
            "HOOKS=(base)");
  auto empty = with_array_words("MODULES=()\n", "f", "MODULES", kVfio, "=", true);
  EXPECT_EQ(*empty, "MODULES=(vfio vfio_iommu_type1 vfio_pci)\n");
  // '-' and '_' alike: vfio-pci is already there.
  auto some = with_array_words("MODULES=(vfio-pci)\n", "f", "MODULES", kVfio, "=", true);
  EXPECT_EQ(*some, "MODULES=(vfio-pci vfio vfio_iommu_type1)\n");
  auto none = with_array_words("HOOKS=(base)", "f", "MODULES", kVfio, "+=", true);
  EXPECT_EQ(*none, "HOOKS=(base)\nMODULES+=(vfio vfio_iommu_type1 vfio_pci)\n");
  auto done = with_array_words("MODULES=(vfio vfio_pci vfio_iommu_type1)", "f", "MODULES", kVfio,
                               "=", true);
  EXPECT_EQ(*done, "MODULES=(vfio vfio_pci vfio_iommu_type1)");
}

TEST(MkinitcpioConf, RefusesWhatItCannotEditSafely) {
  auto open = with_array_words("MODULES=(a\n", "/etc/mkinitcpio.conf", "MODULES", kVfio, "=", true);
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.error().message,
            "/etc/mkinitcpio.conf: MODULES=( on line 1 is not closed with ')'");
  auto quote = with_array_words("MODULES=('a)\n", "f", "MODULES", kVfio, "=", true);
  ASSERT_FALSE(quote.ok());
  auto string = with_array_words("MODULES=\"a b\"\n", "f", "MODULES", kVfio, "=", true);
  ASSERT_FALSE(string.ok());
  EXPECT_EQ(string.error().message, "f: MODULES is assigned a string on line 1, not an array");
}

TEST(InitramfsListing, FindsModulesWithAnyCompressionAndFilesByPath) {
  std::string lsinitramfs =
      "usr/lib/modules/6.1.0/kernel/drivers/vfio/pci/vfio-pci.ko.zst\n"
      "etc/udev/rules.d/05-pcipass-vfio.rules\n";
  EXPECT_TRUE(initramfs::listing_has_module(lsinitramfs, "vfio_pci"));
  EXPECT_FALSE(initramfs::listing_has_module(lsinitramfs, "vfio"));
  EXPECT_FALSE(initramfs::listing_has_module("x/vfio-pci-core.ko\n", "vfio_pci"));
  EXPECT_TRUE(initramfs::listing_has_file(lsinitramfs, "/etc/udev/rules.d/05-pcipass-vfio.rules"));
  // lsinitrd prints `ls -l` lines.
  std::string lsinitrd =
      "-rw-r--r--   1 root     root        41208 Oct  2 12:00 "
      "usr/lib/modules/6.5.6/kernel/drivers/vfio/pci/vfio-pci.ko.xz\n";
  EXPECT_TRUE(initramfs::listing_has_module(lsinitrd, "vfio_pci"));
}

TEST(InitramfsDetect, NamesWhatItFoundAndHowToChoose) {
  TempTree t;
  auto none = initramfs::detect(*make_real_host_fs(t.root()), std::nullopt);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message,
            "no initramfs system found (looked for initramfs-tools, dracut, mkinitcpio)");
  EXPECT_NE(none.error().fix.find("--initramfs NAME"), std::string::npos);
  t.file("/usr/sbin/update-initramfs", "#!/bin/sh\n");
  auto one = initramfs::detect(*make_real_host_fs(t.root()), std::nullopt);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ((*one)->system, initramfs::System::kInitramfsTools);
  t.file("/usr/bin/dracut", "#!/bin/bash\n");
  auto two = initramfs::detect(*make_real_host_fs(t.root()), std::nullopt);
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.error().message,
            "several initramfs systems are installed: initramfs-tools "
            "(/usr/sbin/update-initramfs), dracut (/usr/bin/dracut)");
  EXPECT_EQ(two.error().fix,
            "say which one builds the images this host boots: --initramfs "
            "initramfs-tools|dracut|mkinitcpio");
  auto chosen = initramfs::detect(*make_real_host_fs(t.root()), initramfs::System::kDracut);
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ((*chosen)->system, initramfs::System::kDracut);
  auto absent = initramfs::detect(*make_real_host_fs(t.root()), initramfs::System::kMkinitcpio);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().message,
            "--initramfs mkinitcpio: it is not installed here; found initramfs-tools "
            "(/usr/sbin/update-initramfs), dracut (/usr/bin/dracut)");
}

}  // namespace
}  // namespace pcipass::test
