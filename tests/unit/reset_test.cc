// The reset verdict of show and plan: which reset vfio-pci can use between VM starts, from the
// kernel's reset_method when it lists one, else from config space and the bus's other devices.
#include "impact/reset.h"

#include <gtest/gtest.h>

#include "pci/inventory.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

const std::string kRoot = "/sys/devices/pci0000:00";
const std::string kPort = kRoot + "/0000:00:1c.0";

std::string config_of(TempTree& t, const std::string& dev) {
  return *make_real_host_fs(t.root())->read(dev + "/config", 4096);
}

// Config space with a capability list: a PCI Express capability at 0x40 (FLR in Device
// Capabilities when `flr`) and a Power Management capability at 0x50 (NoSoftRst when
// `no_soft_reset`).
void add_caps(TempTree& t, const std::string& dev, bool flr, bool pm, bool no_soft_reset) {
  std::string cfg = config_of(t, dev);
  cfg[0x06] = 0x10;  // Status: capability list
  cfg[0x34] = 0x40;
  cfg[0x40] = 0x10, cfg[0x41] = pm ? 0x50 : 0x00;
  if (flr) cfg[0x47] = 0x10;  // Device Capabilities bit 28
  if (pm) {
    cfg[0x50] = 0x01, cfg[0x51] = 0x00;
    cfg[0x54] = static_cast<char>(no_soft_reset ? 0x08 : 0x00);
  }
  t.file(dev + "/config", cfg);
}

struct Host {
  TempTree t;
  std::unique_ptr<HostFs> fs;
  std::optional<Inventory> inv;
  Host() { t.pci_device(kRoot, "0000:00:1c.0", 0x8086, 0xa110, 0x060400, "pcieport"); }
  ResetAssessment assess(const std::string& addr) {
    fs = make_real_host_fs(t.root());
    auto scanned = Inventory::scan(*fs, nullptr);
    EXPECT_TRUE(scanned.ok());
    inv = std::move(*scanned);
    Device* d = inv->find(*parse_address(addr));
    EXPECT_NE(d, nullptr);
    inv->load_details(*fs, *d, nullptr);
    return assess_reset(*inv, *d);
  }
};

TEST(Reset, FlrInConfigSpaceResetsTheFunctionAlone) {
  Host h;
  h.t.pci_device(kPort, "0000:01:00.0", 0x8086, 0x1533, 0x020000, "igb");
  add_caps(h.t, kPort + "/0000:01:00.0", true, true, true);
  auto r = h.assess("01:00.0");
  EXPECT_EQ(reset_verdict_id(r.verdict), std::string("function"));
  // NoSoftRst+: no PM reset; alone below its port: the kernel's bus method.
  EXPECT_EQ(r.methods, (std::vector<std::string>{"flr", "bus"}));
  EXPECT_FALSE(r.methods_from_kernel);
  EXPECT_TRUE(r.flr);
  EXPECT_EQ(r.reason, "vfio-pci resets it alone (flr, bus)");
  EXPECT_EQ(r.fix, "");
}

TEST(Reset, TheKernelsListWins) {
  Host h;
  h.t.pci_device(kPort, "0000:01:00.0", 0x8086, 0x1533, 0x020000, "igb");
  add_caps(h.t, kPort + "/0000:01:00.0", true, true, false);
  h.t.file(kPort + "/0000:01:00.0/reset_method", "bus\n");  // e.g. FLR disabled by a quirk
  auto r = h.assess("01:00.0");
  EXPECT_EQ(reset_verdict_id(r.verdict), std::string("bus_alone"));
  EXPECT_EQ(r.methods, std::vector<std::string>{"bus"});
  EXPECT_TRUE(r.methods_from_kernel);
}

TEST(Reset, ABusResetThatReachesOthersNeedsThemInTheSameVm) {
  Host h;
  h.t.pci_device(kPort, "0000:01:00.0", 0x10de, 0x1b80, 0x030000, "nouveau");
  h.t.pci_device(kPort, "0000:01:00.1", 0x10de, 0x10f0, 0x040300, "snd_hda_intel");
  auto r = h.assess("01:00.0");
  EXPECT_EQ(reset_verdict_id(r.verdict), std::string("bus_shared"));
  EXPECT_TRUE(r.methods.empty());
  ASSERT_EQ(r.bus_reset_also.size(), 1u);
  EXPECT_EQ(r.bus_reset_also[0].str(), "0000:01:00.1");
  auto alone = r;
  assigned_together(alone, {*parse_address("01:00.0")});
  EXPECT_EQ(alone.fix,
            "assign 0000:01:00.1 to the same VM as this device, or expect its state to carry "
            "over from one VM start to the next");
  assigned_together(r, {*parse_address("01:00.0"), *parse_address("01:00.1")});
  EXPECT_EQ(r.fix, "");
  EXPECT_EQ(r.reason,
            "no reset of its own: only a bus reset, which also resets 0000:01:00.1, all of them "
            "assigned with it here, so QEMU can reset them together");
}

TEST(Reset, WithoutTheKernelsListAShortConfigSpaceTellsNothing) {
  Host h;
  h.t.pci_device(kPort, "0000:01:00.0", 0x10de, 0x1b80, 0x030000, "nouveau");
  h.t.pci_device(kPort, "0000:01:00.1", 0x10de, 0x10f0, 0x040300, "snd_hda_intel");
  std::string cfg = config_of(h.t, kPort + "/0000:01:00.0");
  h.t.file(kPort + "/0000:01:00.0/config", cfg.substr(0, 64));  // as a user reads it
  auto r = h.assess("01:00.0");
  EXPECT_EQ(reset_verdict_id(r.verdict), std::string("unknown"));
  EXPECT_EQ(r.fix, "run pcipass as root: config space past 64 bytes is root's to read");
}

TEST(Reset, AnIntegratedFunctionWithoutCapabilitiesHasNone) {
  Host h;
  h.t.pci_device(kRoot, "0000:00:14.0", 0x1022, 0x790b, 0x0c0500, "piix4_smbus");
  auto r = h.assess("00:14.0");
  EXPECT_EQ(reset_verdict_id(r.verdict), std::string("none"));
  EXPECT_TRUE(r.methods.empty());
}

TEST(Reset, KnownBadGpusNeedVendorResetWhateverTheyAdvertise) {
  Host h;
  h.t.pci_device(kPort, "0000:01:00.0", 0x1002, 0x731f, 0x030000, "amdgpu");  // Navi 10
  add_caps(h.t, kPort + "/0000:01:00.0", true, true, false);
  auto r = h.assess("01:00.0");
  EXPECT_EQ(reset_verdict_id(r.verdict), std::string("vendor_reset"));
  EXPECT_EQ(r.family, "AMD Navi 10");
  EXPECT_EQ(r.fix,
            "install the vendor-reset module (github.com/gnif/vendor-reset) and, on kernel 5.15 "
            "or later, select it: echo device_specific > "
            "/sys/bus/pci/devices/0000:01:00.0/reset_method");
}

}  // namespace
}  // namespace pcipass::test
