// pcipass attach/detach and plan --domain (src/vm/attach.*, src/vm/domain_xml.*) against the fake
// libvirt, the domain XML reader on real and hostile documents, and the C API implementation
// against libvirt's own test:///default driver when pcipass is built with libvirt.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "fake_libvirt.h"
#include "temp_tree.h"
#include "vm/attach.h"
#include "vm/domain_xml.h"

namespace pcipass::test {
namespace {

// A q35 domain as libvirt 9 writes it: three root ports, the first holding the NIC.
std::string q35_xml(bool all_ports_used = false) {
  std::string xml =
      "<domain type='kvm' id='1'>\n  <name>vm1</name>\n"
      "  <os>\n    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n  </os>\n"
      "  <devices>\n"
      "    <!-- a comment, <not an element> -->\n"
      "    <controller type='pci' index='0' model='pcie-root'/>\n";
  for (int i = 1; i <= 3; ++i)
    xml += "    <controller type='pci' index='" + std::to_string(i) +
           "' model='pcie-root-port'>\n      <model name='pcie-root-port'/>\n"
           "      <target chassis='" +
           std::to_string(i) + "' port='0x1" + std::to_string(i) +
           "'/>\n      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x" +
           std::to_string(i - 1) + "'/>\n    </controller>\n";
  xml +=
      "    <interface type='network'>\n      <source network='default'/>\n"
      "      <model type='virtio'/>\n"
      "      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n"
      "    </interface>\n";
  if (all_ports_used)
    xml +=
        "    <disk type='file' device='disk'><target dev='vda' bus='virtio'/>\n"
        "      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>\n"
        "    </disk>\n"
        "    <memballoon model='virtio'>\n"
        "      <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>\n"
        "    </memballoon>\n";
  return xml + "  </devices>\n</domain>\n";
}

// An i440fx domain: PIIX3's IDE and USB at 00:01.x, VGA at 00:02.0, `used` virtio devices from
// slot 3 up.
std::string pc_xml(int used) {
  std::string xml =
      "<domain type='qemu'><name>pc1</name><os><type machine='pc-i440fx-7.2'>hvm</type></os>"
      "<devices>"
      "<controller type='usb' index='0' model='piix3-uhci'><address type='pci' domain='0x0000' "
      "bus='0x00' slot='0x01' function='0x2'/></controller>"
      "<controller type='ide' index='0'><address type='pci' domain='0x0000' bus='0x00' "
      "slot='0x01' function='0x1'/></controller>"
      "<video><model type='cirrus'/><address type='pci' domain='0x0000' bus='0x00' slot='0x02' "
      "function='0x0'/></video>";
  for (int s = 3; s < 3 + used; ++s)
    xml += "<disk><address type=\"pci\" domain=\"0x0000\" bus=\"0x00\" slot=\"" +
           std::to_string(s) + "\" function=\"0x0\"/></disk>";
  return xml + "</devices></domain>";
}

const char* kHostdev0 =
    "    <hostdev mode='subsystem' type='pci' managed='yes'>\n"
    "      <source>\n"
    "        <address domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>\n"
    "      </source>\n"
    "      <alias name='hostdev0'/>\n"
    "      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>\n"
    "    </hostdev>\n";

std::string with_hostdev(std::string xml) {
  return xml.insert(xml.find("  </devices>"), kHostdev0);
}

TEST(DomainXml, Q35RootPortsAndWhatIsPluggedIntoThem) {
  auto d = vm::parse_domain_xml(q35_xml());
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->name, "vm1");
  EXPECT_EQ(d->machine, vm::Machine::kQ35);
  ASSERT_EQ(d->root_ports.size(), 3u);
  EXPECT_TRUE(d->root_ports[0].occupied);
  EXPECT_FALSE(d->root_ports[1].occupied);
  auto b = vm::slot_budget(*d, vm::Affect::kLive, 1);
  EXPECT_EQ(b.free_places, std::vector<int>({2, 3}));
  EXPECT_EQ(b.describe(), "2 empty hot-pluggable pcie-root-ports, 1 needed: 1 left");
  EXPECT_TRUE(vm::check_budget(b, "vm1"));
}

TEST(DomainXml, PcCountsTheSlotsTheXmlUsesAndTheHostBridge) {
  auto d = vm::parse_domain_xml(pc_xml(25));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->machine, vm::Machine::kPc);
  // Slot 0 (host bridge), 1 (PIIX3), 2 (VGA), 3..27: 4 left of 32.
  auto b = vm::slot_budget(*d, vm::Affect::kLive, 1);
  EXPECT_EQ(b.free, 4);
  EXPECT_EQ(b.remaining, 3);
  EXPECT_EQ(vm::budget_warnings(b, "pc1").size(), 0u);
  auto full = vm::slot_budget(*vm::parse_domain_xml(pc_xml(29)), vm::Affect::kLive, 1);
  EXPECT_EQ(full.free, 0);
  auto refused = vm::check_budget(full, "pc1");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message,
            "domain pc1 has no room on its PCI bus: 0 free slots on bus 0 (pci.0), 1 needed: 0 "
            "left");
}

TEST(DomainXml, PcConfigGoesAheadWhileLibvirtCanAddABridge) {
  auto d = vm::parse_domain_xml(pc_xml(28));  // one slot left
  ASSERT_TRUE(d);
  auto b = vm::slot_budget(*d, vm::Affect::kConfig, 2);
  EXPECT_FALSE(b.refused());
  EXPECT_TRUE(b.libvirt_adds);
  EXPECT_EQ(vm::budget_warnings(b, "pc1"),
            std::vector<std::string>({"domain pc1: 1 free slot on bus 0 (pci.0), 2 needed: 0 "
                                      "left; libvirt adds a pci-bridge itself for --config"}));
  EXPECT_TRUE(vm::slot_budget(*d, vm::Affect::kLive, 2).refused());
  auto full = vm::slot_budget(*vm::parse_domain_xml(pc_xml(29)), vm::Affect::kConfig, 1);
  EXPECT_TRUE(full.refused());  // no slot for libvirt's pci-bridge either
}

TEST(DomainXml, HostdevsAndTheirGuestAddresses) {
  auto d = vm::parse_domain_xml(with_hostdev(q35_xml()));
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_EQ(d->hostdevs.size(), 1u);
  EXPECT_EQ(d->hostdevs[0].host.str(), "0000:00:02.0");
  EXPECT_TRUE(d->hostdevs[0].managed);
  ASSERT_TRUE(d->hostdevs[0].guest);
  EXPECT_EQ(d->hostdevs[0].guest->bus, 2);
  EXPECT_TRUE(d->root_ports[1].occupied);  // the source address is the host's, not the guest's
  EXPECT_FALSE(d->root_slots.count(2) && d->root_ports[2].occupied);
}

std::string fixture(const std::string& name) {
  std::ifstream in(source_path("tests/fixtures/libvirt/" + name));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(DomainXml, LibvirtsOwnXmlFromTheFixtures) {
  auto t = vm::parse_domain_xml(fixture("test-default.xml"));
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->name, "test");
  EXPECT_EQ(t->machine, vm::Machine::kPc);  // the test driver names no machine type
  EXPECT_EQ(vm::slot_budget(*t, vm::Affect::kLive, 1).free, 29);
  auto q = vm::parse_domain_xml(fixture("q35-hostdev.xml"));
  ASSERT_TRUE(q) << q.error().message;
  ASSERT_EQ(q->hostdevs.size(), 1u);
  EXPECT_EQ(q->hostdevs[0].host.str(), "0000:01:00.0");
  // Port 1 holds the NIC, port 2 is hotplug='off', port 3 holds the host device.
  auto b = vm::slot_budget(*q, vm::Affect::kLive, 1);
  EXPECT_EQ(b.free, 0);
  EXPECT_TRUE(b.refused());
}

TEST(DomainXml, FreePortsAreAscendingAndDistinctWhateverTheOrder) {
  std::string xml = "<domain><os><type machine='q35'/></os><devices>";
  for (int i : {5, 2, 5, 3})
    xml += "<controller type='pci' model='pcie-root-port' index='" + std::to_string(i) + "'/>";
  auto d = vm::parse_domain_xml(xml + "</devices></domain>");
  ASSERT_TRUE(d);
  EXPECT_EQ(vm::slot_budget(*d, vm::Affect::kLive, 1).free_places, std::vector<int>({2, 3, 5}));
}

TEST(DomainXml, HostileDocumentsAreErrorsNotCrashes) {
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "<a>";
  const std::vector<std::string> bad = {
      "",
      "not xml",
      "<domain>",
      "<domain><name>x</domain>",
      "<domain a=b/>",
      "<domain a='1/>",
      "<network/>",
      deep,
      "<domain><devices><address type='pci' bus='0x100' slot='0'/></devices></domain>",
      "<domain><devices><address type='pci' bus='0' slot='32'/></devices></domain>",
      "<domain><devices><address type='pci' bus='zz' slot='0'/></devices></domain>",
      "<domain><devices><address type='pci' slot='1'/></devices></domain>",
      "<domain>&bogus;</domain>",
      "<domain><![CDATA[ unterminated </domain>",
      "<domain></domain> trailing",
  };
  for (const auto& x : bad) {
    auto d = vm::parse_domain_xml(x);
    EXPECT_FALSE(d) << x;
    if (!d) {
      EXPECT_EQ(d.error().kind, ErrorKind::kInvalid) << x;
    }
  }
  EXPECT_TRUE(vm::parse_domain_xml("<?xml version='1.0'?>\n<domain>&amp;&#65;&#x42;</domain>"));
}

TEST(LibvirtDiagnosis, KnownMessagesGetOneLine) {
  EXPECT_TRUE(vm::diagnose_libvirt_error(
      "Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory"));
  EXPECT_TRUE(vm::diagnose_libvirt_error(
      "Operation not supported: cannot hot unplug multifunction PCI device: 0000:00:03.0"));
  EXPECT_FALSE(vm::diagnose_libvirt_error("something pcipass has never seen"));
}

// TempTree::gpu_workstation: 00:02.0 a NIC on vfio-pci alone in group 2, 01:00.0/.1 a GPU and
// its audio function (group 3, on nouveau and snd_hda_intel).
class Attach : public ::testing::Test {
 protected:
  void SetUp() override {
    t.gpu_workstation();
    lib.domains["vm1"] = {q35_xml(), q35_xml(), vm::DomainState::kRunning};
    lib.domains["off"] = {q35_xml(), q35_xml(), vm::DomainState::kShutoff};
    lib.domains["full"] = {q35_xml(true), q35_xml(true), vm::DomainState::kRunning};
    lib.domains["pc1"] = {pc_xml(3), pc_xml(3), vm::DomainState::kRunning};
    injected.libvirt = &lib;
  }
  CliRun run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", t.root()});
    return run_cli(args, &injected);
  }
  TempTree t;
  FakeLibvirt lib;
  cli::Injected injected;
};

TEST_F(Attach, DryRunReadsTheDomainAndChangesNothing) {
  auto r = run({"attach", "vm1", "00:02.0", "--dry-run"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(lib.changes().empty());
  EXPECT_EQ(lib.calls, std::vector<std::string>(
                           {"open qemu:///system", "lookup vm1", "state vm1", "xml vm1 live"}));
  EXPECT_EQ(r.out,
            "dry run: pcipass would call virDomainAttachDeviceFlags on domain vm1 "
            "(qemu:///system, running) with flags live, once per element:\n"
            "<hostdev mode='subsystem' type='pci' managed='yes'>\n"
            "  <source>\n"
            "    <address domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>\n"
            "  </source>\n"
            "</hostdev>\n"
            "nothing was changed\n"
            "domain vm1 (live, q35): 2 empty hot-pluggable pcie-root-ports, 1 needed: 1 left\n");
}

TEST_F(Attach, AttachesLiveAndConfigWithTheUriFromTheEnvironment) {
  injected.process = [](bool live) {
    ProcessContext p;
    p.live = live;
    p.environment["LIBVIRT_DEFAULT_URI"] = "qemu+ssh://host/system";
    return p;
  };
  auto r = run({"attach", "vm1", "0000:00:02.0", "--live", "--config"});
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(lib.changes().size(), 1u);
  EXPECT_EQ(lib.calls.front(), "open qemu+ssh://host/system");
  EXPECT_EQ(lib.changes()[0].substr(0, lib.changes()[0].find('\n')), "attach vm1 live|config");
  EXPECT_NE(r.out.find("attached 0000:00:02.0 to domain vm1 (live and config)\n"),
            std::string::npos);
  auto c = run({"attach", "vm1", "00:02.0", "--connect", "test:///default", "--dry-run"});
  EXPECT_EQ(lib.calls[lib.calls.size() - 4], "open test:///default");
}

TEST_F(Attach, AMultifunctionCardSharesOneRootPortFunctionZeroLast) {
  auto r = run({"--json", "attach", "vm1", "01:00.0", "--with-group"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto changes = lib.changes();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_NE(changes[0].find("function='0x1'/>\n  </source>"), std::string::npos) << changes[0];
  EXPECT_NE(changes[0].find("bus='0x03' slot='0x00' function='0x1'/>"), std::string::npos);
  EXPECT_NE(changes[1].find("bus='0x03' slot='0x00' function='0x0' multifunction='on'/>"),
            std::string::npos)
      << changes[1];
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "pcipass.attach/1");
  EXPECT_EQ(j["calls"].size(), 2u);
  EXPECT_EQ(j["calls"][1]["address"], "0000:01:00.0");
  EXPECT_EQ(j["calls"][1]["done"], true);
  EXPECT_EQ(j["budgets"][0]["remaining"], 1);
  EXPECT_EQ(j["flags"]["live"], true);
}

TEST_F(Attach, OnPcAMultifunctionCardTakesTheHighestFreeSlotOfBusZero) {
  auto r = run({"attach", "pc1", "01:00.0", "--with-group"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto changes = lib.changes();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_NE(changes[0].find("bus='0x00' slot='0x1f' function='0x1'/>"), std::string::npos)
      << changes[0];
  EXPECT_NE(changes[1].find("bus='0x00' slot='0x1f' function='0x0' multifunction='on'/>"),
            std::string::npos)
      << changes[1];
  EXPECT_NE(r.out.find("domain pc1 (live, pc): 26 free slots on bus 0 (pci.0), 1 needed: 25 "
                       "left\n"),
            std::string::npos)
      << r.out;
}

TEST_F(Attach, RefusesAGroupThatWouldNotBeViableBeforeTalkingToLibvirt) {
  auto r = run({"attach", "vm1", "01:00.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("IOMMU group 3 would not be viable"), std::string::npos) << r.err;
  EXPECT_TRUE(lib.calls.empty());
}

TEST_F(Attach, RefusesADeviceTheHostNeedsBeforeTalkingToLibvirt) {
  auto r = run_cli(
      {"--root", source_path("tests/fixtures/hosts/intel-workstation"), "attach", "vm1", "02:00.0"},
      &injected);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "error: refusing to attach: 0000:02:00.0 holds the root filesystem (/ on nvme0n1p2)\n"
            "  fix: the host needs it; add --force only if the host can do without it\n");
  EXPECT_TRUE(lib.calls.empty());
  r = run_cli({"--root", source_path("tests/fixtures/hosts/intel-workstation"), "attach", "vm1",
               "02:00.0", "--force", "--dry-run"},
              &injected);
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(Attach, AConnectionFailureIsLibvirtsWordsAndTheDiagnosis) {
  lib.errors["open"][1] =
      "Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory";
  auto r = run({"attach", "vm1", "00:02.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "error: connecting to qemu:///system: libvirt: Failed to connect socket to "
            "'/var/run/libvirt/libvirt-sock': No such file or directory\n"
            "  fix: libvirtd (or virtqemud) is not running or not reachable: systemctl start "
            "libvirtd, or pass --connect\n");
}

TEST_F(Attach, UnknownDeviceAndUnknownDomain) {
  auto r = run({"attach", "vm1", "07:00.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(lib.calls.empty());
  r = run({"attach", "nosuch", "00:02.0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "error: looking up domain nosuch: libvirt: Domain not found: no domain with matching "
            "name 'nosuch'\n  fix: see the domains with `virsh -c qemu:///system list --all`\n");
}

TEST_F(Attach, LibvirtsErrorVerbatimThenTheDiagnosis) {
  lib.errors["attach"][1] =
      "unsupported configuration: host doesn't support passthrough of host PCI devices";
  auto r = run({"attach", "vm1", "00:02.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "error: attaching to domain vm1: libvirt: unsupported configuration: host doesn't "
            "support passthrough of host PCI devices\n"
            "  fix: turn on VT-d (Intel) or AMD-Vi/IOMMU (AMD) in the firmware setup, then run "
            "`pcipass setup --iommu` and reboot; `pcipass check` shows what is still missing\n");
  EXPECT_EQ(lib.changes().size(), 1u);  // the failed one; nothing to roll back
}

// The doctor's catalog explains libvirt's refusal with this host's evidence: the GPU's group 3
// holds its audio function, still on snd_hda_intel (TempTree::gpu_workstation).
TEST_F(Attach, AGroupNotViableGetsTheDoctorsFixForThisHost) {
  lib.errors["attach"][1] =
      "internal error: qemu unexpectedly closed the monitor: qemu-system-x86_64: -device "
      "vfio-pci,host=0000:01:00.0: vfio 0000:01:00.0: group 3 is not viable";
  auto r = run({"attach", "vm1", "00:02.0"});  // libvirt names the GPU: it is the one checked
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(
      r.err.find("  fix: `pcipass bind --with-group 0000:01:00.0` (or `pcipass bind "
                 "0000:01:00.0 0000:01:00.1`), after `pcipass plan` shows what the host loses\n"),
      std::string::npos)
      << r.err;
}

TEST_F(Attach, AFailedCallDetachesWhatThisRunAttached) {
  lib.errors["attach"][2] = "internal error: unable to execute QEMU command 'device_add'";
  auto r = run({"attach", "vm1", "01:00.0", "--with-group"});
  EXPECT_EQ(r.status, 1);
  auto changes = lib.changes();
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[2].substr(0, changes[2].find('\n')), "detach vm1 live");
  EXPECT_NE(changes[2].find("function='0x1'"), std::string::npos);
}

TEST_F(Attach, RefusesWhenTheGuestHasNoRoomLeft) {
  auto r = run({"attach", "full", "00:02.0", "--live"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: domain full has no room to hot-plug: 0 empty hot-pluggable "
            "pcie-root-ports, 1 needed: 0 left");
  EXPECT_TRUE(lib.changes().empty());
  // --config: libvirt adds a root port itself, so it goes ahead with a warning.
  r = run({"attach", "full", "00:02.0", "--config"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("libvirt adds a pcie-root-port per card itself for --config"),
            std::string::npos)
      << r.err;
}

TEST_F(Attach, LiveNeedsARunningDomainAndTheDefaultFollowsItsState) {
  auto r = run({"attach", "off", "00:02.0", "--live"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: domain off is shut off: --live needs a running domain");
  r = run({"attach", "off", "00:02.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(lib.changes()[0].substr(0, lib.changes()[0].find('\n')), "attach off config");
}

TEST_F(Attach, RefusesADeviceAlreadyInTheDomain) {
  lib.domains["vm1"].live_xml = with_hostdev(q35_xml());
  auto r = run({"attach", "vm1", "00:02.0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("0000:00:02.0 is already in domain vm1 (live definition)"),
            std::string::npos);
  EXPECT_TRUE(lib.changes().empty());
}

TEST_F(Attach, DetachFindsTheHostdevInTheDefinition) {
  lib.domains["vm1"].config_xml = with_hostdev(q35_xml());
  auto r = run({"--json", "detach", "vm1", "00:02.0", "--config"});
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(lib.changes().size(), 1u);
  EXPECT_EQ(lib.changes()[0],
            "detach vm1 config\n"
            "<hostdev mode='subsystem' type='pci' managed='yes'>\n"
            "  <source>\n"
            "    <address domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>\n"
            "  </source>\n"
            "</hostdev>\n");
  EXPECT_EQ(nlohmann::json::parse(r.out)["schema"], "pcipass.detach/1");
  r = run({"detach", "vm1", "00:02.0", "--live"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: 0000:00:02.0 is not in domain vm1 (live definition)");
}

TEST_F(Attach, DetachWithGroupTakesTheWholeCardFunctionZeroLast) {
  std::string card;
  for (int f : {0, 1})
    card +=
        "    <hostdev mode='subsystem' type='pci' managed='yes'>\n      <source>\n"
        "        <address domain='0x0000' bus='0x01' slot='0x00' function='0x" +
        std::to_string(f) +
        "'/>\n      </source>\n"
        "      <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x" +
        std::to_string(f) + "'" + (f == 0 ? " multifunction='on'" : "") + "/>\n    </hostdev>\n";
  std::string xml = q35_xml();
  lib.domains["off"].config_xml = xml.insert(xml.find("  </devices>"), card);
  auto r = run({"detach", "off", "01:00.0", "--with-group"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto changes = lib.changes();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_NE(changes[0].find("function='0x1'"), std::string::npos) << changes[0];
  EXPECT_NE(changes[1].find("function='0x0'"), std::string::npos) << changes[1];
  EXPECT_EQ(changes[1].find("multifunction"), std::string::npos);  // found by source alone
  EXPECT_EQ(r.out,
            "detached 0000:01:00.1 from domain off (config)\n"
            "detached 0000:01:00.0 from domain off (config)\n");
}

TEST_F(Attach, PlanReportsTheDomainsBudget) {
  auto r = run({"plan", "00:02.0", "--domain", "pc1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Domain pc1 (live, pc): 26 free slots on bus 0 (pci.0), 1 needed: 25 "
                       "left\n"),
            std::string::npos)
      << r.out;
  r = run({"--json", "plan", "00:02.0", "--domain", "full"});
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["domain_budget"]["remaining"], 0);
  EXPECT_NE(r.err.find("running out"), std::string::npos);
}

// libvirt's own test driver: what the C API implementation does against a real libvirt.
TEST(LibvirtCApi, TestDriverLooksUpReadsAndAttaches) {
  if (!vm::libvirt_built_in()) GTEST_SKIP() << "built without libvirt";
  auto lib = vm::make_libvirt();
  auto conn = lib->open("test:///default");
  if (!conn && conn.error().message.find("cannot load") != std::string::npos)
    GTEST_SKIP() << conn.error().message;
  ASSERT_TRUE(conn) << conn.error().message;
  auto missing = (*conn)->domain("nosuch");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(missing.error().message.find("libvirt: Domain not found"), std::string::npos)
      << missing.error().message;
  auto dom = (*conn)->domain("test");
  ASSERT_TRUE(dom) << dom.error().message;
  auto state = (*dom)->state();
  ASSERT_TRUE(state);
  EXPECT_EQ(*state, vm::DomainState::kRunning);
  auto xml = (*dom)->xml(false);
  ASSERT_TRUE(xml) << xml.error().message;
  auto parsed = vm::parse_domain_xml(*xml);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->name, "test");
  // The test driver answers attach of a hostdev with its own error, verbatim (it does not
  // implement device attach); what it says is recorded here so a change of libvirt shows.
  std::string hostdev =
      "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' "
      "bus='0x01' slot='0x00' function='0x0'/></source></hostdev>";
  auto att = (*dom)->attach(hostdev, {false, true});
  if (!att) {
    EXPECT_NE(att.error().message.find("attaching to domain test: libvirt: "), std::string::npos);
    std::cerr << "test:///default attach: " << att.error().message << '\n';
  }
}

// The static executable hands exactly the commands that reach libvirt to pcipass-libvirt
// (src/cli/main.cc); every other command stays in the static one.
bool needs(std::vector<std::string> words) {
  words.insert(words.begin(), "pcipass");
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  return cli::needs_libvirt(static_cast<int>(argv.size()), argv.data());
}

TEST(LibvirtTwin, OnlyCommandsThatReachLibvirtGoToTheTwin) {
  EXPECT_TRUE(needs({"attach", "vm1", "01:00.0"}));
  EXPECT_TRUE(needs({"--root", "/t", "detach", "vm1", "01:00.0", "--json"}));
  EXPECT_TRUE(needs({"plan", "01:00.0", "--domain", "vm1"}));
  EXPECT_TRUE(needs({"plan", "01:00.0", "--domain=vm1"}));
  EXPECT_FALSE(needs({"plan", "01:00.0"}));
  EXPECT_FALSE(needs({"doctor", "--domain", "vm1"}));  // reads libvirt's log, not libvirt
  EXPECT_FALSE(needs({"--root", "attach", "list"}));   // "attach" is --root's value here
  EXPECT_FALSE(needs({"xml", "01:00.0"}));
  EXPECT_FALSE(needs({}));
}

}  // namespace
}  // namespace pcipass::test
