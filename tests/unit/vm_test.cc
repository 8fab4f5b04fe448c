// pcipass xml and qemu-args (src/vm): the elements and arguments for a small host, and the
// refusals, byte for byte (docs/vm.md).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

// TempTree::gpu_workstation.
class Vm : public ::testing::Test {
 protected:
  void SetUp() override { t.gpu_workstation(); }
  CliRun run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", t.root()});
    return run_cli(args);
  }
  TempTree t;
};

const char* kGpuXml =
    "<hostdev mode='subsystem' type='pci' managed='yes'>\n"
    "  <source>\n"
    "    <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n"
    "  </source>\n"
    "  <address type='pci' domain='0x0000' bus='0x00' slot='0x10' function='0x0' "
    "multifunction='on'/>\n"
    "</hostdev>\n"
    "<hostdev mode='subsystem' type='pci' managed='yes'>\n"
    "  <source>\n"
    "    <address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>\n"
    "  </source>\n"
    "  <address type='pci' domain='0x0000' bus='0x00' slot='0x10' function='0x1'/>\n"
    "</hostdev>\n";

const char* kGroupRefusal =
    "error: IOMMU group 3 would not be viable: 0000:01:00.1 (snd_hda_intel) is in it and not "
    "named, so the VM could not open the group\n"
    "  fix: add --with-group to pass every endpoint of group 3 (0000:01:00.0, 0000:01:00.1), or "
    "name them\n";

TEST_F(Vm, XmlRefusesADeviceWhoseGroupWouldStayWithTheHost) {
  for (const char* cmd : {"xml", "qemu-args"}) {
    auto r = run({cmd, "01:00.0"});
    EXPECT_EQ(r.status, 2) << cmd;
    EXPECT_EQ(r.out, "") << cmd;
    EXPECT_EQ(r.err, kGroupRefusal) << cmd;
  }
}

TEST_F(Vm, XmlKeepsAWholeCardInOneGuestSlot) {
  auto r = run({"xml", "--with-group", "01:00.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, kGpuXml);
  auto named = run({"xml", "01:00.1", "01:00.0"});
  EXPECT_EQ(named.out, kGpuXml);
}

TEST_F(Vm, XmlLeavesASingleFunctionToLibvirtAndTakesRomAndManagedOptions) {
  auto r = run({"xml", "--managed", "no", "--rom-bar", "off", "00:02.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "<hostdev mode='subsystem' type='pci' managed='no'>\n"
            "  <source>\n"
            "    <address domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>\n"
            "  </source>\n"
            "  <rom bar='off'/>\n"
            "</hostdev>\n");
}

TEST_F(Vm, RomFileMustExistUnderTheRoot) {
  auto r = run({"xml", "--rom-file", "/usr/share/vgabios/gpu.rom", "00:02.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "error: ROM file /usr/share/vgabios/gpu.rom is not a file on this host (root " +
                       t.root() +
                       ")\n  fix: copy the card's ROM image there (or correct the path), then run "
                       "again\n");
  t.file("/usr/share/vgabios/gpu.rom", "\x55\xaa");
  r = run({"xml", "--rom-file", "/usr/share/vgabios/gpu.rom", "00:02.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("  <rom file='/usr/share/vgabios/gpu.rom'/>\n"), std::string::npos);
  r = run({"xml", "--rom-file", "gpu.rom", "00:02.0"});
  EXPECT_EQ(r.err,
            "error: ROM file 'gpu.rom' is not an absolute path\n"
            "  fix: give the full path, e.g. /usr/share/vgabios/gpu.rom\n");
  r = run(
      {"xml", "--with-group", "--rom-file", "/usr/share/vgabios/gpu.rom", "00:02.0", "01:00.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "error: a ROM file belongs to one card, and 2 cards were named\n"
            "  fix: name the functions of one card (or one device) with a ROM file\n");
}

TEST_F(Vm, XmlJsonCarriesTheTextAndTheList) {
  auto r = run({"--json", "xml", "--with-group", "01:00.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "pcipass.xml/1");
  EXPECT_EQ(j["xml"], kGpuXml);
  ASSERT_EQ(j["hostdevs"].size(), 2u);
  EXPECT_EQ(j["hostdevs"][1]["address"], "0000:01:00.1");
  EXPECT_EQ(j["hostdevs"][1]["guest_address"]["slot"], 16);
  EXPECT_EQ(j["hostdevs"][1]["guest_address"]["function"], 1);
  EXPECT_EQ(j["hostdevs"][0]["guest_address"]["multifunction"], true);
  EXPECT_EQ(j["cards"][0]["host"], "0000:01:00");
}

TEST_F(Vm, QemuArgsOnQ35PutEachCardBehindARootPort) {
  auto r = run({"qemu-args", "--with-group", "--x-vga", "01:00.0", "00:02.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "-device pcie-root-port,id=rp1,chassis=1,slot=1 \\\n"
            "-device vfio-pci,host=0000:00:02.0,bus=rp1,addr=00.0 \\\n"
            "-device pcie-root-port,id=rp2,chassis=2,slot=2 \\\n"
            "-device vfio-pci,host=0000:01:00.0,bus=rp2,addr=00.0,multifunction=on,x-vga=on \\\n"
            "-device vfio-pci,host=0000:01:00.1,bus=rp2,addr=00.1\n");
  auto j = nlohmann::json::parse(run({"--json", "qemu-args", "--with-group", "01:00.0"}).out);
  EXPECT_EQ(j["argv"],
            nlohmann::json({"-device", "pcie-root-port,id=rp1,chassis=1,slot=1", "-device",
                            "vfio-pci,host=0000:01:00.0,bus=rp1,addr=00.0,"
                            "multifunction=on",
                            "-device", "vfio-pci,host=0000:01:00.1,bus=rp1,addr=00.1"}));
}

TEST_F(Vm, QemuArgsOnPcUseRootBusSlots) {
  t.file("/usr/share/kvm/gpu,1.rom", "\x55\xaa");
  auto r = run({"qemu-args", "--machine", "pc", "--rom-bar", "off", "--romfile",
                "/usr/share/kvm/gpu,1.rom", "00:02.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  // QEMU reads ",," as a comma inside a value.
  EXPECT_EQ(r.out,
            "-device vfio-pci,host=0000:00:02.0,bus=pci.0,addr=10.0,rombar=0,romfile=/usr/share/"
            "kvm/gpu,,1.rom\n");
  r = run({"qemu-args", "--machine", "pc", "--with-group", "00:02.0", "01:00.0"});
  EXPECT_EQ(r.out,
            "-device vfio-pci,host=0000:00:02.0,bus=pci.0,addr=10.0 \\\n"
            "-device vfio-pci,host=0000:01:00.0,bus=pci.0,addr=11.0,multifunction=on \\\n"
            "-device vfio-pci,host=0000:01:00.1,bus=pci.0,addr=11.1\n");
}

TEST_F(Vm, XVgaNeedsAVgaFunction) {
  auto r = run({"qemu-args", "--x-vga", "00:02.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: --x-vga applies to a VGA function (class 0300), and 0000:00:02.0 is not one\n"
            "  fix: name the GPU's VGA function (see `pcipass list`), or leave out --x-vga\n");
}

TEST_F(Vm, PciAssignIsExplainedNotEmitted) {
  const std::string expected =
      "error: -device pci-assign (KVM's legacy device assignment) no longer exists: it was "
      "removed from QEMU in 2.12 and from Linux in 4.12\n"
      "  fix: use vfio-pci: `pcipass qemu-args DEVICE...` prints its -device vfio-pci arguments "
      "(the device must be on vfio-pci: `pcipass bind DEVICE`)\n";
  for (auto args : std::vector<std::vector<std::string>>{
           {"qemu-args", "--pci-assign"},
           {"qemu-args", "--driver", "pci-assign", "00:02.0"},
           {"qemu-args", "--driver", "kvm-pci-assign", "00:02.0"}}) {
    auto r = run(args);
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, expected);
  }
  auto r = run({"qemu-args", "--driver", "virtio", "00:02.0"});
  EXPECT_EQ(r.err,
            "error: qemu-args knows no driver 'virtio'\n"
            "  fix: leave out --driver: QEMU assigns host devices with vfio-pci\n");
}

TEST_F(Vm, ProxmoxHostpciLines) {
  auto r =
      run({"qemu-args", "--format", "proxmox", "--with-group", "--x-vga", "01:00.0", "00:02.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "hostpci0: 0000:00:02.0,pcie=1\n"
            "hostpci1: 0000:01:00,pcie=1,x-vga=1\n");
  r = run({"qemu-args", "--format", "proxmox", "--romfile", "vbios.rom", "00:02.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "error: ROM file /usr/share/kvm/vbios.rom is not a file on this host (root " +
                       t.root() +
                       ")\n  fix: copy the card's ROM image there (or correct the path), then run "
                       "again\n");
  r = run({"qemu-args", "--format", "proxmox", "--romfile", "/tmp/vbios.rom", "00:02.0"});
  EXPECT_EQ(r.err,
            "error: Proxmox romfile '/tmp/vbios.rom' must be a file name without '/', ',' or ';'\n"
            "  fix: copy the ROM image into /usr/share/kvm/ and give its name\n");
  t.file("/usr/share/kvm/vbios.rom", "\x55\xaa");
  r = run({"qemu-args", "--format", "proxmox", "--machine", "pc", "--rom-bar", "off", "--romfile",
           "vbios.rom", "00:02.0"});
  EXPECT_EQ(r.out, "hostpci0: 0000:00:02.0,rombar=0,romfile=vbios.rom\n");
}

TEST_F(Vm, ProxmoxMappingNamesTheNode) {
  auto r = run({"qemu-args", "--format", "proxmox-mapping", "00:02.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "error: cannot read this host's name from /etc/hostname\n"
            "  fix: give the Proxmox node name with --node NAME\n");
  t.file("/etc/hostname", "pve1.example.org\n");
  r = run({"qemu-args", "--format", "proxmox-mapping", "00:02.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "pcipass-0000-00-02-0\n\tmap id=8086:10d3,iommugroup=2,node=pve1,path=0000:00:02.0\n");
  r = run({"qemu-args", "--format", "proxmox-mapping", "--node", "a,b", "00:02.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "error: 'a,b' is not a Proxmox node name (letters, digits and inner dashes)\n"
            "  fix: give the node's name as `pvecm nodes` shows it with --node NAME\n");
  auto j = nlohmann::json::parse(
      run({"--json", "qemu-args", "--format", "proxmox-mapping", "--with-group", "01:00.0"}).out);
  EXPECT_EQ(j["lines"][0]["value"], "mapping=pcipass-0000-01-00,pcie=1");
  EXPECT_EQ(j["mappings"][0]["iommu_group"], 3);
}

// A card whose USB function is already on vfio-pci: passing the GPU and its audio is allowed (the
// group stays viable), but it is not the whole card, so each passed function is its own card at
// guest function 0 (a guest sees a slot only through its function 0), without multifunction.
TEST_F(Vm, APartOfACardIsItsOwnSlot) {
  TempTree u;
  const std::string bus = "/sys/devices/pci0000:00";
  u.pci_device(bus, "0000:00:1c.0", 0x8086, 0x2448, 0x060400, "pcieport", 3);
  u.pci_device(bus + "/0000:00:1c.0", "0000:01:00.0", 0x10de, 0x1e87, 0x030000, "nouveau", 3);
  u.pci_device(bus + "/0000:00:1c.0", "0000:01:00.1", 0x10de, 0x10f8, 0x040300, "snd_hda_intel", 3);
  u.pci_device(bus + "/0000:00:1c.0", "0000:01:00.2", 0x10de, 0x1ad8, 0x0c0330, "vfio-pci", 3);
  auto r = run_cli({"--root", u.root(), "qemu-args", "01:00.0", "01:00.1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "-device pcie-root-port,id=rp1,chassis=1,slot=1 \\\n"
            "-device vfio-pci,host=0000:01:00.0,bus=rp1,addr=00.0 \\\n"
            "-device pcie-root-port,id=rp2,chassis=2,slot=2 \\\n"
            "-device vfio-pci,host=0000:01:00.1,bus=rp2,addr=00.0\n");
  r = run_cli({"--root", u.root(), "qemu-args", "--format", "proxmox", "01:00.0", "01:00.1"});
  EXPECT_EQ(r.out, "hostpci0: 0000:01:00.0,pcie=1\nhostpci1: 0000:01:00.1,pcie=1\n");
  r = run_cli({"--root", u.root(), "xml", "01:00.0", "01:00.1"});
  EXPECT_EQ(r.out.find("type='pci' domain"), std::string::npos) << r.out;
  // All three: one card again.
  r = run_cli({"--root", u.root(), "qemu-args", "--format", "proxmox", "--with-group", "01:00.0"});
  EXPECT_EQ(r.out, "hostpci0: 0000:01:00,pcie=1\n");
}

TEST_F(Vm, BridgesAndHostBridgesAreRefused) {
  auto r = run({"xml", "00:1c.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "error: 0000:00:1c.0 is a bridge (pcieport): bridges and ports stay with the host\n"
            "  fix: name the devices below it (see `pcipass tree`)\n");
}

}  // namespace
}  // namespace pcipass::test

namespace pcipass::test {
namespace {

// Text is printed even for a device the host needs (nothing changes yet), with a warning that a
// VM started with it takes it away.
TEST(VmHost, WarnsAboutADeviceTheHostNeeds) {
  auto r = run_cli({"--root", source_path("tests/fixtures/hosts/intel-workstation"), "qemu-args",
                    "--format", "proxmox", "02:00.0"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "hostpci0: 0000:02:00.0,pcie=1\n");
  EXPECT_EQ(r.err,
            "warning: 0000:02:00.0 holds the root filesystem (/ on nvme0n1p2): a VM started with "
            "it takes it from the host (see `pcipass plan 0000:02:00.0`)\n");
  r = run_cli({"--root", source_path("tests/fixtures/hosts/intel-workstation"), "--json", "xml",
               "02:00.0"});
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["host_critical"].size(), 1u);
  EXPECT_EQ(j["host_critical"][0]["reason"], "holds the root filesystem (/ on nvme0n1p2)");
}

}  // namespace
}  // namespace pcipass::test
