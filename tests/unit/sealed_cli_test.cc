// A captured tree is read as the tree, end to end: `show` and `snapshot` follow its absolute
// links into the tree (a user's snapshot must never make pcipass read the reader's machine), and
// a FIFO where an attribute is expected makes a command fail or go on, never hang.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "fifo_watchdog.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

std::map<std::string, std::string> archive_entries(const std::string& path) {
  std::map<std::string, std::string> out;
  archive* in = archive_read_new();
  archive_read_support_filter_gzip(in);
  archive_read_support_format_tar(in);
  if (archive_read_open_filename(in, path.c_str(), 1 << 16) != ARCHIVE_OK) return out;
  archive_entry* e;
  while (archive_read_next_header(in, &e) == ARCHIVE_OK) {
    std::string data;
    if (const char* link = archive_entry_symlink(e)) data = link;
    char buf[4096];
    for (la_ssize_t n; (n = archive_read_data(in, buf, sizeof buf)) > 0;)
      data.append(buf, static_cast<size_t>(n));
    out[archive_entry_pathname(e)] = data;
  }
  archive_read_free(in);
  return out;
}

// The machine has, at an absolute path, a NIC 0xdead:0xbeef; the captured tree has, at the same
// host path, its own NIC 8086:100e, and its bus link names that path absolutely.
class AbsoluteLinks : public ::testing::Test {
 protected:
  void SetUp() override {
    machine.pci_device("/sys/devices/pci0000:00", "0000:00:03.0", 0xdead, 0xbeef, 0x020000, "", -1);
    machine.file("/sys/devices/pci0000:00/0000:00:03.0/modalias", "machine modalias\n");
    dev = machine.real("/sys/devices/pci0000:00/0000:00:03.0");
    tree.pci_device(machine.real("/sys/devices/pci0000:00"), "0000:00:03.0", 0x8086, 0x100e,
                    0x020000, "e1000e", 5);
    tree.file(dev + "/modalias", "pci:v00008086d0000100Esv00008086sd0000001Ebc02sc00i00\n");
    const std::string bus_link = tree.real("/sys/bus/pci/devices/0000:00:03.0");
    stdfs::remove(bus_link);
    stdfs::create_symlink(dev, bus_link);  // absolute: machine.root() + /sys/devices/...
  }
  TempTree machine, tree;
  std::string dev;  // the device's host path, the same in both
};

TEST_F(AbsoluteLinks, ShowReadsTheTreeNotTheMachine) {
  auto r = run_cli({"--root", tree.root(), "--json", "show", "00:03.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const auto& d = j["devices"][0];
  EXPECT_EQ(d["vendor_id"], "8086");
  EXPECT_EQ(d["device_id"], "100e");
  EXPECT_EQ(d["modalias"], "pci:v00008086d0000100Esv00008086sd0000001Ebc02sc00i00");
  EXPECT_EQ(d["driver"], "e1000e");
  EXPECT_EQ(r.out.find("dead"), std::string::npos) << r.out;
}

TEST_F(AbsoluteLinks, SnapshotArchivesTheTreeNotTheMachine) {
  std::string out = tree.root() + "-snapshot.tar.gz";
  auto r = run_cli({"--root", tree.root(), "snapshot", "-o", out});
  ASSERT_EQ(r.status, 0) << r.err;
  auto entries = archive_entries(out);
  stdfs::remove(out);
  ASSERT_TRUE(entries.count(dev.substr(1) + "/config")) << "no config archived";
  std::string cfg = entries[dev.substr(1) + "/config"];
  ASSERT_GE(cfg.size(), 4u);
  EXPECT_EQ(cfg.substr(0, 4), std::string("\x86\x80\x0e\x10", 4));
  EXPECT_EQ(entries[dev.substr(1) + "/modalias"],
            "pci:v00008086d0000100Esv00008086sd0000001Ebc02sc00i00\n");
  for (const auto& [path, data] : entries)
    EXPECT_EQ(data.find("machine modalias"), std::string::npos) << path;
}

TEST(FifoAttribute, ListDoesNotHangOnAFifoConfig) {
  TempTree t;
  const std::string bus = "/sys/devices/pci0000:00";
  t.pci_device(bus, "0000:00:03.0", 0x8086, 0x100e, 0x020000, "e1000e", 5);
  t.file(bus + "/0000:00:03.0/vendor", "0x8086\n");
  t.file(bus + "/0000:00:03.0/device", "0x100e\n");
  t.file(bus + "/0000:00:03.0/class", "0x020000\n");
  std::string fifo = t.real(bus + "/0000:00:03.0/config");
  stdfs::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  CliRun r = without_blocking_on(fifo, [&] {
    return run_cli({"--root", t.root(), "--json", "list"});
  });
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"vendor_id\":\"8086\",\"device_id\":\"100e\""), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace pcipass::test
