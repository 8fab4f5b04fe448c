#include "host/cmdline.h"

#include <gtest/gtest.h>

namespace pcipass {
namespace {

using Param = KernelCmdline::Param;
using Params = std::vector<Param>;

Param kv(std::string k, std::string v) {
  return {std::move(k), std::move(v)};
}
Param bare(std::string k) {
  return {std::move(k), std::nullopt};
}

TEST(KernelCmdline, Empty) {
  for (const char* text : {"", " ", "\n", " \t \n"}) {
    KernelCmdline c = KernelCmdline::parse(text);
    EXPECT_TRUE(c.empty()) << text;
    EXPECT_TRUE(c.params().empty());
    EXPECT_TRUE(c.init_args().empty());
    EXPECT_FALSE(c.has_init_separator());
    EXPECT_FALSE(c.has("quiet"));
    EXPECT_EQ(c.get("quiet"), std::nullopt);
    EXPECT_EQ(c.str().value(), "");
  }
}

TEST(KernelCmdline, KeysValuesAndTrailingNewline) {
  KernelCmdline c =
      KernelCmdline::parse("BOOT_IMAGE=/vmlinuz-6.1.0-13-amd64 root=UUID=ab-cd ro quiet\n");
  EXPECT_EQ(c.params(), (Params{kv("BOOT_IMAGE", "/vmlinuz-6.1.0-13-amd64"),
                                kv("root", "UUID=ab-cd"), bare("ro"), bare("quiet")}));
  EXPECT_EQ(c.get("root"), "UUID=ab-cd");  // only the first '=' splits
  EXPECT_TRUE(c.has("quiet"));
  EXPECT_EQ(c.get("quiet"), std::nullopt);  // present, but without a value
  EXPECT_EQ(c.get("splash"), std::nullopt);
  EXPECT_FALSE(c.has("splash"));
  EXPECT_EQ(c.str().value(), "BOOT_IMAGE=/vmlinuz-6.1.0-13-amd64 root=UUID=ab-cd ro quiet");
}

TEST(KernelCmdline, WhiteSpaceOfAnyKindSeparates) {
  KernelCmdline c = KernelCmdline::parse("  a=1\tb \r\n c=  ");
  EXPECT_EQ(c.params(), (Params{kv("a", "1"), bare("b"), kv("c", "")}));
  EXPECT_EQ(c.get("c"), "");  // `c=` has an empty value, unlike `b`
}

TEST(KernelCmdline, QuotedValues) {
  KernelCmdline c = KernelCmdline::parse(R"(dyndbg="file drivers/vfio/* +p" quiet k="" e=")");
  EXPECT_EQ(c.params(), (Params{kv("dyndbg", "file drivers/vfio/* +p"), bare("quiet"), kv("k", ""),
                                kv("e", "")}));
}

TEST(KernelCmdline, QuotedWholeParameter) {
  KernelCmdline c = KernelCmdline::parse(R"("acpi_osi=Windows 2015" "two words" x)");
  EXPECT_EQ(c.params(), (Params{kv("acpi_osi", "Windows 2015"), bare("two words"), bare("x")}));
}

TEST(KernelCmdline, QuotesInsideAWordStay) {
  // The kernel strips a quote only at the start of the parameter or of its value.
  KernelCmdline c = KernelCmdline::parse(R"(a=x"y z"w b)");
  EXPECT_EQ(c.params(), (Params{kv("a", R"(x"y z"w)"), bare("b")}));
}

TEST(KernelCmdline, UnterminatedQuoteRunsToTheEnd) {
  KernelCmdline c = KernelCmdline::parse(R"(a="b c d)");
  EXPECT_EQ(c.params(), (Params{kv("a", "b c d")}));
}

TEST(KernelCmdline, EqualsAtStartIsNotASeparator) {
  KernelCmdline c = KernelCmdline::parse("=x =a=b");
  EXPECT_EQ(c.params(), (Params{bare("=x"), kv("=a", "b")}));
}

TEST(KernelCmdline, DoubleDashEndsKernelParameters) {
  KernelCmdline c =
      KernelCmdline::parse("console=ttyS0 quiet -- --firecracker-init --addr 0.0.0.0:2024 x=1\n");
  EXPECT_EQ(c.params(), (Params{kv("console", "ttyS0"), bare("quiet")}));
  EXPECT_TRUE(c.has_init_separator());
  EXPECT_EQ(c.init_args(),
            (std::vector<std::string>{"--firecracker-init", "--addr", "0.0.0.0:2024", "x=1"}));
  EXPECT_FALSE(c.has("x"));  // init's, not the kernel's
  EXPECT_EQ(c.str().value(), "console=ttyS0 quiet -- --firecracker-init --addr 0.0.0.0:2024 x=1");
}

TEST(KernelCmdline, DoubleDashAtTheEndAndWithAValue) {
  KernelCmdline c = KernelCmdline::parse("quiet --");
  EXPECT_TRUE(c.has_init_separator());
  EXPECT_TRUE(c.init_args().empty());
  EXPECT_FALSE(c.empty());
  EXPECT_EQ(c.str().value(), "quiet --");

  KernelCmdline v = KernelCmdline::parse("--=1 quiet");  // has a value: an ordinary parameter
  EXPECT_FALSE(v.has_init_separator());
  EXPECT_EQ(v.params(), (Params{kv("--", "1"), bare("quiet")}));
}

TEST(KernelCmdline, DuplicatesAreKeptAndTheLastWins) {
  KernelCmdline c = KernelCmdline::parse("console=tty0 console=ttyS0,115200n8 quiet");
  EXPECT_EQ(c.params().size(), 3u);
  EXPECT_EQ(c.get("console"), "ttyS0,115200n8");
  EXPECT_EQ(c.values("console"), (std::vector<std::string>{"tty0", "ttyS0,115200n8"}));

  KernelCmdline d = KernelCmdline::parse("foo=1 foo");
  EXPECT_TRUE(d.has("foo"));
  EXPECT_EQ(d.get("foo"), std::nullopt);  // the last one has no value
  ASSERT_NE(d.last("foo"), nullptr);
  EXPECT_EQ(*d.last("foo"), bare("foo"));
  EXPECT_EQ(d.values("foo"), (std::vector<std::string>{"1"}));
}

TEST(KernelCmdline, ModuleParametersIgnoreDashVersusUnderscore) {
  KernelCmdline c = KernelCmdline::parse("vfio-pci.ids=10de:1b80,10de:10f0 intel-iommu=on");
  EXPECT_EQ(c.get("vfio_pci.ids"), "10de:1b80,10de:10f0");
  EXPECT_EQ(c.get("vfio-pci.ids"), "10de:1b80,10de:10f0");
  EXPECT_FALSE(c.has("intel_iommu"));  // no dot: compared exactly, as __setup() parameters are
  EXPECT_TRUE(KernelCmdline::key_equal("vfio_iommu_type1.allow_unsafe_interrupts",
                                       "vfio-iommu-type1.allow-unsafe-interrupts"));
  EXPECT_FALSE(KernelCmdline::key_equal("vfio.ids", "vfio.idx"));
}

TEST(KernelCmdline, OptionsSplitEveryOccurrence) {
  KernelCmdline c = KernelCmdline::parse("intel_iommu=on,igfx_off intel_iommu=sm_on,, intel_iommu");
  EXPECT_EQ(c.options("intel_iommu"), (std::vector<std::string>{"on", "igfx_off", "sm_on"}));
  EXPECT_TRUE(c.options("iommu").empty());
}

TEST(KernelCmdline, Editing) {
  KernelCmdline c = KernelCmdline::parse("quiet intel_iommu=off splash intel_iommu=igfx_off");
  c.set("intel_iommu", "on");
  EXPECT_EQ(c.str().value(), "quiet intel_iommu=on splash");
  c.set("iommu", "pt");
  c.add("vfio-pci.ids", "10de:1b80");
  EXPECT_EQ(c.str().value(), "quiet intel_iommu=on splash iommu=pt vfio-pci.ids=10de:1b80");
  EXPECT_EQ(c.remove("splash"), 1u);
  EXPECT_EQ(c.remove("vfio_pci.ids", "1234:5678"), 0u);
  EXPECT_EQ(c.remove("vfio_pci.ids", "10de:1b80"), 1u);
  EXPECT_EQ(c.remove("absent"), 0u);
  c.set("nomodeset", std::nullopt);
  EXPECT_EQ(c.str().value(), "quiet intel_iommu=on iommu=pt nomodeset");
}

TEST(KernelCmdline, FormatQuotesWhiteSpaceAndRoundTrips) {
  KernelCmdline c;
  c.add("dyndbg", "module vfio_pci +p");
  c.add("two words", std::nullopt);
  c.add("k", "");
  c.add("plain", "x");
  EXPECT_EQ(c.str().value(), R"(dyndbg="module vfio_pci +p" "two words" k= plain=x)");
  EXPECT_EQ(KernelCmdline::parse(c.str().value()).params(), c.params());
}

TEST(KernelBool, KstrtoboolRules) {
  for (const char* t : {"1", "y", "Y", "yes", "on", "ON", "t", "true"})
    EXPECT_EQ(parse_kernel_bool(t), true) << t;
  for (const char* f : {"0", "n", "N", "no", "off", "Off", "f", "false"})
    EXPECT_EQ(parse_kernel_bool(f), false) << f;
  for (const char* bad : {"", "2", "o", "maybe"})
    EXPECT_EQ(parse_kernel_bool(bad), std::nullopt) << bad;
}

TEST(IommuSettings, NothingSet) {
  IommuCmdline s = iommu_settings(KernelCmdline::parse("quiet splash"));
  EXPECT_EQ(s.intel_iommu, std::nullopt);
  EXPECT_FALSE(s.amd_iommu_off);
  EXPECT_FALSE(s.iommu_off);
  EXPECT_EQ(s.iommu_pt, std::nullopt);
  EXPECT_FALSE(s.intremap_off);
}

TEST(IommuSettings, IntelLastOnOffWins) {
  EXPECT_EQ(iommu_settings(KernelCmdline::parse("intel_iommu=on")).intel_iommu, true);
  EXPECT_EQ(iommu_settings(KernelCmdline::parse("intel_iommu=on,igfx_off")).intel_iommu, true);
  EXPECT_EQ(iommu_settings(KernelCmdline::parse("intel_iommu=on intel_iommu=off")).intel_iommu,
            false);
  EXPECT_EQ(iommu_settings(KernelCmdline::parse("intel_iommu=off,on")).intel_iommu, true);
  EXPECT_EQ(iommu_settings(KernelCmdline::parse("intel_iommu=sm_on")).intel_iommu, std::nullopt);
}

TEST(IommuSettings, IommuOffPtAndAmd) {
  IommuCmdline s =
      iommu_settings(KernelCmdline::parse("iommu=pt amd_iommu=fullflush,off iommu=off"));
  EXPECT_TRUE(s.iommu_off);
  EXPECT_TRUE(s.amd_iommu_off);
  EXPECT_EQ(s.iommu_pt, true);
  EXPECT_EQ(iommu_settings(KernelCmdline::parse("iommu=pt iommu=nopt")).iommu_pt, false);
  EXPECT_EQ(iommu_settings(KernelCmdline::parse("iommu.passthrough=1")).iommu_pt, true);
  EXPECT_EQ(iommu_settings(KernelCmdline::parse("iommu=pt iommu.passthrough=0")).iommu_pt, false);
}

TEST(IommuSettings, InterruptRemapping) {
  IommuCmdline s = iommu_settings(KernelCmdline::parse("intremap=off"));
  EXPECT_TRUE(s.intremap_off);
  EXPECT_EQ(s.intremap_off_param, "intremap=off");
  s = iommu_settings(KernelCmdline::parse("nointremap"));
  EXPECT_TRUE(s.intremap_off);
  EXPECT_EQ(s.intremap_off_param, "nointremap");
  s = iommu_settings(KernelCmdline::parse("intremap=off intremap=on"));
  EXPECT_FALSE(s.intremap_off);
  EXPECT_EQ(s.intremap_off_param, "");
  s = iommu_settings(KernelCmdline::parse("intremap=nosid amd_iommu_intr=legacy"));
  EXPECT_FALSE(s.intremap_off);  // remapping stays on in both
}

}  // namespace
}  // namespace pcipass
