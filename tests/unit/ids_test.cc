// Names come from the pci.ids inside the host tree when it has one (so fixtures are stable).
#include "pci/ids.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "fifo_watchdog.h"
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

namespace pcipass::test {
namespace {

const char* kOptionIds =
    "8086  Option Corporation\n"
    "\t100e  Option NIC\n";

class PciIdsChoiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tree.file("/usr/share/misc/pci.ids", "8086  Tree Corporation\n");
    machine.file("/pci.ids", "8086  System Corporation\n");
    machine.file("/option.ids", kOptionIds);
    fs = make_real_host_fs(tree.root());
    local = make_real_host_fs("/");
  }
  PciIdsChoice choose(std::optional<std::string> option, std::string system) {
    return choose_pci_ids(*fs, *local, option, system).value();
  }
  TempTree tree, machine;
  std::unique_ptr<HostFs> fs, local;
};

TEST_F(PciIdsChoiceTest, ExplicitBeatsTheTreeWhichBeatsTheSystem) {
  auto c = choose(machine.real("/option.ids"), machine.real("/pci.ids"));
  EXPECT_EQ(c.source, PciIdsSource::kOption);
  EXPECT_EQ(PciIds(c.local).vendor(0x8086), "Option Corporation");
  c = choose(std::nullopt, machine.real("/pci.ids"));
  EXPECT_EQ(c.source, PciIdsSource::kTree);
  EXPECT_EQ(c.path, "/usr/share/misc/pci.ids");
  EXPECT_EQ(PciIds(c.local).vendor(0x8086), "Tree Corporation");
  std::filesystem::remove(tree.real("/usr/share/misc/pci.ids"));
  c = choose(std::nullopt, machine.real("/pci.ids"));
  EXPECT_EQ(c.source, PciIdsSource::kSystem);
  EXPECT_EQ(c.path, machine.real("/pci.ids"));
  EXPECT_EQ(PciIds(c.local).vendor(0x8086), "System Corporation");
  c = choose(std::nullopt, machine.real("/missing.ids"));
  EXPECT_EQ(c.source, PciIdsSource::kNone);
  EXPECT_EQ(c.local, "");
  EXPECT_EQ(PciIds(c.local).vendor(0x8086), "");
}

TEST_F(PciIdsChoiceTest, TheTreesFileResolvesInsideTheTree) {
  // Fedora's layout, linked absolutely: the link leads to the tree's hwdata, not the machine's.
  std::filesystem::remove(tree.real("/usr/share/misc/pci.ids"));
  tree.file("/usr/share/hwdata/pci.ids", "8086  Hwdata Corporation\n");
  std::filesystem::create_symlink("/usr/share/hwdata/pci.ids",
                                  tree.real("/usr/share/misc/pci.ids"));
  auto c = choose(std::nullopt, kNoSystemPciIds);
  EXPECT_EQ(c.source, PciIdsSource::kTree);
  EXPECT_EQ(c.path, "/usr/share/misc/pci.ids");
  EXPECT_EQ(c.local, tree.real("/usr/share/hwdata/pci.ids"));
  // A link out of the tree is no pci.ids of the tree.
  std::filesystem::remove(tree.real("/usr/share/misc/pci.ids"));
  std::filesystem::remove(tree.real("/usr/share/hwdata/pci.ids"));
  std::filesystem::create_symlink(machine.real("/pci.ids"), tree.real("/usr/share/misc/pci.ids"));
  EXPECT_EQ(choose(std::nullopt, kNoSystemPciIds).source, PciIdsSource::kNone);
}

TEST_F(PciIdsChoiceTest, AnOptionThatIsNoFileIsRefused) {
  auto r = choose_pci_ids(*fs, *local, machine.root(), kNoSystemPciIds);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
}

const std::string kWorkstation = "tests/fixtures/hosts/intel-workstation";

TEST(PciIdsCli, TheOptionWinsAndJsonSaysSo) {
  TempTree t;
  t.file("/option.ids", kOptionIds);
  auto r = run_cli(
      {"--root", source_path(kWorkstation), "--pci-ids", t.real("/option.ids"), "list", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"vendor_name\":\"Option Corporation\""), std::string::npos);
  EXPECT_NE(r.out.find("\"pci_ids\": {\"path\":\"" + t.real("/option.ids") +
                       "\",\"source\":\"option\",\"names\":\"available\"}\n}\n"),
            std::string::npos)
      << r.out.substr(r.out.size() - 200);
  for (const char* cmd : {"groups", "tree"}) {
    auto j = nlohmann::json::parse(run_cli({"--root", source_path(kWorkstation), "--pci-ids",
                                            t.real("/option.ids"), "--json", cmd})
                                       .out);
    EXPECT_EQ(j["pci_ids"]["source"], "option") << cmd;
    EXPECT_EQ(j["pci_ids"]["path"], t.real("/option.ids")) << cmd;
  }
  auto show = nlohmann::json::parse(
      run_cli({"--root", source_path(kWorkstation), "--json", "show", "00:1f.6"}).out);
  EXPECT_EQ(show["pci_ids"],
            (nlohmann::json{
                {"path", "/usr/share/misc/pci.ids"}, {"source", "tree"}, {"names", "available"}}));
  auto plan = nlohmann::json::parse(
      run_cli({"--root", source_path(kWorkstation), "--json", "plan", "02:00.0", "--force"}).out);
  EXPECT_EQ(plan["pci_ids"]["source"], "tree");
}

TEST(PciIdsCli, TheSystemsFileIsTheLastChoiceAndNoneGivesNumbers) {
  TempTree t, machine;
  const std::string bus = "/sys/devices/pci0000:00";
  t.pci_device(bus, "0000:00:03.0", 0x8086, 0x100e, 0x020000, "e1000e", 5);
  machine.file("/pci.ids", std::string(kOptionIds) + "C 02  Network controller\n\t00  Ethernet\n");
  cli::Injected with_system;
  with_system.system_pci_ids = machine.real("/pci.ids");
  auto r = run_cli({"--root", t.root(), "list"}, &with_system);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Option Corporation Option NIC [8086:100e]"), std::string::npos) << r.out;
  auto j = nlohmann::json::parse(run_cli({"--root", t.root(), "--json", "tree"}, &with_system).out);
  EXPECT_EQ(j["pci_ids"]["source"], "system");
  r = run_cli({"--root", t.root(), "list"});
  EXPECT_NE(r.out.find("Vendor 8086 Device 100e [8086:100e]"), std::string::npos) << r.out;
  j = nlohmann::json::parse(run_cli({"--root", t.root(), "--json", "tree"}).out);
  EXPECT_EQ(j["pci_ids"], (nlohmann::json{{"path", nullptr}, {"source", "none"}}));
  // list and show say why there are no names, and how to get them.
  for (const char* cmd : {"list", "show"}) {
    std::vector<std::string> args = {"--root", t.root(), "--json", cmd};
    if (std::string(cmd) == "show") args.push_back("00:03.0");
    j = nlohmann::json::parse(run_cli(args).out);
    EXPECT_EQ(j["pci_ids"]["names"], "unavailable") << cmd;
    EXPECT_EQ(
        j["pci_ids"]["names_unavailable"],
        (nlohmann::json{{"message", "no pci.ids: devices have no names"},
                        {"fix", "install pci.ids (apt install pci.ids), or pass --pci-ids FILE"}}))
        << cmd;
  }
}

TEST(PciIdsCli, AFifoAsTheOptionIsRefusedNotOpened) {
  TempTree t;
  std::string fifo = t.real("/pci.ids");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  auto r = without_blocking_on(fifo, [&] {
    return run_cli({"--root", source_path(kWorkstation), "--pci-ids", fifo, "list"});
  });
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: --pci-ids " + fifo + " is not a regular file");
}

TEST(PciIdsCli, HelpSaysExplicitBeatsImplicit) {
  auto r = run_cli({"--help"});
  EXPECT_NE(r.out.find("--pci-ids FILE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Explicit beats implicit"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pcipass::test
